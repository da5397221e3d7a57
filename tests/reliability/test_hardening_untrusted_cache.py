"""No file a repository ships can run code through the grammar cache (issue 14 item 7).

Lark's own cache is a pickle: with ``XDG_CACHE_HOME=.cache`` (relative) or a
cache directory inside the checkout (CI), a crafted file ran code on
``muxlang validate``. The cache now holds plain data only, in a directory
owned by the user that others cannot write, in files of mode 0600.
"""

from __future__ import annotations

import marshal
import os
import pickle
from pathlib import Path

import lark
from rel_support import project_and_home, run_muxlang, subprocess_env

from muxlang import toml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = '[[steps]]\nname = "s"\ntype = "shell"\nrun = "echo {{ args.x | default(\'hi\') }}"\n'


class _Payload:
    """Unpickling this creates ``marker``: proof that a shipped file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _lark_pickle_caches(directory: Path, marker: Path) -> None:
    """Files where Lark's pickle cache (as muxlang used it) looks, with the header
    Lark checks and a payload that creates ``marker`` when unpickled."""
    directory.mkdir(parents=True, exist_ok=True)
    grammars = {
        "toml-grammar": (
            toml.parser._GRAMMAR and Path(toml.parser._GRAMMAR).read_text(),
            {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": False},
        ),
        "template-grammar": (
            (REPO / "muxlang" / "grammar.lark").read_text(),
            {
                "start": ["template", "expression"],
                "parser": "lalr",
                "lexer": "contextual",
                "strict": False,
                "propagate_positions": True,
                "maybe_placeholders": False,
            },
        ),
    }
    scratch = directory.parent / "scratch.cache"
    for name, (text, options) in grammars.items():
        lark.Lark(text, cache=str(scratch), **options)  # a genuine file: take its header
        header = scratch.read_bytes().split(b"\n", 1)[0]
        scratch.unlink()
        evil = header + b"\n" + pickle.dumps(_Payload(marker)) + pickle.dumps(_Payload(marker))
        (directory / f"{name}-lark-{lark.__version__}.cache").write_bytes(evil)


def _project(tmp_path: Path) -> tuple[Path, Path]:
    return project_and_home(tmp_path, {"wf.toml": WORKFLOW})


def test_a_relative_xdg_cache_home_is_ignored(tmp_path: Path) -> None:
    root, home = _project(tmp_path)
    marker = tmp_path / "pwned"
    _lark_pickle_caches(root / ".cache" / "muxlang", marker)
    shipped = sorted(p.name for p in (root / ".cache" / "muxlang").iterdir())
    env = subprocess_env(home, XDG_CACHE_HOME=".cache")
    for command in (["validate", "wf.toml"], ["run", "wf.toml"], ["graph", "wf.toml"]):
        done = run_muxlang(root, *command, env=env, cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert not marker.exists(), f"{command}: a file the repository shipped ran code"
    # nothing was read from or written into the checkout; the user's cache was used
    assert sorted(p.name for p in (root / ".cache" / "muxlang").iterdir()) == shipped
    assert list((home / ".cache" / "muxlang").glob("*.tables"))


def test_a_cache_inside_the_checkout_never_runs_code(tmp_path: Path) -> None:
    """CI sometimes points XDG_CACHE_HOME at the workspace: what a checkout holds
    there is never unpickled, and files not written by muxlang itself are ignored."""
    root, home = _project(tmp_path)
    marker = tmp_path / "pwned"
    cache = root / ".cache"
    _lark_pickle_caches(cache / "muxlang", marker)
    (cache / "muxlang").chmod(0o700)
    env = subprocess_env(home, XDG_CACHE_HOME=str(cache))
    done = run_muxlang(root, "validate", "wf.toml", env=env, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not marker.exists()
    # a checked-out file (0644) at muxlang's own name is ignored and replaced
    tables = sorted((cache / "muxlang").glob("*.tables"))
    assert len(tables) == 2
    for path in tables:
        header = path.read_bytes().split(b"\n", 2)
        path.write_bytes(header[0] + b"\n" + header[1] + b"\n" + marshal.dumps({"data": 1}))
        path.chmod(0o644)
    done = run_muxlang(root, "validate", "wf.toml", env=env, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in tables:
        assert path.stat().st_mode & 0o777 == 0o600
        assert b'"data": 1' not in path.read_bytes()
        assert len(path.read_bytes()) > 1000  # rebuilt: the real tables


def test_a_cache_directory_others_can_write_is_not_used(tmp_path: Path) -> None:
    root, home = _project(tmp_path)
    cache = tmp_path / "shared"
    (cache / "muxlang").mkdir(parents=True)
    (cache / "muxlang").chmod(0o777)
    env = subprocess_env(home, XDG_CACHE_HOME=str(cache))
    done = run_muxlang(root, "validate", "wf.toml", env=env, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((cache / "muxlang").iterdir()) == []


def test_a_private_file_not_written_by_muxlang_is_rebuilt(tmp_path: Path) -> None:
    """Even a 0600 file of the user's with the right header runs nothing: marshal
    builds values only (a code object in it stays inert); Lark cannot load it,
    and the tables are rebuilt and rewritten."""
    root, home = _project(tmp_path)
    cache = tmp_path / "cache"
    env = subprocess_env(home, XDG_CACHE_HOME=str(cache))
    assert run_muxlang(root, "validate", "wf.toml", env=env, cwd=root).returncode == 0
    tables = sorted((cache / "muxlang").glob("*.tables"))
    code = compile("open('pwned', 'w')", "x", "exec")
    for path in tables:
        head = b"\n".join(path.read_bytes().split(b"\n", 2)[:2]) + b"\n"
        path.write_bytes(head + marshal.dumps({"data": {"x": code}, "memo": {}}))
        os.chmod(path, 0o600)
    done = run_muxlang(root, "validate", "wf.toml", env=env, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in tables:
        assert b"pwned" not in path.read_bytes()

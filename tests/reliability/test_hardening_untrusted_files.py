"""A repository's symlinks never make muxlang show a file outside it (issue 14 item 6).

A pull request can commit ``.muxlang/config.toml -> /proc/self/environ`` or a
workflow linked to ``~/.aws/credentials``; ``validate`` runs on it in CI and in
pre-commit. Whatever command reads such a file must refuse it, say which file
and why, and never print a byte of the target (not even in the source line a
diagnostic shows under its position).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rel_support import run_muxlang, subprocess_env

CANARY = "wJalrXUtnFEMI-canary-5d1e0c7b"
ENV_CANARY = "environ-canary-93ac01"

#: an AWS credentials file: its second line is a TOML error, so a diagnostic would
#: point at (and show) the line holding the key
CREDENTIALS = f"[default]\naws_secret_access_key = {CANARY}\n"

COMMANDS = [
    ["validate"],
    ["validate", "--format", "json"],
    ["validate", "--format", "sarif"],
    ["validate", "--format", "github"],
    ["validate", "leak"],
    ["graph", "leak"],
    ["run", "leak"],
    ["run", "leak", "--dry-run"],
    ["doctor"],
    ["doctor", "--output", "json"],
    ["backends", "--output", "json"],
    ["roles"],
    ["workflows"],
]


def _tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(root, home, the secret file outside the root)."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    secret = home / ".aws" / "credentials"
    secret.write_text(CREDENTIALS)
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    return root, home, secret


def _layout(root: Path, secret: Path, layout: str) -> None:
    muxdir = root / ".muxlang"
    if layout == "config":
        muxdir.mkdir()
        (muxdir / "config.toml").symlink_to(secret)
    elif layout == "llm-mux-config":
        (root / ".llm-mux").mkdir()
        (root / ".llm-mux" / "config.toml").symlink_to(secret)
    elif layout == "workflow":
        (muxdir / "workflows").mkdir(parents=True)
        (muxdir / "workflows" / "leak.toml").symlink_to(secret)
    elif layout == "workflow-dir":
        muxdir.mkdir()
        outside = secret.parent / "flows"
        outside.mkdir()
        (outside / "leak.toml").write_text(CREDENTIALS)
        (muxdir / "workflows").symlink_to(outside)
    elif layout == "project-dir":
        # the whole .muxlang/ is a link to a directory outside
        outside = secret.parent / "mux"
        outside.mkdir()
        (outside / "config.toml").write_text(CREDENTIALS)
        (outside / "workflows").mkdir()
        (outside / "workflows" / "leak.toml").write_text(CREDENTIALS)
        muxdir.symlink_to(outside)
    elif layout == "relative-link":
        muxdir.mkdir()
        (muxdir / "config.toml").symlink_to(os.path.relpath(secret, muxdir))
    else:  # pragma: no cover
        raise AssertionError(layout)


@pytest.mark.parametrize(
    "layout",
    ["config", "llm-mux-config", "workflow", "workflow-dir", "project-dir", "relative-link"],
)
def test_a_file_linked_outside_the_project_is_never_shown(tmp_path: Path, layout: str) -> None:
    root, home, secret = _tree(tmp_path)
    _layout(root, secret, layout)
    env = subprocess_env(home)
    refused = False
    for command in COMMANDS:
        done = run_muxlang(root, *command, env=env, cwd=root)
        out = (done.stdout + done.stderr).decode()
        assert CANARY not in out, f"{command}: the target's contents leaked:\n{out}"
        assert "Traceback" not in out, (command, out)
        if "outside the project root" in out:
            refused = True
            assert "refused to read" in out
    assert refused, "no command said why the file was not read"
    # validate fails (the refusal is an error), naming the file
    done = run_muxlang(root, "validate", env=env, cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert b"MUX001" in done.stdout


def test_proc_self_environ_is_never_echoed(tmp_path: Path) -> None:
    root, home, _ = _tree(tmp_path)
    (root / ".muxlang").mkdir()
    (root / ".muxlang" / "config.toml").symlink_to("/proc/self/environ")
    env = subprocess_env(home, AWS_SECRET_ACCESS_KEY=ENV_CANARY)
    for command in (["validate"], ["doctor", "--output", "json"], ["backends"], ["run", "x"]):
        done = run_muxlang(root, *command, env=env, cwd=root)
        out = (done.stdout + done.stderr).decode()
        assert ENV_CANARY not in out, (command, out)
        assert "Traceback" not in out, (command, out)
    done = run_muxlang(root, "validate", env=env, cwd=root)
    assert b"outside the project root" in done.stdout, done.stdout


def test_a_file_named_on_the_command_line_that_links_out_of_the_project_is_refused(
    tmp_path: Path,
) -> None:
    """pre-commit passes the changed files' names: a link among them is refused too."""
    root, home, secret = _tree(tmp_path)
    (root / "leak.toml").symlink_to(secret)
    env = subprocess_env(home)
    for command in (["validate", "leak.toml"], ["graph", "leak.toml"], ["run", "leak.toml"]):
        done = run_muxlang(root, *command, env=env, cwd=root)
        out = (done.stdout + done.stderr).decode()
        assert CANARY not in out, (command, out)
        assert "outside the project root" in out, (command, out)
        assert done.returncode in (1, 2)


def test_links_inside_the_project_and_the_users_own_files_still_work(tmp_path: Path) -> None:
    root, home, _ = _tree(tmp_path)
    (root / "flows").mkdir()
    (root / "flows" / "hello.toml").write_text(
        '[[steps]]\nname = "hi"\ntype = "shell"\nrun = "echo hello-inside"\n'
    )
    (root / ".muxlang" / "workflows").mkdir(parents=True)
    (root / ".muxlang" / "workflows" / "hello.toml").symlink_to(root / "flows" / "hello.toml")
    # the user's own config may be a link anywhere (dotfiles, home-manager)
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "config.toml").write_text('[backends.mine]\ncommand = "fake-llm"\n')
    (home / ".config" / "muxlang").mkdir(parents=True)
    (home / ".config" / "muxlang" / "config.toml").symlink_to(dotfiles / "config.toml")
    # and a file outside every project is read as the user named it
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "wf.toml").symlink_to(root / "flows" / "hello.toml")
    env = subprocess_env(home)
    done = run_muxlang(root, "run", "hello", env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    assert b"hello-inside" in done.stdout
    done = run_muxlang(root, "backends", env=env, cwd=root)
    assert b"mine" in done.stdout, done.stdout + done.stderr
    done = run_muxlang(root, "run", str(loose / "wf.toml"), env=env, cwd=loose)
    assert done.returncode == 0, done.stderr
    assert b"hello-inside" in done.stdout


def test_workflows_does_not_list_a_workflow_it_would_refuse_to_run(tmp_path: Path) -> None:
    """`muxlang workflows` lists what `muxlang run NAME` can run: a project workflow
    linked outside the project is left out, and does not unmask a bundled one of the
    same name (which `run NAME` would not use either)."""
    import json

    root, home, secret = _tree(tmp_path)
    flows = root / ".muxlang" / "workflows"
    flows.mkdir(parents=True)
    (flows / "leak.toml").symlink_to(secret)
    (flows / "review.toml").symlink_to(secret)  # shadows the bundled `review`
    (flows / "mine.toml").write_text('[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    env = subprocess_env(home)
    done = run_muxlang(root, "workflows", "--output", "json", env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    listed = {entry["name"]: entry["source"] for entry in json.loads(done.stdout)}
    assert listed.get("mine") == "project"
    assert "leak" not in listed
    assert "review" not in listed
    assert listed.get("explain") == "stdlib"  # the other bundled workflows are still there
    done = run_muxlang(root, "run", "review", env=env, cwd=root)
    assert b"outside the project root" in done.stdout + done.stderr


def test_python_modules_in_the_project_never_run_in_muxlang_s_own_processes(
    tmp_path: Path,
) -> None:
    """A repository may hold `json.py`, `sqlite3.py`, `pickle.py` ...: the processes
    muxlang starts for itself (the run-record writer) must not import them from the
    working directory, and the run is still recorded."""
    root, home, _ = _tree(tmp_path)
    marker = tmp_path / "imported"
    for module in ("json", "pickle", "sqlite3", "contextlib", "struct", "fcntl", "os", "site"):
        (root / f"{module}.py").write_text(
            f"open({str(marker)!r}, 'a').write({module!r} + '\\n')\nraise ImportError\n"
        )
    (root / "wf.toml").write_text('[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo hi"\n')
    # the installed `muxlang` script, run from the project as a user runs it
    # (`python -m muxlang` would itself import from the working directory)
    script = str(Path(sys.executable).with_name("muxlang"))
    env = subprocess_env(home)
    done = subprocess.run(
        [script, "run", "wf.toml"], cwd=root, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert b"not being recorded" not in done.stderr, done.stderr
    assert not marker.exists(), marker.read_text()
    listed = subprocess.run(
        [script, "runs", "--output", "json"], cwd=root, env=env, capture_output=True, timeout=60
    )
    assert b'"wf"' in listed.stdout, listed.stdout + listed.stderr


def test_a_fifo_in_place_of_a_config_file_does_not_hang(tmp_path: Path) -> None:
    root, home, _ = _tree(tmp_path)
    (root / ".muxlang").mkdir()
    os.mkfifo(root / ".muxlang" / "config.toml")
    env = subprocess_env(home)
    for command in (["validate"], ["backends"], ["doctor"], ["validate", ".muxlang/config.toml"]):
        # a FIFO is not a config file: skipped or refused, and the command ends
        done = run_muxlang(root, *command, env=env, cwd=root, timeout=60)
        out = (done.stdout + done.stderr).decode()
        assert "Traceback" not in out, (command, out)


def test_read_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    from muxlang.config.discovery import RefusedFileError, read_file

    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(RefusedFileError, match="not a regular file"):
        read_file(tmp_path / "fifo.toml")  # returns at once: never waits for a writer
    with pytest.raises(IsADirectoryError):
        read_file(tmp_path)

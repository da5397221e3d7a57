"""The TOML reader on hostile input: memory stays linear and small (issue 14 item
14), and CR-only line endings are an error everywhere (item 17b)."""

from __future__ import annotations

import subprocess
import tracemalloc
from pathlib import Path

import pytest
from rel_support import muxlang_argv, project_and_home, run_muxlang, subprocess_env

from muxlang import toml
from muxlang.toml.parser import get_parser

MB = 1024 * 1024

#: the promise in docs/reliability.md: peak memory per byte of input
LIMIT_BYTES_PER_BYTE = 20

_LINE = "x" * 79 + "\n"
DOCUMENTS = {
    "basic": 'a = "' + "x" * (2 * MB) + '"\n',
    "basic_with_escapes": 'a = "' + ("x" * 60 + "\\t") * (2 * MB // 62) + '"\n',
    "literal": "a = '" + "x" * (2 * MB) + "'\n",
    "multiline_basic": 'a = """\n' + _LINE * (2 * MB // 80) + '"""\n',
    "multiline_literal": "a = '''\n" + _LINE * (2 * MB // 80) + "'''\n",
    # the densest position map: one escape in every four characters
    "escape_dense": 'a = "' + "ab\\n" * (MB // 8) + '"\n',
}


@pytest.mark.parametrize("shape", sorted(DOCUMENTS))
def test_a_big_string_needs_little_memory(shape: str) -> None:
    text = DOCUMENTS[shape]
    get_parser()  # the grammar's own tables are not what is measured
    tracemalloc.start()
    try:
        value = toml.loads(text)["a"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value) > MB // 8
    assert peak / len(text) < LIMIT_BYTES_PER_BYTE, f"{peak / len(text):.0f} bytes per byte"


@pytest.mark.parametrize(
    "text",
    [
        'a = "x"\rb = 1\n',  # CR between key/value lines
        'name = "w"\r\r[[steps]]\rname = "s"\rtype = "shell"\rrun = "echo hi"\r',
    ],
)
def test_cr_only_line_endings_are_refused_by_loads(text: str) -> None:
    with pytest.raises(toml.TOMLDecodeError) as caught:
        toml.loads(text)
    assert "carriage return" in str(caught.value)


def test_cr_only_line_endings_are_a_mux001_with_a_position(tmp_path: Path) -> None:
    root, home = project_and_home(tmp_path)
    wf = root / "wf.toml"
    wf.write_bytes(b'name = "w"\r\r[[steps]]\rname = "s"\rtype = "shell"\rrun = "echo hi"\r')
    env = subprocess_env(home)
    for command in (
        ["validate", str(wf)],
        ["validate", "--format", "json", str(wf)],
        ["graph", str(wf)],
        ["run", str(wf)],
    ):
        done = run_muxlang(root, *command, env=env, cwd=root)
        out = (done.stdout + done.stderr).decode()
        assert done.returncode in (1, 2), (command, out)
        assert "MUX001" in out, (command, out)
        assert "carriage return" in out, (command, out)
        assert "Traceback" not in out
    done = run_muxlang(root, "validate", str(wf), env=env, cwd=root)
    assert "wf.toml:1:11" in done.stdout.decode(), done.stdout.decode()


def test_crlf_line_endings_still_work_with_the_same_positions(tmp_path: Path) -> None:
    root, home = project_and_home(tmp_path)
    wf = root / "wf.toml"
    wf.write_bytes(b'name = "w"\r\n[[steps]]\r\nname = "s"\r\ntype = "shel"\r\nrun = "echo hi"\r\n')
    done = run_muxlang(root, "validate", str(wf), env=subprocess_env(home), cwd=root)
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "wf.toml:4:8" in out, out


def test_cr_only_line_endings_on_stdin_are_a_mux001(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        muxlang_argv("-C", str(tmp_path), "validate", "-"),
        input=b'name = "w"\r[[steps]]\rname = "s"\rtype = "shell"\rrun = "echo"\r',
        capture_output=True,
        env=subprocess_env(home),
        timeout=60,
        check=False,
    )
    out = done.stdout.decode()
    assert done.returncode == 1, out + done.stderr.decode()
    assert "<stdin>:1:11" in out, out
    assert "MUX001" in out, out
    assert "carriage return" in out, out

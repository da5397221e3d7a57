"""A command that floods stdout cannot grow muxlang without bound.

Issue 14 item 13: output was buffered without limit, so a shell step, a CLI
backend or a verify command printing without end (`yes`) grew muxlang by
gigabytes. Now ``[defaults] max_output`` (default 64 MiB, bytes or "10MB") stops
the command, the step fails naming the limit, and what is kept is bounded (of
stderr, the last ``max_output`` bytes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rel_support import (
    PYTHON,
    answered_apply_workflow,
    muxlang_argv,
    project_and_home,
    run_muxlang,
    subprocess_env,
)

FLOOD = "head -c {n} /dev/zero | tr '\\0' x"


def project(tmp_path: Path, config: str = "") -> tuple[Path, Path]:
    files = {"app.py": "A = 1\n"}
    if config:
        files[".muxlang/config.toml"] = config
    return project_and_home(tmp_path, files)


def shell_step(root: Path, run: str) -> Path:
    wf = root / "wf.toml"
    wf.write_text(f'[[steps]]\nname = "flood"\ntype = "shell"\nrun = {json.dumps(run)}\n')
    return wf


def query_step(root: Path, backend: str) -> Path:
    wf = root / "wf.toml"
    wf.write_text(
        f'[[steps]]\nname = "ask"\ntype = "query"\nbackend = "{backend}"\nprompt = "hi"\n'
    )
    return wf


def run_json(root: Path, home: Path, wf: Path) -> tuple[int, Any, str]:
    done = run_muxlang(root, "run", str(wf), "--output", "json", env=subprocess_env(home))
    return done.returncode, json.loads(done.stdout), done.stderr.decode()


ONE_MB = '[defaults]\nmax_output = "1MB"\n'


@pytest.mark.slow
def test_a_step_over_the_configured_limit_fails_naming_it(tmp_path: Path) -> None:
    root, home = project(tmp_path, ONE_MB)
    code, report, err = run_json(root, home, shell_step(root, FLOOD.format(n=3_000_000)))
    assert code == 1, err
    step = report["steps"]["flood"]
    assert step["status"] == "failed"
    assert "more than 1 MB on stdout" in step["error"]
    assert "[defaults] max_output" in step["error"]
    assert len(step["output"]) <= 1_000_000
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_step_under_the_limit_keeps_all_its_output(tmp_path: Path) -> None:
    root, home = project(tmp_path, ONE_MB)
    code, report, err = run_json(root, home, shell_step(root, FLOOD.format(n=999_999)))
    assert code == 0, err
    assert report["steps"]["flood"]["output"] == "x" * 999_999


@pytest.mark.slow
def test_stderr_is_kept_bounded_without_failing_the_step(tmp_path: Path) -> None:
    root, home = project(tmp_path, ONE_MB)
    run = FLOOD.format(n=5_000_000) + " >&2; echo done; exit 3"
    code, report, _err = run_json(root, home, shell_step(root, run))
    assert code == 1
    step = report["steps"]["flood"]
    assert step["exit_code"] == 3  # its own failure, not the limit's
    assert "max_output" not in (step["error"] or "")
    assert 0 < len(step["stderr"]) <= 1_000_000


@pytest.mark.slow
def test_a_cli_backend_that_floods_fails_naming_the_limit(tmp_path: Path) -> None:
    config = (
        ONE_MB
        + f"""
[backends.chatty]
command = "sh"
args = ["-c", {json.dumps(FLOOD.format(n=20_000_000))}]
prompt_via = "stdin"
max_retries = 0
"""
    )
    root, home = project(tmp_path, config)
    code, report, err = run_json(root, home, query_step(root, "chatty"))
    assert code == 1, err
    error = report["steps"]["ask"]["error"]
    assert "more than 1 MB on stdout" in error, error


@pytest.mark.slow
def test_a_verify_that_floods_fails_and_rolls_back(tmp_path: Path) -> None:
    root, home = project(tmp_path, ONE_MB)
    edit = json.dumps({"path": "app.py", "content": "A = 2\n"})
    wf = answered_apply_workflow(root / "wf.toml", tmp_path / "answer.json", edit, "yes")
    code, report, err = run_json(root, home, wf)
    assert code == 1, err
    error = report["steps"]["write"]["error"]
    assert "The verify command `yes` was stopped" in error, error
    assert "more than 1 MB on stdout" in error
    assert (root / "app.py").read_text() == "A = 1\n"


@pytest.mark.slow
def test_the_default_limit_bounds_memory(tmp_path: Path) -> None:
    """No configuration: a step printing 300 MB is stopped at 64 MiB, and muxlang's
    peak memory stays far below what buffering it all took (over 600 MB)."""
    root, home = project(tmp_path)
    wf = shell_step(root, FLOOD.format(n=300_000_000))
    probe = (
        "import json, resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "print(json.dumps({'code': done.returncode, 'out': done.stdout.decode(),\n"
        "  'err': done.stderr.decode(),\n"
        "  'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    argv = muxlang_argv("-C", str(root), "run", str(wf), "--output", "json")
    done = subprocess.run(
        [PYTHON, "-c", probe, *argv],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["code"] == 1, result["err"]
    error = json.loads(result["out"])["steps"]["flood"]["error"]
    assert "more than 64 MiB on stdout" in error, error
    assert result["peak_kib"] < 300 * 1024, result["peak_kib"]


def test_a_bad_max_output_is_a_clear_validate_error(tmp_path: Path) -> None:
    root, home = project(tmp_path, '[defaults]\nmax_output = "lots"\n')
    shell_step(root, "true")
    done = subprocess.run(
        [sys.executable, "-m", "muxlang", "-C", str(root), "validate", str(root / "wf.toml")],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert ".muxlang/config.toml:2:14" in text, text
    assert '`max_output` must be a size: bytes (1048576) or a string such as "10MB"' in text


@pytest.mark.slow
def test_an_http_backend_answer_over_the_limit_fails_naming_it(tmp_path: Path) -> None:
    from tests.fakes.llm_server import Reply, fake_llm_server

    with fake_llm_server() as server:
        server.default = Reply(text="y" * 3_000_000)
        config = ONE_MB + f'\n[backends.big]\ncommand = "{server.url}/v1"\nmax_retries = 0\n'
        root, home = project(tmp_path, config)
        code, report, err = run_json(root, home, query_step(root, "big"))
    assert code == 1, err
    error = report["steps"]["ask"]["error"]
    assert "is larger than 1 MB, the output limit ([defaults] max_output)" in error, error

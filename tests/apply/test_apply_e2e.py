"""`muxlang run` and `muxlang recover` end to end, with a CLI "LLM" that is a script."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from muxlang.apply.journal import journal_dir
from tests.apply.apply_support import snapshot

#: answers wrong the first time, right afterwards (it counts its calls in a file)
LLM = """#!/bin/sh
n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n+1)) > "$0.count"
if [ "$n" = 0 ]; then new="a * b"; else new="a + b"; fi
printf 'Sure.\\n```json\\n{"path": "src/app.py", "old": "a - b", "new": "%s"}\\n```\\n' "$new"
"""

WORKFLOW = """
[backends.fake]
command = "{llm}"

[[steps]]
name = "fix"
type = "query"
backend = "fake"
prompt = "Fix src/app.py"

[[steps]]
name = "apply"
type = "apply"
source = "fix"
verify = 'out="$(python3 src/app.py)"; test "$out" = 3 || {{ echo "got $out"; exit 1; }}'
verify_retries = {retries}
"""


def muxlang(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "muxlang", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def setup(repo: Path, tmp_path: Path, retries: int) -> Path:
    llm = tmp_path / "llm.sh"
    llm.write_text(LLM)
    llm.chmod(0o755)
    flow = tmp_path / "fix.toml"
    flow.write_text(WORKFLOW.format(llm=llm, retries=retries))
    return flow


@pytest.mark.slow
def test_run_re_asks_after_a_failed_verify_and_ends_green(repo: Path, tmp_path: Path) -> None:
    flow = setup(repo, tmp_path, retries=1)
    result = muxlang("run", str(flow), "-C", str(repo), "--output", "json", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    apply = document["steps"]["apply"]
    assert apply["status"] == "success"
    assert apply["attempts"] == 2
    assert apply["files"] == ["src/app.py"]
    assert "return a + b" in (repo / "src/app.py").read_text()
    assert "# user's uncommitted note" in (repo / "src/app.py").read_text()
    assert (tmp_path / "llm.sh.count").read_text().strip() == "2"


@pytest.mark.slow
def test_run_out_of_retries_fails_and_restores(repo: Path, tmp_path: Path) -> None:
    before = snapshot(repo)
    flow = setup(repo, tmp_path, retries=0)
    result = muxlang("run", str(flow), "-C", str(repo), "--output", "json", cwd=repo)
    assert result.returncode == 1
    apply = json.loads(result.stdout)["steps"]["apply"]
    assert apply["status"] == "failed"
    assert "got 2" in apply["error"]
    assert snapshot(repo) == before


@pytest.mark.slow
def test_run_rolls_back_a_journal_left_by_a_killed_run(repo: Path, tmp_path: Path) -> None:
    from tests.apply.test_apply_recover import kill_half_way

    before = snapshot(repo)
    kill_half_way(repo, 2)
    assert journal_dir(repo).exists()
    flow = tmp_path / "noop.toml"
    flow.write_text('[[steps]]\nname = "noop"\ntype = "shell"\nrun = "true"\n')
    result = muxlang("run", str(flow), "-C", str(repo), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "src/app.py" in result.stderr  # says what it restored
    assert snapshot(repo) == before


@pytest.mark.slow
def test_recover_command_from_inside_a_subdirectory(repo: Path) -> None:
    from tests.apply.test_apply_recover import kill_half_way

    before = snapshot(repo)
    kill_half_way(repo, 1)
    result = muxlang("recover", cwd=repo / "src")  # the root is found from the git repo
    assert result.returncode == 0, result.stderr
    assert "restored src/app.py" in result.stderr
    assert snapshot(repo) == before


@pytest.mark.slow
def test_ctrl_c_during_verify_restores_the_tree_and_exits_130(repo: Path, tmp_path: Path) -> None:
    before = snapshot(repo)
    flow = setup(repo, tmp_path, retries=0)
    marker = tmp_path / "verifying"
    flow.write_text(
        flow.read_text().replace("verify = 'out=", f"verify = 'touch {marker}; sleep 60; out=")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "muxlang", "run", str(flow), "-C", str(repo)],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "a * b" in (repo / "src/app.py").read_text()  # the edit is in place
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert snapshot(repo) == before

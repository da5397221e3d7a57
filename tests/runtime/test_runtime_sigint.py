"""Ctrl-C on a real `muxlang run`: exit 130, nothing left running, finished steps named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_runtime_processes import marker, processes_with

MUXLANG = [sys.executable, "-m", "muxlang"]


def start(root: Path, mark: str, *extra: str, stubborn: bool = True) -> subprocess.Popen[str]:
    """A run with a quick step, sleepers, a process family, and (``stubborn``) a
    command that ignores SIGTERM, so it takes the SIGKILL after the grace period."""
    (root / ".muxlang").mkdir()
    trap = "trap '' TERM; " if stubborn else ""
    (root / "wf.toml").write_text(
        textwrap.dedent(
            f"""
            [[steps]]
            name = "quick"
            type = "shell"
            run = "echo done"

            [[steps]]
            name = "sleeper"
            type = "shell"
            run = "sleep {mark}"

            [[steps]]
            name = "family"
            type = "shell"
            run = "sleep {mark} & sleep {mark} & wait"

            [[steps]]
            name = "stubborn"
            type = "shell"
            run = "{trap}sleep {mark}"

            [[steps]]
            name = "later"
            type = "shell"
            depends_on = ["sleeper"]
            run = "echo never"
            """
        )
    )
    return launch(root, *extra)


def launch(root: Path, *extra: str) -> subprocess.Popen[str]:
    """``muxlang run wf.toml`` in ``root``, its output captured as text."""
    return subprocess.Popen(
        [*MUXLANG, "-C", str(root), "run", "wf.toml", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signal_when(
    proc: subprocess.Popen[str], sig: signal.Signals, ready: Callable[[], None]
) -> tuple[str, str]:
    """Once ``ready()`` returns, send ``sig`` to the run and collect its output;
    the run is killed if it is still alive after that."""
    try:
        ready()
        proc.send_signal(sig)
        return proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def poll_until(done: Callable[[], bool], failure: str) -> None:
    """Poll ``done`` every 50 ms; fail with ``failure`` if it is not true within 20 s."""
    deadline = time.monotonic() + 20
    while not done():
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def wait_for(mark: str, count: int) -> None:
    poll_until(lambda: len(processes_with(mark)) >= count, "the workflow's processes never started")


@pytest.mark.slow
def test_sigint_stops_everything_and_exits_130(tmp_path: Path) -> None:
    mark = marker()
    proc = start(tmp_path, mark)

    def ready() -> None:
        wait_for(mark, 4)
        time.sleep(0.2)

    _, stderr = signal_when(proc, signal.SIGINT, ready)
    assert proc.returncode == 130, stderr
    assert processes_with(mark) == [], "processes outlived the run"
    assert "interrupted" in stderr
    assert "✓ quick" in stderr
    assert "finished: quick" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_sigint_json_output_still_one_object(tmp_path: Path) -> None:
    import json

    mark = marker()
    proc = start(tmp_path, mark, "--output", "json", stubborn=False)
    stdout, stderr = signal_when(proc, signal.SIGINT, lambda: wait_for(mark, 4))
    assert proc.returncode == 130, stderr
    doc = json.loads(stdout)
    assert doc["interrupted"] is True
    assert doc["success"] is False
    assert doc["steps"]["quick"]["status"] == "success"
    assert doc["steps"]["sleeper"]["status"] == "failed"
    assert doc["steps"]["later"]["status"] == "skipped"
    assert processes_with(mark) == []


def apply_workflow(root: Path, mark: str) -> Path:
    """A workflow whose apply step edits greet.txt, then verifies for a long time."""
    (root / ".muxlang").mkdir()
    (root / "greet.txt").write_text("hello wrold\n")
    edit = '{"path": "greet.txt", "old": "wrold", "new": "world"}'
    (root / "wf.toml").write_text(
        textwrap.dedent(
            f"""
            [backends.fake]
            command = "sh"
            args = ["-c", "cat edit.json", "fake"]

            [[steps]]
            name = "propose"
            type = "query"
            backend = "fake"
            prompt = "fix greet.txt"

            [[steps]]
            name = "apply"
            type = "apply"
            source = "propose"
            verify = "sleep {mark}"
            """
        )
    )
    (root / "edit.json").write_text(edit)
    return root / "greet.txt"


def wait_for_edit(target: Path) -> None:
    poll_until(lambda: target.read_text() == "hello world\n", "the edit was never applied")


@pytest.mark.slow
def test_sigint_during_apply_rolls_back(tmp_path: Path) -> None:
    mark = marker()
    target = apply_workflow(tmp_path, mark)
    proc = launch(tmp_path)

    def ready() -> None:
        wait_for(mark, 1)
        wait_for_edit(target)

    _, stderr = signal_when(proc, signal.SIGINT, ready)
    assert proc.returncode == 130, stderr
    assert target.read_text() == "hello wrold\n"
    assert processes_with(mark) == []


@pytest.mark.slow
def test_next_run_recovers_what_a_killed_run_left(tmp_path: Path) -> None:
    mark = marker()
    target = apply_workflow(tmp_path, mark)
    proc = subprocess.Popen(
        [*MUXLANG, "-C", str(tmp_path), "run", "wf.toml"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(mark, 1)
        wait_for_edit(target)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in processes_with(mark):  # the orphaned verify command
            os.kill(pid, signal.SIGKILL)
    assert target.read_text() == "hello world\n"
    (tmp_path / "wf.toml").write_text(
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "cat greet.txt"\n'
    )
    result = subprocess.run(
        [*MUXLANG, "-C", str(tmp_path), "run", "wf.toml"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "recovered" in result.stderr
    assert "greet.txt" in result.stderr
    assert result.stdout == "hello wrold\n"


@pytest.mark.slow
def test_sigterm_cleans_up_and_exits_143(tmp_path: Path) -> None:
    mark = marker()
    proc = start(tmp_path, mark, stubborn=False)
    _, stderr = signal_when(proc, signal.SIGTERM, lambda: wait_for(mark, 4))
    assert proc.returncode == 143, stderr
    assert processes_with(mark) == []

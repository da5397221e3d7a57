"""Nothing a step started outlives it, and SIGHUP stops muxlang as SIGTERM does.

Issue 14 items 4 and 5. A command can leave muxlang's process group (coreutils
``timeout`` makes a group of its own, ``setsid`` a session of its own); killing
the step's group missed it, so it kept running after Ctrl-C or a timeout and
wrote into the tree after the rollback. SIGHUP (a closed terminal, a dropped SSH
session) killed `muxlang run` and `muxlang serve` outright: no rollback,
children left running. Every test here runs the real CLI with real processes and
finds them in /proc by a unique marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rel_support import (
    answered_apply_workflow,
    kill_all,
    marker,
    muxlang_argv,
    processes_with,
    project_and_home,
    run_muxlang,
    subprocess_env,
    wait_gone,
)

ORIGINAL = "def add(a, b):\n    return a - b\n"


@pytest.fixture
def mark() -> Iterator[str]:
    word = marker()
    try:
        yield word
    finally:
        kill_all(word)


def project(tmp_path: Path) -> tuple[Path, Path]:
    return project_and_home(tmp_path, {"app.py": ORIGINAL})


def apply_workflow(root: Path, verify: str) -> Path:
    edits = [
        {"path": "app.py", "old": "return a - b", "new": "return a + b"},
        {"path": "pkg/new.py", "content": "NEW = 1\n"},
    ]
    return answered_apply_workflow(
        root.parent / "apply.toml",
        root.parent / "answer.json",
        json.dumps({"edits": edits}),
        verify,
    )


def escaping_verify(tmp_path: Path, mark: str, how: str) -> str:
    """A verify that says it runs, then starts (through ``how``: ``timeout 300`` or
    ``setsid``) a command that writes into the tree once ``go`` appears."""
    ready, go = tmp_path / "ready", tmp_path / "go"
    late = f"while [ ! -e {go} ]; do sleep 0.05; done; echo late > escaped.txt; : {mark}"
    return f"touch {ready}; {how} sh -c '{late}'"


def start(root: Path, home: Path, wf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        muxlang_argv("-C", str(root), "run", str(wf), "--output", "json"),
        cwd=root,
        env=subprocess_env(home, MUXLANG_KILL_GRACE="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_running(mark: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not processes_with(mark):
        if proc.poll() is not None:
            raise AssertionError(f"muxlang ended early: {proc.communicate()[1].decode()}")
        if time.monotonic() > deadline:
            raise AssertionError("the escaping command never started")
        time.sleep(0.02)


def finish(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_never_writes(tmp_path: Path, root: Path, mark: str) -> None:
    """The escaped command is gone; let it go anyway: nothing is written."""
    assert processes_with(mark) == []
    (tmp_path / "go").touch()
    time.sleep(0.3)  # what it would have needed to write (it is gone: nothing does)
    assert not (root / "escaped.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "sig", "status"),
    [
        ("timeout 300", signal.SIGINT, 130),
        ("setsid", signal.SIGINT, 130),
        ("timeout 300", signal.SIGHUP, 143),
        ("setsid", signal.SIGTERM, 143),
    ],
)
def test_a_stopped_run_stops_what_verify_started_outside_its_group(
    tmp_path: Path, mark: str, how: str, sig: signal.Signals, status: int
) -> None:
    """Ctrl-C, SIGTERM or SIGHUP while verify runs a command that left the group:
    the edits are rolled back, the command is gone, it never writes into the tree."""
    root, home = project(tmp_path)
    proc = start(root, home, apply_workflow(root, escaping_verify(tmp_path, mark, how)))
    wait_running(mark, proc)
    assert (root / "app.py").read_text() != ORIGINAL  # the edits are written
    proc.send_signal(sig)
    _out, err = finish(proc)
    assert proc.returncode == status, err.decode()
    assert "Traceback" not in err.decode()
    assert (root / "app.py").read_text() == ORIGINAL  # rolled back by the run itself
    assert not (root / "pkg").exists()
    assert not (root / ".muxlang" / "journal").exists()
    assert_never_writes(tmp_path, root, mark)


def shell_workflow(root: Path, run: str, *, step_timeout: str = "", top: str = "") -> Path:
    wf = root.parent / "shell.toml"
    wf.write_text(
        f"""{top}
[[steps]]
name = "work"
type = "shell"
run = {json.dumps(run)}
{step_timeout}
"""
    )
    return wf


@pytest.mark.slow
@pytest.mark.parametrize("how", ["timeout 300", "setsid"])
@pytest.mark.parametrize("which", ["step", "workflow"])
def test_a_timeout_stops_what_a_step_started_outside_its_group(
    tmp_path: Path, mark: str, how: str, which: str
) -> None:
    root, home = project(tmp_path)
    late = f"while [ ! -e {tmp_path / 'go'} ]; do sleep 0.05; done; echo late > escaped.txt"
    run = f"{how} sh -c '{late}; : {mark}' & wait"
    if which == "step":
        wf = shell_workflow(root, run, step_timeout="timeout = 1")
    else:
        wf = shell_workflow(root, run, top="timeout = 1")
    done = run_muxlang(
        root,
        "run",
        str(wf),
        "--output",
        "json",
        env=subprocess_env(home, MUXLANG_KILL_GRACE="2"),
    )
    report = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr.decode()
    assert "timed out" in (report["steps"]["work"]["error"] or "") + (report["error"] or "")
    assert_never_writes(tmp_path, root, mark)


@pytest.mark.slow
def test_a_finished_step_leaves_no_daemon_behind(tmp_path: Path, mark: str) -> None:
    """A step that succeeds after starting a `setsid` background command: the
    command does not outlive the step (so not the run either)."""
    root, home = project(tmp_path)
    wf = shell_workflow(root, f"setsid sh -c 'sleep 300; : {mark}' >/dev/null 2>&1 & echo started")
    done = run_muxlang(root, "run", str(wf), "--output", "json", env=subprocess_env(home))
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["steps"]["work"]["output"] == "started"
    assert wait_gone(mark, timeout=1) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_sighup_stops_serve_like_sigterm_and_its_cli_children(tmp_path: Path, mark: str) -> None:
    """`muxlang serve` gets SIGHUP while a CLI backend answers a request: it stops
    gracefully (exit 0, as after SIGTERM) and the backend's processes are gone."""
    root, home = project(tmp_path)
    (root / ".muxlang").mkdir()
    (root / ".muxlang" / "config.toml").write_text(
        f"""
[backends.slow]
command = "sh"
args = ["-c", "setsid sh -c 'sleep 300; : {mark}' & sleep 300; : {mark}"]
prompt_via = "stdin"
"""
    )
    port = free_port()
    proc = subprocess.Popen(
        muxlang_argv("-C", str(root), "serve", "--port", str(port)),
        cwd=root,
        env=subprocess_env(home, MUXLANG_KILL_GRACE="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                httpx.get(url + "/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.1)

        def ask() -> None:
            # the gateway is stopping: an error or a cut connection is fine
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(
                    url + "/v1/chat/completions",
                    json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]},
                    timeout=60,
                )

        client = threading.Thread(target=ask, daemon=True)
        client.start()
        deadline = time.monotonic() + 30
        while len(processes_with(mark)) < 2:
            assert time.monotonic() < deadline, "the backend never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        _out, err = proc.communicate(timeout=60)
        client.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "muxlang serve: stopped" in err.decode()
    assert processes_with(mark) == []


@pytest.mark.slow
def test_sighup_from_a_closed_terminal_rolls_back_the_run(tmp_path: Path, mark: str) -> None:
    """`muxlang run` in a terminal that is closed while verify runs: the kernel's
    SIGHUP stops it as SIGTERM does (rollback, children gone), though the terminal
    it would report on is gone."""
    import pty

    root, home = project(tmp_path)
    wf = apply_workflow(root, escaping_verify(tmp_path, mark, "timeout 300"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the pty
        try:
            os.chdir(root)
            env = subprocess_env(home, MUXLANG_KILL_GRACE="2")
            argv = muxlang_argv("-C", str(root), "run", str(wf))
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.set_blocking(fd, False)
    try:
        deadline = time.monotonic() + 60
        while not processes_with(mark):
            assert time.monotonic() < deadline, "verify never started"
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 65536)  # keep the terminal drained
            time.sleep(0.02)
        os.close(fd)  # the terminal window closes: the kernel sends SIGHUP
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "muxlang did not stop after the hangup"
            time.sleep(0.05)
    finally:
        with_pid = processes_with(mark)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert os.waitstatus_to_exitcode(status) == 143
    assert (root / "app.py").read_text() == ORIGINAL
    assert not (root / "pkg").exists()
    assert with_pid == []
    assert_never_writes(tmp_path, root, mark)


@pytest.mark.slow
def test_a_step_ending_leaves_another_running_steps_processes_alone(
    tmp_path: Path, mark: str
) -> None:
    """Step `a` has an orphaned `setsid` child (already muxlang's, as a subreaper)
    while step `b` ends: `b`'s sweep must not take `a`'s process; `a`'s own end does."""
    root, home = project(tmp_path)
    go = tmp_path / "go"
    wf = root.parent / "two.toml"
    # the steps' own command lines must not hold the marker (pgrep -f would find
    # them): the child gets it from a variable, pgrep looks for it as "[m]arker"
    pattern = f"[{mark[0]}]{mark[1:]}"
    a = (
        f'X={mark[:4]}; (setsid sh -c "sleep 300; : ${{X}}{mark[4:]}" >/dev/null 2>&1 &); '
        f"while [ ! -e {go} ]; do sleep 0.05; done; sleep 0.5; "
        f"if pgrep -f '{pattern}' >/dev/null; then echo alive; else echo gone; fi"
    )
    b = f"while ! pgrep -f '{pattern}' >/dev/null; do sleep 0.05; done; touch {go}"
    wf.write_text(
        f'[[steps]]\nname = "a"\ntype = "shell"\nrun = {json.dumps(a)}\n\n'
        f'[[steps]]\nname = "b"\ntype = "shell"\nrun = {json.dumps(b)}\n'
    )
    done = run_muxlang(root, "run", str(wf), "--output", "json", env=subprocess_env(home))
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["steps"]["a"]["output"] == "alive"  # b's end did not stop it
    assert wait_gone(mark, timeout=1) == []  # a's end did

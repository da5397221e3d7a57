"""Helpers for the run-record tests: the real ``muxlang`` CLI as a subprocess.

(A module of its own, not conftest.py: ``from conftest import`` finds whichever
directory's conftest pytest imported last.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.fakes.llm_server import FakeLLMServer, Reply

PYTHON = sys.executable
FAKE_LLM = Path(__file__).resolve().parents[1] / "fakes" / "bin" / "fake-llm"


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without muxlang's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXLANG_")}
    env["XDG_CONFIG_HOME"] = env.get("MUXLANG_TEST_XDG", "/nonexistent-xdg")
    # the user secret that keys the answer cache (records.userkey): not the tester's
    env["XDG_STATE_HOME"] = os.path.join(tempfile.gettempdir(), "muxlang-test-state")
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def mux(
    root: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``muxlang -C root ARGS`` to its end, output captured as text."""
    return subprocess.run(
        [PYTHON, "-m", "muxlang", "-C", str(root), *args],
        cwd=root,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def mux_json(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Any:
    done = mux(root, *args, "--output", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_run(root: Path, *, capture: bool = False) -> subprocess.Popen[str]:
    """``muxlang -C root run wf.toml`` started, not waited for; its output kept
    (as text) when ``capture``, else dropped."""
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [PYTHON, "-m", "muxlang", "-C", str(root), "run", "wf.toml"],
        cwd=root,
        env=clean_env(),
        stdout=stream,
        stderr=stream,
        text=True,
    )


@contextlib.contextmanager
def run_to_kill(root: Path, pid_file: Path) -> Iterator[subprocess.Popen[str]]:
    """:func:`start_run` for the ``with`` block; after it, the run and the process
    whose pid the workflow wrote to ``pid_file`` are killed if they still live."""
    proc = start_run(root)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid_file.exists() and pid_file.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


def wait_for_pid(pid_file: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until the run's slow step wrote its pid to ``pid_file`` (the run must
    still be running meanwhile)."""
    deadline = time.monotonic() + timeout
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the slow step never started"
        assert proc.poll() is None, "the run ended before the slow step"
        time.sleep(0.02)


#: how a run stopped by each signal exits (Ctrl-C: 130, SIGTERM: 143, killed)
STOPPED_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


def stop_when_hung(root: Path, how: signal.Signals) -> None:
    """Run wf.toml; once a step wrote ``slow.pid``, send the run ``how`` and see it
    exit as that signal makes it."""
    pid_file = root / "slow.pid"
    with run_to_kill(root, pid_file) as proc:
        wait_for_pid(pid_file, proc)
        proc.send_signal(how)
        assert proc.wait(timeout=60) == STOPPED_EXIT[how]
    pid_file.unlink()


#: the edit the fake LLM answers in :func:`fix_project`
EDIT = json.dumps({"path": "f.txt", "content": "new\n"})


def fix_project(
    root: Path, server: FakeLLMServer, name: str, more: str = "", *, protocol: bool = True
) -> None:
    """f.txt holding "old", ``server`` answering :data:`EDIT` (f.txt to "new"), and
    as wf.toml a workflow ``name`` whose query ``fix`` asks ``server`` (the backend
    ``fake``) for that edit and whose apply step ``write`` applies it; ``more``
    (keys of ``write``, or more steps) follows."""
    (root / "f.txt").write_text("old\n")
    server.default = lambda request: Reply.answer(EDIT)
    protocol_line = 'protocol = "openai"\n' if protocol else ""
    workflow = f"""\
name = "{name}"

[backends.fake]
command = "{server.url}/v1"
{protocol_line}model = "m"
max_retries = 0

[[steps]]
name = "fix"
type = "query"
backend = "fake"
prompt = "fix f.txt"

[[steps]]
name = "write"
type = "apply"
source = "fix"
"""
    write(root, workflow + more)


def write(root: Path, body: str, name: str = "wf.toml") -> Path:
    path = root / name
    path.write_text(textwrap.dedent(body))
    return path


def ran(project: Path, *, sort: bool = False) -> list[str]:
    """What the test's steps logged to ``ran.log`` since the last call (emptied
    now): the steps that really ran, as opposed to reused ones."""
    log = project / "ran.log"
    logged = log.read_text().split() if log.exists() else []
    log.write_text("")
    return sorted(logged) if sort else logged


def asker(url: str) -> str:
    """A workflow that asks the fake LLM at ``url`` about ``args.topic`` (``ask``),
    then fails in ``after`` unless the file ``ok`` exists."""
    return f"""\
name = "asker"
[backends.fake]
command = "{url}/v1"
protocol = "openai"
model = "m"
max_retries = 0
[args.topic]
default = "cats"
[[steps]]
name = "ask"
type = "query"
backend = "fake"
prompt = "tell me about {{{{ args.topic }}}}"
[[steps]]
name = "after"
type = "shell"
run = "test -f ok && echo done"
depends_on = ["ask"]
"""

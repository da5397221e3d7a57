"""Helpers of the reliability tests: time bounds, process and file census, plans.

Everything here is about *observing* what muxlang left behind: processes (found
by a unique marker in their argv), files (a hash of a whole tree), temp files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import trio

from muxlang.runtime import execute
from tests.fakes.scripted import ScriptedQueryService

REPO = Path(__file__).resolve().parents[2]
FAKE_BIN = REPO / "tests" / "fakes" / "bin"
PYTHON = sys.executable


class Hang(Exception):
    """An input took longer than its time bound (a hang, or something quadratic)."""


@contextlib.contextmanager
def time_bound(seconds: float, what: str = "input") -> Iterator[None]:
    """Fail with :class:`Hang` if the block runs longer than ``seconds`` (main thread only)."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"{what} did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def marker(prefix: str = "muxrel") -> str:
    """A unique word to put in argv, so /proc tells exactly which processes are ours."""
    return f"{prefix}{random.randrange(10**12):012d}"


def processes_with(word: str) -> list[int]:
    """Live (not zombie) processes with ``word`` in an argv item or the environment-free cmdline."""
    found = []
    needle = word.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def wait_gone(word: str, timeout: float = 5.0) -> list[int]:
    """Processes with ``word`` still alive after ``timeout`` (polling; [] is the good answer)."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_with(word)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_all(word: str) -> None:
    """Clean up after a failed test: SIGKILL what a marker names (only our own processes)."""
    for pid in processes_with(word):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def tree_hash(root: Path, *, skip: tuple[str, ...] = (".muxlang",)) -> dict[str, str]:
    """path -> sha256 (or 'link:TARGET' / 'dir') of everything under root, minus ``skip``."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames if not (rel_dir == "." and d in skip))
        for name in dirnames:
            path = Path(dirpath, name)
            key = os.path.relpath(path, root)
            out[key] = f"link:{os.readlink(path)}" if path.is_symlink() else "dir"
        for name in filenames:
            if rel_dir == "." and name in skip:
                continue
            path = Path(dirpath, name)
            key = os.path.relpath(path, root)
            if path.is_symlink():
                out[key] = f"link:{os.readlink(path)}"
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[key] = f"{digest}:{oct(path.stat().st_mode & 0o7777)}"
    return out


def stray_files(root: Path) -> list[str]:
    """Temp or backup files muxlang may have left anywhere under ``root``."""
    bad = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(".mux") or name.endswith((".tmp", ".muxtmp")) or "~" in name:
                bad.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(bad)


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for ``muxlang`` subprocesses: fake CLIs first on PATH, own
    HOME, and a private TMPDIR (``HOME/tmp``) so a test can check nothing is left there."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{FAKE_BIN}{os.pathsep}{Path(PYTHON).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(home / "tmp"),
    }
    env.update(extra)
    return env


def muxlang_argv(*args: str) -> list[str]:
    return [PYTHON, "-m", "muxlang", *args]


def run_muxlang(
    root: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``muxlang -C root ARGS`` as a subprocess to its end (within ``timeout``),
    its output captured; a non-zero exit is for the test to check."""
    return subprocess.run(
        muxlang_argv("-C", str(root), *args),
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def write_workflow(root: Path, body: str, name: str = "wf.toml") -> Path:
    path = root / name
    path.write_text(textwrap.dedent(body))
    return path


def plan_from_toml(
    root: Path, body: str, name: str = "wf.toml", environ: Mapping[str, str] | None = None
) -> Any:
    """A plan through the real loader, config layers and compiler (errors fail the test)."""
    from muxlang.compiler import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import load_config

    path = write_workflow(root, body, name)
    workflow, diagnostics = load_workflow(path)
    assert workflow is not None, diagnostics
    assert not [d for d in diagnostics if d.is_error], diagnostics
    env = dict(environ) if environ is not None else {"HOME": str(root)}
    config, more = load_config(root, workflow=workflow, environ=env)
    assert not [d for d in more if d.is_error], more
    plan, more = compile_workflow(workflow, config)
    assert plan is not None, more
    assert not [d for d in more if d.is_error], more
    return plan


def project_and_home(tmp_path: Path, files: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """A project ``tmp_path/p`` (a git root) holding ``files`` (path in the project
    -> text), and an empty ``tmp_path/home``: (root, home)."""
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    home = tmp_path / "home"
    home.mkdir()
    return root, home


def gateway_project(tmp_path: Path, config: str) -> tuple[Path, Path]:
    """A project ``tmp_path/p`` (a git root) with ``config`` as its
    ``.muxlang/config.toml``, and an empty ``tmp_path/home``: (root, home)."""
    return project_and_home(tmp_path, {".muxlang/config.toml": config})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(
    root: Path, env: dict[str, str], *extra: str, stdout: int = subprocess.PIPE
) -> tuple[subprocess.Popen[bytes], str]:
    """``muxlang serve`` for ``root`` on a free loopback port, once it answers
    ``/v1/models``: (the process, its URL). Stop it with :func:`stop_gateway`."""
    port = free_port()
    proc = subprocess.Popen(
        muxlang_argv("-C", str(root), "serve", "--port", str(port), *extra),
        cwd=root,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # generous: the machine is shared
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve exited")
        try:
            httpx.get(url + "/v1/models", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start")


def stop_gateway(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    proc.terminate()
    try:
        return proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


#: a query ``fix`` on the backend ``canned`` whose answer the apply step ``write`` applies
FIX_THEN_WRITE = """
[[steps]]
name = "fix"
type = "query"
backend = "canned"
prompt = "fix"

[[steps]]
name = "write"
type = "apply"
source = "fix"
"""

CANNED_APPLY = (
    """
[backends.canned]
command = "canned"
"""
    + FIX_THEN_WRITE
)


def answered_apply_workflow(
    path: Path, answer: Path, edits: str, verify: str | None = None, **apply_keys: bool
) -> Path:
    """Write at ``path`` a workflow whose query ``fix`` gets ``edits`` from a CLI
    backend (``cat`` of ``answer``, written here) and whose apply step ``write``
    applies them, with ``verify`` and any other ``apply_keys`` (booleans) of the step."""
    answer.write_text(edits)
    keys = [f"verify = {json.dumps(verify)}"] if verify is not None else []
    keys += [f"{key} = {'true' if value else 'false'}" for key, value in apply_keys.items()]
    lines = "\n".join(keys)
    backend = f"""
[backends.canned]
command = "sh"
args = ["-c", "cat {answer}"]
prompt_via = "stdin"
"""
    path.write_text(backend + FIX_THEN_WRITE + lines + "\n")
    return path


def canned_apply_plan(root: Path) -> Any:
    """A plan (written to ``root/wf.toml``) whose query ``fix`` on the backend
    ``canned`` feeds the apply step ``write``: script its answer with
    :func:`apply_canned`."""
    return plan_from_toml(root, CANNED_APPLY)


def apply_canned(plan: Any, edits: str) -> Any:
    """Run ``plan`` with the scripted answer ``edits`` for the backend ``canned``."""
    from muxlang.apply import execute_apply

    service = ScriptedQueryService({"canned": edits})
    return trio.run(lambda: execute(plan, args={}, query=service, apply=execute_apply))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def outcome(fn: Any, *args: Any, errors: tuple[type[BaseException], ...]) -> Any:
    """``fn(*args)``, or the exception it raised if that is one of ``errors``."""
    try:
        return fn(*args)
    except errors as exc:
        return exc

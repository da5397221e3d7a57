"""Subprocesses that never outlive their step: the one boundary to the OS.

Every child starts in its own session (so its own process group). When it is
cancelled (timeout, failure elsewhere, Ctrl-C) the whole group gets SIGTERM,
then SIGKILL after a grace period; when the child exits normally, whatever it
left running in its group is stopped the same way. stdout and stderr are read
as they come, so a child printing 50 MB never blocks on a full pipe.

Shell steps, CLI backends and apply's ``verify`` all run through :func:`run`;
``OSError`` from spawning is translated here into :class:`SpawnError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

GRACE_SECONDS = 5.0
#: internal, for tests: another grace period in seconds (the default stays 5 s)
GRACE_ENV = "MUXLANG_KILL_GRACE"
_CHUNK = 1 << 16
_POLL = 0.02


@dataclass(frozen=True, slots=True)
class ProcessResult:
    returncode: int
    #: as read (a bytearray: not copied into bytes, which would double a big output)
    stdout: bytes | bytearray
    stderr: bytes


class SpawnError(Exception):
    """The program could not be started (not found, not executable, bad cwd).
    ``errno`` is the OS error's number (``errno.E2BIG``: arguments too big), or None."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


OnChunk = Callable[[bytes | bytearray], Awaitable[None]]


async def run(
    argv: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    grace: float | None = None,
    on_stdout: OnChunk | None = None,
    keep_stdout: bool = True,
) -> ProcessResult:
    """Run ``argv`` to completion in its own process group.

    ``on_stdout`` sees each chunk of stdout as it arrives (for streaming); with
    ``keep_stdout=False`` stdout is not accumulated. Cancelling the calling scope
    stops the whole group (SIGTERM, ``grace`` seconds, SIGKILL) before returning;
    ``grace`` defaults to :func:`kill_grace`.
    """
    if grace is None:
        grace = kill_grace()
    problem = _nul_problem(argv, env)
    if problem is not None:
        raise SpawnError(problem)
    try:
        proc = await trio.lowlevel.open_process(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=os.fspath(cwd) if cwd is not None else None,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise SpawnError(_spawn_message(argv, cwd, exc, env), exc.errno) from exc

    stdout = bytearray()
    stderr = bytearray()
    assert proc.stdout is not None
    assert proc.stderr is not None
    out_stream, err_stream = proc.stdout, proc.stderr

    async def pump_stdout() -> None:
        while chunk := await out_stream.receive_some(_CHUNK):
            if keep_stdout:
                stdout.extend(chunk)
            if on_stdout is not None:
                await on_stdout(chunk)

    async def pump_stderr() -> None:
        while chunk := await err_stream.receive_some(_CHUNK):
            stderr.extend(chunk)

    async def feed_stdin() -> None:
        assert proc.stdin is not None
        async with proc.stdin:
            # a child that stops reading early is fine: its exit status tells the rest
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await proc.stdin.send_all(stdin or b"")

    try:
        async with trio.open_nursery() as nursery:
            pumps_done = trio.Event()

            async def pumps() -> None:
                async with trio.open_nursery() as inner:
                    inner.start_soon(pump_stdout)
                    inner.start_soon(pump_stderr)
                pumps_done.set()

            nursery.start_soon(pumps)
            if stdin is not None:
                nursery.start_soon(feed_stdin)
            await proc.wait()
            # The leader is gone; stop what it left in its group, which also
            # closes any copy of our pipes those children held.
            await _stop_group(proc, grace)
            with trio.move_on_after(1.0):
                await pumps_done.wait()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _stop_group(proc, grace)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    await stream.aclose()
    returncode = proc.returncode
    assert returncode is not None
    return ProcessResult(returncode, stdout, bytes(stderr))


def kill_grace() -> float:
    """The grace period between SIGTERM and SIGKILL: 5 s, or ``$MUXLANG_KILL_GRACE``
    (internal: lets tests of stubborn processes finish quickly)."""
    raw = os.environ.get(GRACE_ENV)
    if raw:
        try:
            value = float(raw)
        except ValueError:
            return GRACE_SECONDS
        if 0 <= value <= 60:
            return value
    return GRACE_SECONDS


async def _stop_group(proc: trio.Process, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for it to empty, then SIGKILL it."""
    pgid = proc.pid
    if not _group_alive(pgid) and proc.poll() is not None:
        return
    _killpg(pgid, signal.SIGTERM)
    with trio.move_on_after(grace):
        while proc.poll() is None or _group_alive(pgid):
            await trio.sleep(_POLL)
        return
    _killpg(pgid, signal.SIGKILL)
    await proc.wait()


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _nul_problem(argv: Sequence[str], env: Mapping[str, str] | None) -> str | None:
    """Why ``argv``/``env`` cannot reach a program: the OS ends strings at a NUL byte
    (binary output put into a command line or an ``env`` value)."""
    program = argv[0] if argv else "<nothing>"
    for name, value in (env or {}).items():
        if "\0" in name or "\0" in value:
            return (
                f"environment variable {name.replace(chr(0), '')!r} contains a NUL byte, "
                f"which cannot be passed to {program} (is it binary data?)"
            )
    for index, arg in enumerate(argv):
        if "\0" in arg:
            what = "the command" if index == 0 else f"argument {index} of {program}"
            return (
                f"{what} contains a NUL byte, which cannot be passed on a command line "
                '(is it binary data? pass it through a file, or prompt_via = "stdin")'
            )
    return None


def _spawn_message(
    argv: Sequence[str], cwd: str | Path | None, exc: OSError, env: Mapping[str, str] | None = None
) -> str:
    program = argv[0] if argv else "<nothing>"
    if exc.errno == errno.E2BIG:
        return _too_big_message(argv, env)
    if isinstance(exc, FileNotFoundError):
        if cwd is not None and not Path(cwd).is_dir():
            return f"working directory {os.fspath(cwd)!r} does not exist"
        return f"command not found: {program}"
    if isinstance(exc, PermissionError):
        return f"permission denied running {program}"
    return f"could not start {program}: {exc.strerror or exc}"


def _too_big_message(argv: Sequence[str], env: Mapping[str, str] | None) -> str:
    """E2BIG: name the biggest argument or variable (Linux caps each at 128 KiB)."""
    sizes = [(len(a.encode()), f"argument {i} of {argv[0]}") for i, a in enumerate(argv) if i]
    sizes += [(len(v.encode()), f"environment variable {k}") for k, v in (env or {}).items()]
    largest, what = max(sizes, default=(0, "the command line"))
    return (
        f"the command line and environment are too big for the operating system "
        f"(the largest is {what}, {largest:,} bytes; one argument or variable can hold "
        "at most 128 KiB): pass big values through a file or stdin"
    )

"""Subprocesses that never outlive their step: the one boundary to the OS.

Every child starts in its own session (so its own process group). When it is
cancelled (timeout, failure elsewhere, Ctrl-C) the whole group gets SIGTERM,
then SIGKILL after a grace period; when the child exits normally, whatever it
left running in its group is stopped the same way. stdout and stderr are read
as they come, so a child printing 50 MB never blocks on a full pipe.

A command can leave the group (coreutils ``timeout`` makes its own, ``setsid``
its own session). So on Linux muxlang is a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``): what a step leaves behind becomes muxlang's
child instead of init's. Every child gets a token in its environment
(``MUXLANG_PROCESS_TOKEN``), inherited by all it starts; once the step's group
is stopped, any child of muxlang carrying the step's token (or in the step's
session), with everything under it, is stopped the same way (SIGTERM, grace,
SIGKILL) and reaped — see :func:`_sweep`. Elsewhere only the group is stopped.

Output is bounded: more than :func:`output_limit` bytes on stdout stops the
command and raises :class:`OutputTooLarge`; of stderr only the last bytes
within the limit are kept.

Shell steps, CLI backends and apply's ``verify`` all run through :func:`run`;
``OSError`` from spawning is translated here into :class:`SpawnError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import itertools
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import trio

from muxlang._frozen import frozen
from muxlang.runtime import trace

GRACE_SECONDS = 5.0
#: internal, for tests: another grace period in seconds (the default stays 5 s)
GRACE_ENV = "MUXLANG_KILL_GRACE"
#: the environment variable that marks every process a step started
TOKEN_ENV = "MUXLANG_PROCESS_TOKEN"
#: how much a command may print on stdout by default (``[defaults] max_output``)
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
#: the limit in force for commands started from this context (the runtime sets it
#: from the configuration for a run; ``serve`` likewise)
OUTPUT_LIMIT: contextvars.ContextVar[int] = contextvars.ContextVar(
    "muxlang_output_limit", default=DEFAULT_MAX_OUTPUT
)
_CHUNK = 1 << 16
_POLL = 0.02
_PR_SET_CHILD_SUBREAPER = 36
_tokens = itertools.count(1)
_subreaper: bool | None = None


@frozen(slots=True)
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


class OutputTooLarge(SpawnError):
    """The command printed more than the output limit on stdout; it was stopped."""

    def __init__(self, program: str, limit: int) -> None:
        super().__init__(
            f"{program} printed more than {format_size(limit)} on stdout, the output limit "
            "([defaults] max_output); it was stopped. Raise max_output, or write big "
            "output to a file"
        )
        self.limit = limit


def format_size(size: int) -> str:
    """``67108864`` -> ``64 MiB``, ``10000000`` -> ``10 MB`` (a unit when it is exact)."""
    for unit, scale in (
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("GB", 10**9),
        ("MB", 10**6),
        ("kB", 10**3),
    ):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size:,} bytes"


def output_limit() -> int:
    """The stdout limit for commands started now (see :data:`OUTPUT_LIMIT`)."""
    return OUTPUT_LIMIT.get()


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
    max_output: int | None = None,
) -> ProcessResult:
    """Run ``argv`` to completion in its own process group.

    ``on_stdout`` sees each chunk of stdout as it arrives (for streaming); with
    ``keep_stdout=False`` stdout is not accumulated. Cancelling the calling scope
    stops the whole group (SIGTERM, ``grace`` seconds, SIGKILL) before returning;
    ``grace`` defaults to :func:`kill_grace`. Whatever the command started that
    left its group is stopped too (see the module's docstring). More than
    ``max_output`` bytes on stdout (default :func:`output_limit`) stop the command
    and raise :class:`OutputTooLarge`.
    """
    if grace is None:
        grace = kill_grace()
    limit = output_limit() if max_output is None else max_output
    problem = _nul_problem(argv, env)
    if problem is not None:
        raise SpawnError(problem)
    token = f"{os.getpid()}.{next(_tokens)}.{secrets.token_hex(4)}"
    child_env = dict(os.environ if env is None else env)
    child_env[TOKEN_ENV] = token
    sweeping = _become_subreaper()
    trace.outside()
    try:
        proc = await trio.lowlevel.open_process(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=os.fspath(cwd) if cwd is not None else None,
            env=child_env,
            start_new_session=True,
        )
    except OSError as exc:
        raise SpawnError(_spawn_message(argv, cwd, exc, env), exc.errno) from exc

    stdout = bytearray()
    stderr = bytearray()
    assert proc.stdout is not None
    assert proc.stderr is not None
    out_stream, err_stream = proc.stdout, proc.stderr
    flooded = False

    async def pump_stdout() -> None:
        nonlocal flooded
        total = 0
        while chunk := await out_stream.receive_some(_CHUNK):
            total += len(chunk)
            if total > limit:
                flooded = True
                _killpg(proc.pid, signal.SIGKILL)  # a flood: no grace, stop it now
                return
            if keep_stdout:
                stdout.extend(chunk)
            if on_stdout is not None:
                await on_stdout(chunk)

    async def pump_stderr() -> None:
        while chunk := await err_stream.receive_some(_CHUNK):
            stderr.extend(chunk)
            if len(stderr) > 2 * limit:
                del stderr[: len(stderr) - limit]  # keep the tail, where errors are

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
            if sweeping:
                await _sweep(token, proc.pid, grace)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    await stream.aclose()
    returncode = proc.returncode
    assert returncode is not None
    if flooded:
        shell = len(argv) > 1 and argv[1] == "-c" and Path(argv[0]).name in ("sh", "bash")
        raise OutputTooLarge("the command" if shell else f"`{argv[0]}`", limit)
    if len(stderr) > limit:
        del stderr[: len(stderr) - limit]
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


# --------------------------------------------------------------------------- escaped processes


def _become_subreaper() -> bool:
    """Make muxlang the child subreaper of what it starts (Linux); False elsewhere."""
    global _subreaper
    if _subreaper is None:
        _subreaper = False
        if sys.platform == "linux" and os.path.isdir("/proc/self/task"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def _children() -> set[int]:
    """muxlang's own child processes: those of its main thread, which is where the
    kernel hands orphans to a subreaper (the first live thread of its group) and
    which starts every step's command."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children", "rb") as f:
            return {int(pid) for pid in f.read().split()}
    except (OSError, ValueError):
        return set()


def _stat(pid: int) -> tuple[bytes, int, int] | None:
    """(state, parent pid, session id) of ``pid``, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0], int(fields[1]), int(fields[3])
    except (IndexError, ValueError):
        return None


def _has_token(pid: int, token: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read().split(b"\0")
    except OSError:
        return False


def _escaped(token: str, session: int) -> list[int]:
    """Live processes the step (``token``, leader ``session``) left: every child of
    muxlang that carries the step's token or is in its session, and all below it."""
    marked = f"{TOKEN_ENV}={token}".encode()
    roots = []
    for pid in _children():
        info = _stat(pid)
        if info is None or info[0] in (b"Z", b"X"):
            continue
        if info[2] == session or _has_token(pid, marked):
            roots.append(pid)
    if not roots:
        return []
    below: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None and info[0] not in (b"Z", b"X"):
                below.setdefault(info[1], []).append(int(entry))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(below.get(pid, ()))
    return found


def _reap(pids: set[int]) -> None:
    """Collect the exit status of those of ``pids`` that became muxlang's children
    and died (so no zombie stays); never touches another child."""
    for pid in list(pids):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # not (or no longer) our child: its own parent reaps it
        if done:
            pids.discard(pid)


async def _sweep(token: str, session: int, grace: float) -> None:
    """Stop what a finished or stopped step left outside its group: SIGTERM, up to
    ``grace`` seconds, then SIGKILL; and reap it."""
    found = _escaped(token, session)
    if not found:
        return
    seen = set(found)
    for pid in found:
        _kill(pid, signal.SIGTERM)
    with trio.move_on_after(grace):
        while found:
            await trio.sleep(_POLL)
            _reap(seen)
            found = _escaped(token, session)
            seen.update(found)
            for pid in found:
                _kill(pid, signal.SIGTERM)  # newly orphaned ones, and stubborn ones again
    for _ in range(50):
        found = _escaped(token, session)
        if not found:
            break
        seen.update(found)
        for pid in found:
            _kill(pid, signal.SIGKILL)
        await trio.sleep(_POLL)
        _reap(seen)
    _reap(seen)


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


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

"""The writing side of run recording: messages in, rows in the store.

A recording run (:class:`muxlang.records.recorder.Recorder`) describes what
happened as messages — ``("open", facts)``, ``("step", ...)``,
``("finish", ...)`` — and hands them to a channel:

- :class:`Pipe`: a child process (``python -I -S``: nothing from the working
  directory, the environment or site-packages; importing only this module,
  the store and the redaction) reads them from a pipe and does everything
  else: redaction, the step's rows, its definition hash, the SQLite
  transaction. The run pays one ``pickle`` and one ``write`` per batch of
  messages (:meth:`Pipe.send_many`; when the recorder sends, see
  :mod:`muxlang.records.recorder`). A write into the kernel's pipe survives a
  SIGKILL of the run: the child reads to the end of the pipe before it exits.
  The child sits in its own session, so Ctrl-C at the terminal does not stop it
  before it has written what the run said.
- :class:`Local`: the same :class:`Handler` in the run's own process, where a
  child cannot be started (no POSIX ``fork``/``exec``, no interpreter path).

The first error of the store (locked, corrupt, disk full) stops recording; the
child says it once on its stdout, the run prints it once, and goes on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from muxlang.records.digests import digest, source_text, split_steps
from muxlang.records.handler import Handler

#: (digest, source_text, split_steps: resume.py hashes the plan it compiled with these)
__all__ = [
    "Handler",
    "Local",
    "Pipe",
    "digest",
    "open_channel",
    "prestart",
    "source_text",
    "split_steps",
]

#: each write on the pipe: its length, then the pickle of a list of messages
_HEADER = struct.Struct("<I")
#: its line when the run's end is committed (it then closes the database alone)
DONE = b"done"
#: the pipe's capacity asked for (Linux; an unprivileged process may ask up to 1 MiB)
PIPE_SIZE = 1 << 20

# --------------------------------------------------------------------------- channels


class Local:
    """The handler in the run's own process (where no child can be started)."""

    def __init__(self) -> None:
        self.handler = Handler()
        self.said = False

    def send(self, message: tuple[Any, ...]) -> None:
        self.handler.handle([message])

    def send_many(self, messages: list[tuple[Any, ...]]) -> None:
        self.handler.handle(messages)

    def poll(self) -> str | None:
        """The store's error, the first time it is asked after it happened."""
        if self.handler.error is not None and not self.said:
            self.said = True
            return self.handler.error
        return None

    def close(self) -> str | None:
        """Stop; the store's error if it has not been said yet."""
        self.handler.close()
        return self.poll()


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Write ``data`` whole (a large message goes into the pipe in parts, as the
    child reads them)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Pipe:
    """A writer process fed through a pipe (see the module's doc)."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.proc = proc
        self.stdin = stdin
        self.stdout = stdout
        self.fd = stdin.fileno()
        self.reply = stdout.fileno()
        os.set_blocking(self.reply, False)
        self.answer = b""
        self.said = False
        self.closed = False
        #: the child said the run's end is written
        self.done = False

    def send(self, message: tuple[Any, ...]) -> None:
        self.send_many([message])

    def send_many(self, messages: list[tuple[Any, ...]]) -> None:
        """``messages`` in one write (one pickle of the list)."""
        try:
            data = pickle.dumps(messages, 5)
        except Exception:  # something in a record pickle cannot carry: as JSON would store it
            data = pickle.dumps(_plain(messages), 5)
        # header and message in one call, never joined: a step's 50 MB output
        # would be copied once more for nothing
        header = _HEADER.pack(len(data))
        written = os.writev(self.fd, (header, data)) - len(header)
        if written < 0:  # (a pipe takes at least 4 bytes unless a signal came first)
            _write_all(self.fd, header[len(header) + written :])
            written = 0
        _write_all(self.fd, memoryview(data)[written:])

    def poll(self) -> str | None:
        """The child's error (once), if it has said one; never waits."""
        try:
            while chunk := os.read(self.reply, 65536):
                self.answer += chunk
        except BlockingIOError:
            pass
        return self._said()

    def _said(self) -> str | None:
        """Read the child's complete lines: ``done``, or its error."""
        error = None
        while b"\n" in self.answer:
            line, _, self.answer = self.answer.partition(b"\n")
            if line == DONE:
                self.done = True
            elif not self.said and error is None:
                error = line.decode("utf-8", "replace")
        if error is not None:
            self.said = True
        return error

    def close(self, timeout: float = 120.0) -> str | None:
        """Let the child write what it was sent and wait until it says the run's end is
        written (or exits); its error if not said yet."""
        if self.closed:
            return None
        self.closed = True
        self.stdin.close()
        early = self.poll()
        deadline = time.monotonic() + timeout
        ended = False
        while not self.done and not ended:
            ready, _, _ = select.select([self.reply], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(self.reply, 65536)
            except BlockingIOError:
                continue
            ended = not chunk
            self.answer += chunk
            late = self._said()
            early = early if early is not None else late
        code: int | None = 0
        if not self.done:  # it exited (or hangs) before it wrote the end: why?
            try:
                code = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                code = None
        # after ``done`` it only closes the database (a WAL checkpoint) and exits alone
        self.stdout.close()
        if early is not None:
            return early
        if code is None and not self.said:
            self.said = True
            return "the record writer did not finish"
        if code != 0 and not self.said:
            self.said = True
            return f"the record writer stopped (exit status {code})"
        return None


Channel = Local | Pipe

#: what the child runs: this module, found where this copy of muxlang is
_BOOT = "import sys; sys.path.insert(0, {root!r}); from muxlang.records.writer import main; main()"


#: a writer started ahead (:func:`prestart`), for the next :func:`open_channel`
_ahead: list[Pipe] = []


def prestart() -> None:
    """Start the writer process now, for the run that comes (``muxlang run`` calls it
    before it loads and compiles the workflow, so the child's start overlaps that).
    Unused, it exits when this process does (its pipe closes)."""
    if _ahead:  # one already waits (a run before this one stopped before it started)
        return
    channel = open_channel()
    if isinstance(channel, Pipe):
        _ahead.append(channel)


def open_channel(*, local: bool = False) -> Channel:
    """A writer process when this platform can start one, else :class:`Local`."""
    if local or os.name != "posix" or not sys.executable:
        return Local()
    if _ahead:
        return _ahead.pop()
    root = str(Path(__file__).resolve().parents[2])
    try:
        proc = subprocess.Popen(
            # -I: nothing from the working directory (a repository's json.py would run
            # here) or from PYTHON* variables; -S: no site-packages
            [sys.executable, "-I", "-S", "-c", _BOOT.format(root=root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except (OSError, ValueError):
        return Local()
    if proc.stdin is None or proc.stdout is None:  # pragma: no cover - asked for above
        return Local()
    import fcntl  # POSIX only: here, after the check above

    if hasattr(fcntl, "F_SETPIPE_SZ"):
        # room for a burst of steps while the child waits between its reads
        with contextlib.suppress(OSError):
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    return Pipe(proc, proc.stdin, proc.stdout)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


# --------------------------------------------------------------------------- the child


class _Missing:
    """What a value of a class this process cannot import becomes: stored as null,
    as the JSON of records stores what is not JSON (the template's undefined value)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> None:  # type: ignore[misc]
        return None


class _Reader(pickle.Unpickler):
    """Unpickles what the run sent; the writer runs without site-packages, so a value
    whose module needs them (``muxlang.template`` needs lark) cannot be imported."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Missing


def _tell(line: bytes) -> None:
    """A line to the run (gone, if it was killed: the writer goes on all the same)."""
    with contextlib.suppress(OSError):
        os.write(1, line)


def _messages(buffer: bytearray) -> tuple[list[tuple[Any, ...]], int]:
    """The messages of the whole frames at the start of ``buffer`` (each frame is one
    write: a list of messages), and how many bytes they took."""
    out: list[tuple[Any, ...]] = []
    at = 0
    size = _HEADER.size
    while len(buffer) - at >= size:
        (length,) = _HEADER.unpack_from(buffer, at)
        if len(buffer) - at - size < length:
            break
        data = bytes(buffer[at + size : at + size + length])
        try:
            out.extend(pickle.loads(data))
        except (ImportError, AttributeError):  # a class this process cannot import
            out.extend(_Reader(io.BytesIO(data)).load())
        at += size + length
    return out, at


def main() -> None:
    """The child: read messages until the run closes the pipe (or dies), write them.

    What is in the pipe at one read is written in one transaction (the run writes
    a batch of steps at a time: see :mod:`muxlang.records.recorder`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handler = Handler()
    handler.on_finished = lambda: _tell(DONE + b"\n")
    buffer = bytearray()
    said = False
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        buffer += chunk
        if handler.error is not None:
            buffer.clear()  # stopped: drain the pipe, so the run never waits on it
            continue
        try:
            batch, used = _messages(buffer)
        except Exception as exc:
            handler.fail(exc)
            batch, used = [], len(buffer)
        del buffer[:used]
        error = handler.handle(batch)
        if error is not None and not said:
            said = True
            _tell(error.replace("\n", " ").encode("utf-8", "replace") + b"\n")
    handler.close()


if __name__ == "__main__":  # pragma: no cover - started by open_channel
    main()

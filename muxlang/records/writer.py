"""The writing side of run recording: messages in, rows in the store.

A recording run (:class:`muxlang.records.recorder.Recorder`) describes what
happened as messages — ``("open", facts)``, ``("step", ...)``,
``("finish", ...)`` — and hands them to a channel:

- :class:`Pipe`: a child process (``python -S``, importing only this module,
  the store and the redaction) reads them from a pipe and does everything
  else: redaction, the step's rows, its definition hash, the SQLite
  transaction. The run pays one ``pickle`` and one ``write`` per step. A write
  into the kernel's pipe survives a SIGKILL of the run, so every step that
  ended before the kill is still recorded: the child reads to the end of the
  pipe before it exits. The child sits in its own session, so Ctrl-C at the
  terminal does not stop it before it has written what the run said.
- :class:`Local`: the same :class:`Handler` in the run's own process, where a
  child cannot be started (no POSIX ``fork``/``exec``, no interpreter path).

The first error of the store (locked, corrupt, disk full) stops recording; the
child says it once on its stdout, the run prints it once, and goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from muxlang.records.digests import digest, fingerprints_of, source_text, split_steps, summary
from muxlang.records.secrets import redact, redact_value
from muxlang.records.store import StepRow, Store

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

#: each message on the pipe: its length, then its pickle
_HEADER = struct.Struct("<I")
#: seconds the child waits after each batch (a step is in the database at most this
#: much plus its write later; in the pipe, and so safe from a kill, at once)
GATHER = 0.005
#: the child's first line: it handles SIGUSR1 now
READY = b"ready\n"
#: the pipe's capacity asked for (Linux; an unprivileged process may ask up to 1 MiB)
PIPE_SIZE = 1 << 20

#: record fields that have columns of their own (the rest go to ``fields``)
_COLUMNS = frozenset(
    {
        "output",
        "status",
        "error",
        "duration_ms",
        "stderr",
        "exit_code",
        "backend",
        "usage",
        "cost",
        "results",
        "item",
    }
)


# --------------------------------------------------------------------------- the handler


class Handler:
    """Applies messages to the store; the first error stops it (``error`` says why)."""

    def __init__(self) -> None:
        self.store: Store | None = None
        self.run_id: str | None = None
        self.error: str | None = None
        self.secrets: tuple[str, ...] = ()
        self.types: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self.seq = 0

    def handle(self, batch: list[tuple[Any, ...]]) -> str | None:
        """Apply ``batch`` in order (the steps between a run's start and end in one
        transaction); returns the error that stopped the handler, if one did."""
        rows: list[StepRow] = []
        try:
            for message in batch:
                if self.error is not None:
                    return self.error
                kind = message[0]
                if kind == "step":
                    rows.extend(self._rows(*message[1:]))
                    continue
                self._save(rows)
                rows = []
                if kind == "open":
                    self._open(message[1])
                elif kind == "finish":
                    self._finish(*message[1:])
            self._save(rows)
        except Exception as exc:  # a store error, or a bug here: neither takes the run down
            self.fail(exc)
        return self.error

    def fail(self, exc: BaseException | str) -> None:
        if self.error is None:
            self.error = str(exc) or type(exc).__name__
        self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _open(self, facts: Mapping[str, Any]) -> None:
        secrets = self.secrets = tuple(facts["secrets"])
        self.types = facts["types"]
        self.fingerprints = fingerprints_of(facts)
        source = facts.get("source")
        self.store = Store(Path(facts["db"]))
        self.run_id = self.store.start_run(
            run_id=facts["id"],
            pid=facts["pid"],
            workflow=facts["workflow"],
            path=facts["path"],
            file_hash=hashlib.sha256(source).hexdigest() if source is not None else "",
            args=redact_value(facts["args"], secrets),
            team=facts["team"],
            version=facts["version"],
            plan=summary(facts),
            resumed_from=facts["resumed_from"],
            started=facts["started"],
        )

    def _save(self, rows: list[StepRow]) -> None:
        if rows and self.store is not None and self.run_id is not None:
            self.store.save_steps(self.run_id, rows)

    def _finish(self, status: str, error: str | None, final: str | None, ended: float) -> None:
        if self.store is None or self.run_id is None:
            return
        self.store.finish_run(
            self.run_id,
            status=status,
            error=redact(error, self.secrets) if error else None,
            final_step=final,
            ended=ended,
        )
        self.close()

    # ------------------------------------------------------------------ rows

    def _rows(
        self,
        name: str,
        record: Mapping[str, Any],
        reason: str | None,
        started: float | None,
        ended: float,
        sent: Mapping[str, Any] | None,
        items: list[Mapping[str, Any] | None] | None,
    ) -> list[StepRow]:
        self.seq += 1
        sent = sent or {}
        step = self._row(name, -1, record, started, ended, sent)
        rerun = sent.get("rerun")
        step.reason = reason or (f"ran again: {rerun}" if rerun else None)
        step.fingerprint = self.fingerprints.get(name)
        rows = [step]
        for index, item in enumerate(record.get("results") or ()):
            if not isinstance(item, Mapping):
                continue
            item_sent = (items[index] if items is not None and index < len(items) else None) or {}
            row = self._row(name, index, item, None, None, item_sent)
            row.item_value = redact_value(item.get("item"), self.secrets)
            rows.append(row)
        return rows

    def _row(
        self,
        name: str,
        index: int,
        record: Mapping[str, Any],
        started: float | None,
        ended: float | None,
        sent: Mapping[str, Any],
    ) -> StepRow:
        if started is None and isinstance(sent.get("started"), float):
            started = sent["started"]
            ended = started + int(record.get("duration_ms") or 0) / 1000
        secrets = self.secrets
        usage = record.get("usage") or {}
        exit_code = record.get("exit_code")
        attempts = record.get("attempts") or sent.get("attempts") or 0
        if not attempts and record.get("status") in ("success", "failed") and index < 0:
            attempts = 1
        fields = {k: v for k, v in record.items() if k not in _COLUMNS}
        if sent.get("members"):  # a parallel role's members: who answered, failed, was unavailable
            fields["members"] = sent["members"]
        origin = str(sent.get("origin") or "run")
        if origin != "run":  # nothing was spent by this run
            usage = {}
        cost = record.get("cost")
        return StepRow(
            name=name,
            item=index,
            seq=self.seq,
            kind=self.types.get(name, ""),
            status=str(record.get("status", "")),
            started=started,
            ended=ended,
            duration_ms=int(record.get("duration_ms") or 0),
            command=_redacted(sent.get("command"), secrets),
            prompt=_redacted(sent.get("prompt"), secrets),
            system=_redacted(sent.get("system"), secrets),
            output=_redacted(record.get("output"), secrets),
            stderr=_redacted(record.get("stderr"), secrets),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            backend=_redacted(record.get("backend"), secrets),
            attempts=int(attempts) if isinstance(attempts, int) else 0,
            input_tokens=_int(usage.get("input_tokens")) if isinstance(usage, Mapping) else 0,
            output_tokens=_int(usage.get("output_tokens")) if isinstance(usage, Mapping) else 0,
            cost=cost if isinstance(cost, int | float) and origin == "run" else None,
            error=_redacted(record.get("error"), secrets),
            origin=origin,
            fields=redact_value(fields, secrets),
        )


def _redacted(value: Any, secrets: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    return redact(str(value), secrets)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --------------------------------------------------------------------------- channels


class Local:
    """The handler in the run's own process (where no child can be started)."""

    def __init__(self) -> None:
        self.handler = Handler()
        self.said = False

    def send(self, message: tuple[Any, ...]) -> None:
        self.handler.handle([message])

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
        #: the child said it handles SIGUSR1 (see :func:`main`)
        self.ready = False

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            data = pickle.dumps(message, 5)
        except Exception:  # something in a record pickle cannot carry: as JSON would store it
            data = pickle.dumps(_plain(message), 5)
        data = _HEADER.pack(len(data)) + data
        written = os.write(self.fd, data)
        if written < len(data):  # a large message: the child reads it in parts
            view = memoryview(data)
            while written < len(data):
                written += os.write(self.fd, view[written:])

    def poll(self) -> str | None:
        """The child's error (once), if it has said one; never waits."""
        try:
            while chunk := os.read(self.reply, 65536):
                self.answer += chunk
        except BlockingIOError:
            pass
        return self._said()

    def _said(self) -> str | None:
        if self.answer.startswith(READY):
            self.ready = True
            self.answer = self.answer[len(READY) :]
        if self.said or b"\n" not in self.answer:
            return None
        self.said = True
        return self.answer.partition(b"\n")[0].decode("utf-8", "replace")

    def close(self, timeout: float = 120.0) -> str | None:
        """Let the child write what it was sent and wait for it; its error if not said."""
        if self.closed:
            return None
        self.closed = True
        self.stdin.close()
        early = self.poll()
        if self.ready:  # cut its pause short: it reads the end of the pipe now
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGUSR1)
        os.set_blocking(self.reply, True)
        try:
            self.answer += self.stdout.read()
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            if early is not None or self.said:
                return early
            return "the record writer did not finish"
        finally:
            self.stdout.close()
        said = early if early is not None else self._said()
        if said is None and code != 0 and not self.said:
            self.said = True
            return f"the record writer stopped (exit status {code})"
        return said


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
            [sys.executable, "-S", "-c", _BOOT.format(root=root)],
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


class _Wake(Exception):
    """Ends the writer's pause between reads (the run is waiting for it)."""


def _messages(buffer: bytearray) -> tuple[list[tuple[Any, ...]], int]:
    """The whole messages at the start of ``buffer``, and how many bytes they took."""
    out: list[tuple[Any, ...]] = []
    at = 0
    size = _HEADER.size
    while len(buffer) - at >= size:
        (length,) = _HEADER.unpack_from(buffer, at)
        if len(buffer) - at - size < length:
            break
        data = bytes(buffer[at + size : at + size + length])
        try:
            out.append(pickle.loads(data))
        except (ImportError, AttributeError):  # a class this process cannot import
            out.append(_Reader(io.BytesIO(data)).load())
        at += size + length
    return out, at


def main() -> None:
    """The child: read messages until the run closes the pipe (or dies), write them.

    What is in the pipe at one read is written in one transaction."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    closing: list[bool] = []

    def wake(signum: int, frame: Any) -> None:
        # the run closed the pipe and waits: do not finish the pause first
        closing.append(True)
        if sleeping:
            raise _Wake

    sleeping = False
    signal.signal(signal.SIGUSR1, wake)
    _tell(READY)  # from now on the run may cut a pause short (before: it would kill)
    handler = Handler()
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
        # let the next messages gather: a write into a pipe nobody waits on wakes
        # nobody, which is most of what a write costs the run
        if not closing:
            sleeping = True
            try:
                time.sleep(GATHER)
            except _Wake:
                pass
            finally:
                sleeping = False
    handler.close()


if __name__ == "__main__":  # pragma: no cover - started by open_channel
    main()

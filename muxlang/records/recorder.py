"""A reporter that records a run in the store as it goes (SPEC section 10).

:class:`Recorder` wraps the run's own reporter (console, json, jsonl, quiet): each
step's end becomes a message to a writer (:mod:`muxlang.records.writer`), then
goes on to the wrapped reporter. The writer is a child process fed through a
pipe; redaction (:func:`muxlang.records.secrets.redact`), rows, definition hashes
and SQLite transactions happen there, on the other core. A pipe's contents
outlive a SIGKILL of the run.

When a step's record goes into the pipe. A step that took a millisecond or more
(``duration_ms``, rounded) is written as it ends. A quicker one is held, and the
quick steps that end soon after it join it in one write (one ``pickle`` of the
batch, one ``write``): a write per step cost a no-op step a fifth of its time
(docs/performance.md §8). What is held is written

- before the run reaches outside its process (:func:`muxlang.runtime.trace.outside`:
  a command starts, a request is sent, an apply writes its journal), so nothing
  that a step's end let start is seen outside before that step's record is safe;
- before the wrapped reporter shows the step's end, when it shows ends as they
  happen (``shows_steps``: the console, jsonl), so what the user saw end is kept;
- and at the latest :data:`WINDOW` after the first of it ended, whether the run
  waits or is busy in its own process.

A run killed at any moment therefore keeps every finished step, except steps
that took under a millisecond, ended within the last :data:`WINDOW`, and whose
end nothing outside the process saw: a ``--resume`` redoes those in under a
millisecond each.

A store that fails (locked, corrupt, disk full) never fails the run: the
first error is said once on stderr, recording stops, and the run goes on. At
its end the run waits for the writer, so that the history is complete when
``muxlang run`` exits. Where no child process can be started the same writer
runs in the run's own process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import trio

from muxlang.records.store import new_id
from muxlang.records.writer import Channel, open_channel
from muxlang.runtime.events import Reporter
from muxlang.runtime.trace import Trace

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.runtime.scheduler import RunResult

#: how often (seconds) a run looks whether the writer said it stopped
POLL_EVERY = 0.25
#: the longest (seconds) a step's record is held before it is written: at once when
#: the run reaches outside its process or shows the step's end (see :meth:`flush`)
WINDOW = 0.005


def muxlang_version() -> str:
    from muxlang import __version__

    return __version__


def plan_facts(plan: Plan) -> dict[str, Any]:
    """What the writer needs of a plan (:func:`muxlang.records.writer.summary` and
    :func:`~muxlang.records.writer.fingerprints_of`): order, edges, step types and
    for_each steps; the workflow file's bytes as compiled and where each step starts
    in it; for steps with no text there (a plan built in memory) their definition as
    plain data; each query step's backends, and the identity of each backend or role
    once. Flat lists and strings, so that the run allocates little for it."""
    from muxlang.records.digests import source_text
    from muxlang.records.resume import definition
    from muxlang.runtime.accounting import identity
    from muxlang.workflow import QueryStep

    try:
        source: bytes | None = Path(plan.workflow.path).read_bytes()
    except OSError:
        source = None
    written = plan.workflow.steps
    if source is None or source_text(source) is None:
        written = ()
    steps = {step.name: step for step in plan.workflow.steps}
    if len(steps) != len(plan.order) or not all(name in steps for name in plan.order):
        steps = {name: plan.step(name).step for name in plan.order}
    asks = {
        name: f"role:{step.role.name}"
        if step.role is not None
        else f"backend:{step.backend.name if step.backend is not None else ''}"
        for name, step in steps.items()
        if isinstance(step, QueryStep) and (step.role is not None or step.backend is not None)
    }
    identities = {
        key: identity(plan, key.partition(":")[2], key.partition(":")[0])
        for key in set(asks.values())
    }
    known = {step.name for step in written}
    edges = list(plan.graph.edges)
    return {
        "order": list(plan.order),
        "sources": [a for a, _ in edges],
        "targets_of": [b for _, b in edges],
        "types": {name: step.type for name, step in steps.items()},
        "for_each": [name for name in plan.order if steps[name].for_each is not None],
        "source": source,
        "names": [step.name for step in written],
        "lines": [step.span.line for step in written],
        "definitions": {
            name: definition(step) for name, step in steps.items() if name not in known
        },
        "targets": asks,
        "identities": identities,
    }


def _abort(raise_cancel: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


class Recorder:
    """Records the run, then passes each event on to ``inner``."""

    def __init__(
        self,
        inner: Reporter,
        path: Path,
        *,
        args: Mapping[str, Any],
        secrets: tuple[str, ...],
        trace: Trace | None = None,
        stderr: IO[str] | None = None,
        resumed_from: str | None = None,
        channel: Channel | None = None,
    ) -> None:
        self.inner = inner
        # nothing to record for these: the scheduler calls the wrapped reporter's own
        self.step_started: Callable[[str], None] = inner.step_started
        self.item_finished: Callable[[str, int, int], None] = inner.item_finished
        self.path = path
        self.args = dict(args)
        self.secrets = secrets
        self.trace = trace
        self.stderr = stderr if stderr is not None else sys.stderr
        self.resumed_from = resumed_from
        self.plan: Plan | None = None
        self.root: Path | None = None
        self.run_id: str | None = None
        #: when each repeating step started (its pending rows, :meth:`_iteration`)
        self.started: dict[str, float] = {}
        #: per repeating step, when its row may be written again (_iteration)
        self.kept: dict[str, float] = {}
        self.warned = False
        self.types: dict[str, str] = {}
        self.polled = 0.0
        #: messages not yet handed to the channel (see :meth:`flush`)
        self.pending: list[tuple[Any, ...]] = []
        #: (a step's end is held as (name, record, reason, ended): see :meth:`flush`)
        #: when the oldest of them must be written (time.time())
        self.due = 0.0
        #: hand each step's record over before the wrapped reporter shows its end
        self.eager = getattr(inner, "shows_steps", False)
        #: the task that writes what is held (:meth:`_flushing`), when it waits for a
        #: first message
        self.idle: trio.lowlevel.Task | None = None
        self.flushing: trio.CancelScope | None = None
        #: apply and ``uses`` steps (their records get more before they are sent)
        self.special: frozenset[str] = frozenset()
        # started now, so that the child gets ready while the run starts
        self.channel: Channel | None = channel if channel is not None else open_channel()

    # The optional reporter methods, passed on when the wrapped reporter has them (no
    # ``__getattr__``: a class with one makes every attribute lookup on it slow).

    def backend_retry(self, error: Any, attempt: int, delay: float) -> None:
        forward = getattr(self.inner, "backend_retry", None)
        if forward is not None:
            forward(error, attempt, delay)

    def nested_started(self, name: str) -> None:
        forward = getattr(self.inner, "nested_started", None)
        if forward is not None:
            forward(name)

    def nested_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        forward = getattr(self.inner, "nested_finished", None)
        if forward is not None:
            if self.eager:
                self.flush()
            forward(name, record, reason)

    # ------------------------------------------------------------------ faults

    def _failed(self, exc: BaseException | str) -> None:
        """Stop recording; say so once."""
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(OSError):
                said = channel.close()
                if said is not None:  # the writer's own reason (a broken pipe says little)
                    exc = said
        self.run_id = None
        if hasattr(self.inner, "run_id"):
            self.inner.run_id = None
        if not self.warned:
            self.warned = True
            self.stderr.write(
                f"warning: this run is not being recorded: {exc} "
                "(the run goes on; --no-record silences this)\n"
            )
            self.stderr.flush()

    def _send(self, message: tuple[Any, ...], now: float, *, at_once: bool = False) -> None:
        pending = self.pending
        if not pending:
            self.due = now + WINDOW
            if self.idle is not None:
                trio.lowlevel.reschedule(self.idle)
                self.idle = None
        pending.append(message)
        if at_once or self.eager or now >= self.due:
            self.flush()

    async def _flushing(self) -> None:
        """Beside the run: whatever is held is written :data:`WINDOW` after the first
        of it (the run may be busy, or waiting for a step that takes long)."""
        with trio.CancelScope() as self.flushing:
            while True:
                if not self.pending:
                    self.idle = trio.lowlevel.current_task()
                    await trio.lowlevel.wait_task_rescheduled(_abort)
                await trio.sleep(WINDOW)
                try:
                    self.flush()
                except Exception as exc:  # a bug here must not take the run down
                    self._failed(exc)

    def flush(self) -> None:
        """Hand the messages held so far to the channel, in one write."""
        pending = self.pending
        if not pending:
            return
        self.pending = []
        channel = self.channel
        if channel is None:
            return
        try:
            channel.send_many(
                [m if len(m) != 4 else self._message(*m) for m in pending]  # (held step ends)
            )
        except Exception as exc:  # the writer is gone (or a bug): the run goes on
            self._failed(exc)
            return
        now = time.time()
        if now - self.polled > POLL_EVERY:
            self._poll(now)

    def _poll(self, now: float) -> None:
        self.polled = now
        if self.channel is not None:
            try:
                said = self.channel.poll()
            except OSError as exc:
                said = str(exc)
            if said is not None:
                self._failed(said)

    # ------------------------------------------------------------------ events

    def run_started(self, plan: Plan) -> None:
        self.root = plan.config.project_root
        self.plan = plan
        started = self.polled = time.time()
        run_id = new_id(started)
        if self.channel is not None:
            try:
                facts = plan_facts(plan)
                self.types = facts["types"]
                self.special = frozenset(
                    name for name, kind in self.types.items() if kind in ("apply", "uses")
                )
                facts.update(
                    db=str(self.path),
                    id=run_id,
                    pid=os.getpid(),
                    secrets=self.secrets,
                    workflow=plan.workflow.name,
                    path=plan.workflow.path,
                    args=self.args,
                    team=plan.config.team,
                    version=muxlang_version(),
                    resumed_from=self.resumed_from,
                    started=started,
                )
                self.channel.send(("open", facts))
                self.run_id = run_id
            except Exception as exc:  # a bug or a dead writer must not take the run down
                self._failed(exc)
            self._poll(started)
        if self.run_id is not None and hasattr(self.inner, "run_id"):
            self.inner.run_id = self.run_id
        if self.trace is not None:
            self.trace.on_iteration = self._iteration
            self.trace.on_outside = self.flush
        with contextlib.suppress(RuntimeError):  # (called outside trio: no task beside it)
            trio.lowlevel.spawn_system_task(self._flushing, name="muxlang records")
        self.inner.run_started(plan)

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        if self.channel is not None:
            ended = time.time()
            if name in self.special or "iterations" in record:
                message = self._message(name, record, reason, ended)
            else:  # the rest is done for a whole batch (see :meth:`flush`)
                message = (name, record, reason, ended)
            # a step that took a millisecond (rounded) or more is written now: only
            # what redoes in under one is held
            self._send(message, ended, at_once=bool(record.get("duration_ms")))
        self.inner.step_finished(name, record, reason)

    def _message(
        self, name: str, record: Mapping[str, Any], reason: str | None, ended: float
    ) -> tuple[Any, ...]:
        """A step's message to the writer: its record (with what only some steps
        add), what it sent, when it started (``duration_ms`` before its end; it never
        started if it was skipped) and ended."""
        saved = record
        kind = self.types.get(name)
        if kind == "apply" and record.get("status") == "success":
            saved = self._with_file_hashes(record)
        if kind == "uses" or "iterations" in record:
            from muxlang.records.nested import nested_record

            # what ran inside, for a --resume that reuses it piece by piece
            nested = nested_record(self.plan, name, record, self.trace, self.root)
            if nested is not None:
                saved = {**saved, "nested": nested}
        sent = items = None
        if self.trace is not None:
            found = self.trace.sent
            sent = found.get((name, -1))
            results = record.get("results")
            if results:
                items = [found.get((name, index)) for index in range(len(results))]
        started = None
        if record.get("status") != "skipped":
            started = ended - (record.get("duration_ms") or 0) / 1000
        return ("step", name, saved, reason, started, ended, sent, items)

    def _iteration(self, name: str, record: Mapping[str, Any]) -> None:
        """An iteration of a repeating step, or a nested step of a ``uses`` call
        (:mod:`muxlang.runtime.calls`), ended: the step's row so far, ``pending``
        (replaced when the step ends), so that a killed run keeps it for --resume.

        The row holds every iteration so far, so writing it costs more each time
        (here, and more in the writer): after a write that took T, the next waits
        until 40 T, at most 50 ms, have passed. Iterations that take 50 ms or more
        are all kept; of quick ones, a killed run loses at most the last 50 ms'
        worth, and a thousand of them cost ~5% more CPU instead of ~2x."""
        channel = self.channel
        begun = time.perf_counter()
        if channel is None or begun < self.kept.get(name, 0.0):
            return
        from muxlang.records.nested import nested_record

        saved: dict[str, Any] = {**record, "status": "pending"}
        nested = nested_record(self.plan, name, saved, self.trace, self.root)
        if nested is not None:
            saved["nested"] = nested
        sent = self.trace.sent.get((name, -1)) if self.trace is not None else None
        ended = time.time()
        started = self.started.setdefault(name, sent.get("started", ended) if sent else ended)
        self._send(("step", name, saved, None, started, ended, sent, None), ended)
        now = time.perf_counter()
        self.kept[name] = now + min(40 * (now - begun), 0.05)

    def _with_file_hashes(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """The record with the hashes of the bytes the apply wrote, for --resume."""
        if self.root is None:
            return record
        from muxlang.records.resume import file_hashes

        return {**record, "file_hashes": file_hashes(self.root, record.get("files"))}

    def run_finished(self, result: RunResult) -> None:
        if self.flushing is not None:
            self.flushing.cancel()
            self.idle = None
        self.flush()
        channel = self.channel
        if channel is not None:
            if result.interrupted:
                status = "interrupted"
            else:
                status = "success" if result.success else "failed"
            said: str | None = None
            try:
                if self.run_id is not None:
                    channel.send(("finish", status, result.error, result.final_step, time.time()))
                said = channel.close()  # the history is whole when the run exits
            except Exception as exc:
                said = str(exc) or type(exc).__name__
            self.channel = None
            if said is not None:
                self._failed(said)
        self.inner.run_finished(result)

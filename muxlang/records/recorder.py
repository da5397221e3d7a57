"""A reporter that records a run in the store as it goes (SPEC section 10).

:class:`Recorder` wraps the run's own reporter (console, json, jsonl, quiet):
every event goes to the store, then to the wrapped reporter. A step's rows are
committed when the step ends, so a run killed at any moment leaves every
finished step recorded. Everything recorded passes through
:func:`muxlang.records.secrets.redact` first.

A store that fails (locked, corrupt, disk full) never fails the run: the first
error is said once on stderr, recording stops, and the run goes on.

Each step is one small transaction (WAL mode: no fsync per commit), written
synchronously from the run's thread before its dependents start — the price,
some tens of microseconds per step, is measured in bench/records.py and
quoted in docs/performance.md. A writer thread that batched commits was
measured too: it cost as much CPU and left a window in which a killed run
lost steps that had finished.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from muxlang.records.secrets import redact, redact_value
from muxlang.records.store import StepRow, Store, StoreError
from muxlang.runtime.events import Reporter
from muxlang.runtime.trace import Trace

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.runtime.scheduler import RunResult

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


def file_hash(path: str) -> str:
    """sha256 of a workflow file's bytes ('' when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def plan_summary(plan: Plan) -> dict[str, Any]:
    """What the history needs of a plan: order, edges, step types, for_each steps."""
    return {
        "order": list(plan.order),
        "edges": [[a, b] for a, b in plan.graph.edges],
        "types": {name: plan.step(name).step.type for name in plan.order},
        "for_each": [name for name in plan.order if plan.step(name).step.for_each is not None],
    }


def muxlang_version() -> str:
    from muxlang import __version__

    return __version__


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
    ) -> None:
        self.inner = inner
        self.path = path
        self.args = dict(args)
        self.secrets = secrets
        self.trace = trace
        self.stderr = stderr if stderr is not None else sys.stderr
        self.resumed_from = resumed_from
        #: each step's definition/backends hash, for a later --resume
        self.fingerprints: dict[str, str] | None = None
        self.plan: Plan | None = None
        self.root: Path | None = None
        self.store: Store | None = None
        self.run_id: str | None = None
        self.started: dict[str, float] = {}
        self.seq = 0
        self.warned = False
        self.types: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        # optional reporter methods (backend_retry, ...) reach the wrapped reporter
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ faults

    def _failed(self, exc: Exception) -> None:
        """Stop recording; say so once."""
        if self.store is not None:
            self.store.close()
            self.store = None
        self.run_id = None
        if not self.warned:
            self.warned = True
            self.stderr.write(
                f"warning: this run is not being recorded: {exc} "
                "(the run goes on; --no-record silences this)\n"
            )
            self.stderr.flush()

    # ------------------------------------------------------------------ events

    def run_started(self, plan: Plan) -> None:
        summary = plan_summary(plan)
        self.types = summary["types"]
        self.root = plan.config.project_root
        self.plan = plan
        try:
            self.store = Store(self.path)
            self.run_id = self.store.start_run(
                workflow=plan.workflow.name,
                path=plan.workflow.path,
                file_hash=file_hash(plan.workflow.path),
                args=redact_value(self.args, self.secrets),
                team=plan.config.team,
                version=muxlang_version(),
                plan=summary,
                resumed_from=self.resumed_from,
            )
        except (StoreError, OSError) as exc:
            self._failed(exc)
        if self.run_id is not None and hasattr(self.inner, "run_id"):
            self.inner.run_id = self.run_id
        self.inner.run_started(plan)

    def step_started(self, name: str) -> None:
        self.started[name] = time.time()
        self.inner.step_started(name)

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        if self.store is not None and self.run_id is not None:
            snapshot = dict(record)
            if (
                self.types.get(name) == "apply"
                and snapshot.get("status") == "success"
                and self.root is not None
            ):
                from muxlang.records.resume import file_hashes

                # the bytes the apply wrote, for --resume to compare with
                snapshot["file_hashes"] = file_hashes(self.root, snapshot.get("files"))
            self.seq += 1
            try:
                rows = self._rows(
                    name, snapshot, reason, self.started.get(name), time.time(), self.seq
                )
                self.store.save_steps(self.run_id, rows)
            except (StoreError, OSError) as exc:
                self._failed(exc)
            except Exception as exc:  # a bug here must not take the run down
                self._failed(exc)
        self.inner.step_finished(name, record, reason)

    def item_finished(self, name: str, done: int, total: int) -> None:
        self.inner.item_finished(name, done, total)

    def run_finished(self, result: RunResult) -> None:
        if self.store is not None and self.run_id is not None:
            if result.interrupted:
                status = "interrupted"
            else:
                status = "success" if result.success else "failed"
            try:
                self.store.finish_run(
                    self.run_id,
                    status=status,
                    error=redact(result.error, self.secrets) if result.error else None,
                    final_step=result.final_step,
                )
            except (StoreError, OSError) as exc:
                self._failed(exc)
            if self.store is not None:
                self.store.close()
                self.store = None
        self.inner.run_finished(result)

    # ------------------------------------------------------------------ rows

    def _rows(
        self,
        name: str,
        record: dict[str, Any],
        reason: str | None,
        started: float | None,
        ended: float,
        seq: int,
    ) -> list[StepRow]:
        step = self._row(name, -1, record, started, ended, seq)
        rerun = self.trace.get(name).get("rerun") if self.trace is not None else None
        step.reason = reason or (f"ran again: {rerun}" if rerun else None)
        if self.fingerprints is None and self.plan is not None:
            from muxlang.records.resume import fingerprints

            self.fingerprints = fingerprints(self.plan)  # once, when the first step ends
        step.fingerprint = (self.fingerprints or {}).get(name)
        rows = [step]
        for index, item in enumerate(record.get("results") or ()):
            if not isinstance(item, Mapping):
                continue
            row = self._row(name, index, item, None, None, seq)
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
        seq: int,
    ) -> StepRow:
        sent = self.trace.get(name, index) if self.trace is not None else {}
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
        return StepRow(
            name=name,
            item=index,
            seq=seq,
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
            cost=record.get("cost")
            if isinstance(record.get("cost"), int | float) and origin == "run"
            else None,
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

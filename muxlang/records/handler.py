"""Applies a recording run's messages to the store (SPEC section 10): the record
writer's work (:mod:`muxlang.records.writer`), in its own process or the run's.

``("open", facts)`` starts the run's row, ``("step", ...)`` becomes the step's rows
(redacted, with its definition hash), ``("finish", ...)`` ends the run. The steps
of one batch are one transaction. The first error (locked, corrupt, full) stops
the handler; ``error`` says why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from muxlang.records.digests import fingerprints_of, summary
from muxlang.records.secrets import redact, redact_value
from muxlang.records.store import StepRow, Store

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
        #: called once the run's end is committed, before the database closes
        self.on_finished: Callable[[], None] | None = None

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
        if self.on_finished is not None:
            self.on_finished()
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

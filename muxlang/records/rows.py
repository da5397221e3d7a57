"""A recorded run and step as the run store keeps them (:mod:`muxlang.records.store`):
their rows, their JSON for ``--json``, and texts stored whole: short ones as they
are, long ones zlib-compressed."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from muxlang.records.schema import STEP_NAMES

#: texts longer than this are stored zlib-compressed
COMPRESS_OVER = 4096


def pack(text: str | None) -> str | bytes | None:
    """A text as stored: itself, or zlib-compressed bytes when long."""
    if text is None or len(text) <= COMPRESS_OVER:
        return text
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 6)


def unpack(value: Any) -> str | None:
    """The inverse of :func:`pack`."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return zlib.decompress(value).decode("utf-8", "surrogatepass")
    return str(value)


@dataclass
class RunRow:
    id: str
    workflow: str
    path: str
    file_hash: str
    args: dict[str, Any]
    team: str | None
    version: str
    started: float
    ended: float | None
    status: str
    error: str | None
    final_step: str | None
    plan: dict[str, Any]
    resumed_from: str | None
    steps_ok: int
    steps_failed: int
    steps_skipped: int
    input_tokens: int
    output_tokens: int
    cost: float | None

    @property
    def duration_ms(self) -> int | None:
        if self.ended is None:
            return None
        return max(0, round((self.ended - self.started) * 1000))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "path": self.path,
            "file_hash": self.file_hash,
            "args": self.args,
            "team": self.team,
            "version": self.version,
            "status": self.status,
            "started": _iso(self.started),
            "ended": _iso(self.ended) if self.ended is not None else None,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "resumed_from": self.resumed_from,
            "steps": {
                "success": self.steps_ok,
                "failed": self.steps_failed,
                "skipped": self.steps_skipped,
            },
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            "cost": self.cost,
        }


@dataclass
class StepRow:
    """One recorded step (``item == -1``) or for_each item (``item >= 0``)."""

    name: str
    status: str
    item: int = -1
    kind: str = ""
    started: float | None = None
    ended: float | None = None
    duration_ms: int = 0
    command: str | None = None
    prompt: str | None = None
    system: str | None = None
    output: str | None = None
    stderr: str | None = None
    exit_code: int | None = None
    backend: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    error: str | None = None
    #: ``run`` (it ran), ``cache`` (a cached answer), ``reused`` (an earlier run's result)
    origin: str = "run"
    #: why a step was skipped, or why it ran again on resume
    reason: str | None = None
    fingerprint: str | None = None
    item_value: Any = None
    #: the rest of the step's record (``outputs``, ``files``, ``diff``, ...)
    fields: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "kind": self.kind,
            "started": _iso(self.started) if self.started is not None else None,
            "ended": _iso(self.ended) if self.ended is not None else None,
            "duration_ms": self.duration_ms,
            "command": self.command,
            "prompt": self.prompt,
            "system": self.system,
            "output": self.output,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "backend": self.backend,
            "attempts": self.attempts,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            "cost": self.cost,
            "error": self.error,
            "origin": self.origin,
            "reason": self.reason,
        }
        if self.fields.get("members"):
            data["members"] = self.fields["members"]
        if self.item >= 0:
            data["item"] = self.item_value
            data["index"] = self.item
        return data


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def step_row(row: Sequence[Any]) -> StepRow:
    """A step row as read with STEP_COLUMNS: its texts unpacked, its JSON read."""
    values = dict(zip(STEP_NAMES, row, strict=True))
    for name in _PACKED:
        values[name] = unpack(values[name])
    if values["item_value"] is not None:
        values["item_value"] = json.loads(values["item_value"])
    values["fields"] = json.loads(values["fields"] or "{}")
    return StepRow(**values)


#: the columns stored packed (:func:`pack`: compressed when long)
_PACKED = ("command", "prompt", "system", "output", "stderr", "fields")

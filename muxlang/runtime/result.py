"""What a run leaves: :class:`RunResult`, and the duration helpers the runtime's
messages and records use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


@dataclass
class RunResult:
    """The run as a whole: success, duration and every step's record."""

    workflow: str
    success: bool
    duration_ms: int
    steps: dict[str, Record]
    order: tuple[str, ...]
    #: the step whose output is the run's output: ``--print``, else the last step
    #: nothing depends on (in a successful run: the last of those that succeeded)
    final_step: str | None = None
    #: why the run failed, in one line (None when it succeeded)
    error: str | None = None
    interrupted: bool = False
    timed_out: bool = False
    #: why each skipped or cancelled step did not run to completion
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """The run's output: the final step's output (``""`` when none)."""
        if self.final_step is None:
            return ""
        return str(self.steps[self.final_step].get("output", ""))

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` object (SPEC section 8)."""
        return {
            "workflow": self.workflow,
            "success": self.success,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "interrupted": self.interrupted,
            "steps": {name: self.steps[name] for name in self.order},
        }


def duration_ms(seconds: float) -> int:
    """Whole milliseconds, never negative."""
    return max(0, round(seconds * 1000))


def format_seconds(seconds: float) -> str:
    """``2 s``, ``1.5 s``, ``500 ms``: durations as messages show them."""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds == int(seconds):
        return f"{int(seconds)} s"
    return f"{seconds:g} s"

"""A reporter that keeps every event, for tests (a test double: not shipped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from muxlang.runtime.events import NullReporter

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.runtime.scheduler import RunResult


class RecordingReporter(NullReporter):
    """Keeps every event as a tuple, for tests."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def run_started(self, plan: Plan) -> None:
        self.events.append(("run_started", plan.workflow.name))

    def step_started(self, name: str) -> None:
        self.events.append(("step_started", name))

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        self.events.append(("step_finished", name, str(record["status"])))

    def run_finished(self, result: RunResult) -> None:
        self.events.append(("run_finished", "success" if result.success else "failed"))

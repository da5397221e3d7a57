"""What the scheduler tells the outside world while it runs.

A :class:`Reporter` receives four events, in order: ``run_started``, then for
each step ``step_started`` (only when it really starts) and ``step_finished``
(also for skipped steps), then ``run_finished``; for_each steps also report
``item_finished`` as their items finish (for progress displays). The output modes of
``muxlang run`` (console, json, jsonl, quiet) are reporters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.runtime.scheduler import RunResult


class Reporter(Protocol):
    def run_started(self, plan: Plan) -> None: ...

    def step_started(self, name: str) -> None: ...

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        """``reason`` says why a step was skipped or cancelled (None otherwise)."""

    def item_finished(self, name: str, done: int, total: int) -> None:
        """A for_each item of ``name`` finished: ``done`` of ``total`` so far."""

    def run_finished(self, result: RunResult) -> None: ...


class NullReporter:
    """Reports nothing; subclass it and override what you need."""

    #: it shows each step's end as it happens (a run recorder then writes the step's
    #: record before it passes the end on; else it may gather a few into one write)
    shows_steps = False

    def run_started(self, plan: Plan) -> None:
        return None

    def step_started(self, name: str) -> None:
        return None

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        return None

    def item_finished(self, name: str, done: int, total: int) -> None:
        return None

    def run_finished(self, result: RunResult) -> None:
        return None

    def nested_started(self, name: str) -> None:
        """A step of a workflow called with ``uses`` started (``outer.inner``)."""

    def nested_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        """A step of a workflow called with ``uses`` finished (``outer.inner``)."""

"""A run's step records before anything ran, and the names a template starts from
(``steps``, ``args``, ``env``, ``team``, ``workflow``): the same for a run, its
``--dry-run`` preview and each item of a ``for_each``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang.compiler.plan import Plan
from muxlang.steps import step_kind
from muxlang.template.values import NamedTable
from muxlang.workflow import AnyStep

Record = dict[str, Any]


def new_record(step: AnyStep) -> Record:
    """A step's record before it ran (status ``"pending"``)."""
    record: Record = {"output": "", "status": "pending", "error": None, "duration_ms": 0}
    record["failed"] = False  # llm-mux's `steps.X.failed`: the status is "failed"
    record.update(step_kind(step).defaults())
    if step.for_each is not None:
        record["results"] = []
    if step.repeat is not None:
        record["iterations"] = []
    return record


def root_scope(
    plan: Plan, records: dict[str, Record], args: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The names a template starts from (``steps``, ``args``, ``env``, ``team``,
    ``workflow``), the same for a run and its ``--dry-run`` preview."""
    return {
        "steps": records,
        "args": dict(args),
        "env": dict(environ),
        "team": plan.config.team or "",  # "" when no team is detected, as in llm-mux
        # `{{ workflow }}` inserts the name, as in llm-mux; `workflow.name` too
        "workflow": NamedTable(
            {"name": plan.workflow.name, "description": plan.workflow.description},
            plan.workflow.name,
        ),
    }

"""The ``query`` step type: a ``prompt`` (and ``system``) for a role or a backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from muxlang.steps.base import Outcome, Shapes, StepKind, StepRunner
from muxlang.workflow import QueryStep, TemplateField

if TYPE_CHECKING:
    from muxlang.compiler.plan import ResolvedConfig


def _details(step: QueryStep, config: ResolvedConfig | None) -> tuple[tuple[str, str], ...]:
    shown: list[tuple[str, str]] = []
    if step.role is not None:
        shown.append(("role", step.role.name))
    if step.backend is not None:
        shown.append(("backend", step.backend.name))
    return tuple(shown)


def _previewed(step: QueryStep) -> tuple[tuple[str, TemplateField], ...]:
    shown: list[tuple[str, TemplateField]] = []
    if step.system is not None:
        shown.append(("system", step.system))
    shown.append(("prompt", step.prompt))
    return tuple(shown)


async def _run(
    step: QueryStep, values: Mapping[str, Any], runner: StepRunner, item: bool
) -> Outcome:
    return await runner.run_query(step, values, item=item)


KIND = StepKind(
    name="query",
    node=QueryStep,
    # usage: {input_tokens, output_tokens}; cost: USD when the backend has a `price`, else none
    # data: the answer parsed by `output_schema` (none without one)
    fields={"outputs": "table", "backend": "string", "usage": "table", "cost": None, "data": None},
    defaults=lambda: {
        "outputs": {},
        "backend": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "cost": None,
        "data": None,
    },
    asks_backends=True,
    details=_details,
    previewed=_previewed,
    shapes=Shapes(mermaid=('("', '")'), dot="ellipse"),
    graph_json=lambda step: {
        "role": step.role.name if step.role else None,
        "backend": step.backend.name if step.backend else None,
    },
    run=_run,
)

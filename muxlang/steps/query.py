"""The ``query`` step type: a ``prompt`` (and ``system``) for a role or a backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from muxlang.steps.base import Outcome, SentRequest, Shapes, StepError, StepKind, StepRunner
from muxlang.workflow import QueryStep, TemplateField

if TYPE_CHECKING:
    from muxlang.compiler.plan import ResolvedConfig
    from muxlang.llm import Usage


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
    # here, not at the top: `validate` registers this step type and never runs it
    from muxlang.llm import BackendError, ChatRequest

    prompt = runner.render("prompt", step.prompt, values)
    system = runner.render("system", step.system, values) if step.system else None
    request = ChatRequest.from_prompt(prompt, system, options=dict(step.options))
    target, kind = _target(step)
    runner.note(step.name, values, prompt=prompt, system=system, target=target)
    if not item:
        runner.requests[step.name] = SentRequest(request, target, kind)
    try:
        result = await runner.query.query(target, request, kind=kind)
    except BackendError as exc:
        return Outcome({"outputs": {}, "backend": None}, str(exc))
    fields = {
        "output": result.output,
        "outputs": dict(result.outputs),
        "backend": result.backend,
        "usage": usage_fields(result.usage),
        "cost": result.cost,
    }
    if step.output_schema is not None:
        fields["data"], problem = runner.check_answer(result.output, step.output_schema)
        if problem is not None:
            again = " (asked again `retries` times)" if step.retries else ""
            return Outcome(fields, f"output_schema: {problem}{again}")
    return Outcome(fields)


def usage_fields(usage: Usage | None) -> dict[str, int]:
    """``steps.X.usage``: the tokens a query used (zeros when the backend said nothing)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def _target(step: QueryStep) -> tuple[str, Literal["role", "backend"]]:
    if step.role is not None:
        return step.role.name, "role"
    if step.backend is not None:
        return step.backend.name, "backend"
    raise StepError("query step has neither `role` nor `backend`")


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

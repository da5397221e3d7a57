"""The ``apply`` step type: write the edits a query step proposed, then ``verify``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from muxlang.steps.base import Outcome, Shapes, StepKind, StepRunner
from muxlang.workflow import ApplyStep, QueryStep, Ref, TemplateField

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext
    from muxlang.compiler.plan import ResolvedConfig
    from muxlang.diagnostics import Diagnostic


def _refs(step: ApplyStep) -> tuple[Ref, ...]:
    return (step.source,)


def _details(step: ApplyStep, config: ResolvedConfig | None) -> tuple[tuple[str, str], ...]:
    shown = [("source", step.source.name)]
    if step.verify is None and config is not None and config.team_verify:
        shown.append(("verify (team)", config.team_verify))
    return tuple(shown)


def _previewed(step: ApplyStep) -> tuple[tuple[str, TemplateField], ...]:
    return (("verify", step.verify),) if step.verify is not None else ()


def check_apply_source(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX031: an apply step's ``source`` naming a step that is not a query step."""
    for step in ctx.workflow.steps:
        if not isinstance(step, ApplyStep):
            continue
        source = ctx.steps.get(step.source.name)
        if source is None or isinstance(source, QueryStep):
            continue
        yield ctx.diag(
            step.source.span,
            "MUX031",
            f"`source` must name a query step, but `{source.name}` is a {source.type} step",
            "apply takes the edits an LLM proposed: point `source` at the query step "
            "that asked for them",
        )


async def _run(
    step: ApplyStep, values: Mapping[str, Any], runner: StepRunner, item: bool
) -> Outcome:
    return await runner.run_apply(step, values)


KIND = StepKind(
    name="apply",
    node=ApplyStep,
    # what the runtime records for an apply step (docs/apply.md)
    fields={"files": "list", "diff": "string", "attempts": "number", "verify_output": "string"},
    defaults=lambda: {"files": [], "diff": "", "attempts": 0, "verify_output": ""},
    shell_fields=frozenset({"verify"}),
    exclusive=True,
    asks_backends=True,  # a verify retry asks the source step's backend again
    refs=_refs,
    details=_details,
    previewed=_previewed,
    shapes=Shapes(mermaid=('{{"', '"}}'), dot="hexagon"),
    checks=(check_apply_source,),
    run=_run,
)

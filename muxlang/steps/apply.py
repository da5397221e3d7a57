"""The ``apply`` step type: write the edits a query step proposed, then ``verify``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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
    if not runner.can_apply:
        return Outcome(error="this run was started without an apply service")
    sent = runner.requests.get(step.source.name)
    source = values["steps"].get(step.source.name, {})
    if "results" in source:
        return Outcome(
            error=f"source step {step.source.name!r} uses for_each: apply needs one answer"
        )
    if sent is None or source.get("status") != "success":
        return Outcome(error=f"source step {step.source.name!r} has no successful answer")
    if step.verify is not None:
        verify: str | None = runner.render("verify", step.verify, values)
    else:
        verify = runner.team_verify
    env = runner.env(step, values)
    retry_prompt = _retry_prompt(step, values, runner)
    result = await runner.apply_edits(
        step, sent, str(source.get("output", "")), verify, env, retry_prompt
    )
    no_write = runner.no_write
    shown = f"{result.output}\n\n{result.diff}" if no_write and result.diff else result.output
    if verify is None and result.success and result.files and not no_write:
        shown += (
            "\nno verify command: the edits were applied unchecked "
            "(set `verify` on the step, or a team's `verify`)"
        )
    fields = {
        "output": shown.rstrip("\n"),
        "files": list(result.files),
        "diff": result.diff,
        "attempts": result.attempts,
        "verify_output": result.verify_output,
    }
    if result.success:
        return Outcome(fields)
    return Outcome(fields, result.error or "apply failed")


def _retry_prompt(
    step: ApplyStep, values: Mapping[str, Any], runner: StepRunner
) -> Callable[[str, str], str] | None:
    template = step.verify_retry_prompt
    if template is None:
        return None

    def render_retry(original: str, error: str) -> str:
        scope = {**values, "original": original, "error": error}
        return runner.render("verify_retry_prompt", template, scope)

    return render_retry


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

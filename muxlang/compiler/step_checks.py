"""Checks of steps and how they refer to each other (MUX008, MUX020, MUX021,
MUX023, MUX024, MUX025). One function per concern, registered in
:data:`muxlang.compiler.checks.CHECKS`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from muxlang.compiler import analysis as a
from muxlang.diagnostics import Diagnostic, Severity, did_you_mean
from muxlang.source import Span
from muxlang.steps import step_kind
from muxlang.template import ast as t

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext


def check_has_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX008 (warning): a workflow with no steps — `run` would do nothing and
    "succeed". A warning, not an error: a workflow being written may be empty."""
    if ctx.workflow.steps:
        return
    spans = ctx.workflow.config_spans
    span = spans.get(("steps",)) or spans.get(("name",)) or Span.point(1, 1)
    yield ctx.diag(
        span,
        NO_STEPS_CODE,
        f"workflow `{ctx.workflow.name}` has no steps",
        'add a [[steps]] table, e.g. [[steps]] name = "hello" type = "shell" run = "echo hi"',
        Severity.WARNING,
    )


#: the code of :func:`check_has_steps`'s warning
NO_STEPS_CODE = "MUX008"


def check_duplicate_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX020: two steps with one name (reported at the second)."""
    for step in ctx.workflow.steps:
        first = ctx.steps[step.name]
        if first is not step:
            yield ctx.diag(
                step.name_span,
                "MUX020",
                f"duplicate step name `{step.name}` (first defined at line {first.name_span.line})",
                "give each step its own name",
            )


def _unknown_step(ctx: CheckContext, name: str, span: Span, where: str) -> Diagnostic:
    hint = did_you_mean(name, ctx.steps) or (
        "the steps are " + ", ".join(f"`{n}`" for n in ctx.steps)
        if ctx.steps
        else "the workflow has no steps"
    )
    return Diagnostic(
        ctx.file, span, "MUX021", f"unknown step `{name}` in {where}", hint=hint, subject=name
    )


def check_unknown_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX021: ``depends_on``, ``steps.X`` in a template, or ``source`` naming no step."""
    for step in ctx.workflow.steps:
        for ref in step.depends_on:
            if ref.name not in ctx.steps:
                yield _unknown_step(ctx, ref.name, ref.span, f"`depends_on` of `{step.name}`")
        for ref in step_kind(step).refs(step):
            if ref.name not in ctx.steps:
                yield _unknown_step(ctx, ref.name, ref.span, "`source`")
    for site, found in ctx.refs():
        if found.name not in ctx.steps:
            yield _unknown_step(ctx, found.name, found.span, f"`{site.field}`")


#: names people reach for, and the field that holds it
_FIELD_ALIASES: Mapping[str, str] = {
    "stdout": "output",
    "text": "output",
    "result": "output",
    "response": "output",
    "returncode": "exit_code",
    "exitcode": "exit_code",
    "exit_status": "exit_code",
    "code": "exit_code",
    "duration": "duration_ms",
}
_ALIAS_REASONS: Mapping[str, str] = {
    "stdout": "a shell step's stdout (trailing newlines removed) is its `output`",
}


def check_step_fields(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX023: ``steps.X.FIELD`` where a step of X's type has no such field."""
    for _, ref in ctx.refs():
        step = ctx.steps.get(ref.name)
        if step is None or ref.field is None or ref.field_span is None:
            continue
        fields = a.step_fields(step)
        if ref.field in fields:
            continue
        owner = next(
            (kind for kind, extra in a.TYPE_FIELDS.items() if ref.field in extra),
            "for_each" if ref.field in a.FOR_EACH_FIELDS else None,
        )
        alias = _FIELD_ALIASES.get(ref.field)
        if alias is not None and alias in fields:
            hint = f"use `{alias}`: {_ALIAS_REASONS.get(ref.field, 'that is the field')}"
        elif owner == "for_each":
            hint = f"`results` exists only for steps with `for_each`; `{step.name}` has none"
        elif ref.field in a.REPEAT_FIELDS:
            hint = f"`iterations` exists only for steps with `repeat`; `{step.name}` has none"
        elif owner is not None:
            hint = f"`{ref.field}` is a field of {owner} steps; `{step.name}` is a {step.type} step"
        else:
            hint = did_you_mean(ref.field, fields) or "fields: " + ", ".join(sorted(fields))
        yield ctx.diag(
            ref.field_span,
            "MUX023",
            f"step `{step.name}` has no field `{ref.field}`",
            hint,
        )


def check_item_scope(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX024: ``item`` or ``loop`` where no for_each (nor template ``{% for %}``) binds it."""
    for site in ctx.sites:
        if site.item_available:
            continue
        for node in ctx.names(site):
            if node.name not in a.ITEM_NAMES or node.name in site.bound:
                continue
            if site.role == "for_each":
                message = f"`{node.name}` is not defined in `for_each` itself"
                hint = "`for_each` computes the items; `item` exists in the step's other fields"
            else:
                message = f"`{node.name}` used outside a for_each step"
                hint = (
                    f"add `for_each = ...` to step `{site.step.name}`, "
                    f"or loop in the template with `{{% for x in ... %}}`"
                )
            yield ctx.diag(node.span, "MUX024", message, hint)


def _arg_refs(site: a.Site) -> Iterator[tuple[str, Span]]:
    if "args" in site.bound:
        return
    for node in a.walk(site.expr):
        read = t.member(node, "args")
        if read is not None:
            yield read


def check_undeclared_args(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX025: ``args.X`` not declared, when the workflow declares ``[args]``."""
    declared = [arg.name for arg in ctx.workflow.args]
    if not declared:
        return
    for site in ctx.sites:
        for name, span in _arg_refs(site):
            if name not in declared:
                yield ctx.diag(
                    span,
                    "MUX025",
                    f"undeclared arg `{name}`",
                    did_you_mean(name, declared)
                    or f"declare it with `[args.{name}]`, or use one of "
                    + ", ".join(f"`{n}`" for n in declared),
                )

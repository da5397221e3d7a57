"""``--dry-run``: the plan in order, with every command and prompt that can be
rendered before anything runs.

A template that reads another step's results (``steps.…``) or a for_each item
(``item``, ``loop``) cannot be rendered yet: it is shown as written. Anything
else (``args``, ``env``, ``team``, ``workflow``) is rendered; when that fails
(an unset ``env.X``), the template is shown with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from muxlang._frozen import frozen
from muxlang.compiler.plan import Plan
from muxlang.runtime.calls import call_args
from muxlang.runtime.context import StepError, references_name, render
from muxlang.runtime.scheduler import format_seconds
from muxlang.runtime.scope import new_record, root_scope
from muxlang.steps import step_kind
from muxlang.workflow import AnyStep, TemplateField

_RUNTIME_NAMES = ("steps", "item", "loop")
_OWN_LINE = ("if", "for_each", "repeat", "verify (team)")


@frozen(slots=True)
class PreviewField:
    key: str
    text: str
    #: True: rendered; False: the template as written
    rendered: bool
    #: why it was not rendered (None when it was, or when it reads runtime values)
    note: str | None = None
    #: the run-time values it reads (``steps``, ``item``, ``loop``): shown as written
    reads: tuple[str, ...] = ()


@frozen(slots=True)
class PreviewStep:
    index: int
    name: str
    type: str
    depends_on: tuple[str, ...]
    #: ``role analyzer``, ``backend openai``, ``source fix``...
    details: tuple[tuple[str, str], ...]
    fields: tuple[PreviewField, ...]
    #: a step of a called workflow (``uses``): its number (``2.1``) and nesting depth
    number: str = ""
    depth: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depends_on": list(self.depends_on),
            **dict(self.details),
            "fields": {
                f.key: {"text": f.text, "rendered": f.rendered, "note": f.note} for f in self.fields
            },
        }


def preview(
    plan: Plan, *, args: Mapping[str, Any], environ: Mapping[str, str]
) -> list[PreviewStep]:
    """Every step of ``plan`` in order, rendered as far as possible."""
    records = {name: new_record(plan.step(name).step) for name in plan.order}
    values = root_scope(plan, records, args, environ)
    shown: list[PreviewStep] = []
    for index, compiled in enumerate(plan.steps(), start=1):
        step = compiled.step
        kind = step_kind(step)
        details: list[tuple[str, str]] = list(kind.details(step, plan.config))
        if step.if_ is not None:
            details.append(("if", step.if_.source))
        if step.for_each is not None:
            details.append(("for_each", step.for_each.source))
            if step.max_parallel:
                details.append(("max_parallel", str(step.max_parallel)))
        if step.repeat is not None:
            count = step.repeat.max_iterations
            details.append(("repeat", f"until {step.repeat.until.source}, at most {count} times"))
        if step.timeout is not None:
            details.append(("timeout", format_seconds(step.timeout)))
        if step.continue_on_error:
            details.append(("continue_on_error", "true"))
        fields: list[PreviewField] = []
        templates: list[tuple[str, TemplateField]] = list(kind.previewed(step))
        templates.extend((f"env.{key}", value) for key, value in step.env)
        for key, field in templates:
            fields.append(_render_field(key, field, values, plan.workflow.path))
        shown.append(
            PreviewStep(
                index=index,
                name=step.name,
                type=step.type,
                depends_on=compiled.dependencies,
                details=tuple(details),
                fields=tuple(fields),
            )
        )
        called = plan.calls.get(step.name)
        if called is not None:
            shown.extend(_nested(step, index, called, fields, environ))
    return shown


def _nested(
    step: AnyStep,
    index: int,
    called: Plan,
    fields: list[PreviewField],
    environ: Mapping[str, str],
) -> list[PreviewStep]:
    """The steps of the workflow a ``uses`` step calls, numbered ``2.1``, ``2.2``..."""
    given: dict[str, Any] = {}
    rendered = {f.key.removeprefix("with."): f.text for f in fields if f.rendered}
    for key, value in getattr(step, "with_", ()):
        if not isinstance(value, TemplateField):
            given[key] = value
        elif key in rendered:
            given[key] = rendered[key]
    args = call_args(called.workflow, given)
    for key, value in getattr(step, "with_", ()):
        if isinstance(value, TemplateField) and key not in rendered:
            args.pop(key, None)  # known only when the run gets there
    nested = []
    for inner in preview(called, args=args, environ=environ):
        nested.append(
            replace(
                inner,
                name=f"{step.name}.{inner.name}",
                depends_on=tuple(f"{step.name}.{d}" for d in inner.depends_on),
                number=f"{index}.{inner.number or inner.index}",
                depth=inner.depth + 1,
            )
        )
    return nested


def _render_field(
    key: str, field: TemplateField, values: Mapping[str, Any], path: str
) -> PreviewField:
    reads = tuple(name for name in _RUNTIME_NAMES if references_name(field.template, name))
    if reads:
        return PreviewField(key, field.source, rendered=False, reads=reads)
    try:
        return PreviewField(key, render(key, field, values, path=path), rendered=True)
    except StepError as exc:
        return PreviewField(key, field.source, rendered=False, note=str(exc))


_READS = {"steps": "other steps' results", "item": "the for_each item", "loop": "`loop`"}


def _as_written(field: PreviewField) -> str:
    """Why a field is shown as written instead of rendered."""
    if not field.reads:
        return "[shown as written]"
    what = " and ".join(_READS[name] for name in field.reads)
    return f"[shown as written: it reads {what}, known only when the step runs]"


def format_preview(plan: Plan, steps: list[PreviewStep], *, max_concurrent: int) -> str:
    """The text ``--dry-run`` prints."""
    count = sum(1 for step in steps if not step.depth)
    lines = [
        f"Plan for workflow {plan.workflow.name!r}: {count} step{'s' if count != 1 else ''}, "
        f"up to {max_concurrent} at once (dry run: nothing runs)"
    ]
    for step in steps:
        inline = [(k, v) for k, v in step.details if k not in _OWN_LINE]
        indent = "   " * step.depth
        header = f"{indent}{step.number or step.index}. {step.name} ({step.type}"
        header += "".join(f", {key} {value}" for key, value in inline) + ")"
        if step.depends_on:
            header += " after " + ", ".join(step.depends_on)
        lines.append(header)
        lines.extend(f"{indent}   {k}: {v}" for k, v in step.details if k in _OWN_LINE)
        for field in step.fields:
            label = f"{indent}   {field.key}: "
            body = field.text.splitlines() or [""]
            suffix = "" if field.rendered else f"  {_as_written(field)}"
            lines.append(label + body[0] + (suffix if len(body) == 1 else ""))
            pad = " " * len(label)
            lines.extend(pad + line for line in body[1:])
            if len(body) > 1 and suffix:
                lines.append(pad + suffix.strip())
            if field.note:
                lines.append(f"{pad}(not rendered: {field.note})")
    return "\n".join(lines) + "\n"

"""The ``uses`` step type: call another workflow (``uses`` + ``with``).

``uses = "review"`` names a workflow as ``muxlang run`` finds it (a name in the
project's, the user's or the bundled workflows), or a path to a file inside the
project (relative to the calling file's directory, else to the project root; it
must stay inside the project, or inside the calling file's directory).
``with = { base = "main" }`` gives its args; string values are templates. The
called workflow's steps run as a nested group: ``steps.X.output`` is its final
output, ``steps.X.steps.Y`` its steps' records.

At compile time the called workflow is loaded, configured (its own tables as a
layer over the project's) and compiled; :func:`resolve_call` keeps the result
per calling step, and the plan of each call ends up in ``Plan.calls``. The checks
(MUX032 to MUX035) report an unusable workflow, a missing or unknown arg, and a
call that comes back to a workflow already calling (recursion).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muxlang._frozen import frozen
from muxlang.diagnostics import Diagnostic, did_you_mean
from muxlang.steps.base import Outcome, Shapes, StepKind, StepRunner
from muxlang.workflow import Ref, TemplateField, UsesStep, Workflow

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext
    from muxlang.compiler.plan import Plan, ResolvedConfig
    from muxlang.toml.nodes import Table


# --------------------------------------------------------------------------- lowering


def _build(
    table: Table, data: Mapping[str, Any], common: dict[str, Any], templates: Mapping[str, Any]
) -> UsesStep:
    """The :class:`UsesStep` of a valid step table (called by the loader)."""
    from muxlang.toml.nodes import String
    from muxlang.toml.nodes import Table as TomlTable

    node = table.get("uses")
    assert isinstance(node, String)
    given = data.get("with", {})
    with_node = table.get("with")
    entries = with_node.entries if isinstance(with_node, TomlTable) else {}
    spans = {key: entry.key.span for key, entry in entries.items()}
    values: list[tuple[str, TemplateField | int | float | bool]] = []
    for key, value in given.items():
        if isinstance(value, str):
            field = templates.get(f"with.{key}")
            if field is None:
                continue
            values.append((key, field))
        else:
            values.append((key, value))
    return UsesStep(
        **common,
        max_parallel=data.get("max_parallel"),
        fail_fast=data.get("fail_fast", True),
        continue_on_error=data.get("continue_on_error", False),
        timeout=_seconds(data.get("timeout")),
        uses=Ref(node.value, node.span),
        with_=tuple(values),
        with_spans=spans,
    )


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    from muxlang.config.models import parse_duration

    return parse_duration(value)


# --------------------------------------------------------------------------- calls


@frozen(slots=True)
class Call:
    """What a ``uses`` step calls, as far as it could be resolved."""

    path: Path | None = None
    workflow: Workflow | None = None
    plan: Plan | None = None
    #: why it cannot be called (MUX032 or MUX035), at the ``uses`` value
    problem: Diagnostic | None = None


def _locate(name: str, caller: Path, root: Path) -> Path:
    """The file of ``uses = name`` (raises ``LookupError`` with the reason)."""
    from muxlang.config import WorkflowNotFoundError, find_workflow
    from muxlang.config.discovery import is_path_like

    if not is_path_like(name):
        try:
            return find_workflow(name, root)
        except WorkflowNotFoundError as exc:
            raise LookupError(f"no workflow `{name}`") from exc
    allowed = (root.resolve(), caller.parent.resolve())
    given = Path(name).expanduser()
    for base in (caller.parent, root):
        candidate = (base / given).resolve()
        if not any(candidate.is_relative_to(inside) for inside in allowed):
            raise LookupError(f"`{name}` is outside the project root: `uses` paths stay inside it")
        if candidate.is_file():
            return candidate
    raise LookupError(f"workflow file `{name}` not found")


def resolve_call(ctx: CheckContext, step: UsesStep) -> Call:
    """Load, configure and compile what ``step`` calls (once per check run)."""
    found = ctx.calls.get(step.name)
    if isinstance(found, Call):
        return found
    call = _resolve(ctx, step)
    ctx.calls[step.name] = call
    return call


def _resolve(ctx: CheckContext, step: UsesStep) -> Call:
    from muxlang.compiler.build import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import load_config

    root = ctx.config.project_root
    name = step.uses.name
    try:
        path = _locate(name, Path(ctx.file), root)
    except LookupError as exc:
        known = workflow_names(root)
        hint = did_you_mean(name, known) or (
            "the workflows are " + ", ".join(f"`{n}`" for n in known) if known else None
        )
        return Call(problem=ctx.diag(step.uses.span, "MUX032", str(exc), hint))
    chain = (*ctx.callers, str(Path(ctx.file).resolve()))
    if str(path.resolve()) in chain:
        names = [Path(p).stem for p in chain[chain.index(str(path.resolve())) :]]
        loop = " → ".join([*names, path.stem])
        return Call(
            path,
            problem=ctx.diag(
                step.uses.span,
                "MUX035",
                f"`uses` recursion: {loop}",
                "a workflow cannot call itself, directly or through others",
            ),
        )
    workflow, problems = load_workflow(path)
    plan = None
    if workflow is not None:
        config, config_problems = load_config(root, workflow=workflow, team=ctx.config.team)
        problems = [*problems, *config_problems]
        if not any(d.is_error for d in problems):
            plan, checked = compile_workflow(workflow, config, callers=chain)
            problems.extend(checked)
    errors = [d for d in problems if d.is_error]
    if not errors:
        return Call(path, workflow, plan)
    recursion = next((d for d in errors if d.code == "MUX035"), None)
    if recursion is not None:
        loop = recursion.message.removeprefix("`uses` recursion: ")
        first = Path(ctx.file).stem
        if not loop.startswith(f"{first} → "):
            loop = f"{first} → {loop}"
        message = f"`uses` recursion: {loop}"
        return Call(
            path,
            workflow,
            problem=ctx.diag(step.uses.span, "MUX035", message, recursion.hint),
        )
    first_error = errors[0]
    where = f"{first_error.file}:{first_error.span.line}:{first_error.span.column}"
    count = len(errors)
    return Call(
        path,
        workflow,
        problem=ctx.diag(
            step.uses.span,
            "MUX032",
            f"workflow `{name}` cannot run: it has {count} error{'s' if count != 1 else ''} "
            f"(first at {where}: {first_error.message})",
            f"run `muxlang validate {name}` to see them all",
        ),
    )


def workflow_names(root: Path) -> list[str]:
    """The workflows a ``uses`` may name (for completion and hints)."""
    from muxlang.config import list_workflows

    return [entry.name for entry in list_workflows(root)]


def workflow_args(workflow: Workflow) -> dict[str, str | None]:
    """A workflow's args and their descriptions (for completion of ``with``)."""
    return {arg.name: arg.description for arg in workflow.args}


def _uses_steps(ctx: CheckContext) -> Iterator[UsesStep]:
    return (step for step in ctx.workflow.steps if isinstance(step, UsesStep))


def check_calls(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX032 / MUX035: a ``uses`` naming no workflow that can run, or a recursion."""
    for step in _uses_steps(ctx):
        problem = resolve_call(ctx, step).problem
        if problem is not None:
            yield problem


def _readable_args(workflow: Workflow) -> tuple[set[str], set[str]]:
    """(args it takes, args it needs): declared ones, or with none declared, the
    args its templates read (those read outside ``default``/``is defined`` needed)."""
    from muxlang.compiler.arg_reads import arg_reads

    if workflow.args:
        takes = {arg.name for arg in workflow.args}
        needs = {arg.name for arg in workflow.args if arg.required}
        return takes, needs | (set(arg_reads(workflow)) - takes)
    reads = set(arg_reads(workflow))
    return reads, reads


def check_call_args(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX033: an arg the called workflow needs and ``with`` lacks; MUX034: a
    ``with`` key the called workflow does not take."""
    for step in _uses_steps(ctx):
        call = resolve_call(ctx, step)
        if call.workflow is None:
            continue
        takes, needs = _readable_args(call.workflow)
        given = {key for key, _ in step.with_} | set(step.with_spans)
        name = step.uses.name
        for key in sorted(needs - given):
            where = step.spans.get("with", step.uses.span)
            yield ctx.diag(
                where,
                "MUX033",
                f"workflow `{name}` needs arg `{key}`, and `with` does not give it",
                f'add it: with = {{ {key} = "..." }}',
            )
        if not call.workflow.args:
            continue  # it declares none: any name may be read with `is defined`
        for key in sorted(given - takes):
            yield ctx.diag(
                step.with_spans.get(key, step.uses.span),
                "MUX034",
                f"workflow `{name}` has no arg `{key}`",
                did_you_mean(key, takes)
                or "its args: " + ", ".join(f"`{a}`" for a in sorted(takes)),
            )


# --------------------------------------------------------------------------- the rest


def _details(step: UsesStep, config: ResolvedConfig | None) -> tuple[tuple[str, str], ...]:
    shown = [("workflow", step.uses.name)]
    constants = {key: value for key, value in step.with_ if not isinstance(value, TemplateField)}
    if constants:
        import json  # only a --dry-run shows this

        shown.append(("with", json.dumps(constants, ensure_ascii=False)))
    return tuple(shown)


def _previewed(step: UsesStep) -> tuple[tuple[str, TemplateField], ...]:
    return tuple(
        (f"with.{key}", value) for key, value in step.with_ if isinstance(value, TemplateField)
    )


#: the qualified name of the call whose steps run in this task (``""`` outside any):
#: ``review``, ``fix#2`` (iteration 2), ``fix[3]`` (for_each item 3), ``a.b`` (a call
#: within a call). Tasks started by the nested run inherit it, so the run's trace and
#: ``--resume`` name nested steps ``outer.inner`` as the console and records do.
GROUP: ContextVar[str] = ContextVar("muxlang_group", default="")


def group_name(step: UsesStep, values: Mapping[str, Any], item: int | None) -> str:
    """The qualified name of this call's group (as ``runtime.calls.qualified_name``)."""
    name = step.name
    if step.repeat is not None:
        record = values.get("steps", {}).get(step.name, {})
        name += f"#{len(record.get('iterations', ())) + 1}"
    if item is not None:
        name += f"[{item}]"
    outer = GROUP.get()
    return f"{outer}.{name}" if outer else name


async def _run(
    step: UsesStep, values: Mapping[str, Any], runner: StepRunner, item: bool
) -> Outcome:
    args: dict[str, Any] = {}
    for key, value in step.with_:
        args[key] = (
            runner.render(f"with.{key}", value, values)
            if isinstance(value, TemplateField)
            else value
        )
    env = runner.env(step, values)
    index = values["loop"]["index"] if item else None  # a for_each item's own group
    token = GROUP.set(group_name(step, values, index))
    try:
        return await runner.run_workflow(step, args, env, item=index)
    finally:
        GROUP.reset(token)


KIND = StepKind(
    name="uses",
    node=UsesStep,
    fields={"steps": "table"},
    defaults=lambda: {"steps": {}},
    asks_backends=True,  # the called workflow may
    takes_slot=False,  # its steps take the slots: holding one would starve them
    details=_details,
    previewed=_previewed,
    shapes=Shapes(mermaid=('[["', '"]]'), dot="folder"),
    graph_json=lambda step: {"uses": step.uses.name},
    checks=(check_calls, check_call_args),
    run=_run,
    build=_build,
)

"""``compile_workflow``: every check, then the lowering to a :class:`Plan`."""

from __future__ import annotations

from dataclasses import replace

from muxlang.compiler.checks import CheckContext, run_checks
from muxlang.compiler.graph import Dependencies, cycle_diagnostics, dependencies, lower
from muxlang.compiler.plan import Plan, ResolvedConfig
from muxlang.diagnostics import Diagnostic
from muxlang.workflow import Workflow


def compile_workflow(
    workflow: Workflow, config: ResolvedConfig, *, callers: tuple[str, ...] = ()
) -> tuple[Plan | None, list[Diagnostic]]:
    """Check ``workflow`` against ``config`` and lower it to a plan.

    Every check runs and every diagnostic comes back, sorted by position; the plan
    is None when any of them is an error (warnings do not stop it). ``callers``
    are the files of the workflows that call this one through ``uses``; the plan
    of every workflow it calls is in ``Plan.calls``.
    """
    ctx = CheckContext(workflow, config, callers)
    found, deps = _check(ctx)
    if any(d.is_error for d in found):
        return None, found
    calls: dict[str, Plan] = {}
    for name, call in ctx.calls.items():
        called = getattr(call, "plan", None)
        if isinstance(called, Plan):
            calls[name] = called
    return replace(lower(workflow, config, deps), calls=calls), found


def check_workflow(workflow: Workflow, config: ResolvedConfig) -> list[Diagnostic]:
    """The diagnostics :func:`compile_workflow` finds, without building the plan
    (``muxlang validate``: no networkx graph for a workflow that is never run)."""
    return _check(CheckContext(workflow, config))[0]


def _check(ctx: CheckContext) -> tuple[list[Diagnostic], Dependencies]:
    workflow = ctx.workflow
    found = run_checks(ctx)
    deps = dependencies(workflow, ctx.sites)
    found.extend(cycle_diagnostics(workflow, deps))
    return sorted(dict.fromkeys(found), key=Diagnostic.sort_key), deps

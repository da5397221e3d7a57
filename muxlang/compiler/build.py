"""``compile_workflow``: every check, then the lowering to a :class:`Plan`."""

from __future__ import annotations

from muxlang.compiler.checks import CheckContext, run_checks
from muxlang.compiler.graph import Dependencies, cycle_diagnostics, dependencies, lower
from muxlang.compiler.plan import Plan, ResolvedConfig
from muxlang.diagnostics import Diagnostic
from muxlang.workflow import Workflow


def compile_workflow(
    workflow: Workflow, config: ResolvedConfig
) -> tuple[Plan | None, list[Diagnostic]]:
    """Check ``workflow`` against ``config`` and lower it to a plan.

    Every check runs and every diagnostic comes back, sorted by position; the plan
    is None when any of them is an error (warnings do not stop it).
    """
    found, deps = _check(workflow, config)
    if any(d.is_error for d in found):
        return None, found
    return lower(workflow, config, deps), found


def check_workflow(workflow: Workflow, config: ResolvedConfig) -> list[Diagnostic]:
    """The diagnostics :func:`compile_workflow` finds, without building the plan
    (``muxlang validate``: no networkx graph for a workflow that is never run)."""
    return _check(workflow, config)[0]


def _check(workflow: Workflow, config: ResolvedConfig) -> tuple[list[Diagnostic], Dependencies]:
    ctx = CheckContext(workflow, config)
    found = run_checks(ctx)
    deps = dependencies(workflow, ctx.sites)
    found.extend(cycle_diagnostics(workflow, deps))
    return sorted(dict.fromkeys(found), key=Diagnostic.sort_key), deps

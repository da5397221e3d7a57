"""``compile_workflow``: every check, then the lowering to a :class:`Plan`."""

from __future__ import annotations

from muxlang.compiler.checks import CheckContext, run_checks
from muxlang.compiler.graph import cycle_diagnostics, dependencies, lower
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
    ctx = CheckContext(workflow, config)
    found = run_checks(ctx)
    deps = dependencies(workflow, ctx.sites)
    found.extend(cycle_diagnostics(workflow, deps))
    found = sorted(dict.fromkeys(found), key=Diagnostic.sort_key)
    if any(d.is_error for d in found):
        return None, found
    return lower(workflow, config, deps), found

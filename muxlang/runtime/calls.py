"""A ``uses`` step at run time: the called workflow's plan runs as a nested group.

The nested run shares the caller's concurrency slots and apply gate (so
``max_concurrent`` and "an apply step runs alone" hold across the whole tree of
calls), its query service, and its cancellation: Ctrl-C, the caller's step and
workflow timeouts stop the nested steps like any other. The called workflow's
own ``timeout`` bounds the group. Each nested step is reported under a qualified
name, ``outer.inner`` (``a.b.c`` for calls within calls; ``outer#2.inner`` in
iteration 2 of a repeating call, ``outer[3].inner`` for the third for_each
item), to reporters that implement
``nested_started`` / ``nested_finished``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from muxlang.runtime.events import NullReporter, Reporter
from muxlang.steps.base import Outcome, StepError
from muxlang.workflow import AnyStep, Workflow

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.llm import QueryService
    from muxlang.runtime.result import RunResult
    from muxlang.runtime.scheduler import _Run


class NestedReporter(NullReporter):
    """Forwards a nested run's step events to the caller's reporter, qualified."""

    def __init__(self, parent: Reporter, prefix: str) -> None:
        self.parent = parent
        self.prefix = prefix

    def step_started(self, name: str) -> None:
        forward = getattr(self.parent, "nested_started", None)
        if forward is not None:
            forward(f"{self.prefix}.{name}")

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        forward = getattr(self.parent, "nested_finished", None)
        if forward is not None:
            forward(f"{self.prefix}.{name}", record, reason)

    def nested_started(self, name: str) -> None:
        self.step_started(name)

    def nested_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        self.step_finished(name, record, reason)


def qualified_name(run: _Run, step: AnyStep, item: int | None = None) -> str:
    """How the steps of this call are named: ``outer`` (``outer.inner``); for a
    repeating step ``outer#N`` (iteration N, from 1); for a for_each item
    ``outer[I]`` (item I, from 1): ``outer#2[3].inner``."""
    name = step.name
    if step.repeat is not None:
        done = len(run.records[step.name].get("iterations", ()))
        name += f"#{done + 1}"
    if item is not None:
        name += f"[{item}]"
    return name


def call_args(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """The called workflow's ``args``: ``with`` values, then its defaults."""
    values = dict(given)
    for arg in workflow.args:
        if arg.name not in values and not arg.required:
            values[arg.name] = arg.default
    return values


def call_outcome(result: RunResult) -> Outcome:
    """The ``uses`` step's outcome from the nested run's result."""
    fields = {"output": result.output, "steps": result.steps}
    if result.success:
        return Outcome(fields)
    return Outcome(fields, f"workflow `{result.workflow}` failed: {result.error or 'failed'}")


async def run_call(
    run: _Run,
    step: AnyStep,
    args: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    item: int | None = None,
) -> Outcome:
    """Run the workflow ``step`` calls, as a group nested in ``run``.

    A called workflow that defines its own ``[backends]``/``[roles]`` gets a router
    of its own configuration (the one it was checked against); any other shares
    the caller's."""
    plan = run.plan.calls.get(step.name)
    if plan is None:
        raise StepError(f"step {step.name!r} calls no compiled workflow")
    own = plan.workflow.config
    if not (own.backends or own.roles):
        return await _nested(run, step, plan, args, environ, run.executor.query, item)
    from muxlang.runtime.backends import open_router

    async with open_router(
        plan.config, environ=environ, max_concurrent=run.max_concurrent
    ) as query:
        return await _nested(run, step, plan, args, environ, query, item)


async def _nested(
    run: _Run,
    step: AnyStep,
    plan: Plan,
    args: Mapping[str, Any],
    environ: Mapping[str, str],
    query: QueryService,
    item: int | None,
) -> Outcome:
    from muxlang.runtime.scheduler import _Run

    nested = _Run(
        plan,
        args=call_args(plan.workflow, args),
        query=query,
        reporter=NestedReporter(run.reporter, qualified_name(run, step, item)),
        keep_going=run.keep_going,
        environ=environ,
        max_concurrent=run.max_concurrent,
        debug=run.debug,
        no_write=run.no_write,
        caller=run,
        apply=run.executor.apply,
    )
    result = await nested.execute(interrupt=None, print_step=None, dry_run=False)
    return call_outcome(result)

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

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from muxlang.runtime.accounting import Accounting
from muxlang.runtime.events import NullReporter, Reporter
from muxlang.steps.base import Outcome, StepError
from muxlang.workflow import AnyStep, Workflow

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.llm import QueryService
    from muxlang.runtime.result import RunResult
    from muxlang.runtime.scheduler import _Run


class NestedReporter(NullReporter):
    """Forwards a nested run's step events to the caller's reporter, qualified;
    ``after`` (if given) is called once each nested step (at any depth) ended."""

    def __init__(
        self, parent: Reporter, prefix: str, after: Callable[[], None] | None = None
    ) -> None:
        self.parent = parent
        self.prefix = prefix
        self.after = after

    def step_started(self, name: str) -> None:
        forward = getattr(self.parent, "nested_started", None)
        if forward is not None:
            forward(f"{self.prefix}.{name}")

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        forward = getattr(self.parent, "nested_finished", None)
        if forward is not None:
            forward(f"{self.prefix}.{name}", record, reason)
        if self.after is not None:
            self.after()

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
    shared = run.executor.query
    if not (own.backends or own.roles):
        return await _nested(run, step, plan, args, environ, shared, item)
    from muxlang.runtime.backends import open_router

    async with open_router(
        plan.config, environ=environ, max_concurrent=run.max_concurrent
    ) as router:
        query: QueryService = router
        if isinstance(shared, Accounting):  # the run's budgets and cache hold here too
            query = dataclasses.replace(shared, inner=router)
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

    prefix = qualified_name(run, step, item)
    kept: list[_Run] = []
    nested = _Run(
        plan,
        args=call_args(plan.workflow, args),
        query=query,
        reporter=NestedReporter(run.reporter, prefix, _keeper(run, step, item, kept)),
        keep_going=run.keep_going,
        environ=environ,
        max_concurrent=run.max_concurrent,
        debug=run.debug,
        no_write=run.no_write,
        caller=run,
        apply=run.executor.apply,
    )
    kept.append(nested)
    finished = False
    try:
        result = await nested.execute(interrupt=None, print_step=None, dry_run=False)
        finished = True
    finally:
        if not finished:  # stopped half-way (Ctrl-C, a timeout, fail_fast)
            _stopped(run, step, item, nested)
    return call_outcome(result)


# --------------------------------------------------------------------------- kept as it goes
#
# A call stopped half-way keeps the nested steps it finished (issue 21): while it
# runs, each nested step's end hands the top-level step's record so far to the
# run recorder (``Trace.on_iteration``: written as a pending row, which a SIGKILL
# leaves behind); when it is cancelled, the records go into the step's record
# (``steps``, or the item's, or an iteration of a repeating call), which the
# stopped step's row then holds. ``--resume`` reuses them as those of a call
# that failed.


def _finished(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The nested records of steps that ended (pending ones did not)."""
    return {name: r for name, r in records.items() if r.get("status") != "pending"}


def _so_far(run: _Run, step: AnyStep, item: int | None, steps: dict[str, Any]) -> dict[str, Any]:
    """``step``'s record in ``run`` with ``steps`` as the nested records of this call:
    its own, a for_each item's (``item``, from 1) or its current iteration's."""
    record = dict(run.records[step.name])
    if item is not None:
        results = list(record.get("results") or ())
        if 0 < item <= len(results):
            results[item - 1] = {**results[item - 1], "steps": steps}
        record["results"] = results
    if step.repeat is not None:
        iterations = list(record.get("iterations") or ())
        current = {k: v for k, v in record.items() if k != "iterations"}
        current.update(status="pending", iteration=len(iterations) + 1, error=None)
        if item is None:
            current["steps"] = steps
        record["iterations"] = [*iterations, current]
    elif item is None:
        record["steps"] = steps
    return record


def _keeper(
    run: _Run, step: AnyStep, item: int | None, kept: list[_Run]
) -> Callable[[], None] | None:
    """What a top-level call does after each nested step: hand the recorder the
    call's record so far (None when nobody records, or for a call within a call:
    the top-level call's keeper sees its steps' ends too)."""
    from muxlang.runtime import trace
    from muxlang.steps.uses import GROUP

    run_trace = trace.current_trace()
    hook = run_trace.on_iteration if run_trace is not None else None
    if hook is None or "." in GROUP.get():  # (the group of a top-level call: `call`)
        return None

    def keep() -> None:
        if kept:
            hook(step.name, _so_far(run, step, item, _finished(kept[0].records)))

    return keep


def _stopped(run: _Run, step: AnyStep, item: int | None, nested: _Run) -> None:
    """The call was cancelled: the nested steps it finished go into its record (those
    it was running are failed, ``cancelled``; those it had not started, skipped)."""
    import trio

    from muxlang.runtime.scheduler import duration_ms

    now = trio.current_time()
    steps: dict[str, Any] = {}
    for name, record in nested.records.items():
        if record.get("status") == "pending":
            record = dict(record)
            if name in nested.started_at:
                record.update(status="failed", failed=True, error="cancelled")
                record["duration_ms"] = duration_ms(now - nested.started_at[name])
            else:
                record["status"] = "skipped"
        steps[name] = record
    live = run.records[step.name]
    if item is not None:
        results = live.get("results") or ()
        if 0 < item <= len(results) and step.repeat is None:
            results[item - 1]["steps"] = steps
    elif step.repeat is not None:
        iterations = live.setdefault("iterations", [])
        current = {k: v for k, v in live.items() if k != "iterations"}
        current.update(
            steps=steps,
            status="failed",
            failed=True,
            error="cancelled",
            iteration=len(iterations) + 1,
            output="",
        )
        iterations.append(current)
    else:
        live["steps"] = steps

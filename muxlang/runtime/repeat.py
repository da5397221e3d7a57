"""``repeat = { until, max_iterations }``: run a step again until ``until`` is true.

The step runs once per iteration (a for_each step runs all its items each
time). After each iteration ``steps.NAME`` is that iteration's record and
``loop`` is the iteration (``loop.index`` from 1, ``loop.length`` the
``max_iterations``); then ``until`` is evaluated. True ends the step with that
iteration's outcome; false runs it again, whatever the iteration's status (a
failed iteration is what repeating is for). When ``max_iterations`` run out the
step fails (``continue_on_error`` lets the run go on). ``steps.NAME.iterations``
lists every iteration's record, each with its ``iteration`` number; the step's
own fields are the last iteration's. A step's ``timeout`` covers all its
iterations.

On ``--resume`` (the trace's reuse hook offers ``iteration``), the iterations a
failed or stopped earlier run finished are reused, not run, up to the first one
that did not finish; ``until`` is evaluated after each as in a full run. A
``uses`` step's iterations reuse their nested steps instead (each judged by
itself). A for_each step's finished iterations are reused too: its items are
evaluated once, before its first iteration, so every iteration runs the same
items with the same rendered text, which resume compares with the earlier
run's as for any for_each step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from muxlang.runtime import trace
from muxlang.runtime.context import evaluate, truthy
from muxlang.steps.base import Outcome
from muxlang.template.loop import loop_table
from muxlang.workflow import AnyStep

Record = dict[str, Any]


async def run_repeat(
    step: AnyStep,
    once: Callable[[], Awaitable[Outcome]],
    record: Record,
    values: Mapping[str, Any],
    *,
    fresh: Callable[[], Record],
    path: str = "",
) -> Outcome:
    """Run ``once`` until ``step.repeat.until`` holds; ``record`` is the step's live
    record (what ``steps.NAME`` shows), ``fresh`` a pending record of the step."""
    spec = step.repeat
    assert spec is not None
    iterations: list[Record] = []
    record["iterations"] = iterations
    last = Outcome()
    reuse = _reuse_hook(step)
    for index0 in range(spec.max_iterations):
        record["status"] = "pending"
        started = trio.current_time()
        reused = reuse(trace.qualified(step.name), index0 + 1) if reuse is not None else None
        if reused is not None:  # --resume: the earlier run finished this iteration
            await trio.lowlevel.checkpoint()
            last = Outcome(reused)
        else:
            reuse = None  # from the first iteration that runs, every later one runs
            last = await once()
        iteration = fresh()
        iteration.pop("iterations", None)
        iteration.update(last.fields)
        iteration["error"] = last.error
        iteration["status"] = "failed" if last.error is not None else "success"
        iteration["failed"] = last.error is not None
        iteration["duration_ms"] = max(0, round((trio.current_time() - started) * 1000))
        iteration["iteration"] = index0 + 1
        iterations.append(iteration)
        record.update({key: value for key, value in iteration.items() if key != "iteration"})
        _kept(step.name, record)
        scope = {**values, "loop": loop_table(index0, spec.max_iterations)}
        if truthy(evaluate("repeat.until", spec.until, scope, path=path)):
            return Outcome({**last.fields, "iterations": iterations}, last.error)
    count = spec.max_iterations
    error = (
        f"`repeat.until` ({spec.until.source}) was still false after "
        f"{count} iteration{'s' if count != 1 else ''} (max_iterations)"
    )
    if last.error is not None:
        error += f"; the last one failed: {last.error}"
    return Outcome({**last.fields, "iterations": iterations}, error)


def _kept(name: str, record: Record) -> None:
    """Hand the step's record so far to whoever keeps it (the run recorder), so that
    a run killed before the step ends keeps its finished iterations (a nested
    step's are kept with its call's record, when the call ends)."""
    run_trace = trace.current_trace()
    hook = run_trace.on_iteration if run_trace is not None else None
    if hook is not None and trace.qualified(name) == name:
        hook(name, record)


def _reuse_hook(step: AnyStep) -> Callable[[str, int], dict[str, Any] | None] | None:
    """``--resume``'s offer of a repeating step's earlier iterations (None: none)."""
    if step.type == "uses":
        return None
    run_trace = trace.current_trace()
    hook = getattr(run_trace.reuse, "iteration", None) if run_trace is not None else None
    return hook if callable(hook) else None

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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

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
    for index0 in range(spec.max_iterations):
        record["status"] = "pending"
        started = trio.current_time()
        last = await once()
        iteration = fresh()
        iteration.pop("iterations", None)
        iteration.update(last.fields)
        iteration["error"] = last.error
        iteration["status"] = "failed" if last.error is not None else "success"
        iteration["duration_ms"] = max(0, round((trio.current_time() - started) * 1000))
        iteration["iteration"] = index0 + 1
        iterations.append(iteration)
        record.update({key: value for key, value in iteration.items() if key != "iteration"})
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

"""for_each: a step run once per item (SPEC section 6).

The items come from the step's ``for_each`` expression (a list; a string is an
error that suggests ``| lines`` or ``| from_json``). Items start in item order,
up to the step's ``max_parallel`` and the run's ``max_concurrent`` slots; with
``fail_fast`` the first failing item cancels the rest. An ``if`` that reads
``item`` or ``loop`` is evaluated per item. Each item leaves a record in
``steps.NAME.results``; the step's own fields combine them (the step type's
``combine_items``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from muxlang.compiler.plan import CompiledStep
from muxlang.runtime.context import StepError, evaluate, loop_values, references_name, truthy
from muxlang.steps import step_kind
from muxlang.steps.base import Outcome
from muxlang.template.filters import KIND_ARTICLES
from muxlang.template.values import kind_of
from muxlang.workflow import AnyStep

if TYPE_CHECKING:
    from muxlang.runtime.scheduler import _Run

Record = dict[str, Any]


async def run_for_each(run: _Run, compiled: CompiledStep) -> Outcome:
    """Run every item of a for_each step; the step's outcome."""
    from muxlang.runtime.scope import new_record

    step = compiled.step
    assert step.for_each is not None
    value = evaluate("for_each", step.for_each, run.values, path=run.plan.workflow.path)
    items = as_items(value)
    results: list[Record] = []
    for item in items:
        item_record = {"item": item, **new_record(step)}
        item_record.pop("results", None)
        results.append(item_record)
    run.records[step.name]["results"] = results
    if not items:
        return Outcome({"output": "", "results": results})
    state = ItemsState(
        slots=trio.Semaphore(step.max_parallel) if step.max_parallel else None,
        total=len(items),
    )
    per_item = if_per_item(compiled)
    status = run._status(compiled) if per_item else None
    async with trio.open_nursery() as nursery:
        state.scope = nursery.cancel_scope
        for index, item in enumerate(items):
            record = results[index]
            values = {**run.values, "item": item, "loop": loop_values(index, len(items))}
            if per_item and step.if_ is not None:
                try:
                    condition = evaluate(
                        "if", step.if_, values, status=status, path=run.plan.workflow.path
                    )
                except StepError as exc:
                    record.update(status="failed", error=str(exc))
                    _item_failed(step, index, state)
                    continue
                if not truthy(condition):
                    record["status"] = "skipped"
                    state.finished += 1
                    continue
            # slots are taken in item order: with max_parallel = 1, items run in order
            if state.slots is not None:
                await state.slots.acquire()
            try:
                if step_kind(step).takes_slot:  # a group's own steps take the slots
                    await run.limiter.acquire_on_behalf_of((run.token, step.name, index))
            except BaseException:
                if state.slots is not None:
                    state.slots.release()
                raise
            nursery.start_soon(_item, run, step, index, values, record, state)
    for record in results:
        if record["status"] == "pending":  # never started: cancelled before its turn
            record["status"] = "skipped"
    return items_outcome(step, results, state)


async def _item(
    run: _Run,
    step: AnyStep,
    index: int,
    values: dict[str, Any],
    record: Record,
    state: ItemsState,
) -> None:
    from muxlang.runtime.scheduler import duration_ms

    started = trio.current_time()
    try:
        outcome = await run.executor.run(step, values, item=True)
        record.update(outcome.fields)
        record["duration_ms"] = duration_ms(trio.current_time() - started)
        record["error"] = outcome.error
        record["status"] = "failed" if outcome.error is not None else "success"
        if outcome.error is not None:
            _item_failed(step, index, state)
    finally:
        if step_kind(step).takes_slot:
            run.limiter.release_on_behalf_of((run.token, step.name, index))
        if state.slots is not None:
            state.slots.release()
        state.finished += 1
        run.reporter.item_finished(step.name, state.finished, state.total)
        if record["status"] == "pending":  # cancelled while running
            if state.first_failure is not None:
                reason = f"item {state.first_failure + 1} failed"
            else:
                reason = run.abort or run.stop or "the step was cancelled"
            record["status"] = "failed"
            record["error"] = f"cancelled: {reason}"
            record["duration_ms"] = duration_ms(trio.current_time() - started)
            state.cancelled.add(index)


def _item_failed(step: AnyStep, index: int, state: ItemsState) -> None:
    state.failed.append(index)
    if step.fail_fast and state.first_failure is None:
        state.first_failure = index
        assert state.scope is not None
        state.scope.cancel()


@dataclass
class ItemsState:
    """The items of one for_each step while they run."""

    slots: trio.Semaphore | None
    total: int = 0
    finished: int = 0
    scope: trio.CancelScope | None = None
    first_failure: int | None = None
    failed: list[int] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)


def if_per_item(compiled: CompiledStep) -> bool:
    """A for_each step's ``if`` that reads ``item`` or ``loop`` is evaluated per item."""
    step = compiled.step
    if step.for_each is None or step.if_ is None:
        return False
    return compiled.if_per_item or references_name(step.if_.expr, "loop")


def as_items(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        raise StepError(
            "`for_each` must give a list, not a string: split text into lines with "
            "`| lines`, or parse a JSON list with `| from_json`"
        )
    kind = kind_of(value)
    what = "an undefined value" if kind == "undefined" else KIND_ARTICLES[kind]
    raise StepError(f"`for_each` must give a list, not {what}")


def items_outcome(step: AnyStep, results: list[Record], state: ItemsState) -> Outcome:
    ran = [r for r in results if r["status"] != "skipped"]
    fields: Record = {"output": "\n".join(str(r["output"]) for r in ran), "results": results}
    fields.update(step_kind(step).combine_items(ran))
    if not state.failed:
        return Outcome(fields)
    first = state.failed[0]
    item_text = _short(results[first]["item"])
    error = f"item {first + 1} ({item_text}) failed: {results[first]['error']}"
    if len(state.failed) > 1:
        error += f" ({len(state.failed)} of {len(results)} items failed)"
    elif state.cancelled:
        error += f" ({len(state.cancelled)} running items cancelled)"
    return Outcome(fields, error)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

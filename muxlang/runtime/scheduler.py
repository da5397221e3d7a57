"""The scheduler: runs a :class:`~muxlang.compiler.plan.Plan` with structured concurrency.

Every step gets one task in one nursery. A task waits until each of its
dependencies finished, decides whether the step runs (SPEC section 6: skip
rules and status functions), takes a slot (a :class:`trio.CapacityLimiter` of
``max_concurrent``; an apply step takes the whole run for itself), and runs the
step inside its own cancel scope, so that a failure elsewhere, the step's
``timeout`` and the workflow's ``timeout`` each cancel exactly what they should.
Each task records its own outcome: nurseries are fail-fast, records are not.
"""

from __future__ import annotations

import heapq
import math
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import trio

from muxlang.compiler.plan import CompiledStep, Plan
from muxlang.llm import QueryService
from muxlang.runtime import trace
from muxlang.runtime.calls import NestedReporter, call_args, call_outcome
from muxlang.runtime.context import (
    Status,
    StepError,
    evaluate,
    loop_values,
    references_name,
    truthy,
)
from muxlang.runtime.events import NullReporter, Reporter
from muxlang.runtime.repeat import run_repeat
from muxlang.runtime.steps import Executor, Outcome
from muxlang.steps import step_kind
from muxlang.template.filters import KIND_ARTICLES
from muxlang.template.values import NamedTable, kind_of
from muxlang.workflow import AnyStep

Record = dict[str, Any]

#: status functions that replace the implicit "every dependency succeeded" check
_REPLACING = frozenset({"always", "failure"})


@dataclass
class RunResult:
    """The run as a whole: success, duration and every step's record."""

    workflow: str
    success: bool
    duration_ms: int
    steps: dict[str, Record]
    order: tuple[str, ...]
    #: the step whose output is the run's output: ``--print``, else the last step
    #: nothing depends on (in a successful run: the last of those that succeeded)
    final_step: str | None = None
    #: why the run failed, in one line (None when it succeeded)
    error: str | None = None
    interrupted: bool = False
    timed_out: bool = False
    #: why each skipped or cancelled step did not run to completion
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """The run's output: the final step's output (``""`` when none)."""
        if self.final_step is None:
            return ""
        return str(self.steps[self.final_step].get("output", ""))

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` object (SPEC section 8)."""
        return {
            "workflow": self.workflow,
            "success": self.success,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "interrupted": self.interrupted,
            "steps": {name: self.steps[name] for name in self.order},
        }


def new_record(step: AnyStep) -> Record:
    """A step's record before it ran (status ``"pending"``)."""
    record: Record = {"output": "", "status": "pending", "error": None, "duration_ms": 0}
    record["failed"] = False  # llm-mux's `steps.X.failed`: the status is "failed"
    record.update(_type_fields(step))
    if step.for_each is not None:
        record["results"] = []
    if step.repeat is not None:
        record["iterations"] = []
    return record


def _type_fields(step: AnyStep) -> Record:
    return step_kind(step).defaults()


def duration_ms(seconds: float) -> int:
    """Whole milliseconds, never negative."""
    return max(0, round(seconds * 1000))


def format_seconds(seconds: float) -> str:
    """``2 s``, ``1.5 s``, ``500 ms``: durations as messages show them."""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds == int(seconds):
        return f"{int(seconds)} s"
    return f"{seconds:g} s"


async def execute(
    plan: Plan,
    *,
    args: Mapping[str, Any],
    query: QueryService,
    reporter: Reporter | None = None,
    keep_going: bool = False,
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
    max_concurrent: int | None = None,
    interrupt: trio.Event | None = None,
    print_step: str | None = None,
    debug: bool = False,
    no_write: bool = False,
) -> RunResult:
    """Run ``plan`` and return every step's record.

    ``args`` are the resolved workflow arguments (see :mod:`muxlang.runtime.args`).
    ``interrupt`` set (Ctrl-C) cancels the run: processes are stopped, an apply
    in progress rolls back, and the result says ``interrupted``. ``dry_run``
    runs nothing: every step is ``skipped`` (use :mod:`muxlang.runtime.preview`
    to show what would run).
    """
    run = _Run(
        plan,
        args=args,
        query=query,
        reporter=reporter or NullReporter(),
        keep_going=keep_going,
        environ=os.environ if environ is None else environ,
        max_concurrent=max_concurrent or plan.max_concurrent,
        debug=debug,
        no_write=no_write,
    )
    return await run.execute(interrupt=interrupt, print_step=print_step, dry_run=dry_run)


class _Gate:
    """A readers-writer gate: ordinary steps share it, an apply step holds it alone.

    A waiting apply step goes first: no new ordinary step starts while one waits.
    """

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0
        self._lot = trio.lowlevel.ParkingLot()

    async def acquire_shared(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        while self._exclusive or self._waiting_exclusive:
            await self._lot.park()
        self._shared += 1

    def release_shared(self) -> None:
        self._shared -= 1
        self._lot.unpark_all()

    async def acquire_exclusive(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        self._waiting_exclusive += 1
        try:
            while self._exclusive or self._shared:
                await self._lot.park()
        finally:
            self._waiting_exclusive -= 1
            self._lot.unpark_all()
        self._exclusive = True

    def release_exclusive(self) -> None:
        self._exclusive = False
        self._lot.unpark_all()


class _Run:
    def __init__(
        self,
        plan: Plan,
        *,
        args: Mapping[str, Any],
        query: QueryService,
        reporter: Reporter,
        keep_going: bool,
        environ: Mapping[str, str],
        max_concurrent: int,
        debug: bool,
        no_write: bool = False,
        caller: _Run | None = None,
    ) -> None:
        self.plan = plan
        self.reporter = reporter
        self.environ = environ
        self.no_write = no_write
        self.max_concurrent = max_concurrent
        self.keep_going = keep_going
        self.debug = debug
        self.records: dict[str, Record] = {
            name: new_record(plan.step(name).step) for name in plan.order
        }
        self.values: dict[str, Any] = {
            "steps": self.records,
            "args": dict(args),
            "env": dict(environ),
            "team": plan.config.team,
            # `{{ workflow }}` inserts the name, as in llm-mux; `workflow.name` too
            "workflow": NamedTable(
                {"name": plan.workflow.name, "description": plan.workflow.description},
                plan.workflow.name,
            ),
        }
        self.executor = Executor(
            project_root=plan.config.project_root,
            query=query,
            environ=environ,
            workflow_path=plan.workflow.path,
            team_verify=plan.config.team_verify,
            no_write=no_write,
            call=self._call,
        )
        graph = plan.graph
        self.index = {name: i for i, name in enumerate(plan.order)}
        #: how many dependencies of each step have not finished yet
        self.waiting = {name: graph.in_degree(name) for name in plan.order}
        #: steps whose dependencies all finished, by plan order (a heap)
        self.ready = [(i, name) for i, name in enumerate(plan.order) if not self.waiting[name]]
        self.finished = 0
        self.wakeup = trio.Event()
        # a called workflow's steps share the caller's slots and apply gate
        self.limiter: trio.CapacityLimiter = (
            caller.limiter if caller else trio.CapacityLimiter(max(1, max_concurrent))
        )
        self.gate: _Gate = caller.gate if caller else _Gate()
        self.scopes: dict[str, trio.CancelScope] = {}
        self.started_at: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.failures: list[str] = []
        #: a failure stopped the run: only steps with always()/failure() still start
        self.abort: str | None = None
        #: Ctrl-C or the workflow timeout: nothing starts any more
        self.stop: str | None = None

    # ------------------------------------------------------------------ the run

    async def execute(
        self, *, interrupt: trio.Event | None, print_step: str | None, dry_run: bool
    ) -> RunResult:
        plan = self.plan
        start = trio.current_time()
        self.reporter.run_started(plan)
        interrupted = timed_out = False
        if dry_run:
            self.stop = "dry run"
        else:
            with trio.CancelScope() as run_scope:
                async with trio.open_nursery() as outer:
                    if interrupt is not None:
                        outer.start_soon(self._watch_interrupt, interrupt, run_scope)
                    if plan.workflow.timeout:
                        outer.start_soon(self._watch_timeout, plan.workflow.timeout, run_scope)
                    async with trio.open_nursery() as nursery:
                        await self._dispatch(nursery)
                    outer.cancel_scope.cancel()
            if run_scope.cancelled_caught:
                interrupted = self.stop == "interrupted"
                timed_out = not interrupted
        self._finalize_unfinished()
        success = not self.failures and not interrupted and not timed_out and not dry_run
        error: str | None = None
        if interrupted:
            error = "interrupted"
        elif timed_out:
            error = self.stop
        elif self.failures:
            first = self.failures[0]
            error = f"step {first!r} failed: {self.records[first]['error']}"
        finals = plan.final_steps()
        ran = [name for name in finals if self.records[name]["status"] == "success"]
        candidates = ran if success and ran else finals
        final_step = print_step or (candidates[-1] if candidates else None)
        result = RunResult(
            workflow=plan.workflow.name,
            success=success or dry_run,
            duration_ms=duration_ms(trio.current_time() - start),
            steps=self.records,
            order=plan.order,
            final_step=final_step,
            error=error,
            interrupted=interrupted,
            timed_out=timed_out,
            reasons=self.reasons,
        )
        self.reporter.run_finished(result)
        return result

    async def _watch_interrupt(self, interrupt: trio.Event, run_scope: trio.CancelScope) -> None:
        await interrupt.wait()
        if self.stop is None:
            self.stop = "interrupted"
        run_scope.cancel()

    async def _watch_timeout(self, timeout: float, run_scope: trio.CancelScope) -> None:
        await trio.sleep(timeout)
        if self.stop is None:
            self.stop = f"the workflow timed out after {format_seconds(timeout)}"
        run_scope.cancel()

    def _finalize_unfinished(self) -> None:
        """Records of steps the run stopped: started ones failed, others skipped."""
        now = trio.current_time()
        for name in self.plan.order:
            record = self.records[name]
            if record["status"] != "pending":
                continue
            reason = self.stop or self.abort or "not run"
            if name in self.started_at:
                record["status"] = "failed"
                record["error"] = f"cancelled: {reason}"
                record["duration_ms"] = duration_ms(now - self.started_at[name])
            else:
                record["status"] = "skipped"
            self.reasons[name] = reason
            self.reporter.step_finished(name, record, reason)

    # ------------------------------------------------------------------ one step

    async def _dispatch(self, nursery: trio.Nursery) -> None:
        """Start steps as their dependencies finish, lowest plan position first.

        Slots are taken here, in order, so that with ``max_concurrent = 1`` steps
        run in file order and the start order never depends on task scheduling.
        """
        total = len(self.plan.order)
        while self.finished < total:
            if not self.ready:
                await self.wakeup.wait()
                self.wakeup = trio.Event()
                continue
            _, name = heapq.heappop(self.ready)
            await self._launch(name, nursery)

    def _done(self, name: str) -> None:
        """``name`` finished (ran, failed or was skipped): release its dependents."""
        self.finished += 1
        for dependent in self.plan.graph.successors(name):
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0:
                heapq.heappush(self.ready, (self.index[dependent], dependent))
        self.wakeup.set()

    async def _launch(self, name: str, nursery: trio.Nursery) -> None:
        compiled = self.plan.step(name)
        try:
            skip = self._skip_reason(compiled)
        except Exception as exc:  # a template error in `if` (or a bug): the step fails
            if self.debug and not isinstance(exc, StepError):
                traceback.print_exc()
            message = str(exc) if isinstance(exc, StepError) else _internal(exc)
            self._finish(name, Outcome(error=message), trio.current_time())
            self._done(name)
            return
        if skip is not None:
            self._skip(name, skip)
            self._done(name)
            return
        release: Callable[[], None] | None = None
        with trio.CancelScope() as waiting:
            self.scopes[name] = waiting
            release = await self._acquire(name, compiled.step)
        del self.scopes[name]
        # `cancel_called`, not `cancelled_caught`: a failing step gives its slot back
        # before it marks the run failed, so the acquire here can succeed and the
        # cancel arrive after it, with no checkpoint left to raise it. Such a step
        # must not start (a paid LLM call after the run has already failed).
        if release is None or waiting.cancel_called:
            if release is not None:
                release()
            self._skip(name, self.abort or "cancelled")
            self._done(name)
            return
        scope = trio.CancelScope()
        self.scopes[name] = scope
        nursery.start_soon(self._run_step, compiled, scope, release)

    async def _acquire(self, name: str, step: AnyStep) -> Callable[[], None]:
        """Take what ``step`` needs to run; returns how to give it back."""
        if not step_kind(step).takes_slot:  # a group: its own steps take slots
            return _nothing
        if step_kind(step).exclusive:
            await self.gate.acquire_exclusive()
            return self.gate.release_exclusive
        await self.gate.acquire_shared()
        if step.for_each is not None:  # its items take the slots
            return self.gate.release_shared
        try:
            await self.limiter.acquire_on_behalf_of(name)
        except BaseException:
            self.gate.release_shared()
            raise

        def release() -> None:
            self.limiter.release_on_behalf_of(name)
            self.gate.release_shared()

        return release

    async def _run_step(
        self, compiled: CompiledStep, scope: trio.CancelScope, release: Callable[[], None]
    ) -> None:
        name, step = compiled.name, compiled.step
        started: float | None = None
        outcome = Outcome()
        try:
            try:
                with scope:
                    if scope.cancel_called:  # a failure elsewhere, before it started
                        await trio.lowlevel.checkpoint()
                    started = trio.current_time()
                    self.started_at[name] = started
                    self.reporter.step_started(name)
                    deadline = started + step.timeout if step.timeout else math.inf
                    with trio.CancelScope(deadline=deadline) as step_scope:
                        outcome = await self._execute(compiled)
                    if step_scope.cancelled_caught:
                        assert step.timeout is not None
                        outcome = Outcome(
                            outcome.fields,
                            f"timed out after {format_seconds(step.timeout)} (step timeout)",
                        )
            finally:
                release()
                del self.scopes[name]
            if scope.cancelled_caught:
                reason = self.abort or "cancelled"
                if started is None:
                    self._skip(name, reason)
                else:
                    self.reasons[name] = reason
                    cancelled = Outcome(outcome.fields, f"cancelled: {reason}")
                    self._finish(name, cancelled, started, cancelled=True)
            else:
                assert started is not None
                self._finish(name, outcome, started)
        finally:
            self._done(name)

    async def _execute(self, compiled: CompiledStep) -> Outcome:
        """The step's outcome; a failed step runs again up to its ``retries``
        (llm-mux), ``retry_delay_ms`` apart, inside the step's ``timeout``."""
        step = compiled.step
        reused = trace.reused(compiled, self.values)  # --resume: the earlier result
        if reused is not None:
            await trio.lowlevel.checkpoint()
            return reused  # type: ignore[no-any-return]
        outcome = await self._attempt(compiled)
        for _ in range(step.retries):
            if outcome.error is None:
                break
            await trio.sleep(step.retry_delay_ms / 1000)
            outcome = await self._attempt(compiled)
        return outcome

    async def _attempt(self, compiled: CompiledStep) -> Outcome:
        try:
            step = compiled.step
            if step.repeat is not None:
                return await run_repeat(
                    step,
                    lambda: self._once(compiled),
                    self.records[step.name],
                    self.values,
                    fresh=lambda: new_record(step),
                    path=self.plan.workflow.path,
                )
            return await self._once(compiled)
        except StepError as exc:
            return Outcome(error=str(exc))
        except Exception as exc:  # a bug: fail the step, keep the run's bookkeeping intact
            if self.debug:
                traceback.print_exc()
            return Outcome(error=_internal(exc))

    async def _call(
        self, step: AnyStep, args: Mapping[str, Any], environ: Mapping[str, str]
    ) -> Outcome:
        """Run the workflow a ``uses`` step calls, as a group nested in this run."""
        plan = self.plan.calls.get(step.name)
        if plan is None:
            raise StepError(f"step {step.name!r} calls no compiled workflow")
        nested = _Run(
            plan,
            args=call_args(plan.workflow, args),
            query=self.executor.query,
            reporter=NestedReporter(self.reporter, step.name),
            keep_going=self.keep_going,
            environ=environ,
            max_concurrent=self.max_concurrent,
            debug=self.debug,
            no_write=self.no_write,
            caller=self,
        )
        result = await nested.execute(interrupt=None, print_step=None, dry_run=False)
        return call_outcome(result)

    async def _once(self, compiled: CompiledStep) -> Outcome:
        """One execution of the step: all its for_each items, or the step itself."""
        if compiled.step.for_each is not None:
            return await self._for_each(compiled)
        return await self.executor.run(compiled.step, self.values)

    def _skip_reason(self, compiled: CompiledStep) -> str | None:
        """Why the step must not run, or None when it runs (its ``if`` may be per item).

        ``always()`` or ``failure()`` in ``if`` replace the implicit "every
        dependency succeeded" check (and let the step start after a failure
        stopped the run); ``success()`` is that check, spelt out.
        """
        if self.stop is not None:
            return self.stop
        step = compiled.step
        if not compiled.status_functions & _REPLACING:
            for dependency in compiled.dependencies:
                status = self.records[dependency]["status"]
                if status != "success":
                    return f"dependency {dependency!r} {status}"
            if self.abort is not None:
                return self.abort
        if step.if_ is not None and not _if_per_item(compiled):
            value = evaluate(
                "if",
                step.if_,
                self.values,
                status=self._status(compiled),
                path=self.plan.workflow.path,
            )
            if not truthy(value):
                return "`if` is false"
        return None

    def _status(self, compiled: CompiledStep) -> Status:
        """``success()``: every dependency succeeded; ``failure()``: a step this one
        depends on, directly or not, failed."""
        success = all(self.records[d]["status"] == "success" for d in compiled.dependencies)
        failure = False
        if "failure" in compiled.status_functions:
            ancestors = nx.ancestors(self.plan.graph, compiled.name)
            failure = any(self.records[a]["status"] == "failed" for a in ancestors)
        return Status(success=success, failure=failure)

    def _skip(self, name: str, reason: str) -> None:
        record = self.records[name]
        record["status"] = "skipped"
        self.reasons[name] = reason
        self.reporter.step_finished(name, record, reason)

    def _finish(self, name: str, outcome: Outcome, started: float, cancelled: bool = False) -> None:
        record = self.records[name]
        record.update(outcome.fields)
        record["duration_ms"] = duration_ms(trio.current_time() - started)
        record["error"] = outcome.error
        record["status"] = "failed" if outcome.error is not None else "success"
        record["failed"] = outcome.error is not None
        step = self.plan.step(name).step
        tolerated = step.continue_on_error or self.plan.workflow.continue_on_error
        if outcome.error is not None and not cancelled and not tolerated:
            self.failures.append(name)
            if not self.keep_going and self.abort is None:
                self.abort = f"step {name!r} failed"
                for other, scope in self.scopes.items():
                    if other != name:
                        scope.cancel()
        self.reporter.step_finished(name, record, self.reasons.get(name))

    # ------------------------------------------------------------------ for_each

    async def _for_each(self, compiled: CompiledStep) -> Outcome:
        step = compiled.step
        assert step.for_each is not None
        value = evaluate("for_each", step.for_each, self.values, path=self.plan.workflow.path)
        items = _as_items(value)
        results: list[Record] = []
        for item in items:
            item_record = {"item": item, **new_record(step)}
            item_record.pop("results", None)
            results.append(item_record)
        self.records[step.name]["results"] = results
        if not items:
            return Outcome({"output": "", "results": results})
        state = _ItemsState(
            slots=trio.Semaphore(step.max_parallel) if step.max_parallel else None,
            total=len(items),
        )
        per_item = _if_per_item(compiled)
        status = self._status(compiled) if per_item else None
        async with trio.open_nursery() as nursery:
            state.scope = nursery.cancel_scope
            for index, item in enumerate(items):
                record = results[index]
                values = {**self.values, "item": item, "loop": loop_values(index, len(items))}
                if per_item and step.if_ is not None:
                    try:
                        condition = evaluate(
                            "if", step.if_, values, status=status, path=self.plan.workflow.path
                        )
                    except StepError as exc:
                        record.update(status="failed", error=str(exc))
                        self._item_failed(step, index, state)
                        continue
                    if not truthy(condition):
                        record["status"] = "skipped"
                        state.finished += 1
                        continue
                # slots are taken in item order: with max_parallel = 1, items run in order
                if state.slots is not None:
                    await state.slots.acquire()
                try:
                    await self.limiter.acquire_on_behalf_of((step.name, index))
                except BaseException:
                    if state.slots is not None:
                        state.slots.release()
                    raise
                nursery.start_soon(self._item, step, index, values, record, state)
        for record in results:
            if record["status"] == "pending":  # never started: cancelled before its turn
                record["status"] = "skipped"
        return _items_outcome(step, results, state)

    async def _item(
        self,
        step: AnyStep,
        index: int,
        values: dict[str, Any],
        record: Record,
        state: _ItemsState,
    ) -> None:
        started = trio.current_time()
        try:
            outcome = await self.executor.run(step, values, item=True)
            record.update(outcome.fields)
            record["duration_ms"] = duration_ms(trio.current_time() - started)
            record["error"] = outcome.error
            record["status"] = "failed" if outcome.error is not None else "success"
            if outcome.error is not None:
                self._item_failed(step, index, state)
        finally:
            self.limiter.release_on_behalf_of((step.name, index))
            if state.slots is not None:
                state.slots.release()
            state.finished += 1
            self.reporter.item_finished(step.name, state.finished, state.total)
            if record["status"] == "pending":  # cancelled while running
                if state.first_failure is not None:
                    reason = f"item {state.first_failure + 1} failed"
                else:
                    reason = self.abort or self.stop or "the step was cancelled"
                record["status"] = "failed"
                record["error"] = f"cancelled: {reason}"
                record["duration_ms"] = duration_ms(trio.current_time() - started)
                state.cancelled.add(index)

    def _item_failed(self, step: AnyStep, index: int, state: _ItemsState) -> None:
        state.failed.append(index)
        if step.fail_fast and state.first_failure is None:
            state.first_failure = index
            assert state.scope is not None
            state.scope.cancel()


@dataclass
class _ItemsState:
    slots: trio.Semaphore | None
    total: int = 0
    finished: int = 0
    scope: trio.CancelScope | None = None
    first_failure: int | None = None
    failed: list[int] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)


def _nothing() -> None:
    return None


def _if_per_item(compiled: CompiledStep) -> bool:
    """A for_each step's ``if`` that reads ``item`` or ``loop`` is evaluated per item."""
    step = compiled.step
    if step.for_each is None or step.if_ is None:
        return False
    return compiled.if_per_item or references_name(step.if_.expr, "loop")


def _internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"


def _as_items(value: Any) -> list[Any]:
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


def _items_outcome(step: AnyStep, results: list[Record], state: _ItemsState) -> Outcome:
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

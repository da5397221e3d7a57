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
from functools import partial
from typing import Any

import networkx as nx
import trio

from muxlang.compiler.plan import CompiledStep, Plan
from muxlang.llm import QueryService
from muxlang.runtime import trace
from muxlang.runtime.apply_service import ApplyService
from muxlang.runtime.calls import run_call
from muxlang.runtime.context import (
    Status,
    StepError,
    evaluate,
    truthy,
)
from muxlang.runtime.events import NullReporter, Reporter
from muxlang.runtime.foreach import if_per_item, run_for_each
from muxlang.runtime.gate import Gate
from muxlang.runtime.repeat import run_repeat
from muxlang.runtime.result import RunResult as RunResult
from muxlang.runtime.result import duration_ms as duration_ms
from muxlang.runtime.result import format_seconds as format_seconds
from muxlang.runtime.scope import new_record, root_scope
from muxlang.runtime.steps import Executor, Outcome
from muxlang.steps import step_kind
from muxlang.workflow import AnyStep

Record = dict[str, Any]

#: status functions that replace the implicit "every dependency succeeded" check
_REPLACING = frozenset({"always", "failure"})


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
    apply: ApplyService | None = None,
) -> RunResult:
    """Run ``plan`` and return every step's record.

    ``args`` are the resolved workflow arguments (see :mod:`muxlang.runtime.args`).
    ``interrupt`` set (Ctrl-C) cancels the run: processes are stopped, an apply
    in progress rolls back, and the result says ``interrupted``. ``dry_run``
    runs nothing: every step is ``skipped`` (use :mod:`muxlang.runtime.preview`
    to show what would run). ``apply`` runs apply steps
    (:func:`muxlang.apply.execute_apply`; the runtime does not import it).
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
        apply=apply,
    )
    return await run.execute(interrupt=interrupt, print_step=print_step, dry_run=dry_run)


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
        apply: ApplyService | None = None,
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
        self.values: dict[str, Any] = root_scope(plan, self.records, args, environ)
        self.executor = Executor(
            project_root=plan.config.project_root,
            query=query,
            environ=environ,
            workflow_path=plan.workflow.path,
            team_verify=plan.config.team_verify,
            no_write=no_write,
            call=partial(run_call, self),
            apply=apply,
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
        self.gate: Gate = caller.gate if caller else Gate()
        #: this run's own part of a borrower's name in the shared slots (a nested run
        #: may have steps of the caller's names)
        self.token = object()
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
            await self.limiter.acquire_on_behalf_of((self.token, name))
        except BaseException:
            self.gate.release_shared()
            raise

        def release() -> None:
            self.limiter.release_on_behalf_of((self.token, name))
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

    async def _once(self, compiled: CompiledStep) -> Outcome:
        """One execution of the step: all its for_each items, or the step itself."""
        if compiled.step.for_each is not None:
            return await run_for_each(self, compiled)
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
        if step.if_ is not None and not if_per_item(compiled):
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


def _nothing() -> None:
    return None


def _internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"

"""Scheduler invariants on random graphs (hypothesis), with MockClock and scripted steps."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_helpers import make_plan, query

from muxlang.llm import ChatRequest, ErrorKind
from muxlang.runtime import RunResult, execute
from muxlang.runtime.events import NullReporter
from tests.fakes.scripted import Reply, ScriptedQueryService


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, dict[int, list[int]], set[int], list[int], int]:
    n = draw(st.integers(1, 10))
    deps = {
        i: sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)
    }
    failing = draw(st.sets(st.integers(0, n - 1), max_size=3))
    delays = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    max_concurrent = draw(st.integers(1, 4))
    return n, deps, failing, delays, max_concurrent


class Timeline(NullReporter):
    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}

    def step_started(self, name: str) -> None:
        self.started[name] = trio.current_time()

    def step_finished(self, name: str, record: object, reason: str | None) -> None:
        self.finished[name] = trio.current_time()


def simulate(
    case: tuple[int, dict[int, list[int]], set[int], list[int], int], keep_going: bool
) -> tuple[RunResult, Timeline, ScriptedQueryService]:
    n, deps, failing, delays, max_concurrent = case

    def answer(request: ChatRequest) -> Reply:
        i = int(request.prompt_text)
        if i in failing:
            return Reply(error=ErrorKind.SERVER, delay=delays[i])
        return Reply(f"out{i}", delay=delays[i])

    plan = make_plan(
        Path("."),
        [query(f"s{i}", str(i), role="r") for i in range(n)],
        {f"s{i}": [f"s{d}" for d in deps[i]] for i in range(n)},
        max_concurrent=max_concurrent,
    )
    service = ScriptedQueryService({"r": answer})
    timeline = Timeline()
    box: list[RunResult] = []

    async def main() -> None:
        box.append(
            await execute(plan, args={}, query=service, reporter=timeline, keep_going=keep_going)
        )

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return box[0], timeline, service


@settings(max_examples=60, deadline=None)
@given(graphs(), st.booleans())
def test_scheduler_invariants(
    case: tuple[int, dict[int, list[int]], set[int], list[int], int], keep_going: bool
) -> None:
    n, deps, failing, _, max_concurrent = case
    result, timeline, service = simulate(case, keep_going)
    steps = result.steps
    assert service.max_in_flight <= max_concurrent
    for i in range(n):
        name = f"s{i}"
        status = steps[name]["status"]
        assert status in ("success", "failed", "skipped")
        if name in timeline.started:
            # started only after every dependency finished, and all of them succeeded
            for d in deps[i]:
                assert timeline.finished[f"s{d}"] <= timeline.started[name]
                assert steps[f"s{d}"]["status"] == "success"
        else:
            assert status == "skipped"
        if status == "success":
            assert steps[name]["output"] == f"out{i}"
            assert i not in failing
    ran_and_failed = [i for i in failing if steps[f"s{i}"]["status"] == "failed"]
    assert result.success == (not ran_and_failed)
    if keep_going:
        # every step whose dependencies all succeeded ran to its own end
        for i in range(n):
            if all(steps[f"s{d}"]["status"] == "success" for d in deps[i]):
                assert steps[f"s{i}"]["status"] == ("failed" if i in failing else "success")
    elif not failing:
        assert result.success
        assert all(steps[f"s{i}"]["status"] == "success" for i in range(n))

"""When a step's record reaches the writer (muxlang.records.recorder.Recorder): before
any step that waited for it starts (a dependent, or one that waited for its slot),
before the console shows its end, and while the run waits, never later. What a
killed run keeps rests on this; a recorder that gathers steps into fewer writes
(docs/performance.md, section 8) must keep it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import trio

from muxlang.llm import ChatRequest
from muxlang.records.recorder import Recorder
from muxlang.runtime import execute
from muxlang.runtime.events import NullReporter
from tests.fakes.scripted import Reply, ScriptedQueryService
from tests.runtime.runtime_helpers import plan_from_toml

TABLES = '\n[roles.r]\nbackends = ["x"]\n[roles.slow]\nbackends = ["x"]\n'
TABLES += '[backends.x]\ncommand = "cat"\n'


class Spy:
    """A channel that keeps what it was handed, write by write."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[Any, ...]]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        self.writes.append([message])

    def poll(self) -> str | None:
        return None

    def close(self) -> str | None:
        return None

    def steps(self) -> list[str]:
        return [m[1] for write in self.writes for m in write if m[0] == "step"]


def _recorder(tmp_path: Path, inner: Any = None) -> tuple[Recorder, Spy]:
    spy = Spy()
    recorder = Recorder(
        inner if inner is not None else NullReporter(),
        tmp_path / "runs.db",
        args={},
        secrets=(),
        channel=spy,  # type: ignore[arg-type]
    )
    return recorder, spy


async def _run_seeing(
    plan: Any, service: ScriptedQueryService, tmp_path: Path, at: float
) -> tuple[Any, list[str], Spy]:
    """Run ``plan`` (on the mock clock) with a recorder; the steps its channel had
    been handed ``at`` seconds in, and the channel."""
    recorder, spy = _recorder(tmp_path)
    seen: list[str] = []

    async def look() -> None:
        await trio.sleep(at)
        seen.extend(spy.steps())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(look)
        result = await execute(plan, args={}, query=service, reporter=recorder)
    return result, seen, spy


def _steps(*steps: str, head: str = "") -> str:
    return f'name = "w"\n{head}\n' + "".join(steps) + TABLES


def _query(name: str, *, role: str = "r", after: str | None = None, extra: str = "") -> str:
    depends = f'depends_on = ["{after}"]\n' if after else ""
    return (
        f'[[steps]]\nname = "{name}"\ntype = "query"\nrole = "{role}"\n'
        f'prompt = "{name}"\n{depends}{extra}\n'
    )


@pytest.mark.parametrize("slots", [1, 8])
async def test_no_step_starts_before_the_records_of_steps_that_ended_are_written(
    tmp_path: Path, slots: int
) -> None:
    """Dependents (several at once), and with one slot steps that wait for it: when
    each step asks its question, every step it waited for is in the pipe (with one
    slot: every step that ended; with eight, every step it depends on)."""
    after = "a" if slots > 1 else None
    body = _steps(
        _query("a"),
        _query("b", after="a"),
        _query("c", after=after),
        _query("d", after=after),
        _query("e", after="b"),
        head=f"max_concurrent = {slots}",
    )
    plan = plan_from_toml(tmp_path, body)
    recorder, spy = _recorder(tmp_path)
    ended: list[str] = []
    record_end = recorder.step_finished

    def step_finished(name: str, record: Mapping[str, Any], reason: str | None) -> None:
        ended.append(name)
        record_end(name, record, reason)

    recorder.step_finished = step_finished  # type: ignore[method-assign]
    missing: dict[str, set[str]] = {}

    def answer(request: ChatRequest) -> str:
        name = request.prompt_text
        waited = set(ended) if slots == 1 else nx.ancestors(plan.graph, name)
        missing[name] = waited - set(spy.steps())
        return "ok"

    result = await execute(
        plan, args={}, query=ScriptedQueryService({"r": answer}), reporter=recorder
    )
    assert result.success, result.error
    assert sorted(missing) == sorted(plan.order)
    assert missing == {name: set() for name in plan.order}, missing
    assert sorted(spy.steps()) == sorted(plan.order)


async def test_a_step_that_ended_is_written_while_the_run_waits(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    plan = plan_from_toml(tmp_path, _steps(_query("quick"), _query("long", role="slow")))
    service = ScriptedQueryService({"r": "ok", "slow": Reply("late", delay=60)})
    result, at_30, spy = await _run_seeing(plan, service, tmp_path, 30)
    assert result.success, result.error
    assert at_30 == ["quick"]
    assert sorted(spy.steps()) == ["long", "quick"]


async def test_a_step_that_ended_is_written_while_the_dispatcher_waits_for_a_slot(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    """Two slots: ``a`` (10 s) and ``c`` (1 s) take them, the items of ``each`` and
    ``more`` (100 s each) queue for them, then ``b`` (after ``c``) queues behind the
    first items. ``a`` ends at 10 s and its slot goes to an item: ``a`` must not wait
    with ``b``."""
    body = _steps(
        _query("a", role="slow"),
        _query("c", role="quick"),
        _query("each", role="slower", extra="for_each = \"['1', '2']\"\n"),
        _query("more", role="slower", extra="for_each = \"['3', '4']\"\n"),
        _query("b", after="c"),
        head="max_concurrent = 2",
    )
    plan = plan_from_toml(
        tmp_path, body + '[roles.quick]\nbackends = ["x"]\n[roles.slower]\nbackends = ["x"]\n'
    )
    script = {
        "r": "ok",
        "quick": Reply("q", delay=1),
        "slow": Reply("s", delay=10),
        "slower": Reply("late", delay=100),
    }
    service = ScriptedQueryService(script)
    result, at_15, spy = await _run_seeing(plan, service, tmp_path, 15)
    assert result.success, result.error
    assert [call.started for call in service.calls_to("r")] >= [100]  # b waited
    assert at_15 == ["c", "a"]
    assert sorted(spy.steps()) == ["a", "b", "c", "each", "more"]


async def test_a_shown_step_end_is_written_before_it_is_shown(tmp_path: Path) -> None:
    plan = plan_from_toml(tmp_path, _steps(*(_query(f"s{i}") for i in range(6))))
    shown: list[tuple[str, bool]] = []

    class Console(NullReporter):
        def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
            shown.append((name, name in spy.steps()))

    recorder, spy = _recorder(tmp_path, Console())
    result = await execute(
        plan, args={}, query=ScriptedQueryService(default="ok"), reporter=recorder
    )
    assert result.success, result.error
    assert len(shown) == 6
    assert all(written for _, written in shown), shown

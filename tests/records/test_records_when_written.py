"""When a step's record reaches the writer (muxlang.records.recorder.Recorder): before
anything a step that waited for it does outside the run's process (start a command,
send a request, change a file: a dependent, or a step that waited for its slot),
before the console shows its end, and within a few ms while the run waits or is
busy in its own process. What a killed run keeps rests on this; records are
gathered into fewer writes in between (docs/performance.md, section 8)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest
import trio

from muxlang.records.recorder import Recorder
from muxlang.runtime import execute, trace
from muxlang.runtime.backends.router import open_router
from muxlang.runtime.events import NullReporter
from tests.fakes.scripted import Reply, ScriptedQueryService
from tests.runtime.runtime_helpers import plan_from_toml

TABLES = '\n[roles.r]\nbackends = ["x"]\n[roles.slow]\nbackends = ["x"]\n'
TABLES += '[backends.x]\ncommand = "cat"\n'
HTTP_TABLES = '\n[roles.r]\nbackends = ["h"]\n'
HTTP_TABLES += '[backends.h]\ncommand = "http://127.0.0.1:9/v1"\nprotocol = "openai"\nmodel = "m"\n'


class Spy:
    """A channel that keeps what it was handed, write by write."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[Any, ...]]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        self.writes.append([message])

    def send_many(self, messages: list[tuple[Any, ...]]) -> None:
        self.writes.append(list(messages))

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
        trace=trace.Trace(),
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


def _shell(name: str, *, after: str | None = None) -> str:
    depends = f'depends_on = ["{after}"]\n' if after else ""
    return f'[[steps]]\nname = "{name}"\ntype = "shell"\nrun = "true"\n{depends}\n'


def _waiting(tmp_path: Path, slots: int, step: Any, tables: str = TABLES) -> Any:
    """A plan of ``step``s that wait: ``b`` for ``a``, ``e`` for ``b``, and ``c`` and
    ``d`` for ``a`` — or, with one slot, for the slot."""
    after = "a" if slots > 1 else None
    body = _steps(
        step("a"),
        step("b", after="a"),
        step("c", after=after),
        step("d", after=after),
        step("e", after="b"),
        head=f"max_concurrent = {slots}",
    )
    return plan_from_toml(tmp_path, body.replace(TABLES, tables))


def _waited_for(plan: Any, slots: int, name: str, ended: list[str]) -> set[str]:
    """The steps ``name`` waited for: with one slot every step that ended before it
    started, with eight its ancestors."""
    return set(ended) if slots == 1 else set(nx.ancestors(plan.graph, name))


def _watch_ends(recorder: Recorder) -> list[str]:
    """The steps whose end the scheduler reported to ``recorder``, in order."""
    ended: list[str] = []
    record_end = recorder.step_finished

    def step_finished(name: str, record: Mapping[str, Any], reason: str | None) -> None:
        ended.append(name)
        record_end(name, record, reason)

    recorder.step_finished = step_finished  # type: ignore[method-assign]
    return ended


@pytest.mark.parametrize("slots", [1, 8])
async def test_no_step_starts_a_command_before_the_records_of_steps_it_waited_for_are_written(
    tmp_path: Path, slots: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dependents (several at once), and with one slot steps that wait for it: when
    each step starts its process, every step it waited for is in the pipe."""
    plan = _waiting(tmp_path, slots, _shell)
    recorder, spy = _recorder(tmp_path)
    ended = _watch_ends(recorder)
    missing: dict[str, set[str]] = {}
    open_process = trio.lowlevel.open_process

    async def spawn(*args: Any, **kwargs: Any) -> Any:
        key = trace.current_step()
        assert key is not None
        missing[key[0]] = _waited_for(plan, slots, key[0], ended) - set(spy.steps())
        return await open_process(*args, **kwargs)

    monkeypatch.setattr(trio.lowlevel, "open_process", spawn)
    trace.install(recorder.trace)
    result = await execute(plan, args={}, query=ScriptedQueryService(), reporter=recorder)
    assert result.success, result.error
    assert missing == {name: set() for name in plan.order}, missing
    assert sorted(spy.steps()) == sorted(plan.order)


@pytest.mark.parametrize("slots", [1, 8])
async def test_no_request_leaves_before_the_records_of_steps_it_waited_for_are_written(
    tmp_path: Path, slots: int
) -> None:
    """The same for a backend's HTTP request (through the real router and backend;
    the transport is httpx's mock, which sees the request as the server would)."""
    plan = _waiting(tmp_path, slots, _query, HTTP_TABLES)
    recorder, spy = _recorder(tmp_path)
    ended = _watch_ends(recorder)
    missing: dict[str, set[str]] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        name = json.loads(request.content)["messages"][-1]["content"]
        missing[name] = _waited_for(plan, slots, name, ended) - set(spy.steps())
        message = {"role": "assistant", "content": "ok"}
        return httpx.Response(200, json={"choices": [{"message": message}]})

    trace.install(recorder.trace)
    async with open_router(
        plan.config, environ={}, transport=httpx.MockTransport(answer)
    ) as router:
        result = await execute(plan, args={}, query=router, reporter=recorder)
    assert result.success, result.error
    assert missing == {name: set() for name in plan.order}, missing


async def test_no_file_changes_before_the_record_of_the_step_an_apply_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An apply step writes its journal (then the files) only once the record of the
    step whose answer it applies is out."""
    from muxlang.apply import execute_apply, runner

    (tmp_path / "f.txt").write_text("old\n")
    edit = json.dumps({"path": "f.txt", "old": "old", "new": "new"})
    body = _steps(
        _query("ask"),
        '[[steps]]\nname = "fix"\ntype = "apply"\nsource = "ask"\ndepends_on = ["ask"]\n',
    )
    plan = plan_from_toml(tmp_path, body)
    recorder, spy = _recorder(tmp_path)
    seen: list[list[str]] = []
    apply_changes = runner.apply_changes

    def write(*args: Any, **kwargs: Any) -> Any:
        seen.append(spy.steps())
        return apply_changes(*args, **kwargs)

    monkeypatch.setattr(runner, "apply_changes", write)
    trace.install(recorder.trace)
    result = await execute(
        plan,
        args={},
        query=ScriptedQueryService({"r": edit}),
        reporter=recorder,
        apply=execute_apply,
    )
    assert result.success, result.error
    assert (tmp_path / "f.txt").read_text() == "new\n"
    assert seen == [["ask"]]


async def test_a_step_that_took_a_millisecond_or_more_is_written_as_it_ends(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    """Only steps that would redo in under a millisecond wait for others to share
    their write: one that took longer is in the pipe when the run reports its end,
    even to a reporter that shows nothing."""
    plan = plan_from_toml(tmp_path, _steps(_query("quick"), _query("long", role="slow")))
    written: dict[str, bool] = {}

    class Quiet(NullReporter):
        def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
            written[name] = name in spy.steps()

    recorder, spy = _recorder(tmp_path, Quiet())
    service = ScriptedQueryService({"r": "ok", "slow": Reply("late", delay=0.01)})
    result = await execute(plan, args={}, query=service, reporter=recorder)
    assert result.success, result.error
    assert written["long"] is True
    assert sorted(spy.steps()) == ["long", "quick"]


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


def _console(kind: str) -> Any:
    """A reporter of ``muxlang run``'s own, writing to a string."""
    import io

    from rich.console import Console

    from muxlang.runtime import output

    if kind == "live":
        return output.LiveReporter(Console(file=io.StringIO(), force_terminal=True))
    if kind == "jsonl":
        return output.JsonlReporter(io.StringIO())
    return output.PlainReporter(io.StringIO())


@pytest.mark.parametrize("kind", ["plain", "jsonl", "live"])
async def test_a_shown_step_end_is_written_before_it_is_shown(tmp_path: Path, kind: str) -> None:
    """The console (a line per step, or the live table) and ``--output jsonl`` show a
    step's end only once its record is written."""
    plan = plan_from_toml(tmp_path, _steps(*(_query(f"s{i}") for i in range(6))))
    shown: list[tuple[str, bool]] = []
    console = _console(kind)
    show_end = console.step_finished

    def step_finished(name: str, record: Mapping[str, Any], reason: str | None) -> None:
        shown.append((name, name in spy.steps()))
        show_end(name, record, reason)

    console.step_finished = step_finished
    recorder, spy = _recorder(tmp_path, console)
    result = await execute(
        plan, args={}, query=ScriptedQueryService(default="ok"), reporter=recorder
    )
    assert result.success, result.error
    assert len(shown) == 6
    assert all(written for _, written in shown), shown

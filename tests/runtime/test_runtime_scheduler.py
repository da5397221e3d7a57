"""Scheduling, skip/fail rules, timeouts, through the real runtime with plans
built in the test (constant templates) and real shell processes or the scripted
query service."""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio
from runtime_helpers import barrier, make_plan, query, shell

from muxlang.llm import ErrorKind
from muxlang.runtime import execute
from tests.fakes.reporting import RecordingReporter
from tests.fakes.scripted import Reply, ScriptedQueryService

NO_QUERY = ScriptedQueryService()


async def test_independent_shell_steps_overlap(tmp_path: Path) -> None:
    """Five independent steps meet at a barrier (each marks that it started and
    waits for all five): run one after another, the first would give up alone."""
    plan = make_plan(tmp_path, [shell(f"s{i}", barrier(i, 5)) for i in range(5)])
    result = await execute(plan, args={}, query=NO_QUERY)
    assert result.success, result.steps
    assert len(list((tmp_path / "started").iterdir())) == 5


async def test_dependencies_order_steps_and_pass_output(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [shell("a", "printf 'one\\n\\n'"), shell("b", "echo two")],
        {"b": ["a"]},
    )
    reporter = RecordingReporter()
    result = await execute(plan, args={}, query=NO_QUERY, reporter=reporter)
    assert result.success
    assert result.steps["a"]["output"] == "one"
    assert result.steps["a"]["exit_code"] == 0
    assert result.output == "two"
    names = [e[1] for e in reporter.events if e[0] == "step_started"]
    assert names == ["a", "b"]
    assert reporter.events[0][0] == "run_started"
    assert reporter.events[-1] == ("run_finished", "success")


async def test_max_concurrent_limits_steps_in_flight(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService(default=Reply("ok", delay=10))
    plan = make_plan(Path("."), [query(f"q{i}", "hi") for i in range(6)], max_concurrent=2)
    start = trio.current_time()
    result = await execute(plan, args={}, query=service)
    assert result.success
    assert service.max_in_flight == 2
    assert trio.current_time() - start == 30


async def test_max_concurrent_override(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService(default=Reply("ok", delay=10))
    plan = make_plan(Path("."), [query(f"q{i}", "hi") for i in range(4)])
    result = await execute(plan, args={}, query=service, max_concurrent=1)
    assert result.success
    assert service.max_in_flight == 1


async def test_failure_cancels_running_steps_and_skips_the_rest(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [
            shell("slow", "sleep 30"),
            shell("bad", "sleep 0.2; echo boom >&2; exit 3"),
            shell("after", "echo never"),
        ],
        {"after": ["bad"]},
    )
    started = time.monotonic()
    result = await execute(plan, args={}, query=NO_QUERY)
    assert time.monotonic() - started < 10
    assert not result.success
    bad = result.steps["bad"]
    assert bad["status"] == "failed"
    assert bad["exit_code"] == 3
    assert bad["stderr"] == "boom"
    assert "exit code 3" in bad["error"]
    assert "boom" in bad["error"]
    assert result.steps["slow"]["status"] == "failed"
    assert "cancelled" in result.steps["slow"]["error"]
    assert result.steps["after"]["status"] == "skipped"
    assert result.error is not None
    assert "'bad'" in result.error


async def test_continue_on_error_skips_dependents_but_run_succeeds(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [
            shell("check", "exit 1", continue_on_error=True),
            shell("needs-check", "echo no"),
            shell("other", "sleep 0.2; echo yes"),
        ],
        {"needs-check": ["check"]},
    )
    result = await execute(plan, args={}, query=NO_QUERY)
    assert result.success
    assert result.steps["check"]["status"] == "failed"
    assert result.steps["needs-check"]["status"] == "skipped"
    assert result.steps["other"]["status"] == "success"
    assert result.steps["other"]["output"] == "yes"


async def test_workflow_continue_on_error_applies_to_every_step(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [shell("a", "exit 1"), shell("b", "sleep 0.2; echo b")],
        continue_on_error=True,
    )
    result = await execute(plan, args={}, query=NO_QUERY)
    assert result.success
    assert result.steps["b"]["status"] == "success"


async def test_keep_going_lets_independent_branches_finish(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [
            shell("bad", "exit 2"),
            shell("child", "echo no"),
            shell("grandchild", "echo no"),
            shell("branch", "sleep 0.3; echo done"),
            shell("branch2", "echo two"),
        ],
        {"child": ["bad"], "grandchild": ["child"], "branch2": ["branch"]},
    )
    result = await execute(plan, args={}, query=NO_QUERY, keep_going=True)
    assert not result.success
    statuses = {name: record["status"] for name, record in result.steps.items()}
    assert statuses == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "branch": "success",
        "branch2": "success",
    }


async def test_without_keep_going_later_independent_steps_do_not_start(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [shell("bad", "exit 2"), shell("first", "sleep 0.5"), shell("second", "echo x")],
        {"second": ["first"]},
    )
    result = await execute(plan, args={}, query=NO_QUERY)
    assert result.steps["first"]["status"] == "failed"
    assert result.steps["second"]["status"] == "skipped"


async def test_step_timeout_fails_the_step_with_a_message(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [shell("slow", "sleep 30", timeout=0.3)])
    started = time.monotonic()
    result = await execute(plan, args={}, query=NO_QUERY)
    assert time.monotonic() - started < 10
    assert not result.success
    record = result.steps["slow"]
    assert record["status"] == "failed"
    assert "timed out after 300 ms" in record["error"]


async def test_step_timeout_with_mock_clock(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService({"slow": Reply("late", delay=100), "fast": "ok"})
    plan = make_plan(
        Path("."),
        [query("slow", "x", timeout=5.0, continue_on_error=True), query("fast", "y")],
    )
    result = await execute(plan, args={}, query=service)
    assert result.success
    assert result.steps["slow"]["status"] == "failed"
    assert "timed out after 5 s" in result.steps["slow"]["error"]
    assert result.steps["slow"]["duration_ms"] == 5000


async def test_workflow_timeout_cancels_the_run(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService({"a": "quick", "b": Reply("late", delay=100)})
    plan = make_plan(
        Path("."), [query("a", "x"), query("b", "y"), query("c", "z")], {"c": ["b"]}, timeout=10.0
    )
    start = trio.current_time()
    result = await execute(plan, args={}, query=service)
    assert trio.current_time() - start == 10
    assert not result.success
    assert result.timed_out
    assert "timed out after 10 s" in (result.error or "")
    assert result.steps["a"]["status"] == "success"
    assert result.steps["b"]["status"] == "failed"
    assert result.steps["c"]["status"] == "skipped"


async def test_interrupt_cancels_and_reports(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService({"a": "quick", "b": Reply("late", delay=100)})
    plan = make_plan(Path("."), [query("a", "x"), query("b", "y")])
    interrupt = trio.Event()
    result_box = []

    async def run() -> None:
        result_box.append(await execute(plan, args={}, query=service, interrupt=interrupt))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.sleep(5)
        interrupt.set()
    (result,) = result_box
    assert result.interrupted
    assert not result.success
    assert result.steps["a"]["status"] == "success"
    assert result.steps["b"]["status"] == "failed"
    assert result.steps["b"]["error"] == "cancelled: interrupted"


async def test_query_records_outputs_and_backend(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService(
        {
            "analyzer": Reply(
                "=== a ===\nA\n\n=== b ===\nB", outputs={"a": "A", "b": "B"}, backend="a"
            ),
            "broken": Reply(error=ErrorKind.RATE_LIMIT, message="429 slow down"),
        }
    )
    plan = make_plan(
        Path("."),
        [query("review", "look", role="analyzer"), query("other", "x", role="broken")],
    )
    result = await execute(plan, args={}, query=service, keep_going=True)
    review = result.steps["review"]
    assert review["outputs"] == {"a": "A", "b": "B"}
    assert review["backend"] == "a"
    assert review["status"] == "success"
    other = result.steps["other"]
    assert other["status"] == "failed"
    assert "429 slow down" in other["error"]
    (call,) = service.calls_to("analyzer")
    assert call.kind == "role"
    assert call.request.prompt_text == "look"


async def test_shell_env_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    from runtime_helpers import text

    plan = make_plan(
        tmp_path,
        [
            shell("where", "pwd; echo $GREETING", cwd=text("sub"), env=(("GREETING", text("hi")),)),
            shell("outside", "pwd", cwd=text("../.."), continue_on_error=True),
        ],
    )
    result = await execute(plan, args={}, query=NO_QUERY, environ={"PATH": os.environ["PATH"]})
    assert result.steps["where"]["output"] == f"{(tmp_path / 'sub').resolve()}\nhi"
    assert result.steps["outside"]["status"] == "failed"
    assert "outside the project root" in result.steps["outside"]["error"]


async def test_large_output_does_not_block(tmp_path: Path) -> None:
    size = 50 * 1000 * 1000
    plan = make_plan(tmp_path, [shell("big", f"head -c {size} /dev/zero | tr '\\0' a")])
    result = await execute(plan, args={}, query=NO_QUERY)
    assert result.success
    assert len(result.steps["big"]["output"]) == size


async def test_missing_command_is_a_failed_step(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [shell("nope", "definitely-not-a-command-xyz")])
    result = await execute(plan, args={}, query=NO_QUERY)
    record = result.steps["nope"]
    assert record["status"] == "failed"
    assert record["exit_code"] == 127
    assert "not found" in record["error"]


async def test_max_concurrent_one_runs_in_file_order(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService(default=Reply("ok", delay=1))
    names = ["e", "b", "d", "a", "c", "f"]
    plan = make_plan(Path("."), [query(n, n) for n in names], {"f": ["a"]}, max_concurrent=1)
    for _ in range(5):
        service.calls.clear()
        result = await execute(plan, args={}, query=service)
        assert result.success
        assert [call.target for call in service.calls] == names

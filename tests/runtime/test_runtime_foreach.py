"""for_each through the real compiler, with the scripted query service and MockClock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from runtime_helpers import plan_from_toml

from muxlang.compiler.plan import Plan
from muxlang.llm import ChatRequest, ErrorKind
from muxlang.runtime import RunResult, execute
from tests.fakes.scripted import Reply, ScriptedQueryService

BACKENDS = """
[backends.llm]
command = "llm-cli"
"""


def answer(request: ChatRequest) -> Reply:
    """Echo the prompt after a delay; a prompt containing 'bad' fails after 1 s."""
    prompt = request.prompt_text
    if "bad" in prompt:
        return Reply(error=ErrorKind.SERVER, message=f"cannot do {prompt}", delay=1)
    return Reply(prompt.upper(), delay=10)


async def run_answered(
    plan: Plan, args: dict[str, Any] | None = None
) -> tuple[ScriptedQueryService, RunResult]:
    """Run ``plan`` with the backend ``llm`` answered by :func:`answer`; the service
    is returned too, for the calls it recorded."""
    service = ScriptedQueryService({"llm": answer})
    return service, await execute(plan, args=args or {}, query=service)


async def test_max_parallel_limits_items(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['a', 'b', 'c', 'd', 'e', 'f']"
        max_parallel = 2
        prompt = "{{ item }}{{ loop.index }}"
        """,
    )
    start = trio.current_time()
    service, result = await run_answered(plan)
    assert result.success, result.error
    assert service.max_in_flight == 2
    assert trio.current_time() - start == 30
    record = result.steps["each"]
    assert record["output"] == "A1\nB2\nC3\nD4\nE5\nF6"
    assert record["results"][0]["outputs"] == {"llm": "A1"}
    assert [r["backend"] for r in record["results"]] == ["llm"] * 6


async def test_items_share_max_concurrent(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    plan = plan_from_toml(
        tmp_path,
        "max_concurrent = 3\n"
        + BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['a', 'b', 'c', 'd', 'e', 'f', 'g']"
        prompt = "{{ item }}"
        """,
    )
    service, result = await run_answered(plan)
    assert result.success
    assert service.max_in_flight == 3


async def test_fail_fast_cancels_the_rest(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['ok1', 'bad', 'ok2', 'ok3']"
        max_parallel = 3
        prompt = "{{ item }}"
        """,
    )
    start = trio.current_time()
    service, result = await run_answered(plan)
    assert trio.current_time() - start == 1
    record = result.steps["each"]
    assert record["status"] == "failed"
    statuses = [r["status"] for r in record["results"]]
    assert statuses == ["failed", "failed", "failed", "skipped"]
    assert record["results"][0]["error"] == "cancelled: item 2 failed"
    assert "cannot do bad" in record["results"][1]["error"]
    assert record["error"].startswith("item 2 (bad) failed:")
    assert len(service.calls) == 3  # ok3 never started


async def test_no_fail_fast_runs_every_item(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['ok1', 'bad', 'ok2', 'bad2']"
        fail_fast = false
        continue_on_error = true
        prompt = "{{ item }}"

        [[steps]]
        name = "after"
        type = "query"
        backend = "llm"
        if = "always()"
        prompt = "{{ steps.each.results | length }} {{ steps.each.status }}"
        """,
    )
    _, result = await run_answered(plan)
    assert result.success
    record = result.steps["each"]
    assert [r["status"] for r in record["results"]] == ["success", "failed", "success", "failed"]
    assert "2 of 4 items failed" in record["error"]
    assert result.steps["after"]["output"] == "4 FAILED"


async def test_per_item_if_and_step_level_if(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [args.run]
        default = "yes"

        [[steps]]
        name = "per-item"
        type = "query"
        backend = "llm"
        for_each = "[1, 2, 3, 4]"
        if = "item > 2"
        prompt = "n{{ item }}"

        [[steps]]
        name = "whole"
        type = "query"
        backend = "llm"
        for_each = "[1, 2]"
        if = "args.run == 'no'"
        prompt = "n{{ item }}"
        """,
    )
    _, result = await run_answered(plan, {"run": "yes"})
    per_item = result.steps["per-item"]
    assert [r["status"] for r in per_item["results"]] == [
        "skipped",
        "skipped",
        "success",
        "success",
    ]
    assert per_item["output"] == "N3\nN4"
    assert result.steps["whole"]["status"] == "skipped"
    assert result.steps["whole"]["results"] == []


async def test_step_timeout_covers_all_items(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['a', 'b', 'c']"
        max_parallel = 1
        timeout = 25
        prompt = "{{ item }}"
        """,
    )
    _, result = await run_answered(plan)
    record = result.steps["each"]
    assert record["status"] == "failed"
    assert "timed out after 25 s" in record["error"]
    assert [r["status"] for r in record["results"]] == ["success", "success", "failed"]


async def test_max_parallel_one_runs_items_in_order(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['q', 'w', 'e', 'r', 't', 'y', 'u']"
        max_parallel = 1
        prompt = "{{ item }}"
        """,
    )
    for _ in range(5):
        service, result = await run_answered(plan)
        assert result.success
        assert [c.request.prompt_text for c in service.calls] == list("qwertyu")


async def test_if_reading_loop_is_per_item(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    plan = plan_from_toml(
        tmp_path,
        BACKENDS
        + """
        [[steps]]
        name = "each"
        type = "query"
        backend = "llm"
        for_each = "['a', 'b', 'c']"
        if = "not loop.first"
        prompt = "{{ item }}"
        """,
    )
    _, result = await run_answered(plan)
    assert result.success, result.error
    assert [r["status"] for r in result.steps["each"]["results"]] == [
        "skipped",
        "success",
        "success",
    ]

"""Nothing a shell step started outlives it: timeouts, cancellation, failures."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import trio
from runtime_helpers import make_plan, shell

from muxlang.runtime import execute
from tests.fakes.scripted import ScriptedQueryService


def marker() -> str:
    """A unique ``sleep`` duration, so we find exactly our processes in /proc."""
    return f"300.{random.randrange(10**8):08d}"


def processes_with(argument: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if argument.encode() in argv and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


async def wait_until_running(argument: str, count: int) -> None:
    with trio.fail_after(10):
        while len(processes_with(argument)) < count:
            await trio.sleep(0.05)


async def test_timeout_stops_grandchildren(tmp_path: Path) -> None:
    mark = marker()
    plan = make_plan(tmp_path, [shell("slow", f"sleep {mark} & sleep {mark}", timeout=1.0)])
    started = time.monotonic()
    result = await execute(plan, args={}, query=ScriptedQueryService())
    assert time.monotonic() - started < 8
    assert result.steps["slow"]["status"] == "failed"
    assert "timed out" in result.steps["slow"]["error"]
    assert processes_with(mark) == []


async def test_cancellation_stops_grandchildren(tmp_path: Path) -> None:
    mark = marker()
    plan = make_plan(
        tmp_path,
        [shell("a", f"sleep {mark} & sleep {mark}"), shell("b", f"(sleep {mark}) & wait")],
    )
    interrupt = trio.Event()
    results = []

    async def run() -> None:
        results.append(
            await execute(plan, args={}, query=ScriptedQueryService(), interrupt=interrupt)
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await wait_until_running(mark, 3)
        interrupt.set()
    assert results[0].interrupted
    assert processes_with(mark) == []


async def test_failure_elsewhere_stops_grandchildren(tmp_path: Path) -> None:
    mark = marker()
    plan = make_plan(
        tmp_path,
        [
            shell("long", f"sleep {mark} & sleep {mark}"),
            shell("bad", f"while ! pgrep -f {mark} >/dev/null; do sleep 0.05; done; exit 1"),
        ],
    )
    result = await execute(plan, args={}, query=ScriptedQueryService())
    assert result.steps["bad"]["status"] == "failed"
    assert result.steps["long"]["status"] == "failed"
    assert processes_with(mark) == []


async def test_background_children_of_a_finished_step_are_stopped(tmp_path: Path) -> None:
    mark = marker()
    plan = make_plan(tmp_path, [shell("leaky", f"sleep {mark} >/dev/null 2>&1 & echo started")])
    result = await execute(plan, args={}, query=ScriptedQueryService())
    assert result.steps["leaky"]["status"] == "success"
    assert result.steps["leaky"]["output"] == "started"
    assert processes_with(mark) == []

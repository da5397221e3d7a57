"""Apply steps: they run alone, get the source step's request, and really edit files."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trio
from runtime_helpers import apply_step, make_plan, query

from muxlang.apply import execute_apply
from muxlang.runtime import RunResult, execute
from tests.fakes.scripted import Reply, ScriptedQueryService


async def test_apply_runs_alone(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ScriptedQueryService(
        {
            "fix": Reply("edits", delay=1),
            "other": Reply("o", delay=5),
            "before": Reply("b", delay=6),
            "after": Reply("a", delay=1),
        }
    )
    seen: dict[str, Any] = {}

    async def execute_apply(request: Any) -> Any:
        seen["start"] = trio.current_time()
        seen["in_flight"] = service.in_flight
        seen["request"] = request
        await trio.sleep(10)
        seen["in_flight_end"] = service.in_flight
        return types.SimpleNamespace(
            success=True,
            output="1 file changed",
            error=None,
            files=("a.txt",),
            diff="--- a/a.txt",
            attempts=1,
            verify_output="",
        )

    fake = types.ModuleType("muxlang.apply")
    fake.ApplyRequest = lambda **kw: types.SimpleNamespace(**kw)  # type: ignore[attr-defined]
    fake.execute_apply = execute_apply  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "muxlang.apply", fake)
    plan = make_plan(
        Path("."),
        [
            query("fix", "please fix", system=None),
            apply_step("apply", "fix", verify="true"),
            query("other", "x"),
            query("before", "y"),
            query("after", "z"),
        ],
        {"apply": ["fix"], "after": ["before"]},
    )
    result = await execute(plan, args={}, query=service, apply=execute_apply)
    assert result.success, result.error
    # `other` and `before` ran from 0 to 5 and 6: apply waited, and ran alone from 6 to 16
    assert seen["start"] == 6
    assert seen["in_flight"] == 0
    assert seen["in_flight_end"] == 0
    # `after` was ready at 6 too, but a waiting apply goes first: nothing beside it
    (after_call,) = service.calls_to("after")
    assert after_call.started == 16
    request = seen["request"]
    assert request.source_output == "edits"
    assert request.source_target == "fix"
    assert request.source_kind == "role"
    assert request.source_request.prompt_text == "please fix"
    assert request.verify_command == "true"
    record = result.steps["apply"]
    assert record["files"] == ["a.txt"]
    assert record["output"] == "1 file changed"


async def fix_greeting(root: Path, prompt: str, verify: str) -> tuple[Path, RunResult]:
    """A real apply run: ``greet.txt`` says "hello wrold", the query ``fix`` (asked
    ``prompt``) answers the edit that corrects it, and the apply step verifies with
    ``verify``. Returns the file and the run's result."""
    target = root / "greet.txt"
    target.write_text("hello wrold\n")
    edit = json.dumps({"path": "greet.txt", "old": "wrold", "new": "world"})
    service = ScriptedQueryService({"fix": edit})
    plan = make_plan(
        root,
        [query("fix", prompt), apply_step("apply", "fix", verify=verify)],
        {"apply": ["fix"]},
    )
    return target, await execute(plan, args={}, query=service, apply=execute_apply)


async def test_real_apply_edits_a_file(tmp_path: Path) -> None:
    pytest.importorskip("muxlang.apply")
    target, result = await fix_greeting(tmp_path, "fix it", "grep -q world greet.txt")
    assert result.success, result.error
    assert target.read_text() == "hello world\n"
    assert result.steps["apply"]["files"] == ["greet.txt"]


async def test_real_apply_failing_verify_rolls_back(tmp_path: Path) -> None:
    pytest.importorskip("muxlang.apply")
    target, result = await fix_greeting(tmp_path, "fix", "echo nope >&2; exit 1")
    assert not result.success
    assert result.steps["apply"]["status"] == "failed"
    assert target.read_text() == "hello wrold\n"

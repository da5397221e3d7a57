"""Small pieces of the runtime: arguments, the scripted service, output lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import trio
from runtime_helpers import SPAN, make_plan, query, shell

from muxlang.llm import BackendError, ChatRequest, ErrorKind
from muxlang.runtime import ArgsError, execute, resolve_args
from muxlang.runtime.output import LiveReporter, format_ms, step_line
from muxlang.workflow import Arg, Workflow
from tests.fakes.scripted import Reply, ScriptedQueryService


def workflow(*args: Arg) -> Workflow:
    return Workflow(path="wf.toml", name="wf", args=args, span=SPAN)


def arg(name: str, default: object = None, required: bool = False) -> Arg:
    return Arg(name, None, default, required, SPAN)  # type: ignore[arg-type]


def test_args_fill_in_order_and_keep_default_types() -> None:
    wf = workflow(arg("a", required=True), arg("b", 3), arg("c", True))
    assert resolve_args(wf, ["x"]) == {"a": "x", "b": 3, "c": True}
    assert resolve_args(wf, ["c=no", "x", "y"]) == {"a": "x", "b": "y", "c": "no"}
    assert resolve_args(wf, ["a=k=v"]) == {"a": "k=v", "b": 3, "c": True}


def test_args_errors() -> None:
    wf = workflow(arg("base", required=True))
    with pytest.raises(ArgsError, match="missing required argument for workflow 'wf': base"):
        resolve_args(wf, [])
    with pytest.raises(ArgsError, match="did you mean `base`"):
        resolve_args(wf, ["bsae=1"])
    with pytest.raises(ArgsError, match="given twice"):
        resolve_args(wf, ["base=1", "base=2"])
    with pytest.raises(ArgsError, match="too many arguments"):
        resolve_args(wf, ["1", "2"])


def test_workflow_without_args_takes_named_values_only() -> None:
    assert resolve_args(workflow(), ["free=1"]) == {"free": "1"}
    with pytest.raises(ArgsError, match="declares no \\[args\\]"):
        resolve_args(workflow(), ["value"])


async def test_scripted_sequences_callables_and_errors(autojump_clock: trio.abc.Clock) -> None:
    service = ScriptedQueryService(
        {
            "flaky": [Reply(error=ErrorKind.RATE_LIMIT, message="slow down"), "ok"],
            "echo": lambda request: request.prompt_text[::-1],
            "slow": Reply("late", delay=30),
        }
    )
    request = ChatRequest.from_prompt("abc")
    with pytest.raises(BackendError) as caught:
        await service.query("flaky", request, kind="role")
    assert caught.value.kind is ErrorKind.RATE_LIMIT
    assert (await service.query("flaky", request, kind="role")).output == "ok"
    assert (await service.query("flaky", request, kind="role")).output == "ok"
    assert (await service.query("echo", request, kind="backend")).output == "cba"
    start = trio.current_time()
    result = await service.query("slow", request, kind="backend")
    assert trio.current_time() - start == 30
    assert result.outputs == {"slow": "late"}
    with pytest.raises(BackendError, match="unknown role 'nobody'"):
        await service.query("nobody", request, kind="role")


def test_step_lines() -> None:
    assert format_ms(12) == "12 ms"
    assert format_ms(1500) == "1.5 s"
    assert format_ms(125_000) == "2 m 5 s"
    ok = {"status": "success", "duration_ms": 12, "error": None}
    assert step_line("diff", ok, None) == "✓ diff (12 ms)"
    bad = {"status": "failed", "duration_ms": 1400, "error": "exit code 1: one\ntwo"}
    assert step_line("test", bad, None) == "✗ test (1.4 s): exit code 1: one\n    two"
    skipped = {"status": "skipped", "duration_ms": 0, "error": None}
    assert step_line("x", skipped, "dependency 'a' failed") == "- x skipped (dependency 'a' failed)"


async def test_live_view_renders_on_a_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80)
    plan = make_plan(
        tmp_path,
        [shell("a", "echo a"), shell("b", "exit 1"), shell("c", "echo c")],
        {"c": ["b"]},
    )
    reporter = LiveReporter(console)
    result = await execute(plan, args={}, query=ScriptedQueryService(), reporter=reporter)
    assert not result.success
    text = buffer.getvalue()
    assert "✓ a" in text or "a (" in text
    assert "b (" in text
    assert "c skipped" in text
    assert "failed" in text


async def test_records_of_every_type_have_their_fields(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    plan = make_plan(tmp_path, [query("q", "hi"), shell("s", "echo")], {"s": ["q"]})
    service = ScriptedQueryService({"q": Reply(error=ErrorKind.SERVER)})
    result = await execute(plan, args={}, query=service)
    assert set(result.steps["q"]) >= {"output", "status", "error", "duration_ms", "outputs"}
    assert result.steps["q"]["backend"] is None
    assert result.steps["s"] == {
        "output": "",
        "status": "skipped",
        "failed": False,  # as in llm-mux: only a failed step is `failed`
        "error": None,
        "duration_ms": 0,
        "exit_code": None,
        "stderr": "",
    }

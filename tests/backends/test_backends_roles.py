"""Roles: first, fallback, parallel, race, nesting, concurrency limits, streaming fallback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio

from muxlang.llm import BackendError, ChatRequest, ErrorKind, TextDelta
from muxlang.runtime.backends import open_router
from tests.backends.conftest import MakeConfig
from tests.fakes.llm_server import FakeLLMServer, Reply


def http(server: FakeLLMServer, **extra: Any) -> dict[str, Any]:
    return {"command": server.base_url(), "model": "m", "max_retries": 0, **extra}


def cli(**env: str) -> dict[str, Any]:
    return {"command": "fake-llm", "max_retries": 0, "env": env}


def by_name(reply_for: dict[str, Reply]) -> Any:
    """A responder answering by the request's model (each HTTP backend has its own)."""

    def respond(request: Any) -> Reply:
        return reply_for[request.model]

    return respond


def backends_on(server: FakeLLMServer, *names: str, **extra: Any) -> dict[str, dict[str, Any]]:
    return {n: {**http(server, **extra), "model": n} for n in names}


async def query(config: Any, target: str, environ: dict[str, str], **kw: Any) -> Any:
    async with open_router(config, environ=environ, **kw) as router:
        return await router.query(target, ChatRequest.from_prompt("q"), kind="role")


async def query_error(config: Any, target: str, environ: dict[str, str], **kw: Any) -> BackendError:
    with pytest.raises(BackendError) as info:
        await query(config, target, environ, **kw)
    return info.value


async def test_first_uses_the_first_available_without_failover(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = by_name({"a": Reply.fail(500, "a is down"), "b": Reply.answer("from b")})
    config = make_config(
        backends={
            "missing": {"command": "not-installed-anywhere"},
            "nokey": {**http(llm_server), "api_key": "${NO_SUCH_KEY}"},
            "off": {**http(llm_server), "enabled": False},
            **backends_on(llm_server, "a", "b"),
        },
        roles={"r": {"backends": ["missing", "nokey", "off", "a", "b"], "execution": "first"}},
    )
    error = await query_error(config, "r", environ)
    assert "a is down" in str(error)
    assert [r.model for r in llm_server.requests] == ["a"]  # b never asked


async def test_first_with_nothing_available_says_why(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(
        backends={
            "claude": {"command": "claude-not-here"},
            "openai": {"command": "http://127.0.0.1:9/v1", "api_key": "${OPENAI_API_KEY}"},
        },
        roles={"quick": {"backends": ["claude", "openai"]}},
    )
    error = await query_error(config, "quick", environ)
    assert error.kind is ErrorKind.CONFIG
    text = str(error)
    assert "role `quick` (first): no backend can be used" in text
    assert "claude: command `claude-not-here` not found on PATH" in text
    assert "openai: environment variable OPENAI_API_KEY is not set" in text


async def test_fallback_tries_each_in_order_and_reports_every_failure(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = by_name(
        {
            "a": Reply.fail(500, "a exploded"),
            "b": Reply.fail(400, "b dislikes you"),
            "c": Reply.answer("c answers"),
        }
    )
    config = make_config(
        backends=backends_on(llm_server, "a", "b", "c"),
        roles={
            "r": {"backends": ["a", "b", "c"], "execution": "fallback"},
            "bad": {"backends": ["a", "b"], "execution": "fallback"},
        },
    )
    result = await query(config, "r", environ)
    assert result.output == "c answers"
    assert result.backend == "c"
    assert [r.model for r in llm_server.requests] == ["a", "b", "c"]
    error = await query_error(config, "bad", environ)
    assert "every backend failed" in str(error)
    assert "a: HTTP 500" in str(error)
    assert "a exploded" in str(error)
    assert "b: HTTP 400" in str(error)
    assert "b dislikes you" in str(error)


async def test_parallel_outputs_in_role_order(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = by_name(
        {
            "slow": Reply.answer("slow text", delay=0.3),
            "broken": Reply.fail(503, "nope"),
            "fast": Reply.answer("fast text"),
        }
    )
    config = make_config(
        backends=backends_on(llm_server, "slow", "broken", "fast"),
        roles={"r": {"backends": ["slow", "broken", "fast"], "execution": "parallel"}},
    )
    result = await query(config, "r", environ)
    assert list(result.outputs) == ["slow", "fast"]
    assert result.output == "=== slow ===\nslow text\n\n=== fast ===\nfast text"
    assert result.backend == "slow"  # first successful in role order, not first to finish


async def test_parallel_runs_at_once_and_needs_min_success(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str], autojump_clock: Any
) -> None:
    llm_server.default = by_name(
        {"a": Reply.answer("A", delay=10), "b": Reply.answer("B", delay=10), "c": Reply.fail(500)}
    )
    config = make_config(
        backends=backends_on(llm_server, "a", "b", "c"),
        roles={
            "two": {"backends": ["a", "b", "c"], "execution": "parallel", "min_success": 2},
            "three": {"backends": ["a", "b", "c"], "execution": "parallel", "min_success": 3},
        },
    )
    transport = llm_server.transport()
    start = trio.current_time()
    result = await query(config, "two", environ, transport=transport)
    assert trio.current_time() - start == pytest.approx(10)
    assert result.outputs == {"a": "A", "b": "B"}
    error = await query_error(config, "three", environ, transport=transport)
    assert "2 of 3 answered, 3 needed" in str(error)
    assert "c: HTTP 500" in str(error)


async def test_max_concurrent_limits_backend_calls_in_flight(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str], autojump_clock: Any
) -> None:
    llm_server.default = Reply.answer("x", delay=10)
    config = make_config(
        backends=backends_on(llm_server, "a", "b", "c", "d"),
        roles={"all": {"backends": ["a", "b", "c", "d"], "execution": "parallel"}},
        max_concurrent=2,
    )
    start = trio.current_time()
    await query(config, "all", environ, transport=llm_server.transport())
    assert trio.current_time() - start == pytest.approx(20)


async def test_race_takes_the_first_success_and_kills_the_losers(
    make_config: MakeConfig, environ: dict[str, str], tmp_path: Path
) -> None:
    slow_pid = tmp_path / "slow.pid"
    config = make_config(
        backends={
            "failing": cli(FAKE_LLM_MODE="fail"),
            "slow": cli(FAKE_LLM_MODE="slow", FAKE_LLM_DELAY="30", FAKE_LLM_PIDFILE=str(slow_pid)),
            "quick": cli(FAKE_LLM_MODE="slow", FAKE_LLM_DELAY="0.5", FAKE_LLM_PREFIX="quick: "),
        },
        roles={"r": {"backends": ["failing", "slow", "quick"], "execution": "race"}},
    )
    start = trio.current_time()
    result = await query(config, "r", environ)
    assert trio.current_time() - start < 10
    assert result.output == "quick: q"
    assert result.backend == "quick"
    pid = int(slow_pid.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_race_with_every_backend_failing(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = Reply.rate_limited(retry_after="3")
    config = make_config(
        backends=backends_on(llm_server, "a", "b"),
        roles={"r": {"backends": ["a", "b"], "execution": "race"}},
    )
    error = await query_error(config, "r", environ)
    assert error.kind is ErrorKind.RATE_LIMIT
    assert error.retry_after == 3
    assert "a: HTTP 429" in str(error)
    assert "b: HTTP 429" in str(error)


async def test_roles_nest(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = by_name(
        {"a": Reply.fail(500, "down"), "b": Reply.answer("B"), "c": Reply.answer("C")}
    )
    config = make_config(
        backends=backends_on(llm_server, "a", "b", "c"),
        roles={
            "inner": {"backends": ["a", "b"], "execution": "fallback"},
            "outer": {"backends": ["inner", "c"], "execution": "parallel"},
            # a role may list a backend of its own name
            "c": {"backends": ["c"]},
        },
    )
    result = await query(config, "outer", environ)
    assert result.outputs == {"inner": "B", "c": "C"}
    assert result.backend == "b"
    assert (await query(config, "c", environ)).output == "C"
    async with open_router(config, environ=environ) as router:
        resolved = router.resolve("outer")
    assert resolved.execution == "parallel"
    assert resolved.entries == ("inner", "c")
    assert resolved.backends == ("a", "b", "c")


async def test_stream_falls_back_only_before_the_first_event(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(
        backends=backends_on(llm_server, "a", "b", "c"),
        roles={"r": {"backends": ["a", "b", "c"], "execution": "fallback"}},
    )
    llm_server.default = by_name(
        {
            "a": Reply.fail(503, "a down"),
            "b": Reply.answer("half of b", stream_error="b broke"),
            "c": Reply.answer("c"),
        }
    )
    seen: list[Any] = []
    async with open_router(config, environ=environ) as router:
        with pytest.raises(BackendError) as info:
            async for event in router.stream("r", ChatRequest.from_prompt("q"), "role"):
                seen.append(event)
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "half of b"
    assert "b broke" in str(info.value)
    assert [r.model for r in llm_server.requests] == ["a", "b"]  # never spliced with c


async def test_parallel_role_streams_as_one_answer(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = by_name({"a": Reply.answer("A"), "b": Reply.answer("B")})
    config = make_config(
        backends=backends_on(llm_server, "a", "b"),
        roles={"r": {"backends": ["a", "b"], "execution": "parallel"}},
    )
    async with open_router(config, environ=environ) as router:
        events = [e async for e in router.stream("r", ChatRequest.from_prompt("q"))]
    assert events[0] == TextDelta("=== a ===\nA\n\n=== b ===\nB")

"""HTTP backends against the fake upstream on 127.0.0.1: the four protocols and their failures."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import trio

from muxlang.llm import (
    BackendError,
    ChatRequest,
    ErrorKind,
    Finish,
    Message,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from muxlang.runtime.backends import open_router
from tests.backends.conftest import MakeConfig
from tests.fakes.llm_server import FakeLLMServer, Reply, ToolCallSpec

PROTOCOLS = ["openai", "anthropic", "gemini", "ollama"]


def http_backend(server: FakeLLMServer, protocol: str, **extra: Any) -> dict[str, Any]:
    return {
        "command": server.base_url(protocol),
        "protocol": protocol,
        "model": "test-model",
        "max_retries": 0,
        **extra,
    }


async def ask(
    config: Any, target: str, prompt: str = "hello", environ: dict[str, str] | None = None
) -> Any:
    async with open_router(config, environ=environ or {}) as router:
        return await router.complete(target, ChatRequest.from_prompt(prompt), kind="backend")


async def fail(config: Any, target: str, environ: dict[str, str] | None = None) -> BackendError:
    with pytest.raises(BackendError) as info:
        await ask(config, target, environ=environ)
    return info.value


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_answer_and_wire_format(
    protocol: str, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(
        backends={
            "b": http_backend(
                llm_server,
                protocol,
                api_key="${TEST_KEY}",
                system="Be terse.",
                options={"temperature": 0.25},
                headers={"X-Team": "qa"},
            )
        }
    )
    answer = await ask(config, "b", "what is up", environ={"TEST_KEY": "k-123456"})
    assert answer.text == "what is up"
    assert answer.backend == "b"
    assert answer.usage is not None
    (seen,) = llm_server.requests
    body = seen.json
    assert seen.headers["x-team"] == "qa"
    if protocol == "openai":
        assert seen.path == "/v1/chat/completions"
        assert seen.headers["authorization"] == "Bearer k-123456"
        assert body["messages"][0] == {"role": "system", "content": "Be terse."}
        assert body["temperature"] == 0.25
        assert body["model"] == "test-model"
    elif protocol == "anthropic":
        assert seen.path == "/v1/messages"
        assert seen.headers["x-api-key"] == "k-123456"
        assert seen.headers["anthropic-version"]
        assert body["system"] == "Be terse."
        assert body["temperature"] == 0.25
        assert body["max_tokens"] > 0
    elif protocol == "gemini":
        assert seen.path == "/v1beta/models/test-model:generateContent"
        assert seen.headers["x-goog-api-key"] == "k-123456"
        assert body["systemInstruction"]["parts"][0]["text"] == "Be terse."
        assert body["generationConfig"]["temperature"] == 0.25
    else:
        assert seen.path == "/api/chat"
        assert body["stream"] is False
        assert body["options"]["temperature"] == 0.25
        assert body["messages"][0]["role"] == "system"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_streams_arrive_in_pieces(
    protocol: str, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, protocol)})
    async with open_router(config, environ={}) as router:
        events = [e async for e in router.stream("b", ChatRequest.from_prompt("one two three"))]
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(texts) == "one two three"
    assert len(texts) == 3
    assert isinstance(events[-1], Finish)
    assert events[-1].reason == "stop"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_tool_calls_round_trip(
    protocol: str, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, protocol)})
    llm_server.script(
        Reply.tools(ToolCallSpec("weather", {"city": "Oslo"})),
        Reply.tools(ToolCallSpec("weather", {"city": "Rome"})),
    )
    request = ChatRequest(
        messages=(Message("user", "weather?"),),
        tools=(Tool("weather", "Look up weather", {"type": "object"}),),
    )
    async with open_router(config, environ={}) as router:
        answer = await router.complete("b", request, kind="backend")
        events = [e async for e in router.stream("b", request, "backend")]
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.tool_calls
    assert call.name == "weather"
    assert call.arguments.replace(" ", "") == '{"city":"Oslo"}'
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].name == "weather"
    assert "".join(d.arguments for d in deltas).replace(" ", "") == '{"city":"Rome"}'
    assert isinstance(events[-1], Finish)
    assert events[-1].reason == "tool_calls"
    sent = llm_server.requests[0].json
    assert "weather" in str(sent.get("tools"))


async def test_conversation_with_tool_results_is_sent_in_protocol_shape(
    llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(
        backends={p: http_backend(llm_server, p) for p in ("openai", "anthropic", "gemini")}
    )
    request = ChatRequest(
        messages=(
            Message("user", "weather?"),
            Message("assistant", "", tool_calls=(ToolCall("c1", "weather", '{"city":"Oslo"}'),)),
            Message("tool", "sunny", tool_call_id="c1"),
        )
    )
    async with open_router(config, environ={}) as router:
        for name in ("openai", "anthropic", "gemini"):
            await router.complete(name, request, kind="backend")
    openai_body, anthropic_body, gemini_body = (r.json for r in llm_server.requests)
    assert openai_body["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}
    assert anthropic_body["messages"][1]["content"][0]["type"] == "tool_use"
    assert anthropic_body["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "c1",
        "content": "sunny",
    }
    assert gemini_body["contents"][2]["parts"][0]["functionResponse"]["name"] == "weather"


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_rate_limit_carries_status_message_and_retry_after(
    protocol: str, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, protocol)})
    llm_server.script(Reply.rate_limited("Slow down, friend", retry_after="7"))
    error = await fail(config, "b")
    assert error.kind is ErrorKind.RATE_LIMIT
    assert error.status == 429
    assert error.retry_after == 7
    assert "Slow down, friend" in str(error)
    assert llm_server.request_count == 1


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (Reply.fail(500, "database on fire"), ErrorKind.SERVER, "HTTP 500"),
        (Reply.fail(503, "overloaded right now"), ErrorKind.SERVER, "overloaded right now"),
        (Reply.fail(400, "max_tokens is too large"), ErrorKind.CLIENT, "max_tokens is too large"),
        (Reply.fail(401, "invalid api key"), ErrorKind.CLIENT, "HTTP 401"),
        (Reply.fail(408, "request timeout"), ErrorKind.TIMEOUT, "HTTP 408"),
        (Reply.malformed(), ErrorKind.SERVER, "malformed JSON"),
        (Reply.wrong_content_type(), ErrorKind.SERVER, "content type text/html"),
        (Reply(json={"unexpected": True}), ErrorKind.SERVER, "malformed answer"),
        (Reply.dropped(), ErrorKind.CONNECTION, "dropped"),
    ],
    ids=["500", "503", "400", "401", "408", "malformed", "html", "shape", "dropped"],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_errors_are_classified(
    protocol: str,
    reply: Reply,
    kind: ErrorKind,
    words: str,
    llm_server: FakeLLMServer,
    make_config: MakeConfig,
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, protocol)})
    llm_server.script(reply)
    error = await fail(config, "b")
    assert error.kind is kind
    assert words in str(error)
    assert llm_server.request_count == 1


async def test_hang_past_the_timeout_is_a_timeout(
    llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, "openai", timeout=0.3)})
    llm_server.script(Reply.hanging())
    start = trio.current_time()
    error = await fail(config, "b")
    assert error.kind is ErrorKind.TIMEOUT
    assert "within 0.3 s" in str(error)
    assert trio.current_time() - start < 3


async def test_stalled_stream_times_out(llm_server: FakeLLMServer, make_config: MakeConfig) -> None:
    config = make_config(backends={"b": http_backend(llm_server, "openai", timeout=0.3)})
    llm_server.script(Reply.answer("a b c", chunk_delay=2.0))
    async with open_router(config, environ={}) as router:
        events: list[Any] = []
        with pytest.raises(BackendError) as info:
            async for event in router.stream("b", ChatRequest.from_prompt("x")):
                events.append(event)
    assert info.value.kind is ErrorKind.TIMEOUT
    assert "stalled" in str(info.value)


async def test_in_stream_error_after_text_is_raised(
    llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, "anthropic")})
    llm_server.script(Reply.answer("partial answer", stream_error="Overloaded"))
    got: list[Any] = []
    async with open_router(config, environ={}) as router:
        with pytest.raises(BackendError) as info:
            async for event in router.stream("b", ChatRequest.from_prompt("x")):
                got.append(event)
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "partial answer"
    assert "Overloaded" in str(info.value)


async def test_connection_refused(make_config: MakeConfig) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = make_config(
        backends={"b": {"command": f"http://127.0.0.1:{port}/v1", "max_retries": 0}}
    )
    error = await fail(config, "b")
    assert error.kind is ErrorKind.CONNECTION
    assert f"127.0.0.1:{port}" in str(error)


async def test_missing_key_variable_is_a_config_error(make_config: MakeConfig) -> None:
    config = make_config(
        backends={"openai": {"command": "http://127.0.0.1:9/v1", "api_key": "${OPENAI_API_KEY}"}}
    )
    async with open_router(config, environ={}) as router:
        availability = router.backend("openai").availability()
        with pytest.raises(BackendError) as info:
            await router.complete("openai", ChatRequest.from_prompt("x"), kind="backend")
    assert not availability.ok
    assert "OPENAI_API_KEY" in availability.reason
    assert info.value.kind is ErrorKind.CONFIG
    assert "environment variable OPENAI_API_KEY is not set" in str(info.value)


async def test_secrets_never_appear_in_errors_reprs_or_logs(
    llm_server: FakeLLMServer, make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-TOPSECRET-0123456789"
    config = make_config(
        backends={
            "b": http_backend(
                llm_server,
                "openai",
                api_key="${OPENAI_API_KEY}",
                headers={"X-Org-Token": "${ORG_TOKEN}"},
                max_retries=1,
                retry_delay=0,
            )
        }
    )
    environ = {"OPENAI_API_KEY": secret, "ORG_TOKEN": "org-token-SECRET-42"}
    # servers sometimes echo what they were given
    llm_server.script(
        Reply.fail(500, f"bad key {secret} and org-token-SECRET-42"),
        Reply.fail(401, f"Incorrect API key provided: {secret}"),
    )
    caplog.set_level(logging.DEBUG)
    produced: list[str] = []
    async with open_router(config, environ=environ) as router:
        backend = router.backend("b")
        produced += [repr(backend), str(backend.availability()), repr(router)]
        with pytest.raises(BackendError) as info:
            await router.complete("b", ChatRequest.from_prompt("x"), kind="backend")
        produced += [str(info.value), repr(info.value), info.value.message]
    produced.append(caplog.text)
    everything = "\n".join(produced)
    assert "Incorrect API key provided: ***" in everything
    assert secret not in everything
    assert "org-token-SECRET-42" not in everything
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {secret}"


async def test_many_requests_share_a_few_small_pools(
    llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.default = Reply.answer("ok", delay=0.3)
    config = make_config(backends={"b": http_backend(llm_server, "openai")}, max_concurrent=50)

    async def ask(router: Any) -> None:
        async for _ in router.stream("b", ChatRequest.from_prompt("q")):
            pass

    async with open_router(config, environ={}) as router:
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(ask, router)
        backend = router.backend("b")
        clients = backend.clients  # type: ignore[attr-defined]
    assert llm_server.request_count == 100
    assert 2 <= clients <= 5  # 50 in flight, 10 connections per client


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_byte_by_byte_streams_reassemble(
    protocol: str, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    config = make_config(backends={"b": http_backend(llm_server, protocol)})
    llm_server.script(Reply.answer("héllo wörld, ünïcode", byte_by_byte=True))
    async with open_router(config, environ={}) as router:
        events = [e async for e in router.stream("b", ChatRequest.from_prompt("x"))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "héllo wörld, ünïcode"
    assert isinstance(events[-1], Finish)

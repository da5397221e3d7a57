"""Gateway bugs of issue 18 / 14: tool-call endings, tool_choice without tools, NaN and
deep bodies, Anthropic /v1 base URLs, whole JSON answers to streaming requests,
upstream URLs in errors, x-muxlang-backend on errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import call, make_gateway

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig
from muxlang.llm import Finish, TextDelta, ToolCallDelta, Usage
from muxlang.runtime.backends.protocols import adapter_for
from muxlang.serve.server import open_gateway
from tests.fakes.llm_server import FakeLLMServer, Reply, fake_llm_server

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with fake_llm_server() as server:
        yield server


def _calls_a_tool() -> list[object]:
    return [ToolCallDelta(0, id="t1", name="f", arguments="{}"), Finish("stop", Usage(2, 1))]


async def test_tool_calls_end_as_tool_calls_even_when_the_upstream_said_stop() -> None:
    app, fakes = make_gateway(["a"])
    fakes["a"].default = _calls_a_tool()  # type: ignore[assignment]
    whole = await call(app, "POST", CHAT, {"model": "a", "messages": USER})
    assert whole.json["choices"][0]["finish_reason"] == "tool_calls"
    streamed = await call(app, "POST", CHAT, {"model": "a", "messages": USER, "stream": True})
    finishes = [c["choices"][0]["finish_reason"] for c in streamed.data[:-1] if c["choices"]]
    assert finishes[-1] == "tool_calls"
    body = {"model": "a", "max_tokens": 10, "messages": USER}
    anthropic = await call(app, "POST", MESSAGES, body)
    assert anthropic.json["stop_reason"] == "tool_use"
    events = await call(app, "POST", MESSAGES, {**body, "stream": True})
    deltas = [d for e, d in events.events if e == "message_delta"]
    assert json.loads(deltas[-1])["delta"]["stop_reason"] == "tool_use"


async def test_tool_choice_is_not_sent_without_tools() -> None:
    app, fakes = make_gateway(["a"])
    answer = await call(
        app,
        "POST",
        MESSAGES,
        {"model": "a", "max_tokens": 5, "messages": USER, "tool_choice": {"type": "auto"}},
    )
    assert answer.status == 200
    assert fakes["a"].requests[-1].tool_choice is None


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_in_a_request_is_a_400_in_the_clients_shape(constant: str) -> None:
    app, fakes = make_gateway(["a"])
    messages = '[{"role": "user", "content": "x"}]'
    raw = f'{{"model": "a", "temperature": {constant}, "messages": {messages}}}'.encode()
    openai = await call(app, "POST", CHAT, raw=raw)
    assert openai.status == 400
    assert constant.lstrip("-") in openai.json["error"]["message"]
    assert openai.json["error"]["type"] == "invalid_request_error"
    anthropic = await call(app, "POST", MESSAGES, raw=raw)
    assert anthropic.status == 400
    assert anthropic.json["type"] == "error"
    assert fakes["a"].requests == []  # never forwarded


async def test_a_body_nested_100k_deep_is_a_400_in_the_clients_shape() -> None:
    app, fakes = make_gateway(["a"])
    raw = b'{"model": "a", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    openai = await call(app, "POST", CHAT, raw=raw)
    assert openai.status == 400
    assert "nested too deeply" in openai.json["error"]["message"]
    assert openai.headers["x-muxlang-backend"] == "none"
    anthropic = await call(app, "POST", MESSAGES, raw=raw)
    assert anthropic.status == 400
    assert anthropic.json["error"]["type"] == "invalid_request_error"
    assert fakes["a"].requests == []


def _config(**backends: BackendConfig) -> ResolvedConfig:
    return ResolvedConfig(project_root=Path("."), backends=backends)


async def test_an_anthropic_backend_given_with_v1_is_not_reached_at_v1_v1(
    upstream: FakeLLMServer,
) -> None:
    base = upstream.base_url("anthropic") + "/v1"
    config = _config(an=BackendConfig(command=base, protocol="anthropic", max_retries=0))
    upstream.reset()
    async with open_gateway(config, environ={}) as app:
        body = {"model": "an", "max_tokens": 5, "messages": USER}
        answer = await call(app, "POST", MESSAGES, body, {"host": "127.0.0.1"})
    assert answer.status == 200, answer.body
    assert [r.path for r in upstream.requests] == ["/v1/messages"]


WHOLE = {
    "openai": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "whole answer"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    },
    "anthropic": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "whole answer"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 2},
    },
}


def _whole(request: object) -> Reply:
    """The upstream's whole JSON answer whatever the request asked (stream or not)."""
    protocol = "anthropic" if "/messages" in getattr(request, "path", "") else "openai"
    return Reply(json=WHOLE[protocol])


@pytest.mark.parametrize(("path", "protocol"), [(CHAT, "openai"), (MESSAGES, "anthropic")])
async def test_a_whole_json_answer_to_a_stream_request_is_relayed_as_a_stream(
    upstream: FakeLLMServer, path: str, protocol: str
) -> None:
    """Pass-through (client format = upstream's) and translation (the other format)."""
    config = _config(
        up=BackendConfig(command=upstream.base_url(protocol), protocol=protocol, max_retries=0),
        other=BackendConfig(
            command=upstream.base_url("openai" if protocol == "anthropic" else "anthropic"),
            protocol="openai" if protocol == "anthropic" else "anthropic",
            max_retries=0,
        ),
    )
    for model in ("up", "other"):
        upstream.reset()
        upstream.default = _whole
        async with open_gateway(config, environ={}) as app:
            body = {"model": model, "max_tokens": 5, "messages": USER, "stream": True}
            first = await call(app, "POST", path, body, {"host": "127.0.0.1"})
            again = await call(app, "POST", path, body, {"host": "127.0.0.1"})
        for answer in (first, again):  # and the backend did not cool down
            assert answer.status == 200, answer.body
            assert answer.headers["content-type"].startswith("text/event-stream")
            text = "".join(
                (d["choices"][0]["delta"].get("content") or "")
                if path == CHAT
                else d.get("delta", {}).get("text", "")
                for d in answer.data
                if d != "[DONE]" and (path != CHAT or d.get("choices"))
            )
            assert text == "whole answer"


WHOLE_CALLS = {
    "openai": {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    # some compatible servers send parts: joined as they come
                    "content": [
                        {"type": "text", "text": "Let me "},
                        {"type": "text", "text": "check."},
                    ],
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    },
    "anthropic": {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "text", "text": "Let me "},
            {"type": "text", "text": "check."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 4},
    },
}


@pytest.mark.parametrize(
    ("path", "protocol", "arguments"),
    [
        (CHAT, "openai", '{"city":"Paris"}'),  # as the upstream wrote them
        # an `input` object written as every anthropic answer's is, by the adapter
        (MESSAGES, "anthropic", '{"city": "Paris"}'),
    ],
)
async def test_a_relayed_whole_answer_keeps_its_text_tool_calls_finish_and_usage(
    upstream: FakeLLMServer, path: str, protocol: str, arguments: str
) -> None:
    """Pass-through: the stream a client gets from a whole answer, read by the one
    decoder of the protocol (what a muxlang backend pointed at the gateway uses)."""
    config = _config(
        up=BackendConfig(command=upstream.base_url(protocol), protocol=protocol, max_retries=0)
    )
    upstream.reset()
    upstream.default = lambda request: Reply(json=WHOLE_CALLS[protocol])
    body = {"model": "up", "max_tokens": 5, "messages": USER, "stream": True}
    if protocol == "openai":
        body["stream_options"] = {"include_usage": True}
    async with open_gateway(config, environ={}) as app:
        answer = await call(app, "POST", path, body, {"host": "127.0.0.1"})
    assert answer.status == 200, answer.body
    decoder = adapter_for(protocol).decoder()
    events = [e for name, data in answer.events for e in decoder.feed(name, data)]
    events += decoder.close()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me check."
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(c.id, c.name) for c in calls if c.id] == [
        ("call_1" if protocol == "openai" else "toolu_1", "weather")
    ]
    assert "".join(c.arguments for c in calls) == arguments
    assert events[-1] == Finish("tool_calls", Usage(9, 4))


@pytest.mark.parametrize(("path", "protocol"), [(CHAT, "openai"), (MESSAGES, "anthropic")])
@pytest.mark.parametrize("whole", [{"choices": 1}, {"content": "text"}, [1, 2]])
async def test_a_whole_answer_of_the_wrong_shape_is_a_502_naming_the_backend(
    upstream: FakeLLMServer, path: str, protocol: str, whole: object
) -> None:
    config = _config(
        up=BackendConfig(command=upstream.base_url(protocol), protocol=protocol, max_retries=0)
    )
    upstream.reset()
    upstream.default = lambda request: Reply(json=whole)
    body = {"model": "up", "max_tokens": 5, "messages": USER, "stream": True}
    async with open_gateway(config, environ={}) as app:
        answer = await call(app, "POST", path, body, {"host": "127.0.0.1"})
    assert answer.status == 502, answer.body
    assert answer.json["error"]["message"].startswith("`up` failed: ")
    assert "malformed answer" in answer.json["error"]["message"]


async def test_errors_name_the_backend_never_its_url(upstream: FakeLLMServer) -> None:
    config = _config(
        up=BackendConfig(command=upstream.base_url("openai"), protocol="openai", max_retries=0)
    )
    upstream.reset()
    upstream.default = lambda request: Reply.fail(500, "exploded")
    async with open_gateway(config, environ={}) as app:
        # anthropic client to an openai backend: the translated path (HttpBackend)
        body = {"model": "up", "max_tokens": 5, "messages": USER}
        failed = await call(app, "POST", MESSAGES, body, {"host": "127.0.0.1"})
    assert failed.status == 502
    message = failed.json["error"]["message"]
    assert "exploded" in message
    assert "backend `up`" in message
    assert "http://" not in message
    assert "127.0.0.1" not in message
    assert failed.headers["x-muxlang-backend"] == "up"


async def test_pass_through_answers_carry_the_upstreams_request_id_and_rate_limits(
    upstream: FakeLLMServer,
) -> None:
    limits = {
        "x-request-id": "req_123",
        "x-ratelimit-remaining-requests": "99",
        "x-internal-secret-hop": "never-relayed",
    }
    config = _config(
        up=BackendConfig(command=upstream.base_url("openai"), protocol="openai", max_retries=0)
    )
    upstream.reset()
    upstream.default = lambda request: Reply(text="hi", headers=limits)
    async with open_gateway(config, environ={}) as app:
        body = {"model": "up", "messages": USER}
        whole = await call(app, "POST", CHAT, body, {"host": "127.0.0.1"})
        streamed = await call(app, "POST", CHAT, {**body, "stream": True}, {"host": "127.0.0.1"})
        # an anthropic client reaches the openai backend by translation: nothing relayed
        translated = await call(
            app, "POST", MESSAGES, {**body, "max_tokens": 5}, {"host": "127.0.0.1"}
        )
    for answer in (whole, streamed):
        assert answer.status == 200
        assert answer.headers["x-request-id"] == "req_123"
        assert answer.headers["x-ratelimit-remaining-requests"] == "99"
        assert "x-internal-secret-hop" not in answer.headers
        assert answer.headers["x-muxlang-backend"] == "up"
    assert translated.status == 200
    assert "x-request-id" not in translated.headers


async def test_gemini_backends_get_and_give_function_call_ids(upstream: FakeLLMServer) -> None:
    config = _config(
        gem=BackendConfig(command=upstream.base_url("gemini"), protocol="gemini", max_retries=0)
    )
    call_part = {"functionCall": {"id": "fc_7", "name": "get_weather", "args": {"city": "Oslo"}}}
    upstream.reset()
    upstream.default = lambda request: Reply(
        json={
            "candidates": [
                {"content": {"role": "model", "parts": [call_part]}, "finishReason": "STOP"}
            ]
        }
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    async with open_gateway(config, environ={}) as app:
        asked = await call(
            app,
            "POST",
            CHAT,
            {"model": "gem", "messages": USER, "tools": tools},
            {"host": "127.0.0.1"},
        )
        [got] = asked.json["choices"][0]["message"]["tool_calls"]
        assert got["id"] == "fc_7"  # the upstream's id, not one muxlang made up
        follow = [
            *USER,
            {"role": "assistant", "content": None, "tool_calls": [got]},
            {"role": "tool", "tool_call_id": "fc_7", "content": "sunny"},
        ]
        await call(
            app,
            "POST",
            CHAT,
            {"model": "gem", "messages": follow, "tools": tools},
            {"host": "127.0.0.1"},
        )
    contents = upstream.requests[-1].json["contents"]
    assert contents[1]["parts"][0]["functionCall"]["id"] == "fc_7"
    assert contents[2]["parts"][0]["functionResponse"]["id"] == "fc_7"


async def test_anthropic_server_tools_stay_server_tools(upstream: FakeLLMServer) -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    config = _config(
        an=BackendConfig(
            command=upstream.base_url("anthropic"), protocol="anthropic", max_retries=0
        ),
        oa=BackendConfig(command=upstream.base_url("openai"), protocol="openai", max_retries=0),
    )
    upstream.reset()
    body = {"max_tokens": 5, "messages": USER, "tools": [web]}
    async with open_gateway(config, environ={}) as app:
        relayed = await call(app, "POST", MESSAGES, {**body, "model": "an"}, {"host": "127.0.0.1"})
        refused = await call(app, "POST", MESSAGES, {**body, "model": "oa"}, {"host": "127.0.0.1"})
    assert relayed.status == 200
    assert upstream.requests[0].json["tools"] == [web]  # as the client sent it
    assert refused.status == 400  # never turned into a function the model could "call"
    assert "server tool" in refused.json["error"]["message"]
    assert len(upstream.requests) == 1


async def test_count_tokens_respects_a_keys_models() -> None:
    from muxlang.serve.limits import ClientKey, KeyRing

    ring = KeyRing((ClientKey("team", b"sk-team-0002", frozenset({"a"})),))
    app, fakes = make_gateway(["a", "b"], keys=ring)
    key = {"x-api-key": "sk-team-0002"}
    body = {"messages": USER}
    allowed = await call(app, "POST", "/v1/messages/count_tokens", {**body, "model": "a"}, key)
    assert allowed.status == 200
    assert allowed.json == {"input_tokens": 4}  # "hi": 1 token, plus 3 for the message
    refused = await call(app, "POST", "/v1/messages/count_tokens", {**body, "model": "b"}, key)
    assert refused.status == 403
    assert refused.json["type"] == "error"
    assert fakes["a"].requests == fakes["b"].requests == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"model": "nope", "messages": USER}),
        ("/v1/responses", {"model": "nope", "input": "hi"}),
        (MESSAGES, {"model": "nope", "max_tokens": 5, "messages": USER}),
        ("/api/chat", {"model": "nope", "messages": USER}),
        (CHAT, {"messages": USER}),
    ],
)
async def test_every_error_names_a_backend_or_none(path: str, body: dict[str, object]) -> None:
    app, _ = make_gateway(["a"])
    answer = await call(app, "POST", path, body)
    assert answer.status in (400, 404)
    assert answer.headers["x-muxlang-backend"] == "none"
    if path in (CHAT, "/v1/responses") and "model" in body:
        assert answer.json["error"]["code"] == "model_not_found"


async def test_gemini_clients_authenticate_with_x_goog_api_key() -> None:
    from muxlang.serve.limits import ClientKey, KeyRing

    app, _ = make_gateway(["a"], keys=KeyRing((ClientKey(None, b"sk-gateway-0001"),)))
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    path = "/v1beta/models/a:generateContent"
    refused = await call(app, "POST", path, body, {"x-goog-api-key": "wrong-key-0000"})
    assert refused.status == 401
    assert refused.json["error"]["status"] == "UNAUTHENTICATED"
    answered = await call(app, "POST", path, body, {"x-goog-api-key": "sk-gateway-0001"})
    assert answered.status == 200
    assert answered.json["candidates"][0]["content"]["parts"] == [{"text": "a: hi"}]

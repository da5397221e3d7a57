"""The client formats of SPEC 15 against a live ``muxlang serve``: OpenAI Responses and
Anthropic count_tokens through the official SDKs, Gemini and Ollama with raw HTTP in
their documented shapes (the gateway in front of the fake upstream on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply, ToolCallSpec, fake_llm_server
from tests.serve.test_serve_live import USER, WEATHER, clean_env, running_gateway, write_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer) -> Iterator[str]:
    """A live ``muxlang serve`` (the project of test_serve_live) in front of ``upstream``."""
    tmp = tmp_path_factory.mktemp("formats")
    with fake_llm_server(Reply.rate_limited(retry_after="1")) as limited:
        write_project(tmp / "project", upstream, limited)
        with running_gateway(tmp / "project", clean_env(tmp)) as url:
            yield url


WEATHER_TOOL = {"city": "Paris"}


def _weather_call(upstream: FakeLLMServer) -> None:
    upstream.script(Reply.tools(ToolCallSpec("get_weather", WEATHER_TOOL, id="call_9")))


# --------------------------------------------------------------------------- Responses


def test_responses_create_answers_and_honours_max_output_tokens(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    response = oa.responses.create(
        model="up-anthropic", input="hello there", instructions="be brief", max_output_tokens=42
    )
    assert response.output_text == "upstream heard: hello there"
    assert response.status == "completed"
    assert response.output[0].type == "message"
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    sent = upstream.requests[-1].json
    assert sent["max_tokens"] == 42
    assert sent["system"] == "be brief"


def test_responses_stream_sends_the_documented_events(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    stream = oa.responses.create(model="up-openai", input=USER, stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_item.added" in kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "upstream heard: hello there"
    done = events[-1].response
    assert done.output_text == "upstream heard: hello there"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_function_calls_are_output_items(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER}
    _weather_call(upstream)
    response = oa.responses.create(model="up-openai", input="weather?", tools=[tool])
    [call] = [item for item in response.output if item.type == "function_call"]
    assert call.call_id == "call_9"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == WEATHER_TOOL
    # the declared tool reached the upstream as a function
    assert upstream.requests[-1].json["tools"][0]["function"]["name"] == "get_weather"

    # streamed: the call's arguments arrive in function_call_arguments events
    _weather_call(upstream)
    events = list(
        oa.responses.create(model="up-openai", input="weather?", tools=[tool], stream=True)
    )
    [args_done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(args_done.arguments) == WEATHER_TOOL
    final = events[-1].response
    [streamed_call] = [i for i in final.output if i.type == "function_call"]
    assert streamed_call.call_id == "call_9"

    # the next turn sends the call and its output back: the upstream gets a tool message
    follow = [
        {"role": "user", "content": "weather?"},
        {
            "type": "function_call",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": json.dumps(WEATHER_TOOL),
        },
        {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
    ]
    oa.responses.create(model="up-openai", input=follow, tools=[tool])  # type: ignore[arg-type]
    roles = [m["role"] for m in upstream.requests[-1].json["messages"]]
    assert roles == ["user", "assistant", "tool"]
    assert upstream.requests[-1].json["messages"][2]["tool_call_id"] == "call_9"


def test_responses_errors_come_in_the_openai_shape(oa: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oa.responses.create(model="no-such-role", input="hi")
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        oa.responses.create(model="up-openai", input="hi", previous_response_id="resp_1")


# --------------------------------------------------------------------------- count_tokens


def test_anthropic_count_tokens_estimates_without_asking_a_backend(
    an: anthropic.Anthropic, upstream: FakeLLMServer
) -> None:
    counted = an.messages.count_tokens(model="duo", messages=USER)  # type: ignore[arg-type]
    # "hello there" is 11 characters: 3 tokens at 4 a token, plus 3 for the message
    assert counted.input_tokens == 6
    longer = an.messages.count_tokens(
        model="duo",
        system="x" * 400,
        messages=USER,  # type: ignore[arg-type]
    )
    assert longer.input_tokens == 6 + 100 + 1
    assert upstream.requests == []
    with pytest.raises(anthropic.NotFoundError):
        an.messages.count_tokens(model="nope", messages=USER)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Gemini


def _gemini(gateway: str, model: str, method: str, body: dict[str, Any]) -> httpx.Response:
    url = f"{gateway}/v1beta/models/{model}:{method}"
    params = {"alt": "sse"} if method == "streamGenerateContent" else None
    return httpx.post(url, json=body, params=params, timeout=20)


GEMINI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "generationConfig": {"maxOutputTokens": 30, "temperature": 0.5},
}


def test_gemini_generate_content(gateway: str, oa: openai.OpenAI, upstream: FakeLLMServer) -> None:
    answer = _gemini(gateway, "up-openai", "generateContent", GEMINI_BODY)
    assert answer.status_code == 200
    assert answer.headers["x-muxlang-backend"] == "up-openai"
    data = answer.json()
    candidate = data["candidates"][0]
    assert candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"] == [{"text": "upstream heard: hello there"}]
    assert candidate["finishReason"] == "STOP"
    assert data["usageMetadata"]["candidatesTokenCount"] > 0
    sent = upstream.requests[-1].json
    assert sent["max_tokens"] == 30
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_gemini_stream_generate_content_with_alt_sse(
    gateway: str, oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    answer = _gemini(gateway, "up-anthropic", "streamGenerateContent", GEMINI_BODY)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    chunks = [
        json.loads(line[len("data: ") :])
        for line in answer.text.splitlines()
        if line.startswith("data: ")
    ]
    text = "".join(
        part.get("text", "") for c in chunks for part in c["candidates"][0]["content"]["parts"]
    )
    assert text == "upstream heard: hello there"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]


def test_gemini_function_calls_carry_their_id(
    gateway: str, oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    body = {
        **GEMINI_BODY,
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}],
    }
    _weather_call(upstream)
    parts = _gemini(gateway, "up-openai", "generateContent", body).json()["candidates"][0][
        "content"
    ]["parts"]
    assert parts == [
        {"functionCall": {"id": "call_9", "name": "get_weather", "args": WEATHER_TOOL}}
    ]
    # the answer goes back with the same id: the upstream sees it as the call's result
    body["contents"] = [
        *GEMINI_BODY["contents"],
        {"role": "model", "parts": parts},
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "call_9",
                        "name": "get_weather",
                        "response": {"forecast": "sunny"},
                    }
                }
            ],
        },
    ]
    assert _gemini(gateway, "up-openai", "generateContent", body).status_code == 200
    messages = upstream.requests[-1].json["messages"]
    assert messages[-2]["tool_calls"][0]["id"] == "call_9"
    assert messages[-1]["tool_call_id"] == "call_9"


def test_gemini_errors_come_in_the_gemini_shape(gateway: str) -> None:
    missing = _gemini(gateway, "no-such-role", "generateContent", GEMINI_BODY)
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert missing.json()["error"]["code"] == 404
    bad = _gemini(gateway, "up-openai", "generateContent", {"contents": []})
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"


# --------------------------------------------------------------------------- Ollama


def test_ollama_chat_streams_ndjson_ending_with_done(
    gateway: str, oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    body = {"model": "up-gemini", "messages": USER, "options": {"num_predict": 25}}
    answer = httpx.post(gateway + "/api/chat", json=body, timeout=20)  # stream: default true
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
    assert all(line["done"] is False for line in lines[:-1])
    assert lines[-1]["done"] is True
    assert lines[-1]["done_reason"] == "stop"
    assert lines[-1]["eval_count"] > 0
    assert "".join(line["message"]["content"] for line in lines) == "upstream heard: hello there"
    assert upstream.requests[-1].json["generationConfig"]["maxOutputTokens"] == 25


def test_ollama_chat_without_stream_and_tags(gateway: str, oa: openai.OpenAI) -> None:
    body = {"model": "duo", "messages": USER, "stream": False}
    answer = httpx.post(gateway + "/api/chat", json=body, timeout=20).json()
    assert answer["message"] == {"role": "assistant", "content": "upstream heard: hello there"}
    assert answer["done"] is True
    tags = httpx.get(gateway + "/api/tags", timeout=20).json()
    names = [m["name"] for m in tags["models"]]
    assert "duo" in names
    assert "up-ollama" in names
    missing = httpx.post(gateway + "/api/chat", json={**body, "model": "nope"}, timeout=20)
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]


def test_ollama_tool_calls(gateway: str, oa: openai.OpenAI, upstream: FakeLLMServer) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    _weather_call(upstream)
    body = {"model": "up-openai", "messages": USER, "tools": tools, "stream": False}
    answer = httpx.post(gateway + "/api/chat", json=body, timeout=20).json()
    assert answer["message"]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": WEATHER_TOOL}}
    ]

"""The shared fake upstream: each protocol answers as the official clients expect."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply, ToolCallSpec, fake_llm_server


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with fake_llm_server() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(server: FakeLLMServer) -> None:
    server.reset()


def test_openai_sdk_plain_and_streaming(server: FakeLLMServer) -> None:
    client = openai.OpenAI(base_url=server.base_url("openai"), api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "hello there"}]
    )
    assert answer.choices[0].message.content == "hello there"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 2
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
        if c.choices
    ]
    assert "".join(pieces) == "one two three"
    assert len(pieces) > 2
    seen = server.requests
    assert [r.path for r in seen] == ["/v1/chat/completions"] * 2
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert seen[1].json["stream"] is True


def test_openai_sdk_sees_tool_calls_and_errors(server: FakeLLMServer) -> None:
    client = openai.OpenAI(base_url=server.base_url("openai"), api_key="k", max_retries=0)
    server.script(
        Reply.tools(ToolCallSpec("get_weather", {"city": "Paris"})),
        Reply.rate_limited("slow down please", retry_after="7"),
    )
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris"}'
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "7"
    assert "slow down please" in str(info.value)


def test_anthropic_sdk_plain_and_streaming(server: FakeLLMServer) -> None:
    client = anthropic.Anthropic(base_url=server.url, api_key="ak", max_retries=0)
    message = client.messages.create(
        model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi you"}]
    )
    assert message.content[0].text == "hi you"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    with client.messages.stream(
        model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "a b c"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "a b c"
    assert "anthropic-version" in server.requests[0].headers
    server.script(Reply.fail(529, "Overloaded"))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 529
    assert "Overloaded" in str(info.value)


def test_gemini_and_ollama_shapes(server: FakeLLMServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        body = {"contents": [{"role": "user", "parts": [{"text": "gem"}]}]}
        answer = client.post("/v1beta/models/gemini-pro:generateContent", json=body).json()
        assert answer["candidates"][0]["content"]["parts"][0]["text"] == "gem"
        stream = client.post("/v1beta/models/gemini-pro:streamGenerateContent?alt=sse", json=body)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text.count("data: ") >= 2
        chat = {"model": "llama3", "messages": [{"role": "user", "content": "lla ma"}]}
        lines = client.post("/api/chat", json=chat).text.splitlines()  # ollama streams by default
        assert len(lines) == 3
        assert '"done":true' in lines[-1]
        whole = client.post("/api/chat", json={**chat, "stream": False}).json()
        assert whole["message"]["content"] == "lla ma"


def test_faults(server: FakeLLMServer) -> None:
    server.script(
        Reply.dropped(),
        Reply.malformed(),
        Reply.wrong_content_type(),
        Reply.hanging(),
        Reply.answer("late", delay=0.2),
    )
    with httpx.Client(base_url=server.base_url(), timeout=1.0) as client:
        msg = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/chat/completions", json=msg)
        assert client.post("/chat/completions", json=msg).text.startswith('{"choices": [')
        assert client.post("/chat/completions", json=msg).headers["content-type"] == "text/html"
        with pytest.raises(httpx.ReadTimeout):
            client.post("/chat/completions", json=msg, timeout=0.3)
        reply = client.post("/chat/completions", json=msg)
        assert reply.json()["choices"][0]["message"]["content"] == "late"
    assert server.request_count == 5


async def test_transport_serves_the_same_script_under_mock_clock(
    server: FakeLLMServer, autojump_clock: object
) -> None:
    import trio

    server.script(Reply.answer("slow", delay=30))
    async with httpx.AsyncClient(transport=server.transport(), base_url="http://x/v1") as client:
        start = trio.current_time()
        reply = await client.post(
            "/chat/completions", json={"messages": [{"role": "user", "content": "q"}]}
        )
    assert reply.json()["choices"][0]["message"]["content"] == "slow"
    assert trio.current_time() - start == pytest.approx(30, abs=0.01)

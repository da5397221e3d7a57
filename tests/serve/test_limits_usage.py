"""Reading token counts from relayed answers, for tpm / max_cost and /metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from muxlang.config.models import BackendConfig, Price
from muxlang.llm import Usage
from muxlang.serve.limits import cost_of
from muxlang.serve.meter import MeteredRelay, metering, usage_in


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


class Relay:
    def __init__(self, chunks: list[bytes], whole: bytes = b"{}") -> None:
        self.chunks = chunks
        self.whole = whole

    async def complete(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        return 200, "application/json", self.whole

    async def stream(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def split_everywhere(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


async def relayed(chunks: list[bytes]) -> list[tuple[str, Usage]]:
    with metering() as meter:
        async for _ in MeteredRelay(Relay(chunks)).stream("up", "anthropic", {}, {}):
            pass
    return meter.used


ANTHROPIC_STREAM = (
    sse({"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}})
    + sse({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}})
    + sse({"type": "message_delta", "usage": {"output_tokens": 7}})
    + sse({"type": "message_stop"})
)


async def test_an_anthropic_stream_split_anywhere_counts_its_tokens_once() -> None:
    for size in (1, 7, 64, len(ANTHROPIC_STREAM)):
        assert await relayed(split_everywhere(ANTHROPIC_STREAM, size)) == [("up", Usage(12, 7))]


async def test_an_openai_stream_with_usage_and_an_ollama_ndjson_stream() -> None:
    openai = sse({"choices": [{"delta": {"content": "hi"}}]}) + sse(
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
    )
    assert await relayed(split_everywhere(openai + b"data: [DONE]\n\n", 5)) == [("up", Usage(5, 3))]
    ollama = b'{"message":{"content":"hi"},"done":false}\n{"done":true,"prompt_eval_count":4'
    ollama += b',"eval_count":2}\n'
    assert await relayed(split_everywhere(ollama, 3)) == [("up", Usage(4, 2))]


async def test_a_stream_without_usage_counts_nothing() -> None:
    assert await relayed([sse({"choices": [{"delta": {"content": "usage"}}]})]) == []


async def test_a_whole_relayed_answer_counts_its_usage() -> None:
    whole = json.dumps({"usage": {"prompt_tokens": 9, "completion_tokens": 1}}).encode()
    with metering() as meter:
        await MeteredRelay(Relay([], whole)).complete("up", "openai", {}, {})
    assert meter.used == [("up", Usage(9, 1))]


def test_usage_in_every_client_format() -> None:
    assert usage_in({"usage": {"input_tokens": 2, "output_tokens": 3}}) == Usage(2, 3)
    assert usage_in({"response": {"usage": {"input_tokens": 4, "output_tokens": 1}}}) == Usage(4, 1)
    gemini = {"usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 2}}
    assert usage_in(gemini) == Usage(6, 2)
    assert usage_in({"usage": {"prompt_tokens": True, "completion_tokens": -1}}) == Usage(0, 0)
    assert usage_in(["not", "an", "object"]) is None


def test_cost_is_tokens_times_price_per_million() -> None:
    priced = BackendConfig(command="http://x", price=Price(input=3.0, output=15.0))
    assert cost_of(priced, Usage(1_000_000, 100_000)) == 4.5
    assert cost_of(BackendConfig(command="http://x"), Usage(10**9, 10**9)) == 0.0
    assert cost_of(None, Usage(5, 5)) == 0.0

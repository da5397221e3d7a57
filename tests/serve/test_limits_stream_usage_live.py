"""A key's `tpm` and `max_cost` count relayed OpenAI streams whose client did not ask
for usage (``stream_options.include_usage``): the gateway asks the upstream for it,
counts it, and the client still gets exactly the stream it asked for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from muxlang.serve.meter import _StreamUsage
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.serve.replica_support import (
    in_one_minute,
    priced_upstreams,
    serving,
)

pytestmark = pytest.mark.slow

ADMIN = "sk-admin-key-0001"
TOKENS = "sk-tokens-key-0002"
BUDGET = "sk-budget-key-0003"
WHOLE = "sk-whole-key-0004"
NULLS = "sk-nulls-key-0005"
ASKS = "sk-asks-key-0006"
BYTES = "sk-bytes-key-0007"
TRANSLATED = "sk-translated-key-0008"
USER = [{"role": "user", "content": "hello there"}]


def config(upstream: FakeLLMServer) -> str:
    tpm_keys = "\n".join(
        f'[serve.keys.{name}]\nkey = "{key}"\ntpm = 10\n'
        for name, key in (
            ("tokens", TOKENS),
            ("whole", WHOLE),
            ("nulls", NULLS),
            ("asks", ASKS),
            ("bytes", BYTES),
            ("translated", TRANSLATED),
        )
    )
    return f"""
[serve]
api_keys = ["{ADMIN}"]

{tpm_keys}
[serve.keys.budget]
key = "{BUDGET}"
max_cost = 0.01

{priced_upstreams(upstream)}"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("stream-usage"), config(upstream)) as replica:
        yield replica.url


@pytest.fixture(autouse=True)
def answers(upstream: FakeLLMServer) -> None:
    upstream.reset()
    upstream.default = lambda r: Reply(text="fine", usage=(8, 4))


def oa(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0, timeout=20)


def streamed(client: openai.OpenAI, model: str = "up-openai") -> list[Any]:
    """The chunks of one streamed answer, asked for without ``stream_options``."""
    stream = client.chat.completions.create(model=model, messages=USER, stream=True)  # type: ignore[call-overload]
    return list(stream)


def raw_stream(gateway: str, key: str, **extra: Any) -> bytes:
    body = {"model": "up-openai", "messages": USER, "stream": True, **extra}
    headers = {"authorization": f"Bearer {key}"}
    reply = httpx.post(gateway + "/v1/chat/completions", json=body, headers=headers, timeout=20)
    assert reply.status_code == 200, reply.text
    return reply.content


def asked_upstream(upstream: FakeLLMServer) -> dict[str, Any]:
    body = upstream.requests[-1].json
    assert isinstance(body, dict)
    return body


def test_tpm_counts_a_stream_that_did_not_ask_for_usage(
    gateway: str, upstream: FakeLLMServer
) -> None:
    client = oa(gateway, TOKENS)

    def streamed_then_refused() -> tuple[list[Any], openai.RateLimitError]:
        chunks = streamed(client)
        asked = len(upstream.requests)
        with pytest.raises(openai.RateLimitError) as caught:
            streamed(client)
        assert len(upstream.requests) == asked  # refused before any backend was asked
        return chunks, caught.value

    chunks, error = in_one_minute(streamed_then_refused)
    assert error.status_code == 429
    assert "key `tokens` reached its limit of 10 tokens per minute (`tpm`)" in error.message
    # the client sees no usage chunk: every chunk has a choice and no usage
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "fine"
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_upstream_is_asked_for_usage_and_the_client_gets_the_same_bytes(
    gateway: str, upstream: FakeLLMServer
) -> None:
    unlimited = raw_stream(gateway, ADMIN)
    # an unlimited key's body goes upstream untouched
    assert "stream_options" not in asked_upstream(upstream)
    limited = raw_stream(gateway, BYTES)
    assert asked_upstream(upstream)["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in limited
    assert limited == unlimited  # exactly what the client saw before: no extra chunk


def test_max_cost_counts_a_stream_that_did_not_ask_for_usage(gateway: str) -> None:
    client = oa(gateway, BUDGET)
    # 8 in x $1000/M + 4 out x $2000/M = $0.016, over the $0.01 a month
    chunks = streamed(client)
    assert all(c.usage is None for c in chunks)
    with pytest.raises(openai.RateLimitError) as caught:
        streamed(client)
    assert "reached its limit of 0.01 USD per month (`max_cost`)" in caught.value.message


def test_a_whole_answer_relayed_as_a_stream_is_counted(
    gateway: str, upstream: FakeLLMServer
) -> None:
    whole = {
        "id": "chatcmpl-whole",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-up",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "fine"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
    }
    upstream.default = lambda r: Reply(json=whole)
    client = oa(gateway, WHOLE)

    def streamed_then_refused() -> tuple[list[Any], openai.RateLimitError]:
        chunks = streamed(client)
        with pytest.raises(openai.RateLimitError) as caught:
            streamed(client)
        return chunks, caught.value

    chunks, error = in_one_minute(streamed_then_refused)
    assert "(`tpm`)" in error.message
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "fine"
    assert all(c.choices and c.usage is None for c in chunks)


def _openai_events(usage: bool) -> bytes:
    """A stream as OpenAI sends it: with ``include_usage``, every chunk carries
    ``"usage":null`` and a last chunk without choices carries the counts."""
    out = b""
    deltas = [({"role": "assistant", "content": ""}, None), ({"content": "fine"}, None)]
    for delta, finish in [*deltas, ({}, "stop")]:
        out += _chunk([{"index": 0, "delta": delta, "finish_reason": finish}], usage, None)
    if usage:
        out += _chunk([], usage, {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12})
    return out + b"data: [DONE]\n\n"


def _chunk(choices: list[Any], usage: bool, counts: Any) -> bytes:
    data: dict[str, Any] = {"id": "chatcmpl-n", "object": "chat.completion.chunk"}
    data["created"] = 1700000000
    data["model"] = "gpt-up"
    data["choices"] = choices
    if usage:
        data["usage"] = counts
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def test_usage_nulls_of_an_upstream_that_sends_them_are_removed(
    gateway: str, upstream: FakeLLMServer
) -> None:
    upstream.default = lambda r: Reply(
        body=_openai_events(usage=True), content_type="text/event-stream"
    )

    def streamed_then_refused() -> tuple[bytes, openai.RateLimitError]:
        seen = raw_stream(gateway, NULLS)
        with pytest.raises(openai.RateLimitError) as caught:
            streamed(oa(gateway, NULLS))
        return seen, caught.value

    seen, error = in_one_minute(streamed_then_refused)
    assert "(`tpm`)" in error.message
    assert seen == _openai_events(usage=False)


def test_a_client_that_asks_for_usage_still_gets_it_once(
    gateway: str, upstream: FakeLLMServer
) -> None:
    client = oa(gateway, ASKS)

    def streamed_then_refused() -> tuple[list[Any], openai.RateLimitError]:
        stream = client.chat.completions.create(
            model="up-openai",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        with pytest.raises(openai.RateLimitError) as caught:
            streamed(client)
        return chunks, caught.value

    chunks, error = in_one_minute(streamed_then_refused)
    assert "(`tpm`)" in error.message
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1
    assert not with_usage[0].choices
    assert (with_usage[0].usage.prompt_tokens, with_usage[0].usage.completion_tokens) == (8, 4)


def test_tpm_counts_a_translated_stream_that_did_not_ask_for_usage(gateway: str) -> None:
    client = oa(gateway, TRANSLATED)  # an OpenAI client on an Anthropic backend

    def streamed_then_refused() -> tuple[list[Any], openai.RateLimitError]:
        chunks = streamed(client, "up-anthropic")
        with pytest.raises(openai.RateLimitError) as caught:
            streamed(client, "up-anthropic")
        return chunks, caught.value

    chunks, error = in_one_minute(streamed_then_refused)
    assert "key `translated` reached its limit of 10 tokens per minute (`tpm`)" in error.message
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "fine"
    assert all(c.choices and c.usage is None for c in chunks)


# --------------------------------------------------------------------------- the stripping


def _stripped(*chunks: bytes) -> tuple[bytes, Any]:
    seen = _StreamUsage()
    out = b"".join(seen.strip(chunk) for chunk in chunks)
    return out, seen.usage()


def test_stripping_keeps_crlf_events_and_other_bytes_as_they_were() -> None:
    plain = _openai_events(usage=False).replace(b"\n", b"\r\n")
    with_usage = _openai_events(usage=True).replace(b"\n", b"\r\n")
    out, usage = _stripped(with_usage)
    assert out == plain
    assert (usage.input_tokens, usage.output_tokens) == (8, 4)


def test_stripping_a_usage_event_that_arrives_alone() -> None:
    events = _openai_events(usage=True).split(b"\n\n")
    chunks = [event + b"\n\n" for event in events if event]
    out, usage = _stripped(*chunks)
    assert out == _openai_events(usage=False)
    assert usage.output_tokens == 4


def test_counts_in_a_chunk_with_choices_are_removed_from_it() -> None:
    # some OpenAI-compatible servers put the counts in the last chunk with a choice
    data = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    counts = {"prompt_tokens": 3, "completion_tokens": 5}
    sent = b"data: " + json.dumps({**data, "usage": counts}).encode() + b"\n\ndata: [DONE]\n\n"
    out, usage = _stripped(sent)
    assert (
        out
        == b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\ndata: [DONE]\n\n"
    )
    assert (usage.input_tokens, usage.output_tokens) == (3, 5)


def test_text_that_mentions_usage_is_left_alone() -> None:
    sent = _chunk([{"index": 0, "delta": {"content": '"usage": null'}}], False, None)
    out, usage = _stripped(sent)
    assert out == sent
    assert usage is None


def test_a_usage_null_written_with_spaces_or_first_is_removed() -> None:
    choice = [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]
    spaced = {"id": "c", "choices": choice, "usage": None}
    first = {"usage": None, "id": "c", "choices": choice}
    sent = b"".join(b"data: " + json.dumps(d).encode() + b"\n\n" for d in (spaced, first))
    out, usage = _stripped(sent)
    plain = b"data: " + json.dumps({"id": "c", "choices": choice}).encode() + b"\n\n"
    assert out == plain * 2
    assert usage is None

"""Protocol adapters on their own: what goes on the wire for options, limits and stops."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muxlang.config.models import BackendConfig
from muxlang.llm import ChatRequest, Finish, Message, TextDelta, Usage
from muxlang.runtime.backends.protocols import adapter_for


def body(protocol: str, request: ChatRequest, **config: Any) -> dict[str, Any]:
    cfg = BackendConfig.model_validate({"command": "http://h", "protocol": protocol, **config})
    return adapter_for(protocol).body(request, cfg, False)


def test_step_options_win_over_backend_options_and_fields() -> None:
    request = ChatRequest.from_prompt("x", temperature=0.9, options={"top_p": 0.5, "seed": 7})
    sent = body("openai", request, model="gpt", options={"temperature": 0.1, "top_p": 0.2})
    assert sent["temperature"] == 0.9  # the request's own field beats backend options
    assert sent["top_p"] == 0.5  # step options beat backend options
    assert sent["seed"] == 7
    assert "stream" not in sent


@pytest.mark.parametrize(
    ("protocol", "where"),
    [
        ("openai", lambda b: (b["max_tokens"], b["stop"], b["temperature"])),
        ("anthropic", lambda b: (b["max_tokens"], b["stop_sequences"], b["temperature"])),
        (
            "gemini",
            lambda b: (
                b["generationConfig"]["maxOutputTokens"],
                b["generationConfig"]["stopSequences"],
                b["generationConfig"]["temperature"],
            ),
        ),
        (
            "ollama",
            lambda b: (
                b["options"]["num_predict"],
                b["options"]["stop"],
                b["options"]["temperature"],
            ),
        ),
    ],
)
def test_limits_and_stops_land_where_each_protocol_reads_them(protocol: str, where: Any) -> None:
    request = ChatRequest.from_prompt("x", max_tokens=50, stop=("END",), temperature=0.3)
    assert where(body(protocol, request, model="m")) == (50, ["END"], 0.3)


def test_backend_sampling_options_are_placed_per_protocol() -> None:
    options = {"temperature": 0.2, "max_tokens": 99, "keep_alive": "5m"}
    gemini = body("gemini", ChatRequest.from_prompt("x"), model="g", options=options)
    assert gemini["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 99}
    assert gemini["keep_alive"] == "5m"
    assert "model" not in gemini  # in the URL instead
    ollama = body("ollama", ChatRequest.from_prompt("x"), model="l", options=options)
    assert ollama["options"] == {"temperature": 0.2, "num_predict": 99}
    assert ollama["keep_alive"] == "5m"


def test_system_messages_and_alternation_for_anthropic() -> None:
    request = ChatRequest(
        messages=(
            Message("system", "extra rules"),
            Message("user", "a"),
            Message("user", "b"),
        ),
        system="be brief",
    )
    sent = body("anthropic", request, model="c", system="ignored: the step's system wins")
    assert sent["system"] == "be brief\n\nextra rules"
    assert len(sent["messages"]) == 1  # consecutive user turns merged
    assert [b["text"] for b in sent["messages"][0]["content"]] == ["a", "b"]


def test_urls() -> None:
    assert adapter_for("openai").url("http://h/v1/", "m", False) == "http://h/v1/chat/completions"
    assert adapter_for("anthropic").url("http://h", "m", True) == "http://h/v1/messages"
    assert adapter_for("anthropic").url("http://h/v1", "m", True) == "http://h/v1/messages"
    assert (
        adapter_for("gemini").url("http://h", "gem", True)
        == "http://h/v1beta/models/gem:streamGenerateContent?alt=sse"
    )
    assert adapter_for("ollama").url("http://h", None, False) == "http://h/api/chat"


def _anthropic_stream(delta_usage: dict[str, int]) -> list[tuple[str, str]]:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage}
    return [
        ("message_start", json.dumps(start)),
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}',
        ),
        ("message_delta", json.dumps(delta)),
        ("message_stop", '{"type":"message_stop"}'),
    ]


@pytest.mark.parametrize(
    ("delta_usage", "usage"),
    [
        # message_delta's counts are cumulative: its input_tokens, when given, win
        # (the API's newer streams, and muxlang's gateway, which knows them only then)
        ({"input_tokens": 12, "output_tokens": 7}, Usage(12, 7)),
        ({"output_tokens": 7}, Usage(5, 7)),
        ({"input_tokens": 0, "output_tokens": 7}, Usage(5, 7)),
    ],
)
def test_anthropic_stream_usage_is_read_from_message_delta(
    delta_usage: dict[str, int], usage: Usage
) -> None:
    decoder = adapter_for("anthropic").decoder()
    events = [e for name, data in _anthropic_stream(delta_usage) for e in decoder.feed(name, data)]
    assert events + decoder.close() == [TextDelta("hi"), Finish("stop", usage)]

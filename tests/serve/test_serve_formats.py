"""The wire formats: round trips through the one internal type, both ways."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxlang.config.models import BackendConfig
from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.protocols import adapter_for
from muxlang.runtime.backends.sse import decode as parse_sse
from muxlang.serve.formats import WireError, anthropic, openai
from muxlang.serve.gateway import tool_choice_for

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}

OPENAI_BODY: dict[str, Any] = {
    "model": "analyzer",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18C, sunny", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "18C and sunny."},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "max_tokens": 100,
    "temperature": 0.5,
    "stop": ["END"],
    "tools": [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Weather now", "parameters": WEATHER},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
}

ANTHROPIC_BODY: dict[str, Any] = {
    "model": "analyzer",
    "max_tokens": 100,
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "system": "You are terse.",
    "temperature": 0.5,
    "stop_sequences": ["END"],
    "tools": [{"name": "weather", "description": "Weather now", "input_schema": WEATHER}],
    "tool_choice": {"type": "tool", "name": "weather"},
}


def to_wire(protocol: str, request: ChatRequest) -> dict[str, Any]:
    """``request`` as a backend of ``protocol`` writes it for the gateway (the one
    writer of the protocol: its adapter), ``tool_choice`` in the protocol's words."""
    config = BackendConfig(command="http://127.0.0.1:1", protocol=protocol)
    choice = tool_choice_for(protocol, request.tool_choice)
    wire = adapter_for(protocol).body(
        dataclasses.replace(request, tool_choice=choice), config, False
    )
    return json.loads(json.dumps(wire))


def from_wire(protocol: str, body: dict[str, Any]) -> ChatResponse:
    """An answer of ``protocol`` as its backend (and the pass-through's relay) reads it."""
    response: ChatResponse = adapter_for(protocol).parse(json.loads(json.dumps(body)))
    return response


def test_openai_request_round_trips_through_the_internal_type() -> None:
    request = openai.FORMAT.request_from_wire(OPENAI_BODY)
    assert request.system == "You are terse."
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert request.messages[1].tool_calls == (ToolCall("call_1", "weather", '{"city":"Paris"}'),)
    assert request.messages[2].tool_call_id == "call_1"
    assert request.tool_choice == {"name": "weather"}
    assert to_wire("openai", request) == OPENAI_BODY


def test_anthropic_request_round_trips_through_the_internal_type() -> None:
    request = anthropic.FORMAT.request_from_wire(ANTHROPIC_BODY)
    assert request.system == "You are terse."
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "user"]
    assert request.messages[1].content == "Let me look."
    assert request.messages[1].tool_calls[0].name == "weather"
    assert json.loads(request.messages[1].tool_calls[0].arguments) == {"city": "Paris"}
    assert request.stop == ("END",)
    wire = to_wire("anthropic", request)
    # the adapter writes every turn as blocks (a lone text block is not shortened)
    assert wire["messages"][0]["content"] == [{"type": "text", "text": "Weather in Paris?"}]
    wire["messages"][0]["content"] = "Weather in Paris?"
    assert wire == ANTHROPIC_BODY
    assert anthropic.FORMAT.request_from_wire(wire) == request


def test_an_openai_conversation_reaches_an_anthropic_upstream_faithfully() -> None:
    request = openai.FORMAT.request_from_wire(OPENAI_BODY)
    wire = to_wire("anthropic", request)
    assert wire["system"] == "You are terse."
    assert wire["tool_choice"] == {"type": "tool", "name": "weather"}
    assert wire["tools"][0]["input_schema"] == WEATHER
    # the tool call and its result keep their pairing across the formats
    assert wire["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "weather",
        "input": {"city": "Paris"},
    }
    assert wire["messages"][2]["content"][0]["tool_use_id"] == "call_1"
    assert anthropic.FORMAT.request_from_wire(wire) == request


def test_openai_text_parts_and_new_token_field_are_read() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ],
        "max_completion_tokens": 7,
        "stop": "X",
        "top_p": 0.9,
    }
    request = openai.FORMAT.request_from_wire(body)
    assert request.system == "Be brief."
    assert request.messages[0].content == "a\nb"
    assert request.max_tokens == 7
    assert request.stop == ("X",)
    assert request.options == {"top_p": 0.9}


@pytest.mark.parametrize(
    ("module", "body", "needle"),
    [
        (openai, {"model": "m", "messages": []}, "must not be empty"),
        (openai, {"model": "m", "messages": "hi"}, "must be an array"),
        (
            openai,
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "'image_url' is not supported",
        ),
        (openai, {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "`n`"),
        (openai, {"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        (
            anthropic,
            {
                "model": "m",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": [{"type": "image"}]}],
            },
            "'image' is not supported",
        ),
        (
            anthropic,
            {"model": "m", "max_tokens": 9, "messages": [{"role": "system", "content": "x"}]},
            "role",
        ),
        (
            anthropic,
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
            '`max_tokens` must be a positive integer, got "9"',
        ),
        # as the Messages API: max_tokens is required and at least 1
        (anthropic, {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "required"),
        (
            anthropic,
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -5},
            "`max_tokens` must be a positive integer, got -5",
        ),
        (
            anthropic,
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "positive integer",
        ),
        (
            openai,
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -5},
            "`max_tokens` must be a positive integer",
        ),
        (
            openai,
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "max_completion_tokens": 0,
            },
            "`max_completion_tokens` must be a positive integer",
        ),
        (
            openai,
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2.5},
            "`max_tokens` must be a positive integer",
        ),
    ],
)
def test_bad_requests_say_what_is_wrong(module: Any, body: dict[str, Any], needle: str) -> None:
    with pytest.raises(WireError, match=needle):
        module.FORMAT.request_from_wire(body)


RESPONSES = [
    ChatResponse("hello", finish_reason="stop", usage=Usage(5, 1)),
    ChatResponse("", (ToolCall("c1", "weather", '{"city":"Paris"}'),), "tool_calls", Usage(9, 4)),
    ChatResponse(
        "Checking.",
        (ToolCall("c1", "a", "{}"), ToolCall("c2", "b", '{"x":[1,2]}')),
        "tool_calls",
        Usage(1, 2),
    ),
    ChatResponse("cut", finish_reason="length", usage=Usage(2, 100)),
]


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("module", [openai, anthropic])
def test_responses_round_trip(module: Any, response: ChatResponse) -> None:
    wire = module.FORMAT.response_to_wire(response, "analyzer")
    assert wire["model"] == "analyzer"
    back = from_wire(module.FORMAT.name, wire)
    calls = response.tool_calls
    if module is anthropic:
        # `input` is an object on the wire: read back, it is written as json.dumps
        # writes it (`{"city": "Paris"}`), like every answer of an anthropic backend
        calls = tuple(
            dataclasses.replace(c, arguments=json.dumps(json.loads(c.arguments))) for c in calls
        )
    assert back == dataclasses.replace(response, model="analyzer", tool_calls=calls)


def test_response_shapes_are_what_the_sdks_read() -> None:
    response = RESPONSES[1]
    o = openai.FORMAT.response_to_wire(response, "m")
    assert o["object"] == "chat.completion"
    assert o["choices"][0]["message"]["content"] is None
    assert o["choices"][0]["finish_reason"] == "tool_calls"
    assert o["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    a = anthropic.FORMAT.response_to_wire(response, "m")
    assert a["type"] == "message"
    assert a["stop_reason"] == "tool_use"
    assert a["content"] == [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}}
    ]


# --------------------------------------------------------------------------- streams


def assemble(events: list[StreamEvent]) -> tuple[str, list[tuple[str, str, str]], Any]:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            slot = calls.setdefault(e.index, ["", "", ""])
            slot[0] = e.id or slot[0]
            slot[1] = e.name or slot[1]
            slot[2] += e.arguments
    finish = next(e for e in events if isinstance(e, Finish))
    return text, [tuple(calls[i]) for i in sorted(calls)], finish  # type: ignore[misc]


STREAM = [
    TextDelta("Let me "),
    TextDelta("check."),
    ToolCallDelta(0, id="call_a", name="weather"),
    ToolCallDelta(0, arguments='{"ci'),
    ToolCallDelta(0, arguments='ty":"Paris"}'),
    ToolCallDelta(1, id="call_b", name="time", arguments="{}"),
    Finish("tool_calls", Usage(12, 7)),
]


def _decode(module: Any, raw: bytes) -> list[StreamEvent]:
    """The stream as a backend of the format's protocol decodes it."""
    decoder = adapter_for(module.FORMAT.name).decoder()
    events = [e for name, data in parse_sse(raw) for e in decoder.feed(name, data)]
    return events + decoder.close()


def test_openai_stream_round_trips_and_ends_with_done() -> None:
    encoder = openai.StreamEncoder("analyzer", include_usage=True)
    raw = encoder.start() + b"".join(encoder.event(e) for e in STREAM) + encoder.end()
    assert parse_sse(raw)[-1] == (None, "[DONE]")
    assert assemble(_decode(openai, raw)) == assemble(STREAM)


def test_anthropic_stream_has_the_full_event_sequence() -> None:
    encoder = anthropic.StreamEncoder("analyzer")
    raw = encoder.start() + b"".join(encoder.event(e) for e in STREAM) + encoder.end()
    kinds = [event for event, _ in parse_sse(raw)]
    assert kinds == [
        "message_start",
        "ping",
        "content_block_start",  # text
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # tool_use call_a
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # tool_use call_b
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(d) for _, d in parse_sse(raw)]
    assert data[6]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "weather",
        "input": {},
    }
    assert data[7]["delta"] == {"type": "input_json_delta", "partial_json": '{"ci'}
    assert data[-2]["delta"]["stop_reason"] == "tool_use"
    assert data[-2]["usage"] == {"input_tokens": 12, "output_tokens": 7}
    assert assemble(_decode(anthropic, raw)) == assemble(STREAM)


def test_mid_stream_errors_use_each_formats_shape() -> None:
    o = parse_sse(openai.StreamEncoder("m").error("upstream died", 502))
    assert json.loads(o[0][1])["error"]["message"] == "upstream died"
    a = parse_sse(anthropic.StreamEncoder("m").error("upstream died", 529))
    assert a[0][0] == "error"
    assert json.loads(a[0][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "upstream died"},
    }


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_args = st.dictionaries(_name, st.integers() | _text, max_size=3).map(
    lambda d: json.dumps(d, separators=(",", ":"))
)


@st.composite
def conversations(draw: st.DrawFn) -> ChatRequest:
    """Well-formed conversations: user turns, assistant turns with tool calls answered."""
    messages: list[Message] = []
    for turn in range(draw(st.integers(1, 4))):
        messages.append(Message("user", draw(_text.filter(bool))))
        if turn == 3 or not draw(st.booleans()):
            continue
        n = draw(st.integers(0, 2))
        calls = tuple(ToolCall(f"call_{turn}_{i}", draw(_name), draw(_args)) for i in range(n))
        messages.append(Message("assistant", draw(_text.filter(bool)) if not n else "", calls))
        messages.extend(Message("tool", draw(_text), tool_call_id=c.id) for c in calls)
        if calls:
            messages.append(Message("assistant", draw(_text.filter(bool))))
    if messages[-1].role != "user":
        messages.append(Message("user", draw(_text.filter(bool))))
    tools = tuple(
        Tool(n, draw(_text), {"type": "object"}) for n in draw(st.sets(_name, max_size=2))
    )
    return ChatRequest(
        messages=tuple(messages),
        system=draw(st.none() | _text.filter(bool)),
        max_tokens=draw(st.integers(1, 10_000)),
        temperature=draw(st.none() | st.floats(0, 2)),
        stop=tuple(draw(st.lists(_text.filter(bool), max_size=2))),
        tools=tools,
        tool_choice=draw(st.sampled_from([None, "auto", "none", "required", {"name": "f"}])),
    )


@settings(max_examples=60, deadline=None)
@given(conversations())
def test_any_conversation_survives_both_formats(request: ChatRequest) -> None:
    for module in (openai, anthropic):
        wire = to_wire(module.FORMAT.name, request)
        assert module.FORMAT.request_from_wire(wire) == request


@pytest.mark.parametrize(
    ("protocol", "choice", "wire"),
    [
        ("openai", "auto", "auto"),
        ("openai", "required", "required"),
        ("openai", {"name": "f"}, {"type": "function", "function": {"name": "f"}}),
        ("anthropic", "auto", {"type": "auto"}),
        ("anthropic", "none", {"type": "none"}),
        ("anthropic", "required", {"type": "any"}),
        ("anthropic", {"name": "f"}, {"type": "tool", "name": "f"}),
        ("gemini", "required", None),
        (None, {"name": "f"}, None),
    ],
)
def test_tool_choice_is_written_for_the_backends_protocol(
    protocol: str | None, choice: object, wire: object
) -> None:
    assert tool_choice_for(protocol, choice) == wire

"""Gemini and Ollama clients get a streamed tool call whole, once its pieces are in.

Both formats gather a call's argument pieces by call index (serve/formats/common.py
``WholeCallEncoder``) and send every call in one piece at the end, in index order.
"""

from __future__ import annotations

import json
from typing import Any

from muxlang.llm import Finish, StreamEvent, TextDelta, ToolCallDelta, Usage
from muxlang.serve.formats import gemini, ollama

#: call 1 starts first and comes in three pieces; call 0 is whole in one piece; a late
#: piece naming call 1 again does not rename it
EVENTS: list[StreamEvent] = [
    TextDelta("checking"),
    ToolCallDelta(1, id=None, name="weather", arguments='{"city"'),
    ToolCallDelta(0, id="call_a", name="time", arguments="{}"),
    ToolCallDelta(1, arguments=': "Oslo"}'),
    ToolCallDelta(1, id="other", name="renamed", arguments=""),
    Finish("tool_calls", Usage(5, 7)),
]


def _run(encoder: gemini.StreamEncoder | ollama.StreamEncoder, events: list[StreamEvent]) -> bytes:
    return encoder.start() + b"".join(encoder.event(e) for e in events) + encoder.end()


def _sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(part.removeprefix("data: ")) for part in raw.decode().split("\n\n") if part]


def test_gemini_stream_sends_each_call_whole_in_index_order() -> None:
    raw = _run(gemini.StreamEncoder("duo"), EVENTS)
    chunks = _sse_chunks(raw)
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "checking"}]
    last = chunks[-1]["candidates"][0]
    assert [p["functionCall"] for p in last["content"]["parts"]] == [
        {"id": "call_a", "name": "time", "args": {}},
        {"id": "call_1", "name": "weather", "args": {"city": "Oslo"}},
    ]
    assert len(chunks) == 2  # no call sent in pieces before the end


def test_gemini_stream_without_calls_ends_with_an_empty_text_part() -> None:
    raw = _run(gemini.StreamEncoder("duo"), [TextDelta("hi"), Finish("stop")])
    last = _sse_chunks(raw)[-1]
    assert last["candidates"][0]["content"]["parts"] == [{"text": ""}]


def test_ollama_stream_sends_the_calls_in_one_line_before_done() -> None:
    raw = _run(ollama.StreamEncoder("duo"), EVENTS)
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert [line["done"] for line in lines] == [False, False, True]
    assert lines[1]["message"]["tool_calls"] == [
        {"function": {"name": "time", "arguments": {}}},
        {"function": {"name": "weather", "arguments": {"city": "Oslo"}}},
    ]
    assert lines[2]["prompt_eval_count"] == 5
    assert lines[2]["eval_count"] == 7


def test_ollama_stream_without_calls_has_no_tool_call_line() -> None:
    raw = _run(ollama.StreamEncoder("duo"), [TextDelta("hi"), Finish("stop")])
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert [line["done"] for line in lines] == [False, True]
    assert all("tool_calls" not in line["message"] for line in lines)

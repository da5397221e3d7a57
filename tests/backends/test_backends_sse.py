"""The one SSE decoder (WHATWG EventSource rules), used by HTTP backends and the gateway."""

from __future__ import annotations

import json

from muxlang.llm import ChatRequest
from muxlang.runtime.backends import open_router, sse
from tests.backends.conftest import MakeConfig
from tests.fakes.llm_server import FakeLLMServer, Reply


def test_one_leading_space_is_dropped_and_lines_end_any_way() -> None:
    raw = (
        b": a comment\r\n"
        b"event: first\r\n"
        b"data:  two spaces keep one\r\n"
        b"\r\n"
        b"data:no space\rdata: second line\r\r"
        b"data\n\n"  # a field without a colon: empty data
        b"event: empty\n\n"  # no data: no event
        b"data: last, no blank line"
    )
    assert sse.decode(raw) == [
        ("first", " two spaces keep one"),
        (None, "no space\nsecond line"),
        (None, ""),
        (None, "last, no blank line"),
    ]


def test_encode_round_trips() -> None:
    for data, event in [({"a": 1}, None), ("[DONE]", None), ("two\nlines", "x")]:
        [(got_event, got)] = sse.decode(sse.encode(data, event))
        assert got_event == event
        assert got == (data if isinstance(data, str) else json.dumps(data, separators=(",", ":")))


async def test_an_http_backend_reads_the_stream_by_those_rules(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    def chunk(text: str) -> str:
        return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})

    body = (
        f": keep-alive\r\ndata:{chunk('a')}\r\n\r\n"
        f"data:  {chunk(' b')}\r\n\r\n"
        'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\r\n\r\n'
        "data: [DONE]\r\n\r\n"
    ).encode()
    llm_server.default = lambda request: Reply(body=body, content_type="text/event-stream")
    config = make_config(
        backends={"up": {"command": llm_server.base_url(), "model": "m", "max_retries": 0}}
    )
    async with open_router(config, environ=environ) as router:
        events = [e async for e in router.stream("up", ChatRequest.from_prompt("q"), "backend")]
    assert "".join(getattr(e, "text", "") for e in events) == "a b"

"""The new client formats' stream endings in-process: an error after the first event,
a length cut, and parallel roles (scripted backends, no sockets)."""

from __future__ import annotations

import json

from serve_support import call, make_gateway

from muxlang.llm import BackendError, ErrorKind, Finish, TextDelta, Usage

USER = [{"role": "user", "content": "hi"}]
BROKEN = [TextDelta("partial "), BackendError("a", ErrorKind.SERVER, "HTTP 500: boom")]


def _ndjson(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


async def test_an_error_mid_stream_in_each_format() -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    fakes["a"].script += [BROKEN, BROKEN, BROKEN]
    responses = await call(
        app, "POST", "/v1/responses", {"model": "duo", "input": "hi", "stream": True}
    )
    kinds = [event for event, _ in responses.events]
    assert kinds[-2:] == ["error", "response.failed"]
    error = json.loads(responses.events[-2][1])
    assert error["message"] == "a: HTTP 500: boom"
    assert json.loads(responses.events[-1][1])["response"]["status"] == "failed"

    gemini = await call(
        app,
        "POST",
        "/v1beta/models/duo:streamGenerateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
    )
    assert gemini.data[0]["candidates"][0]["content"]["parts"] == [{"text": "partial "}]
    assert gemini.data[-1]["error"]["message"] == "a: HTTP 500: boom"

    ollama = await call(app, "POST", "/api/chat", {"model": "duo", "messages": USER})
    lines = _ndjson(ollama.body)
    assert lines[0]["message"] == {"role": "assistant", "content": "partial "}
    assert lines[-1] == {"error": "a: HTTP 500: boom"}
    assert fakes["b"].requests == []  # never spliced onto another backend


async def test_a_length_cut_in_each_format() -> None:
    app, fakes = make_gateway(["a"])
    fakes["a"].default = [TextDelta("cut"), Finish("length", Usage(2, 5))]
    whole = await call(app, "POST", "/v1/responses", {"model": "a", "input": "hi"})
    assert whole.json["status"] == "incomplete"
    assert whole.json["incomplete_details"] == {"reason": "max_output_tokens"}
    assert whole.json["usage"]["output_tokens"] == 5
    streamed = await call(
        app, "POST", "/v1/responses", {"model": "a", "input": "hi", "stream": True}
    )
    assert streamed.events[-1][0] == "response.incomplete"
    gemini = await call(
        app, "POST", "/v1beta/models/a:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}
    )
    assert gemini.json["candidates"][0]["finishReason"] == "MAX_TOKENS"
    ollama = await call(app, "POST", "/api/chat", {"model": "a", "messages": USER, "stream": False})
    assert ollama.json["done_reason"] == "length"
    assert ollama.json["eval_count"] == 5


async def test_parallel_roles_answer_in_every_format() -> None:
    app, _ = make_gateway(["a", "b"], {"both": (["a", "b"], "parallel")})
    expected = "=== a ===\na: hi\n\n=== b ===\nb: hi"
    responses = await call(app, "POST", "/v1/responses", {"model": "both", "input": "hi"})
    assert responses.json["output"][0]["content"][0]["text"] == expected
    ollama = await call(app, "POST", "/api/chat", {"model": "both", "messages": USER})
    assert "".join(str(line["message"]["content"]) for line in _ndjson(ollama.body)) == expected
    gemini = await call(
        app,
        "POST",
        "/v1beta/models/both:generateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
    )
    assert gemini.json["candidates"][0]["content"]["parts"][0]["text"] == expected

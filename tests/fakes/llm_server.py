"""A scriptable fake LLM upstream speaking the openai, anthropic, gemini and ollama protocols.

One :class:`FakeLLMServer` listens on ``127.0.0.1`` on a free port and serves from a
background thread with its own asyncio loop, so sync SDK clients, asyncio and trio
tests, and subprocesses can all talk to it::

    with FakeLLMServer() as server:                 # default: echo the prompt
        server.script(Reply.rate_limited(retry_after="2"), Reply.answer("hi"))
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x")
        ...
        assert len(server.requests) == 2

The protocol is chosen from the request path (any prefix is accepted):

* openai    ``POST .../chat/completions``            (``"stream": true`` -> SSE)
* anthropic ``POST .../v1/messages``                  (``"stream": true`` -> its SSE events)
* gemini    ``POST .../v1beta/models/M:generateContent`` (``:streamGenerateContent`` -> SSE)
* ollama    ``POST .../api/chat``                     (NDJSON unless ``"stream": false``)

Each request takes the next scripted :class:`Reply` (or callable returning one) from
the queue; when the queue is empty the ``default`` answers (a ``Reply`` or a callable
``(RecordedRequest) -> Reply``; the built-in default echoes the last user message).
Every request is recorded in :attr:`FakeLLMServer.requests` (path, headers, JSON body).

The same script can be served in-process with :meth:`FakeLLMServer.transport` (an
``httpx.AsyncBaseTransport`` whose waits go through ``anyio.sleep``, so trio's
``MockClock`` makes delays and hangs instant) — use it to assert timing.

Run ``python tests/fakes/llm_server.py [--port N] [--latency S] [--text T]`` for a
standalone server (benchmarks): it prints its URL and serves until interrupted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import h11
import httpx

Protocol = Literal["openai", "anthropic", "gemini", "ollama", "other"]

__all__ = [
    "FakeLLMServer",
    "RecordedRequest",
    "Reply",
    "ToolCallSpec",
    "echo",
    "fake_llm_server",
    "llm_server",
]


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class ToolCallSpec:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str = "call_1"


@dataclass(frozen=True)
class Reply:
    """What the server does for one request.

    Either a protocol answer (``text`` / ``tool_calls``, rendered in the request's
    protocol, streamed if the request asked to stream), a protocol-shaped error
    (``error`` message with ``status``), or raw ``body`` bytes / ``json`` as given.
    """

    text: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    finish: Literal["stop", "length", "tool_calls"] | None = None
    usage: tuple[int, int] | None = None  # (input, output) tokens; default: word counts
    chunks: tuple[str, ...] | None = None  # stream pieces; default: split on words
    status: int = 200
    error: str | None = None  # protocol-shaped error body with this message
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None  # raw JSON body, sent as is
    body: bytes | None = None  # raw body bytes, sent as is
    content_type: str | None = None  # overrides the natural content type
    delay: float = 0.0  # seconds before the status line
    hang: bool = False  # never answer (until the client goes away)
    drop_after: int | None = None  # close the connection after this many body bytes
    chunk_delay: float = 0.0  # seconds between stream pieces (or bytes)
    byte_by_byte: bool = False  # send the body one byte at a time
    stream_error: str | None = None  # streams: after the text, an in-stream error event

    # ---- constructors
    @classmethod
    def answer(cls, text: str, **kw: Any) -> Reply:
        return cls(text=text, **kw)

    @classmethod
    def tools(cls, *calls: ToolCallSpec, text: str = "", **kw: Any) -> Reply:
        return cls(text=text, tool_calls=calls, finish="tool_calls", **kw)

    @classmethod
    def fail(cls, status: int, message: str = "upstream failure", **kw: Any) -> Reply:
        return cls(status=status, error=message, **kw)

    @classmethod
    def rate_limited(
        cls,
        message: str = "Rate limit reached, please slow down",
        *,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        **kw: Any,
    ) -> Reply:
        headers = dict(kw.pop("headers", {}))
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return cls(status=429, error=message, headers=headers, **kw)

    @classmethod
    def hanging(cls) -> Reply:
        return cls(hang=True)

    @classmethod
    def dropped(cls, text: str = "this answer never arrives in full", after: int = 20) -> Reply:
        return cls(text=text, drop_after=after)

    @classmethod
    def malformed(cls) -> Reply:
        return cls(body=b'{"choices": [{"message": ', content_type="application/json")

    @classmethod
    def wrong_content_type(cls) -> Reply:
        return cls(body=b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # includes the query string
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    protocol: Protocol
    received_at: float  # time.monotonic() in the server (real time)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def stream(self) -> bool:
        body = self.json if isinstance(self.json, dict) else {}
        if self.protocol == "gemini":
            return ":streamGenerateContent" in self.path
        if self.protocol == "ollama":
            return body.get("stream", True) is not False
        return body.get("stream") is True

    @property
    def model(self) -> str:
        if self.protocol == "gemini":
            match = re.search(r"/models/([^/:]+):", self.path)
            return match.group(1) if match else "gemini"
        body = self.json if isinstance(self.json, dict) else {}
        return str(body.get("model") or "fake-model")

    @property
    def prompt(self) -> str:
        """The text of the last user message, whatever the protocol."""
        return _last_user_text(self.protocol, self.json)


Responder = Reply | Callable[[RecordedRequest], Reply]


def echo(request: RecordedRequest) -> Reply:
    """The default responder: answer with the last user message."""
    return Reply(text=request.prompt)


def _protocol_of(path: str) -> Protocol:
    bare = path.split("?", 1)[0]
    if bare.endswith("/chat/completions"):
        return "openai"
    if bare.endswith("/messages"):
        return "anthropic"
    if ":generateContent" in bare or ":streamGenerateContent" in bare:
        return "gemini"
    if bare.endswith("/api/chat"):
        return "ollama"
    return "other"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user_text(protocol: Protocol, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if protocol == "gemini":
        for item in reversed(body.get("contents") or []):
            if isinstance(item, dict) and item.get("role", "user") == "user":
                return _content_text(item.get("parts"))
        return ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


# --------------------------------------------------------------------------- rendering


@dataclass
class _Rendered:
    status: int
    headers: list[tuple[str, str]]
    parts: list[bytes]  # body pieces
    chunked: bool  # streaming: no content-length
    delay: float = 0.0
    hang: bool = False
    drop_after: int | None = None
    chunk_delay: float = 0.0


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _error_body(protocol: Protocol, status: int, message: str) -> Any:
    if protocol == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    if protocol == "gemini":
        return {
            "error": {
                "code": status,
                "message": message,
                "status": _GEMINI_STATUS.get(status, "UNKNOWN"),
            }
        }
    if protocol == "ollama":
        return {"error": message}
    kind = "rate_limit_exceeded" if status == 429 else "invalid_request_error"
    if status >= 500:
        kind = "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def _pieces(reply: Reply, text: str) -> list[str]:
    if reply.chunks is not None:
        return list(reply.chunks)
    return [p for p in re.findall(r"\s*\S+\s*|\s+", text) if p] or ([text] if text else [])


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, bytes) else _dumps(data)
    return head + b"data: " + payload + b"\n\n"


def _render(reply: Reply, request: RecordedRequest) -> _Rendered:
    protocol = request.protocol
    headers = [(k, v) for k, v in reply.headers.items()]
    base = {
        "delay": reply.delay,
        "hang": reply.hang,
        "drop_after": reply.drop_after,
        "chunk_delay": reply.chunk_delay,
    }

    def finish(parts: list[bytes], ctype: str, chunked: bool) -> _Rendered:
        names = {k.lower() for k, _ in headers}
        if "content-type" not in names:
            headers.append(("Content-Type", reply.content_type or ctype))
        if reply.byte_by_byte:
            joined = b"".join(parts)
            parts = [joined[i : i + 1] for i in range(len(joined))]
        return _Rendered(reply.status, headers, parts, chunked, **base)  # type: ignore[arg-type]

    if reply.body is not None:
        return finish([reply.body], "application/octet-stream", False)
    if reply.json is not None:
        return finish([_dumps(reply.json)], "application/json", False)
    if reply.error is not None or protocol == "other":
        status = reply.status if reply.error is not None else 404
        message = reply.error if reply.error is not None else f"no route for {request.path}"
        rendered = finish(
            [_dumps(_error_body(protocol, status, message))], "application/json", False
        )
        rendered.status = status
        return rendered

    text = reply.text if reply.text is not None else request.prompt
    usage = reply.usage or (len(request.prompt.split()), len(text.split()))
    reason = reply.finish or ("tool_calls" if reply.tool_calls else "stop")
    model = request.model
    if request.stream:
        maker = {
            "openai": _openai_stream,
            "anthropic": _anthropic_stream,
            "gemini": _gemini_stream,
            "ollama": _ollama_stream,
        }[protocol]
        parts = maker(reply, request, text, reason, usage, model)
        ctype = "application/x-ndjson" if protocol == "ollama" else "text/event-stream"
        return finish(parts, ctype, True)
    maker_body = {
        "openai": _openai_body,
        "anthropic": _anthropic_body,
        "gemini": _gemini_body,
        "ollama": _ollama_body,
    }[protocol]
    return finish(
        [_dumps(maker_body(reply, text, reason, usage, model))], "application/json", False
    )


Usage = tuple[int, int]


def _openai_body(reply: Reply, text: str, reason: str, usage: Usage, model: str) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


def _openai_stream(
    reply: Reply, request: RecordedRequest, text: str, reason: str, usage: Usage, model: str
) -> list[bytes]:
    def chunk(delta: Any, finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": piece}) for piece in _pieces(reply, text)]
    for index, call in enumerate(reply.tool_calls):
        head = {"index": index, "id": call.id, "type": "function"}
        parts.append(
            chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
        )
        arguments = json.dumps(call.arguments)
        for i in range(0, len(arguments), 8):
            piece = arguments[i : i + 8]
            parts.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    if reply.stream_error is not None:
        parts.append(_sse(_error_body("openai", 500, reply.stream_error)))
        return parts
    parts.append(chunk({}, reason))
    body = request.json if isinstance(request.json, dict) else {}
    if (body.get("stream_options") or {}).get("include_usage"):
        parts.append(
            _sse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 1700000000,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": usage[0],
                        "completion_tokens": usage[1],
                        "total_tokens": usage[0] + usage[1],
                    },
                }
            )
        )
    parts.append(_sse(b"[DONE]"))
    return parts


_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _anthropic_body(reply: Reply, text: str, reason: str, usage: Usage, model: str) -> Any:
    content: list[Any] = [{"type": "text", "text": text}] if text or not reply.tool_calls else []
    content += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        for call in reply.tool_calls
    ]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _ANTHROPIC_STOP[reason],
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def _anthropic_stream(
    reply: Reply, request: RecordedRequest, text: str, reason: str, usage: Usage, model: str
) -> list[bytes]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": 1},
        },
    }
    parts = [_sse(start, "message_start")]
    index = 0
    if text or not reply.tool_calls:
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        parts.append(_sse(block, "content_block_start"))
        parts.append(_sse({"type": "ping"}, "ping"))
        for piece in _pieces(reply, text):
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            parts.append(_sse(delta, "content_block_delta"))
        if reply.stream_error is not None:
            error = _error_body("anthropic", 529, reply.stream_error)
            parts.append(_sse(error, "error"))
            return parts
        parts.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        index = 1
    for offset, call in enumerate(reply.tool_calls):
        i = index + offset
        block = {
            "type": "content_block_start",
            "index": i,
            "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
        }
        parts.append(_sse(block, "content_block_start"))
        arguments = json.dumps(call.arguments)
        for j in range(0, len(arguments), 8):
            delta = {
                "type": "content_block_delta",
                "index": i,
                "delta": {"type": "input_json_delta", "partial_json": arguments[j : j + 8]},
            }
            parts.append(_sse(delta, "content_block_delta"))
        parts.append(_sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": _ANTHROPIC_STOP[reason], "stop_sequence": None},
        "usage": {"output_tokens": usage[1]},
    }
    parts.append(_sse(delta, "message_delta"))
    parts.append(_sse({"type": "message_stop"}, "message_stop"))
    return parts


_GEMINI_STOP = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def _gemini_usage(usage: Usage) -> Any:
    return {
        "promptTokenCount": usage[0],
        "candidatesTokenCount": usage[1],
        "totalTokenCount": usage[0] + usage[1],
    }


def _gemini_body(reply: Reply, text: str, reason: str, usage: Usage, model: str) -> Any:
    parts: list[Any] = [{"text": text}] if text or not reply.tool_calls else []
    parts += [
        {"functionCall": {"name": call.name, "args": dict(call.arguments)}}
        for call in reply.tool_calls
    ]
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": _GEMINI_STOP[reason],
                "index": 0,
            }
        ],
        "usageMetadata": _gemini_usage(usage),
        "modelVersion": model,
    }


def _gemini_stream(
    reply: Reply, request: RecordedRequest, text: str, reason: str, usage: Usage, model: str
) -> list[bytes]:
    def chunk(parts: list[Any], last: bool = False) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        data: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
        if last:
            candidate["finishReason"] = _GEMINI_STOP[reason]
            data["usageMetadata"] = _gemini_usage(usage)
        return _sse(data)

    pieces = _pieces(reply, text)
    out = [chunk([{"text": piece}]) for piece in pieces]
    if reply.stream_error is not None:
        out.append(_sse(_error_body("gemini", 500, reply.stream_error)))
        return out
    calls = [
        {"functionCall": {"name": call.name, "args": dict(call.arguments)}}
        for call in reply.tool_calls
    ]
    out.append(chunk(calls, last=True))
    return out


def _ollama_body(reply: Reply, text: str, reason: str, usage: Usage, model: str) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"function": {"name": call.name, "arguments": dict(call.arguments)}}
            for call in reply.tool_calls
        ]
    return {
        "model": model,
        "created_at": "2024-01-01T00:00:00Z",
        "message": message,
        "done": True,
        "done_reason": "length" if reason == "length" else "stop",
        "prompt_eval_count": usage[0],
        "eval_count": usage[1],
    }


def _ollama_stream(
    reply: Reply, request: RecordedRequest, text: str, reason: str, usage: Usage, model: str
) -> list[bytes]:
    def line(message: Any, done: bool = False) -> bytes:
        data: dict[str, Any] = {
            "model": model,
            "created_at": "2024-01-01T00:00:00Z",
            "message": message,
            "done": done,
        }
        if done:
            data["done_reason"] = "length" if reason == "length" else "stop"
            data["prompt_eval_count"] = usage[0]
            data["eval_count"] = usage[1]
        return _dumps(data) + b"\n"

    out = [line({"role": "assistant", "content": piece}) for piece in _pieces(reply, text)]
    if reply.stream_error is not None:
        out.append(_dumps({"error": reply.stream_error}) + b"\n")
        return out
    if reply.tool_calls:
        calls = [
            {"function": {"name": call.name, "arguments": dict(call.arguments)}}
            for call in reply.tool_calls
        ]
        out.append(line({"role": "assistant", "content": "", "tool_calls": calls}))
    out.append(line({"role": "assistant", "content": ""}, done=True))
    return out


# --------------------------------------------------------------------------- the script core


class _Script:
    """Queue, default responder and request log; shared by the server and the transport."""

    def __init__(self, default: Responder | None, record: bool) -> None:
        self.queue: collections.deque[Responder] = collections.deque()
        self.default: Responder = default if default is not None else echo
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.count = 0
        self._lock = threading.Lock()

    def take(self, request: RecordedRequest) -> _Rendered:
        with self._lock:
            self.count += 1
            if self.record:
                self.requests.append(request)
            try:
                responder = self.queue.popleft()
            except IndexError:
                responder = self.default
        reply = responder(request) if callable(responder) else responder
        return _render(reply, request)


# --------------------------------------------------------------------------- the server


class FakeLLMServer:
    """The fake upstream on 127.0.0.1; a context manager (``with FakeLLMServer() as s``)."""

    def __init__(
        self, default: Responder | None = None, *, port: int = 0, record: bool = True
    ) -> None:
        self._script = _Script(default, record)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    # ---- scripting
    def script(self, *replies: Responder) -> None:
        """Queue replies for the next requests, in order."""
        self._script.queue.extend(replies)

    @property
    def default(self) -> Responder:
        return self._script.default

    @default.setter
    def default(self, value: Responder) -> None:
        self._script.default = value

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy)."""
        with self._script._lock:
            return list(self._script.requests)

    @property
    def request_count(self) -> int:
        return self._script.count

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        return len(self._script.queue)

    def reset(self) -> None:
        with self._script._lock:
            self._script.queue.clear()
            self._script.requests.clear()
            self._script.count = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (anthropic/gemini/ollama base; openai: ``+ "/v1"``)."""
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, protocol: str = "openai") -> str:
        """The ``command`` of a muxlang backend of that protocol pointed at this server."""
        return self.url + "/v1" if protocol == "openai" else self.url

    def transport(self, clock: Callable[[], float] | None = None) -> httpx.AsyncBaseTransport:
        """The same script served in-process: delays use ``anyio.sleep`` (MockClock-friendly).

        ``clock`` stamps each request's ``received_at`` (e.g. ``trio.current_time``)."""
        return _ScriptTransport(self._script, clock or time.monotonic)

    # ---- lifecycle
    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=self._run, name="fake-llm-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"fake LLM server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", self._port, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 24)
        try:
            while True:
                request = await _read_request(conn, reader)
                if request is None:
                    break
                rendered = self._script.take(request)
                keep = await _write_response(conn, reader, writer, rendered)
                if not keep or conn.our_state is h11.MUST_CLOSE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> RecordedRequest | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(1 << 16)
            conn.receive_data(data)  # b"" signals EOF
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body.extend(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            path = head.target.decode("latin-1")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
            return RecordedRequest(
                head.method.decode(),
                path,
                headers,
                bytes(body),
                _protocol_of(path),
                time.monotonic(),
            )
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _write_response(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    r: _Rendered,
) -> bool:
    """Send the response; False when the connection must close afterwards."""
    if r.hang:
        # answer never comes: wait until the client gives up and closes
        with contextlib.suppress(Exception):
            while await reader.read(1 << 16):
                pass
        return False
    if r.delay:
        await asyncio.sleep(r.delay)
    total = sum(len(p) for p in r.parts)
    headers = list(r.headers)
    if not r.chunked:
        headers.append(("Content-Length", str(total)))
    headers.append(("Server", "fake-llm"))
    writer.write(conn.send(h11.Response(status_code=r.status, headers=headers)) or b"")
    sent = 0
    for i, part in enumerate(r.parts):
        if r.drop_after is not None and sent + len(part) >= r.drop_after:
            cut = part[: r.drop_after - sent]
            if cut:
                writer.write(conn.send(h11.Data(data=cut)) or b"")
            await writer.drain()
            writer.transport.abort()
            return False
        if part:
            writer.write(conn.send(h11.Data(data=part)) or b"")
            sent += len(part)
        if r.chunk_delay and i < len(r.parts) - 1:
            await writer.drain()
            await asyncio.sleep(r.chunk_delay)
    if r.drop_after is not None:  # asked to drop beyond the body's end: drop at its end
        await writer.drain()
        writer.transport.abort()
        return False
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()
    return True


# --------------------------------------------------------------------------- in-process transport


class _ScriptTransport(httpx.AsyncBaseTransport):
    def __init__(self, script: _Script, clock: Callable[[], float]) -> None:
        self._script = script
        self._clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import anyio

        body = await request.aread()
        path = request.url.raw_path.decode("latin-1")
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = RecordedRequest(
            request.method, path, headers, body, _protocol_of(path), self._clock()
        )
        r = self._script.take(recorded)
        if r.hang:
            await anyio.sleep_forever()
        if r.delay:
            await anyio.sleep(r.delay)
        headers_out = list(r.headers)
        if not r.chunked:
            headers_out.append(("Content-Length", str(sum(len(p) for p in r.parts))))
        return httpx.Response(
            r.status, headers=headers_out, stream=_PartStream(r, request), request=request
        )


class _PartStream(httpx.AsyncByteStream):
    def __init__(self, rendered: _Rendered, request: httpx.Request) -> None:
        self._r = rendered
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import anyio

        r = self._r
        sent = 0
        for i, part in enumerate(r.parts):
            if r.drop_after is not None and sent + len(part) >= r.drop_after:
                cut = part[: r.drop_after - sent]
                if cut:
                    yield cut
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body",
                    request=self._request,
                )
            yield part
            sent += len(part)
            if r.chunk_delay and i < len(r.parts) - 1:
                await anyio.sleep(r.chunk_delay)
        if r.drop_after is not None:
            raise httpx.RemoteProtocolError("peer closed connection", request=self._request)


# --------------------------------------------------------------------------- pytest glue


@contextlib.contextmanager
def fake_llm_server(default: Responder | None = None, **kw: Any) -> Iterator[FakeLLMServer]:
    """``with fake_llm_server() as server:`` — or wrap it in a pytest fixture::

    @pytest.fixture
    def llm_server():
        with fake_llm_server() as server:
            yield server
    """
    server = FakeLLMServer(default, **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


try:  # a ready-made fixture: ``from tests.fakes.llm_server import llm_server``
    import pytest
except ImportError:  # pragma: no cover - standalone use without pytest
    pass
else:

    @pytest.fixture
    def llm_server() -> Iterator[FakeLLMServer]:
        """A fresh fake upstream for one test (echoes the prompt by default)."""
        with fake_llm_server() as server:
            yield server


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--text", default=None, help="fixed answer (default: echo the prompt)")
    args = parser.parse_args(argv)
    fixed = args.text

    def respond(request: RecordedRequest) -> Reply:
        return Reply(text=fixed if fixed is not None else request.prompt, delay=args.latency)

    server = FakeLLMServer(respond, port=args.port, record=False).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    _main()

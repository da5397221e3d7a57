"""Ollama: ``POST {base}/api/chat`` (NDJSON lines when streaming)."""

from __future__ import annotations

from typing import Any

from muxlang.config.models import BackendConfig
from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    FinishReason,
    Message,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.protocols.common import (
    Adapter,
    MalformedResponse,
    StreamError,
    dumps,
    loads_arguments,
    model_field,
    parameters_schema,
    route_options,
    sampling,
    stream_object,
    usage_of,
)
from muxlang.runtime.backends.protocols.openai import chat_body, tool_to_wire

#: option names that belong in Ollama's ``options`` table (sampling/runtime parameters)
_RUNTIME_NAMES = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "num_predict",
    "num_ctx",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "mirostat",
    "num_gpu",
    "num_thread",
)
#: each with its name in that table (OpenAI's ``max_tokens`` is ``num_predict``)
_RUNTIME = {name: name for name in _RUNTIME_NAMES} | {"max_tokens": "num_predict"}


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": c.name, "arguments": loads_arguments(c.arguments)}}
            for c in m.tool_calls
        ]
    if m.role == "tool" and m.name:
        out["tool_name"] = m.name
    return out


def _calls(message: dict[str, Any], start: int = 0) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for i, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            arguments = fn.get("arguments", {})
            text = arguments if isinstance(arguments, str) else dumps(arguments)
            calls.append(
                ToolCall(str(call.get("id") or f"call_{start + i}"), str(fn.get("name", "")), text)
            )
    return calls


def _usage(data: dict[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None  # counts come with the last line only
    return usage_of(data, "prompt_eval_count", "eval_count")


def _reason(data: dict[str, Any], calls: bool) -> FinishReason:
    if calls:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


class _Decoder:
    def __init__(self) -> None:
        self.calls = 0
        self.finish: Finish | None = None

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        line = stream_object(data, "a stream line")
        if "error" in line:
            raise StreamError(ADAPTER.error_message(line) or "error in stream")
        out: list[StreamEvent] = []
        message = line.get("message") or {}
        if isinstance(message.get("content"), str) and message["content"]:
            out.append(TextDelta(message["content"]))
        for call in _calls(message, self.calls):
            out.append(
                ToolCallDelta(self.calls, id=call.id, name=call.name, arguments=call.arguments)
            )
            self.calls += 1
        if line.get("done"):
            self.finish = Finish(_reason(line, self.calls > 0), _usage(line))
        return out

    def close(self) -> list[StreamEvent]:
        if self.finish is None:
            raise MalformedResponse("the stream ended before done")
        return [self.finish]


class OllamaAdapter(Adapter):
    name = "ollama"
    stream_format = "ndjson"
    chat_path = "/api/chat"
    models_path = "/api/tags"

    def body(self, request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
        body = chat_body(request, config, _message)
        runtime: dict[str, Any] = {}
        route_options(body, runtime, _RUNTIME, "options", config.options)
        route_options(body, runtime, _RUNTIME, "options", sampling(request))
        if request.tools:
            # Ollama declares tools the OpenAI way
            body["tools"] = [tool_to_wire(t, parameters_schema(t)) for t in request.tools]
        route_options(body, runtime, _RUNTIME, "options", request.options)
        if runtime:
            body["options"] = runtime
        body["stream"] = stream  # Ollama streams unless told not to
        return body

    def read_answer(self, body: dict[str, Any]) -> ChatResponse:
        message = body.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("the answer has no message")
        calls = _calls(message)
        content = message.get("content")
        return ChatResponse(
            text=content if isinstance(content, str) else "",
            tool_calls=tuple(calls),
            finish_reason=_reason(body, bool(calls)),
            usage=_usage(body),
            model=model_field(body),
        )

    def stream_decoder(self) -> _Decoder:
        return _Decoder()


ADAPTER = OllamaAdapter()

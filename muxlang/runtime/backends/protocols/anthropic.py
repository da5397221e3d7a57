"""Anthropic messages: ``POST {base}/v1/messages`` (its SSE event sequence with ``stream``)."""

from __future__ import annotations

import json
from typing import Any

from muxlang.config.models import BackendConfig
from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    FinishReason,
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
    model_of,
    require_dict,
    system_of,
)

API_VERSION = "2023-06-01"
#: Anthropic requires max_tokens; used when neither the request nor options give one
DEFAULT_MAX_TOKENS = 4096

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "stop",
}


def _url(base: str, model: str | None, stream: bool) -> str:
    base = base.rstrip("/")
    # accept both "https://api.anthropic.com" and ".../v1" as the base
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def _auth(api_key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": API_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def _messages(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    systems: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)  # the API wants alternating roles
        else:
            out.append({"role": role, "content": blocks})

    for m in request.messages:
        if m.role == "system":
            systems.append(m.content)
        elif m.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id or "",
                "content": m.content,
            }
            add("user", [block])
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks += [
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": loads_arguments(call.arguments),
                }
                for call in m.tool_calls
            ]
            add("assistant", blocks or [{"type": "text", "text": ""}])
        else:
            add("user", [{"type": "text", "text": m.content}])
    return systems, out


def _body(request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
    systems, messages = _messages(request)
    system = system_of(request, config)
    if system:
        systems.insert(0, system)
    body: dict[str, Any] = {"messages": messages, "max_tokens": DEFAULT_MAX_TOKENS}
    model = model_of(request, config)
    if model:
        body["model"] = model
    if systems:
        body["system"] = "\n\n".join(systems)
    options = dict(config.options)
    if "stop" in options:
        options["stop_sequences"] = options.pop("stop")
    body.update(options)
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": dict(tool.parameters) or {"type": "object", "properties": {}},
            }
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    body.update(request.options)
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(int(data.get("input_tokens") or 0), int(data.get("output_tokens") or 0))


def _parse(data: Any) -> ChatResponse:
    body = require_dict(data, "the answer")
    content = body.get("content")
    if not isinstance(content, list):
        raise MalformedResponse("the answer has no content list")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(
                ToolCall(
                    str(block.get("id", "")),
                    str(block.get("name", "")),
                    dumps(block.get("input", {})),
                )
            )
    reason = body.get("stop_reason")
    return ChatResponse(
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=_FINISH.get(str(reason), "stop"),
        usage=_usage(body.get("usage")),
        model=body.get("model") if isinstance(body.get("model"), str) else None,
    )


def error_message(data: Any) -> str | None:
    """``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return None


class _Decoder:
    """message_start, content_block_start/delta/stop, message_delta, message_stop."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.reason: FinishReason | None = None
        self.stopped = False
        self.tool_index: dict[int, int] = {}  # content block index -> tool call index

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise MalformedResponse(f"a stream event is not JSON: {data[:80]!r}") from exc
        if not isinstance(payload, dict):
            raise MalformedResponse("a stream event is not a JSON object")
        kind = payload.get("type") or event
        if kind == "error":
            raise StreamError(error_message(payload) or "error in stream")
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self.input_tokens = int(usage.get("input_tokens") or 0)
            self.output_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = len(self.tool_index)
                self.tool_index[int(payload.get("index") or 0)] = index
                return [ToolCallDelta(index, id=block.get("id"), name=block.get("name"))]
            if block.get("type") == "text" and block.get("text"):
                return [TextDelta(str(block["text"]))]
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [TextDelta(str(delta["text"]))]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(int(payload.get("index") or 0), 0)
                return [ToolCallDelta(index, arguments=str(delta.get("partial_json") or ""))]
        elif kind == "message_delta":
            reason = (payload.get("delta") or {}).get("stop_reason")
            if reason:
                self.reason = _FINISH.get(str(reason), "stop")
            usage = payload.get("usage") or {}
            if usage.get("output_tokens") is not None:
                self.output_tokens = int(usage["output_tokens"])
        elif kind == "message_stop":
            self.stopped = True
        return []

    def close(self) -> list[StreamEvent]:
        if not self.stopped and self.reason is None:
            raise MalformedResponse("the stream ended before message_stop")
        return [Finish(self.reason or "stop", Usage(self.input_tokens, self.output_tokens))]


def _models_url(base: str) -> str:
    base = base.rstrip("/")
    return base + ("/models" if base.endswith("/v1") else "/v1/models")


ADAPTER = Adapter(
    name="anthropic",
    stream_format="sse",
    url=_url,
    auth=_auth,
    body=_body,
    parse=_parse,
    error_message=error_message,
    decoder=_Decoder,
    models_url=_models_url,
)

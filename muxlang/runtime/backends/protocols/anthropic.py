"""Anthropic messages: ``POST {base}/v1/messages`` (its SSE event sequence with ``stream``).

This adapter is muxlang's one Anthropic codec in the backend's direction
(request written; answer and stream read): the gateway reads upstream answers
with it too (``adapter_for("anthropic")``). The gateway's Anthropic client format
(:mod:`muxlang.serve.formats.anthropic`) writes answers' ``tool_use`` blocks with
:func:`tool_use_block`.
"""

from __future__ import annotations

from typing import Any

from muxlang.config.models import BackendConfig
from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    FinishReason,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.protocols.common import (
    Adapter,
    MalformedResponse,
    StreamError,
    dumps,
    error_field,
    loads_arguments,
    model_field,
    model_of,
    put_request,
    stream_object,
    system_of,
    usage_of,
)

API_VERSION = "2023-06-01"
#: Anthropic requires max_tokens; used when neither the request nor options give one
DEFAULT_MAX_TOKENS = 4096

#: Anthropic's ``stop_reason`` words -> the internal finish reasons
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "stop",
}


def tool_to_wire(tool: Tool, input_schema: dict[str, Any]) -> dict[str, Any]:
    """A tool as a ``tools`` entry: ``{"name", "description", "input_schema"}``."""
    return {"name": tool.name, "description": tool.description, "input_schema": input_schema}


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    """A tool call as an assistant turn's ``tool_use`` block (``input`` an object)."""
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.name,
        "input": loads_arguments(call.arguments),
    }


def tool_result_block(tool_use_id: str | None, content: str) -> dict[str, Any]:
    """A tool's answer as a user turn's ``tool_result`` block."""
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}


def add_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Append blocks as a turn of ``role``, or to the last turn when it has that role
    (the API wants user and assistant turns to alternate)."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def usage_from_wire(data: Any) -> Usage | None:
    """``usage`` (``input_tokens``, ``output_tokens``) as internal usage."""
    return usage_of(data, "input_tokens", "output_tokens")


def _messages(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    systems: list[str] = []
    out: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "system":
            systems.append(m.content)
        elif m.role == "tool":
            add_turn(out, "user", [tool_result_block(m.tool_call_id or "", m.content)])
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks += [tool_use_block(call) for call in m.tool_calls]
            add_turn(out, "assistant", blocks or [{"type": "text", "text": ""}])
        else:
            add_turn(out, "user", [{"type": "text", "text": m.content}])
    return systems, out


class _Decoder:
    """message_start, content_block_start/delta/stop, message_delta, message_stop."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.reason: FinishReason | None = None
        self.stopped = False
        self.tool_index: dict[int, int] = {}  # content block index -> tool call index

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        payload = stream_object(data, "a stream event")
        kind = payload.get("type") or event
        if kind == "error":
            raise StreamError(ADAPTER.error_message(payload) or "error in stream")
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
                self.reason = FINISH_REASONS.get(str(reason), "stop")
            # its counts are cumulative: a nonzero input_tokens (the API's newer
            # streams, muxlang's gateway) replaces message_start's
            usage = payload.get("usage") or {}
            if usage.get("input_tokens"):
                self.input_tokens = int(usage["input_tokens"])
            if usage.get("output_tokens") is not None:
                self.output_tokens = int(usage["output_tokens"])
        elif kind == "message_stop":
            self.stopped = True
        return []

    def close(self) -> list[StreamEvent]:
        if not self.stopped and self.reason is None:
            raise MalformedResponse("the stream ended before message_stop")
        return [Finish(self.reason or "stop", Usage(self.input_tokens, self.output_tokens))]


class AnthropicAdapter(Adapter):
    name = "anthropic"
    version = "/v1"
    chat_path = "/messages"

    def auth(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def body(self, request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
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
        put_request(body, request, tool_to_wire, stream, "stop_sequences")
        return body

    def read_answer(self, body: dict[str, Any]) -> ChatResponse:
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
            finish_reason=FINISH_REASONS.get(str(reason), "stop"),
            usage=usage_from_wire(body.get("usage")),
            model=model_field(body),
        )

    def error_message(self, data: Any) -> str | None:
        """``{"type": "error", "error": {"type": ..., "message": ...}}``."""
        found = error_field(data)
        if found is None and isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
        return found

    def stream_decoder(self) -> _Decoder:
        return _Decoder()


ADAPTER = AnthropicAdapter()

"""OpenAI chat completions: ``POST {base}/chat/completions`` (SSE with ``stream: true``).

This adapter is muxlang's one OpenAI codec in the backend's direction (request
written; answer and stream read): the gateway reads upstream answers with it too
(``adapter_for("openai")``). The gateway's OpenAI client format
(:mod:`muxlang.serve.formats.openai`) writes answers with :func:`tool_call_to_wire`;
Ollama's adapter builds on :func:`chat_body` and :func:`tool_to_wire`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.protocols.common import (
    Adapter,
    MalformedResponse,
    StreamError,
    error_field,
    model_field,
    model_of,
    put_request,
    stream_object,
    system_of,
    usage_of,
)

#: OpenAI's ``finish_reason`` words -> the internal ones
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "stop",
}


def tool_to_wire(tool: Tool, parameters: dict[str, Any]) -> dict[str, Any]:
    """A tool as a ``tools`` entry: ``{"type": "function", "function": {...}}``."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": parameters,
        },
    }


def tool_call_to_wire(call: ToolCall) -> dict[str, Any]:
    """A tool call as an assistant message's ``tool_calls`` entry."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def tool_call_delta_from_wire(call: Mapping[str, Any]) -> ToolCallDelta:
    """A stream chunk's ``delta.tool_calls`` entry as an internal piece of a tool call."""
    fn = call.get("function") or {}
    return ToolCallDelta(
        index=int(call.get("index") or 0),
        id=call.get("id"),
        name=fn.get("name"),
        arguments=fn.get("arguments") or "",
    )


def usage_from_wire(data: Any) -> Usage | None:
    """``usage`` (``prompt_tokens``, ``completion_tokens``) as internal usage."""
    return usage_of(data, "prompt_tokens", "completion_tokens")


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [tool_call_to_wire(call) for call in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None and message.role != "tool":
        out["name"] = message.name
    return out


def chat_body(
    request: ChatRequest, config: BackendConfig, message: Callable[[Message], dict[str, Any]]
) -> dict[str, Any]:
    """The start of a chat body (OpenAI, Ollama): ``messages``, the system prompt
    first as a message and then each message as ``message`` writes it, and ``model``."""
    messages: list[dict[str, Any]] = []
    system = system_of(request, config)
    if system:
        messages.append({"role": "system", "content": system})
    messages += [message(m) for m in request.messages]
    body: dict[str, Any] = {"messages": messages}
    model = model_of(request, config)
    if model:
        body["model"] = model
    return body


class _Decoder:
    def __init__(self) -> None:
        self.finished: Finish | None = None
        self.usage: Usage | None = None
        self.done = False

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        if data.strip() == "[DONE]":
            self.done = True
            return []
        chunk = stream_object(data, "a stream chunk")
        if "error" in chunk:
            raise StreamError(ADAPTER.error_message(chunk) or "error in stream")
        out: list[StreamEvent] = []
        if chunk.get("usage"):
            self.usage = usage_from_wire(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out.append(TextDelta(delta["content"]))
            out += [tool_call_delta_from_wire(call) for call in delta.get("tool_calls") or []]
            reason = choice.get("finish_reason")
            if reason:
                self.finished = Finish(FINISH_REASONS.get(str(reason), "stop"))
        return out

    def close(self) -> list[StreamEvent]:
        if self.finished is None and not self.done:
            raise MalformedResponse("the stream ended before the answer was finished")
        reason = self.finished.reason if self.finished else "stop"
        return [Finish(reason, self.usage)]


class OpenAIAdapter(Adapter):
    name = "openai"
    chat_path = "/chat/completions"

    def body(self, request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
        body = chat_body(request, config, _message)
        body.update(config.options)
        put_request(body, request, tool_to_wire, stream)
        if stream:
            body.setdefault("stream_options", {"include_usage": True})
        else:
            body.pop("stream_options", None)
        return body

    def read_answer(self, body: dict[str, Any]) -> ChatResponse:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedResponse("the answer has no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("the answer's first choice has no message")
        content = message.get("content")
        if isinstance(content, list):  # some compatible servers send parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        calls = tuple(
            ToolCall(
                str(call.get("id") or f"call_{i}"),
                str((call.get("function") or {}).get("name") or ""),
                str((call.get("function") or {}).get("arguments") or ""),
            )
            for i, call in enumerate(message.get("tool_calls") or [])
            if isinstance(call, dict)
        )
        reason = choices[0].get("finish_reason")
        return ChatResponse(
            text=content if isinstance(content, str) else "",
            tool_calls=calls,
            finish_reason=FINISH_REASONS.get(str(reason), "stop")
            if reason
            else ("tool_calls" if calls else "stop"),
            usage=usage_from_wire(body.get("usage")),
            model=model_field(body),
        )

    def error_message(self, data: Any) -> str | None:
        """``{"error": {"message": ...}}`` (also a bare ``{"error": "..."}``,
        ``{"message": ...}``, ``{"detail": ...}``)."""
        found = error_field(data)
        if found or not isinstance(data, dict):
            return found
        if isinstance(data.get("message"), str):
            return str(data["message"])
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
        return None

    def stream_decoder(self) -> _Decoder:
        return _Decoder()


ADAPTER = OpenAIAdapter()

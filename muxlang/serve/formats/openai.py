"""OpenAI Chat Completions ⇄ the internal type.

Mapping decisions (also in docs/gateway.md):

- Leading ``system``/``developer`` messages become ``ChatRequest.system`` (joined
  by a blank line); later ones stay in ``messages`` with role ``system``.
- Content given as a list of parts keeps its text parts (joined by a newline);
  other parts (images, audio) are :class:`Untranslatable` (forwarded on
  pass-through, a 400 for a backend that needs translation).
- ``max_completion_tokens`` is read like ``max_tokens``; ``top_p`` travels in
  ``options``; ``n`` other than 1 is :class:`Untranslatable` too.
- ``tool_choice`` internally is ``"auto" | "none" | "required" | {"name": NAME}``.
- Finish reasons are the same words; an internal ``"error"`` finish becomes an
  error chunk in a stream.

Writing a Chat Completions request and reading its answers back is the backend
adapter's, :mod:`muxlang.runtime.backends.protocols.openai` (one codec per wire
format); this module reads requests and writes answers, streams and errors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.protocols.openai import tool_call_to_wire
from muxlang.serve.formats import ClientFormat, Untranslatable, WireError
from muxlang.serve.formats.common import (
    chat_request,
    content_text,
    error_type,
    function_tools,
    json_arguments,
    need_items,
    need_list,
    need_mapping,
    new_id,
    positive_int,
    sse,
    usage_to_wire,
)

# --------------------------------------------------------------------------- requests


def _tool_calls_in(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    calls: list[ToolCall] = []
    for i, raw in enumerate(need_list(value, f"{where}.tool_calls")):
        call = need_mapping(raw, f"{where}.tool_calls[{i}]")
        fn = need_mapping(call.get("function", {}), f"{where}.tool_calls[{i}].function")
        calls.append(
            ToolCall(
                id=str(call.get("id") or new_id("call_")),
                name=str(fn.get("name", "")),
                arguments=json_arguments(fn.get("arguments")),
            )
        )
    return tuple(calls)


def _tool_choice_in(value: Any) -> Any:
    if value is None or value in ("auto", "none", "required"):
        return value
    if isinstance(value, Mapping):
        fn = value.get("function")
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return {"name": fn["name"]}
    raise WireError('`tool_choice` must be "auto", "none", "required" or a function')


# --------------------------------------------------------------------------- responses


def _usage_out(usage: Usage | None) -> dict[str, int]:
    return usage_to_wire(usage, "prompt_tokens", "completion_tokens", "total_tokens")


def _finish_out(reason: FinishReason | None) -> str | None:
    if reason == "error":
        return "stop"
    return reason


# --------------------------------------------------------------------------- errors


def model_not_found(model: str) -> dict[str, Any]:
    """The 404 body OpenAI itself sends for an unknown ``model`` (SDKs and tools match on
    ``code == "model_not_found"``)."""
    return {
        "error": {
            "message": f"The model `{model}` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


# --------------------------------------------------------------------------- streams


class StreamEncoder:
    """Internal stream events → ``chat.completion.chunk`` SSE bytes, ``data: [DONE]`` last."""

    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = new_id("chatcmpl-")
        self.created = int(time.time())
        self._tool_slots: dict[int, int] = {}

    def _chunk(self, delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
            ],
        }

    def start(self) -> bytes:
        return sse(self._chunk({"role": "assistant", "content": ""}))

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return sse(self._chunk({"content": event.text})) if event.text else b""
        if isinstance(event, ToolCallDelta):
            # OpenAI numbers tool calls 0, 1, 2 ... in order of appearance
            slot = self._tool_slots.setdefault(event.index, len(self._tool_slots))
            call: dict[str, Any] = {"index": slot}
            fn: dict[str, Any] = {}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = "function"
            if event.name is not None:
                fn["name"] = event.name
            fn["arguments"] = event.arguments
            call["function"] = fn
            return sse(self._chunk({"tool_calls": [call]}))
        if event.reason == "error":
            return self.error("the backend reported an error", 502)
        out = sse(self._chunk({}, _finish_out(event.reason) or "stop"))
        if self.include_usage:
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage_out(event.usage)
            out += sse(usage_chunk)
        return out

    def error(self, message: str, status: int = 502, code: str | None = None) -> bytes:
        """An error in the middle of a stream: the SDKs raise it as an APIError."""
        return sse(FORMAT.error_body(status, message, code))

    def end(self) -> bytes:
        return sse("[DONE]")


def models_listing(models: list[dict[str, Any]], single: bool) -> dict[str, Any]:
    """``GET /v1/models`` in OpenAI's shape (``single``: the one model asked for)."""
    items = [
        {
            "id": m["id"],
            "object": "model",
            "created": 0,
            "owned_by": "muxlang",
            "muxlang_kind": m["kind"],
            "description": m["description"],
        }
        for m in models
    ]
    return items[0] if single else {"object": "list", "data": items}


# --------------------------------------------------------------------------- the format


class OpenAIFormat(ClientFormat):
    name = "openai"
    relays = True

    def request_from_wire(self, body: Mapping[str, Any]) -> ChatRequest:
        """A Chat Completions request body as the internal request (``model`` kept as is)."""
        # checked first: a pass-through must not forward a limit the API refuses
        limits = [positive_int(body, key) for key in ("max_completion_tokens", "max_tokens")]
        max_tokens = next((limit for limit in limits if limit is not None), None)
        messages_raw = need_items(body.get("messages"), "`messages`")
        n = body.get("n")
        if n not in (None, 1):
            raise Untranslatable("`n` other than 1 is only supported by pass-through backends")
        system: list[str] = []
        messages: list[Message] = []
        for i, raw in enumerate(messages_raw):
            where = f"messages[{i}]"
            msg = need_mapping(raw, where)
            role = msg.get("role")
            name = msg.get("name") if isinstance(msg.get("name"), str) else None
            if role in ("system", "developer"):
                text = content_text(msg.get("content"), where)
                if messages:
                    messages.append(Message("system", text))
                else:
                    system.append(text)
            elif role == "user":
                messages.append(Message("user", content_text(msg.get("content"), where), name=name))
            elif role == "assistant":
                messages.append(
                    Message(
                        "assistant",
                        content_text(msg.get("content"), where),
                        tool_calls=_tool_calls_in(msg.get("tool_calls"), where),
                        name=name,
                    )
                )
            elif role == "tool":
                call_id = msg.get("tool_call_id")
                if not isinstance(call_id, str):
                    raise WireError(f"{where}: a tool message needs `tool_call_id`")
                messages.append(
                    Message("tool", content_text(msg.get("content"), where), tool_call_id=call_id)
                )
            else:
                raise WireError(f"{where}: unsupported role {role!r}")
        tools = function_tools(body.get("tools"))
        joined = "\n\n".join(system) if system else None
        return chat_request(body, messages, joined, max_tokens, tools, _tool_choice_in, "stop")

    def response_to_wire(self, response: ChatResponse, model: str) -> dict[str, Any]:
        """The internal response as a ``chat.completion`` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": response.text if (response.text or not response.tool_calls) else None,
        }
        if response.tool_calls:
            message["tool_calls"] = [tool_call_to_wire(c) for c in response.tool_calls]
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_out(response.finish_reason) or "stop",
                }
            ],
            "usage": _usage_out(response.usage),
        }

    def error_body(self, status: int, message: str, code: str | None = None) -> dict[str, Any]:
        """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
        kind = error_type(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return StreamEncoder(model, include_usage=include_usage)


FORMAT = OpenAIFormat()

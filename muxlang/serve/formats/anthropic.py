"""Anthropic Messages ⇄ the internal type.

Mapping decisions (also in docs/gateway.md):

- ``system`` (a string or text blocks) becomes ``ChatRequest.system``.
- A user turn's ``tool_result`` blocks become ``tool`` messages (in order,
  before the turn's text blocks, each of which becomes a ``user`` message); an assistant
  turn's ``tool_use`` blocks become its ``tool_calls`` (``input`` as JSON text).
- Image and document blocks are :class:`Untranslatable` (forwarded on pass-through,
  a 400 for a backend that needs translation); ``thinking`` blocks are dropped.
- ``stop_sequences`` ⇄ ``stop``; ``top_p`` travels in ``options``; ``top_k`` and
  ``metadata`` are dropped when translating (kept on pass-through).
- ``tool_choice``: auto ⇄ "auto", any ⇄ "required", none ⇄ "none", tool ⇄ {"name"}.
- Stop reasons: end_turn/stop_sequence → stop, max_tokens ⇄ length,
  tool_use ⇄ tool_calls.

Writing a Messages request and reading its answers back is the backend adapter's,
:mod:`muxlang.runtime.backends.protocols.anthropic` (one codec per wire format);
this module reads requests and writes answers, streams and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.protocols.anthropic import tool_use_block
from muxlang.serve.formats import ClientFormat, Untranslatable, WireError, common
from muxlang.serve.formats.common import (
    chat_request,
    json_arguments,
    need_items,
    need_list,
    need_mapping,
    new_id,
    positive_int,
    sse,
    tool_in,
    usage_to_wire,
)

_STOP_OUT: dict[str, str] = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

# --------------------------------------------------------------------------- requests


def _block_text(content: Any, where: str) -> str:
    """Text of a string or of a list of text blocks (tool results, system)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in need_list(content, where):
        block = need_mapping(block, where)
        if block.get("type") != "text":
            raise Untranslatable(
                f"{where}: block of type {block.get('type')!r} is not supported here"
            )
        parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def _turn(role: Any, content: Any, where: str) -> list[Message]:
    if role not in ("user", "assistant"):
        raise WireError(f"{where}: role must be user or assistant, got {role!r}")
    if isinstance(content, str):
        return [Message(role, content)]
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, raw in enumerate(need_list(content, f"{where}.content")):
        block = need_mapping(raw, f"{where}.content[{j}]")
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use" and role == "assistant":
            calls.append(
                ToolCall(
                    id=str(block.get("id") or new_id("toolu_")),
                    name=str(block.get("name", "")),
                    arguments=json_arguments(block.get("input")),
                )
            )
        elif kind == "tool_result" and role == "user":
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str):
                raise WireError(f"{where}.content[{j}]: tool_result needs `tool_use_id`")
            results.append(
                Message(
                    "tool",
                    _block_text(block.get("content"), f"{where}.content[{j}].content"),
                    tool_call_id=call_id,
                )
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise Untranslatable(
                f"{where}.content[{j}]: block of type {kind!r} is not supported "
                "(only text and tools reach muxlang backends)"
            )
    if role == "assistant":
        return [Message("assistant", "".join(texts), tool_calls=tuple(calls))]
    # each text block its own user message: the turn comes back as the same blocks
    out = results
    out.extend(Message("user", text) for text in texts)
    if not out:
        out.append(Message("user", ""))
    return out


def _tool_choice_in(value: Any) -> Any:
    if value is None:
        return None
    choice = need_mapping(value, "`tool_choice`")
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"name": choice["name"]}
    raise WireError("`tool_choice` must be auto, any, none or tool (with a name)")


# --------------------------------------------------------------------------- responses


def _usage_out(usage: Usage | None) -> dict[str, int]:
    return usage_to_wire(usage, "input_tokens", "output_tokens")


# --------------------------------------------------------------------------- errors

#: Anthropic's own words (the rest are OpenAI's, ``common.ERROR_TYPES``)
_ERROR_TYPES = {413: "request_too_large", 529: "overloaded_error"}


def error_type(status: int) -> str:
    return common.error_type(status, "api_error", _ERROR_TYPES)


# --------------------------------------------------------------------------- streams


class StreamEncoder:
    """Internal stream events → the Messages SSE event sequence.

    ``message_start``, then per content block ``content_block_start``,
    ``content_block_delta`` (``text_delta`` / ``input_json_delta``) and
    ``content_block_stop``, then ``message_delta`` (stop reason, usage) and
    ``message_stop``. A text block is opened by text, a tool_use block by a tool
    call's first piece; opening one closes the one before.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = new_id("msg_")
        self._index = -1  # index of the open block
        self._open: tuple[str, int] | None = None  # ("text", -1) or ("tool", call index)

    def _ev(self, kind: str, **data: Any) -> bytes:
        return sse({"type": kind, **data}, event=kind)

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return self._ev("message_start", message=message) + self._ev("ping")

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return self._ev("content_block_stop", index=self._index)

    def _open_block(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = key
        return out + self._ev("content_block_start", index=self._index, content_block=block)

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            out = b""
            if self._open != ("text", -1):
                out = self._open_block(("text", -1), {"type": "text", "text": ""})
            delta = {"type": "text_delta", "text": event.text}
            return out + self._ev("content_block_delta", index=self._index, delta=delta)
        if isinstance(event, ToolCallDelta):
            out = b""
            if self._open != ("tool", event.index):
                block = {
                    "type": "tool_use",
                    "id": event.id or new_id("toolu_"),
                    "name": event.name or "",
                    "input": {},
                }
                out = self._open_block(("tool", event.index), block)
            if event.arguments:
                delta = {"type": "input_json_delta", "partial_json": event.arguments}
                out += self._ev("content_block_delta", index=self._index, delta=delta)
            return out
        if event.reason == "error":
            return self._close() + self.error("the backend reported an error", 502)
        usage = _usage_out(event.usage)
        return (
            self._close()
            + self._ev(
                "message_delta",
                delta={
                    "stop_reason": _STOP_OUT.get(event.reason or "stop", "end_turn"),
                    "stop_sequence": None,
                },
                usage=usage,
            )
            + self._ev("message_stop")
        )

    def error(self, message: str, status: int = 502, code: str | None = None) -> bytes:
        """An ``error`` event: the SDKs raise it as an APIError."""
        return sse(FORMAT.error_body(status, message), event="error")

    def end(self) -> bytes:
        return b""


def models_listing(models: list[dict[str, Any]], single: bool) -> dict[str, Any]:
    """``GET /v1/models`` in Anthropic's shape (``single``: the one model asked for)."""
    data = [
        {
            "type": "model",
            "id": m["id"],
            "display_name": m["description"] or m["id"],
            "created_at": "1970-01-01T00:00:00Z",
            "muxlang_kind": m["kind"],
        }
        for m in models
    ]
    if single:
        return data[0]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# --------------------------------------------------------------------------- the format


class AnthropicFormat(ClientFormat):
    name = "anthropic"
    relays = True

    def request_from_wire(self, body: Mapping[str, Any]) -> ChatRequest:
        """A Messages request body as the internal request (``model`` kept as is)."""
        # as the Messages API: required, at least 1 (checked first: pass-through needs it too)
        if body.get("max_tokens") is None:
            raise WireError("`max_tokens` is required: the most tokens to generate, at least 1")
        max_tokens = positive_int(body, "max_tokens")
        raw_messages = need_items(body.get("messages"), "`messages`")
        messages: list[Message] = []
        for i, raw in enumerate(raw_messages):
            msg = need_mapping(raw, f"messages[{i}]")
            messages.extend(_turn(msg.get("role"), msg.get("content"), f"messages[{i}]"))
        system = body.get("system")
        tools: list[Tool] = []
        for i, raw in enumerate(need_list(body.get("tools") or [], "`tools`")):
            tool = need_mapping(raw, f"tools[{i}]")
            if tool.get("type") not in (None, "custom"):
                # a server tool (web_search_..., code_execution_...): Anthropic runs it, so
                # only an anthropic backend (by pass-through) may receive it
                raise Untranslatable(
                    f"tools[{i}]: server tool of type {tool.get('type')!r} reaches only "
                    "anthropic backends (by pass-through)"
                )
            tools.append(tool_in(tool, f"tools[{i}]", "input_schema"))
        text = _block_text(system, "`system`") if system is not None else None
        return chat_request(
            body, messages, text, max_tokens, tools, _tool_choice_in, "stop_sequences"
        )

    def response_to_wire(self, response: ChatResponse, model: str) -> dict[str, Any]:
        """The internal response as a ``message`` object."""
        content: list[dict[str, Any]] = []
        if response.text or not response.tool_calls:
            content.append({"type": "text", "text": response.text})
        content.extend(tool_use_block(c) for c in response.tool_calls)
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": _STOP_OUT.get(response.finish_reason or "stop", "end_turn"),
            "stop_sequence": None,
            "usage": _usage_out(response.usage),
        }

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
        return {"type": "error", "error": {"type": error_type(status), "message": message}}

    def encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return StreamEncoder(model)


FORMAT = AnthropicFormat()

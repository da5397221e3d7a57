"""Ollama ``POST /api/chat`` (and ``GET /api/tags``) ⇄ the internal type.

Mapping decisions (also in docs/gateway.md):

- ``stream`` defaults to true, as in Ollama: the answer is newline-delimited JSON
  objects (``application/x-ndjson``), each with a piece of ``message.content``,
  the last one with ``"done": true``, ``done_reason`` and the token counts
  (``prompt_eval_count``, ``eval_count``).
- ``messages`` roles system/user/assistant/tool; leading system messages become
  the system prompt; ``images`` are refused. Tool calls are Ollama's
  ``{"function": {"name", "arguments": {...}}}``; a tool message answers the
  earliest unanswered call (Ollama sends no call ids), or the one its
  ``tool_name`` names.
- ``options``: ``num_predict`` → max tokens, ``temperature``, ``top_p``, ``stop``.
- Errors: ``{"error": "message"}``; in a stream, a final ``{"error": ...}`` line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    ToolCall,
    Usage,
)
from muxlang.serve.formats import ClientFormat, Untranslatable, WireError
from muxlang.serve.formats.common import (
    WholeCallEncoder,
    function_tools,
    json_arguments,
    need_items,
    need_list,
    need_mapping,
    opt_float,
    sampling_options,
    stop_list,
)


def _tool_calls_in(value: Any, where: str, count: int) -> tuple[ToolCall, ...]:
    calls = []
    for i, raw in enumerate(need_list(value or [], f"{where}.tool_calls")):
        fn = need_mapping(
            need_mapping(raw, f"{where}.tool_calls[{i}]").get("function"),
            f"{where}.tool_calls[{i}].function",
        )
        name = str(fn.get("name", ""))
        calls.append(ToolCall(f"call_{count + i}", name, json_arguments(fn.get("arguments"))))
    return tuple(calls)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _call_out(call: ToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        args = {"_raw": call.arguments}
    return {"function": {"name": call.name, "arguments": args}}


def _done(model: str, reason: str | None, usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage()
    return {
        "model": model,
        "created_at": _now(),
        "done": True,
        "done_reason": "length" if reason == "length" else "stop",
        "prompt_eval_count": u.input_tokens,
        "eval_count": u.output_tokens,
    }


def _line(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


class StreamEncoder(WholeCallEncoder):
    """Internal events → NDJSON lines; tool calls are sent whole, in one line, at the end."""

    def text(self, text: str) -> bytes:
        message = {"role": "assistant", "content": text}
        return _line({"model": self.model, "created_at": _now(), "message": message, "done": False})

    def finish(self, event: Finish, calls: list[ToolCall]) -> bytes:
        out = b""
        if calls:
            called: dict[str, Any] = {
                "role": "assistant",
                "content": "",
                "tool_calls": [_call_out(c) for c in calls],
            }
            out += _line(
                {"model": self.model, "created_at": _now(), "message": called, "done": False}
            )
        last = _done(self.model, event.reason, event.usage)
        return out + _line({**last, "message": {"role": "assistant", "content": ""}})

    def error(self, message: str, status: int = 502) -> bytes:
        return _line(FORMAT.error_body(status, message))


def tags(models: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /api/tags``: every role and backend as a local model."""
    return {
        "models": [
            {
                "name": m["id"],
                "model": m["id"],
                "modified_at": "1970-01-01T00:00:00Z",
                "size": 0,
                "digest": "",
                "details": {
                    "format": "",
                    "family": m["kind"],
                    "parameter_size": "",
                    "quantization_level": "",
                },
            }
            for m in models
        ]
    }


class OllamaFormat(ClientFormat):
    name = "ollama"
    stream_type = "application/x-ndjson"
    stream_default = True

    def request_from_wire(self, body: Mapping[str, Any]) -> ChatRequest:
        """An ``/api/chat`` body as the internal request."""
        raw_messages = need_items(body.get("messages"), "`messages`")
        system: list[str] = []
        messages: list[Message] = []
        pending: list[ToolCall] = []  # calls not answered yet, in order
        count = 0
        for i, raw in enumerate(raw_messages):
            where = f"messages[{i}]"
            msg = need_mapping(raw, where)
            if msg.get("images"):
                raise Untranslatable(f"{where}: images are not supported")
            role = msg.get("role")
            content = msg.get("content") or ""
            if not isinstance(content, str):
                raise WireError(f"{where}.content must be a string")
            if role == "system":
                (
                    messages.append(Message("system", content))
                    if messages
                    else system.append(content)
                )
            elif role == "user":
                messages.append(Message("user", content))
            elif role == "assistant":
                calls = _tool_calls_in(msg.get("tool_calls"), where, count)
                count += len(calls)
                pending.extend(calls)
                messages.append(Message("assistant", content, tool_calls=calls))
            elif role == "tool":
                name = msg.get("tool_name") or msg.get("name")
                match = next(
                    (c for c in pending if c.name == name), pending[0] if pending else None
                )
                if match is not None:
                    pending.remove(match)
                call_id = match.id if match is not None else f"call_{count}"
                messages.append(
                    Message(
                        "tool", content, tool_call_id=call_id, name=match.name if match else None
                    )
                )
            else:
                raise WireError(f"{where}: unsupported role {role!r}")
        options = need_mapping(body.get("options") or {}, "`options`")
        limit = options.get("num_predict")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise WireError("`options.num_predict` must be an integer")
        tools = function_tools(body.get("tools"))
        extra = sampling_options(options)
        return ChatRequest(
            messages=tuple(messages),
            system="\n\n".join(system) if system else None,
            max_tokens=limit if isinstance(limit, int) and limit > 0 else None,
            temperature=opt_float(options, "temperature"),
            stop=stop_list(options.get("stop"), "options.stop"),
            tools=tools,
            options=extra,
        )

    def response_to_wire(self, response: ChatResponse, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": response.text}
        if response.tool_calls:
            message["tool_calls"] = [_call_out(c) for c in response.tool_calls]
        return {**_done(model, response.finish_reason, response.usage), "message": message}

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return StreamEncoder(model)


FORMAT = OllamaFormat()

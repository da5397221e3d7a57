"""Gemini ``generateContent`` / ``streamGenerateContent?alt=sse`` ⇄ the internal type.

Mapping decisions (also in docs/gateway.md):

- The model is the one in the path (``/v1beta/models/{model}:generateContent``):
  a muxlang role or backend name. ``contents`` turns are messages (``model`` is
  the assistant), ``systemInstruction`` the system prompt; text, ``functionCall``
  and ``functionResponse`` parts are read, other parts (inline data, files) are
  refused. A function call without an ``id`` is identified by its name.
- ``generationConfig``: ``maxOutputTokens``, ``temperature``, ``topP``,
  ``stopSequences``; ``candidateCount`` other than 1 is refused.
- ``toolConfig.functionCallingConfig.mode``: AUTO → auto, ANY → required (or the
  one allowed function), NONE → none.
- Answers have one candidate; function calls carry their ``id``. A stream is a
  series of ``data:`` chunks, the last with ``finishReason`` and ``usageMetadata``.
- Errors: ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    Tool,
    ToolCall,
    Usage,
)
from muxlang.serve.formats import ClientFormat, Untranslatable, WireError
from muxlang.serve.formats.common import (
    WholeCallEncoder,
    json_arguments,
    need_items,
    need_list,
    need_mapping,
    opt_float,
    sampling_options,
    sse,
    stop_list,
    tool_in,
    usage_to_wire,
)

_FINISH_OUT = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# --------------------------------------------------------------------------- requests


def _parts_text(value: Any, where: str) -> str:
    content = need_mapping(value, where)
    texts = []
    for part in need_list(content.get("parts") or [], f"{where}.parts"):
        part = need_mapping(part, f"{where}.parts[]")
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts)


def _turn(raw: Any, where: str) -> list[Message]:
    turn = need_mapping(raw, where)
    role = turn.get("role", "user")
    if role not in ("user", "model"):
        raise WireError(f"{where}: role must be user or model, got {role!r}")
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, raw_part in enumerate(need_list(turn.get("parts") or [], f"{where}.parts")):
        part = need_mapping(raw_part, f"{where}.parts[{j}]")
        if isinstance(part.get("text"), str):
            if not part.get("thought"):
                texts.append(part["text"])
        elif "functionCall" in part:
            call = need_mapping(part["functionCall"], f"{where}.parts[{j}].functionCall")
            name = str(call.get("name", ""))
            calls.append(
                ToolCall(str(call.get("id") or name), name, json_arguments(call.get("args")))
            )
        elif "functionResponse" in part:
            result = need_mapping(part["functionResponse"], f"{where}.parts[{j}].functionResponse")
            name = str(result.get("name", ""))
            response = result.get("response")
            text = json.dumps(response) if not isinstance(response, str) else response
            results.append(
                Message("tool", text, tool_call_id=str(result.get("id") or name), name=name)
            )
        else:
            raise Untranslatable(
                f"{where}.parts[{j}]: only text and function parts reach muxlang backends"
            )
    if role == "model":
        return [Message("assistant", "".join(texts), tool_calls=tuple(calls))]
    return [*results, *([Message("user", "\n".join(texts))] if texts or not results else [])]


def _tool_choice_in(config: Any) -> Any:
    if config is None:
        return None
    calling = need_mapping(
        need_mapping(config, "`toolConfig`").get("functionCallingConfig") or {},
        "`toolConfig.functionCallingConfig`",
    )
    mode = str(calling.get("mode", "AUTO")).upper()
    allowed = calling.get("allowedFunctionNames")
    if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1:
        return {"name": str(allowed[0])}
    return {"AUTO": "auto", "ANY": "required", "NONE": "none"}.get(mode, "auto")


# --------------------------------------------------------------------------- responses


def _call_part(call: ToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        args = {"_raw": call.arguments}
    return {"functionCall": {"id": call.id, "name": call.name, "args": args}}


def _usage_out(usage: Usage | None) -> dict[str, int]:
    return usage_to_wire(usage, "promptTokenCount", "candidatesTokenCount", "totalTokenCount")


def _chunk(model: str, parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": model}


class StreamEncoder(WholeCallEncoder):
    """Internal events → ``streamGenerateContent?alt=sse`` chunks. A function call is sent
    whole (Gemini never splits one), when its arguments are complete."""

    def text(self, text: str) -> bytes:
        return sse(_chunk(self.model, [{"text": text}]))

    def finish(self, event: Finish, calls: list[ToolCall]) -> bytes:
        parts = [_call_part(call) for call in calls] or [{"text": ""}]
        out = _chunk(self.model, parts, _FINISH_OUT.get(event.reason or "stop", "STOP"))
        out["usageMetadata"] = _usage_out(event.usage)
        return sse(out)

    def error(self, message: str, status: int = 502) -> bytes:
        return sse(FORMAT.error_body(status, message))


# --------------------------------------------------------------------------- the format


class GeminiFormat(ClientFormat):
    name = "gemini"

    def request_from_wire(self, body: Mapping[str, Any]) -> ChatRequest:
        """A ``generateContent`` body as the internal request."""
        contents = need_items(body.get("contents"), "`contents`")
        messages: list[Message] = []
        for i, raw in enumerate(contents):
            messages.extend(_turn(raw, f"contents[{i}]"))
        system = body.get("systemInstruction") or body.get("system_instruction")
        generation = need_mapping(body.get("generationConfig") or {}, "`generationConfig`")
        count = generation.get("candidateCount")
        if count not in (None, 1):
            raise Untranslatable("`candidateCount` other than 1 is not supported")
        limit = generation.get("maxOutputTokens")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise WireError("`generationConfig.maxOutputTokens` must be a positive integer")
        tools: list[Tool] = []
        for i, raw in enumerate(need_list(body.get("tools") or [], "`tools`")):
            group = need_mapping(raw, f"tools[{i}]")
            declared = group.get("functionDeclarations") or group.get("function_declarations")
            if declared is None:
                raise Untranslatable(f"tools[{i}]: only functionDeclarations are supported")
            for j, fn in enumerate(need_list(declared, f"tools[{i}].functionDeclarations")):
                spec = need_mapping(fn, f"tools[{i}].functionDeclarations[{j}]")
                tools.append(tool_in(spec, f"tools[{i}].functionDeclarations[{j}]", "parameters"))
        options = sampling_options(generation, "topP")
        return ChatRequest(
            messages=tuple(messages),
            system=_parts_text(system, "`systemInstruction`") if system is not None else None,
            max_tokens=limit,
            temperature=opt_float(generation, "temperature"),
            stop=stop_list(generation.get("stopSequences"), "stopSequences"),
            tools=tuple(tools),
            tool_choice=_tool_choice_in(body.get("toolConfig")),
            options=options,
        )

    def response_to_wire(self, response: ChatResponse, model: str) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": response.text}] if response.text else []
        parts += [_call_part(call) for call in response.tool_calls]
        out = _chunk(
            model,
            parts or [{"text": ""}],
            _FINISH_OUT.get(response.finish_reason or "stop", "STOP"),
        )
        out["usageMetadata"] = _usage_out(response.usage)
        return out

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        fallback = "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
        return {
            "error": {"code": status, "message": message, "status": _STATUS.get(status, fallback)}
        }

    def encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return StreamEncoder(model)


FORMAT = GeminiFormat()

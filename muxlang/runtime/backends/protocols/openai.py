"""OpenAI chat completions: ``POST {base}/chat/completions`` (SSE with ``stream: true``)."""

from __future__ import annotations

import json
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
    join_url,
    model_of,
    require_dict,
    sampling,
    system_of,
)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "stop",
}


def _url(base: str, model: str | None, stream: bool) -> str:
    return join_url(base, "/chat/completions")


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None and message.role != "tool":
        out["name"] = message.name
    return out


def _body(request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = system_of(request, config)
    if system:
        messages.append({"role": "system", "content": system})
    messages += [_message(m) for m in request.messages]
    body: dict[str, Any] = {"messages": messages}
    model = model_of(request, config)
    if model:
        body["model"] = model
    body.update(config.options)
    body.update(sampling(request))
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters) or {"type": "object", "properties": {}},
                },
            }
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    body.update(request.options)
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


def _parse(data: Any) -> ChatResponse:
    body = require_dict(data, "the answer")
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
        finish_reason=_FINISH.get(str(reason), "stop")
        if reason
        else ("tool_calls" if calls else "stop"),
        usage=_usage(body.get("usage")),
        model=body.get("model") if isinstance(body.get("model"), str) else None,
    )


def error_message(data: Any) -> str | None:
    """``{"error": {"message": ...}}`` (also a bare ``{"error": "..."}``, ``{"message": ...}``)."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str) and error:
        return error
    if isinstance(data.get("message"), str):
        return str(data["message"])
    if isinstance(data.get("detail"), str):
        return str(data["detail"])
    return None


class _Decoder:
    def __init__(self) -> None:
        self.finished: Finish | None = None
        self.usage: Usage | None = None
        self.done = False

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise MalformedResponse(f"a stream chunk is not JSON: {data[:80]!r}") from exc
        if not isinstance(chunk, dict):
            raise MalformedResponse("a stream chunk is not a JSON object")
        if "error" in chunk:
            raise StreamError(error_message(chunk) or "error in stream")
        out: list[StreamEvent] = []
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out.append(TextDelta(delta["content"]))
            for call in delta.get("tool_calls") or []:
                fn = call.get("function") or {}
                out.append(
                    ToolCallDelta(
                        index=int(call.get("index") or 0),
                        id=call.get("id"),
                        name=fn.get("name"),
                        arguments=fn.get("arguments") or "",
                    )
                )
            reason = choice.get("finish_reason")
            if reason:
                self.finished = Finish(_FINISH.get(str(reason), "stop"))
        return out

    def close(self) -> list[StreamEvent]:
        if self.finished is None and not self.done:
            raise MalformedResponse("the stream ended before the answer was finished")
        reason = self.finished.reason if self.finished else "stop"
        return [Finish(reason, self.usage)]


def _models_url(base: str) -> str:
    return join_url(base, "/models")


ADAPTER = Adapter(
    name="openai",
    stream_format="sse",
    url=_url,
    auth=_auth,
    body=_body,
    parse=_parse,
    error_message=error_message,
    decoder=_Decoder,
    models_url=_models_url,
)

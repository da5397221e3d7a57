"""Google Gemini: ``POST {base}/v1beta/models/{model}:generateContent``
(``:streamGenerateContent?alt=sse`` for streams)."""

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
    parameters_schema,
    route_options,
    sampling,
    stream_object,
    system_of,
    tool_name_by_id,
    usage_of,
    versioned,
)

#: option names (OpenAI style or Gemini's own) that belong in ``generationConfig``
_GENERATION = {
    "temperature": "temperature",
    "top_p": "topP",
    "topP": "topP",
    "top_k": "topK",
    "topK": "topK",
    "max_tokens": "maxOutputTokens",
    "max_output_tokens": "maxOutputTokens",
    "maxOutputTokens": "maxOutputTokens",
    "stop": "stopSequences",
    "stop_sequences": "stopSequences",
    "stopSequences": "stopSequences",
    "candidate_count": "candidateCount",
    "seed": "seed",
    "response_mime_type": "responseMimeType",
    "responseMimeType": "responseMimeType",
}

_FINISH: dict[str, FinishReason] = {"STOP": "stop", "MAX_TOKENS": "length"}


def _usage(data: Any) -> Usage | None:
    return usage_of(data, "promptTokenCount", "candidatesTokenCount")


def _candidate_parts(body: dict[str, Any]) -> tuple[list[Any], str | None]:
    candidates = body.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        return [], None
    content = candidates[0].get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    reason = candidates[0].get("finishReason")
    return (parts if isinstance(parts, list) else []), (str(reason) if reason else None)


class _Decoder:
    def __init__(self) -> None:
        self.reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.calls = 0
        self.seen = False

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        chunk = stream_object(data, "a stream chunk")
        if "error" in chunk:
            raise StreamError(ADAPTER.error_message(chunk) or "error in stream")
        self.seen = True
        out: list[StreamEvent] = []
        parts, reason = _candidate_parts(chunk)
        for part in parts:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                out.append(TextDelta(part["text"]))
            call = part.get("functionCall")
            if isinstance(call, dict):
                out.append(
                    ToolCallDelta(
                        self.calls,
                        id=str(call.get("id") or f"call_{self.calls}"),
                        name=str(call.get("name", "")),
                        arguments=dumps(call.get("args", {})),
                    )
                )
                self.calls += 1
        if reason:
            self.reason = _FINISH.get(reason, "stop")
        if chunk.get("usageMetadata"):
            self.usage = _usage(chunk["usageMetadata"])
        return out

    def close(self) -> list[StreamEvent]:
        if not self.seen:
            raise MalformedResponse("the stream ended without an answer")
        reason: FinishReason = "tool_calls" if self.calls else (self.reason or "stop")
        return [Finish(reason, self.usage)]


class GeminiAdapter(Adapter):
    name = "gemini"
    version = "/v1beta"

    def url(self, base: str, model: str | None, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{versioned(base, self.version)}/models/{model or 'gemini-pro'}:{method}"

    def auth(self, api_key: str | None) -> dict[str, str]:
        return {"x-goog-api-key": api_key} if api_key else {}

    def body(self, request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
        names = tool_name_by_id(request.messages)
        contents: list[dict[str, Any]] = []
        systems: list[str] = []
        for m in request.messages:
            if m.role == "system":
                systems.append(m.content)
                continue
            if m.role == "tool":
                name = m.name or names.get(m.tool_call_id or "", "tool")
                response: dict[str, Any] = {"name": name, "response": {"content": m.content}}
                if m.tool_call_id:
                    response["id"] = m.tool_call_id  # Gemini matches a result to its call by id
                part = {"functionResponse": response}
                contents.append({"role": "user", "parts": [part]})
                continue
            parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
            parts += [
                {"functionCall": {"id": c.id, "name": c.name, "args": loads_arguments(c.arguments)}}
                for c in m.tool_calls
            ]
            role = "model" if m.role == "assistant" else "user"
            contents.append({"role": role, "parts": parts or [{"text": ""}]})
        system = system_of(request, config)
        if system:
            systems.insert(0, system)
        body: dict[str, Any] = {"contents": contents}
        if systems:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(systems)}]}
        generation: dict[str, Any] = {}
        route_options(body, generation, _GENERATION, "generationConfig", config.options)
        route_options(body, generation, _GENERATION, "generationConfig", sampling(request))
        if request.tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t.name,
                            "description": t.description,
                            "parameters": parameters_schema(t),
                        }
                        for t in request.tools
                    ]
                }
            ]
        route_options(body, generation, _GENERATION, "generationConfig", request.options)
        if generation:
            body["generationConfig"] = generation
        body.pop("model", None)  # the model is in the URL
        return body

    def read_answer(self, body: dict[str, Any]) -> ChatResponse:
        if "candidates" not in body:
            feedback = body.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                raise MalformedResponse(f"the prompt was blocked: {feedback['blockReason']}")
            raise MalformedResponse("the answer has no candidates")
        parts, reason = _candidate_parts(body)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                calls.append(
                    ToolCall(
                        str(call.get("id") or f"call_{len(calls)}"),
                        str(call.get("name", "")),
                        dumps(call.get("args", {})),
                    )
                )
        finish: FinishReason = "tool_calls" if calls else _FINISH.get(reason or "STOP", "stop")
        model = body.get("modelVersion")
        return ChatResponse(
            text="".join(texts),
            tool_calls=tuple(calls),
            finish_reason=finish,
            usage=_usage(body.get("usageMetadata")),
            model=model if isinstance(model, str) else None,
        )

    def error_message(self, data: Any) -> str | None:
        """``{"error": {"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED"}}``."""
        if isinstance(data, list) and data:  # some endpoints wrap the error in a list
            data = data[0]
        return error_field(data)

    def stream_decoder(self) -> _Decoder:
        return _Decoder()


ADAPTER = GeminiAdapter()

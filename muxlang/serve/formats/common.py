"""Small helpers shared by the wire formats."""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from muxlang.llm import (
    ChatRequest,
    Finish,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends import sse as _sse
from muxlang.runtime.backends.protocols.common import model_field
from muxlang.serve.formats import Untranslatable, WireError


def new_id(prefix: str) -> str:
    """A random identifier such as ``chatcmpl-3f9a...`` or ``msg_01ab...``."""
    return prefix + secrets.token_hex(12)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (the backends' one encoder, :mod:`muxlang.runtime.backends.sse`)."""
    return _sse.encode(data, event)


def need_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"{what} must be an object")
    return value


def need_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireError(f"{what} must be an array")
    return value


def content_text(content: Any, where: str) -> str:
    """The text of an OpenAI-style ``content``: a string, or a list of ``text`` /
    ``input_text`` / ``output_text`` parts joined by a newline (Chat Completions and
    the Responses API share it); any other part is :class:`Untranslatable`."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in need_list(content, f"{where}.content"):
        part = need_mapping(part, f"{where}.content[]")
        if part.get("type") not in ("text", "input_text", "output_text"):
            raise Untranslatable(
                f"{where}: content part of type {part.get('type')!r} is not supported "
                "(only text reaches muxlang backends)"
            )
        parts.append(str(part.get("text", "")))
    return "\n".join(parts)


def need_items(value: Any, what: str) -> list[Any]:
    """An array with at least one item (a conversation's messages or contents)."""
    items = need_list(value, what)
    if not items:
        raise WireError(f"{what} must not be empty")
    return items


def positive_int(body: Mapping[str, Any], key: str) -> int | None:
    """``body[key]`` when it is a positive integer, ``None`` when absent; else a WireError
    (token limits: the APIs refuse 0 and negatives, so the gateway does too)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise WireError(f"`{key}` must be a positive integer, got {shown}")
    return value


def opt_float(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"`{key}` must be a number")
    return float(value)


def stop_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise WireError(f"`{key}` must be a string or an array of strings")


def json_arguments(value: Any) -> str:
    """Tool-call arguments as JSON text, whatever form they came in."""
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, separators=(",", ":"))


def tool_in(spec: Mapping[str, Any], where: str, schema_key: str) -> Tool:
    """A client's tool declaration (``name``, ``description``, a JSON Schema under
    ``schema_key``), checked, as the internal :class:`~muxlang.llm.Tool`."""
    if not isinstance(spec.get("name"), str):
        raise WireError(f"{where} needs a `name`")
    return Tool(
        name=spec["name"],
        description=str(spec.get("description") or ""),
        parameters=dict(need_mapping(spec.get(schema_key) or {}, schema_key)),
    )


def function_tools(value: Any) -> tuple[Tool, ...]:
    """A ``tools`` array in OpenAI's Chat Completions shape (``{"type": "function",
    "function": {"name", "description", "parameters"}}``), which Ollama takes too."""
    tools: list[Tool] = []
    for i, raw in enumerate(need_list(value or [], "`tools`")):
        tool = need_mapping(raw, f"tools[{i}]")
        fn = need_mapping(tool.get("function"), f"tools[{i}].function")
        tools.append(tool_in(fn, f"tools[{i}].function", "parameters"))
    return tuple(tools)


def sampling_options(body: Mapping[str, Any], top_p_key: str = "top_p") -> dict[str, Any]:
    """Sampling settings the internal request has no field for (``top_p``, read from
    ``body[top_p_key]``: Gemini's ``topP``): they travel in ``options``."""
    top_p = opt_float(body, top_p_key)
    return {"top_p": top_p} if top_p is not None else {}


def chat_request(
    body: Mapping[str, Any],
    messages: list[Message],
    system: str | None,
    max_tokens: int | None,
    tools: tuple[Tool, ...] | list[Tool],
    tool_choice_in: Callable[[Any], Any],
    stop_key: str | None = None,
) -> ChatRequest:
    """The internal request of a format whose body names ``model``, ``temperature``,
    ``top_p`` and ``tool_choice`` at its top (Chat Completions, Responses, Anthropic
    Messages), from the conversation, system prompt, limit and tools the format read
    (``tool_choice_in``: its reader of ``tool_choice``; ``stop_key``: where its stop
    strings are, if it has any)."""
    return ChatRequest(
        messages=tuple(messages),
        system=system,
        model=model_field(body),
        max_tokens=max_tokens,
        temperature=opt_float(body, "temperature"),
        stop=stop_list(body.get(stop_key), stop_key) if stop_key else (),
        tools=tuple(tools),
        tool_choice=tool_choice_in(body.get("tool_choice")),
        options=sampling_options(body),
    )


def usage_to_wire(
    usage: Usage | None, input_key: str, output_key: str, total_key: str | None = None
) -> dict[str, int]:
    """Internal usage (none: zeros) as a format's usage table: the input and output
    token counts under its names, and their sum under ``total_key`` when it has one."""
    u = usage or Usage()
    out = {input_key: u.input_tokens, output_key: u.output_tokens}
    if total_key is not None:
        out[total_key] = u.input_tokens + u.output_tokens
    return out


#: HTTP status -> the error ``type`` OpenAI and Anthropic both send for it
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int, server: str, own: Mapping[int, str] | None = None) -> str:
    """The error ``type`` of an HTTP status: the format's ``own`` word for it, else the
    shared one, else ``server`` (OpenAI's ``server_error``, Anthropic's ``api_error``)
    for a 5xx and ``invalid_request_error`` for the rest."""
    if own and status in own:
        return own[status]
    return ERROR_TYPES.get(status, server if status >= 500 else "invalid_request_error")


class WholeCallEncoder(ABC):
    """Base of the stream encoders that send a tool call only whole, once its arguments
    are complete (Gemini, Ollama): the pieces are gathered by call index, and the
    format writes a piece of text (:meth:`text`), the end with every call
    (:meth:`finish`) and an error (:meth:`error`). These streams have no opening or
    closing event of their own."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._pieces: dict[int, list[str]] = {}
        self._heads: dict[int, tuple[str, str]] = {}

    def start(self) -> bytes:
        return b""

    def end(self) -> bytes:
        return b""

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self.text(event.text) if event.text else b""
        if isinstance(event, ToolCallDelta):
            self.gather(event)
            return b""
        assert isinstance(event, Finish)
        if event.reason == "error":
            return self.error("the backend reported an error")
        return self.finish(event, self.gathered())

    @abstractmethod
    def text(self, text: str) -> bytes:
        """A piece of the answer's text (never empty)."""

    @abstractmethod
    def finish(self, event: Finish, calls: list[ToolCall]) -> bytes:
        """The end of the answer, with every tool call whole, in index order."""

    @abstractmethod
    def error(self, message: str, status: int = 502) -> bytes:
        """An error in the middle of the stream."""

    def gather(self, event: ToolCallDelta) -> None:
        """One piece of a call; its first piece names it (id ``call_N`` when it has none)."""
        if event.index not in self._heads:
            self._heads[event.index] = (event.id or f"call_{event.index}", event.name or "")
        self._pieces.setdefault(event.index, []).append(event.arguments)

    def gathered(self) -> list[ToolCall]:
        """The whole calls in index order; gathering starts over."""
        calls = [
            ToolCall(self._heads[i][0], self._heads[i][1], "".join(self._pieces[i]))
            for i in sorted(self._pieces)
        ]
        self._pieces, self._heads = {}, {}
        return calls


#: characters per token of English text and code in the common BPE tokenizers
CHARS_PER_TOKEN = 4
#: tokens each message costs beyond its text (role and separators)
TOKENS_PER_MESSAGE = 3


def estimate_tokens(request: ChatRequest) -> int:
    """Input tokens of ``request``, estimated without a tokenizer: its text (system
    prompt, messages, tool calls, tool declarations as JSON) at
    :data:`CHARS_PER_TOKEN` characters a token, rounded up, plus
    :data:`TOKENS_PER_MESSAGE` per message. Backends differ (muxlang does not know
    which model a role will reach), so this is an estimate, as docs/gateway.md says."""
    chars = len(request.system or "")
    for message in request.messages:
        chars += len(message.content)
        chars += sum(len(c.name) + len(c.arguments) for c in message.tool_calls)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description)
        chars += len(json.dumps(dict(tool.parameters), separators=(",", ":")))
    text_tokens = -(-chars // CHARS_PER_TOKEN)
    return text_tokens + TOKENS_PER_MESSAGE * len(request.messages) + (1 if request.system else 0)

"""What every protocol adapter provides, and helpers they share."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Protocol

from muxlang.config.models import BackendConfig
from muxlang.llm import ChatRequest, ChatResponse, StreamEvent, Tool, ToolCall, Usage


class MalformedResponse(ValueError):
    """The server answered 2xx with something that is not the protocol's answer.

    ``raw`` is the offending text, when there is one: ``str()`` shows its first
    80 characters, and a caller that knows the secrets shows it with
    :meth:`detail` instead (redacted first, then cut)."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        shown = message if raw is None else f"{message}: {raw[:80]!r}"
        super().__init__(shown)
        self.message = message
        self.raw = raw

    def detail(self, redact_cut: Callable[[str, int], str]) -> str:
        """The message with ``raw`` passed through ``redact_cut(text, limit)``."""
        if self.raw is None:
            return str(self)
        return f"{self.message}: {redact_cut(self.raw, 80)!r}"


class StreamError(Exception):
    """The server reported an error inside a stream (after the status line)."""


class Decoder(Protocol):
    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        """One SSE event (``event`` name, ``data`` text) or one NDJSON line (event None)."""
        ...

    def close(self) -> list[StreamEvent]:
        """The stream ended: whatever is still owed (a Finish when the server sent none)."""
        ...


#: what a parser of upstream data may raise on an answer of the wrong shape; a
#: RecursionError is an answer nested absurdly deep (JSON 100,000 levels down):
#: a malformed answer like any other, so a fallback role tries its next backend
SHAPE_ERRORS = (
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ValueError,
    OverflowError,
    RecursionError,
)


class Adapter(ABC):
    """A wire protocol: one subclass per protocol module, which ends in its one
    instance, ``ADAPTER``.

    A subclass names the protocol (``name``, ``stream_format``) and its paths
    (``version``, ``chat_path``, ``models_path``: the URLs are built from them
    unless it defines ``url``), and defines the hooks :meth:`body`,
    :meth:`read_answer` and :meth:`stream_decoder` (and :meth:`auth`,
    :meth:`error_message` where the defaults do not fit).

    Callers read answers through :meth:`parse` and :meth:`decoder`, which raise
    only :class:`MalformedResponse` (and :class:`StreamError`) whatever JSON the
    server sent: a value of the wrong type anywhere (``"choices": 1``) in what a
    hook reads is a malformed answer, never a ``TypeError``.
    """

    name: ClassVar[str]
    stream_format: ClassVar[Literal["sse", "ndjson"]] = "sse"
    #: the API version path a base URL may name or leave out (``/v1``); "" for none
    version: ClassVar[str] = ""
    #: the chat endpoint below the (versioned) base URL
    chat_path: ClassVar[str] = ""
    #: a cheap authenticated GET below the base URL that lists models (``doctor``)
    models_path: ClassVar[str] = "/models"

    def url(self, base: str, model: str | None, stream: bool) -> str:
        """Where a chat request goes, from the backend's base URL."""
        return versioned(base, self.version) + self.chat_path

    def models_url(self, base: str) -> str:
        return versioned(base, self.version) + self.models_path

    def auth(self, api_key: str | None) -> dict[str, str]:
        """The headers that carry the API key (``Authorization: Bearer KEY`` unless
        the protocol has its own)."""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def error_message(self, data: Any) -> str | None:
        """The server's own message in a JSON error body (the usual shape unless
        the protocol has its own)."""
        return error_field(data)

    @abstractmethod
    def body(self, request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
        """The JSON body of a chat request."""

    @abstractmethod
    def read_answer(self, body: dict[str, Any]) -> ChatResponse:
        """A whole JSON answer (an object: :meth:`parse` checks) as a response (called
        by :meth:`parse`, inside its guard)."""

    @abstractmethod
    def stream_decoder(self) -> Decoder:
        """A new decoder of one stream (wrapped by :meth:`decoder` in its guard)."""

    def parse(self, data: Any) -> ChatResponse:
        """A whole JSON answer as a response; raises only :class:`MalformedResponse`."""
        try:
            return self.read_answer(require_dict(data, "the answer"))
        except MalformedResponse:
            raise
        except SHAPE_ERRORS as exc:
            raise MalformedResponse(f"unexpected shape ({type(exc).__name__}: {exc})") from exc

    def decoder(self) -> Decoder:
        """A new decoder of one stream, raising only :class:`MalformedResponse` and
        :class:`StreamError`."""
        return _GuardedDecoder(self.stream_decoder())


class _GuardedDecoder:
    def __init__(self, inner: Decoder) -> None:
        self._inner = inner

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        try:
            return self._inner.feed(event, data)
        except (MalformedResponse, StreamError):
            raise
        except SHAPE_ERRORS as exc:
            raise MalformedResponse(
                f"unexpected stream chunk ({type(exc).__name__}: {exc})", raw=data
            ) from exc

    def close(self) -> list[StreamEvent]:
        try:
            return self._inner.close()
        except (MalformedResponse, StreamError):
            raise
        except SHAPE_ERRORS as exc:
            raise MalformedResponse(f"unexpected end of stream ({exc})") from exc


def model_of(request: ChatRequest, config: BackendConfig) -> str | None:
    return request.model or config.model


def model_field(body: Mapping[str, Any]) -> str | None:
    """The ``model`` a wire body (request or answer) names, when it is a string."""
    model = body.get("model")
    return model if isinstance(model, str) else None


def system_of(request: ChatRequest, config: BackendConfig) -> str | None:
    """The step's (or client's) system prompt wins over the backend's ``system``."""
    return request.system if request.system is not None else config.system


def route_options(
    body: dict[str, Any],
    nested: dict[str, Any],
    names: Mapping[str, str],
    nested_key: str,
    options: Mapping[str, Any],
) -> None:
    """Merge ``options`` into a body whose sampling settings live in a nested table
    (Ollama's ``options``, Gemini's ``generationConfig``): a name in ``names`` goes
    into ``nested`` under its wire name, a ``nested_key`` table is merged into
    ``nested`` whole, and everything else goes into the body as is."""
    for key, value in dict(options).items():
        if key in names:
            nested[names[key]] = value
        elif key == nested_key and isinstance(value, dict):
            nested.update(value)
        else:
            body[key] = value


def put_sampling(body: dict[str, Any], request: ChatRequest, stop_key: str = "stop") -> None:
    """Write the request's explicit sampling fields into ``body``, over what is there
    (``stop_key``: the wire name of the stop strings, Anthropic's ``stop_sequences``)."""
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body[stop_key] = list(request.stop)


def put_request(
    body: dict[str, Any],
    request: ChatRequest,
    tool_to_wire: Callable[[Tool, dict[str, Any]], dict[str, Any]],
    stream: bool,
    stop_key: str = "stop",
) -> None:
    """Write what a flat body (OpenAI's, Anthropic's) takes from the request over the
    backend's options already there: its sampling fields, its tools (each as the
    protocol's ``tool_to_wire(tool, schema)`` writes it), ``tool_choice`` and its own
    options; then ``stream: true``, or no ``stream`` key at all when not streaming."""
    put_sampling(body, request, stop_key)
    if request.tools:
        body["tools"] = [tool_to_wire(tool, parameters_schema(tool)) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    body.update(request.options)
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)


def sampling(request: ChatRequest) -> dict[str, Any]:
    """The request's explicit sampling fields, OpenAI-named."""
    out: dict[str, Any] = {}
    put_sampling(out, request)
    return out


def error_field(data: Any) -> str | None:
    """The message of the usual JSON error body, ``{"error": {"message": ...}}`` or
    ``{"error": "..."}``; ``None`` for any other shape (each protocol's
    ``error_message`` adds its own extra shapes around this one)."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return None


def parameters_schema(tool: Tool) -> dict[str, Any]:
    """A tool's JSON Schema as sent to a backend: an empty one is sent as an object
    schema with no properties."""
    return dict(tool.parameters) or {"type": "object", "properties": {}}


def versioned(base: str, version: str) -> str:
    """``base`` ending in the API's ``version`` path (``/v1``, ``/v1beta``): a base URL
    may name it (``https://api.anthropic.com/v1``) or leave it out; with ``version``
    "", ``base`` without a trailing slash."""
    base = base.rstrip("/")
    return base if base.endswith(version) else base + version


def usage_of(data: Any, input_key: str, output_key: str) -> Usage | None:
    """A wire usage table as internal usage: its input and output token counts under
    the protocol's names (a missing or null count is 0); None when it is no table."""
    if not isinstance(data, Mapping):
        return None
    return Usage(int(data.get(input_key) or 0), int(data.get(output_key) or 0))


def loads_arguments(arguments: str) -> Any:
    """A tool call's JSON arguments as an object (protocols that want objects)."""
    if not arguments.strip():
        return {}
    try:
        return json.loads(arguments)
    except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
        return {"_raw": arguments}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def stream_object(data: str, what: str) -> dict[str, Any]:
    """One streamed piece (``what``: "a stream chunk", "a stream line" ...) as a JSON
    object; anything else is a :class:`MalformedResponse`."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise MalformedResponse(f"{what} is not JSON", raw=data) from exc
    except RecursionError:
        raise MalformedResponse(f"{what} is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what} is not a JSON object")
    return value


def require_dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a JSON object as {what}, got {type(data).__name__}")
    return data


def tool_name_by_id(messages: tuple[Any, ...]) -> Mapping[str, str]:
    """Tool call id -> function name, from the assistant messages of a conversation."""
    names: dict[str, str] = {}
    for message in messages:
        for call in getattr(message, "tool_calls", ()):
            assert isinstance(call, ToolCall)
            names[call.id] = call.name
    return names

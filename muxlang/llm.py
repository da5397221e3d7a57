"""The one internal request/response/event type between every wire format.

Query steps, apply's re-ask, and the gateway all speak this: protocol adapters
(openai, anthropic, gemini, ollama, CLI) translate it to and from their wire
format. Kept free of httpx and trio so every stage can import it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import field
from typing import Any, Literal, Protocol, runtime_checkable

from muxlang._frozen import frozen

Role = Literal["system", "user", "assistant", "tool"]


@frozen(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@frozen(slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role "tool": which call this answers
    name: str | None = None


@frozen(slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)  # JSON Schema


@frozen(slots=True)
class ChatRequest:
    messages: tuple[Message, ...]
    system: str | None = None
    model: str | None = None  # None: the backend's configured model
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    #: in the wire form of the backend's protocol (adapters copy it into the body);
    #: the gateway parses clients' choices as "auto" | "none" | "required" | {"name": TOOL}
    #: and writes them per backend (muxlang.serve.gateway.tool_choice_for)
    tool_choice: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)  # merged into the wire body

    @staticmethod
    def from_prompt(prompt: str, system: str | None = None, **kw: Any) -> ChatRequest:
        return ChatRequest(messages=(Message("user", prompt),), system=system, **kw)

    @property
    def prompt_text(self) -> str:
        """The conversation as one text, for backends that take a single prompt (CLIs)."""
        if len(self.messages) == 1 and self.messages[0].role == "user":
            return self.messages[0].content
        return "\n\n".join(f"{m.role}: {m.content}" for m in self.messages)


@frozen(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


FinishReason = Literal["stop", "length", "tool_calls", "error"]


@frozen(slots=True)
class ChatResponse:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason | None = "stop"
    usage: Usage | None = None
    model: str | None = None
    backend: str | None = None  # who answered


# --------------------------------------------------------------------------- streaming


@frozen(slots=True)
class TextDelta:
    text: str


@frozen(slots=True)
class ToolCallDelta:
    """A piece of a tool call: ``id``/``name`` arrive first, ``arguments`` in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@frozen(slots=True)
class Finish:
    reason: FinishReason | None = "stop"
    usage: Usage | None = None


StreamEvent = TextDelta | ToolCallDelta | Finish


# --------------------------------------------------------------------------- errors


class ErrorKind(enum.StrEnum):
    RATE_LIMIT = "rate_limit"  # HTTP 429, or a CLI saying so
    SERVER = "server"  # HTTP 5xx, malformed answers
    CONNECTION = "connection"  # refused, reset, dropped mid-body
    TIMEOUT = "timeout"
    CLIENT = "client"  # 4xx other than 408/429: the request is wrong, never retried
    CONFIG = "config"  # missing ${VAR}, CLI not on PATH, disabled: never retried


class BackendError(Exception):
    """A failed backend call. Messages never contain secrets."""

    def __init__(
        self,
        backend: str,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.backend = backend
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait
        self.attempts = attempts
        super().__init__(f"{backend}: {message}")


# --------------------------------------------------------------------------- backends


@frozen(slots=True)
class Availability:
    ok: bool
    reason: str = ""


@runtime_checkable
class Backend(Protocol):
    """One configured backend. Implementations do a single attempt per call;
    retries and role execution modes are layered on top."""

    name: str

    def availability(self) -> Availability:
        """Cheap, local: CLI on PATH, HTTP key variables set, enabled."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...


@frozen(slots=True)
class QueryResult:
    """What a query step leaves: ``output``, per-backend ``outputs`` in role order,
    and the backend that answered (for parallel roles, the first in role order)."""

    output: str
    outputs: Mapping[str, str]
    backend: str | None
    usage: Usage | None = None
    #: USD, from the answering backends' ``price`` (None when none has one)
    cost: float | None = None


class QueryService(Protocol):
    """How the runtime asks a role or backend; the backends layer implements it."""

    async def query(
        self, target: str, request: ChatRequest, *, kind: Literal["role", "backend"]
    ) -> QueryResult: ...

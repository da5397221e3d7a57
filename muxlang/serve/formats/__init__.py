"""Wire formats the gateway speaks, each translated to and from :mod:`muxlang.llm`.

The "double-V" model: a client's request is parsed into the one internal
:class:`~muxlang.llm.ChatRequest`; whatever backend answers, its
:class:`~muxlang.llm.ChatResponse` or stream of events is rendered back in the
client's format. Each format module offers the same functions:

- ``request_from_wire(body) -> ChatRequest``
- ``response_to_wire(response, model) -> dict``
- ``StreamEncoder(model)``: ``start()``, ``event(e)``, ``error(...)``, ``end()`` → SSE bytes
- ``error_body(status, message, type)``: the format's error shape

The other direction (a request written in a protocol, its answers and streams
read back) is the backend adapter's, :mod:`muxlang.runtime.backends.protocols`:
one codec per wire format, which the pass-through's relay of a whole answer as
a stream uses too.

Each client format module ends with a ``FORMAT`` (:class:`ClientFormat`) and is
registered by one line in :mod:`muxlang.serve.formats.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from muxlang.llm import ChatRequest, ChatResponse, StreamEvent


class Encoder(Protocol):
    """Internal stream events → the format's stream bytes."""

    def start(self) -> bytes: ...

    def event(self, event: StreamEvent) -> bytes: ...

    def error(self, message: str, status: int = 502) -> bytes: ...

    def end(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ClientFormat:
    """What the gateway needs of one client format."""

    name: str
    request_from_wire: Callable[[Mapping[str, Any]], ChatRequest]
    #: (response, model) -> JSON answer
    response_to_wire: Callable[[ChatResponse, str], dict[str, Any]]
    #: (model, include_usage) -> a fresh stream encoder
    encoder: Callable[[str, bool], Encoder]
    #: (status, message) -> JSON error body
    error_body: Callable[[int, str], dict[str, Any]]
    stream_type: str = "text/event-stream"
    #: whether a body without ``stream`` asks for a stream (Ollama)
    stream_default: bool = False
    #: a backend speaking this protocol gets the client's body untouched
    relays: bool = False


class WireError(ValueError):
    """A request body that is not valid for its format (answered with HTTP 400)."""


class Untranslatable(WireError):
    """A valid request the internal type cannot carry (``n`` > 1, image parts ...).

    Pass-through forwards such a body untouched; only a backend that needs the
    translation refuses it (HTTP 400).
    """


def need_model(body: Mapping[str, Any]) -> str:
    """``body["model"]``, which every format's request carries (or the gateway put there)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("`model` is required: name a muxlang role or backend")
    return model

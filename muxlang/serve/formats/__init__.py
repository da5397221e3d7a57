"""Wire formats the gateway speaks, each translated to and from :mod:`muxlang.llm`.

The "double-V" model: a client's request is parsed into the one internal
:class:`~muxlang.llm.ChatRequest`; whatever backend answers, its
:class:`~muxlang.llm.ChatResponse` or stream of events is rendered back in the
client's format.

A format is one :class:`ClientFormat` subclass, in its own module, which ends in
its one instance ``FORMAT``: the subclass names the format (``name``, and
``stream_type``, ``stream_default``, ``relays`` where the defaults do not fit) and
defines its methods:

- ``request_from_wire(body) -> ChatRequest``
- ``response_to_wire(response, model) -> dict``
- ``encoder(model, include_usage)``: a fresh stream encoder (the module's
  ``StreamEncoder``): ``start()``, ``event(e)``, ``error(...)``, ``end()`` → bytes
- ``error_body(status, message)``: the format's error shape

The other direction (a request written in a protocol, its answers and streams
read back) is the backend adapter's, :mod:`muxlang.runtime.backends.protocols`:
one codec per wire format, which the pass-through's relay of a whole answer as
a stream uses too.

A new format is one module here plus one line in
:mod:`muxlang.serve.formats.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from muxlang.llm import ChatRequest, ChatResponse, StreamEvent


class Encoder(Protocol):
    """Internal stream events → the format's stream bytes."""

    def start(self) -> bytes: ...

    def event(self, event: StreamEvent) -> bytes: ...

    def error(self, message: str, status: int = 502) -> bytes: ...

    def end(self) -> bytes: ...


class ClientFormat(ABC):
    """What the gateway needs of one client format: one subclass per format module,
    which ends in its one instance, ``FORMAT``."""

    name: ClassVar[str]
    #: the ``Content-Type`` of a stream
    stream_type: ClassVar[str] = "text/event-stream"
    #: whether a body without ``stream`` asks for a stream (Ollama)
    stream_default: ClassVar[bool] = False
    #: a backend speaking this protocol gets the client's body untouched
    relays: ClassVar[bool] = False

    @abstractmethod
    def request_from_wire(self, body: Mapping[str, Any]) -> ChatRequest:
        """A request body as the internal request (``model`` kept as is); raises
        :class:`WireError`."""

    @abstractmethod
    def response_to_wire(self, response: ChatResponse, model: str) -> dict[str, Any]:
        """The internal response as the format's JSON answer."""

    @abstractmethod
    def encoder(self, model: str, include_usage: bool) -> Encoder:
        """A fresh encoder of one stream (``include_usage``: OpenAI's
        ``stream_options.include_usage``; the other formats always send usage)."""

    @abstractmethod
    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """The format's JSON error body."""


class WireError(ValueError):
    """A request body that is not valid for its format (answered with HTTP 400)."""


class Untranslatable(WireError):
    """A valid request the internal type cannot carry (``n`` > 1, image parts ...).

    Pass-through forwards such a body untouched; only a backend that needs the
    translation refuses it (HTTP 400).
    """

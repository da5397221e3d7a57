"""Wire formats the gateway speaks, each translated to and from :mod:`muxlang.llm`.

The "double-V" model: a client's request is parsed into the one internal
:class:`~muxlang.llm.ChatRequest`; whatever backend answers, its
:class:`~muxlang.llm.ChatResponse` or stream of events is rendered back in the
client's format. Each format module offers the same functions:

- ``request_from_wire(body) -> ChatRequest`` / ``request_to_wire(request) -> dict``
- ``response_to_wire(response, model) -> dict`` / ``response_from_wire(body) -> ChatResponse``
- ``StreamEncoder(model)``: ``start()``, ``event(e)``, ``error(...)``, ``end()`` → SSE bytes
- ``events_from_wire(chunks)``: the decoded stream payloads back to events
- ``error_body(status, message, type)``: the format's error shape
"""

from __future__ import annotations


class WireError(ValueError):
    """A request body that is not valid for its format (answered with HTTP 400)."""


class Untranslatable(WireError):
    """A valid request the internal type cannot carry (``n`` > 1, image parts ...).

    Pass-through forwards such a body untouched; only a backend that needs the
    translation refuses it (HTTP 400).
    """

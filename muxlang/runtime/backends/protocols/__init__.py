"""Wire protocols of HTTP backends: one adapter module each.

An :class:`Adapter` turns a :class:`~muxlang.llm.ChatRequest` into the protocol's
URL, headers and JSON body, and the protocol's answers (whole or streamed) back
into :class:`~muxlang.llm.ChatResponse` / :data:`~muxlang.llm.StreamEvent`. Adapters
never touch the network: :mod:`muxlang.runtime.backends.http` does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from muxlang.llm import StreamEvent
from muxlang.runtime.backends.protocols.common import (
    Adapter,
    Decoder,
    MalformedResponse,
    StreamError,
)

#: what a well-typed JSON value of the wrong shape makes an adapter raise
#: what a parser of upstream data may raise on an answer of the wrong shape; a
#: RecursionError is an answer nested absurdly deep (JSON 100,000 levels down):
#: a malformed answer like any other, so a fallback role tries its next backend
_SHAPE_ERRORS = (
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ValueError,
    OverflowError,
    RecursionError,
)


@functools.cache
def adapter_for(protocol: str) -> Adapter:
    """The adapter of a protocol name (``openai``, ``anthropic``, ``gemini``, ``ollama``).

    Its ``parse`` and decoders raise only :class:`MalformedResponse` (and
    :class:`StreamError`) whatever JSON the server sent: a value of the wrong type
    anywhere (``"choices": 1``) is a malformed answer, never a ``TypeError``.
    """
    if protocol == "anthropic":
        from muxlang.runtime.backends.protocols import anthropic as module
    elif protocol == "gemini":
        from muxlang.runtime.backends.protocols import gemini as module  # type: ignore[no-redef]
    elif protocol == "ollama":
        from muxlang.runtime.backends.protocols import ollama as module  # type: ignore[no-redef]
    else:
        from muxlang.runtime.backends.protocols import openai as module  # type: ignore[no-redef]
    adapter: Adapter = module.ADAPTER
    return dataclasses.replace(
        adapter, parse=_guarded(adapter.parse), decoder=_guarded_decoder(adapter.decoder)
    )


def _guarded(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def guarded(data: Any) -> Any:
        try:
            return parse(data)
        except MalformedResponse:
            raise
        except _SHAPE_ERRORS as exc:
            raise MalformedResponse(f"unexpected shape ({type(exc).__name__}: {exc})") from exc

    return guarded


class _GuardedDecoder:
    def __init__(self, inner: Decoder) -> None:
        self._inner = inner

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        try:
            return self._inner.feed(event, data)
        except (MalformedResponse, StreamError):
            raise
        except _SHAPE_ERRORS as exc:
            raise MalformedResponse(
                f"unexpected stream chunk ({type(exc).__name__}: {exc})", raw=data
            ) from exc

    def close(self) -> list[StreamEvent]:
        try:
            return self._inner.close()
        except (MalformedResponse, StreamError):
            raise
        except _SHAPE_ERRORS as exc:
            raise MalformedResponse(f"unexpected end of stream ({exc})") from exc


def _guarded_decoder(make: Callable[[], Decoder]) -> Callable[[], Decoder]:
    return lambda: _GuardedDecoder(make())


__all__ = ["Adapter", "Decoder", "MalformedResponse", "StreamError", "adapter_for"]

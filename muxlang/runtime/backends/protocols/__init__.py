"""Wire protocols of HTTP backends: one adapter module each.

An :class:`Adapter` turns a :class:`~muxlang.llm.ChatRequest` into the protocol's
URL, headers and JSON body, and the protocol's answers (whole or streamed) back
into :class:`~muxlang.llm.ChatResponse` / :data:`~muxlang.llm.StreamEvent`. Adapters
never touch the network: :mod:`muxlang.runtime.backends.http` does.
"""

from __future__ import annotations

from muxlang.runtime.backends.protocols.common import (
    Adapter,
    Decoder,
    MalformedResponse,
    StreamError,
)


def adapter_for(protocol: str) -> Adapter:
    """The adapter of a protocol name (``openai``, ``anthropic``, ``gemini``, ``ollama``)."""
    if protocol == "anthropic":
        from muxlang.runtime.backends.protocols import anthropic as module
    elif protocol == "gemini":
        from muxlang.runtime.backends.protocols import gemini as module  # type: ignore[no-redef]
    elif protocol == "ollama":
        from muxlang.runtime.backends.protocols import ollama as module  # type: ignore[no-redef]
    else:
        from muxlang.runtime.backends.protocols import openai as module  # type: ignore[no-redef]
    return module.ADAPTER


__all__ = ["Adapter", "Decoder", "MalformedResponse", "StreamError", "adapter_for"]

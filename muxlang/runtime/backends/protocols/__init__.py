"""Wire protocols of HTTP backends: one adapter module each.

An :class:`Adapter` turns a :class:`~muxlang.llm.ChatRequest` into the protocol's
URL, headers and JSON body, and the protocol's answers (whole or streamed) back
into :class:`~muxlang.llm.ChatResponse` / :data:`~muxlang.llm.StreamEvent`. Adapters
never touch the network: :mod:`muxlang.runtime.backends.http` does.

A new protocol is one module here (a subclass of :class:`Adapter` and its
instance ``ADAPTER``) plus one line in ``_MODULES``.
"""

from __future__ import annotations

import functools
import importlib

from muxlang.runtime.backends.protocols.common import (
    Adapter,
    Decoder,
    MalformedResponse,
    StreamError,
)

#: protocol name -> its module, imported when the protocol is first used (``validate``
#: never needs one)
_MODULES = {
    "anthropic": "muxlang.runtime.backends.protocols.anthropic",
    "gemini": "muxlang.runtime.backends.protocols.gemini",
    "ollama": "muxlang.runtime.backends.protocols.ollama",
    "openai": "muxlang.runtime.backends.protocols.openai",
}


@functools.cache
def adapter_for(protocol: str) -> Adapter:
    """The adapter of a protocol name (``openai``, ``anthropic``, ``gemini``, ``ollama``;
    any other name is ``openai``).

    Its ``parse`` and decoders raise only :class:`MalformedResponse` (and
    :class:`StreamError`) whatever JSON the server sent (see :class:`Adapter`).
    """
    module = importlib.import_module(_MODULES.get(protocol, _MODULES["openai"]))
    adapter = module.ADAPTER
    assert isinstance(adapter, Adapter)
    return adapter


__all__ = ["Adapter", "Decoder", "MalformedResponse", "StreamError", "adapter_for"]

"""The gateway's seams: what it needs from the backends layer and from pass-through.

In production these are :func:`muxlang.runtime.backends.with_retries` (so
``muxlang serve`` retries exactly like ``muxlang run``), the backends' Router,
and :class:`muxlang.serve.passthrough.Passthrough`; tests put stand-ins in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from muxlang.config.models import BackendConfig
from muxlang.llm import Backend

T = TypeVar("T")


class RetryFn(Protocol):
    """Runs ``call`` with the retry rules of SPEC section 6 for backend ``name``."""

    def __call__(
        self, name: str, config: BackendConfig, call: Callable[[], Awaitable[T]]
    ) -> Awaitable[T]: ...


class BackendSource(Protocol):
    """What the gateway needs from the backends' router."""

    def backend(self, name: str) -> Backend: ...


class Relay(Protocol):
    """Same-format pass-through to HTTP backends (``muxlang.serve.passthrough.Passthrough``)."""

    async def complete(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]: ...

    def stream(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]: ...


async def no_retry(name: str, config: BackendConfig, call: Callable[[], Awaitable[T]]) -> T:
    """A single attempt (tests that count upstream requests use it)."""
    return await call()


#: upstream response headers a client may read, relayed on pass-through answers
RELAYED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
RELAYED_NAMES = frozenset({"x-request-id", "request-id"})

#: where pass-through puts the relayed headers of the request being answered (the
#: gateway sets a fresh dict per request; tasks the request starts share it)
relayed_headers: ContextVar[dict[str, str] | None] = ContextVar("relayed_headers", default=None)


def keep_headers(headers: Mapping[str, str]) -> None:
    """Remember an upstream answer's request id and rate-limit headers for the client."""
    sink = relayed_headers.get()
    if sink is None:
        return
    sink.clear()
    for key, value in headers.items():
        name = key.lower()
        if name in RELAYED_NAMES or name.startswith(RELAYED_PREFIXES):
            sink[name] = value

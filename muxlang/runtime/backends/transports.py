"""How muxlang sends to an upstream over httpx, for the HTTP backends (:mod:`.http`)
and the gateway's pass-through alike: one rule each for pooling, proxies and sending.

- **Pools.** One httpx pool with many connections costs several ms of CPU per request
  at high concurrency; a few small ones (:data:`CONNECTIONS_PER_CLIENT` connections
  each), the least busy one used, cost far less (NOTES.md, docs/performance.md §4).
- **Proxies.** The environment's (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
  ``NO_PROXY``) as the standard library reads them, decided once per upstream URL.
- **Sending.** A request goes to the transport directly (``handle_async_request``,
  httpx's public transport API), not through ``AsyncClient.send``, whose layers (URL
  and header merging, auth and redirect flows, the cookie jar's urllib wrappers) cost
  ~0.1–0.15 ms of CPU per request and do nothing here. Cookies an upstream sets are
  still sent back, as a client's jar would.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

__all__ = [
    "CONNECTIONS_PER_CLIENT",
    "LeastBusy",
    "env_proxy",
    "new_transport",
    "send",
    "shared_ssl",
]

#: connections in one pool (an httpx client or transport)
CONNECTIONS_PER_CLIENT = 10
#: pools one upstream opens at most
MAX_POOLS = 32
LIMITS = httpx.Limits(
    max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
)


class _Closable(Protocol):
    async def aclose(self) -> None: ...


T = TypeVar("T", bound=_Closable)


class LeastBusy(Generic[T]):
    """A few bounded pools of one upstream (httpx clients or transports): a request
    takes an idle one, else the least busy one with room, else a new one (up to
    ``most``; past that, the least busy one)."""

    def __init__(self, make: Callable[[], T], *, most: int = MAX_POOLS) -> None:
        self._make = make
        self._most = most
        self._items: list[T] = []
        self._busy: list[int] = []
        self._idle: list[int] = []

    def acquire(self) -> int:
        """Index of the pool to use; :meth:`release` it when the request is done."""
        if self._idle:
            best = self._idle.pop()
            self._busy[best] = 1
            return best
        if self._items:
            best = min(range(len(self._busy)), key=self._busy.__getitem__)
            if self._busy[best] < CONNECTIONS_PER_CLIENT or len(self._items) >= self._most:
                self._busy[best] += 1
                return best
        self._items.append(self._make())
        self._busy.append(1)
        return len(self._items) - 1

    def __getitem__(self, index: int) -> T:
        return self._items[index]

    def release(self, index: int) -> None:
        self._busy[index] -= 1
        if not self._busy[index]:
            self._idle.append(index)

    def __len__(self) -> int:
        return len(self._items)

    async def aclose(self) -> None:
        items, self._items, self._busy, self._idle = self._items, [], [], []
        for item in items:
            await item.aclose()


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, or None (none named, or
    ``NO_PROXY`` covers the host)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


_ssl_context: ssl.SSLContext | None = None


def shared_ssl() -> ssl.SSLContext:
    """One TLS context for every pool: building one loads the CA bundle (~10 ms)."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


def new_transport(url: str) -> httpx.AsyncHTTPTransport:
    """A transport of :data:`CONNECTIONS_PER_CLIENT` connections to the upstream at
    ``url``, through the proxy :func:`env_proxy` names for it."""
    return httpx.AsyncHTTPTransport(verify=shared_ssl(), limits=LIMITS, proxy=env_proxy(url))


async def send(
    transport: httpx.AsyncBaseTransport, request: httpx.Request, cookies: httpx.Cookies
) -> httpx.Response:
    """``request``'s response (its body still to read), sent on ``transport`` with the
    ``cookies`` the upstream set so far, and keeping any it sets now."""
    if cookies:  # none unless an upstream set one
        cookies.set_cookie_header(request)
    response = await transport.handle_async_request(request)
    response.request = request
    if "set-cookie" in response.headers:
        cookies.extract_cookies(response)
    return response

"""A lean HTTP/1.1 client for one thing: POST a JSON body, read the whole answer.

Why: at 100 requests in flight, httpx on trio spends ~0.45 ms of CPU per request
even with one connection per client (its client, URL, cookie and pool layers
above h11), against ~0.1 ms for h11 on a trio stream; a for_each of 2,000 HTTP
queries then needs more CPU than its ideal wall time (docs/performance.md).
This module keeps the h11 part and drops the rest, for the common case only:

- ``http://`` and ``https://`` (TLS through :class:`trio.SSLStream`, the same
  SSL context as the httpx clients) with no proxy configured in the environment
  (``*_PROXY`` variables): otherwise callers use httpx;
- non-streaming requests (streams keep using httpx);
- keep-alive connections reused per origin; a connection is dropped when the
  server asked to close it, when it is idle but readable (the server closed
  it), and when a request on it was cancelled or failed half-way.

Failures raise the httpx exception a httpx client would have raised
(``ConnectTimeout``, ``ConnectError``, ``RemoteProtocolError``, ``ReadError``,
``WriteError``), so the caller translates both paths alike; the answer comes
back as an ``httpx.Response`` holding the body (a Content-Encoding is undone
by httpx when it is read, as on the httpx path).
"""

from __future__ import annotations

import json
import os
import select
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import h11
import httpx
import trio

__all__ = ["FastPool", "proxy_configured"]

_PROXY_VARS: Final = ("http_proxy", "https_proxy", "all_proxy")
_MAX_IDLE: Final = 512
_READ: Final = 65536


def proxy_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names a proxy (httpx with ``trust_env`` would use it)."""
    return any(environ.get(name) or environ.get(name.upper()) for name in _PROXY_VARS)


class _Connection:
    __slots__ = ("broken", "h11", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        #: a write failed: never reuse, whatever h11's state says
        self.broken = False

    def socket(self) -> Any:
        """The trio socket under the stream (under TLS too), or None."""
        stream: Any = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        return getattr(stream, "socket", None)

    def reusable_when_idle(self) -> bool:
        """An idle keep-alive connection is readable only when the server closed
        it (or sent something unasked): then it must not carry a request."""
        sock = self.socket()
        if sock is None or sock.fileno() < 0:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)


class FastPool:
    """Keep-alive HTTP/1.1 connections for any number of origins."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        max_connections: int = 320,
    ) -> None:
        #: requests in flight at once (each holds one connection); more wait their turn
        self._slots = trio.CapacityLimiter(max_connections)
        self._headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._names = {k.lower() for k, _ in self._headers}
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._urls: dict[str, tuple[tuple[str, str, int], bytes, bytes]] = {}
        self._closed = False
        #: connections opened so far (tests and benchmarks)
        self.opened = 0

    async def post_json(self, url: str, body: Any) -> httpx.Response:
        """POST ``body`` as JSON to ``url``; the answer, body read in full."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        return await self.post(url, data)

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST ``content`` to ``url`` with the pool's headers, ``headers`` replacing
        any of the same name; the answer, body read in full."""
        origin, target, host = self._parse(url)
        sent = [(b"host", host)]
        if headers:
            extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            names = {k for k, _ in extra}
            sent += [(k, v) for k, v in self._headers if k.lower() not in names]
            sent += extra
        else:
            names = set()
            sent += self._headers
        names |= self._names
        if b"content-type" not in names:
            sent.append((b"content-type", b"application/json"))
        if b"accept" not in names:
            sent.append((b"accept", b"*/*"))
        sent.append((b"content-length", str(len(content)).encode()))
        async with self._slots:
            return await self._request(origin, target, sent, content)

    async def _request(
        self,
        origin: tuple[str, str, int],
        target: bytes,
        sent: list[tuple[bytes, bytes]],
        content: bytes,
    ) -> httpx.Response:
        conn = await self._take(origin)
        if conn is None:
            conn = await self._connect(origin)
        done = False
        try:
            response = await self._exchange(conn, target, sent, content)
            done = True
        finally:
            if not done:  # cancelled or failed half-way: its state is unknown
                await trio.aclose_forcefully(conn.stream)
        await self._give_back(origin, conn)
        return response

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await trio.aclose_forcefully(conn.stream)

    # ------------------------------------------------------------------ internals

    def _parse(self, url: str) -> tuple[tuple[str, str, int], bytes, bytes]:
        found = self._urls.get(url)
        if found is None:
            parsed = httpx.URL(url)
            scheme = parsed.scheme
            port = parsed.port or (443 if scheme == "https" else 80)
            host = parsed.host
            netloc = parsed.netloc  # bytes: host[:port] as written, IDNA-encoded
            if len(self._urls) >= 64:
                self._urls.clear()
            found = self._urls[url] = ((scheme, host, port), parsed.raw_path, netloc)
        return found

    async def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        conns = self._idle.get(origin)
        while conns:
            conn = conns.pop()
            if conn.reusable_when_idle():
                return conn
            await trio.aclose_forcefully(conn.stream)
        return None

    async def _give_back(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        state = conn.h11
        done = state.our_state is h11.DONE and state.their_state is h11.DONE
        if done and not conn.broken and not self._closed:
            state.start_next_cycle()
            conns = self._idle.setdefault(origin, [])
            if len(conns) < _MAX_IDLE:
                conns.append(conn)
                return
        await trio.aclose_forcefully(conn.stream)

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        try:
            with trio.fail_after(self._connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
                try:
                    if scheme == "https":
                        context = self._ssl or ssl.create_default_context()
                        tls = trio.SSLStream(
                            stream, context, server_hostname=host, https_compatible=True
                        )
                        await tls.do_handshake()
                        stream = tls
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
        except trio.TooSlowError as exc:
            raise httpx.ConnectTimeout("timed out") from exc
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx.ConnectError(_connect_reason(exc)) from exc
        self.opened += 1
        return _Connection(stream)

    async def _exchange(
        self,
        conn: _Connection,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        data: bytes,
    ) -> httpx.Response:
        state = conn.h11
        out = state.send(h11.Request(method=b"POST", target=target, headers=headers))
        out += state.send(h11.Data(data=data)) + state.send(h11.EndOfMessage())
        write_error: httpx.WriteError | None = None
        try:
            await conn.stream.send_all(out)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            # a server may answer (413, 400) and close before reading the whole
            # body: its answer says more than the failed write, as with httpcore
            write_error = httpx.WriteError(str(exc) or "the connection was closed")
            conn.broken = True
        response: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            try:
                event = await _next_event(conn)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if response is None:
                    raise write_error or exc from None
                # the head arrived, the body did not: as with httpx, the failure
                # shows when the body is read ("dropped mid-answer")
                return _response(response, _Failing(exc))
            kind = type(event)
            if kind is h11.Response:
                response = event
            elif kind is h11.Data:
                chunks.append(event.data)
            elif kind is h11.EndOfMessage:
                break
        assert response is not None
        # a Content-Encoding is undone by httpx when the caller reads the body,
        # exactly as on the httpx path (none is asked for, so it is rare)
        return _response(response, httpx.ByteStream(b"".join(chunks)))


async def _next_event(conn: _Connection) -> Any:
    """The next h11 event of the answer (reading as needed), errors as httpx's."""
    state = conn.h11
    while True:
        try:
            event = state.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        if event is h11.NEED_DATA:
            try:
                received = await conn.stream.receive_some(_READ)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise httpx.ReadError(str(exc) or "the connection was closed") from exc
            if not received and state.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            state.receive_data(bytes(received))
            continue
        if type(event) is h11.InformationalResponse:
            continue
        if type(event) is h11.ConnectionClosed:
            raise httpx.RemoteProtocolError("peer closed connection mid-answer")
        return event


def _response(head: h11.Response, stream: httpx.AsyncByteStream) -> httpx.Response:
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
    return httpx.Response(head.status_code, headers=pairs, stream=stream)


class _Failing(httpx.AsyncByteStream):
    """A body whose reading fails the way the connection did."""

    def __init__(self, exc: Exception) -> None:
        self._exc = exc

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        raise self._exc


def _connect_reason(exc: BaseException) -> str:
    """The most telling reason a connection failed: trio wraps the attempts'
    errors in one group; a single attempt's own message says more."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
        inner = cause.exceptions[0]
        if isinstance(inner, OSError) and inner.strerror:
            return f"{exc} ({inner.strerror})"
    return str(exc) or type(exc).__name__

"""HTTP backends over long-lived ``httpx.AsyncClient``s: the one boundary to httpx.

Every httpx exception is translated here into a :class:`~muxlang.llm.BackendError`
of the right :class:`~muxlang.llm.ErrorKind`. One attempt per call: retries and
roles are layered on top (:mod:`.retry`, :mod:`.router`).

Pools, proxies and sending follow :mod:`.transports`, as the gateway's pass-through
does: a few small clients per backend, the least busy one used, and each request
handed to the client's transport directly with the client's headers and timeouts.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from muxlang.llm import (
    BackendError,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    StreamEvent,
)
from muxlang.runtime import trace
from muxlang.runtime.backends import sse
from muxlang.runtime.backends.base import (
    Prepared,
    PreparedBackend,
    Probe,
    channel_stream,
    events_of,
    parse_retry_after,
)
from muxlang.runtime.backends.bounded import over_limit, read_bounded
from muxlang.runtime.backends.httperrors import Phase, reason, transport_error
from muxlang.runtime.backends.protocols import Adapter, MalformedResponse, StreamError, adapter_for
from muxlang.runtime.backends.protocols.common import model_of
from muxlang.runtime.backends.transports import (
    CONNECTIONS_PER_CLIENT,
    LIMITS,
    LeastBusy,
    new_transport,
    send,
)

log = logging.getLogger("muxlang.backends")

__all__ = ["CONNECTIONS_PER_CLIENT", "HttpBackend", "Phase", "transport_error"]

#: seconds allowed to open a connection (at most the backend's own timeout)
CONNECT_TIMEOUT = 10.0
_ERROR_SNIPPET = 300


class HttpBackend(PreparedBackend):
    """One HTTP backend (``command`` is a base URL) speaking one protocol."""

    def __init__(
        self,
        prepared: Prepared,
        *,
        nursery: trio.Nursery,
        transport: httpx.AsyncBaseTransport | None = None,
        hide_urls: bool = False,
    ) -> None:
        super().__init__(prepared, nursery)
        #: messages name the backend instead of its URL (the gateway's clients must
        #: never learn internal upstream addresses)
        self._hide_urls = hide_urls
        self._transport = transport
        self.protocol = prepared.raw.protocol
        self._adapter: Adapter = adapter_for(self.protocol)
        self._pool: LeastBusy[httpx.AsyncClient] = LeastBusy(self._new_client)
        self._urls: dict[str, httpx.URL] = {}
        #: the transport each client sends through directly
        self._direct: dict[httpx.AsyncClient, httpx.AsyncBaseTransport] = {}
        #: what ``AsyncClient.build_request`` would add: its headers and its timeouts
        self._headers: httpx.Headers | None = None
        self._timeouts: dict[str, float | None] = {}

    def __repr__(self) -> str:
        return f"HttpBackend(name={self.name!r}, protocol={self.protocol!r})"

    # ------------------------------------------------------------------ plumbing

    def _new_client(self) -> httpx.AsyncClient:
        config = self._prepared.config
        assert config is not None
        headers = {"User-Agent": "muxlang", **self._adapter.auth(config.api_key), **config.headers}
        timeout = httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT, self.timeout))
        transport = (
            self._transport if self._transport is not None else new_transport(config.command)
        )
        # trust_env off: the proxy is the transport's, chosen by the one rule of
        # transports.env_proxy (a client would pick its own for `doctor`'s probe)
        client = httpx.AsyncClient(
            transport=transport, headers=headers, timeout=timeout, limits=LIMITS, trust_env=False
        )
        self._direct[client] = transport
        self._headers = client.headers
        self._timeouts = timeout.as_dict()
        return client

    async def aclose(self) -> None:
        self._direct.clear()
        await self._pool.aclose()

    @property
    def clients(self) -> int:
        """How many clients this backend opened (for tests and benchmarks)."""
        return len(self._pool)

    def _error(self, kind: ErrorKind, message: str, **kw: Any) -> BackendError:
        return BackendError(self.name, kind, self._prepared.redact(message), **kw)

    def _where(self, url: str) -> str:
        """The URL for messages: no query string, no user info (or only the backend's
        name, when URLs are hidden)."""
        if self._hide_urls:
            return f"backend `{self.name}`"
        parsed = httpx.URL(url)
        return str(parsed.copy_with(query=None, userinfo=b""))

    async def probe(self, timeout: float = 3.0) -> Probe:
        """A real check for ``doctor``: the server answers an authenticated GET of its
        model list within ``timeout`` and does not reject the key (401/403)."""
        found = self.availability()
        if not found.ok:
            return Probe(False, problems=(found.reason,))
        config = self._prepared.config
        assert config is not None
        url = self._adapter.models_url(config.command)
        where = self._where(url)
        index = self._pool.acquire()
        try:
            with trio.move_on_after(timeout) as scope:
                try:
                    response = await self._pool[index].get(url)
                except httpx.TimeoutException:
                    scope.cancel()
                    response = None
                except httpx.HTTPError as exc:
                    problem = f"backend `{self.name}`: cannot reach {where}: {reason(exc)}"
                    return Probe(False, problems=(self._prepared.redact(problem),))
        finally:
            self._pool.release(index)
        if response is None or scope.cancelled_caught:
            problem = f"backend `{self.name}`: no answer from {where} within {timeout:g} s"
            return Probe(False, problems=(problem,))
        status = response.status_code
        if status in (401, 403):
            message = self._server_message(response.content)
            problem = f"backend `{self.name}`: {where} rejected the API key (HTTP {status}" + (
                f": {message})" if message else ")"
            )
            return Probe(False, problems=(self._prepared.redact(problem),))
        if 200 <= status < 300:
            detail = "reachable, key accepted" if config.api_key else "reachable"
        else:
            detail = f"reachable (HTTP {status} for the model list)"
        return Probe(True, detail=detail)

    # ------------------------------------------------------------------ calls

    def _request_parts(self, request: ChatRequest, stream: bool) -> tuple[str, dict[str, Any]]:
        config = self._prepared.usable()
        url = self._adapter.url(config.command, model_of(request, config), stream)
        body = self._adapter.body(request, config, stream)
        return url, body

    @asynccontextmanager
    async def _exchange(
        self, url: str, body: dict[str, Any]
    ) -> AsyncIterator[tuple[httpx.Response, trio.CancelScope]]:
        """One request on the least busy client: its 2xx response (any other status
        raised as its error), and the scope that gives it ``timeout`` seconds (a
        stream lifts that deadline once it flows). Afterwards the response is
        closed, the client released, and a request out of time raised as a timeout."""
        index = self._pool.acquire()
        trace.outside()
        try:
            with trio.move_on_after(self.timeout) as scope:
                response = await self._send(index, url, body)
                try:
                    await self._check(response, url)
                    yield response, scope
                finally:
                    await response.aclose()
            if scope.cancelled_caught:
                raise self._timeout(url)
        finally:
            self._pool.release(index)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        url, body = self._request_parts(request, stream=False)
        async with self._exchange(url, body) as (response, _):
            raw = await self._read(response, url)
        answer = self._parse(raw, response, url)
        return ChatResponse(
            text=answer.text,
            tool_calls=answer.tool_calls,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            model=answer.model,
            backend=self.name,
        )

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        url, body = self._request_parts(request, stream=True)

        async def produce(emit: Callable[[StreamEvent], Any]) -> None:
            async with self._exchange(url, body) as (response, scope):
                if self._whole_answer(response):
                    # a server that answered a stream request with the whole JSON
                    # answer: relayed as the stream it stands for
                    answer = self._parse(await self._read(response, url), response, url)
                    for event in events_of(answer):
                        await emit(event)
                    return
                self._check_stream_type(response, url)
                scope.deadline = math.inf
                await self._pump(response, url, emit)

        return channel_stream(self._nursery, self.name, produce)

    # ------------------------------------------------------------------ httpx boundary

    def _timeout(self, url: str) -> BackendError:
        return self._error(
            ErrorKind.TIMEOUT, f"no answer from {self._where(url)} within {self.timeout:g} s"
        )

    async def _send(self, index: int, url: str, body: dict[str, Any]) -> httpx.Response:
        if log.isEnabledFor(logging.DEBUG):  # _where parses the URL: not on every request
            log.debug("backend %s: POST %s", self.name, self._where(url))
        try:
            client = self._pool[index]
            parsed = self._urls.get(url)
            if parsed is None:  # parsed once per distinct URL, not on every request
                if len(self._urls) >= 64:  # the model is in gemini URLs: keep it bounded
                    self._urls.clear()
                parsed = self._urls[url] = httpx.URL(url)
            # what ``client.send(client.build_request(...))`` does, less what does
            # nothing here: the same request (headers, JSON body, timeouts)
            request = httpx.Request(
                "POST",
                parsed,
                headers=self._headers,
                json=body,
                extensions={"timeout": self._timeouts},
            )
            return await send(self._direct[client], request, client.cookies)
        except httpx.HTTPError as exc:
            raise self._translate(exc, url, "send") from exc

    async def _read(self, response: httpx.Response, url: str) -> bytes:
        """The whole body, decoded, but never more than ``[defaults] max_output``."""
        try:
            body = await read_bounded(response)
        except httpx.HTTPError as exc:
            raise self._translate(exc, url, "read") from exc
        if body is None:
            raise self._error(
                ErrorKind.SERVER,
                f"the answer from {self._where(url)} is {over_limit()}",
                status=response.status_code,
            )
        return body

    def _translate(self, exc: httpx.HTTPError, url: str, phase: Phase) -> BackendError:
        error = transport_error(self.name, exc, self._where(url), self.timeout, phase)
        error.message = self._prepared.redact(error.message)
        return error

    async def _check(self, response: httpx.Response, url: str) -> None:
        """Raise the classified error for a non-2xx status."""
        status = response.status_code
        if 200 <= status < 300:
            return
        raw = await self._read(response, url)
        message = self._server_message(raw)
        where = self._where(url)
        text = f"HTTP {status} from {where}" + (f": {message}" if message else "")
        if status == 429:
            retry_after = parse_retry_after(response.headers)
            raise self._error(ErrorKind.RATE_LIMIT, text, status=status, retry_after=retry_after)
        if status == 408:
            raise self._error(ErrorKind.TIMEOUT, text, status=status)
        if status >= 500:
            retry_after = parse_retry_after(response.headers)
            raise self._error(ErrorKind.SERVER, text, status=status, retry_after=retry_after)
        raise self._error(ErrorKind.CLIENT, text, status=status)

    def _server_message(self, raw: bytes) -> str:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
            data = None
        message = self._adapter.error_message(data) if data is not None else None
        if message is None:
            text = raw.decode("utf-8", "replace").strip()
            if text.startswith("<"):  # an HTML error page says nothing useful
                return ""
            message = text
        # redacted before it is cut: a key echoed late in a long body would otherwise
        # be cut in two, and its first half no longer matches the secret
        return self._prepared.redact_cut(" ".join(message.split()), _ERROR_SNIPPET)

    def _decode_json(self, raw: bytes, response: httpx.Response, url: str) -> Any:
        ctype = response.headers.get("content-type", "")
        if "json" not in ctype.lower():
            shown = ctype.split(";")[0] or "none"
            raise self._error(
                ErrorKind.SERVER,
                f"unexpected content type {shown} from {self._where(url)} (expected JSON)",
                status=response.status_code,
            )
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise self._error(
                ErrorKind.SERVER, f"malformed JSON from {self._where(url)}: {exc}"
            ) from exc
        except RecursionError:  # a normal backend error: a fallback role goes on
            raise self._error(
                ErrorKind.SERVER, f"malformed JSON from {self._where(url)}: nested too deeply"
            ) from None

    def _parse(self, raw: bytes, response: httpx.Response, url: str) -> ChatResponse:
        data = self._decode_json(raw, response, url)
        try:
            answer = self._adapter.parse(data)
        except MalformedResponse as exc:
            where = self._where(url)
            raise self._error(ErrorKind.SERVER, f"malformed answer from {where}: {exc}") from exc
        assert isinstance(answer, ChatResponse)
        return answer

    def _whole_answer(self, response: httpx.Response) -> bool:
        """Whether an SSE protocol's server sent plain JSON instead of a stream."""
        if self._adapter.stream_format != "sse":
            return False
        return "json" in response.headers.get("content-type", "").lower()

    def _check_stream_type(self, response: httpx.Response, url: str) -> None:
        ctype = response.headers.get("content-type", "").lower()
        wanted = "event-stream" if self._adapter.stream_format == "sse" else "json"
        if wanted not in ctype:
            shown = ctype.split(";")[0] or "none"
            raise self._error(
                ErrorKind.SERVER,
                f"unexpected content type {shown} from {self._where(url)} (expected a stream)",
            )

    async def _pump(
        self, response: httpx.Response, url: str, emit: Callable[[StreamEvent], Any]
    ) -> None:
        decoder = self._adapter.decoder()
        events = sse.Decoder() if self._adapter.stream_format == "sse" else None
        try:
            async for line in _lines(response, self.timeout):
                if events is None:
                    if line.strip():
                        for item in decoder.feed(None, line):
                            await emit(item)
                    continue
                found = events.line(line)
                if found is not None:
                    for item in decoder.feed(*found):
                        await emit(item)
            found = events.close() if events is not None else None
            if found is not None:
                for item in decoder.feed(*found):
                    await emit(item)
            for item in decoder.close():
                await emit(item)
        except _IdleTimeout:
            raise self._error(
                ErrorKind.TIMEOUT,
                f"the stream from {self._where(url)} stalled for {self.timeout:g} s",
            ) from None
        except StreamError as exc:
            raise self._error(ErrorKind.SERVER, f"error in the stream: {exc}") from exc
        except MalformedResponse as exc:
            raise self._error(
                ErrorKind.SERVER,
                f"malformed stream from {self._where(url)}: "
                + exc.detail(self._prepared.redact_cut),  # redacted, then cut
            ) from exc
        except httpx.HTTPError as exc:
            raise self._translate(exc, url, "stream") from exc


class _IdleTimeout(Exception):
    pass


async def _lines(response: httpx.Response, idle: float) -> AsyncIterator[str]:
    """Lines of the body, each within ``idle`` seconds of the previous one."""
    iterator = response.aiter_lines().__aiter__()
    while True:
        with trio.move_on_after(idle) as scope:
            try:
                line = await iterator.__anext__()
            except StopAsyncIteration:
                return
        if scope.cancelled_caught:
            raise _IdleTimeout
        yield line

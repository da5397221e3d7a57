"""Pass-through: an OpenAI client to an openai backend, an Anthropic client to an anthropic one.

When the client's format is the upstream's protocol there is nothing to
translate: the client's body goes upstream untouched except ``model`` (the
backend's configured model replaces the muxlang role/backend name), and the
upstream's answer — a JSON body or SSE bytes — is relayed as it arrives.
This module is the gateway's one boundary to httpx: its exceptions become
:class:`~muxlang.llm.BackendError` here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import field
from typing import Any

import httpx

from muxlang._frozen import frozen
from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig
from muxlang.llm import BackendError, ErrorKind, Finish, FinishReason, TextDelta, ToolCallDelta
from muxlang.runtime.backends import (
    LeastBusy,
    Phase,
    new_transport,
    over_limit,
    parse_retry_after,
    read_bounded,
    redact,
    send,
    sse,
    transport_error,
)
from muxlang.runtime.backends.protocols import adapter_for
from muxlang.serve.formats import anthropic, openai
from muxlang.serve.upstream import keep_headers

ANTHROPIC_VERSION = "2023-06-01"
_FORWARDED = ("anthropic-version", "anthropic-beta", "openai-organization", "openai-project")
#: the headers an ``httpx.AsyncClient`` sent by default, which upstreams saw before the
#: pass-through sent to transports directly (``accept-encoding``: never compressed)
_CLIENT_DEFAULTS = {
    "accept": "*/*",
    "accept-encoding": "identity",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}


def error_message(raw: bytes) -> str:
    """The server's own error message from an openai/anthropic/other error body."""
    try:
        data = json.loads(raw)
    except ValueError:
        text = raw.decode(errors="replace").strip()
        return text[:500] or "no error message"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return json.dumps(data)[:500]


class UpstreamError(BackendError):
    """An upstream's non-2xx answer on pass-through, with its own body and content type.

    When it is a request's final error and a 4xx, the gateway relays that body and
    status to the client as they are (secrets redacted), since client and upstream
    speak the same protocol.
    """

    def __init__(
        self,
        backend: str,
        kind: ErrorKind,
        message: str,
        *,
        status: int,
        retry_after: float | None,
        body: bytes,
        content_type: str,
    ) -> None:
        super().__init__(backend, kind, message, status=status, retry_after=retry_after)
        self.body = body
        self.content_type = content_type


def http_error(
    name: str,
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    secrets: Iterable[str] = (),
) -> UpstreamError:
    """Classify an upstream's non-2xx answer (SPEC section 6); ``secrets`` are redacted
    from the message (the caller redacts the relayed body)."""
    if status == 429:
        kind = ErrorKind.RATE_LIMIT
    elif status == 408:
        kind = ErrorKind.TIMEOUT
    elif status >= 500:
        kind = ErrorKind.SERVER
    else:
        kind = ErrorKind.CLIENT
    return UpstreamError(
        name,
        kind,
        redact(f"HTTP {status}: {error_message(raw)}", secrets),
        status=status,
        retry_after=parse_retry_after(headers),
        body=raw,
        content_type=headers.get("content-type", "application/json"),
    )


def _transport_error(name: str, exc: httpx.HTTPError, timeout: float, phase: Phase) -> BackendError:
    return transport_error(name, exc, f"backend `{name}`", timeout, phase)


def _check_events(name: str, events: bytes) -> None:
    """Raise a SERVER error when an event's data is not JSON (nor ``[DONE]``): a
    client must never get bytes its SDK cannot parse; before the first event this
    is an ordinary upstream failure (fallback), later an error in the stream."""
    for _, data in sse.decode(events):
        data = data.strip()
        if not data or data == "[DONE]":
            continue
        try:
            json.loads(data)
        except ValueError:
            raise BackendError(
                name, ErrorKind.SERVER, f"malformed event stream (not JSON: {data[:80]!r})"
            ) from None


def _as_stream(name: str, fmt: str, body: Mapping[str, Any], raw: bytes) -> bytes:
    """An upstream's whole JSON answer as the event stream the client asked for."""
    try:  # read as the backend of that protocol reads it (one codec per format)
        answer = adapter_for(fmt).parse(json.loads(raw))
    except (ValueError, RecursionError) as exc:  # MalformedResponse is a ValueError
        raise BackendError(name, ErrorKind.SERVER, f"malformed answer: {exc}") from None
    model = str(body.get("model") or "")
    options = body.get("stream_options")
    usage = isinstance(options, Mapping) and options.get("include_usage") is True
    encoder = (
        openai.StreamEncoder(model, include_usage=usage)
        if fmt == "openai"
        else anthropic.StreamEncoder(model)
    )
    out = encoder.start()
    if answer.text:
        out += encoder.event(TextDelta(answer.text))
    for i, call in enumerate(answer.tool_calls):
        out += encoder.event(ToolCallDelta(i, id=call.id, name=call.name, arguments=call.arguments))
    reason: FinishReason | None = "tool_calls" if answer.tool_calls else answer.finish_reason
    return out + encoder.event(Finish(reason, answer.usage)) + encoder.end()


@frozen
class _Ready:
    """A backend as the pass-through sends to it: the expanded config (the environment
    is read once), its transports and what every request to it carries."""

    config: BackendConfig
    transports: LeastBusy[httpx.AsyncBaseTransport]
    timeout: dict[str, float | None]
    secrets: list[str]
    #: the upstream URL per client format, parsed once (httpx parses a str every time)
    urls: dict[str, httpx.URL] = field(default_factory=dict)
    #: cookies the upstream set, sent back as the httpx client's jar did
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)

    def url(self, fmt: str) -> httpx.URL:
        url = self.urls.get(fmt)
        if url is None:
            base = self.config.command.rstrip("/")
            if fmt == "openai":
                text = base + "/chat/completions"
            else:  # a base URL given with its /v1 (as for `muxlang run`) is not doubled
                text = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
            url = self.urls[fmt] = httpx.URL(text)
        return url


class Passthrough:
    """Relays same-format requests to HTTP backends.

    Requests go straight to httpx transports (``handle_async_request``, httpx's
    public transport API), not through an ``AsyncClient``: the client's layers
    (URL and header merging, auth and redirect flows, the cookie jar's urllib
    wrappers on every request, event hooks) cost ~0.15 ms of CPU per request
    (docs/performance.md §5). What the
    client added is written here: its default headers, the timeouts and the cookies
    an upstream sets.
    """

    def __init__(
        self,
        config: ResolvedConfig,
        expand: Any,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._expand = expand  # (name, BackendConfig) -> BackendConfig, raises BackendError
        self._transport = transport
        self._ready: dict[str, _Ready] = {}

    async def aclose(self) -> None:
        ready, self._ready = self._ready, {}
        if self._transport is not None:
            if ready:
                await self._transport.aclose()
            return
        for backend in ready.values():
            await backend.transports.aclose()

    def _new_transport(self, cfg: BackendConfig) -> httpx.AsyncBaseTransport:
        if self._transport is not None:
            return self._transport
        return new_transport(cfg.command)

    def _backend(self, name: str) -> _Ready:
        ready = self._ready.get(name)
        if ready is None:
            cfg: BackendConfig = self._expand(name, self.config.backends[name])
            timeout = httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 30.0))
            ready = self._ready[name] = _Ready(
                cfg,
                LeastBusy(lambda: self._new_transport(cfg)),
                timeout.as_dict(),
                [s for s in (cfg.api_key, *cfg.headers.values()) if s],
            )
        return ready

    def _prepare(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> tuple[_Ready, httpx.Request]:
        ready = self._backend(name)
        cfg = ready.config
        headers = {**_CLIENT_DEFAULTS, "content-type": "application/json"}
        for key in _FORWARDED:
            if key in client_headers:
                headers[key] = client_headers[key]
        if fmt == "openai":
            if cfg.api_key:
                headers["authorization"] = f"Bearer {cfg.api_key}"
        else:
            headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
            if cfg.api_key:
                headers["x-api-key"] = cfg.api_key
        headers.update({k.lower(): v for k, v in cfg.headers.items()})
        out = dict(body)
        if cfg.model:
            out["model"] = cfg.model
        data = json.dumps(out).encode()
        extensions = {"timeout": ready.timeout}
        request = httpx.Request(
            "POST", ready.url(fmt), headers=headers, content=data, extensions=extensions
        )
        return ready, request

    @asynccontextmanager
    async def _send(self, ready: _Ready, request: httpx.Request) -> AsyncIterator[httpx.Response]:
        """The upstream's response to ``request`` (its body still to read), through an
        idle transport of the backend; the connection is released at the block's end."""
        transports = ready.transports
        slot = transports.acquire()
        try:
            response = await send(transports[slot], request, ready.cookies)
            try:
                yield response
            finally:
                await response.aclose()
        finally:
            transports.release(slot)

    async def complete(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        """One upstream call; ``(status, content type, body)`` of a 2xx answer."""
        ready, request = self._prepare(name, fmt, body, client_headers)
        try:
            async with self._send(ready, request) as response:
                bounded = await read_bounded(response)
        except httpx.HTTPError as exc:
            raise _transport_error(name, exc, ready.config.timeout, "send") from None
        if bounded is None:
            raise BackendError(name, ErrorKind.SERVER, f"the answer is {over_limit()}")
        content = bounded
        keep_headers(response.headers)
        if not 200 <= response.status_code < 300:
            raise http_error(name, response.status_code, response.headers, content, ready.secrets)
        content_type = response.headers.get("content-type", "application/json")
        if "json" not in content_type:
            raise BackendError(name, ErrorKind.SERVER, f"unexpected content type {content_type}")
        return response.status_code, content_type, content

    async def stream(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        """The upstream's SSE bytes as they arrive; errors before the first byte are raised."""
        ready, request = self._prepare(name, fmt, body, client_headers)
        try:
            async with self._send(ready, request) as response:
                keep_headers(response.headers)
                if not 200 <= response.status_code < 300:
                    raw = await read_bounded(response) or b""
                    raise http_error(
                        name, response.status_code, response.headers, raw, ready.secrets
                    )
                content_type = response.headers.get("content-type", "")
                if "json" in content_type:
                    # the whole answer to a streaming request: relayed as its stream
                    whole = await read_bounded(response)
                    if whole is None:
                        raise BackendError(name, ErrorKind.SERVER, f"the answer is {over_limit()}")
                    yield _as_stream(name, fmt, body, whole)
                    return
                if "text/event-stream" not in content_type:
                    raise BackendError(
                        name, ErrorKind.SERVER, f"expected an event stream, got {content_type!r}"
                    )
                # relay whole events only, so a dropped connection never leaves half an
                # event in front of the error event the gateway writes after it
                pending = b""
                async for chunk in response.aiter_bytes():
                    pending += chunk
                    end = sse.complete_length(pending)
                    if end:
                        _check_events(name, pending[:end])
                        yield pending[:end]
                        pending = pending[end:]
                if pending:
                    _check_events(name, pending)
                    yield pending
        except httpx.HTTPError as exc:
            raise _transport_error(name, exc, ready.config.timeout, "stream") from None

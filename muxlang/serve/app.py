"""The gateway's ASGI application: routes, auth, body limits, error shapes, SSE writing.

Small and hand-written (no web framework). The endpoints and the client format
each path implies are listed in :mod:`muxlang.serve.routes` (OpenAI Chat
Completions and Responses, Anthropic Messages and count_tokens, Gemini, Ollama,
the model lists, ``/health``, ``/metrics``).

Errors use the shape of the client's format (each format's ``error_body``):
on paths that imply none, Anthropic's when the request carries
``anthropic-version``, else OpenAI's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import trio

from muxlang._frozen import frozen
from muxlang.serve.formats import WireError, anthropic, ollama, openai
from muxlang.serve.formats.registry import FORMATS
from muxlang.serve.gateway import Format, Gateway, Streamed, Whole
from muxlang.serve.limits import ClientKey, KeyRing, cost_of, refusal_message
from muxlang.serve.meter import Meter, metering
from muxlang.serve.metrics import CONTENT_TYPE, MeteredState, Metrics
from muxlang.serve.passthrough import UpstreamError
from muxlang.serve.routes import route_of
from muxlang.serve.routing import Failed, RouteError, UnknownModel, retry_after_header
from muxlang.serve.state import MemoryState, State

log = logging.getLogger("muxlang.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def _loopback_host(host: str) -> bool:
    """``Host`` names this machine's loopback (any port, any 127.x address)."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in _LOOPBACK_NAMES or name.startswith("127.") or name.endswith(".localhost")


def _relayable(exc: RouteError) -> UpstreamError | None:
    """The pass-through upstream 4xx that ended a request, when its body can be relayed
    as it is (a JSON object: the client's SDK reads it in its own error shape)."""
    if not isinstance(exc, Failed):
        return None
    last = exc.errors[-1]
    if not isinstance(last, UpstreamError) or not 400 <= (last.status or 0) < 500:
        return None
    try:
        parsed = json.loads(last.body)
    except ValueError:
        return None
    return last if isinstance(parsed, dict) else None


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: refused (never forwarded upstream)."""
    raise ValueError(f"{name} is not a JSON number")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


@frozen(slots=True)
class _Request:
    """A chat request as read: its client format, JSON body and headers, and where
    the client's later messages (its disconnect) arrive."""

    fmt: Format
    body: dict[str, Any]
    headers: Mapping[str, str]
    receive: Receive


class _Seen:
    """What the response of a request said: status and answering backend."""

    status: int = 0
    backend: str = "none"


class GatewayApp:
    """ASGI 3 application around a :class:`~muxlang.serve.gateway.Gateway`."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        api_keys: Iterable[str] = (),
        max_body_bytes: int = 10 * 1024 * 1024,
        secrets: Iterable[str] = (),
        loopback_only: bool = False,
        keys: KeyRing | None = None,
        state: State | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``keys`` (default: ``api_keys``, unlimited) identify clients and their limits,
        counted in ``state`` (default: in memory); ``metrics`` is served on /metrics."""
        self.gateway = gateway
        self.loopback_only = loopback_only
        self.api_keys = [k.encode() for k in api_keys if k]
        self.max_body_bytes = max_body_bytes
        # longest first, so a secret containing another is redacted whole
        self._secrets = sorted({s for s in (*secrets, *api_keys) if len(s) >= 4}, key=len)[::-1]
        self.keys = keys or KeyRing(tuple(ClientKey(None, k) for k in self.api_keys))
        self.metrics = metrics or Metrics()
        self.state: State = state or MeteredState(MemoryState(), self.metrics)

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        found = route_of(scope["path"])
        route = found.name if found is not None else None
        fmt: Format = "anthropic" if "anthropic-version" in headers else "openai"
        if found is not None and found.fmt is not None:
            fmt = found.fmt
        method = scope["method"]
        if self.loopback_only and not _loopback_host(headers.get("host", "")):
            # a web page that re-pointed its own name at 127.0.0.1 (DNS rebinding)
            await self._error(send, fmt, 403, "this gateway only answers requests for localhost")
            return
        if not self._authorized(headers):
            await self._error(send, fmt, 401, "missing or invalid API key")
            return
        if route is None:
            await self._error(send, fmt, 404, f"no such endpoint: {method} {scope['path']}")
            return
        if route == "health":
            await self._json(send, 200, {"status": "ok"})
            return
        if route == "metrics":
            if method != "GET":
                await self._error(send, fmt, 405, f"{method} is not allowed here; use GET")
                return
            await self._respond(send, 200, CONTENT_TYPE, await self._metrics_text())
            return
        if route in ("models", "model"):
            if method != "GET":
                await self._error(send, fmt, 405, f"{method} is not allowed here; use GET")
                return
            allowed = self.keys.identify(headers) if self.keys.required else None
            await self._models(send, fmt, scope["path"] if route == "model" else None, allowed)
            return
        if route == "tags":
            if method != "GET":
                await self._error(send, fmt, 405, f"{method} is not allowed here; use GET")
                return
            client = self.keys.identify(headers) if self.keys.required else None
            listed = [m for m in self.gateway.models() if client is None or client.allows(m["id"])]
            await self._json(send, 200, ollama.tags(listed))
            return
        if method != "POST":
            await self._error(send, fmt, 405, f"{method} is not allowed here; use POST")
            return
        if not _is_json(headers.get("content-type", "")):
            # also keeps browsers' simple cross-site form posts out
            await self._error(
                send, fmt, 415, "send the body as JSON (content-type: application/json)"
            )
            return
        try:
            raw = await self._read_body(receive, headers)
        except BodyTooLarge:
            await self._error(
                send, fmt, 413, f"request body larger than {self.max_body_bytes} bytes"
            )
            return
        except ClientGone:
            return
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except RecursionError:  # nested deeper than any real request
            await self._error(send, fmt, 400, "request body is not valid JSON: nested too deeply")
            return
        except ValueError as exc:
            await self._error(send, fmt, 400, f"request body is not valid JSON: {exc}")
            return
        if not isinstance(body, dict):
            await self._error(send, fmt, 400, "request body must be a JSON object")
            return
        if route == "count_tokens":
            await self._count_tokens(send, body, headers)
            return
        if found is not None and found.model is not None:  # Gemini names it in the path
            body = {**body, "model": found.model, "stream": found.stream}
        await self._chat(send, _Request(fmt, body, headers, receive))

    async def _count_tokens(
        self, send: Send, body: dict[str, Any], headers: Mapping[str, str]
    ) -> None:
        """Anthropic's count_tokens: a key limited to some models counts only theirs."""
        client = self.keys.identify(headers) if self.keys.required else None
        model = body.get("model")
        if client is not None and client.name is not None and not client.allows(str(model)):
            message = f"key `{client.name}` may not use model `{model}`"
            await self._error(send, "anthropic", 403, message)
            return
        try:
            counted = self.gateway.count_tokens(body)
        except WireError as exc:
            await self._error(send, "anthropic", 400, str(exc))
        except UnknownModel as exc:
            await self._unknown_model(send, "anthropic", exc)
        else:
            await self._json(send, 200, counted)

    # ------------------------------------------------------------------ pieces

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        return not self.keys.required or self.keys.identify(headers) is not None

    async def _read_body(self, receive: Receive, headers: Mapping[str, str]) -> bytes:
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise BodyTooLarge
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunks += message.get("body", b"")
            if len(chunks) > self.max_body_bytes:
                raise BodyTooLarge
            if not message.get("more_body", False):
                return bytes(chunks)

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _models(
        self, send: Send, fmt: Format, path: str | None, client: ClientKey | None = None
    ) -> None:
        models = self.gateway.models()
        if client is not None:
            models = [m for m in models if client.allows(m["id"])]
        if path is not None:
            wanted = path.rstrip("/").rsplit("/models/", 1)[-1]
            models = [m for m in models if m["id"] == wanted]
            if not models:
                await self._unknown_model(
                    send, fmt, UnknownModel(wanted, self.gateway.engine.names())
                )
                return
        listing = anthropic.models_listing if fmt == "anthropic" else openai.models_listing
        await self._json(send, 200, listing(models, path is not None))

    async def _chat(self, send: Send, request: _Request) -> None:
        """One chat request (any format) with its key's limits, usage and metrics."""
        client = self.keys.identify(request.headers) if self.keys.required else None
        asked = request.body.get("model")
        model = asked if isinstance(asked, str) and self._known(asked) else "unknown"
        started = trio.current_time()
        seen = _Seen()

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-muxlang-backend":
                        seen.backend = value.decode("latin-1")
            await send(message)

        with metering(client.limits if client is not None else None) as meter:
            try:
                if await self._within_limits(tracked, request.fmt, asked, client):
                    await self._answer(tracked, request)
            finally:
                spent = self._account(model, client, meter, seen, started)
                if spent is not None:  # a named key's tokens and cost, counted in the state
                    with trio.CancelScope(shield=True):
                        await self.state.add_usage(*spent)

    async def _metrics_text(self) -> bytes:
        """/metrics, with each backend's cooldown read now (shared: every replica's)."""
        for name in self.gateway.config.backends:
            left = await self.gateway.cooldowns.remaining(name)
            self.metrics.cooling.labels(name).set(left)
        return self.metrics.render()

    def _known(self, model: str) -> bool:
        config = self.gateway.config
        return model in config.backends or model in config.roles

    async def _within_limits(
        self, send: Send, fmt: Format, model: Any, client: ClientKey | None
    ) -> bool:
        """Whether ``client`` may ask for ``model`` now (else the 403 / 429 is sent)."""
        if client is None or client.name is None:
            return True
        if client.models is not None and not (isinstance(model, str) and client.allows(model)):
            # fail closed: a request whose model is not a name this key lists is refused
            allowed = ", ".join(sorted(client.models)) or "none"
            asked = f"model `{model}`" if isinstance(model, str) else "a request without `model`"
            await self._error(
                send, fmt, 403, f"key `{client.name}` may not use {asked}; it may use: {allowed}"
            )
            return False
        if not client.limits.any:
            return True
        refusal = await self.state.admit(client.name, client.limits)
        if refusal is None:
            return True
        await self._error(
            send,
            fmt,
            429,
            refusal_message(client, refusal),
            retry_after_header(refusal.retry_after),
        )
        return False

    def _account(
        self, model: str, client: ClientKey | None, meter: Meter, seen: _Seen, started: float
    ) -> tuple[str, int, float] | None:
        """After an answer: metrics; and the key's tokens and cost to count, if any."""
        status = seen.status or 499  # the client went away before an answer started
        self.metrics.answered(model, seen.backend, status, trio.current_time() - started)
        for backend, usage in meter.used:
            self.metrics.used(model, backend, usage)
        if client is None or client.name is None or not meter.used:
            return None
        backends = self.gateway.config.backends
        tokens = sum(u.input_tokens + u.output_tokens for _, u in meter.used)
        cost = sum(cost_of(backends.get(b), u) for b, u in meter.used)
        return client.name, tokens, cost

    async def _answer(self, send: Send, request: _Request) -> None:
        fmt, body, receive = request.fmt, request.body, request.receive
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            started = trio.current_time()
            try:
                answer = await self.gateway.answer(fmt, body, nursery, request.headers)
            except WireError as exc:
                await self._error(send, fmt, 400, str(exc))
            except UnknownModel as exc:
                await self._unknown_model(send, fmt, exc)
            except RouteError as exc:
                extra = retry_after_header(exc.retry_after) if exc.status == 429 else {}
                extra["x-muxlang-backend"] = exc.backend
                upstream = _relayable(exc)
                if upstream is not None:
                    await self._relay_error(send, upstream, extra)
                else:
                    await self._error(send, fmt, exc.status, exc.message, extra)
            except Exception:  # a bug: the client still gets an answer in its shape
                log.exception("internal error answering %s model=%s", fmt, body.get("model"))
                await self._error(send, fmt, 500, "internal error in the muxlang gateway")
            else:
                log.debug(
                    "%s model=%s -> %s (%s, first byte after %.0f ms)",
                    fmt,
                    body.get("model"),
                    answer.headers.get("x-muxlang-backend"),
                    "stream" if isinstance(answer, Streamed) else "whole",
                    (trio.current_time() - started) * 1000,
                )
                if isinstance(answer, Whole):
                    await self._respond(
                        send, answer.status, answer.content_type, answer.body, answer.headers
                    )
                else:
                    await self._stream(send, answer)
            nursery.cancel_scope.cancel()

    async def _stream(self, send: Send, answer: Streamed) -> None:
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **answer.headers}
        await self._start(send, 200, answer.content_type, headers)
        first = self._redact_bytes(answer.first)
        await send({"type": "http.response.body", "body": first, "more_body": True})
        try:
            async for chunk in answer.rest:
                if chunk:
                    chunk = self._redact_bytes(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            close = getattr(answer.rest, "aclose", None)
            if close is not None:
                await close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _redact_bytes(self, chunk: bytes) -> bytes:
        if not self._secrets:
            return chunk
        for secret in self._secrets:
            if secret.encode() in chunk:
                return self.redact(chunk.decode(errors="replace")).encode()
        return chunk

    async def _start(
        self, send: Send, status: int, content_type: str, headers: Mapping[str, str]
    ) -> None:
        raw = [(b"content-type", content_type.encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})

    async def _respond(
        self,
        send: Send,
        status: int,
        content_type: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        sized = {**(headers or {}), "content-length": str(len(body))}
        await self._start(send, status, content_type, sized)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _json(self, send: Send, status: int, data: Any) -> None:
        await self._respond(send, status, "application/json", json.dumps(data).encode())

    async def _unknown_model(self, send: Send, fmt: Format, exc: UnknownModel) -> None:
        """404 as each API says it: OpenAI's ``model_not_found`` (its own words), Anthropic's
        ``not_found_error`` (with the names muxlang knows)."""
        if fmt in ("openai", "responses"):
            body = json.dumps(openai.model_not_found(self.redact(exc.model))).encode()
            tag = {"x-muxlang-backend": "none"}
            await self._respond(send, 404, "application/json", body, tag)
        else:
            await self._error(send, fmt, 404, exc.message)

    async def _relay_error(
        self, send: Send, error: UpstreamError, headers: Mapping[str, str]
    ) -> None:
        """A pass-through upstream's own 4xx, status and body as it sent them."""
        status = error.status or 400
        if status == 429:
            log.warning("%s %s: %s", status, error.backend, error.message)
        tagged = {**headers, "x-muxlang-backend": error.backend}
        body = self._redact_bytes(error.body)
        await self._respond(send, status, error.content_type, body, tagged)

    async def _error(
        self,
        send: Send,
        fmt: Format,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = self.redact(message)
        if status >= 500 or status == 429:
            log.warning("%s %s", status, message)
        body = FORMATS[fmt].error_body(status, message)
        data = json.dumps(body).encode()
        # every answer names its backend; `none` when no backend was concerned
        tagged = {"x-muxlang-backend": "none", **(headers or {})}
        await self._respond(send, status, "application/json", data, tagged)

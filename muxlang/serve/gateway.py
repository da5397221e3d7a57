"""One gateway request, from a parsed client body to the bytes of its answer.

The ASGI layer (:mod:`muxlang.serve.app`) hands a client's JSON body and its
format here and gets back either a whole answer (:class:`Whole`) or a started
stream (:class:`Streamed`) whose first bytes are already known. Everything that
can still fall back happens before that: an error raised from
:meth:`Gateway.answer` is a :class:`~muxlang.serve.routing.RouteError` the ASGI
layer renders in the client's error shape; an error after the first bytes is
written into the stream in the client's format.

Each backend answer is produced by a *pump*: a task in the request's nursery
that iterates the backend's stream (or relays an upstream's bytes) into a
channel. The attempt returns when the pump's first item arrives, which is the
point of no return for fallback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import field, replace
from typing import Any

import trio

from muxlang._frozen import frozen
from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig
from muxlang.llm import (
    BackendError,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finish,
    TextDelta,
    Usage,
)
from muxlang.runtime.backends import (
    Cooldowns,
    CooldownStore,
    Engine,
    Routed,
    events_of,
    parallel_output,
)
from muxlang.serve.formats import Untranslatable, WireError
from muxlang.serve.formats.common import estimate_tokens
from muxlang.serve.formats.registry import FORMATS
from muxlang.serve.pump import END, Pump, ToolEnding, batch, discard_pump, start_pump
from muxlang.serve.routing import RouteError, UnknownModel, route_error, status_for
from muxlang.serve.upstream import BackendSource, Relay, RetryFn, no_retry, relayed_headers

log = logging.getLogger("muxlang.serve")

#: a client format's name (:data:`muxlang.serve.formats.registry.FORMATS`)
Format = str


@frozen
class Whole:
    """A complete answer."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    content_type: str = "application/json"


@frozen
class Streamed:
    """A started SSE answer: ``first`` is ready, ``rest`` yields the remaining bytes."""

    first: bytes
    rest: AsyncIterator[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"


Answer = Whole | Streamed


def _dump(data: Any) -> bytes:
    return json.dumps(data).encode()


def tool_choice_for(protocol: str | None, choice: Any) -> Any:
    """The protocol-neutral ``tool_choice`` in the wire form of ``protocol``.

    The backends' adapters copy ``ChatRequest.tool_choice`` into the body as it
    is, so the gateway writes it the way the chosen backend's protocol expects;
    protocols without one (gemini, ollama) and CLI backends get none.
    """
    if choice is None:
        return None
    named = choice.get("name") if isinstance(choice, Mapping) else None
    if protocol == "openai":
        return {"type": "function", "function": {"name": named}} if named else choice
    if protocol == "anthropic":
        if named:
            return {"type": "tool", "name": named}
        return {"type": {"required": "any"}.get(choice, choice)}
    return None


def for_backend(request: ChatRequest, config: BackendConfig) -> ChatRequest:
    """``request`` as backend ``config`` takes it (today: its ``tool_choice``, which is
    never sent without tools: Anthropic refuses that)."""
    if request.tool_choice is None:
        return request
    if not request.tools:
        return replace(request, tool_choice=None)
    protocol = config.protocol if config.is_http else None
    return replace(request, tool_choice=tool_choice_for(protocol, request.tool_choice))


class Gateway:
    """Answers chat requests in the openai and anthropic formats from roles and backends."""

    def __init__(
        self,
        config: ResolvedConfig,
        backends: BackendSource,
        *,
        retry: RetryFn = no_retry,
        passthrough: Relay | None = None,
        cooldown: float | None = None,
        state: CooldownStore | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        """``state`` keeps the cooldowns (``muxlang.serve.state``; default: this process's
        own, on trio's clock) and ``now`` is the clock its times are in."""
        self.config = config
        self.backends = backends
        self.retry = retry
        self.passthrough = passthrough
        seconds = float(config.serve.cooldown) if cooldown is None else cooldown
        if state is None:
            from muxlang.serve.state import MemoryState

            state, now = MemoryState(now=trio.current_time), trio.current_time
        self.cooldowns = Cooldowns(state, now or time.time, seconds=seconds)
        self.engine = Engine(
            config.roles, config.backends, self._why_unavailable, policy=self.cooldowns
        )

    # ------------------------------------------------------------------ models

    def _why_unavailable(self, name: str) -> str | None:
        cfg = self.config.backends[name]
        if not cfg.enabled:
            return "disabled"
        try:
            availability = self.backends.backend(name).availability()
        except BackendError as exc:
            return exc.message
        return None if availability.ok else availability.reason or "unavailable"

    def models(self) -> list[dict[str, Any]]:
        """Every role and backend, roles first, each with its kind and description (a
        name that is both is the backend, as everywhere)."""
        out: list[dict[str, Any]] = []
        for name, role in self.config.roles.items():
            if name in self.config.backends:
                continue
            out.append({"id": name, "kind": "role", "description": role.description or ""})
        for name, backend in self.config.backends.items():
            out.append({"id": name, "kind": "backend", "description": backend.model or ""})
        return out

    def count_tokens(self, body: Mapping[str, Any]) -> dict[str, int]:
        """Anthropic's ``count_tokens``: an estimate of the request's input tokens
        (:func:`~muxlang.serve.formats.common.estimate_tokens`); no backend is asked."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("`model` is required: name a muxlang role or backend")
        if self.engine.kind(model) is None:
            raise UnknownModel(model, self.engine.names())
        request = FORMATS["anthropic"].request_from_wire({"max_tokens": 1, **body})
        return {"input_tokens": estimate_tokens(request)}

    # ------------------------------------------------------------------ answering

    def _relayed(self, name: str, fmt: Format) -> bool:
        """Whether backend ``name`` gets a ``fmt`` client's body untouched (pass-through)."""
        cfg = self.config.backends[name]
        relays = self.passthrough is not None and FORMATS[fmt].relays
        return relays and cfg.is_http and cfg.protocol == fmt

    def _passes_through(self, target: str, fmt: Format, seen: tuple[str, ...] = ()) -> bool:
        """Whether some backend ``target`` can route to takes the body by pass-through."""
        if target in self.config.backends:
            return self._relayed(target, fmt)
        role = self.config.roles.get(target)
        if role is None or target in seen or role.execution == "parallel":
            return False  # a parallel role's answers are always translated
        return any(self._passes_through(e, fmt, (*seen, target)) for e in role.backends)

    async def answer(
        self,
        fmt: Format,
        body: Mapping[str, Any],
        nursery: trio.Nursery,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Answer one request; raises RouteError (or WireError) before the first byte.
        A pass-through answer carries the upstream's request id and rate-limit headers."""
        relayed: dict[str, str] = {}
        token = relayed_headers.set(relayed)
        try:
            answer = await self._answer(fmt, body, nursery, headers)
        finally:
            relayed_headers.reset(token)
        if relayed:
            return replace(answer, headers={**relayed, **answer.headers})
        return answer

    async def _answer(
        self,
        fmt: Format,
        body: Mapping[str, Any],
        nursery: trio.Nursery,
        headers: Mapping[str, str] | None,
    ) -> Answer:
        wire = FORMATS[fmt]
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RouteError(400, "`model` is required: name a muxlang role or backend")
        kind = self.engine.kind(model)
        if kind is None:
            raise UnknownModel(model, self.engine.names())
        # a valid body the internal type cannot carry (`n` > 1, images ...) is refused
        # only when no backend it can reach takes it untouched (pass-through)
        untranslatable: Untranslatable | None = None
        try:
            request = replace(wire.request_from_wire(body), model=None)
        except Untranslatable as exc:
            if not self._passes_through(model, fmt):
                raise
            untranslatable, request = exc, ChatRequest(messages=())
        stream = body.get("stream", wire.stream_default)
        if not isinstance(stream, bool):
            raise WireError("`stream` must be true or false")
        options = body.get("stream_options") or {}
        if not isinstance(options, Mapping):
            raise WireError("`stream_options` must be an object")
        include_usage = bool(options.get("include_usage"))
        if kind == "role" and self.config.roles[model].execution == "parallel":
            return await self._parallel(fmt, model, request, stream, include_usage)

        relay = self.passthrough
        sent = headers or {}

        def relayed(name: str) -> bool:
            return relay is not None and self._relayed(name, fmt)

        def translated(name: str, cfg: BackendConfig) -> ChatRequest:
            """The request for a backend that needs translation (a CLIENT error when the
            body has what only pass-through carries: the next entry may take it)."""
            if untranslatable is not None:
                raise BackendError(name, ErrorKind.CLIENT, str(untranslatable), status=400)
            return for_backend(request, cfg)

        if not stream:

            async def complete(name: str) -> ChatResponse | tuple[int, str, bytes]:
                cfg = self.config.backends[name]
                if relay is not None and relayed(name):
                    return await self.retry(
                        name, cfg, lambda: relay.complete(name, fmt, body, sent)
                    )
                mine = translated(name, cfg)
                backend = self.backends.backend(name)
                return await self.retry(name, cfg, lambda: backend.complete(mine))

            async def nothing(_: Any) -> None:
                return None

            routed = await self._route(model, complete, nothing, request)
            name, result = routed.backend, routed.value
            tag = {"x-muxlang-backend": name}
            if isinstance(result, ChatResponse):
                if result.tool_calls and result.finish_reason == "stop":
                    result = replace(result, finish_reason="tool_calls")
                return Whole(_dump(wire.response_to_wire(result, model)), tag)
            status, content_type, raw = result
            return Whole(raw, tag, status, content_type)

        async def open_stream(name: str) -> Pump:
            cfg = self.config.backends[name]
            produce: Callable[[], AsyncIterator[Any]]
            if relay is not None and relayed(name):
                produce = lambda: relay.stream(name, fmt, body, sent)  # noqa: E731
            else:
                mine = translated(name, cfg)
                backend = self.backends.backend(name)
                produce = lambda: backend.stream(mine)  # noqa: E731
            return await self.retry(name, cfg, lambda: start_pump(nursery, name, produce))

        streamed = await self._route(model, open_stream, discard_pump, request, nursery)
        name, pump = streamed.backend, streamed.value
        tag = {"x-muxlang-backend": name}
        if isinstance(pump.first, bytes):
            return Streamed(pump.first, self._relay_rest(fmt, model, name, pump), tag)
        encoder = ToolEnding(wire.encoder(model, include_usage))
        first = encoder.start() + encoder.event(pump.first)
        done = isinstance(pump.first, Finish)
        rest = self._encode_rest(encoder, model, name, pump, done)
        return Streamed(first, rest, tag, wire.stream_type)

    async def _encode_rest(
        self, encoder: Any, model: str, name: str, pump: Pump, done: bool
    ) -> AsyncIterator[bytes]:
        failed = False
        try:
            while not done:
                out = bytearray()
                for item in await batch(pump):
                    if item is END:
                        out += encoder.event(Finish("stop"))
                        done = True
                    elif isinstance(item, BackendError):
                        out += await self._failed_mid_stream(item, model, encoder)
                        done = failed = True
                    else:
                        out += encoder.event(item)
                        done = isinstance(item, Finish)
                    if done:
                        break
                yield bytes(out)
            yield encoder.end()
            if not failed:
                await self.engine.succeeded(name)
        finally:
            await pump.aclose()

    async def _relay_rest(
        self, fmt: Format, model: str, name: str, pump: Pump
    ) -> AsyncIterator[bytes]:
        encoder = FORMATS[fmt].encoder(model, False)
        failed = False
        try:
            done = False
            while not done:
                out = bytearray()
                for item in await batch(pump):
                    if item is END:
                        done = True
                    elif isinstance(item, BackendError):
                        out += await self._failed_mid_stream(item, model, encoder)
                        done = failed = True
                    else:
                        out += item
                    if done:
                        break
                yield bytes(out)
            if not failed:
                await self.engine.succeeded(name)
        finally:
            await pump.aclose()

    async def _failed_mid_stream(self, error: BackendError, model: str, encoder: Any) -> bytes:
        """Counts towards a cooldown as any failure; returns the error event the client's
        stream ends with (translated and relayed streams alike)."""
        log.warning("backend %s failed mid-stream: %s", error.backend, error.message)
        await self.engine.failed_later(error, model)
        return bytes(encoder.error(f"{error.backend}: {error.message}", status_for(error)))

    # ------------------------------------------------------------------ parallel roles

    async def _parallel(
        self, fmt: Format, model: str, request: ChatRequest, stream: bool, include_usage: bool
    ) -> Answer:
        response = await self._parallel_response(model, request)
        wire = FORMATS[fmt]
        tag = {"x-muxlang-backend": response.backend or model}
        if not stream:
            return Whole(_dump(wire.response_to_wire(response, model)), tag)
        encoder = wire.encoder(model, include_usage)
        first = encoder.start() + encoder.event(TextDelta(response.text))

        async def rest() -> AsyncIterator[bytes]:
            yield encoder.event(Finish("stop", response.usage))
            yield encoder.end()

        return Streamed(first, rest(), tag, wire.stream_type)

    async def _parallel_response(
        self, role_name: str, request: ChatRequest, stack: tuple[str, ...] = ()
    ) -> ChatResponse:
        """All entries at once; ``=== NAME ===`` blocks in role order (SPEC section 3)."""

        async def complete(name: str) -> ChatResponse:
            backend = self.backends.backend(name)
            cfg = self.config.backends[name]
            mine = for_backend(request, cfg)
            return await self.retry(name, cfg, lambda: backend.complete(mine))

        async def whole(role: str, inner: tuple[str, ...]) -> Routed[ChatResponse]:
            response = await self._parallel_response(role, request, inner)
            return Routed(response.backend or role, role, response)

        try:
            answers = await self.engine.parallel(
                role_name, (*stack, role_name), complete, whole=whole
            )
        except BackendError as exc:
            raise route_error(role_name, exc) from None
        text = parallel_output({a.entry: a.value.text for a in answers})
        usage = Usage(
            sum(a.value.usage.input_tokens for a in answers if a.value.usage),
            sum(a.value.usage.output_tokens for a in answers if a.value.usage),
        )
        return ChatResponse(text=text, usage=usage, backend=answers[0].backend)

    async def _route(
        self,
        model: str,
        attempt: Callable[[str], Any],
        discard: Callable[[Any], Any],
        request: ChatRequest,
        nursery: trio.Nursery | None = None,
    ) -> Routed[Any]:
        """The engine's answer for ``model``; a nested parallel role answers whole. A
        stream (``nursery`` given) is a success for the cooldowns only once it ended."""

        async def whole(role: str, stack: tuple[str, ...]) -> Routed[Any]:
            response = await self._parallel_response(role, request, stack[:-1])
            backend = response.backend or role
            if nursery is None:
                return Routed(backend, role, response)
            events = events_of(response)

            async def replay() -> AsyncIterator[Any]:
                for event in events:
                    yield event

            return Routed(backend, role, await start_pump(nursery, backend, replay))

        try:
            return await self.engine.route(
                model, attempt, discard=discard, whole=whole, settles=nursery is None
            )
        except BackendError as exc:
            raise route_error(model, exc) from None

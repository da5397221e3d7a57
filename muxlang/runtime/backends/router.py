"""Backends of one configuration: the :class:`Router`, muxlang's :class:`~muxlang.llm.QueryService`.

Roles are run by the one role engine (:mod:`.engine`, shared with ``muxlang
serve``): first / fallback / race there; a parallel role's ``=== NAME ===``
answer is built here. A race's losers are cancelled (a losing CLI's process
group is stopped).

Every backend call goes through the retry loop (:mod:`.retry`) and holds one
slot of ``defaults.max_concurrent`` while an attempt is in flight (not while
waiting to retry).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import trio

from muxlang._frozen import frozen
from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, Execution
from muxlang.llm import (
    Availability,
    Backend,
    BackendError,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    QueryResult,
    StreamEvent,
    Usage,
)
from muxlang.runtime.backends.base import Prepared, events_of, prepare
from muxlang.runtime.backends.cli import CliBackend
from muxlang.runtime.backends.engine import Engine, Kind, Routed
from muxlang.runtime.backends.http import HttpBackend
from muxlang.runtime.backends.retry import OnRetry, next_delay, wait_before_retry, with_retries


@frozen(slots=True)
class Resolution:
    """What a target names: a backend, or a role with its mode, entries and leaf backends."""

    target: str
    kind: Kind
    execution: Execution | None = None
    entries: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()  # every backend reachable, in role order, no repeats


@dataclass(slots=True)
class _Answer:
    response: ChatResponse
    outputs: dict[str, str] = field(default_factory=dict)
    backend: str | None = None


def parallel_output(outputs: Mapping[str, str]) -> str:
    """``=== NAME ===\\nTEXT`` blocks joined by a blank line, in the order given."""
    return "\n\n".join(f"=== {name} ===\n{text}" for name, text in outputs.items())


class Router:
    """Backends and roles of one resolved configuration (open with :func:`open_router`)."""

    def __init__(
        self,
        config: ResolvedConfig,
        *,
        nursery: trio.Nursery,
        environ: Mapping[str, str] = os.environ,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrent: int | None = None,
        on_retry: OnRetry | None = None,
        hide_urls: bool = False,
    ) -> None:
        self.config = config
        self._hide_urls = hide_urls
        self._nursery = nursery
        self._environ = dict(environ)
        self._transport = transport
        self._limiter = trio.CapacityLimiter(max_concurrent or config.defaults.max_concurrent)
        self._on_retry = on_retry
        self._prepared: dict[str, Prepared] = {}
        self._backends: dict[str, CliBackend | HttpBackend] = {}
        self.engine = Engine(config.roles, config.backends, self._why_unavailable)

    # ------------------------------------------------------------------ backends

    def prepared(self, name: str) -> Prepared:
        if name not in self._prepared:
            raw = self.config.backends.get(name)
            if raw is None:
                raise BackendError(name, ErrorKind.CONFIG, f"unknown backend `{name}`")
            self._prepared[name] = prepare(name, raw, self._environ)
        return self._prepared[name]

    def backend(self, name: str) -> Backend:
        """The backend called ``name``: one attempt per call, no retries, no limit.

        Raises :class:`BackendError` (CONFIG) for an unknown name."""
        return self._backend(name)

    def _backend(self, name: str) -> CliBackend | HttpBackend:
        found = self._backends.get(name)
        if found is None:
            prepared = self.prepared(name)
            if prepared.raw.is_http:
                found = HttpBackend(
                    prepared,
                    nursery=self._nursery,
                    transport=self._transport,
                    hide_urls=self._hide_urls,
                )
            else:
                found = CliBackend(
                    prepared,
                    nursery=self._nursery,
                    environ=self._environ,
                    cwd=self.config.project_root,
                )
            self._backends[name] = found
        return found

    def secrets(self) -> list[str]:
        """Secret values of every backend (api keys, header values, secret-named variables)."""
        out: set[str] = set()
        for name in self.config.backends:
            out.update(self.prepared(name).secrets)
        return sorted(out, key=len, reverse=True)

    async def aclose(self) -> None:
        for backend in self._backends.values():
            if isinstance(backend, HttpBackend):
                await backend.aclose()

    # ------------------------------------------------------------------ names

    def kind(self, target: str) -> Kind | None:
        """``backend`` or ``role`` (a backend wins when both exist, as inside roles),
        None when unknown."""
        if target in self.config.backends:
            return "backend"
        if target in self.config.roles:
            return "role"
        return None

    def _why_unavailable(self, name: str) -> str | None:
        found = self._backend(name).availability()
        return None if found.ok else found.reason or "unavailable"

    def resolve(self, target: str, kind: Kind | None = None) -> Resolution:
        """What ``target`` names; for roles, every backend it can reach in role order."""
        kind = kind or self.kind(target)
        if kind == "backend":
            self.prepared(target)
            return Resolution(target, "backend", backends=(target,))
        if kind != "role":
            raise BackendError(target, ErrorKind.CONFIG, f"unknown role or backend `{target}`")
        role = self.engine.role(target)
        leaves = self.engine.leaves(target)
        return Resolution(target, "role", role.execution, tuple(role.backends), leaves)

    # ------------------------------------------------------------------ availability

    def availability(self, target: str, kind: Kind | None = None) -> Availability:
        kind = kind or self.kind(target)
        if kind == "backend":
            return self._backend_availability(target)
        if kind == "role":
            return self._role_availability(target, (target,))
        return Availability(False, f"unknown role or backend `{target}`")

    def _role_availability(self, role: str, stack: tuple[str, ...]) -> Availability:
        reasons: list[str] = []
        for inner in self.engine.role(role).backends:
            found = self._entry_availability(inner, stack)
            if found.ok:
                return found
            reasons.append(found.reason)
        return Availability(False, f"role `{role}`: " + ("; ".join(reasons) or "no backends"))

    def _entry_availability(self, entry: str, stack: tuple[str, ...]) -> Availability:
        if self.engine.is_role(entry, stack):
            return self._role_availability(entry, (*stack, entry))
        return self._backend_availability(entry)

    def _backend_availability(self, entry: str) -> Availability:
        if entry not in self.config.backends:
            return Availability(False, f"unknown backend `{entry}`")
        return self._backend(entry).availability()

    # ------------------------------------------------------------------ QueryService

    async def query(self, target: str, request: ChatRequest, *, kind: Kind) -> QueryResult:
        """Ask a role or backend; the result has ``output``, ``outputs``, ``backend``."""
        answer = await self._answer(target, request, kind)
        return QueryResult(
            output=answer.response.text,
            outputs=dict(answer.outputs),
            backend=answer.backend,
            usage=answer.response.usage,
        )

    async def complete(
        self, target: str, request: ChatRequest, *, kind: Kind | None = None
    ) -> ChatResponse:
        """Like :meth:`query`, keeping the whole response (tool calls, finish reason)."""
        answer = await self._answer(target, request, kind or self.kind(target))
        return answer.response

    async def _answer(self, target: str, request: ChatRequest, kind: Kind | None) -> _Answer:
        async def attempt(name: str) -> _Answer:
            response = await self._call(name, request)
            return _Answer(response, {name: response.text}, name)

        async def whole(role: str, stack: tuple[str, ...]) -> Routed[_Answer]:
            answers = await self.engine.parallel(role, stack, attempt, whole=whole)
            return _parallel_answer(role, answers)

        routed = await self.engine.route(target, attempt, kind=kind, whole=whole)
        answer = routed.value
        if routed.entry not in (routed.backend, target):  # a nested role's, under its entry's name
            return _Answer(answer.response, {routed.entry: answer.response.text}, answer.backend)
        return answer

    async def _call(self, name: str, request: ChatRequest) -> ChatResponse:
        backend = self._backend(name)
        config = self._retry_config(name)

        async def attempt() -> ChatResponse:
            async with self._limiter:
                return await backend.complete(request)

        return await with_retries(name, config, attempt, on_retry=self._on_retry)

    def _retry_config(self, name: str) -> BackendConfig:
        return self.prepared(name).raw

    # ------------------------------------------------------------------ streaming

    async def stream(
        self, target: str, request: ChatRequest, kind: Kind | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """The answer as events. Retries and fallback happen only before the first
        event; an error after it is raised, never spliced with another answer.
        ``parallel`` and ``race`` roles answer whole (one text event, then Finish)."""

        async def whole(role: str, stack: tuple[str, ...]) -> Routed[Started]:
            answer = await self._answer(role, request, "role")
            return Routed(answer.backend or role, role, Started(events_of(answer.response)))

        routed = await self.engine.route(
            target,
            lambda name: self._start_stream(name, request),
            kind=kind,
            discard=Started.aclose,
            whole=whole,
            whole_modes=("parallel", "race"),
        )
        started = routed.value
        try:
            async for event in started:
                yield event
        finally:
            await started.aclose()

    async def _start_stream(self, name: str, request: ChatRequest) -> Started:
        """Backend ``name``'s stream once its first event is there (retried before it).
        Holds a slot of ``max_concurrent`` until the stream is closed."""
        backend = self._backend(name)
        config = self._retry_config(name)
        token = object()
        attempt = 0
        while True:
            await self._limiter.acquire_on_behalf_of(token)
            try:
                events = backend.stream(request)
                try:
                    first = await events.__anext__()
                except BaseException:
                    await _aclose(events)
                    raise
            except StopAsyncIteration:
                self._limiter.release_on_behalf_of(token)
                return Started([])
            except BackendError as error:
                self._limiter.release_on_behalf_of(token)
                delay = next_delay(error, config, attempt)
                if delay is None:
                    raise
                attempt += 1
                await wait_before_retry(name, config, error, attempt, delay, self._on_retry)
                continue
            except BaseException:
                self._limiter.release_on_behalf_of(token)
                raise
            return Started([first], events, lambda: self._limiter.release_on_behalf_of(token))


class Started:
    """A stream whose first events are known; iterating yields them, then the rest."""

    def __init__(
        self,
        head: list[StreamEvent],
        rest: AsyncIterator[StreamEvent] | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._head = head
        self._rest = rest
        self._release = release

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        for event in self._head:
            yield event
        if self._rest is not None:
            async for event in self._rest:
                yield event

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            if self._rest is not None:
                await _aclose(self._rest)
        finally:
            if release is not None:
                release()


def _parallel_answer(role: str, answers: list[Routed[_Answer]]) -> Routed[_Answer]:
    """``=== ENTRY ===`` blocks in role order; usage summed; the first answer's backend."""
    outputs = {a.entry: a.value.response.text for a in answers}
    first = answers[0]
    usage = _sum_usage([a.value.response.usage for a in answers])
    response = ChatResponse(text=parallel_output(outputs), usage=usage, backend=first.value.backend)
    return Routed(first.backend, role, _Answer(response, outputs, first.value.backend))


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        with trio.CancelScope(shield=True):
            await close()


def _sum_usage(usages: list[Usage | None]) -> Usage | None:
    known = [u for u in usages if u is not None]
    if not known:
        return None
    return Usage(sum(u.input_tokens for u in known), sum(u.output_tokens for u in known))


@asynccontextmanager
async def open_router(
    config: ResolvedConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    max_concurrent: int | None = None,
    on_retry: OnRetry | None = None,
    hide_urls: bool = False,
) -> AsyncIterator[Router]:
    """The :class:`Router` for ``config``, with its HTTP clients open for the block.

    ``transport`` replaces the network for HTTP backends (tests); ``max_concurrent``
    overrides ``defaults.max_concurrent`` (backend calls in flight at once);
    ``hide_urls`` makes errors name backends instead of their URLs (the gateway)."""
    # The body's own exception is re-raised after the nursery closed, so callers
    # see a BackendError (or Cancelled) as is, not wrapped in an ExceptionGroup.
    raised: BaseException | None = None
    async with trio.open_nursery() as nursery:
        router = Router(
            config,
            nursery=nursery,
            environ=environ,
            transport=transport,
            max_concurrent=max_concurrent,
            on_retry=on_retry,
            hide_urls=hide_urls,
        )
        try:
            yield router
        except BaseException as exc:
            raised = exc
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await router.aclose()
    if raised is not None:
        raise raised

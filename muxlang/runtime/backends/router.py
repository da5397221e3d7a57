"""Roles over backends: the :class:`Router`, muxlang's :class:`~muxlang.llm.QueryService`.

A role's entries are backend or role names (roles nest). Execution modes:

- ``first``: the first enabled, available entry; no failover.
- ``fallback``: each entry in order until one succeeds.
- ``parallel``: all at once; succeeds with ``min_success`` answers.
- ``race``: all at once; the first success wins and the others are cancelled
  (a losing CLI's process group is stopped).

Every backend call goes through the retry loop (:mod:`.retry`) and holds one
slot of ``defaults.max_concurrent`` while an attempt is in flight (not while
waiting to retry).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import httpx
import trio

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, Execution, RoleConfig
from muxlang.llm import (
    Availability,
    Backend,
    BackendError,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finish,
    QueryResult,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.base import Prepared, prepare
from muxlang.runtime.backends.cli import CliBackend
from muxlang.runtime.backends.http import HttpBackend
from muxlang.runtime.backends.retry import OnRetry, next_delay, wait_before_retry, with_retries

Kind = Literal["role", "backend"]


@dataclass(frozen=True, slots=True)
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
    ) -> None:
        self.config = config
        self._nursery = nursery
        self._environ = dict(environ)
        self._transport = transport
        self._limiter = trio.CapacityLimiter(max_concurrent or config.defaults.max_concurrent)
        self._on_retry = on_retry
        self._prepared: dict[str, Prepared] = {}
        self._backends: dict[str, CliBackend | HttpBackend] = {}

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
                found = HttpBackend(prepared, nursery=self._nursery, transport=self._transport)
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

    def _entry_is_role(self, entry: str, stack: Sequence[str]) -> bool:
        """Whether a role's entry names a role: a name that is a backend means the
        backend (backends are the leaves; a built-in role never hijacks a user's
        backend), only names that are not backends refer to roles. A role reached
        again while being resolved is a cycle (the compiler rejects it as MUX030)."""
        if entry in self.config.backends or entry not in self.config.roles:
            return False
        if entry in stack:
            cycle = " → ".join([*stack[stack.index(entry) :], entry])
            raise BackendError(entry, ErrorKind.CONFIG, f"role cycle: {cycle}")
        return True

    def _role(self, name: str) -> RoleConfig:
        role = self.config.roles.get(name)
        if role is None:
            raise BackendError(name, ErrorKind.CONFIG, f"unknown role `{name}`")
        return role

    def resolve(self, target: str, kind: Kind | None = None) -> Resolution:
        """What ``target`` names; for roles, every backend it can reach in role order."""
        kind = kind or self.kind(target)
        if kind == "backend":
            self.prepared(target)
            return Resolution(target, "backend", backends=(target,))
        if kind != "role":
            raise BackendError(target, ErrorKind.CONFIG, f"unknown role or backend `{target}`")
        role = self._role(target)
        leaves: list[str] = []

        def walk(name: str, stack: tuple[str, ...]) -> None:
            for entry in self._role(name).backends:
                if self._entry_is_role(entry, stack):
                    walk(entry, (*stack, entry))
                elif entry not in leaves:
                    leaves.append(entry)

        walk(target, (target,))
        return Resolution(target, "role", role.execution, tuple(role.backends), tuple(leaves))

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
        for inner in self._role(role).backends:
            found = self._entry_availability(inner, stack)
            if found.ok:
                return found
            reasons.append(found.reason)
        return Availability(False, f"role `{role}`: " + ("; ".join(reasons) or "no backends"))

    def _entry_availability(self, entry: str, stack: tuple[str, ...]) -> Availability:
        if self._entry_is_role(entry, stack):
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
        if kind == "backend":
            return await self._run_backend(target, request)
        if kind == "role":
            return await self._run_role(target, request, (target,))
        raise BackendError(target, ErrorKind.CONFIG, f"unknown role or backend `{target}`")

    async def _call(self, name: str, request: ChatRequest) -> ChatResponse:
        backend = self._backend(name)
        config = self._retry_config(name)

        async def attempt() -> ChatResponse:
            async with self._limiter:
                return await backend.complete(request)

        return await with_retries(name, config, attempt, on_retry=self._on_retry)

    def _retry_config(self, name: str) -> BackendConfig:
        return self.prepared(name).raw

    async def _run_backend(self, name: str, request: ChatRequest) -> _Answer:
        response = await self._call(name, request)
        return _Answer(response, {name: response.text}, name)

    async def _run_entry(self, entry: str, request: ChatRequest, stack: tuple[str, ...]) -> _Answer:
        if self._entry_is_role(entry, stack):
            inner = await self._run_role(entry, request, (*stack, entry))
            return _Answer(inner.response, {entry: inner.response.text}, inner.backend)
        if entry not in self.config.backends:
            raise BackendError(entry, ErrorKind.CONFIG, f"unknown backend `{entry}`")
        return await self._run_backend(entry, request)

    def _unavailable(self, entry: str, stack: tuple[str, ...]) -> BackendError | None:
        found = self._entry_availability(entry, stack)
        if found.ok:
            return None
        reason = found.reason.removeprefix(f"backend `{entry}`: ")
        return BackendError(entry, ErrorKind.CONFIG, reason)

    async def _try_entry(
        self, entry: str, request: ChatRequest, stack: tuple[str, ...]
    ) -> _Answer | BackendError:
        """An entry's answer, or why it gave none: not usable, or failed."""
        problem = self._unavailable(entry, stack)
        if problem is not None:
            return problem
        try:
            return await self._run_entry(entry, request, stack)
        except BackendError as exc:
            return exc

    async def _run_role(self, name: str, request: ChatRequest, stack: tuple[str, ...]) -> _Answer:
        role = self._role(name)
        mode = role.execution
        entries = list(role.backends)
        if not entries:
            raise BackendError(name, ErrorKind.CONFIG, f"role `{name}` lists no backends")
        errors: list[BackendError] = []

        if mode == "first":
            for entry in entries:
                problem = self._unavailable(entry, stack)
                if problem is None:
                    return await self._run_entry(entry, request, stack)
                errors.append(problem)
            raise _role_error(name, mode, errors, "no backend can be used")

        if mode == "fallback":
            for entry in entries:
                result = await self._try_entry(entry, request, stack)
                if isinstance(result, _Answer):
                    return result
                errors.append(result)
            raise _role_error(name, mode, errors, "every backend failed")

        if mode == "parallel":
            return await self._parallel(name, role, request, stack)
        return await self._race(name, entries, request, stack)

    async def _parallel(
        self, name: str, role: RoleConfig, request: ChatRequest, stack: tuple[str, ...]
    ) -> _Answer:
        entries = list(role.backends)
        answers: list[_Answer | None] = [None] * len(entries)
        failures: list[BackendError | None] = [None] * len(entries)

        async def one(i: int, entry: str) -> None:
            result = await self._try_entry(entry, request, stack)
            if isinstance(result, _Answer):
                answers[i] = result
            else:
                failures[i] = result

        async with trio.open_nursery() as nursery:
            for i, entry in enumerate(entries):
                nursery.start_soon(one, i, entry)

        outputs = {e: a.response.text for e, a in zip(entries, answers, strict=True) if a}
        if len(outputs) < role.min_success:
            errors = [f for f in failures if f is not None]
            summary = f"{len(outputs)} of {len(entries)} answered, {role.min_success} needed"
            raise _role_error(name, "parallel", errors, summary)
        first = next(a for a in answers if a is not None)
        usage = _sum_usage([a.response.usage for a in answers if a is not None])
        text = parallel_output(outputs)
        response = ChatResponse(text=text, usage=usage, backend=first.backend)
        return _Answer(response, outputs, first.backend)

    async def _race(
        self, name: str, entries: list[str], request: ChatRequest, stack: tuple[str, ...]
    ) -> _Answer:
        failures: list[BackendError | None] = [None] * len(entries)
        winner: list[_Answer] = []

        async def one(i: int, entry: str, cancel: trio.CancelScope) -> None:
            result = await self._try_entry(entry, request, stack)
            if not isinstance(result, _Answer):
                failures[i] = result
            elif not winner:
                winner.append(result)
                cancel.cancel()

        async with trio.open_nursery() as nursery:
            for i, entry in enumerate(entries):
                nursery.start_soon(one, i, entry, nursery.cancel_scope)
        if winner:
            return winner[0]
        errors = [f for f in failures if f is not None]
        raise _role_error(name, "race", errors, "every backend failed")

    # ------------------------------------------------------------------ streaming

    async def stream(
        self, target: str, request: ChatRequest, kind: Kind | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """The answer as events. Retries and fallback happen only before the first
        event; an error after it is raised, never spliced with another answer.
        ``parallel`` and ``race`` roles answer whole (one text event, then Finish)."""
        kind = kind or self.kind(target)
        if kind == "backend":
            source = self._stream_backend(target, request)
        elif kind == "role":
            source = self._stream_role(target, request, (target,))
        else:
            raise BackendError(target, ErrorKind.CONFIG, f"unknown role or backend `{target}`")
        async with aclosing(source) as events:
            async for event in events:
                yield event

    async def _stream_entry(
        self, entry: str, request: ChatRequest, stack: tuple[str, ...]
    ) -> AsyncGenerator[StreamEvent, None]:
        if self._entry_is_role(entry, stack):
            source = self._stream_role(entry, request, (*stack, entry))
        elif entry in self.config.backends:
            source = self._stream_backend(entry, request)
        else:
            raise BackendError(entry, ErrorKind.CONFIG, f"unknown backend `{entry}`")
        async with aclosing(source) as events:
            async for event in events:
                yield event

    async def _stream_role(
        self, name: str, request: ChatRequest, stack: tuple[str, ...]
    ) -> AsyncGenerator[StreamEvent, None]:
        role = self._role(name)
        if role.execution in ("parallel", "race"):
            answer = await self._run_role(name, request, stack)
            for event in _events_of(answer.response):
                yield event
            return
        errors: list[BackendError] = []
        for entry in role.backends:
            problem = self._unavailable(entry, stack)
            if problem is not None:
                errors.append(problem)
                continue
            async with aclosing(self._stream_entry(entry, request, stack)) as events:
                try:
                    first = await events.__anext__()
                except StopAsyncIteration:
                    return
                except BackendError as exc:
                    if role.execution == "first":
                        raise
                    errors.append(exc)
                    continue
                yield first
                async for event in events:
                    yield event
                return
        summary = "no backend can be used" if role.execution == "first" else "every backend failed"
        raise _role_error(name, role.execution, errors, summary)

    async def _stream_backend(
        self, name: str, request: ChatRequest
    ) -> AsyncGenerator[StreamEvent, None]:
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
                return
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
            break
        try:
            yield first
            async for event in events:
                yield event
        finally:
            self._limiter.release_on_behalf_of(token)
            await _aclose(events)


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        with trio.CancelScope(shield=True):
            await close()


def _events_of(response: ChatResponse) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    if response.text:
        events.append(TextDelta(response.text))
    for i, call in enumerate(response.tool_calls):
        events.append(ToolCallDelta(i, id=call.id, name=call.name, arguments=call.arguments))
    events.append(Finish(response.finish_reason, response.usage))
    return events


def _sum_usage(usages: list[Usage | None]) -> Usage | None:
    known = [u for u in usages if u is not None]
    if not known:
        return None
    return Usage(sum(u.input_tokens for u in known), sum(u.output_tokens for u in known))


def _role_error(name: str, mode: str, errors: list[BackendError], summary: str) -> BackendError:
    """One error for a failed role, saying what each backend said."""
    lines = [f"role `{name}` ({mode}): {summary}"]
    for error in errors:
        detail = error.message.replace("\n", "\n    ")
        lines.append(f"  - {error.backend}: {detail}")
    kinds = {e.kind for e in errors}
    kind = kinds.pop() if len(kinds) == 1 else ErrorKind.SERVER
    hints = [e.retry_after for e in errors if e.retry_after is not None]
    statuses = {e.status for e in errors}
    return BackendError(
        name,
        kind,
        "\n".join(lines),
        status=statuses.pop() if len(statuses) == 1 else None,
        retry_after=min(hints) if hints and kind is ErrorKind.RATE_LIMIT else None,
        attempts=sum(e.attempts for e in errors),
    )


@asynccontextmanager
async def open_router(
    config: ResolvedConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    max_concurrent: int | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[Router]:
    """The :class:`Router` for ``config``, with its HTTP clients open for the block.

    ``transport`` replaces the network for HTTP backends (tests); ``max_concurrent``
    overrides ``defaults.max_concurrent`` (backend calls in flight at once)."""
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

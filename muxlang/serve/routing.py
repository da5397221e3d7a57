"""Which backend answers a gateway request: roles, cooldowns, fallback, race.

A request's ``model`` names a role or a backend. A name that is a backend means the
backend, there and inside roles (backends are the leaves: a built-in role never
hijacks a user's backend); only names that are not backends refer to roles.
A role is tried by its execution mode:

- ``first``: the first enabled, available backend that is not cooling down; no failover.
- ``fallback``: each backend in order (cooling ones skipped) until one has *started*
  answering; an error after that is the client's, never a switch.
- ``race``: every non-cooling backend at once; the first to start answering wins
  and the others are cancelled.
- ``parallel``: handled by the gateway as a whole answer (see :mod:`muxlang.serve.gateway`).

Nested roles are tried as one entry of their parent. Each backend attempt runs
through the backends' retry loop (SPEC section 6). A backend whose final error
is a rate limit, a server error or a connection failure cools down for
``[serve] cooldown`` seconds (longer when the server's Retry-After asks): it is
skipped while cooling, and a success clears it. When every entry of a role is
cooling the request fails with :class:`AllCooling` (HTTP 429 with Retry-After).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import trio

from muxlang.config.models import RoleConfig
from muxlang.llm import BackendError, ErrorKind

T = TypeVar("T")

#: final errors that put a backend in cooldown
COOLING_KINDS = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.SERVER, ErrorKind.CONNECTION})


class RouteError(Exception):
    """A request the gateway cannot route: carries the HTTP status for the client."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class UnknownModel(RouteError):
    def __init__(self, model: str, known: list[str]) -> None:
        hint = f"; known models: {', '.join(known)}" if known else ""
        super().__init__(404, f"model `{model}` is not a muxlang role or backend{hint}")
        self.model = model


class AllCooling(RouteError):
    def __init__(self, target: str, retry_after: float) -> None:
        super().__init__(
            429,
            f"`{target}` is cooling down after rate limits or server errors; retry in "
            f"{math.ceil(retry_after)} s",
            retry_after=retry_after,
        )


class Unavailable(RouteError):
    def __init__(self, target: str, reasons: list[str]) -> None:
        detail = "; ".join(reasons) or "no backends"
        super().__init__(503, f"no backend of `{target}` can be used: {detail}")


class Failed(RouteError):
    """Every backend tried failed before answering; the status follows the last error."""

    def __init__(self, target: str, errors: list[BackendError]) -> None:
        last = errors[-1]
        status = status_for(last)
        retry_after = None
        if status == 429:
            hints = [e.retry_after for e in errors if e.retry_after is not None]
            retry_after = min(hints) if hints else None
        detail = "; ".join(f"{e.backend}: {e.message}" for e in errors)
        super().__init__(status, f"`{target}` failed: {detail}", retry_after=retry_after)
        self.errors = errors


def status_for(error: BackendError) -> int:
    """The HTTP status a client sees for a backend's final error."""
    match error.kind:
        case ErrorKind.RATE_LIMIT:
            return 429
        case ErrorKind.CLIENT:
            status = error.status or 400
            return status if 400 <= status < 500 else 400
        case ErrorKind.TIMEOUT:
            return 504
        case ErrorKind.CONFIG:
            return 503
        case _:
            return 502


@dataclass
class Cooldowns:
    """Per-backend "don't use before" times on trio's clock."""

    seconds: float = 30.0
    _until: dict[str, float] = field(default_factory=dict)

    def remaining(self, name: str) -> float:
        until = self._until.get(name)
        if until is None:
            return 0.0
        left = until - trio.current_time()
        if left <= 0:
            del self._until[name]
            return 0.0
        return left

    def failed(self, error: BackendError) -> None:
        if error.kind not in COOLING_KINDS:
            return
        wait = max(self.seconds, error.retry_after or 0.0)
        if wait > 0:
            self._until[error.backend] = trio.current_time() + wait

    def succeeded(self, name: str) -> None:
        self._until.pop(name, None)


#: one backend attempt (retries included) that returns once the answer has started
Attempt = Callable[[str], Awaitable[T]]
#: closes a started answer that lost a race
Discard = Callable[[T], Awaitable[None]]


@dataclass
class Router:
    """Resolves model names and runs the first / fallback / race modes with cooldowns.

    ``available(name)`` says why a backend cannot be used (``None`` when it can).
    """

    roles: Mapping[str, RoleConfig]
    backends: Mapping[str, object]
    available: Callable[[str], str | None]
    cooldowns: Cooldowns = field(default_factory=Cooldowns)

    def names(self) -> list[str]:
        return sorted(set(self.roles) | set(self.backends))

    def kind(self, model: str) -> str:
        if model in self.backends:
            return "backend"
        if model in self.roles:
            return "role"
        raise UnknownModel(model, self.names())

    def is_role(self, entry: str) -> bool:
        """Whether a role's entry names a role (a backend of that name wins)."""
        return entry in self.roles and entry not in self.backends

    def execution(self, model: str) -> str:
        return self.roles[model].execution if self.kind(model) == "role" else "first"

    async def route(self, target: str, attempt: Attempt[T], discard: Discard[T]) -> tuple[str, T]:
        """Run ``attempt`` on ``target``'s backends per its mode; ``(backend, result)``."""
        try:
            return await self._route(target, attempt, discard, ())
        except BackendError as exc:
            raise Failed(target, [exc]) from None

    async def _route(
        self, target: str, attempt: Attempt[T], discard: Discard[T], seen: tuple[str, ...]
    ) -> tuple[str, T]:
        if self.kind(target) == "backend":
            why = self.available(target)
            if why is not None:
                raise Unavailable(target, [why])
            left = self.cooldowns.remaining(target)
            if left > 0:
                raise AllCooling(target, left)
            return await self._backend(target, attempt)
        if target in seen:
            raise RouteError(500, f"role `{target}` includes itself: {' -> '.join(seen)}")
        role = self.roles[target]
        seen = (*seen, target)
        entries: list[str] = []
        reasons: list[str] = []
        cooling: list[float] = []
        for entry in role.backends:
            if self.is_role(entry):
                entries.append(entry)
                continue
            why = self.available(entry) if entry in self.backends else "not configured"
            if why is not None:
                reasons.append(why if f"`{entry}`" in why else f"{entry}: {why}")
                continue
            left = self.cooldowns.remaining(entry)
            if left > 0:
                cooling.append(left)
                continue
            entries.append(entry)
        if not entries:
            if cooling:
                raise AllCooling(target, min(cooling))
            raise Unavailable(target, reasons)

        async def one(entry: str) -> tuple[str, T]:
            if self.is_role(entry):
                return await self._route(entry, attempt, discard, seen)
            return await self._backend(entry, attempt)

        if role.execution == "race" and len(entries) > 1:
            return await self._race(target, entries, one, discard)
        errors: list[BackendError] = []
        route_errors: list[RouteError] = []
        for entry in entries:
            try:
                return await one(entry)
            except BackendError as exc:
                errors.append(exc)
            except Failed as exc:
                errors.extend(exc.errors)
            except AllCooling as exc:  # a nested role with nothing to offer: skipped
                cooling.append(exc.retry_after or 0.0)
                route_errors.append(exc)
                continue
            except RouteError as exc:
                route_errors.append(exc)
                continue
            if role.execution == "first":
                break  # the first usable entry failed: no failover
        if errors:
            raise Failed(target, errors)
        if cooling:
            raise AllCooling(target, min(cooling))
        raise route_errors[-1]

    async def _backend(self, name: str, attempt: Attempt[T]) -> tuple[str, T]:
        try:
            result = await attempt(name)
        except BackendError as exc:
            self.cooldowns.failed(exc)
            raise
        self.cooldowns.succeeded(name)
        return name, result

    async def _race(
        self,
        target: str,
        entries: list[str],
        one: Callable[[str], Awaitable[tuple[str, T]]],
        discard: Discard[T],
    ) -> tuple[str, T]:
        winner: list[tuple[str, T]] = []
        errors: list[BackendError] = []
        others: list[RouteError] = []

        async def racer(entry: str, scope: trio.CancelScope) -> None:
            try:
                got = await one(entry)
            except BackendError as exc:
                errors.append(exc)
                return
            except Failed as exc:
                errors.extend(exc.errors)
                return
            except RouteError as exc:
                others.append(exc)
                return
            if winner:
                with trio.CancelScope(shield=True):
                    await discard(got[1])
                return
            winner.append(got)
            scope.cancel()

        async with trio.open_nursery() as nursery:
            for entry in entries:
                nursery.start_soon(racer, entry, nursery.cancel_scope)
        if winner:
            return winner[0]
        if errors:
            raise Failed(target, errors)
        cooling = [e.retry_after or 0.0 for e in others if isinstance(e, AllCooling)]
        if cooling:
            raise AllCooling(target, min(cooling))
        raise others[-1]


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1) when a wait is known."""
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}

"""The one role engine: how a role's entries are tried, for ``muxlang run`` and ``muxlang serve``.

A role's entries are backend or role names (roles nest; a name that is a
backend means the backend). Execution modes:

- ``first``: the first usable entry; its failure is the role's (no failover).
- ``fallback``: each entry in order until one succeeds.
- ``race``: every entry at once; the first success wins, the others are
  cancelled (a result that arrives after the winner is discarded).
- ``parallel``: every entry at once; succeeds with ``min_success`` answers
  (:meth:`Engine.parallel`). What a parallel answer *is* belongs to the caller,
  so :meth:`Engine.route` hands roles of the caller's ``whole`` modes to its
  ``whole`` hook.

The engine never calls a backend itself: ``attempt(name)`` does (retries
included) and returns once the answer has *started* - a whole response for
``complete``, the first event for a stream. That point is where fallback stops.

Policies the caller turns on: a :class:`Policy` skips backends that are cooling
down and hears of every attempt's outcome (the gateway's cooldowns); ``muxlang
run`` uses none. "Per-request streaming" is only a different ``attempt``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Generic, Literal, Protocol, TypeVar

import trio

from muxlang._frozen import frozen
from muxlang.config.models import RoleConfig
from muxlang.llm import BackendError, ErrorKind
from muxlang.runtime import trace

T = TypeVar("T")
Kind = Literal["role", "backend"]

#: one backend attempt (retries included) that returns once the answer has started
Attempt = Callable[[str], Awaitable[T]]
#: closes a started answer that lost a race
Discard = Callable[[T], Awaitable[None]]


@frozen(slots=True)
class Routed(Generic[T]):
    """Who answered: the leaf ``backend``, the target's ``entry`` it came through, the value."""

    backend: str
    entry: str
    value: T


#: answers a role of one of the caller's ``whole`` modes: (role, stack) -> routed answer
Whole = Callable[[str, tuple[str, ...]], Awaitable[Routed[T]]]


class Unusable(BackendError):
    """An entry that cannot be used now (disabled, not installed, key unset, unknown)."""

    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(entry, ErrorKind.CONFIG, reason)


def _members(
    entries: Sequence[str],
    answers: Sequence[object | None],
    failures: Sequence[BackendError | None],
) -> list[tuple[str, str, str]]:
    """(entry, ``answered`` | ``failed`` | ``unavailable``, why) for each entry of a
    parallel role, in role order."""
    out: list[tuple[str, str, str]] = []
    for entry, answer, failure in zip(entries, answers, failures, strict=True):
        if answer is not None:
            out.append((entry, "answered", ""))
        elif isinstance(failure, Unusable | Cooling):
            out.append((entry, "unavailable", failure.message if failure else ""))
        else:
            out.append((entry, "failed", failure.message if failure else ""))
    return out


class Cooling(BackendError):
    """A backend skipped because it is cooling down (``retry_after``: seconds left)."""

    def __init__(self, backend: str, left: float) -> None:
        super().__init__(
            backend, ErrorKind.RATE_LIMIT, "cooling down", retry_after=left, attempts=0
        )


class RoleFailed(BackendError):
    """A role gave no answer; ``errors`` are its entries' errors in role order."""

    def __init__(self, role: str, mode: str, errors: Sequence[BackendError], summary: str) -> None:
        lines = [f"role `{role}` ({mode}): {summary}"]
        for error in errors:
            detail = error.message.replace("\n", "\n    ")
            lines.append(f"  - {error.backend}: {detail}")
        kinds = {e.kind for e in errors}
        kind = kinds.pop() if len(kinds) == 1 else ErrorKind.SERVER
        hints = [e.retry_after for e in errors if e.retry_after is not None]
        statuses = {e.status for e in errors}
        super().__init__(
            role,
            kind,
            "\n".join(lines),
            status=statuses.pop() if len(statuses) == 1 else None,
            retry_after=min(hints) if hints and kind is ErrorKind.RATE_LIMIT else None,
            attempts=sum(e.attempts for e in errors),
        )
        self.errors = tuple(errors)

    @property
    def leaves(self) -> list[BackendError]:
        """The backends' own errors (nested roles flattened), in role order."""
        return leaves(self)


def leaves(error: BackendError) -> list[BackendError]:
    if isinstance(error, RoleFailed):
        return [leaf for inner in error.errors for leaf in leaves(inner)]
    return [error]


def skipped(error: BackendError) -> bool:
    """Whether an entry was skipped rather than tried (``first`` then moves on)."""
    return all(isinstance(leaf, Unusable | Cooling) for leaf in leaves(error))


class Policy(Protocol):
    """Cooldowns (the gateway turns them on; see :mod:`muxlang.runtime.backends.cooldown`)."""

    async def remaining(self, backend: str) -> float:
        """Seconds ``backend`` still cools down (0: usable)."""
        ...

    async def failed(self, error: BackendError, *, last: bool) -> None:
        """An attempt's final error; ``last``: no other member could serve the request."""
        ...

    async def succeeded(self, backend: str) -> None: ...


@frozen(slots=True)
class _Run(Generic[T]):
    attempt: Attempt[T]
    discard: Discard[T] | None
    whole: Whole[T] | None
    whole_modes: frozenset[str]
    target: str
    #: whether an attempt that returned counts as a success (False: the caller says so
    #: once a started stream ended well, see :meth:`Engine.succeeded`)
    settles: bool = True


async def _nothing(_: object) -> None:
    return None


@dataclass(eq=False, slots=True)
class Engine:
    """Runs targets' roles; ``available(name)`` says why a backend cannot be used (None: it can)."""

    roles: Mapping[str, RoleConfig]
    backends: Collection[str]
    available: Callable[[str], str | None]
    _: KW_ONLY
    policy: Policy | None = None

    # ------------------------------------------------------------------ names

    def names(self) -> list[str]:
        return sorted(set(self.roles) | set(self.backends))

    def kind(self, target: str) -> Kind | None:
        """``backend`` or ``role`` (a backend wins when both exist), None when unknown."""
        if target in self.backends:
            return "backend"
        if target in self.roles:
            return "role"
        return None

    def is_role(self, entry: str, stack: Sequence[str] = ()) -> bool:
        """Whether a role's entry names a role (a backend of that name wins). A role
        reached again while being resolved is a cycle (the compiler rejects it: MUX030)."""
        if entry in self.backends or entry not in self.roles:
            return False
        if entry in stack:
            cycle = " → ".join([*stack[stack.index(entry) :], entry])
            raise BackendError(entry, ErrorKind.CONFIG, f"role cycle: {cycle}")
        return True

    def role(self, name: str) -> RoleConfig:
        role = self.roles.get(name)
        if role is None:
            raise BackendError(name, ErrorKind.CONFIG, f"unknown role `{name}`")
        return role

    def leaves(self, target: str) -> tuple[str, ...]:
        """Every backend ``target`` can reach, in role order, without repeats."""
        if self.kind(target) != "role":
            return (target,)
        found: list[str] = []

        def walk(name: str, stack: tuple[str, ...]) -> None:
            for entry in self.role(name).backends:
                if self.is_role(entry, stack):
                    walk(entry, (*stack, entry))
                elif entry not in found:
                    found.append(entry)

        walk(target, (target,))
        return tuple(found)

    async def _others_usable(self, name: str, target: str) -> bool:
        """Whether another backend of ``target`` could still serve (usable, not cooling)."""
        policy = self.policy
        for other in self.leaves(target):
            if other == name or other not in self.backends or self.available(other) is not None:
                continue
            if policy is None or await policy.remaining(other) <= 0:
                return True
        return False

    async def succeeded(self, backend: str) -> None:
        """A started answer of ``backend`` ended well (for ``settles=False`` routes)."""
        if self.policy is not None:
            await self.policy.succeeded(backend)

    async def failed_later(self, error: BackendError, target: str) -> None:
        """A started answer failed after its first byte: it counts like any failure."""
        if self.policy is not None:
            last = not await self._others_usable(error.backend, target)
            await self.policy.failed(error, last=last)

    # ------------------------------------------------------------------ routing

    async def route(
        self,
        target: str,
        attempt: Attempt[T],
        *,
        kind: Kind | None = None,
        discard: Discard[T] | None = None,
        whole: Whole[T] | None = None,
        whole_modes: Collection[str] = ("parallel",),
        settles: bool = True,
    ) -> Routed[T]:
        """Run ``attempt`` on ``target``'s backends per its mode.

        Raises the entry's own error (``first``), a :class:`RoleFailed`, or for a
        backend named directly :class:`Unusable` / :class:`Cooling` / its error.
        With ``settles=False`` a started answer is not yet a success for the policy: the
        caller reports its end (:meth:`succeeded`, :meth:`failed_later`)."""
        modes = frozenset(whole_modes) if whole else frozenset()
        run = _Run(attempt, discard, whole, modes, target, settles)
        kind = kind or self.kind(target)
        if kind == "backend":
            return await self._leaf(target, target, run)
        if kind != "role":
            raise BackendError(target, ErrorKind.CONFIG, f"unknown role or backend `{target}`")
        return await self._role(target, (target,), run)

    async def parallel(
        self,
        name: str,
        stack: tuple[str, ...],
        attempt: Attempt[T],
        *,
        whole: Whole[T] | None = None,
    ) -> list[Routed[T]]:
        """A parallel role: every entry at once (each routed by its own mode); the answers
        in role order (``entry`` is the role's entry), or :class:`RoleFailed` with fewer
        than ``min_success``."""
        role = self.role(name)
        entries = list(role.backends)
        run = _Run(attempt, None, whole, frozenset({"parallel"}) if whole else frozenset(), name)
        answers: list[Routed[T] | None] = [None] * len(entries)
        failures: list[BackendError | None] = [None] * len(entries)

        async def one(i: int, entry: str) -> None:
            try:
                answers[i] = await self._entry(entry, stack, run)
            except BackendError as exc:
                failures[i] = exc

        async with trio.open_nursery() as nursery:
            for i, entry in enumerate(entries):
                nursery.start_soon(one, i, entry)
        trace.members(name, _members(entries, answers, failures))  # for the run's console
        got = [a for a in answers if a is not None]
        if len(got) < role.min_success:
            errors = [f for f in failures if f is not None]
            summary = f"{len(got)} of {len(entries)} answered, {role.min_success} needed"
            raise RoleFailed(name, "parallel", errors, summary)
        return got

    async def _role(self, name: str, stack: tuple[str, ...], run: _Run[T]) -> Routed[T]:
        role = self.role(name)
        mode = role.execution
        if mode in run.whole_modes and run.whole is not None:
            return await run.whole(name, stack)
        entries = list(role.backends)
        if not entries:
            raise BackendError(name, ErrorKind.CONFIG, f"role `{name}` lists no backends")
        if mode == "race":
            return await self._race(name, entries, stack, run)
        errors: list[BackendError] = []
        for entry in entries:
            try:
                return await self._entry(entry, stack, run)
            except BackendError as exc:
                errors.append(exc)
                if mode == "first" and not skipped(exc):
                    raise  # the first usable entry failed: no failover
        summary = "no backend can be used" if mode == "first" else "every backend failed"
        raise RoleFailed(name, mode, errors, summary)

    async def _entry(self, entry: str, stack: tuple[str, ...], run: _Run[T]) -> Routed[T]:
        """One entry of a role: a nested role answers as one entry of its parent."""
        if self.is_role(entry, stack):
            inner = await self._role(entry, (*stack, entry), run)
            return Routed(inner.backend, entry, inner.value)
        return await self._leaf(entry, entry, run)

    async def _leaf(self, name: str, entry: str, run: _Run[T]) -> Routed[T]:
        if name not in self.backends:
            raise Unusable(name, f"unknown backend `{name}`")
        why = self.available(name)
        if why is not None:
            raise Unusable(name, why.removeprefix(f"backend `{name}`: "))
        policy = self.policy
        if policy is not None:
            left = await policy.remaining(name)
            if left > 0:
                raise Cooling(name, left)
        try:
            value = await run.attempt(name)
        except BackendError as exc:
            if policy is not None:
                await policy.failed(exc, last=not await self._others_usable(name, run.target))
            raise
        if policy is not None and run.settles:
            await policy.succeeded(name)
        return Routed(name, entry, value)

    async def _race(
        self, name: str, entries: list[str], stack: tuple[str, ...], run: _Run[T]
    ) -> Routed[T]:
        failures: list[BackendError | None] = [None] * len(entries)
        winner: list[Routed[T]] = []
        discard = run.discard or _nothing

        async def one(i: int, entry: str, scope: trio.CancelScope) -> None:
            try:
                got = await self._entry(entry, stack, run)
            except BackendError as exc:
                failures[i] = exc
                return
            if winner:
                with trio.CancelScope(shield=True):
                    await discard(got.value)
                return
            winner.append(got)
            scope.cancel()

        async with trio.open_nursery() as nursery:
            for i, entry in enumerate(entries):
                nursery.start_soon(one, i, entry, nursery.cancel_scope)
        if winner:
            return winner[0]
        errors = [f for f in failures if f is not None]
        raise RoleFailed(name, "race", errors, "every backend failed")

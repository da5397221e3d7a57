"""The gateway's shared state: cooldowns, per-key rate limits and usage counters.

One :class:`State` protocol, two implementations:

- :class:`MemoryState` (the default): one process's view, in dicts.
- :class:`muxlang.serve.redis_state.RedisState` (``[serve] state = "redis://HOST:PORT/DB"``):
  every ``muxlang serve`` naming the same Redis shares cooldowns, limits and usage;
  when Redis is unreachable it serves on a :class:`MemoryState` of its own.

Times are wall-clock epochs (``time.time()``), so replicas agree on them. Windows:

- ``rpm`` / ``tpm``: a **fixed** 60-second window aligned to the wall-clock minute
  (every replica counts into the same window). A refusal's Retry-After is the time
  left in the window. Tokens are counted when an answer's usage is known, so a key
  is refused once the tokens already used this minute reach ``tpm``.
- ``max_cost``: USD per calendar month (UTC); Retry-After is the time left in the month.
- failures (:meth:`State.note_failure`): a sliding window of ``window_s`` seconds.
"""

from __future__ import annotations

import calendar
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from muxlang._frozen import frozen

#: the rate-limit window, in seconds
WINDOW_S = 60

Limit = Literal["rpm", "tpm", "max_cost"]


@frozen
class KeyLimits:
    """A ``[serve.keys.NAME]`` table's limits (None: unlimited)."""

    rpm: int | None = None
    tpm: int | None = None
    max_cost: float | None = None

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_cost is not None


@frozen
class Refusal:
    """A request over one of its key's limits: which one, and when to come back."""

    limit: Limit
    retry_after: float


@frozen
class Usage:
    """One key's counters: this minute's requests and tokens, this month's tokens and cost."""

    requests_minute: int = 0
    tokens_minute: int = 0
    tokens_month: int = 0
    cost_month: float = 0.0


def window_of(now: float) -> int:
    """The index of the fixed rate-limit window holding ``now``."""
    return int(now // WINDOW_S)


def window_left(now: float) -> float:
    """Seconds until the window holding ``now`` ends (never 0: at least one second)."""
    return max(1.0, math.ceil((window_of(now) + 1) * WINDOW_S - now))


def month_of(now: float) -> str:
    """The UTC calendar month holding ``now``, as ``YYYY-MM``."""
    return time.strftime("%Y-%m", time.gmtime(now))


def month_left(now: float) -> float:
    """Seconds until the UTC calendar month holding ``now`` ends."""
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return max(1.0, math.ceil(calendar.timegm((year, month, 1, 0, 0, 0)) - now))


def refusal_for(limit: Limit, now: float) -> Refusal:
    return Refusal(limit, month_left(now) if limit == "max_cost" else window_left(now))


class State(Protocol):
    """What the gateway remembers between requests (see the module docstring)."""

    async def cooldown_until(self, backend: str) -> float | None:
        """The epoch until which ``backend`` is cooling down, or None when it is not."""
        ...

    async def cool(self, backend: str, seconds: float) -> None:
        """Cool ``backend`` for ``seconds`` from now (an existing longer cooldown stays)."""
        ...

    async def note_failure(self, backend: str, window_s: float) -> int:
        """Count a failure of ``backend``; the failures in the last ``window_s`` seconds,
        this one included."""
        ...

    async def clear(self, backend: str) -> None:
        """Forget ``backend``'s cooldown and failures (after a success)."""
        ...

    async def admit(self, key: str, limits: KeyLimits) -> Refusal | None:
        """Count one request of ``key``, or refuse it when a limit is reached (a refused
        request is not counted)."""
        ...

    async def add_usage(self, key: str, tokens: int, cost: float) -> None:
        """Add an answered request's tokens (in + out) and cost (USD) to ``key``."""
        ...

    async def usage(self, key: str) -> Usage:
        """``key``'s counters now."""
        ...

    async def aclose(self) -> None:
        """Release connections (the in-memory state has none)."""
        ...


def open_state(url: str | None) -> State:
    """The state ``[serve] state`` names: None or ``"memory"`` for this process's own,
    a ``redis://`` (``rediss://``, ``unix://``) URL for Redis shared by replicas.
    Raises ValueError for a URL redis cannot use."""
    if url is None or url == "memory":
        return MemoryState()
    from muxlang.serve.redis_state import RedisState

    return RedisState(url)


@dataclass
class _Counter:
    period: int | str
    value: float = 0.0

    def at(self, period: int | str) -> _Counter:
        if self.period != period:
            self.period, self.value = period, 0.0
        return self


@dataclass
class MemoryState:
    """One process's state (the default, and the fallback while Redis is away)."""

    now: Callable[[], float] = time.time
    _cool: dict[str, float] = field(default_factory=dict)
    _fails: dict[str, deque[float]] = field(default_factory=dict)
    _requests: dict[str, _Counter] = field(default_factory=dict)
    _tokens: dict[str, _Counter] = field(default_factory=dict)
    _month_tokens: dict[str, _Counter] = field(default_factory=dict)
    _cost: dict[str, _Counter] = field(default_factory=dict)

    async def cooldown_until(self, backend: str) -> float | None:
        until = self._cool.get(backend)
        if until is None:
            return None
        if until <= self.now():
            del self._cool[backend]
            return None
        return until

    async def cool(self, backend: str, seconds: float) -> None:
        until = self.now() + max(0.0, seconds)
        if until > self._cool.get(backend, 0.0):
            self._cool[backend] = until

    async def note_failure(self, backend: str, window_s: float) -> int:
        now = self.now()
        fails = self._fails.setdefault(backend, deque())
        fails.append(now)
        while fails and fails[0] <= now - window_s:
            fails.popleft()
        return len(fails)

    async def clear(self, backend: str) -> None:
        self._cool.pop(backend, None)
        self._fails.pop(backend, None)

    def _counter(self, table: dict[str, _Counter], key: str, period: int | str) -> _Counter:
        counter = table.get(key)
        if counter is None:
            counter = table[key] = _Counter(period)
        return counter.at(period)

    async def admit(self, key: str, limits: KeyLimits) -> Refusal | None:
        now = self.now()
        window, month = window_of(now), month_of(now)
        cost = self._counter(self._cost, key, month).value
        if limits.max_cost is not None and cost >= limits.max_cost:
            return refusal_for("max_cost", now)
        tokens = self._counter(self._tokens, key, window).value
        if limits.tpm is not None and tokens >= limits.tpm:
            return refusal_for("tpm", now)
        requests = self._counter(self._requests, key, window)
        if limits.rpm is not None and requests.value >= limits.rpm:
            return refusal_for("rpm", now)
        requests.value += 1
        return None

    async def add_usage(self, key: str, tokens: int, cost: float) -> None:
        now = self.now()
        self._counter(self._tokens, key, window_of(now)).value += tokens
        self._counter(self._month_tokens, key, month_of(now)).value += tokens
        self._counter(self._cost, key, month_of(now)).value += cost

    async def usage(self, key: str) -> Usage:
        now = self.now()
        window, month = window_of(now), month_of(now)
        return Usage(
            requests_minute=int(self._counter(self._requests, key, window).value),
            tokens_minute=int(self._counter(self._tokens, key, window).value),
            tokens_month=int(self._counter(self._month_tokens, key, month).value),
            cost_month=self._counter(self._cost, key, month).value,
        )

    async def aclose(self) -> None:
        return None

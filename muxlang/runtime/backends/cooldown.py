"""Cooldowns: the role engine's policy that skips backends after failures (``muxlang serve``).

The bookkeeping sits behind :class:`CooldownStore` (four async calls), so the
gateway can keep it in one process or share it between replicas through Redis
(``muxlang.serve.state``). The rules (SPEC section 15):

- a rate limit (429) cools the backend at once, for the server's Retry-After,
  else ``seconds``;
- other failures that say the backend is in trouble (server errors, connection
  failures, timeouts) cool it for ``seconds`` once ``failures`` of them happened
  within ``window`` seconds;
- the last member able to serve a request is never cooled (cooling it would
  only turn the next request into a 429 without trying anything);
- client and configuration errors never cool; a success clears the count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Protocol

from muxlang.llm import BackendError, ErrorKind

#: final errors that count towards a cooldown
TROUBLE = frozenset({ErrorKind.SERVER, ErrorKind.CONNECTION, ErrorKind.TIMEOUT})


class CooldownStore(Protocol):
    """Where cooldowns live (``muxlang.serve.state.State`` provides these)."""

    async def cooldown_until(self, backend: str) -> float | None: ...

    async def cool(self, backend: str, seconds: float) -> None: ...

    async def note_failure(self, backend: str, window_s: float) -> int: ...

    async def clear(self, backend: str) -> None: ...


@dataclass(eq=False, slots=True)
class Cooldowns:
    """The engine's :class:`~muxlang.runtime.backends.engine.Policy` over a store.

    ``now`` must be the clock the store writes its times with."""

    store: CooldownStore
    now: Callable[[], float]
    _: KW_ONLY
    seconds: float = 30.0
    failures: int = 3
    window: float = 60.0

    async def remaining(self, backend: str) -> float:
        until = await self.store.cooldown_until(backend)
        if until is None:
            return 0.0
        return max(0.0, until - self.now())

    async def failed(self, error: BackendError, *, last: bool) -> None:
        if last or (self.seconds <= 0 and error.retry_after is None):
            return
        if error.kind is ErrorKind.RATE_LIMIT:
            wait = error.retry_after if error.retry_after is not None else self.seconds
            if wait > 0:
                await self.store.cool(error.backend, wait)
            return
        if error.kind not in TROUBLE:
            return
        count = await self.store.note_failure(error.backend, self.window)
        if count >= self.failures and self.seconds > 0:
            await self.store.cool(error.backend, self.seconds)

    async def succeeded(self, backend: str) -> None:
        await self.store.clear(backend)

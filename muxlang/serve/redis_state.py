"""Gateway state shared through Redis (``[serve] state = "redis://HOST:PORT/DB"``).

redis-py's async client runs on asyncio, not trio, so this uses the synchronous
client from worker threads (``trio.to_thread.run_sync``, at most
:data:`MAX_THREADS` at once). Every operation is one round trip: a Lua script
(``EVALSHA``) or a pipeline. A request waits for one round trip per state call
it makes (a key's limit check, each backend's cooldown read); a success's
clear is skipped when the read just before found nothing to clear, and the
usage is counted after the answer was sent.

Keys (all under ``muxlang:``, all with a TTL, so nothing grows without bound):

- ``muxlang:cool:{backend}`` — the cooldown's end (epoch), expiring with it
- ``muxlang:fail:{backend}`` — a sorted set of failure times, expiring after the window
- ``muxlang:rpm:{minute}:{key}`` / ``muxlang:tpm:{minute}:{key}`` — this minute's
  requests and tokens, expiring after two minutes
- ``muxlang:tokens:{YYYY-MM}:{key}`` / ``muxlang:cost:{YYYY-MM}:{key}`` — the month's
  tokens and USD, expiring 40 days after the last change

When Redis cannot be reached (or answers with an error) the replica serves on its
own :class:`~muxlang.serve.state.MemoryState`, logs that once, and tries Redis
again every :data:`RETRY_S` seconds from a background task (no request waits for
it); it logs once more when Redis is back. No request fails because of Redis.
The redis exceptions are translated here and nowhere else.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from muxlang.serve.state import (
    KeyLimits,
    MemoryState,
    Refusal,
    Usage,
    month_of,
    refusal_for,
    window_of,
)

log = logging.getLogger("muxlang.serve")

T = TypeVar("T")

#: worker threads talking to Redis at once (and so pooled connections)
MAX_THREADS = 16
#: seconds before a replica that lost Redis tries it again
RETRY_S = 5.0
#: connect and read timeout, seconds: a dead Redis costs one request this much
TIMEOUT_S = 0.25
#: TTL of the month counters, seconds
MONTH_TTL_S = 40 * 86400

# KEYS[1] cooldown key; ARGV[1] the new end (epoch), ARGV[2] its TTL in ms
_COOL = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0
"""

# KEYS: rpm, tpm, cost; ARGV: rpm, tpm, max_cost ('' = unlimited)
# returns 0 (admitted and counted), 1 max_cost, 2 tpm, 3 rpm
_ADMIT = """
if ARGV[3] ~= '' and tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then
  return 1
end
if ARGV[2] ~= '' and tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then
  return 2
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] ~= '' and n >= tonumber(ARGV[1]) then
  return 3
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
return 0
"""

_REFUSED = {1: "max_cost", 2: "tpm", 3: "rpm"}


def where(url: str) -> str:
    """``url`` without its user name and password, for logs."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)


class RedisState:
    """A :class:`~muxlang.serve.state.State` every replica naming the same Redis shares."""

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], float] = time.time,
        retry_s: float = RETRY_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        """Raises ValueError for a URL redis cannot use (no connection is made here)."""
        self.now = now
        self.where = where(url)
        self.retry_s = retry_s
        self.local = MemoryState(now=now)
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            max_connections=MAX_THREADS,
            decode_responses=True,
        )
        self._limiter = trio.CapacityLimiter(MAX_THREADS)
        self._cool = self._client.register_script(_COOL)
        self._admit = self._client.register_script(_ADMIT)
        self._down = False
        self._retry_at = 0.0
        self._probing = False
        # backends whose last read found neither a cooldown nor failures: a success
        # then has nothing to clear, which saves the request a round trip
        self._clean: set[str] = set()

    @property
    def shared(self) -> bool:
        """Whether the last operation reached Redis (False: serving on local state)."""
        return not self._down

    # ------------------------------------------------------------------ one boundary

    async def _run(self, op: Callable[[], T]) -> tuple[bool, T | None]:
        """``(True, result)`` from Redis, or ``(False, None)`` when Redis is away (then
        no request waits for it: a background task tries it again now and then)."""
        if self._down:
            if not self._probing and trio.current_time() >= self._retry_at:
                self._probing = True
                trio.lowlevel.spawn_system_task(self._probe)
            return False, None
        try:
            result = await trio.to_thread.run_sync(op, limiter=self._limiter)
        except redis.RedisError as exc:
            self._went_down(exc)
            return False, None
        return True, result

    async def _probe(self) -> None:
        """Ping Redis once, off any request; share again when it answers."""
        try:
            await trio.to_thread.run_sync(self._client.ping, limiter=self._limiter)
        except redis.RedisError:
            self._retry_at = trio.current_time() + self.retry_s
            return
        finally:
            self._probing = False
        self._down = False
        log.warning(
            "shared state: Redis at %s is reachable again; cooldowns and limits are "
            "shared with the other replicas again",
            self.where,
        )

    def _went_down(self, exc: redis.RedisError) -> None:
        self._retry_at = trio.current_time() + self.retry_s
        if self._down:
            return
        self._down = True
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.warning(
            "shared state: Redis at %s is unreachable (%s); this replica serves on its own "
            "cooldowns and limits until it is back (trying again every %g s)",
            self.where,
            reason,
            self.retry_s,
        )

    async def ping(self) -> bool:
        """Try Redis now (at startup); False (logged) when it is away."""
        ok, _ = await self._run(self._client.ping)
        return ok

    # ------------------------------------------------------------------ cooldowns

    async def cooldown_until(self, backend: str) -> float | None:
        def op() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            pipe.get(f"muxlang:cool:{backend}")
            pipe.exists(f"muxlang:fail:{backend}")
            return pipe.execute()

        ok, got = await self._run(op)
        if not ok or got is None:
            return await self.local.cooldown_until(backend)
        raw, failures = got
        if raw is None and not failures:
            self._clean.add(backend)
        else:
            self._clean.discard(backend)
        if raw is None:
            return None
        until = float(raw)
        return until if until > self.now() else None

    async def cool(self, backend: str, seconds: float) -> None:
        if seconds <= 0:
            return
        self._clean.discard(backend)
        until = self.now() + seconds
        ttl_ms = max(1, math.ceil(seconds * 1000))
        ok, _ = await self._run(
            lambda: self._cool(keys=[f"muxlang:cool:{backend}"], args=[repr(until), ttl_ms])
        )
        if not ok:
            await self.local.cool(backend, seconds)

    async def note_failure(self, backend: str, window_s: float) -> int:
        self._clean.discard(backend)
        now = self.now()
        key = f"muxlang:fail:{backend}"
        member = f"{now!r}:{os.urandom(6).hex()}"

        def op() -> int:
            pipe = self._client.pipeline(transaction=True)
            pipe.zadd(key, {member: now})
            pipe.zremrangebyscore(key, "-inf", repr(now - window_s))  # as old as the window: out
            pipe.zcard(key)
            pipe.pexpire(key, max(1, math.ceil(window_s * 1000)))
            return int(pipe.execute()[2])

        ok, count = await self._run(op)
        if not ok or count is None:
            return await self.local.note_failure(backend, window_s)
        return count

    async def clear(self, backend: str) -> None:
        if backend in self._clean and not self._down:
            return  # read clean just before this request: nothing to clear
        ok, _ = await self._run(
            lambda: self._client.delete(f"muxlang:cool:{backend}", f"muxlang:fail:{backend}")
        )
        if not ok:
            await self.local.clear(backend)
        else:
            self._clean.add(backend)

    # ------------------------------------------------------------------ keys

    async def admit(self, key: str, limits: KeyLimits) -> Refusal | None:
        now = self.now()
        window, month = window_of(now), month_of(now)
        keys = [f"muxlang:rpm:{window}:{key}", f"muxlang:tpm:{window}:{key}"]
        keys.append(f"muxlang:cost:{month}:{key}")
        args = [_opt(limits.rpm), _opt(limits.tpm), _opt(limits.max_cost)]
        ok, code = await self._run(lambda: self._admit(keys=keys, args=args))
        if not ok:
            return await self.local.admit(key, limits)
        limit = _REFUSED.get(int(code or 0))
        return None if limit is None else refusal_for(limit, now)  # type: ignore[arg-type]

    async def add_usage(self, key: str, tokens: int, cost: float) -> None:
        if tokens <= 0 and cost <= 0:
            return
        now = self.now()
        window, month = window_of(now), month_of(now)

        def op() -> Any:
            pipe = self._client.pipeline(transaction=False)
            pipe.incrby(f"muxlang:tpm:{window}:{key}", tokens)
            pipe.expire(f"muxlang:tpm:{window}:{key}", 120)
            pipe.incrby(f"muxlang:tokens:{month}:{key}", tokens)
            pipe.expire(f"muxlang:tokens:{month}:{key}", MONTH_TTL_S)
            pipe.incrbyfloat(f"muxlang:cost:{month}:{key}", cost)
            pipe.expire(f"muxlang:cost:{month}:{key}", MONTH_TTL_S)
            return pipe.execute()

        ok, _ = await self._run(op)
        if not ok:
            await self.local.add_usage(key, tokens, cost)

    async def usage(self, key: str) -> Usage:
        now = self.now()
        window, month = window_of(now), month_of(now)
        names = [f"muxlang:rpm:{window}:{key}", f"muxlang:tpm:{window}:{key}"]
        names += [f"muxlang:tokens:{month}:{key}", f"muxlang:cost:{month}:{key}"]
        ok, raw = await self._run(lambda: self._client.mget(names))
        if not ok or raw is None:
            return await self.local.usage(key)
        requests, tokens, month_tokens, cost = (v or "0" for v in raw)
        return Usage(int(requests), int(tokens), int(month_tokens), float(cost))

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._client.close)

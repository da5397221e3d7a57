"""The Redis-backed gateway state against a real redis-server on loopback."""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from muxlang.serve.redis_state import RedisState, where
from muxlang.serve.state import KeyLimits, MemoryState, Refusal, Usage, open_state
from tests.serve.redis_support import RedisServer, redis_server
from tests.serve.serve_support import Clock

pytestmark = pytest.mark.slow

#: 2026-12-04 18:00:00 UTC: the start of a minute
START = float(calendar.timegm((2026, 12, 4, 18, 0, 0)))


def shared(state: RedisState) -> bool:
    return state.shared


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as srv:
        yield srv


@pytest.fixture
def fresh(server: RedisServer) -> RedisServer:
    if server.proc is None:
        server.start()
    server.client().flushdb()
    return server


async def test_two_replicas_share_cooldowns_and_failures(fresh: RedisServer) -> None:
    clock = Clock(START)
    a, b = RedisState(fresh.url, now=clock), RedisState(fresh.url, now=clock)
    await a.cool("gpt", 30)
    assert await b.cooldown_until("gpt") == START + 30
    await b.cool("gpt", 5)  # a shorter cooldown never shortens a longer one
    assert await a.cooldown_until("gpt") == START + 30
    assert await a.note_failure("claude", 60) == 1
    clock.t += 10
    assert await b.note_failure("claude", 60) == 2
    clock.t += 55  # the first failure left the window
    assert await a.note_failure("claude", 60) == 2
    await b.clear("gpt")
    await b.clear("claude")
    assert await a.cooldown_until("gpt") is None
    assert await a.note_failure("claude", 60) == 1
    clock.t = START + 30.5
    await a.cool("gpt", 1)
    clock.t += 2
    assert await b.cooldown_until("gpt") is None
    assert a.shared
    assert b.shared


async def test_a_key_s_limits_are_counted_across_replicas(fresh: RedisServer) -> None:
    clock = Clock(START + 20)
    a, b = RedisState(fresh.url, now=clock), RedisState(fresh.url, now=clock)
    limits = KeyLimits(rpm=3)
    assert await a.admit("team", limits) is None
    assert await b.admit("team", limits) is None
    assert await a.admit("team", limits) is None
    assert await b.admit("team", limits) == Refusal("rpm", 40)
    assert await a.admit("other", limits) is None
    clock.t = START + 60
    assert await b.admit("team", limits) is None

    tokens = KeyLimits(tpm=50, max_cost=0.5)
    await a.add_usage("team", 50, 0.25)
    assert await b.admit("team", tokens) == Refusal("tpm", 60)
    await a.add_usage("team", 0, 0.25)
    refusal = await b.admit("team", tokens)
    assert refusal is not None
    assert refusal.limit == "max_cost"
    assert await a.usage("team") == Usage(
        requests_minute=1, tokens_minute=50, tokens_month=50, cost_month=0.5
    )


async def test_every_key_expires(fresh: RedisServer) -> None:
    state = RedisState(fresh.url)
    await state.cool("gpt", 30)
    await state.note_failure("gpt", 60)
    await state.admit("team", KeyLimits(rpm=10))
    await state.add_usage("team", 10, 0.01)
    client = fresh.client()
    keys = sorted(str(k) for k in client.keys("*"))
    assert keys, "nothing was written"
    assert all(k.startswith("muxlang:") for k in keys)
    ttls = {k: client.ttl(k) for k in keys}
    assert all(t > 0 for t in ttls.values()), ttls


async def test_lost_redis_serves_locally_logs_once_and_recovers(
    fresh: RedisServer, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.WARNING, logger="muxlang.serve")
    state = RedisState(fresh.url, retry_s=5)
    limits = KeyLimits(rpm=2)
    assert await state.admit("team", limits) is None
    fresh.stop()
    # every operation still answers, from this replica's own state
    await state.cool("gpt", 30)
    assert await state.cooldown_until("gpt") is not None
    assert await state.note_failure("claude", 60) == 1
    assert await state.admit("team", limits) is None
    assert await state.admit("team", limits) is None
    assert await state.admit("team", limits) is not None
    assert not state.shared
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1
    assert fresh.url.removeprefix("redis://") in down[0].getMessage()

    fresh.start()
    await trio.sleep(1)  # still inside the retry interval: Redis is not asked
    assert await state.cooldown_until("gpt") is not None
    assert not shared(state)
    await trio.sleep(5)
    # the next call starts a background ping and is answered locally, without waiting
    assert await state.cooldown_until("gpt") is not None
    deadline = time.monotonic() + 10
    while not shared(state) and time.monotonic() < deadline:
        await trio.sleep(0.01)
    assert shared(state)
    assert await state.cooldown_until("gpt") is None  # the shared (empty) state again
    back = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(back) == 1
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


async def test_a_redis_that_never_answered_is_no_failure(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.WARNING, logger="muxlang.serve")
    dead = RedisServer(tmp_path)  # a free port nobody listens on
    state = RedisState(dead.url)
    assert not await state.ping()
    assert await state.admit("team", KeyLimits(rpm=1)) is None
    refusal = await state.admit("team", KeyLimits(rpm=1))
    assert refusal is not None
    assert refusal.limit == "rpm"
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


def test_logs_never_show_the_password() -> None:
    assert where("redis://:s3cret-pass@redis.internal:6380/2") == "redis://redis.internal:6380/2"
    assert where("rediss://user:pw@host/0") == "rediss://host/0"
    assert where("unix://:pw@/run/redis/redis.sock?db=1") == "unix:///run/redis/redis.sock"


def test_open_state_picks_the_implementation(server: RedisServer) -> None:
    kinds = [type(open_state(url)) for url in (None, "memory", server.url)]
    assert kinds == [MemoryState, MemoryState, RedisState]


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_memory_and_redis_agree_at_the_edge_of_the_failure_window(
    kind: str, fresh: RedisServer
) -> None:
    clock = Clock(START)
    state = MemoryState(now=clock) if kind == "memory" else RedisState(fresh.url, now=clock)
    assert await state.note_failure("gpt", 60) == 1
    clock.t += 59.5
    assert await state.note_failure("gpt", 60) == 2
    clock.t += 0.5  # the first failure is now exactly 60 s old: out of the window
    assert await state.note_failure("gpt", 60) == 2

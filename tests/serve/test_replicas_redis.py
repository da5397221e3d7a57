"""Two real ``muxlang serve`` replicas sharing one real Redis (``[serve] state``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.serve.redis_support import RedisServer, redis_server
from tests.serve.replica_support import (
    Replica,
    clean_env,
    in_one_minute,
    upstream_backend,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.slow

ADMIN = "sk-admin-key-0001"
TEAM = "sk-team-key-0002"
USER = [{"role": "user", "content": "hello there"}]
DOWN = "shared state: Redis at redis://127.0.0.1:"
UNREACHABLE = "is unreachable"
BACK = "is reachable again"


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
    redis: RedisServer,
    upstream: FakeLLMServer,
    limited: FakeLLMServer,
) -> Iterator[tuple[Replica, Replica]]:
    tmp = tmp_path_factory.mktemp("replicas")
    root = write_project(
        tmp / "project",
        f"""
[serve]
state = "{redis.url}"
api_keys = ["{ADMIN}"]

[serve.keys.team]
key = "{TEAM}"
rpm = 3

{upstream_backend("limited", limited, "openai", "gpt-limited")}

{upstream_backend("up-openai", upstream, "openai", "gpt-up")}

[roles.duo]
backends = ["limited", "up-openai"]
execution = "fallback"
""",
    )
    env = clean_env(tmp)
    a = Replica(root, env)
    b = Replica(root, env)
    try:
        yield a, b
    finally:
        assert a.stop() == 0, a.log
        assert b.stop() == 0, b.log


def client(replica: Replica, key: str = ADMIN) -> openai.OpenAI:
    return openai.OpenAI(base_url=replica.url + "/v1", api_key=key, max_retries=0, timeout=20)


def ask(replica: Replica, model: str, key: str = ADMIN) -> str:
    reply = client(replica, key).chat.completions.with_raw_response.create(
        model=model,
        messages=USER,  # type: ignore[arg-type]
    )
    return reply.headers["x-muxlang-backend"]


def state_up(replica: Replica) -> float:
    """``muxlang_shared_state_up`` on the replica's /metrics."""
    scraped = httpx.get(replica.url + "/metrics", headers={"x-api-key": ADMIN})
    for family in text_string_to_metric_families(scraped.text):
        for sample in family.samples:
            if sample.name == "muxlang_shared_state_up":
                return sample.value
    raise AssertionError("no muxlang_shared_state_up")


def test_a_429_seen_by_one_replica_cools_the_backend_for_the_other(
    replicas: tuple[Replica, Replica],
    redis: RedisServer,
    upstream: FakeLLMServer,
    limited: FakeLLMServer,
) -> None:
    a, b = replicas
    redis.client().flushdb()
    limited.reset()
    upstream.reset()
    upstream.default = lambda r: Reply(text="fine")
    assert ask(a, "duo") == "up-openai"  # limited answered 429: A cooled it, fell back
    assert len(limited.requests) == 1
    assert redis.client().ttl("muxlang:cool:limited") > 20
    for _ in range(3):
        assert ask(b, "duo") == "up-openai"
    assert len(limited.requests) == 1  # B never asked the cooling backend
    assert len(upstream.requests) == 4


def test_a_key_s_rpm_is_shared_by_the_replicas(
    replicas: tuple[Replica, Replica], redis: RedisServer, upstream: FakeLLMServer
) -> None:
    a, b = replicas
    upstream.default = lambda r: Reply(text="fine")

    def three_then_refused() -> openai.RateLimitError:
        redis.client().flushdb()
        ask(a, "up-openai", TEAM)
        ask(b, "up-openai", TEAM)
        ask(a, "up-openai", TEAM)
        with pytest.raises(openai.RateLimitError) as caught:
            ask(b, "up-openai", TEAM)
        return caught.value

    error = in_one_minute(three_then_refused)
    assert "key `team` reached its limit of 3 requests per minute" in error.message
    assert 1 <= int(error.response.headers["retry-after"]) <= 60


def test_replicas_keep_serving_when_redis_goes_away_and_say_so_once(
    replicas: tuple[Replica, Replica], redis: RedisServer, upstream: FakeLLMServer
) -> None:
    a, b = replicas
    upstream.default = lambda r: Reply(text="fine")
    assert a.count(UNREACHABLE) == b.count(UNREACHABLE) == 0
    redis.stop()
    try:
        for _ in range(5):
            for replica in (a, b):
                assert ask(replica, "up-openai") == "up-openai"
                assert ask(replica, "duo") == "up-openai"
        for replica in (a, b):
            assert replica.count(UNREACHABLE) == 1, replica.log
            assert DOWN in replica.log
            assert state_up(replica) == 0

        # a key's limits still hold, counted by each replica alone meanwhile
        def refused_within_four() -> None:
            with pytest.raises(openai.RateLimitError):
                for _ in range(4):
                    ask(a, "up-openai", TEAM)

        in_one_minute(refused_within_four)
    finally:
        redis.start()

    def back(replica: Replica) -> bool:
        ask(replica, "up-openai")
        return replica.count(BACK) == 1

    for replica in (a, b):
        wait_for(lambda replica=replica: back(replica), timeout=30)
        assert replica.count(UNREACHABLE) == 1
        assert replica.count(BACK) == 1
        assert "Traceback" not in replica.log
        assert state_up(replica) == 1
    ask(b, "up-openai", TEAM)  # counted in Redis again
    assert redis.client().keys("muxlang:rpm:*:team")

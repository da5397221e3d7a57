"""``GET /metrics`` of a live ``muxlang serve``, read with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.llm_server import FakeLLMServer, Reply, fake_llm_server
from tests.serve.replica_support import serving, upstream_backend
from tests.serve.serve_support import answer, call, make_gateway

pytestmark = pytest.mark.slow

ADMIN = "sk-admin-key-0001"
CI = "sk-ci-key-0002"
USER = [{"role": "user", "content": "hello there"}]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with fake_llm_server(lambda r: Reply(text="fine", usage=(8, 4))) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer, limited: FakeLLMServer
) -> Iterator[str]:
    config = f"""
[serve]
api_keys = ["{ADMIN}"]

[serve.keys.ci]
key = "{CI}"
rpm = 1

{upstream_backend("up-openai", upstream, "openai", "gpt-up")}
price = {{ input = 1.0, output = 2.0 }}

{upstream_backend("limited", limited, "openai", "gpt-limited")}

[roles.duo]
backends = ["limited", "up-openai"]
execution = "fallback"
"""
    with serving(tmp_path_factory.mktemp("metrics"), config) as replica:
        yield replica.url


def test_metrics_count_requests_tokens_cooldowns_and_refusals(gateway: str) -> None:
    oa = openai.OpenAI(base_url=gateway + "/v1", api_key=ADMIN, max_retries=0, timeout=20)
    an = anthropic.Anthropic(base_url=gateway, api_key=ADMIN, max_retries=0, timeout=20)
    oa.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]  # relayed
    an.messages.create(model="up-openai", max_tokens=9, messages=USER)  # type: ignore[arg-type]
    oa.chat.completions.create(model="duo", messages=USER)  # type: ignore[arg-type]  # cools `limited`
    with pytest.raises(openai.NotFoundError):
        oa.chat.completions.create(model="no-such-model-xyz", messages=USER)  # type: ignore[arg-type]
    ci = openai.OpenAI(base_url=gateway + "/v1", api_key=CI, max_retries=0, timeout=20)
    ci.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        ci.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]

    scraped = httpx.get(gateway + "/metrics", headers={"authorization": f"Bearer {ADMIN}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(scraped.text)
    requests = "muxlang_requests_total"
    assert value(found, requests, model="up-openai", backend="up-openai", status="200") == 3
    assert value(found, requests, model="duo", backend="up-openai", status="200") == 1
    assert value(found, requests, model="up-openai", backend="none", status="429") == 1
    unknown = [k for k in found if k[0] == requests and ("model", "unknown") in k[1]]
    assert [dict(k[1])["status"] for k in unknown] == ["404"]
    assert not any("no-such-model-xyz" in str(k) for k in found)  # clients cannot add labels
    tokens = "muxlang_tokens_total"
    assert value(found, tokens, model="up-openai", backend="up-openai", direction="in") == 24
    assert value(found, tokens, model="up-openai", backend="up-openai", direction="out") == 12
    assert value(found, tokens, model="duo", backend="up-openai", direction="in") == 8
    assert value(found, "muxlang_cooldowns_total", backend="limited") == 1
    assert 25 < value(found, "muxlang_backend_cooldown_seconds", backend="limited") <= 30
    assert value(found, "muxlang_backend_cooldown_seconds", backend="up-openai") == 0
    assert value(found, "muxlang_rate_limited_total", key="ci", limit="rpm") == 1
    # 8 in x $1/M + 4 out x $2/M
    assert value(found, "muxlang_cost_usd_total", key="ci") == pytest.approx(16e-6)
    assert value(found, "muxlang_request_duration_seconds_count", model="up-openai") == 4
    assert value(found, "muxlang_shared_state_up") == 1


def test_metrics_need_a_key_when_keys_are_configured(gateway: str) -> None:
    assert httpx.get(gateway + "/metrics").status_code == 401
    assert httpx.post(gateway + "/metrics", headers={"x-api-key": ADMIN}).status_code == 405


async def test_each_gateway_has_its_own_registry() -> None:
    first, fakes = make_gateway(["a"])
    second, _ = make_gateway(["a"])
    fakes["a"].default = answer("hi", usage=(3, 2))
    body = {"model": "a", "messages": USER}
    assert (await call(first, "POST", "/v1/chat/completions", body)).status == 200
    one = samples((await call(first, "GET", "/metrics")).body.decode())
    two = samples((await call(second, "GET", "/metrics")).body.decode())
    assert value(one, "muxlang_requests_total", model="a", backend="a", status="200") == 1
    assert value(two, "muxlang_requests_total", model="a", backend="a", status="200") == 0

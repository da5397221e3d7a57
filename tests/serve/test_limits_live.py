"""Per-key limits of a live ``muxlang serve``, as the official SDKs meet them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.serve.replica_support import (
    MUXLANG,
    clean_env,
    in_one_minute,
    priced_upstreams,
    serving,
    write_project,
)

pytestmark = pytest.mark.slow

ADMIN = "sk-admin-key-0001"
CI = "sk-ci-key-0002"
USER = [{"role": "user", "content": "hello there"}]


def config(upstream: FakeLLMServer) -> str:
    return f"""
[serve]
api_keys = ["${{ADMIN_KEY}}"]

[serve.keys.ci]
key = "${{CI_KEY}}"
rpm = 2

[serve.keys.narrow]
key = "sk-narrow-key-0003"
models = ["up-openai"]

[serve.keys.tokens]
key = "sk-tokens-key-0004"
tpm = 10

[serve.keys.translated]
key = "sk-translated-key-0005"
tpm = 10

[serve.keys.budget]
key = "sk-budget-key-0006"
max_cost = 0.01

{priced_upstreams(upstream)}"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("limits")
    with serving(tmp, config(upstream), ADMIN_KEY=ADMIN, CI_KEY=CI) as replica:
        yield replica.url
    assert CI not in replica.log


@pytest.fixture(autouse=True)
def answers(upstream: FakeLLMServer) -> None:
    upstream.reset()
    upstream.default = lambda r: Reply(text="fine", usage=(8, 4))


def oa(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0, timeout=20)


def an(gateway: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0, timeout=20)


def test_rpm_refuses_the_third_request_of_a_minute_with_retry_after(
    gateway: str, upstream: FakeLLMServer
) -> None:
    client = oa(gateway, CI)

    def two_then_refused() -> openai.RateLimitError:
        client.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]
        client.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]
        asked = len(upstream.requests)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]
        assert len(upstream.requests) == asked  # refused before any backend was asked
        return caught.value

    error = in_one_minute(two_then_refused)
    assert error.status_code == 429
    left = 60 - int(time.time() % 60)
    assert abs(int(error.response.headers["retry-after"]) - left) <= 2
    assert "key `ci` reached its limit of 2 requests per minute (`rpm`)" in error.message
    assert CI not in error.message
    assert error.body["type"] == "rate_limit_error"  # type: ignore[index]


def test_api_keys_keep_working_unlimited(gateway: str) -> None:
    client = oa(gateway, ADMIN)
    for _ in range(4):
        reply = client.chat.completions.create(model="up-anthropic", messages=USER)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "fine"


def test_an_unknown_key_is_refused(gateway: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        oa(gateway, "sk-not-a-key").chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]


def test_models_limits_what_a_key_may_use_and_see(gateway: str, upstream: FakeLLMServer) -> None:
    client = oa(gateway, "sk-narrow-key-0003")
    assert client.chat.completions.create(model="up-openai", messages=USER).choices  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="up-anthropic", messages=USER)  # type: ignore[arg-type]
    assert "key `narrow` may not use model `up-anthropic`; it may use: up-openai" in (
        caught.value.message
    )
    assert [m.id for m in client.models.list()] == ["up-openai"]
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        an(gateway, "sk-narrow-key-0003").messages.create(
            model="up-anthropic",
            max_tokens=50,
            messages=USER,  # type: ignore[arg-type]
        )
    assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert not [r for r in upstream.requests if r.model == "claude-up"]


def test_tpm_counts_the_tokens_of_relayed_answers(gateway: str) -> None:
    client = oa(gateway, "sk-tokens-key-0004")

    def one_then_refused() -> openai.RateLimitError:
        client.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="up-openai", messages=USER)  # type: ignore[arg-type]
        return caught.value

    assert "(`tpm`)" in in_one_minute(one_then_refused).message


def test_tpm_counts_the_tokens_of_translated_streams(gateway: str) -> None:
    client = an(gateway, "sk-translated-key-0005")

    def streamed_then_refused() -> anthropic.RateLimitError:
        with client.messages.stream(
            model="up-openai",
            max_tokens=50,
            messages=USER,  # type: ignore[arg-type]
        ) as stream:
            assert stream.get_final_text() == "fine"
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="up-openai", max_tokens=50, messages=USER)  # type: ignore[arg-type]
        return caught.value

    error = in_one_minute(streamed_then_refused)
    assert int(error.response.headers["retry-after"]) >= 1
    assert "(`tpm`)" in error.message


def test_max_cost_uses_the_backend_price(gateway: str) -> None:
    client = an(gateway, "sk-budget-key-0006")
    # 8 in x $1000/M + 4 out x $2000/M = $0.016, over the $0.01 a month
    client.messages.create(model="up-openai", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="up-openai", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    assert "reached its limit of 0.01 USD per month (`max_cost`)" in caught.value.message
    assert int(caught.value.response.headers["retry-after"]) > 0


def test_an_unset_key_variable_stops_the_start(tmp_path: Path, upstream: FakeLLMServer) -> None:
    root = write_project(tmp_path / "project", config(upstream))
    done = subprocess.run(
        [*MUXLANG, "-C", str(root), "serve", "--port", "0"],
        env=clean_env(tmp_path, ADMIN_KEY=ADMIN),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "[serve.keys.ci] key: environment variable CI_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr

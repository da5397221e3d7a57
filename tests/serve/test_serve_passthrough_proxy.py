"""Pass-through honours the environment's proxy settings and an upstream's cookies,
as the httpx client it sent through before did (it now sends to httpx transports
directly)."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_support import FakeBackend, FakeBackends, call

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig
from muxlang.serve.app import GatewayApp
from muxlang.serve.gateway import Gateway
from muxlang.serve.passthrough import Passthrough
from tests.fakes.llm_server import Reply, fake_llm_server

BODY = {"model": "oa", "messages": [{"role": "user", "content": "hi"}]}


def _app(command: str) -> GatewayApp:
    config = ResolvedConfig(
        project_root=Path("."),
        backends={
            "oa": BackendConfig(command=command, protocol="openai", model="up", max_retries=0)
        },
    )
    fakes = FakeBackends({"oa": FakeBackend("oa")})
    return GatewayApp(Gateway(config, fakes, passthrough=Passthrough(config, lambda n, c: c)))


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_an_http_proxy_from_the_environment_carries_the_request(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    with fake_llm_server() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        answer = await call(
            _app("http://upstream.invalid:9/v1"), "POST", "/v1/chat/completions", BODY
        )
        assert answer.status == 200, answer.body
        # the proxy got the request in absolute form, for the upstream's host
        assert len(proxy.requests) == 1
        assert "upstream.invalid" in proxy.requests[0].path


async def test_no_proxy_sends_straight_to_the_upstream(no_proxy_env: pytest.MonkeyPatch) -> None:
    with fake_llm_server() as upstream:
        no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        answer = await call(_app(upstream.base_url("openai")), "POST", "/v1/chat/completions", BODY)
        assert answer.status == 200, answer.body
        assert len(upstream.requests) == 1


async def test_a_cookie_the_upstream_sets_is_sent_back(no_proxy_env: pytest.MonkeyPatch) -> None:
    with fake_llm_server() as upstream:
        upstream.script(Reply.answer("one", headers={"set-cookie": "lb=7; Path=/"}))
        app = _app(upstream.base_url("openai"))
        first = await call(app, "POST", "/v1/chat/completions", BODY)
        second = await call(app, "POST", "/v1/chat/completions", BODY)
        assert first.status == second.status == 200
        assert "cookie" not in upstream.requests[0].headers
        assert upstream.requests[1].headers.get("cookie") == "lb=7"

"""The one role engine: a workflow step and a gateway request that name a role run the same code."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from muxlang.compiler.plan import ResolvedConfig
from muxlang.llm import BackendError, ChatRequest
from muxlang.runtime.backends import engine as engine_module
from muxlang.runtime.backends import open_router
from muxlang.serve.server import open_gateway
from tests.backends.conftest import MakeConfig
from tests.backends.test_backends_roles import backends_on, by_name
from tests.fakes.llm_server import FakeLLMServer, Reply


async def _post(app: Any, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """One ``POST /v1/chat/completions`` through the gateway's ASGI app (no sockets)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")],
    }
    incoming = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    status, headers, chunks = 0, {}, []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update({k.decode(): v.decode() for k, v in message["headers"]})
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, json.loads(b"".join(chunks))


async def _both(config: Any, environ: dict[str, str], server: FakeLLMServer) -> tuple[Any, Any]:
    """What ``muxlang run`` (the router) and ``muxlang serve`` (the gateway) make of role
    ``one``: (step output or the error, (status, x-muxlang-backend))."""
    async with open_router(config, environ=environ) as router:
        try:
            ran: Any = (await router.query("one", ChatRequest.from_prompt("q"), kind="role")).output
        except BackendError as exc:
            ran = exc
    async with open_gateway(config, environ=environ) as app:
        body = {"model": "one", "messages": [{"role": "user", "content": "q"}]}
        status, headers, _ = await _post(app, body)
    return ran, (status, headers["x-muxlang-backend"])


def _a_down_b_answers(
    llm_server: FakeLLMServer, make_config: MakeConfig, execution: str
) -> ResolvedConfig:
    """Backends ``a`` (down: 500) and ``b`` (answers "B") on ``llm_server``, and the
    role ``one`` of both with ``execution``."""
    llm_server.default = by_name({"a": Reply.fail(500, "a is down"), "b": Reply.answer("B")})
    return make_config(
        backends=backends_on(llm_server, "a", "b"),
        roles={"one": {"backends": ["a", "b"], "execution": execution}},
    )


async def test_one_rule_change_shows_in_run_and_in_serve(
    llm_server: FakeLLMServer,
    make_config: MakeConfig,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _a_down_b_answers(llm_server, make_config, "first")
    ran, served = await _both(config, environ, llm_server)
    # `first` never fails over: the step fails and the gateway answers 502
    assert isinstance(ran, BackendError)
    assert "a is down" in str(ran)
    assert served == (502, "a")

    # change the engine's one rule of "which failure lets `first` move on" ...
    monkeypatch.setattr(engine_module, "skipped", lambda error: True)
    ran, served = await _both(config, environ, llm_server)
    # ... and both commands now fail over to b
    assert ran == "B"
    assert served == (200, "b")


async def test_run_and_serve_walk_a_role_through_the_same_engine(
    llm_server: FakeLLMServer,
    make_config: MakeConfig,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _a_down_b_answers(llm_server, make_config, "fallback")
    tried: list[str] = []
    leaf = engine_module.Engine._leaf

    async def recording(self: Any, name: str, entry: str, run: Any) -> Any:
        tried.append(name)
        return await leaf(self, name, entry, run)

    monkeypatch.setattr(engine_module.Engine, "_leaf", recording)
    ran, served = await _both(config, environ, llm_server)
    assert ran == "B"
    assert served == (200, "b")
    assert tried == ["a", "b", "a", "b"]  # run's two attempts, then serve's two

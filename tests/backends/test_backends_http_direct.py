"""HTTP backends send straight to httpx's transport, not through ``AsyncClient.send``
(docs/performance.md §4): what reaches the upstream must not change — the client's
headers, the JSON body, cookies an upstream sets — and a proxy named by the
environment is still used."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
import trio

from muxlang.llm import ChatRequest
from muxlang.runtime.backends import open_router
from tests.backends.conftest import MakeConfig
from tests.backends.test_backends_http import http_backend
from tests.fakes.llm_server import FakeLLMServer, Reply


async def test_the_request_carries_the_clients_headers_and_a_json_body(
    llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    backend = http_backend(llm_server, "openai", api_key="sk-direct", headers={"X-Team": "blue"})
    config = make_config(backends={"b": backend})
    async with open_router(config, environ={}) as router:
        answer = await router.complete("b", ChatRequest.from_prompt("héllo"), kind="backend")
    assert answer.text
    [seen] = llm_server.requests
    headers = seen.headers
    assert headers["authorization"] == "Bearer sk-direct"
    assert headers["x-team"] == "blue"
    assert headers["user-agent"] == "muxlang"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(seen.body))
    assert headers["host"] == llm_server.base_url("openai").split("://")[1].split("/")[0]
    assert "gzip" in headers["accept-encoding"]
    # compact UTF-8 JSON, as httpx's json= writes it
    assert "héllo".encode() in seen.body
    assert json.loads(seen.body)["messages"][-1]["content"] == "héllo"


async def test_a_cookie_the_upstream_sets_is_sent_back(
    llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(
        Reply.answer("one", headers={"Set-Cookie": "sticky=node-7; Path=/"}),
        Reply.answer("two"),
    )
    config = make_config(backends={"b": http_backend(llm_server, "openai")})
    async with open_router(config, environ={}) as router:
        for _ in range(2):
            await router.complete("b", ChatRequest.from_prompt("q"), kind="backend")
    first, second = llm_server.requests
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "sticky=node-7"


_ANSWER = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "via proxy"},
                "finish_reason": "stop",
            }
        ],
    }
).encode()


async def test_a_proxy_named_by_the_environment_is_used(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HTTP_PROXY`` in the process environment: the request goes to the proxy with
    the upstream's absolute URL, as an httpx client with ``trust_env`` sends it."""
    targets: list[bytes] = []

    async def proxy(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += await stream.receive_some(65536)
        targets.append(head.split(b"\r\n")[0])
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_ANSWER)
            + _ANSWER
        )
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, proxy, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        for name in ("HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        backend: dict[str, Any] = {
            "command": "http://upstream.invalid/v1",
            "protocol": "openai",
            "model": "m",
            "max_retries": 0,
        }
        config = make_config(backends={"b": backend})
        async with open_router(config, environ={}) as router:
            answer = await router.complete("b", ChatRequest.from_prompt("q"), kind="backend")
        nursery.cancel_scope.cancel()
    assert answer.text == "via proxy"
    assert targets == [b"POST http://upstream.invalid/v1/chat/completions HTTP/1.1"]

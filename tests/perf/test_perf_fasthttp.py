"""The lean HTTP/1.1 path (muxlang.runtime.backends.fasthttp) against real sockets.

A small h11 server on 127.0.0.1, started by each test, answers as scripted and
counts the connections it accepted, so reuse and recovery are observable.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import h11
import httpx
import pytest
import trio

from muxlang.runtime.backends.fasthttp import FastPool, proxy_configured

Handler = Callable[[dict[str, Any], dict[str, str]], tuple[int, list[tuple[str, str]], bytes]]


def echo(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    answer = json.dumps({"got": body, "auth": headers.get("authorization")}).encode()
    return 200, [("content-type", "application/json")], answer


@dataclass
class Server:
    handler: Handler = echo
    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    raw_headers: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    close_after_each: bool = False
    drop_without_answer: bool = False
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions?x=1"

    async def serve(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request: h11.Request | None = None
                body = b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        conn.receive_data(bytes(data))
                        continue
                    if isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                assert request is not None
                headers = {k.decode(): v.decode() for k, v in request.headers}
                headers["target"] = request.target.decode()
                self.raw_headers.append(list(request.headers))
                self.requests.append(headers)
                if self.drop_without_answer:
                    await stream.aclose()
                    return
                status, extra, payload = self.handler(json.loads(body), headers)
                extra = [*extra, ("content-length", str(len(payload)))]
                if self.close_after_each:
                    extra.append(("connection", "close"))
                out = conn.send(h11.Response(status_code=status, headers=extra))
                out += conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage())
                await stream.send_all(out)
                if conn.our_state is h11.MUST_CLOSE:
                    await stream.aclose()
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return


@pytest.fixture
async def server(nursery: trio.Nursery) -> Server:
    srv = Server()
    listeners = await nursery.start(partial(trio.serve_tcp, srv.serve, 0, host="127.0.0.1"))
    srv.port = listeners[0].socket.getsockname()[1]
    return srv


def pool(**headers: str) -> FastPool:
    return FastPool(headers=headers, ssl_context=None, connect_timeout=5)


async def test_posts_json_and_returns_the_answer(server: Server) -> None:
    client = pool(authorization="Bearer k", **{"user-agent": "muxlang"})
    response = await client.post_json(server.url, {"prompt": "héllo", "n": 1})
    await client.aclose()
    assert response.status_code == 200
    assert json.loads(await response.aread()) == {
        "got": {"prompt": "héllo", "n": 1},
        "auth": "Bearer k",
    }
    sent = server.requests[0]
    assert sent["target"] == "/v1/chat/completions?x=1"
    assert sent["host"] == f"127.0.0.1:{server.port}"
    assert sent["content-type"] == "application/json"
    assert sent["user-agent"] == "muxlang"


async def test_keep_alive_reuses_one_connection(server: Server) -> None:
    client = pool()
    for i in range(5):
        response = await client.post_json(server.url, {"i": i})
        assert json.loads(await response.aread())["got"] == {"i": i}
    await client.aclose()
    assert server.connections == 1


async def test_concurrent_requests_open_one_connection_each(server: Server) -> None:
    client = pool()
    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(client.post_json, server.url, {"i": i})
    await client.aclose()
    assert len(server.requests) == 10
    assert server.connections <= 10


async def test_connection_close_is_honoured(server: Server) -> None:
    server.close_after_each = True
    client = pool()
    for i in range(3):
        response = await client.post_json(server.url, {"i": i})
        assert response.status_code == 200
    await client.aclose()
    assert server.connections == 3


async def test_an_idle_connection_the_server_closed_is_not_reused(server: Server) -> None:
    client = pool()
    await client.post_json(server.url, {"i": 1})
    # the kept connection now reads end-of-file, as after the server closed it
    conns = next(iter(client._idle.values()))
    assert len(conns) == 1
    stream: Any = conns[0].stream
    stream.socket.shutdown(socket.SHUT_RD)
    response = await client.post_json(server.url, {"i": 2})
    await client.aclose()
    assert json.loads(await response.aread())["got"] == {"i": 2}
    assert server.connections == 2


async def test_errors_and_encodings_look_like_httpx(server: Server) -> None:
    def gzipped(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, bytes]:
        payload = gzip.compress(json.dumps({"ok": True}).encode())
        return 429, [("content-encoding", "gzip"), ("retry-after", "3")], payload

    server.handler = gzipped
    client = pool()
    response = await client.post_json(server.url, {})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert json.loads(await response.aread()) == {"ok": True}
    server.drop_without_answer = True
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post_json(server.url, {})
    await client.aclose()


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = pool()
    with pytest.raises(httpx.ConnectError) as info:
        await client.post_json(f"http://127.0.0.1:{port}/v1", {})
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "refused" in str(info.value).lower()


async def test_a_cancelled_request_leaves_no_broken_connection(server: Server) -> None:
    client = pool()
    await client.post_json(server.url, {"warm": 1})
    with trio.CancelScope() as scope:
        scope.cancel()
        await client.post_json(server.url, {"never": 1})
    response = await client.post_json(server.url, {"after": 1})
    await client.aclose()
    assert json.loads(await response.aread())["got"] == {"after": 1}


def test_proxy_variables_are_noticed() -> None:
    assert not proxy_configured({})
    assert proxy_configured({"HTTPS_PROXY": "http://proxy:3128"})
    assert proxy_configured({"all_proxy": "socks5://x"})
    assert not proxy_configured({"NO_PROXY": "*"})


# --------------------------------------------------------------------------- through the backend


def _config(url: str, max_concurrent: int = 8) -> Any:
    from pathlib import Path

    from muxlang.compiler.plan import ResolvedConfig
    from muxlang.config.models import BackendConfig, DefaultsConfig

    backend = BackendConfig.model_validate(
        {"command": url, "protocol": "openai", "model": "m", "api_key": "k", "max_retries": 0}
    )
    return ResolvedConfig(
        project_root=Path("."),
        defaults=DefaultsConfig.model_validate({"max_concurrent": max_concurrent}),
        backends={"b": backend},
    )


def _answer(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, bytes]:
    text = body["messages"][-1]["content"].upper()
    answer = {"choices": [{"message": {"role": "assistant", "content": text}}], "model": "m"}
    return 200, [("content-type", "application/json")], json.dumps(answer).encode()


async def test_whole_answers_reuse_keep_alive_connections(server: Server) -> None:
    from muxlang.llm import ChatRequest
    from muxlang.runtime.backends import open_router

    server.handler = _answer
    url = f"http://127.0.0.1:{server.port}/v1"
    answers: list[str] = []

    async def ask(router: Any, i: int) -> None:
        response = await router.complete("b", ChatRequest.from_prompt(f"q{i}"))
        answers.append(response.text)

    async with open_router(_config(url, max_concurrent=10), environ={}) as router:
        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(ask, router, i)
        backend: Any = router.backend("b")
        opened = backend._fast.opened
    assert sorted(answers) == sorted(f"Q{i}" for i in range(60))
    assert server.requests[0]["authorization"] == "Bearer k"
    assert opened == server.connections
    assert opened <= 10  # never more connections than requests in flight


async def test_a_proxy_in_the_environment_keeps_httpx(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxlang.llm import ChatRequest
    from muxlang.runtime.backends import open_router

    server.handler = _answer
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail if used...
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # ...but httpx honours NO_PROXY
    async with open_router(_config(f"http://127.0.0.1:{server.port}/v1"), environ={}) as router:
        response = await router.complete("b", ChatRequest.from_prompt("hi"))
        backend: Any = router.backend("b")
        assert backend._fast is None
        assert backend.clients == 1
    assert response.text == "HI"


async def test_request_headers_replace_the_pools_own(server: Server) -> None:
    client = pool(authorization="Bearer pool", **{"x-keep": "1"})
    response = await client.post(
        server.url, b'{"a": 1}', {"Authorization": "Bearer request", "x-extra": "2"}
    )
    await client.aclose()
    assert json.loads(await response.aread())["got"] == {"a": 1}
    sent = server.requests[0]
    assert [v for k, v in server.raw_headers[0] if k == b"authorization"] == [b"Bearer request"]
    assert sent["x-keep"] == "1"
    assert sent["x-extra"] == "2"


async def test_https_with_keep_alive(tmp_path: Any, nursery: trio.Nursery) -> None:
    import shutil
    import ssl
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    srv = Server()
    listeners = await nursery.start(
        partial(
            trio.serve_ssl_over_tcp,
            srv.serve,
            0,
            server_context,
            host="127.0.0.1",
            https_compatible=True,
        )
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    client = FastPool(
        headers={}, ssl_context=ssl.create_default_context(cafile=str(cert)), connect_timeout=5
    )
    for i in range(3):
        response = await client.post_json(f"https://localhost:{port}/v1/x", {"i": i})
        assert json.loads(await response.aread())["got"] == {"i": i}
    assert srv.connections == 1
    assert srv.requests[0]["host"] == f"localhost:{port}"
    # a certificate the client does not trust is a connection error, as with httpx
    untrusting = FastPool(headers={}, ssl_context=ssl.create_default_context(), connect_timeout=5)
    with pytest.raises(httpx.ConnectError):
        await untrusting.post_json(f"https://localhost:{port}/v1/x", {})
    await client.aclose()


async def test_connections_are_capped(server: Server) -> None:
    client = FastPool(headers={}, ssl_context=None, connect_timeout=5, max_connections=3)
    async with trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(client.post_json, server.url, {"i": i})
    await client.aclose()
    assert len(server.requests) == 12
    assert server.connections <= 3


async def test_an_answer_sent_before_the_body_was_read_is_returned(nursery: trio.Nursery) -> None:
    async def refuse(stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
                continue
            if isinstance(event, h11.Request):
                break
        payload = b'{"error": {"message": "request too large"}}'
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        out = conn.send(h11.Response(status_code=413, headers=[*headers, ("connection", "close")]))
        await stream.send_all(out + conn.send(h11.Data(data=payload)))
        await trio.sleep(0.2)  # let the answer arrive before the reset
        await stream.aclose()  # the rest of the body unread

    listeners = await nursery.start(partial(trio.serve_tcp, refuse, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    client = pool()
    # the write fails (the server closed with 16 MB unread), the answer was there
    response = await client.post(f"http://127.0.0.1:{port}/v1", b"x" * (16 << 20))
    await client.aclose()
    assert response.status_code == 413
    assert b"too large" in await response.aread()

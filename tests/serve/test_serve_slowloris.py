"""Slowloris (issue 14 item 16): hundreds of connections that never finish their request
head neither stop a live ``muxlang serve`` from answering nor stay open for ever."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from muxlang.serve.server import HEADER_TIMEOUT
from tests.fakes.llm_server import Reply, fake_llm_server
from tests.serve.test_serve_live import USER, clean_env, running_gateway, write_project

pytestmark = pytest.mark.slow

SLOW_CONNECTIONS = 300


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("slowloris")
    with (
        fake_llm_server(lambda r: Reply(text="still here")) as upstream,
        fake_llm_server(Reply.rate_limited()) as limited,
    ):
        write_project(tmp / "project", upstream, limited)
        with running_gateway(tmp / "project", clean_env(tmp)) as url:
            yield url


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (reading it)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass  # an error answer (408/400) before the close is fine
    except TimeoutError:
        return False
    except OSError:
        return True  # reset
    return True


def test_slow_connections_do_not_stop_the_gateway_and_are_closed(gateway: str) -> None:
    host, port = gateway.removeprefix("http://").split(":")
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        # the gateway still answers, health and real requests alike
        health = httpx.get(gateway + "/health", timeout=10)
        assert health.status_code == 200
        body = {"model": "up-openai", "messages": USER}
        answer = httpx.post(gateway + "/v1/chat/completions", json=body, timeout=10)
        assert answer.json()["choices"][0]["message"]["content"] == "still here"
        # one that trickles its head a byte at a time is closed all the same
        trickle = socket.create_connection((host, int(port)), timeout=10)
        slow.append(trickle)
        trickle.sendall(b"GET /health HTTP/1.1\r\n")
        deadline = time.monotonic() + HEADER_TIMEOUT + 5
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                trickle.sendall(b"X")
            except OSError:
                closed = True
                break
            closed = _closed_by_server(trickle, 0.5)
        assert closed, "a connection trickling its request head was never closed"
        # and the ones that sent half a head and went silent are closed after the timeout
        assert _closed_by_server(slow[0], HEADER_TIMEOUT + 10)
        assert _closed_by_server(slow[SLOW_CONNECTIONS - 1], 5)
    finally:
        for sock in slow:
            sock.close()


def test_one_client_holding_many_connections_cannot_starve_the_others(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A per-client cap (``[serve] max_connections_per_client``): a greedy client (here
    127.0.0.2) gets its extra connections closed at once, while another client
    (127.0.0.1) is served as usual."""
    tmp = tmp_path_factory.mktemp("caps")
    with (
        fake_llm_server(lambda r: Reply(text="still here")) as upstream,
        fake_llm_server(Reply.rate_limited()) as limited,
    ):
        write_project(tmp / "project", upstream, limited)
        config = tmp / "project" / ".muxlang" / "config.toml"
        config.write_text(
            config.read_text().replace(
                "[serve]\n", "[serve]\nmax_connections_per_client = 20\nmax_connections = 100\n"
            )
        )
        held: list[socket.socket] = []
        with running_gateway(tmp / "project", clean_env(tmp)) as url:
            port = int(url.rsplit(":", 1)[1])
            for _ in range(20):
                sock = socket.create_connection(
                    ("127.0.0.1", port), source_address=("127.0.0.2", 0)
                )
                sock.sendall(b"GET /health HTTP/1.1\r\n")  # never finishes its head
                held.append(sock)
            extra = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            held.append(extra)
            assert _closed_by_server(extra, 5), "a connection over the per-client cap stayed open"
            # the greedy client's 20 are still held, and another client is served at once
            assert httpx.get(url + "/health", timeout=10).status_code == 200
            # once the greedy client lets go (the server notices when the header-read
            # timeout ends each half-sent request), it is served again
            for sock in held:
                sock.close()
            held.clear()
            deadline = time.monotonic() + HEADER_TIMEOUT + 10
            reply = b""
            while not reply.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline:
                time.sleep(0.2)
                try:
                    with socket.create_connection(
                        ("127.0.0.1", port), source_address=("127.0.0.2", 0)
                    ) as again:
                        again.sendall(
                            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                        )
                        again.settimeout(5)
                        reply = again.recv(4096)
                except OSError:  # still over the cap: closed at once
                    reply = b""
            assert reply.startswith(b"HTTP/1.1 200")
        for sock in held:
            sock.close()

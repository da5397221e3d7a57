"""Slowloris (issue 14 item 16): hundreds of connections that never finish their request
head neither stop a live ``muxlang serve`` from answering nor stay open for ever."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from muxlang.serve.server import HEADER_TIMEOUT
from tests.fakes.llm_server import Reply, fake_llm_server
from tests.serve.test_serve_live import USER, clean_env, start_gateway, write_project

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
        proc, url = start_gateway(tmp / "project", clean_env(tmp))
        try:
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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

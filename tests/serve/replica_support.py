"""Real ``muxlang serve`` processes for the limits, metrics and replica tests.

Each :class:`Replica` runs ``python -m muxlang -C ROOT serve --port 0`` and keeps
what it writes on stderr (its log) for the test to read.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from tests.fakes.llm_server import FakeLLMServer

T = TypeVar("T")

MUXLANG = [sys.executable, "-m", "muxlang"]
UPSTREAM_KEY = "sk-upstream-secret-4321"


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The test's environment without the user's keys, proxies or muxlang settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUXLANG", "OPENAI", "ANTH"))}
    env.update(
        HOME=str(tmp / "home"),
        XDG_CONFIG_HOME=str(tmp / "xdg"),
        FAKE_UPSTREAM_KEY=UPSTREAM_KEY,
        NO_PROXY="127.0.0.1,localhost",
        **extra,
    )
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    return env


def upstream_backend(name: str, server: FakeLLMServer, protocol: str, model: str) -> str:
    """The TOML table of an HTTP backend on a fake upstream (no retries, the test key)."""
    return (
        f'[backends.{name}]\ncommand = "{server.base_url(protocol)}"\nprotocol = "{protocol}"\n'
        f'model = "{model}"\napi_key = "${{FAKE_UPSTREAM_KEY}}"\nmax_retries = 0'
    )


def priced_upstreams(server: FakeLLMServer) -> str:
    """``up-openai`` (priced: $1000/M in, $2000/M out, so a few tokens reach a
    small ``max_cost``) and ``up-anthropic``, both on ``server``."""
    return (
        upstream_backend("up-openai", server, "openai", "gpt-up")
        + "\nprice = { input = 1000.0, output = 2000.0 }\n\n"
        + upstream_backend("up-anthropic", server, "anthropic", "claude-up")
        + "\n"
    )


def write_project(root: Path, config: str) -> Path:
    (root / ".muxlang").mkdir(parents=True, exist_ok=True)
    (root / ".muxlang" / "config.toml").write_text(config, encoding="utf-8")
    return root


class Replica:
    """One ``muxlang serve`` process on a free loopback port."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*MUXLANG, "-C", str(root), "serve", "--port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(30):
            self.proc.kill()
            raise AssertionError("the gateway did not start:\n" + self.log)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = re.search(r"muxlang serve: listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.url = match.group(1)
                self._listening.set()
        self._listening.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def count(self, text: str) -> int:
        """Log lines containing ``text``."""
        return sum(text in line for line in self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    """Poll ``predicate()`` until true (for log lines written by another process)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


#: the least of its minute an attempt of :func:`in_one_minute` starts with
MINUTE_MARGIN = 5.0


def _next_minute_if_within(margin: float) -> None:
    """Sleep into the next wall-clock minute when fewer than ``margin`` seconds of
    this one are left (the limits' windows are wall-clock minutes of the gateway's
    own process: no mock clock reaches them)."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def in_one_minute(attempt: Callable[[], T]) -> T:
    """``attempt()`` — a sequence of requests that a per-minute limit counts — done
    within one wall-clock minute. Limits count in fixed minute windows, so a minute
    boundary in the middle restarts the count: that is the limit working. An attempt
    starts with at least :data:`MINUTE_MARGIN` seconds of its minute left; one that
    still crossed a boundary is tried again from the start of a fresh minute (the
    minute it crossed into already counts some of its requests). A failure inside
    one minute is a real failure."""
    _next_minute_if_within(MINUTE_MARGIN)
    for _ in range(3):
        minute = int(time.time() // 60)
        try:
            result = attempt()
        except (AssertionError, pytest.fail.Exception):
            if int(time.time() // 60) == minute:
                raise
        else:
            if int(time.time() // 60) == minute:
                return result
        _next_minute_if_within(60.0)
    raise AssertionError("three tries in a row each crossed a minute boundary")


@contextmanager
def serving(tmp: Path, config: str, **env: str) -> Iterator[Replica]:
    """``muxlang serve`` of a project under ``tmp`` whose config is ``config``, in a
    :func:`clean_env` (plus ``env``); at the end it must stop cleanly (exit 0)."""
    replica = Replica(write_project(tmp / "project", config), clean_env(tmp, **env))
    try:
        yield replica
    finally:
        assert replica.stop() == 0, replica.log

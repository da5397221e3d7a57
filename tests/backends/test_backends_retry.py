"""The retry loop: which errors are retried, how often, and that waits honour the server.

Timing tests serve the fake upstream's script in-process (``server.transport()``)
under trio's MockClock, so a 30 s Retry-After takes no real time.
"""

from __future__ import annotations

import email.utils
import itertools
import time
from typing import Any

import pytest
import trio

from muxlang.config.models import BackendConfig
from muxlang.llm import BackendError, ChatRequest, ErrorKind
from muxlang.runtime.backends import backoff, open_router, parse_retry_after, with_retries
from muxlang.runtime.backends.retry import MAX_BACKOFF
from tests.backends.conftest import MakeConfig
from tests.fakes.llm_server import FakeLLMServer, Reply


def backend(server: FakeLLMServer, protocol: str = "openai", **extra: Any) -> dict[str, Any]:
    return {
        "command": server.base_url(protocol),
        "protocol": protocol,
        "model": "m",
        "retry_delay": 1000,
        **extra,
    }


async def call(
    server: FakeLLMServer, config: Any, *, stream: bool = False
) -> tuple[Any, list[float]]:
    """Ask backend ``b``; return the answer (or the error) and the trio times of each request."""
    transport = server.transport(clock=trio.current_time)
    async with open_router(config, environ={}, transport=transport) as router:
        try:
            if stream:
                answer: Any = [e async for e in router.stream("b", ChatRequest.from_prompt("hi"))]
            else:
                answer = await router.complete("b", ChatRequest.from_prompt("hi"), kind="backend")
        except BackendError as exc:
            answer = exc
    return answer, [r.received_at for r in server.requests]


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
async def test_retry_after_seconds_is_honoured(
    autojump_clock: Any, protocol: str, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(Reply.rate_limited(retry_after="30"))
    answer, times = await call(
        llm_server, make_config(backends={"b": backend(llm_server, protocol)})
    )
    assert answer.text == "hi"
    assert gaps(times) == [30.0]


async def test_retry_after_ms_is_honoured(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(Reply.rate_limited(retry_after_ms="3500"))
    answer, times = await call(llm_server, make_config(backends={"b": backend(llm_server)}))
    assert answer.text == "hi"
    assert gaps(times) == [3.5]


async def test_retry_after_http_date_is_honoured(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    when = email.utils.formatdate(time.time() + 45, usegmt=True)
    llm_server.script(Reply.rate_limited(retry_after=when))
    answer, times = await call(llm_server, make_config(backends={"b": backend(llm_server)}))
    assert answer.text == "hi"
    (gap,) = gaps(times)
    assert 43 <= gap <= 45


async def test_each_attempt_waits_what_its_own_response_asked(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(
        Reply.rate_limited(retry_after="20"),
        Reply.rate_limited(retry_after="1"),
        Reply.fail(503, "busy", headers={"Retry-After": "9"}),
    )
    answer, times = await call(llm_server, make_config(backends={"b": backend(llm_server)}))
    assert answer.text == "hi"
    first, second, third = gaps(times)
    assert first == 20.0
    assert 1.5 <= second <= 2.5  # backoff 2 s ±25 % beats the server's 1 s
    assert third == 9.0  # backoff 4 s ±25 % is shorter than the server's 9 s


async def test_server_errors_retry_up_to_max_retries_with_backoff(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.default = Reply.fail(500, "boom")
    error, times = await call(
        llm_server, make_config(backends={"b": backend(llm_server, max_retries=3)})
    )
    assert isinstance(error, BackendError)
    assert error.kind is ErrorKind.SERVER
    assert error.attempts == 4
    assert len(times) == 4
    for gap, base in zip(gaps(times), (1, 2, 4), strict=True):
        assert base * 0.75 <= gap <= base * 1.25


async def test_dropped_connections_are_retried(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(Reply.dropped(), Reply.dropped())
    answer, times = await call(llm_server, make_config(backends={"b": backend(llm_server)}))
    assert answer.text == "hi"
    assert len(times) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_never_retried(
    autojump_clock: Any, status: int, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.default = Reply.fail(status, "nope")
    error, times = await call(llm_server, make_config(backends={"b": backend(llm_server)}))
    assert error.kind is ErrorKind.CLIENT
    assert error.attempts == 1
    assert len(times) == 1


async def test_rate_limits_not_retried_when_turned_off(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.default = Reply.rate_limited(retry_after="1")
    config = make_config(backends={"b": backend(llm_server, retry_rate_limit=False)})
    error, times = await call(llm_server, config)
    assert error.kind is ErrorKind.RATE_LIMIT
    assert len(times) == 1


async def test_timeouts_retried_only_with_retry_timeout(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.default = Reply.hanging()
    error, times = await call(
        llm_server, make_config(backends={"b": backend(llm_server, timeout=10)})
    )
    assert error.kind is ErrorKind.TIMEOUT
    assert len(times) == 1
    llm_server.reset()
    llm_server.default = Reply.hanging()
    config = make_config(backends={"b": backend(llm_server, timeout=10, retry_timeout=True)})
    error, times = await call(llm_server, config)
    assert error.kind is ErrorKind.TIMEOUT
    assert error.attempts == 4
    assert len(times) == 4
    assert 11 - 0.3 <= gaps(times)[0] <= 11.25 + 0.3  # 10 s timeout + 1 s backoff


async def test_excessive_retry_after_is_reported_not_waited(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(Reply.rate_limited(retry_after="86400"))
    error, times = await call(llm_server, make_config(backends={"b": backend(llm_server)}))
    assert error.kind is ErrorKind.RATE_LIMIT
    assert "86400 s" in str(error)
    assert len(times) == 1


async def test_streams_retry_before_the_first_event(
    autojump_clock: Any, llm_server: FakeLLMServer, make_config: MakeConfig
) -> None:
    llm_server.script(Reply.rate_limited(retry_after="5"), Reply.fail(502, "bad gateway"))
    events, times = await call(
        llm_server, make_config(backends={"b": backend(llm_server)}), stream=True
    )
    assert "".join(getattr(e, "text", "") for e in events) == "hi"
    assert len(times) == 3
    assert gaps(times)[0] == 5.0


async def test_with_retries_is_usable_on_its_own(
    autojump_clock: Any,
) -> None:
    config = BackendConfig(command="x", retry_delay=100, max_retries=2)
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(trio.current_time())
        if len(calls) < 3:
            raise BackendError("x", ErrorKind.CONNECTION, "reset", retry_after=None)
        return "done"

    assert await with_retries("x", config, flaky) == "done"
    assert len(calls) == 3


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    config = BackendConfig(command="x", retry_delay=1000)
    assert backoff(config, 0, rand=lambda: 0.5) == 1.0
    assert backoff(config, 3, rand=lambda: 0.0) == 6.0
    assert backoff(config, 3, rand=lambda: 1.0) == 10.0
    assert backoff(config, 12, rand=lambda: 1.0) == MAX_BACKOFF
    assert backoff(config, 12, 90.0) == 90.0  # the server's word wins over the cap
    assert backoff(BackendConfig(command="x", retry_delay=0), 5, 2.0) == 2.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    # both sent: the wait is never shorter than either (SPEC §6), whichever is larger
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 9
    assert parse_retry_after({"retry-after-ms": "12500", "Retry-After": "9"}) == 12.5
    assert parse_retry_after({"retry-after-ms": "nope", "Retry-After": "2"}) == 2
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "soon"}) == 0.25
    now = time.time()
    date = email.utils.formatdate(now + 60, usegmt=True)
    assert 59 <= (parse_retry_after({"Retry-After": date}, now=now) or 0) <= 60
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None
    assert parse_retry_after({}) is None

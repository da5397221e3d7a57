"""Routing rules: execution modes, cooldowns, fallback only before the first byte."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from serve_support import answer, call, make_gateway, rate_limited

from muxlang.llm import BackendError, ErrorKind, Finish, TextDelta, ToolCallDelta, Usage

CHAT = "/v1/chat/completions"


def chat(model: str, text: str = "hi", **kw: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **kw}


def msg(model: str, text: str = "hi", **kw: object) -> dict[str, object]:
    return {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": text}], **kw}


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_fallback_skips_a_rate_limited_backend_then_cools_it_down(clock: object) -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")}, cooldown=30)
    fakes["a"].script.append(rate_limited("a"))
    first = await call(app, "POST", CHAT, chat("duo"))
    assert first.status == 200
    assert first.json["choices"][0]["message"]["content"] == "b: hi"
    assert first.headers["x-muxlang-backend"] == "b"
    # a is cooling: the next request goes straight to b
    second = await call(app, "POST", CHAT, chat("duo"))
    assert second.headers["x-muxlang-backend"] == "b"
    assert len(fakes["a"].requests) == 1
    # after the cooldown a is first again, and its success keeps it in use
    await trio.sleep(31)
    third = await call(app, "POST", CHAT, chat("duo"))
    assert third.headers["x-muxlang-backend"] == "a"
    assert len(fakes["a"].requests) == 2


async def test_cooldown_lasts_as_long_as_the_server_asked(clock: object) -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")}, cooldown=5)
    fakes["a"].script.append(rate_limited("a", retry_after=120))
    await call(app, "POST", CHAT, chat("duo"))
    await trio.sleep(60)
    assert (await call(app, "POST", CHAT, chat("duo"))).headers["x-muxlang-backend"] == "b"
    await trio.sleep(61)
    assert (await call(app, "POST", CHAT, chat("duo"))).headers["x-muxlang-backend"] == "a"


async def test_every_backend_cooling_is_a_429_with_retry_after(clock: object) -> None:
    roles = {"ab": (["a", "c"], "fallback"), "bc": (["b", "c"], "fallback")}
    app, fakes = make_gateway(["a", "b", "c"], {**roles, "duo": (["a", "b"], "fallback")})
    fakes["a"].script.append(rate_limited("a"))
    fakes["b"].script.append(rate_limited("b", retry_after=40))
    # each 429 cools its backend at once (c could still serve those requests)
    assert (await call(app, "POST", CHAT, chat("ab"))).headers["x-muxlang-backend"] == "c"
    assert (await call(app, "POST", CHAT, chat("bc"))).headers["x-muxlang-backend"] == "c"
    await trio.sleep(10)
    cooling = await call(app, "POST", "/v1/messages", msg("duo"))
    assert cooling.status == 429
    assert cooling.headers["retry-after"] == "20"
    assert cooling.headers["x-muxlang-backend"] == "a"  # usable again soonest
    assert cooling.json["type"] == "error"
    assert cooling.json["error"]["type"] == "rate_limit_error"
    assert len(fakes["a"].requests) == len(fakes["b"].requests) == 1


async def test_client_errors_do_not_cool_a_backend_down() -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    fakes["a"].script.append(BackendError("a", ErrorKind.CLIENT, "HTTP 400: bad", status=400))
    assert (await call(app, "POST", CHAT, chat("duo"))).headers["x-muxlang-backend"] == "b"
    assert (await call(app, "POST", CHAT, chat("duo"))).headers["x-muxlang-backend"] == "a"


async def test_first_mode_never_fails_over() -> None:
    app, fakes = make_gateway(["a", "b"], {"one": (["a", "b"], "first")})
    fakes["a"].script.append(rate_limited("a", retry_after=3))
    result = await call(app, "POST", CHAT, chat("one"))
    assert result.status == 429
    assert result.headers["retry-after"] == "3"
    assert fakes["b"].requests == []


async def test_first_mode_skips_unavailable_backends() -> None:
    app, fakes = make_gateway(["a", "b"], {"one": (["a", "b"], "first")})
    fakes["a"].ok = False
    assert (await call(app, "POST", CHAT, chat("one"))).headers["x-muxlang-backend"] == "b"
    fakes["b"].ok = False
    nothing = await call(app, "POST", CHAT, chat("one"))
    assert nothing.status == 503
    assert "a: not on PATH" in nothing.json["error"]["message"]


async def test_race_takes_the_first_to_answer_and_cancels_the_rest(clock: object) -> None:
    app, fakes = make_gateway(["slow", "fast"], {"r": (["slow", "fast"], "race")})
    fakes["slow"].script.append([("sleep", 5.0), *answer("slow")])
    fakes["fast"].script.append([("sleep", 1.0), *answer("fast")])
    result = await call(app, "POST", CHAT, chat("r", stream=True))
    assert result.headers["x-muxlang-backend"] == "fast"
    texts = [c["choices"][0]["delta"].get("content") for c in result.data[:-1] if c["choices"]]
    assert "fast" in texts
    assert "slow" not in texts
    assert fakes["slow"].cancelled == 1


async def test_nested_roles_fall_back_as_one_entry(clock: object) -> None:
    roles = {"inner": (["a", "b"], "first"), "outer": (["inner", "c"], "fallback")}
    app, fakes = make_gateway(["a", "b", "c"], roles)
    fakes["a"].script.append(rate_limited("a"))
    assert (await call(app, "POST", CHAT, chat("outer"))).headers["x-muxlang-backend"] == "c"
    # a is cooling, so the inner role's first available backend is now b
    assert (await call(app, "POST", CHAT, chat("outer"))).headers["x-muxlang-backend"] == "b"


async def test_parallel_roles_answer_with_every_backend_in_role_order() -> None:
    app, _ = make_gateway(["a", "b"], {"both": (["a", "b"], "parallel")})
    result = await call(app, "POST", CHAT, chat("both", "x"))
    assert result.json["choices"][0]["message"]["content"] == "=== a ===\na: x\n\n=== b ===\nb: x"
    assert result.json["usage"]["prompt_tokens"] == 6


# --------------------------------------------------------------------------- first byte


async def test_an_error_before_the_first_event_falls_back_in_a_stream() -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    fakes["a"].script.append([BackendError("a", ErrorKind.CONNECTION, "connection reset")])
    result = await call(app, "POST", "/v1/messages", msg("duo", stream=True))
    assert result.status == 200
    assert result.headers["x-muxlang-backend"] == "b"
    assert [e for e, _ in result.events][-1] == "message_stop"


async def test_an_error_after_the_first_event_is_reported_in_the_openai_stream() -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    fakes["a"].script.append(
        [TextDelta("partial "), BackendError("a", ErrorKind.CONNECTION, "connection reset")]
    )
    result = await call(app, "POST", CHAT, chat("duo", stream=True))
    assert result.status == 200
    data = result.data
    assert data[1]["choices"][0]["delta"]["content"] == "partial "
    assert data[-2] == {
        "error": {
            "message": "a: connection reset",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert data[-1] == "[DONE]"
    assert fakes["b"].requests == []  # never spliced onto another backend


async def test_an_error_after_the_first_event_is_an_anthropic_error_event() -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    fakes["a"].script.append(
        [
            ToolCallDelta(0, id="t1", name="f", arguments="{"),
            BackendError("a", ErrorKind.RATE_LIMIT, "HTTP 429: slow down", status=429),
        ]
    )
    result = await call(app, "POST", "/v1/messages", msg("duo", stream=True))
    kinds = [e for e, _ in result.events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-1] == "error"
    assert "message_stop" not in kinds
    assert result.data[-1]["error"] == {
        "type": "rate_limit_error",
        "message": "a: HTTP 429: slow down",
    }
    assert fakes["b"].requests == []


async def test_a_stream_without_finish_still_ends_properly() -> None:
    app, fakes = make_gateway(["a"])
    fakes["a"].script.append([TextDelta("x")])
    result = await call(app, "POST", CHAT, chat("a", stream=True))
    assert result.data[-2]["choices"][0]["finish_reason"] == "stop"
    assert result.data[-1] == "[DONE]"


async def test_usage_chunk_when_the_client_asks() -> None:
    app, fakes = make_gateway(["a"])
    fakes["a"].script.append([TextDelta("x"), Finish("stop", Usage(4, 1))])
    body = chat("a", stream=True, stream_options={"include_usage": True})
    result = await call(app, "POST", CHAT, body)
    assert result.data[-2]["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 1,
        "total_tokens": 5,
    }
    assert result.data[-2]["choices"] == []


async def test_a_client_going_away_cancels_the_backend(clock: object) -> None:
    app, fakes = make_gateway(["a"])
    fakes["a"].script.append([TextDelta("first "), ("sleep", 600.0), *answer("never")])
    start = trio.current_time()
    result = await call(app, "POST", CHAT, chat("a", stream=True), disconnect_after=5)
    assert trio.current_time() - start < 10
    assert fakes["a"].cancelled == 1
    assert b"never" not in result.body


async def test_a_backend_named_directly_is_never_cooled_down(clock: object) -> None:
    app, fakes = make_gateway(["a"], cooldown=30)
    fakes["a"].script.append(BackendError("a", ErrorKind.SERVER, "HTTP 500: oops", status=500))
    fakes["a"].script.append(BackendError("a", ErrorKind.SERVER, "HTTP 500: oops", status=500))
    fakes["a"].script.append(BackendError("a", ErrorKind.SERVER, "HTTP 500: oops", status=500))
    fakes["a"].script.append(rate_limited("a", retry_after=60))
    for _ in range(3):
        failed = await call(app, "POST", "/v1/messages", msg("a"))
        assert failed.status == 502
        assert failed.json["error"] == {
            "type": "api_error",
            "message": "`a` failed: a: HTTP 500: oops",
        }
    assert (await call(app, "POST", CHAT, chat("a"))).status == 429
    # the only backend that can serve a request is always tried: no 429 of our own
    assert (await call(app, "POST", CHAT, chat("a"))).status == 200
    assert len(fakes["a"].requests) == 5
    fakes["a"].ok = False
    unusable = await call(app, "POST", CHAT, chat("a"))
    assert unusable.status == 503
    assert "not on PATH" in unusable.json["error"]["message"]


async def test_a_backend_failing_mid_stream_counts_towards_its_cooldown(clock: object) -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    for _ in range(3):
        fakes["a"].script.append(
            [TextDelta("partial"), BackendError("a", ErrorKind.SERVER, "HTTP 500: boom")]
        )
    for _ in range(3):
        broken = await call(app, "POST", CHAT, chat("duo", stream=True))
        assert broken.data[-2]["error"]["message"] == "a: HTTP 500: boom"
    assert (await call(app, "POST", CHAT, chat("duo"))).headers["x-muxlang-backend"] == "b"


async def test_server_errors_cool_after_three_within_a_minute(clock: object) -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")}, cooldown=30)

    def boom() -> BackendError:
        return BackendError("a", ErrorKind.SERVER, "HTTP 502: boom", status=502)

    async def served_by() -> str:
        return (await call(app, "POST", CHAT, chat("duo"))).headers["x-muxlang-backend"]

    fakes["a"].script += [boom(), boom()]
    assert [await served_by(), await served_by()] == ["b", "b"]
    await trio.sleep(61)  # those two are forgotten
    fakes["a"].script += [boom(), boom()]
    assert [await served_by(), await served_by()] == ["b", "b"]
    assert await served_by() == "a"  # two within the window: a is still in use
    fakes["a"].script += [boom(), boom(), boom()]
    assert [await served_by() for _ in range(3)] == ["b", "b", "b"]
    assert len(fakes["a"].requests) == 8
    assert await served_by() == "b"  # the third failure within 60 s cooled a
    assert len(fakes["a"].requests) == 8
    await trio.sleep(31)
    assert await served_by() == "a"


async def test_the_last_backend_able_to_serve_is_never_cooled(clock: object) -> None:
    app, fakes = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")}, cooldown=30)
    fakes["a"].script.append(rate_limited("a"))
    fakes["b"].script.append(rate_limited("b"))
    failed = await call(app, "POST", CHAT, chat("duo"))
    assert failed.status == 429  # a cooled; b was the last one left, so it was not
    again = await call(app, "POST", CHAT, chat("duo"))
    assert again.status == 200
    assert again.headers["x-muxlang-backend"] == "b"
    assert len(fakes["a"].requests) == 1


async def test_first_mode_skips_a_nested_role_that_is_all_cooling(clock: object) -> None:
    roles = {
        "inner": (["a"], "first"),
        "outer": (["inner", "b", "c"], "first"),
        "ab": (["a", "b"], "fallback"),
    }
    app, fakes = make_gateway(["a", "b", "c"], roles)
    fakes["a"].script.append(rate_limited("a"))
    assert (await call(app, "POST", CHAT, chat("ab"))).headers["x-muxlang-backend"] == "b"
    assert (await call(app, "POST", CHAT, chat("inner"))).status == 429  # a is cooling
    assert (await call(app, "POST", CHAT, chat("outer"))).headers["x-muxlang-backend"] == "b"
    fakes["b"].script.append(rate_limited("b"))
    failed = await call(app, "POST", CHAT, chat("outer"))
    assert failed.status == 429
    assert fakes["c"].requests == []  # still no failover after a real failure

"""The in-memory gateway state: cooldowns, failure windows, per-key limits, usage."""

from __future__ import annotations

import calendar

from muxlang.serve.state import KeyLimits, MemoryState, Refusal, Usage, month_left


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


#: 2026-12-04 18:00:00 UTC: the start of a minute
START = float(calendar.timegm((2026, 12, 4, 18, 0, 0)))


async def test_cool_sets_an_epoch_that_expires() -> None:
    clock = Clock(START)
    state = MemoryState(now=clock)
    assert await state.cooldown_until("a") is None
    await state.cool("a", 30)
    assert await state.cooldown_until("a") == START + 30
    clock.t += 29.5
    assert await state.cooldown_until("a") == START + 30
    clock.t += 1
    assert await state.cooldown_until("a") is None


async def test_a_shorter_cool_never_shortens_a_longer_one() -> None:
    clock = Clock(START)
    state = MemoryState(now=clock)
    await state.cool("a", 60)
    await state.cool("a", 5)
    assert await state.cooldown_until("a") == START + 60
    await state.cool("a", 90)
    assert await state.cooldown_until("a") == START + 90


async def test_clear_ends_a_cooldown_and_forgets_failures() -> None:
    clock = Clock(START)
    state = MemoryState(now=clock)
    await state.cool("a", 60)
    assert await state.note_failure("a", 60) == 1
    await state.clear("a")
    assert await state.cooldown_until("a") is None
    assert await state.note_failure("a", 60) == 1


async def test_failures_count_in_a_sliding_window() -> None:
    clock = Clock(START)
    state = MemoryState(now=clock)
    assert await state.note_failure("a", 60) == 1
    clock.t += 30
    assert await state.note_failure("a", 60) == 2
    assert await state.note_failure("b", 60) == 1  # per backend
    clock.t += 31  # the first failure is now 61 s old
    assert await state.note_failure("a", 60) == 2
    clock.t += 120
    assert await state.note_failure("a", 60) == 1


async def test_rpm_refuses_in_the_same_minute_and_says_when_it_ends() -> None:
    clock = Clock(START + 15)
    state = MemoryState(now=clock)
    limits = KeyLimits(rpm=2)
    assert await state.admit("team", limits) is None
    assert await state.admit("team", limits) is None
    assert await state.admit("team", limits) == Refusal("rpm", 45)
    assert await state.admit("other", limits) is None  # per key
    assert (await state.usage("team")).requests_minute == 2  # refusals are not counted
    clock.t = START + 60  # the next fixed window
    assert await state.admit("team", limits) is None


async def test_tpm_refuses_once_the_minute_s_tokens_reach_the_limit() -> None:
    clock = Clock(START)
    state = MemoryState(now=clock)
    limits = KeyLimits(tpm=100)
    assert await state.admit("team", limits) is None
    await state.add_usage("team", 99, 0.0)
    assert await state.admit("team", limits) is None
    await state.add_usage("team", 1, 0.0)
    refusal = await state.admit("team", limits)
    assert refusal == Refusal("tpm", 60)
    clock.t += 60
    assert await state.admit("team", limits) is None


async def test_max_cost_is_per_calendar_month() -> None:
    clock = Clock(float(calendar.timegm((2026, 12, 31, 23, 59, 0))))
    state = MemoryState(now=clock)
    limits = KeyLimits(max_cost=1.0)
    await state.add_usage("team", 1000, 1.25)
    assert await state.admit("team", limits) == Refusal("max_cost", 60)
    assert await state.usage("team") == Usage(
        requests_minute=0, tokens_minute=1000, tokens_month=1000, cost_month=1.25
    )
    clock.t += 60  # January
    assert await state.admit("team", limits) is None
    assert (await state.usage("team")).cost_month == 0.0


async def test_no_limits_admits_everything() -> None:
    state = MemoryState(now=Clock(START))
    for _ in range(1000):
        assert await state.admit("team", KeyLimits()) is None


def test_month_left_counts_to_the_first_of_next_month() -> None:
    assert month_left(float(calendar.timegm((2026, 2, 28, 0, 0, 0)))) == 86400
    assert month_left(float(calendar.timegm((2026, 12, 31, 0, 0, 0)))) == 86400

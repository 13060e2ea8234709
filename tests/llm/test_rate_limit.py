"""The token bucket behind the http engine's global qps."""

from __future__ import annotations

import asyncio
import time

import pytest

from pulse.llm.rate_limit import LocalRateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_evenly_spaced_reservations():
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, burst=2, clock=clock)
    delays = [bucket.reserve() for _ in range(6)]
    assert delays == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75, 1.0])


def test_refills_with_time_but_never_above_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 0.5  # one token back
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)
    clock.now += 100.0
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.5)


def test_rejects_non_positive_rate():
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(0)


def test_local_limiter_spaces_concurrent_callers():
    limiter = LocalRateLimiter(rate=50.0, burst=1)
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(11)))

    asyncio.run(many())
    assert max(stamps) - min(stamps) >= 10 / 50 * 0.9

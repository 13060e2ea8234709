"""A request-rate limit shared by every client of one endpoint.

``TokenBucket`` is the arithmetic (pure, clock injectable). ``LocalRateLimiter`` applies
it inside one process; ``SharedRateLimiter`` asks one small Ray actor for each slot, so
a ``qps`` limit holds across all Ray Data actors of a job, not per actor (which is what
``ray.data.llm``'s ``HttpRequestProcessorConfig.qps`` does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Reserve-ahead token bucket: ``reserve()`` returns how long the caller must wait.

    Tokens refill at ``rate`` per second up to ``burst``. A caller that finds the bucket
    empty still takes its token (the count goes negative) and is told when it will have
    been refilled, so concurrent callers queue up at exactly ``1 / rate`` intervals.
    """

    def __init__(self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1, int(rate)))
        self.clock = clock
        self.tokens = self.burst
        self.updated = clock()

    def reserve(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class LocalRateLimiter:
    """The bucket inside one process (scripts, ``generate_local``, one client)."""

    def __init__(self, rate: float, burst: int | None = None):
        self.bucket = TokenBucket(rate, burst)

    async def acquire(self) -> None:
        delay = self.bucket.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class RateLimiterActor:
    """Ray actor body holding the one bucket of a job (created with ``num_cpus=0``)."""

    def __init__(self, rate: float, burst: int | None = None):
        self.bucket = TokenBucket(rate, burst)

    def reserve(self) -> float:
        return self.bucket.reserve()


def create_shared_limiter(rate: float, burst: int | None = None):
    """Start the job's limiter actor on the driver (so it lives as long as the job's dataset)."""
    import ray

    actor_cls = ray.remote(num_cpus=0, max_restarts=-1)(RateLimiterActor)
    return actor_cls.remote(rate, burst)


class SharedRateLimiter:
    """Client side of ``RateLimiterActor``: one remote call per request, then a local sleep."""

    def __init__(self, actor):
        self.actor = actor

    async def acquire(self) -> None:
        delay = await self.actor.reserve.remote()
        if delay > 0:
            await asyncio.sleep(delay)

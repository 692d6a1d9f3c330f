"""The portal's in-process rate limiter counts like ``limits``' fixed window (which stays the limiter of shared
storages such as Redis), and its memory does not grow with keys whose window has passed."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from openbss.selfcare import ratelimit
from openbss.selfcare.ratelimit import ProcessRateLimiter, rate_limiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


async def test_same_answers_as_the_limits_fixed_window(clock: Clock) -> None:
    ours, reference = ProcessRateLimiter(), FixedWindowRateLimiter(storage_from_string("async+memory://"))
    items = [parse("3/second"), parse("5/minute")]
    rng = random.Random(7)
    for _ in range(400):
        clock.now += rng.choice([0.0, 0.0, 0.2, 0.7, 1.3, 20.0])
        item, who = rng.choice(items), rng.choice(["ip-a", "ip-b", "cust-1"])
        expected = await reference.hit(item, "selfcare", "x", who)
        assert await ours.hit(item, "selfcare", "x", who) == expected
        mine, theirs = (await ours.get_window_stats(item, "selfcare", "x", who),
                        await reference.get_window_stats(item, "selfcare", "x", who))
        assert mine.remaining == theirs.remaining
        assert mine.reset_time == pytest.approx(theirs.reset_time)


async def test_a_window_refuses_beyond_its_amount_until_it_ends(clock: Clock) -> None:
    limiter, item = ProcessRateLimiter(), parse("2/minute")
    assert [await limiter.hit(item, "ip", "1.2.3.4") for _ in range(3)] == [True, True, False]
    assert await limiter.hit(item, "ip", "5.6.7.8")  # another key, its own window
    stats = await limiter.get_window_stats(item, "ip", "1.2.3.4")
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(clock.now + 60)
    clock.now += 61
    assert await limiter.hit(item, "ip", "1.2.3.4")


async def test_windows_that_ended_are_forgotten(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter, item = ProcessRateLimiter(), parse("10/second")
    for n in range(1000):
        await limiter.hit(item, "user", f"customer-{n}")
    clock.now += ratelimit.SWEEP_SECONDS + 2
    await limiter.hit(item, "user", "someone-new")
    assert len(limiter._windows) == 1


def test_shared_storages_use_the_limits_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import limits.storage

    assert isinstance(rate_limiter("memory://"), ProcessRateLimiter)
    asked: list[str] = []

    def storage(uri: str) -> Any:
        asked.append(uri)
        return storage_from_string("async+memory://")

    monkeypatch.setattr(limits.storage, "storage_from_string", storage)
    assert isinstance(rate_limiter("redis://127.0.0.1:6379"), FixedWindowRateLimiter)
    assert asked == ["async+redis://127.0.0.1:6379"]

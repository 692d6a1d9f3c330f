"""The portal's per-process cache: bounded life, one computation for concurrent misses, drop wins over a
computation under way, a cancelled computation does not fail the others."""

from __future__ import annotations

import asyncio

import pytest

from openbss.selfcare.portal import TtlCache


async def test_concurrent_misses_share_one_computation() -> None:
    cache = TtlCache(ttl=10)
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "value"

    assert await asyncio.gather(*[cache.get_or_compute("k", compute) for _ in range(20)]) == ["value"] * 20
    assert calls == 1 and cache.get("k") == "value"


async def test_entries_expire() -> None:
    cache = TtlCache(ttl=0.05)
    cache.put("k", 1)
    assert cache.get("k") == 1
    await asyncio.sleep(0.08)
    assert cache.get("k") is None


async def test_drop_during_a_computation_is_not_undone() -> None:
    cache = TtlCache(ttl=10)
    started = asyncio.Event()

    async def stale() -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "before the update"

    task = asyncio.create_task(cache.get_or_compute("k", stale))
    await started.wait()
    cache.drop("k")  # e.g. the customer's update committed while the old profile was being read
    assert await task == "before the update"  # handed to the request that asked for it...
    assert cache.get("k") is None  # ...but not kept

    async def fresh() -> str:
        return "after the update"

    assert await cache.get_or_compute("k", fresh) == "after the update"


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    cache = TtlCache(ttl=10)

    async def failing() -> str:
        await asyncio.sleep(0.02)
        raise RuntimeError("charging system down")

    results = await asyncio.gather(*[cache.get_or_compute("k", failing) for _ in range(3)], return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert cache.get("k") is None


async def test_a_cancelled_computation_lets_waiters_compute_themselves() -> None:
    cache = TtlCache(ttl=10)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    first = asyncio.create_task(cache.get_or_compute("k", slow))
    await started.wait()

    async def quick() -> str:
        return "computed again"

    waiter = asyncio.create_task(cache.get_or_compute("k", quick))
    await asyncio.sleep(0.01)
    first.cancel()  # the client of the first request went away
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await waiter == "computed again"

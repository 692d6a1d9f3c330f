"""The charging path's asyncpg pools: one per database and event loop, keyed by the objects themselves (an ``id()``
that a later loop or database reuses can never hand back a pool of a dead loop or of another database), closed
with their database, and those of loops that have ended forgotten."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from openbss.charging import repository as repo
from openbss.platform.db import Database, app_url


async def test_one_pool_per_database_and_loop_closed_with_its_database(settings: Any, rt: Any) -> None:
    first, second = Database(app_url(settings)), Database(app_url(settings))
    try:
        a = await repo.charging_pool(first)
        assert await repo.charging_pool(first) is a
        b = await repo.charging_pool(second)
        assert b is not a
    finally:
        await first.dispose()
        await second.dispose()
    assert a.is_closing() and b.is_closing()  # closed with their database: no connection left behind
    fresh = Database(app_url(settings))
    try:
        c = await repo.charging_pool(fresh)
        assert c is not a and c is not b and not c.is_closing()
    finally:
        await fresh.dispose()


async def test_a_pool_of_a_loop_that_ended_is_never_handed_out(settings: Any, rt: Any, tenant: str) -> None:
    """What ``openbss`` commands run in a thread do (tests/rating/test_cli.py): ``asyncio.run``, a new loop and a
    new database each time."""
    db = Database(app_url(settings))

    def command(database: Database) -> Any:
        async def run() -> Any:
            pool = await repo.charging_pool(database)
            async with repo.bound_connection(pool, tenant) as conn:
                assert await conn.fetchval("SELECT current_setting('openbss.tenant_id', true)") == tenant
            return pool

        return asyncio.run(run())

    try:
        dead = await asyncio.to_thread(command, db)  # its loop is gone, its database is not
        live = await repo.charging_pool(db)
        assert live is not dead and live._loop is asyncio.get_running_loop()
        async with repo.tenant_transaction(live, tenant) as conn:
            assert await conn.fetchval("SELECT current_setting('openbss.tenant_id', true)") == tenant
        assert all(not loop.is_closed() for loop in db.attached[repo._POOLS].pools)  # the dead loop's forgotten
        for _ in range(3):  # databases and loops come and go (their ids reused): each gets a pool of its own
            other = Database(app_url(settings))
            pool = await asyncio.to_thread(command, other)
            assert pool is not live and pool is not dead
            del other, pool
            gc.collect()
        assert await repo.charging_pool(db) is live
    finally:
        await db.dispose()
    assert live.is_closing()

"""The connection pool: connections are kept once open (no new PostgreSQL session per burst), and a connection the
server closed is replaced before it is handed out (no failed request)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from openbss.platform.db import Database, app_url


async def test_connections_opened_for_a_burst_are_kept(settings: Any) -> None:
    db = Database(app_url(settings), pool_size=2, max_overflow=3)
    try:
        async def work() -> None:
            async with db.transaction(None) as session:
                await session.execute(text("SELECT pg_sleep(0.05)"))

        await asyncio.gather(*(work() for _ in range(12)))
        assert db.engine.pool.checkedin() == 5  # all five opened, none closed as they came back
        await asyncio.gather(*(work() for _ in range(12)))
        assert db.engine.pool.checkedin() == 5
    finally:
        await db.dispose()


async def test_a_connection_closed_by_the_server_is_replaced(rt: Any, settings: Any) -> None:
    db = Database(app_url(settings), pool_size=3, max_overflow=0)
    try:
        async def mine() -> set[int]:
            async def one() -> int:
                async with db.transaction(None) as session:
                    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                    await session.execute(text("SELECT pg_sleep(0.05)"))
                    return int(pid)

            return set(await asyncio.gather(*(one() for _ in range(3))))

        before = await mine()
        assert len(before) == 3
        async with rt.db.engine.connect() as admin:  # the server ends the pool's sessions (restart, admin, timeout)
            for pid in before:
                await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await asyncio.sleep(0.2)
        after = await mine()  # every request succeeds, on new sessions
        assert len(after) == 3 and not after & before
    finally:
        await db.dispose()

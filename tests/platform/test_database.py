"""Transactions and the connection pool: the tenant scope is bound in the transaction's first message (and only in
that transaction), connections are kept once open (no new PostgreSQL session per burst), and a connection the server
closed is replaced before it is handed out (no failed request)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, text

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


SCOPE = text("SELECT current_setting('openbss.tenant_id', true), current_setting('openbss.scope', true), "
             "pg_current_xact_id_if_assigned() IS NULL, now() = statement_timestamp()")


async def test_the_scope_is_bound_with_begin_in_the_transaction_only(settings: Any, tenant: str) -> None:
    db = Database(app_url(settings), pool_size=1, max_overflow=0)
    try:
        async with db.transaction(tenant) as session:  # the driver's connection is in the bound transaction at once
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            assert await driver.fetchval("SELECT current_setting('openbss.tenant_id', true)") == tenant
            bound = (await session.execute(SCOPE)).one()
            assert bound[:2] == (tenant, "")
            assert bound[3] is False  # in a transaction begun before this statement (with the binding)
        async with db.transaction(None, system=True) as session:
            assert (await session.execute(SCOPE)).one()[:2] == ("", "system")
        async with db.transaction(tenant):
            pass  # a transaction without a statement
        async with db.engine.connect() as conn:  # the binding never reaches another user of the connection
            after = (await conn.execute(SCOPE)).one()
            assert after[0] in (None, "") and after[1] in (None, "")
    finally:
        await db.dispose()


async def test_a_tenant_id_that_is_not_a_plain_identifier_is_bound_as_a_parameter(settings: Any) -> None:
    db = Database(app_url(settings), pool_size=1, max_overflow=0)
    odd = "x'); SELECT set_config('openbss.scope', 'system', true); --"
    try:
        async with db.transaction(odd) as session:
            assert (await session.execute(SCOPE)).one()[:2] == (odd, "")
    finally:
        await db.dispose()


BOUND = text("SELECT current_setting('openbss.tenant_id', true), pg_current_xact_id()::text")


async def _commits_bound_to(db: Database, tenant: str) -> None:
    """A transaction of ``db`` is bound to ``tenant`` and really commits (its transaction id is committed, as seen
    from another session) instead of running inside a transaction left open on its connection."""
    async with db.transaction(tenant) as session:
        bound, xid = (await session.execute(BOUND)).one()
    assert bound == tenant
    async with db.engine.connect() as other:  # the pool's only connection, or a new one
        status = (await other.execute(text("SELECT pg_xact_status(CAST(CAST(:x AS text) AS xid8))"),
                                      {"x": xid})).scalar_one()
        await other.rollback()
    assert status == "committed"


async def test_a_transaction_cancelled_during_its_begin_leaves_nothing_open(settings: Any) -> None:
    """A task cancelled while its BEGIN is on the wire (a request timing out, a loop stopped): the server may have
    begun the transaction that neither SQLAlchemy nor asyncpg will end, and asyncpg keeps the failed transaction as
    the connection's own, making every later transaction on it a SAVEPOINT inside: never committed, its tenant not
    bound (what broke every later test of one xdist worker). The connection is closed instead, and replaced."""
    db = Database(app_url(settings), pool_size=1, max_overflow=0)
    try:
        await _commits_bound_to(db, "b")
        for i in range(40):
            async def bound_to_a() -> None:
                async with db.transaction("a") as session:
                    await session.execute(text("SELECT pg_sleep(0.05)"))

            task = asyncio.create_task(bound_to_a())
            for _ in range(i % 8):  # cancelled at every point: before, during and after its BEGIN
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            await _commits_bound_to(db, f"b{i}")
    finally:
        await db.dispose()


async def test_a_begin_cancelled_once_the_server_ran_it_is_not_reused(settings: Any) -> None:
    """The cancellation arriving just after the server ran the BEGIN, deterministically."""
    db = Database(app_url(settings), pool_size=1, max_overflow=0)
    try:
        async with db.transaction(None) as session:
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            pid = driver.get_server_pid()

        async def run_then_cancel(query: str, *args: Any, timeout: float | None = None) -> str:
            del driver.execute  # once
            await type(driver).execute(driver, query, *args, timeout=timeout)
            raise asyncio.CancelledError

        driver.execute = run_then_cancel
        try:
            async with db.transaction("a"):
                raise AssertionError("the transaction began")
        except asyncio.CancelledError:
            pass
        await _commits_bound_to(db, "b")
        async with db.transaction(None) as session:
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await db.dispose()


async def test_a_connection_returned_in_a_server_transaction_is_closed(settings: Any, caplog: Any) -> None:
    """A connection handed back to the pool while its server session is still in a transaction that the pool's
    reset knows nothing of is closed as it returns (the server rolls back and frees its locks), and never serves
    another transaction; an error is logged."""
    db = Database(app_url(settings), pool_size=1, max_overflow=0)
    try:
        async with db.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            pid = driver.get_server_pid()
            await driver.execute("BEGIN; SELECT pg_advisory_xact_lock(4242); "
                                 "SELECT set_config('openbss.tenant_id', 'a', true)")
            assert driver.is_in_transaction()
        assert "still in a transaction" in caplog.text
        await _commits_bound_to(db, "b")
        async with db.transaction(None) as session:  # the lock went with the transaction; the session is gone
            assert (await session.execute(text("SELECT pg_try_advisory_xact_lock(4242)"))).scalar_one() is True
            assert (await session.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                          {"p": pid})).scalar_one() == 0
    finally:
        await db.dispose()


async def test_a_pooled_connection_found_in_a_transaction_is_replaced(settings: Any, caplog: Any) -> None:
    """The last line of defence: a connection idle in the pool whose session is in a transaction (however it got
    there) is not handed out; it is replaced, and an error is logged."""
    db = Database(app_url(settings), pool_size=1, max_overflow=0)
    try:
        await _commits_bound_to(db, "a")
        [record] = list(db.engine.pool._pool._queue._queue)  # type: ignore[attr-defined]
        driver = record.dbapi_connection.driver_connection
        await driver.execute("BEGIN; SELECT set_config('openbss.tenant_id', 'a', true)")
        await _commits_bound_to(db, "b")
        assert "still in a transaction: replaced" in caplog.text
        assert driver.is_closed()
    finally:
        await db.dispose()


async def test_row_level_security_follows_the_bound_tenant(client: Any, tenant: str, other_tenant: str,
                                                           rt: Any) -> None:
    from openbss.party.models import Individual
    from tests.conftest import bearer

    mine = await client.post("/tmf-api/party/v4/individual", json={"givenName": "Rls", "familyName": "Mine"},
                             headers=bearer(tenant, "admin"))
    assert mine.status_code == 201
    for who, expected in ((tenant, {mine.json()["id"]}), (other_tenant, set())):
        async with rt.db.transaction(who) as session:
            ids = set((await session.execute(select(Individual.id))).scalars())
            assert (mine.json()["id"] in ids) == bool(expected)

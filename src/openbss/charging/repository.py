"""Every query of online charging, at the asyncpg level (the credit-control hot path).

A credit-control request is two round trips and no explicit transaction: ``read_for_request`` reads the account
with its buckets, open reservations, session and stored answer in one statement (one snapshot, no lock); the
service decides in memory; ``write`` applies every change in one statement of data-modifying CTEs (buckets,
session, reservations, stored answer, usage records, outbox events) guarded by the account's ``version``: if the
account changed in between, nothing is written and the service decides again. A hot account falls back to
``tenant_transaction`` + ``lock_account`` (``SELECT ... FOR UPDATE``: all changes of an account serialize on that
one row) and the same write, which then cannot conflict.

The hot path takes its connections from a dedicated asyncpg pool (``charging_pool``) to the same database as the
application role: no ORM, no pre-ping, no reset query on release, generic plans, no JIT. Its connections are bound to
a tenant at session level (``ChargingConnection.bind_tenant``, checked on every use). The TMF654 actions run in the
request's SQLAlchemy transaction and reach the same statements through its asyncpg connection
(``session_connection``), under the account lock.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.platform.db import SCOPE_GUC, TENANT_GUC, Database, json_dumps
from openbss.platform.events.outbox import NOTIFY_CHANNEL

ACCOUNT_COLUMNS = ("a.id, a.subscriber, a.product_id, a.offering_id, a.billing_account_id, a.party_id, "
                   "a.party_type, a.payment_type, a.currency, a.time_zone, a.status, a.barred, a.plan::text AS plan, "
                   "a.quota_validity_seconds, a.low_balance_minor, a.version")

SELECT_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM charging_account a"  # noqa: S608 - constant columns
LOCK_BY_SUBSCRIBER = SELECT_ACCOUNT + " WHERE a.subscriber = $1 FOR UPDATE"
LOCK_BY_ID = SELECT_ACCOUNT + " WHERE a.id = $1 FOR UPDATE"
LOCK_BY_SESSION = (SELECT_ACCOUNT + " JOIN charging_session s ON s.account_id = a.id "
                   "WHERE s.session_id = $1 FOR UPDATE OF a")

LOAD_STATE = """
SELECT
 (SELECT coalesce(json_agg(json_build_object(
     'id', b.id, 'unit', b.unit, 'remaining', b.remaining, 'reserved', b.reserved, 'initial', b.initial,
     'lower_limit', b.lower_limit, 'valid_from', extract(epoch FROM b.valid_from),
     'valid_to', extract(epoch FROM b.valid_to), 'priority', b.priority, 'zones', b.zones, 'services', b.services,
     'bands', b.bands, 'threshold_level', b.threshold_level, 'source', b.source)), '[]')
  FROM charging_bucket b
  WHERE b.account_id = $1 AND (b.valid_to IS NULL OR b.valid_to > now() OR b.reserved <> 0))::text AS buckets,
 (SELECT coalesce(json_agg(json_build_object(
     'id', r.id, 'session_pk', r.session_pk, 'rating_group', r.rating_group, 'usage_type', r.usage_type,
     'state', r.state, 'holds', r.holds, 'granted', r.granted, 'used_units', r.used_units,
     'allowance_units', r.allowance_units, 'money_units', r.money_units, 'rate', r.rate,
     'expires_at', extract(epoch FROM r.expires_at))), '[]')
  FROM (SELECT * FROM charging_reservation WHERE account_id = $1 AND state = 'open'
        UNION ALL
        SELECT * FROM charging_reservation
        WHERE session_pk = (SELECT s.id FROM charging_session s WHERE s.session_id = $2) AND state <> 'open') r
 )::text AS reservations,
 (SELECT json_build_object('id', s.id, 'state', s.state, 'last', s.last_request_number,
     'expires_at', extract(epoch FROM s.expires_at), 'info', s.info, 'account_id', s.account_id)::text
  FROM charging_session s WHERE s.session_id = $2) AS session,
 (SELECT q.response::text FROM charging_request q WHERE q.session_id = $2 AND q.request_number = $3) AS stored
"""

# The optimistic path reads the account and its state in one statement without a lock (one snapshot); the write
# then applies only if the account's version is still the one read (see WRITE).
#: the usable buckets of account ``a`` as JSON (a column of the statements that read an account's state)
BUCKETS_OF_A = """
 (SELECT coalesce(json_agg(json_build_object(
     'id', b.id, 'unit', b.unit, 'remaining', b.remaining, 'reserved', b.reserved, 'initial', b.initial,
     'lower_limit', b.lower_limit, 'valid_from', extract(epoch FROM b.valid_from),
     'valid_to', extract(epoch FROM b.valid_to), 'priority', b.priority, 'zones', b.zones, 'services', b.services,
     'bands', b.bands, 'threshold_level', b.threshold_level, 'source', b.source)), '[]')
  FROM charging_bucket b
  WHERE b.account_id = a.id AND (b.valid_to IS NULL OR b.valid_to > now() OR b.reserved <> 0))::text AS buckets,
"""
#: the reservations ``r`` as JSON (the FROM clause that chooses them follows)
RESERVATIONS_JSON = """\
 (SELECT coalesce(json_agg(json_build_object(
     'id', r.id, 'session_pk', r.session_pk, 'rating_group', r.rating_group, 'usage_type', r.usage_type,
     'state', r.state, 'holds', r.holds, 'granted', r.granted, 'used_units', r.used_units,
     'allowance_units', r.allowance_units, 'money_units', r.money_units, 'rate', r.rate,
     'expires_at', extract(epoch FROM r.expires_at))), '[]')
"""
_STATE_OF_A = BUCKETS_OF_A + RESERVATIONS_JSON + """\
  FROM (SELECT * FROM charging_reservation WHERE account_id = a.id AND state = 'open'
        UNION ALL
        SELECT * FROM charging_reservation
        WHERE session_pk = (SELECT s.id FROM charging_session s WHERE s.session_id = $2) AND state <> 'open') r
 )::text AS reservations,
 (SELECT json_build_object('id', s.id, 'state', s.state, 'last', s.last_request_number,
     'expires_at', extract(epoch FROM s.expires_at), 'info', s.info, 'account_id', s.account_id)::text
  FROM charging_session s WHERE s.session_id = $2) AS session,
 (SELECT q.response::text FROM charging_request q WHERE q.session_id = $2 AND q.request_number = $3) AS stored
"""  # noqa: S608 - constant
READ_BY_SUBSCRIBER = ("SELECT " + ACCOUNT_COLUMNS + ", " + _STATE_OF_A  # noqa: S608 - constant
                      + " FROM charging_account a WHERE a.subscriber = $1")
READ_BY_SESSION = ("SELECT " + ACCOUNT_COLUMNS + ", " + _STATE_OF_A  # noqa: S608 - constant
                   + " FROM charging_account a WHERE a.id = (SELECT account_id FROM charging_session "
                   "WHERE session_id = $2) AND $1::text IS NULL")

# Every change of an account's balances goes through this statement. ``v`` bumps the account's version only if
# it is still the one the decision was made on ($10); every other part applies only if ``v`` did: a concurrent
# change in between makes the whole statement a no-op (and the caller decides again on fresh state).
WRITE = """
WITH
v AS (
  UPDATE charging_account SET version = version + 1 WHERE id = $7 AND version = $10 RETURNING id),
bu AS (
  UPDATE charging_bucket b SET remaining = b.remaining + x.dr, reserved = b.reserved + x.dq,
         threshold_level = coalesce(x.lvl, b.threshold_level), last_update = now()
  FROM jsonb_to_recordset($1::jsonb) AS x(id text, dr bigint, dq bigint, lvl smallint)
  WHERE b.id = x.id AND EXISTS (SELECT 1 FROM v) RETURNING 1),
s AS (
  INSERT INTO charging_session (session_id, account_id, state, last_request_number, service_context, info,
                                expires_at)
  SELECT x.session_id, $7, x.state, x.last, x.service_context, x.info, to_timestamp(x.expires_at)
  FROM jsonb_to_recordset($2::jsonb) AS x(session_id text, state text, last int, service_context text,
                                          info jsonb, expires_at double precision)
  WHERE EXISTS (SELECT 1 FROM v)
  ON CONFLICT (session_id, tenant_id) DO UPDATE SET state = excluded.state,
         last_request_number = excluded.last_request_number, updated_at = now(), expires_at = excluded.expires_at
  RETURNING id),
ru AS (
  UPDATE charging_reservation r SET state = x.state, holds = x.holds, granted = x.granted,
         used_units = x.used_units, allowance_units = x.allowance_units, money_units = x.money_units,
         expires_at = to_timestamp(x.expires_at), rate = coalesce(x.rate, r.rate)
  FROM jsonb_to_recordset($3::jsonb) AS x(id bigint, state text, holds jsonb, granted bigint, used_units bigint,
                                          allowance_units bigint, money_units bigint, expires_at double precision,
                                          rate jsonb)
  WHERE r.id = x.id AND EXISTS (SELECT 1 FROM v) RETURNING 1),
ri AS (
  INSERT INTO charging_reservation (account_id, session_pk, rating_group, usage_type, state, holds, granted,
                                    used_units, allowance_units, money_units, rate, expires_at)
  SELECT $7, coalesce(x.session_pk, (SELECT id FROM s)), x.rating_group, x.usage_type, x.state, x.holds,
         x.granted, x.used_units, x.allowance_units, x.money_units, x.rate, to_timestamp(x.expires_at)
  FROM jsonb_to_recordset($4::jsonb) AS x(session_pk bigint, rating_group bigint, usage_type text, state text,
       holds jsonb, granted bigint, used_units bigint, allowance_units bigint, money_units bigint, rate jsonb,
       expires_at double precision)
  WHERE EXISTS (SELECT 1 FROM v)
  RETURNING 1),
q AS (
  INSERT INTO charging_request (session_id, request_number, response)
  SELECT $5, $6, $8::jsonb WHERE $8::text IS NOT NULL AND EXISTS (SELECT 1 FROM v) RETURNING 1),
u AS (
  INSERT INTO charging_usage (id, body, account_id, session_id, request_number, rating_group, usage_type, units,
                              allowance_units, amount_minor, currency, usage_date, last_update)
  SELECT x.id, x.body, $7, $5, $6, x.rating_group, x.usage_type, x.units, x.allowance_units, x.amount_minor,
         x.currency, to_timestamp(x.usage_date), now()
  FROM jsonb_to_recordset($9::jsonb) AS x(id text, body jsonb, rating_group bigint, usage_type text, units bigint,
       allowance_units bigint, amount_minor bigint, currency text, usage_date double precision)
  WHERE EXISTS (SELECT 1 FROM v)
  RETURNING 1),
e AS (
  INSERT INTO outbox_event (event_id, api, event_type, resource_type, resource_id, envelope)
  SELECT x.event_id, x.api, x.event_type, x.resource_type, x.resource_id, x.envelope
  FROM jsonb_to_recordset($11::jsonb) AS x(event_id uuid, api text, event_type text, resource_type text,
                                           resource_id text, envelope jsonb)
  WHERE EXISTS (SELECT 1 FROM v)
  RETURNING 1)
SELECT (SELECT count(*) FROM v) AS applied,
       CASE WHEN (SELECT count(*) FROM e) > 0 THEN pg_notify($12, '') END AS notified
"""



# The statements are few and fixed: plan them once (generic plans; RLS's ``current_setting`` is a stable
# parameter) and never JIT-compile them (JIT costs milliseconds for a statement that runs in microseconds).
SERVER_SETTINGS = {"jit": "off", "plan_cache_mode": "force_generic_plan"}

# --- connections ------------------------------------------------------------------------------------------------
class ChargingConnection(asyncpg.Connection):
    """A pool connection that remembers the tenant it is bound to at session level (optimistic path)."""

    __slots__ = ("_bound_tenant",)

    async def bind_tenant(self, tenant_id: str) -> None:
        """Bind the session to ``tenant_id`` (row-level security) unless it already is. Every use of this pool
        goes through ``bind_tenant`` or ``tenant_transaction`` (whose transaction-local binding reverts on
        commit), so a connection never serves a tenant with another tenant's binding."""
        if getattr(self, "_bound_tenant", None) != tenant_id:
            self._bound_tenant = None
            await self.execute(f"SELECT set_config('{TENANT_GUC}', $1, false), set_config('{SCOPE_GUC}', '', false)",
                               tenant_id)
            self._bound_tenant = tenant_id


#: ``Database.attached`` key of the database's charging pools: one per event loop, keyed by the loop itself (never
#: by ``id()``, which a later loop or database may reuse), with the lock that creates it
_POOLS = "charging.pools"


class _LoopPools:
    def __init__(self) -> None:
        self.pools: dict[asyncio.AbstractEventLoop, asyncpg.Pool] = {}
        self.locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def forget_closed_loops(self) -> None:
        """Pools of loops that have ended (``asyncio.run`` of a CLI command) can no longer be used or closed:
        forgotten, their sockets closed as they are collected (the server ends their sessions)."""
        for loop in [loop for loop in self.pools if loop.is_closed()]:
            self.pools.pop(loop, None)
        for loop in [loop for loop in self.locks if loop.is_closed()]:
            self.locks.pop(loop, None)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: asyncpg still rolls back an open transaction (so a transaction-local binding
    of ``tenant_transaction`` never survives), and the session-level binding of ``bind_tenant`` is kept on
    purpose — every acquisition goes through ``bound_connection`` or ``tenant_transaction``, which (re)bind."""
    return None


@asynccontextmanager
async def bound_connection(pool: asyncpg.Pool, tenant_id: str) -> AsyncIterator[Any]:
    """A pool connection bound to ``tenant_id`` at session level (re-bound only when it served another tenant).
    The only way to acquire from the charging pool outside ``tenant_transaction``."""
    async with pool.acquire() as conn:
        await conn.bind_tenant(tenant_id)
        yield conn


async def charging_pool(db: Database, size: int = 10) -> asyncpg.Pool:
    """The process's asyncpg pool for the credit-control path: one per database and event loop, kept by the
    database and closed when it is disposed."""
    loop = asyncio.get_running_loop()
    state: _LoopPools | None = db.attached.get(_POOLS)
    if state is None:
        state = db.attached.setdefault(_POOLS, _LoopPools())
    pool = state.pools.get(loop)
    if pool is not None and _usable(pool, loop):
        return pool
    async with state.locks.setdefault(loop, asyncio.Lock()):
        pool = state.pools.get(loop)
        if pool is None or not _usable(pool, loop):
            state.forget_closed_loops()
            dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, reset=_no_reset,
                                             max_inactive_connection_lifetime=60.0, server_settings=SERVER_SETTINGS,
                                             connection_class=ChargingConnection)
            state.pools[loop] = pool
            db.on_dispose(lambda: _close_pool(state, loop, pool))
    return pool


def _usable(pool: asyncpg.Pool, loop: asyncio.AbstractEventLoop) -> bool:
    return getattr(pool, "_loop", loop) is loop and not pool.is_closing()


async def _close_pool(state: _LoopPools, loop: asyncio.AbstractEventLoop, pool: asyncpg.Pool) -> None:
    if state.pools.get(loop) is pool:
        state.pools.pop(loop, None)
    if loop is asyncio.get_running_loop() and not pool.is_closing():
        await pool.close()


async def close_pools(db: Database) -> None:
    """Close the database's charging pool of the running loop (``Database.dispose`` does it too)."""
    state: _LoopPools | None = db.attached.get(_POOLS)
    loop = asyncio.get_running_loop()
    if state is not None and (pool := state.pools.get(loop)) is not None:
        await _close_pool(state, loop, pool)


def _literal(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL in a tenant id")
    return "'" + value.replace("'", "''") + "'"


@asynccontextmanager
async def tenant_transaction(pool: asyncpg.Pool, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
    """One transaction bound to the tenant (row-level security), begun and bound in one round trip."""
    async with pool.acquire() as conn:
        await conn.execute(f"BEGIN; SELECT set_config('{TENANT_GUC}', {_literal(tenant_id)}, true), "
                           f"set_config('{SCOPE_GUC}', '', true)")
        try:
            yield conn
        except BaseException:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


async def session_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy session, inside its (tenant-bound) transaction."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


# --- reads and writes --------------------------------------------------------------------------------------------
def _account(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["plan"] = json.loads(out["plan"])
    return out


async def lock_account(conn: asyncpg.Connection, *, subscriber: str | None = None, session_id: str | None = None,
                       account_id: str | None = None) -> dict[str, Any] | None:
    if subscriber is not None:
        return _account(await conn.fetchrow(LOCK_BY_SUBSCRIBER, subscriber))
    if session_id is not None:
        return _account(await conn.fetchrow(LOCK_BY_SESSION, session_id))
    return _account(await conn.fetchrow(LOCK_BY_ID, account_id))


async def lock_accounts(conn: asyncpg.Connection, account_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Lock several accounts in a fixed order (by id): two transfers in opposite directions cannot deadlock."""
    out: dict[str, dict[str, Any]] = {}
    for account_id in sorted(set(account_ids)):
        acc = await lock_account(conn, account_id=account_id)
        if acc is not None:
            out[account_id] = acc
    return out


async def load_state(conn: asyncpg.Connection, account_id: str, session_id: str = "",
                     request_number: int = -1) -> dict[str, Any]:
    row = await conn.fetchrow(LOAD_STATE, account_id, session_id, request_number)
    assert row is not None
    return {
        "buckets": json.loads(row["buckets"]),
        "reservations": json.loads(row["reservations"]),
        "session": json.loads(row["session"]) if row["session"] else None,
        "stored": json.loads(row["stored"]) if row["stored"] else None,
    }


async def write(conn: asyncpg.Connection, account_id: str, *, version: int, buckets: list[dict[str, Any]],
                session: list[dict[str, Any]] | None = None, reservation_updates: list[dict[str, Any]] | None = None,
                reservation_inserts: list[dict[str, Any]] | None = None, session_id: str = "",
                request_number: int = 0, response: dict[str, Any] | None = None,
                usages: list[dict[str, Any]] | None = None, events: list[dict[str, Any]] | None = None) -> bool:
    """Apply the changes if the account is still at ``version``; False (nothing written) otherwise."""
    row = await conn.fetchrow(
        WRITE, json_dumps(buckets), json_dumps(session or []), json_dumps(reservation_updates or []),
        json_dumps(reservation_inserts or []), session_id, request_number, account_id,
        json_dumps(response) if response is not None else None, json_dumps(usages or []), version,
        json_dumps(events or []), NOTIFY_CHANNEL)
    return bool(row and row["applied"])


async def read_for_request(conn: asyncpg.Connection, *, subscriber: str | None, session_id: str,
                           request_number: int) -> dict[str, Any] | None:
    """The account (by subscriber, or by the session) and its state, in one snapshot, without a lock."""
    row = await conn.fetchrow(READ_BY_SUBSCRIBER if subscriber is not None else READ_BY_SESSION,
                              subscriber, session_id, request_number)
    if row is None:
        return None
    account = {k: row[k] for k in ("id", "subscriber", "product_id", "offering_id", "billing_account_id",
                                   "party_id", "party_type", "payment_type", "currency", "time_zone", "status",
                                   "barred", "quota_validity_seconds", "low_balance_minor", "version")}
    account["plan"] = json.loads(row["plan"])
    return {"account": account, "buckets": json.loads(row["buckets"]),
            "reservations": json.loads(row["reservations"]),
            "session": json.loads(row["session"]) if row["session"] else None,
            "stored": json.loads(row["stored"]) if row["stored"] else None}


def event_row(api: str, event_type: str, resource_key: str, resource: dict[str, Any], event_time: str,
              resource_type: str) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    return {"event_id": event_id, "api": api, "event_type": event_type, "resource_type": resource_type,
            "resource_id": str(resource.get("id", "")),
            "envelope": {"eventId": event_id, "eventTime": event_time, "eventType": event_type,
                         "event": {resource_key: resource}}}


INSERT_ACCOUNT = """
INSERT INTO charging_account (id, subscriber, product_id, offering_id, billing_account_id, party_id, payment_type,
                              currency, time_zone, status, plan, quota_validity_seconds, low_balance_minor, party_type)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10::jsonb, $11, $12, $13)
ON CONFLICT (subscriber, tenant_id) DO NOTHING
RETURNING id
"""

INSERT_BUCKET = """
INSERT INTO charging_bucket (id, body, last_update, account_id, unit, remaining, reserved, initial, lower_limit,
                             valid_from, valid_to, priority, source, source_key, zones, rollover_periods, services,
                             bands)
VALUES ($1, $2::jsonb, now(), $3, $4, $5, 0, $5, $6, to_timestamp($7), to_timestamp($8), $9, $10, $11, $12::jsonb,
        $13, $14::jsonb, $15::jsonb)
ON CONFLICT (account_id, source_key) DO NOTHING
RETURNING id
"""


async def insert_account(conn: asyncpg.Connection, account: dict[str, Any]) -> bool:
    got = await conn.fetchval(
        INSERT_ACCOUNT, account["id"], account["subscriber"], account.get("product_id"), account.get("offering_id"),
        account.get("billing_account_id"), account.get("party_id"), account["payment_type"], account["currency"],
        account.get("time_zone") or "UTC", json_dumps(account["plan"]), account.get("quota_validity_seconds", 300),
        account.get("low_balance_minor", 0), account.get("party_type") or "Individual")
    return got is not None


async def insert_bucket(conn: asyncpg.Connection, bucket: dict[str, Any]) -> bool:
    """Insert a bucket unless one with the same ``source_key`` exists on the account (idempotent renewals)."""
    got = await conn.fetchval(
        INSERT_BUCKET, bucket["id"], json_dumps(bucket["body"]), bucket["account_id"], bucket["unit"],
        bucket["amount"], bucket.get("lower_limit", 0), bucket.get("valid_from"), bucket.get("valid_to"),
        bucket.get("priority", 100), bucket["source"], bucket.get("source_key"),
        json_dumps(bucket["zones"]) if bucket.get("zones") is not None else None, bucket.get("rollover_periods", 0),
        json_dumps(bucket["services"]) if bucket.get("services") is not None else None,
        json_dumps(bucket["bands"]) if bucket.get("bands") is not None else None)
    return got is not None


async def account_by(conn: asyncpg.Connection, *, subscriber: str | None = None, product_id: str | None = None,
                     account_id: str | None = None) -> dict[str, Any] | None:
    if subscriber is not None:
        row = await conn.fetchrow(SELECT_ACCOUNT + " WHERE a.subscriber = $1", subscriber)
    elif product_id is not None:
        row = await conn.fetchrow(SELECT_ACCOUNT + " WHERE a.product_id = $1", product_id)
    else:
        row = await conn.fetchrow(SELECT_ACCOUNT + " WHERE a.id = $1", account_id)
    return _account(row)


async def accounts_by(conn: asyncpg.Connection, *, subscribers: list[str] | None = None,
                      account_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The accounts of these subscribers, or with these ids, in one query (without their buckets)."""
    if subscribers is not None:
        rows = await conn.fetch(SELECT_ACCOUNT + " WHERE a.subscriber = ANY($1::text[])", subscribers)
    else:
        rows = await conn.fetch(SELECT_ACCOUNT + " WHERE a.id = ANY($1::text[])", account_ids or [])
    return [a for a in map(_account, rows) if a is not None]


async def bucket_rows(conn: asyncpg.Connection, bucket_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, account_id, unit, remaining, reserved, initial, lower_limit, body::text AS body, "
        "extract(epoch FROM valid_to) AS valid_to FROM charging_bucket WHERE id = ANY($1::text[])", bucket_ids)
    return {r["id"]: {**dict(r), "body": json.loads(r["body"])} for r in rows}


async def accounts_with_expired_reservations(conn: asyncpg.Connection, limit: int = 500) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT account_id FROM charging_reservation WHERE state = 'open' AND expires_at <= now() "
        "LIMIT $1", limit)  # the open ones only: the partial index ix_charging_reservation_open
    return [r["account_id"] for r in rows]


async def expired_reservation_tenants(conn: asyncpg.Connection) -> list[str]:
    """Tenants with reservations past their validity (a system-scope query over the tenant table)."""
    rows = await conn.fetch("SELECT id FROM tenant WHERE status = 'active'")
    return [r["id"] for r in rows]


async def usage_totals(conn: asyncpg.Connection, account_id: str) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount_minor), 0) AS amount, coalesce(sum(allowance_units), 0) AS "
        "allowance, coalesce(sum(units), 0) AS units FROM charging_usage WHERE account_id = $1", account_id)
    return {k: int(v) for k, v in dict(row).items()} if row else {}


async def postpaid_usage(conn: asyncpg.Connection, billing_account_id: str, since: datetime, before: datetime,
                         ) -> list[asyncpg.Record]:
    """The usage records of the postpaid lines of a billing account in ``[since, before)``."""
    return list(await conn.fetch(
        "SELECT u.id, a.product_id, u.usage_type, u.units, u.amount_minor, u.currency, u.usage_date "
        "FROM charging_usage u JOIN charging_account a ON a.id = u.account_id "
        "WHERE a.billing_account_id = $1 AND a.payment_type = 'postpaid' AND u.usage_date >= $2 "
        "AND u.usage_date < $3 ORDER BY u.usage_date, u.id", billing_account_id, since, before))


async def postpaid_usage_of(conn: asyncpg.Connection, billing_account_ids: list[str], since: datetime,
                            before: datetime) -> list[asyncpg.Record]:
    """``postpaid_usage`` of many billing accounts at once (with each record's ``billing_account_id``)."""
    return list(await conn.fetch(
        "SELECT a.billing_account_id, u.id, a.product_id, u.usage_type, u.units, u.amount_minor, u.currency, "
        "u.usage_date FROM charging_usage u JOIN charging_account a ON a.id = u.account_id "
        "WHERE a.billing_account_id = ANY($1::text[]) AND a.payment_type = 'postpaid' AND u.usage_date >= $2 "
        "AND u.usage_date < $3 ORDER BY u.usage_date, u.id", billing_account_ids, since, before))


async def itemized_usage(conn: asyncpg.Connection, usage_ids: list[str]) -> list[asyncpg.Record]:
    """The usage records ``usage_ids`` as an itemized bill lists them: time, type, quantity, what they cost and the
    characteristics that tell one call from another (called party, destination, APN, roaming), in time order."""
    return list(await conn.fetch(
        "SELECT u.id, a.product_id, u.usage_type, u.units, u.allowance_units, u.amount_minor, u.currency, "
        "u.usage_date, u.body -> 'usageCharacteristic' AS chars FROM charging_usage u "
        "JOIN charging_account a ON a.id = u.account_id WHERE u.id = ANY($1::text[]) ORDER BY u.usage_date, u.id",
        usage_ids))


async def prepaid_usage_totals(conn: asyncpg.Connection, since: datetime, before: datetime) -> list[asyncpg.Record]:
    """The money taken from prepaid balances by usage in ``[since, before)``, per currency (minor units): what
    online charging took. Usage rated in batch (keys ``cdr:``) took nothing from a balance and is left out (batch
    rating suspends a prepaid line's records; this keeps records stored before it did out of the revenue)."""
    return list(await conn.fetch(
        "SELECT u.currency, sum(u.amount_minor) AS amount_minor FROM charging_usage u "
        "JOIN charging_account a ON a.id = u.account_id WHERE a.payment_type = 'prepaid' AND u.usage_date >= $1 "
        "AND u.usage_date < $2 AND u.session_id NOT LIKE 'cdr:%' GROUP BY u.currency", since, before))


async def set_status(conn: asyncpg.Connection, account_id: str, status: str) -> None:
    await conn.execute("UPDATE charging_account SET status = $2, version = version + 1 WHERE id = $1", account_id,
                       status)


async def set_barred(conn: asyncpg.Connection, account_id: str, barred: list[str] | None) -> None:
    await conn.execute("UPDATE charging_account SET barred = $2, version = version + 1 WHERE id = $1", account_id,
                       barred or None)


async def set_plan(conn: asyncpg.Connection, account_id: str, offering_id: str | None, plan: dict[str, Any]) -> None:
    await conn.execute("UPDATE charging_account SET plan = $3::jsonb, offering_id = $2, version = version + 1 "
                       "WHERE id = $1", account_id, offering_id, json_dumps(plan))


async def ended_allowances(conn: asyncpg.Connection, account_id: str, key_prefix: str,
                           period_start: float) -> list[tuple[str, int]]:
    """Allowance buckets (of one catalog allowance) that ended when the period starting at ``period_start``
    began, with what they left."""
    rows = await conn.fetch(
        "SELECT id, remaining - reserved AS left FROM charging_bucket WHERE account_id = $1 AND source = 'allowance' "
        "AND starts_with(source_key, $2) AND valid_to = to_timestamp($3)", account_id, key_prefix, period_start)
    return [(r["id"], int(r["left"])) for r in rows]


async def accounts_due_for_renewal(conn: asyncpg.Connection, moment: float) -> list[tuple[str, float]]:
    """Accounts whose latest allowance period has ended, with its end."""
    rows = await conn.fetch(
        "SELECT a.id, extract(epoch FROM max(b.valid_to))::float8 AS ended FROM charging_account a "
        "JOIN charging_bucket b ON b.account_id = a.id AND b.source = 'allowance' WHERE a.status = 'active' "
        "GROUP BY a.id HAVING max(b.valid_to) <= to_timestamp($1)", moment)
    return [(r["id"], float(r["ended"])) for r in rows]


async def purge_finished(conn: asyncpg.Connection, keep_seconds: int) -> int:
    """Delete what a finished session no longer needs: its stored answers (the retry window of a network element
    is seconds, this keeps ``keep_seconds``), released reservations and the session. Usage records stay."""
    n = 0
    for statement in (
        "DELETE FROM charging_request WHERE created_at < now() - make_interval(secs => $1)",
        "DELETE FROM charging_reservation r WHERE r.state <> 'open' AND (r.expires_at < now() - make_interval(secs "
        "=> $1) OR EXISTS (SELECT 1 FROM charging_session s WHERE s.id = r.session_pk AND s.state <> 'open' "
        "AND s.updated_at < now() - make_interval(secs => $1)))",
        "DELETE FROM charging_session s WHERE s.state <> 'open' AND s.updated_at < now() - make_interval(secs => $1) "
        "AND NOT EXISTS (SELECT 1 FROM charging_reservation r WHERE r.session_pk = s.id)",
    ):
        result = await conn.execute(statement, float(keep_seconds))
        n += int(result.split()[-1])
    return n


async def topup_with_key(conn: asyncpg.Connection, key: str) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT id FROM charging_topup_balance WHERE body ? 'idempotencyKey' AND body ->> 'idempotencyKey' = $1", key)
    return found


# --- usage rated in batch (mediation) -------------------------------------------------------------------------
BATCH_USAGE_COLUMNS = ("id", "body", "account_id", "session_id", "request_number", "rating_group", "usage_type",
                       "units", "allowance_units", "amount_minor", "currency", "usage_date")
CREATE_BATCH_USAGE = """
CREATE TEMP TABLE IF NOT EXISTS batch_usage_in (
  id text, body text, account_id text, session_id text, request_number integer, rating_group bigint,
  usage_type text, units bigint, allowance_units bigint, amount_minor bigint, currency text,
  usage_date timestamptz) ON COMMIT DELETE ROWS"""
INSERT_BATCH_USAGE = """
INSERT INTO charging_usage (id, body, account_id, session_id, request_number, rating_group, usage_type, units,
                            allowance_units, amount_minor, currency, usage_date, last_update)
SELECT id, body::jsonb, account_id, session_id, request_number, rating_group, usage_type, units, allowance_units,
       amount_minor, currency, usage_date, now()
FROM batch_usage_in
ON CONFLICT (session_id, request_number, rating_group, tenant_id, usage_date) DO NOTHING
RETURNING session_id"""


async def copy_batch_usage(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> set[str]:
    """COPY usage records into a temporary table, then insert those whose key is new; returns the stored keys."""
    await conn.execute(CREATE_BATCH_USAGE)
    await conn.execute("TRUNCATE batch_usage_in")
    await conn.copy_records_to_table("batch_usage_in", records=rows, columns=BATCH_USAGE_COLUMNS)
    stored = await conn.fetch(INSERT_BATCH_USAGE)
    await conn.execute("TRUNCATE batch_usage_in")
    return {r["session_id"] for r in stored}


async def copy_batch_usage_columns(conn: asyncpg.Connection, data: bytes, columns: list[tuple[str, str]],
                                   body: str, args: list[Any]) -> int:
    """COPY typed columns (PostgreSQL's text format: tab-separated, ``\\N`` for null) into a temporary table, then
    insert in one statement the usage records whose key is new, the TMF635 document built by ``body`` (a SQL
    expression over the columns and the parameters ``args``); returns how many were stored. The columns must include
    ``id``, ``key`` (stored as ``session_id``; request number and rating group 0), ``account_id``, ``usage_type``,
    ``units``, ``allowance_units``, ``amount_minor``, ``currency`` and ``usage_date``."""
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS batch_usage_cols_in ("
                       + ", ".join(f"{n} {t}" for n, t in columns) + ") ON COMMIT DROP")
    await conn.execute("TRUNCATE batch_usage_cols_in")
    await conn.copy_to_table("batch_usage_cols_in", source=io.BytesIO(data),
                             columns=[n for n, _ in columns], format="text")
    insert = (
        "WITH ins AS ("  # noqa: S608
        "INSERT INTO charging_usage (id, body, account_id, session_id, request_number, rating_group, usage_type, "
        "units, allowance_units, amount_minor, currency, usage_date, last_update) "
        f"SELECT id, {body}, account_id, key, 0, 0, usage_type, units, allowance_units, amount_minor, currency, "
        "usage_date, now() FROM batch_usage_cols_in "
        "ON CONFLICT (session_id, request_number, rating_group, tenant_id, usage_date) DO NOTHING RETURNING 1) "
        "SELECT count(*) FROM ins")  # the body is the caller's constant SQL
    stored = await conn.fetchval(insert, *args)
    await conn.execute("DROP TABLE batch_usage_cols_in")
    return int(stored)


async def usage_keys_present(conn: asyncpg.Connection, keys: list[str]) -> set[str]:
    """Which of these usage keys (``session_id`` with request number and rating group 0) are already stored."""
    rows = await conn.fetch("SELECT session_id FROM charging_usage WHERE session_id = ANY($1::text[]) "
                            "AND request_number = 0 AND rating_group = 0", keys)
    return {r["session_id"] for r in rows}

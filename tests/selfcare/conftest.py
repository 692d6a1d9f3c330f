"""Fixtures of the self-care portal tests: a loopback OpenID provider, the corporate directory on the machine's
MariaDB, and an app whose portal serves one tenant, reaches the charging API over HTTP (in process) and archives
to a temporary directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_tenant
from tests.selfcare.mariadb import fresh_database
from tests.selfcare.portal import USERS

CLIENT_ID, CLIENT_SECRET = "openbss-portal", "portal-Secret-42"
REDIRECT_URI = "http://testserver/selfcare/auth/callback"


@pytest.fixture(scope="session")
def idp() -> Iterator[Any]:
    from openbss.demo.identity_provider import IdpClient, start_identity_provider

    running = start_identity_provider(clients=[IdpClient(CLIENT_ID, CLIENT_SECRET, (REDIRECT_URI,))], users=USERS,
                                      title="NorthID")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3-compatible object store on loopback (moto's server: real S3 HTTP API)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks a free one
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def corporate_url() -> Iterator[str]:
    with fresh_database(f"openbss_corp_portal_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="session")
async def portal_tenant(rt: Any, corporate_url: str) -> str:
    from openbss.demo.corporate import seed_demo
    from openbss.selfcare.corporate import CorporateDirectory

    tenant = await make_tenant(rt, "sc")
    directory = CorporateDirectory.from_url(corporate_url)
    await seed_demo(directory, tenant)
    await directory.close()
    return tenant


def portal_settings(settings: Any, tenant: str, idp: Any, corporate_url: str, **overrides: Any) -> Any:
    archive = Path(tempfile.mkdtemp(prefix="openbss-archive-"))
    return settings.model_copy(update={
        "selfcare_tenant": tenant,
        "selfcare_identity_providers": [{"id": "north", "label": "NorthID", "issuer": idp.issuer,
                                         "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}],
        "selfcare_corporate_directory_url": corporate_url,
        "selfcare_archive_url": str(archive),
        "selfcare_rate_limit_ip": "100000/minute", "selfcare_rate_limit_user": "100000/minute",
        "selfcare_rate_limit_auth": "100000/minute", "selfcare_rate_limit_codes": "100000/hour",
        "selfcare_rate_limit_documents": "100000/minute",
        # last month is closed from its last instant on, whatever day the tests run
        "selfcare_month_close_hours": 0.0, **overrides})


def make_portal_app(rt: Any, settings: Any) -> Any:
    from openbss.app import create_app

    app = create_app(settings, runtime=rt)
    # the portal reaches the charging API over HTTP; here that HTTP is served by the same app in process
    app.state.selfcare_charging_transport = httpx.ASGITransport(app=app)
    return app


@pytest.fixture(scope="session")
async def portal_app(rt: Any, settings: Any, portal_tenant: str, idp: Any, corporate_url: str) -> AsyncIterator[Any]:
    from openbss.selfcare.portal import close_portal

    app = make_portal_app(rt, portal_settings(settings, portal_tenant, idp, corporate_url))
    yield app
    await close_portal(app)


@pytest.fixture
async def portal_client(portal_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=portal_app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def other_client(portal_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=portal_app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def portal(portal_app: Any) -> Any:
    """The app's portal object (built by the first request)."""
    return portal_app.state.selfcare

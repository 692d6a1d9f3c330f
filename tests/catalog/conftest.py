"""Catalog fixtures: a tenant seeded with the demo catalog (seeded once per session, read-only tests use it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_tenant, session_services


@pytest.fixture(scope="session")
async def demo_tenant(rt: Any) -> str:
    from openbss.demo.catalog import seed_catalog

    tid = await make_tenant(rt, "cat")
    await seed_catalog(session_services(), rt.db, tid, "http://testserver")
    return tid

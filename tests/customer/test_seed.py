"""The demo seed: a few hundred residential, SME and corporate customers with accounts; idempotent."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer, session_services
from tests.customer.helpers import BA, SEARCH, raw_rows


async def test_seed_customers(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    from openbss.demo.customers import CORPORATE, RESIDENTIAL, SME, seed_customers

    await seed_customers(session_services(), rt.db, tenant, "http://testserver")
    await seed_customers(session_services(), rt.db, tenant, "http://testserver")  # idempotent
    h = bearer(tenant)
    for segment, n in (("residential", RESIDENTIAL), ("sme", SME), ("corporate", CORPORATE)):
        r = await client.get(SEARCH, params={"segment": segment, "limit": "1"}, headers=h)
        assert r.headers["x-total-count"] == str(n), segment
    accounts = await client.get(BA, params={"limit": "1"}, headers=h)
    assert int(accounts.headers["x-total-count"]) >= RESIDENTIAL + SME + CORPORATE
    states = await raw_rows(rt, "SELECT body->>'state', count(*) FROM billing_account WHERE tenant_id = :t "
                                "GROUP BY 1", t=tenant)
    assert {s for s, _ in states} >= {"active", "defined"}

"""A customer's change of their own profile is announced (``SelfcareProfileUpdateEvent``, in the transaction of
the change) and customer care records it as an interaction."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from openbss.care.events import DOMAIN, PROFILE_UPDATED
from openbss.platform.events.consumers import Event, process
from openbss.platform.events.outbox import OutboxEvent
from tests.conftest import bearer
from tests.selfcare.portal import csrf, new_customer, next_matching, sign_in


async def test_a_profile_update_becomes_an_interaction(rt: Any, portal_tenant: str, client: httpx.AsyncClient,
                                                       portal_client: httpx.AsyncClient) -> None:
    user = next_matching()
    c = await new_customer(rt, portal_tenant, email=user.email, given="Iris", family="Ito")
    await sign_in(portal_client, user)
    r = await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client),
                                  json={"phone": "+33 6 12 34 56 78"})
    assert r.status_code == 200, r.text
    async with rt.db.transaction(portal_tenant) as session:
        rows = (await session.execute(select(OutboxEvent).where(
            OutboxEvent.event_type == "SelfcareProfileUpdateEvent"))).scalars().all()
    [row] = [x for x in rows if x.envelope["event"]["profileUpdate"]["customer"]["id"] == c["customer_id"]]
    assert row.envelope["event"]["profileUpdate"]["changed"] == ["phone"]
    assert await process(rt.db, rt.consumers.get(f"{DOMAIN}.{PROFILE_UPDATED}"),
                         Event(portal_tenant, row.api, row.event_type, row.envelope))
    found = (await client.get("/tmf-api/partyInteraction/v4/partyInteraction",
                              params={"relatedParty.id": c["customer_id"]},
                              headers=bearer(portal_tenant, "csr_agent"))).json()
    assert [i["reason"] for i in found] == ["Profile updated in self-care"]

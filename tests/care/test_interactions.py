"""TMF683 party interactions: recorded by agents, and by the system as reactions (durable subscriptions,
idempotent) to orders placed and self-care profile updates; the customer 360's ticket and interaction sections."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from openbss.care.events import DOMAIN, ORDER_PLACED, PROFILE_UPDATED
from openbss.platform.events.consumers import Event, process
from openbss.platform.events.outbox import emit
from tests.care.helpers import PI, TMF683, ok, raise_ticket
from tests.conftest import bearer
from tests.customer.helpers import C360, assert_valid, make_customer, make_individual


def call(**extra: Any) -> dict[str, Any]:
    return {"direction": "inbound", "reason": "Roaming question", "status": "completed",
            "interactionDate": {"startDateTime": "2026-12-03T09:30:00Z", "endDateTime": "2026-12-03T09:41:00Z"},
            "channel": [{"id": "phone", "href": "http://testserver/api/care/v1/channel/phone"}], **extra}


async def test_an_agent_records_an_interaction(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "csr_agent")
    r = await client.post(PI, json=call(note=[{"text": "explained the EU roaming rules"}],
                                         relatedParty=[{"id": "p-9", "href": "http://x/p-9",
                                                        "@referredType": "Individual", "role": "customer"}]),
                          headers=h)
    assert r.status_code == 201, r.text
    i = r.json()
    assert_valid(TMF683, "PartyInteraction", i)
    assert i["creationDate"] and i["note"][0]["author"]
    assert [x["id"] for x in await ok(await client.get(f"{PI}?relatedParty.id=p-9", headers=h))] == [i["id"]]
    for body, needle in [(call(channel=[{"id": "pigeon", "href": "http://x"}]), "pigeon"),
                         ({k: v for k, v in call().items() if k != "reason"}, "reason")]:
        r = await client.post(PI, json=body, headers=h)
        assert r.status_code == 400 and needle in r.text, r.text
    channels = await ok(await client.get("/api/care/v1/channel", headers=h))
    assert {c["id"] for c in channels} >= {"phone", "email", "chat", "shop", "selfcare"}


async def _event(rt: Any, tenant: str, api: str, event_type: str, key: str, resource: dict[str, Any]) -> Event:
    async with rt.db.transaction(tenant) as session:
        row = await emit(session, api=api, event_type=event_type, resource_key=key, resource=resource)
        envelope = row.envelope
    return Event(tenant, api, event_type, envelope)


async def interactions_of(client: httpx.AsyncClient, h: dict[str, str], party_id: str) -> list[dict[str, Any]]:
    return await ok(await client.get(f"{PI}?relatedParty.id={party_id}", headers=h))  # type: ignore[no-any-return]


async def test_an_order_placed_is_recorded_once(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "csr_agent")
    order = {"id": str(uuid.uuid4()), "href": "http://testserver/tmf-api/productOrderingManagement/v4/productOrder/1",
             "orderDate": "2026-12-04T08:00:00Z", "state": "acknowledged",
             "relatedParty": [{"id": "cust-42", "@referredType": "Customer", "role": "customer"}],
             "channel": [{"id": "shop", "name": "Shop"}]}
    event = await _event(rt, tenant, "productOrderingManagement", "ProductOrderCreateEvent", "productOrder", order)
    consumer = rt.consumers.get(f"{DOMAIN}.{ORDER_PLACED}")
    assert await process(rt.db, consumer, event)
    assert not await process(rt.db, consumer, event)  # redelivered: skipped
    assert await process(rt.db, consumer, event, force=True)  # replayed: the handler records nothing more
    [i] = await interactions_of(client, h, "cust-42")
    assert_valid(TMF683, "PartyInteraction", i)
    assert i["reason"] == "Product order placed" and i["channel"][0]["id"] == "shop"
    assert i["interactionItem"][0]["item"]["id"] == order["id"]
    assert i["interactionDate"]["startDateTime"] == "2026-12-04T08:00:00Z"


async def test_a_selfcare_update_is_recorded_once(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    from openbss.selfcare.events import announce_profile_update

    h = bearer(tenant, "csr_agent")
    async with rt.db.transaction(tenant) as session:
        await announce_profile_update(session, "cust-7", "party-7", ["phone", "address"])
    from openbss.platform.events.outbox import OutboxEvent

    async with rt.db.transaction(tenant) as session:
        row = (await session.execute(select(OutboxEvent).where(
            OutboxEvent.event_type == "SelfcareProfileUpdateEvent"))).scalars().one()
    event = Event(tenant, row.api, row.event_type, row.envelope)
    consumer = rt.consumers.get(f"{DOMAIN}.{PROFILE_UPDATED}")
    assert await process(rt.db, consumer, event)
    assert await process(rt.db, consumer, event, force=True)
    [i] = await interactions_of(client, h, "party-7")
    assert_valid(TMF683, "PartyInteraction", i)
    assert i["channel"][0]["id"] == "selfcare" and "phone, address" in i["description"]
    assert {p["id"] for p in i["relatedParty"]} == {"cust-7", "party-7"}


async def test_the_customer_360_shows_tickets_and_interactions(client: httpx.AsyncClient, tenant: str) -> None:
    admin = bearer(tenant, "admin")
    party = await make_individual(client, admin)
    customer = await make_customer(client, admin, party)
    h = bearer(tenant, "csr_agent")
    await raise_ticket(client, h, relatedParty=[{"id": customer["id"], "@referredType": "Customer"}])
    await raise_ticket(client, h, relatedParty=[{"id": party["id"], "@referredType": "Individual"}])
    await raise_ticket(client, h, relatedParty=[{"id": "someone-else", "@referredType": "Individual"}])
    await client.post(PI, json=call(relatedParty=[{"id": customer["id"], "href": "http://x",
                                                   "@referredType": "Customer"}]), headers=h)
    view = await ok(await client.get(f"{C360}/{customer['id']}", headers=h))
    assert view["tickets"]["total"] == 2 and view["tickets"]["open"] == 2
    assert len(view["tickets"]["recent"]) == 2 and view["tickets"]["slaBreached"] == 0
    assert view["interactions"]["total"] == 1

"""Payments' events recorded as TMF683 interactions of the customer: a payment received, a payment failed, a
refund issued — each once, however often its events are delivered (the create and the state-change events of one
state, redeliveries, replays)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from openbss.care.events import DOMAIN
from openbss.care.reactions import PAYMENT_RULES
from openbss.platform.events.consumers import Event, process
from openbss.platform.events.outbox import OutboxEvent
from tests.care.helpers import PI, TMF683, ok
from tests.customer.helpers import C360, assert_valid
from tests.payments.helpers import PAY, card, issued_bill, method, pay


async def _events(rt: Any, tenant: str, resource_id: str) -> list[Event]:
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent).where(OutboxEvent.resource_id == resource_id)
                                      .order_by(OutboxEvent.id))).scalars().all()
        return [Event(tenant, r.api, r.event_type, r.envelope) for r in rows]


async def _deliver(rt: Any, events: list[Event]) -> None:
    """Every event to every payment rule's consumer (those not subscribed to it ignore it), twice, then replayed."""
    for rule in PAYMENT_RULES:
        consumer = rt.consumers.get(f"{DOMAIN}.{rule.name}")
        for event in events:
            if event.event_type in rule.event_types:
                await process(rt.db, consumer, event)
                assert not await process(rt.db, consumer, event)  # redelivered: skipped
                await process(rt.db, consumer, event, force=True)  # replayed: nothing more recorded


async def test_payments_and_refunds_are_recorded_once_as_interactions(
        client: httpx.AsyncClient, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    customer_id = next(p["id"] for p in account["relatedParty"] if p.get("@referredType") == "Customer")
    good = await method(client, admin_headers, card(account, token="tok_instant"))
    bad = await method(client, admin_headers, card(account, token="tok_chargeDeclined"))
    failed = (await pay(client, admin_headers, account, bad["id"], "120.00", [bill["id"]])).json()
    assert failed["status"] == "failed"
    paid = (await pay(client, admin_headers, account, good["id"], "130.00", [bill["id"]])).json()  # 10 on account
    assert paid["status"] == "succeeded"
    r = await client.post(f"{PAY}/refund", headers=admin_headers, json={
        "account": {"id": account["id"]}, "paymentMethod": {"id": good["id"]}, "payment": {"id": paid["id"]},
        "totalAmount": {"unit": "EUR", "value": 10}})
    assert r.status_code == 201, r.text
    refund = r.json()
    for rid in (failed["id"], paid["id"], refund["id"]):
        await _deliver(rt, await _events(rt, tenant, rid))

    found = await ok(await client.get(f"{PI}?relatedParty.id={customer_id}", headers=admin_headers))
    by_reason = {i["reason"]: i for i in found}
    assert sorted(by_reason) == ["Payment failed", "Payment received", "Refund issued"]
    assert len(found) == 3  # once each, whatever the deliveries
    for i in found:
        assert_valid(TMF683, "PartyInteraction", i)
        assert i["channel"][0]["id"] == "system"
    received = by_reason["Payment received"]
    assert received["direction"] == "inbound" and "130" in received["description"]
    assert received["interactionItem"][0]["item"]["id"] == paid["id"]
    assert received["interactionItem"][0]["item"]["@referredType"] == "Payment"
    assert by_reason["Payment failed"]["interactionItem"][0]["item"]["id"] == failed["id"]
    assert by_reason["Refund issued"]["direction"] == "outbound"
    assert by_reason["Refund issued"]["interactionItem"][0]["item"]["id"] == refund["id"]
    # the agent sees them in the customer 360
    view = await ok(await client.get(f"{C360}/{customer_id}", headers=admin_headers))
    assert {i["reason"] for i in view["interactions"]["recent"]} == set(by_reason)


async def test_a_payment_still_in_flight_is_no_contact(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    from openbss.care.reactions import payment_contact, refund_contact

    for status in ("initiated", "pending", "unknown"):
        assert payment_contact({"id": "p", "status": status}) is None
    assert refund_contact({"id": "r", "status": "pending"}) is None
    contact = payment_contact({"id": "p", "status": "succeeded", "account": {"id": "a"},
                               "totalAmount": {"value": 5, "unit": "EUR"}})
    assert contact is not None and contact.billing_account == "a" and contact.key == "payment:p:succeeded"

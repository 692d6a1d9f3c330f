"""Erasure reaches every copy: after a party is erased, none of its personal values is left in any column of any
table of the database, in the messages on the event stream, or in the log records — including copies written by an
earlier version (events with personal values, names kept in references, audit changes, item runs), which erasure
scrubs. The party's GDPR export, taken before, covers the same places.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from openbss.platform import audit, messaging
from openbss.platform.auth import Principal, permissions_for
from openbss.platform.db import owner_url
from openbss.platform.events.bus import NatsBus
from openbss.platform.events.consumers import ConsumerRegistry, Event
from openbss.platform.events.outbox import OutboxEvent, emit
from openbss.platform.tmf.resource import system_context
from openbss.provisioning.models import ItemRun
from tests.conftest import bearer
from tests.customer.helpers import BA, CUST, IND, ROLE, created

PRIV = "/privacy/v1/party"
CART = "/tmf-api/shoppingCart/v4/shoppingCart"
CLOSED = "http://127.0.0.1:9/subscriber"  # nothing listens: deliveries stay recorded, as for a slow subscriber


def person_values() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    digits = str(int(tag, 16) % 10**6).zfill(6)
    return {"given": f"Zephyrine{tag}", "family": f"Quillfeather{tag}", "email": f"zq.{tag}@example.org",
            "phone": f"+447700{digits}", "street": f"{tag} Larkspur Mews", "ident": f"PX{tag}",
            "billing": f"billing.{tag}@example.org"}


async def tables_containing(values: list[str]) -> dict[str, list[str]]:
    """Every table of the test database (all schemas but the system's) whose rows, all columns rendered as text,
    contain one of ``values`` — read as the database owner (no row-level security)."""
    engine = create_async_engine(owner_url().set(drivername="postgresql+asyncpg"))
    found: dict[str, list[str]] = {}
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')"))).all()
            assert len(tables) > 30, tables
            for schema, table in tables:  # names from the catalog, not from input
                sql = (f'SELECT array_agg(DISTINCT v) FROM "{schema}"."{table}" AS t, '  # noqa: S608
                       "unnest(CAST(:values AS text[])) AS v WHERE strpos(lower(t::text), lower(v)) > 0")
                hit = await conn.scalar(text(sql), {"values": values})
                if hit:
                    found[f"{schema}.{table}"] = sorted(hit)
    finally:
        await engine.dispose()
    return found


async def stream_messages(nats_url: str, stream: str) -> list[bytes]:
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        return [(await js.get_msg(stream, seq)).data or b""
                for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await nc.close()


async def publish_tenant_events(rt: Any, bus: NatsBus, tenant: str, published: set[int]) -> None:
    """What the relay publishes to the backbone: the tenant's outbox events, each once."""
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent).order_by(OutboxEvent.id))).scalars().all()
        todo = [(r.id, Event(r.tenant_id, r.api, r.event_type, r.envelope)) for r in rows if r.id not in published]
    for row_id, event in todo:
        await bus.publish(event)
        published.add(row_id)


@pytest.fixture
async def stream(nats_url: str) -> Any:
    import nats
    import nats.js.errors

    name = f"E{uuid.uuid4().hex[:12].upper()}"
    yield name
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().delete_stream(name)
    except nats.js.errors.NotFoundError:
        pass
    await nc.close()


async def test_erasure_leaves_no_personal_value_in_any_table_the_stream_or_the_logs(
        client: httpx.AsyncClient, rt: Any, services: Any, tenant: str, relay: Any, nats_url: str, stream: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    v = person_values()
    full = f"{v['given']} {v['family']}"
    h = bearer(tenant)
    for api in ("party", "customerManagement", "accountManagement", "shoppingCart", "productInventory"):
        r = await client.post(f"/tmf-api/{api}/v4/hub", json={"callback": CLOSED}, headers=h)
        assert r.status_code == 201, r.text

    # the person, as agents record it
    ind = await created(await client.post(IND, headers=h, json={
        "givenName": v["given"], "familyName": v["family"], "birthDate": "1990-02-03T00:00:00Z",
        "contactMedium": [
            {"mediumType": "email", "characteristic": {"emailAddress": v["email"]}},
            {"mediumType": "phone", "characteristic": {"phoneNumber": v["phone"], "contactType": "mobile"}},
            {"mediumType": "postalAddress", "characteristic": {"street1": v["street"], "city": "Leeds",
                                                               "postCode": "LS1 1AA", "country": "GB"}}],
        "individualIdentification": [{"identificationType": "passport", "identificationId": v["ident"]}]}))
    pid = ind["id"]
    customer = await created(await client.post(CUST, headers=h, json={
        "name": full, "engagedParty": {"id": pid, "@referredType": "Individual", "name": full},
        "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": v["email"]}}]}))
    ref = {"id": customer["id"], "name": full, "role": "customer", "@referredType": "Customer"}
    await created(await client.post(BA, headers=h, json={
        "name": f"{full} household", "relatedParty": [ref], "currency": "EUR",
        "contact": [{"contactType": "primary", "contactName": full,
                     "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                     "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": v["billing"]}}]}]}))
    await created(await client.post(ROLE, headers=h, json={
        "name": "referrer", "engagedParty": {"id": pid, "@referredType": "Individual", "name": full}}))
    # copies of the name in other domains' records: a cart, a product (then terminated), a service order
    cart = await created(await client.post(CART, headers=h, json={"relatedParty": [ref]}))
    assert "name" not in cart["relatedParty"][0]  # a reference, not a copy
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        product = await services.inventory.service.record_subscription(
            ctx, {"name": "Fibre 1G", "relatedParty": [ref]}, [], [])
        await services.inventory.service.set_product_status(ctx, product["id"], "terminated")
        await services.provisioning.resources["serviceOrder"].record(ctx, {
            "state": "completed", "relatedParty": [ref], "serviceOrderItem": []})
        await messaging.send(session, "sms", v["phone"], "Your code is 123456", purpose="selfcare-link")
        await messaging.send(session, "email", v["email"], f"Hello {v['given']}", purpose="notice")

        # what an earlier version wrote: events with personal values, names kept in references
        await emit(session, api="party", event_type="IndividualCreateEvent", resource_key="individual",
                   resource=(await client.get(f"{IND}/{pid}", headers=h)).json(), resource_type="Individual")
        await session.execute(text(
            "UPDATE inventory_product SET body = jsonb_set(body, '{relatedParty}', CAST(:refs AS jsonb)) "
            "WHERE id = :id"), {"refs": json.dumps([ref]), "id": product["id"]})
        await audit.record(session, Principal("agent-7", tenant, ("admin",), permissions=permissions_for(("admin",))),
                           resource_type="ProductOrder", resource_id="legacy-order", action="create",
                           changes={"relatedParty": {"old": None, "new": [ref]}})
        session.add(ItemRun(id=str(uuid.uuid4()), product_order_id="legacy-order", order_item_id="1", action="add",
                            context={"product": {"name": "Fibre 1G", "relatedParty": [ref]}}))

    # the backbone: hub fan-out (deliveries recorded with their payloads) and the JetStream stream
    await relay()
    bus = NatsBus(rt.db, ConsumerRegistry(), nats_url, stream)
    published: set[int] = set()
    try:
        async with rt.db.transaction(tenant) as session:
            first_legacy = (await session.execute(select(OutboxEvent.id).where(
                OutboxEvent.resource_id == pid, OutboxEvent.event_type == "IndividualCreateEvent")
                .order_by(OutboxEvent.id.desc()))).scalars().first()
        # a message an earlier version published cannot be edited on the stream: it ages out (docs/security.md)
        published.add(int(first_legacy))
        await publish_tenant_events(rt, bus, tenant, published)

        personal = [v["given"], v["family"], v["email"], v["phone"], v["phone"][1:], v["street"], v["ident"],
                    v["billing"]]
        before = await tables_containing(personal)
        for table in ("public.outbox_event", "public.hub_delivery", "public.audit_record", "public.inventory_product",
                      "public.provisioning_item_run", "public.outbound_message"):
            assert table in before, (table, before)  # the scan sees what is there

        # the export covers the same places
        r = await client.get(f"{PRIV}/{pid}/personalData", headers=h)
        assert r.status_code == 200, r.text
        sections = r.json()["personalData"]
        assert {"party", "customers", "accounts", "partyRoles", "shoppingCarts", "products", "serviceOrders",
                "messages"} <= set(sections), sorted(sections)
        assert [m["to"] for m in sections["messages"]] == [v["phone"], v["email"]]

        r = await client.post(f"{PRIV}/{pid}/erasure", headers=h)
        assert r.status_code == 200, r.text
        counts = r.json()["anonymizedRecords"]
        assert counts["messages"] == 2 and counts["copies"] >= 5, counts
        await relay()
        await publish_tenant_events(rt, bus, tenant, published)

        left = await tables_containing(personal)
        assert left == {}, left
        messages = await stream_messages(nats_url, stream)
        assert len(messages) >= 10
        for data in messages:
            for value in personal:
                assert value.encode() not in data, (value, data[:300])
    finally:
        await bus.close()
    logged = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    for value in personal:
        assert value not in logged, value

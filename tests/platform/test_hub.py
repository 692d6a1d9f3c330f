"""TMF notification hubs: registration (POST/DELETE /hub), fan-out after commit filtered by the query, signed
delivery to a real HTTP listener, retries with backoff, every attempt recorded."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from openbss.platform.callbacks import parse_networks
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.hub import (
    SIGNATURE_HEADER,
    DeliveryFailed,
    HubDelivery,
    HubDeliveryAttempt,
    HubSubscription,
    attempt_delivery,
    tenant_hub_key,
    verify_signature,
)
from tests.conftest import bearer, deliver_all
from tests.platform.callback_server import CallbackServer, callback_server

HUB = "/tmf-api/party/v4/hub"
INDIVIDUALS = "/tmf-api/party/v4/individual"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-listens"


async def subscribe(client: Any, tenant: str, callback: str, query: str | None = None) -> str:
    body: dict[str, Any] = {"callback": callback}
    if query is not None:
        body["query"] = query
    r = await client.post(HUB, json=body, headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def create_individual(client: Any, tenant: str, given: str, family: str = "Test") -> dict[str, Any]:
    r = await client.post(INDIVIDUALS, json={"givenName": given, "familyName": family},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliveries(rt: Any, tenant: str) -> list[HubDelivery]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(select(HubDelivery).order_by(HubDelivery.id))).scalars().all())


async def attempts(rt: Any, tenant: str, delivery_id: int) -> list[HubDeliveryAttempt]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(select(HubDeliveryAttempt).where(
            HubDeliveryAttempt.delivery_id == delivery_id).order_by(HubDeliveryAttempt.attempt))).scalars().all())


async def envelope_of(rt: Any, tenant: str, event_type: str, resource_id: str) -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        row = (await session.execute(select(OutboxEvent).where(
            OutboxEvent.event_type == event_type, OutboxEvent.resource_id == resource_id))).scalar_one()
        return dict(row.envelope)


async def deliver(rt: Any, delivery_id: int, max_attempts: int = 5) -> str:
    s = rt.settings
    return await attempt_delivery(rt.db, delivery_id, hub_secret=s.hub_secret, http_timeout=2,
                                  max_attempts=max_attempts, allow=parse_networks(s.hub_callback_allow))


@pytest.fixture
async def unsubscribe_all(rt: Any, tenant: str) -> Any:
    """Drop the tenant's subscriptions (and, by cascade, deliveries) afterwards, so no later worker retries them."""
    yield
    async with rt.db.transaction(tenant) as session:
        await session.execute(delete(HubSubscription))


# --- registration --------------------------------------------------------------------------------------------
async def test_register_listener(client: Any, tenant: str) -> None:
    callback = closed_port_url()
    r = await client.post(HUB, json={"callback": callback, "query": "eventType=IndividualCreateEvent"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "callback", "query"}
    assert body["callback"] == callback
    assert body["query"] == "eventType=IndividualCreateEvent"
    assert r.headers["location"] == f"http://testserver{HUB}/{body['id']}"
    # without a query: every event of the API
    r = await client.post(HUB, json={"callback": callback}, headers=bearer(tenant, "admin"))
    assert r.status_code == 201
    assert set(r.json()) == {"id", "callback"}
    r = await client.get(f"{HUB}/{body['id']}", headers=bearer(tenant, "admin"))
    assert r.status_code == 200
    assert r.json()["deliveries"] == {}


@pytest.mark.parametrize(("body", "code"), [
    ({"callback": "not a url"}, "INVALID_CALLBACK"),
    ({"callback": "ftp://127.0.0.1/x"}, "INVALID_CALLBACK"),
    ({"callback": "/relative/listener"}, "INVALID_CALLBACK"),
    ({"callback": "http://127.0.0.1:9/l", "query": "eventType=ProductOrderCreateEvent"}, "INVALID_QUERY"),
    ({"callback": "http://127.0.0.1:9/l", "query": "eventType=IndividualCreateEvent,NoSuchEvent"}, "INVALID_QUERY"),
    ({"callback": "http://127.0.0.1:9/l", "query": "colour=blue"}, "INVALID_QUERY"),
    ({"callback": "http://127.0.0.1:9/l", "query": "event.individual.noSuchAttribute=1"}, None),
    ({"callback": "http://127.0.0.1:9/l", "query": "event.productOrder.id=1"}, "INVALID_QUERY"),
    ({"query": "eventType=IndividualCreateEvent"}, None),
    ({"callback": "http://127.0.0.1:9/l", "unknown": 1}, None),
])
async def test_register_listener_rejects_bad_input(client: Any, rt: Any, tenant: str, body: dict[str, Any],
                                                   code: str | None) -> None:
    r = await client.post(HUB, json=body, headers=bearer(tenant, "admin"))
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["status"] == "400" and err["@type"] == "Error"
    if code:
        assert err["code"] == code
    async with rt.db.transaction(tenant) as session:
        assert (await session.execute(select(HubSubscription.id))).all() == []


async def test_unregister_listener(client: Any, tenant: str, other_tenant: str) -> None:
    sub = await subscribe(client, tenant, closed_port_url())
    # another tenant cannot see or remove it
    r = await client.delete(f"{HUB}/{sub}", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 404
    r = await client.delete(f"{HUB}/{sub}", headers=bearer(tenant, "admin"))
    assert r.status_code == 204
    assert r.content == b""
    r = await client.delete(f"{HUB}/{sub}", headers=bearer(tenant, "admin"))
    assert r.status_code == 404
    assert r.json()["status"] == "404"
    r = await client.get(f"{HUB}/{sub}", headers=bearer(tenant, "admin"))
    assert r.status_code == 404


async def test_hub_authorization(client: Any, tenant: str) -> None:
    sub = await subscribe(client, tenant, closed_port_url())
    body = {"callback": closed_port_url()}
    customer = bearer(tenant, "customer", party=str(uuid.uuid4()))
    r = await client.post(HUB, json=body, headers=customer)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "CUSTOMER_FORBIDDEN"
    assert (await client.delete(f"{HUB}/{sub}", headers=customer)).status_code == 403
    # managing hubs takes the hub:write permission and the right to read the API's resources
    assert (await client.post(HUB, json=body, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.post(HUB, json=body, headers=bearer(tenant, "network_ops"))).status_code == 403
    assert (await client.post(HUB, json=body, headers=bearer(tenant, "billing_ops"))).status_code == 201
    assert (await client.post(HUB, json=body)).status_code == 401


# --- fan-out and delivery ------------------------------------------------------------------------------------
async def test_delivers_matching_events_signed(client: Any, rt: Any, settings: Any, tenant: str, other_tenant: str,
                                               relay: Any, unsubscribe_all: Any) -> None:
    await deliver_all(rt)  # what earlier tests left in the outbox, and what the reactions to it emit
    with callback_server() as server:
        await subscribe(client, tenant, server.base_url, "eventType=IndividualCreateEvent")
        a = await create_individual(client, tenant, "Ann")
        b = await create_individual(client, tenant, "Bob")
        r = await client.patch(f"{INDIVIDUALS}/{a['id']}", json={"givenName": "Anne"},
                               headers=bearer(tenant, "admin"))
        assert r.status_code == 200
        await create_individual(client, other_tenant, "Someone else's")
        assert await deliveries(rt, tenant) == []  # nothing before the relay has run (after commit)
        await relay()
        rows = await deliveries(rt, tenant)
        # one per matching event: the attribute-value-change and the other tenant's create are not delivered
        assert sorted(d.event_type for d in rows) == ["IndividualCreateEvent"] * 2
        assert all(d.status == "pending" and d.attempts == 0 for d in rows)
        assert await relay() == 0
        for d in rows:
            assert await deliver(rt, d.id) == "delivered"
        got = server.received()
        assert len(got) == 2
        key = tenant_hub_key(settings.hub_secret, tenant)
        expected = {ind["id"]: await envelope_of(rt, tenant, "IndividualCreateEvent", ind["id"]) for ind in (a, b)}
        for req in got:
            assert req.path == "/subscriber/listener/individualCreateEvent"
            assert req.headers["content-type"] == "application/json"
            env = req.json()
            assert env == expected[env["event"]["individual"]["id"]]
            assert set(env) == {"eventId", "eventTime", "eventType", "event"}
            signature = req.headers[SIGNATURE_HEADER.lower()]
            assert verify_signature(key, signature, req.body)
            assert not verify_signature(tenant_hub_key(settings.hub_secret, other_tenant), signature, req.body)
            tampered = req.body.replace(env["eventId"].encode(), str(uuid.uuid4()).encode())
            assert not verify_signature(key, signature, tampered)
        for d in await deliveries(rt, tenant):
            assert (d.status, d.attempts, d.last_status_code) == ("delivered", 1, 201)
            assert d.delivered_at is not None
        # delivered is final: a duplicate job does not POST again
        assert await deliver(rt, rows[0].id) == "delivered"
        assert len(server.received()) == 2


async def test_query_on_resource_attribute(client: Any, rt: Any, tenant: str, relay: Any,
                                           unsubscribe_all: Any) -> None:
    with callback_server() as server:
        await subscribe(client, tenant, server.base_url, "event.individual.gender=female")
        ann = await create_individual(client, tenant, "Ann")
        bob = await create_individual(client, tenant, "Bob")
        for who in (ann, bob):
            r = await client.patch(f"{INDIVIDUALS}/{who['id']}", json={"gender": "female" if who is bob else "male"},
                                   headers=bearer(tenant, "admin"))
            assert r.status_code == 200
        await relay()
        rows = await deliveries(rt, tenant)
        assert sorted(d.event_type for d in rows) == ["IndividualAttributeValueChangeEvent"]
        for d in rows:
            assert await deliver(rt, d.id) == "delivered"
        paths = sorted(req.path for req in server.received())
        assert paths == ["/subscriber/listener/individualAttributeValueChangeEvent"]
        got = server.received()[0].json()["event"]["individual"]
        assert got["id"] == bob["id"] and got["gender"] == "female"
        # notifications carry no personal value: the subscriber reads the individual by its href
        assert got["href"].endswith(f"/individual/{bob['id']}")
        assert not {"givenName", "familyName", "fullName"} & set(got), got


async def test_query_on_personal_data_is_refused(client: Any, tenant: str) -> None:
    """Events carry no personal value, so a subscription cannot select on one: 400 naming the attribute."""
    for query in ("event.individual.givenName=Ann", "event.individual.contactMedium.characteristic.emailAddress=a",
                  "event.individual.relatedParty.name=x"):
        r = await client.post(HUB, json={"callback": "http://127.0.0.1:9/l", "query": query},
                              headers=bearer(tenant, "admin"))
        assert r.status_code == 400, (query, r.text)
        assert r.json()["code"] == "INVALID_QUERY" and "personal data" in r.json()["message"]
        assert query.split("=")[0] in r.json()["message"]


async def test_each_subscription_gets_its_own_delivery(client: Any, rt: Any, tenant: str, relay: Any,
                                                       unsubscribe_all: Any) -> None:
    with callback_server() as one, callback_server() as two:
        s1 = await subscribe(client, tenant, one.base_url, "eventType=IndividualCreateEvent")
        await subscribe(client, tenant, two.base_url)
        deleted = await subscribe(client, tenant, closed_port_url())
        assert (await client.delete(f"{HUB}/{deleted}", headers=bearer(tenant, "admin"))).status_code == 204
        await create_individual(client, tenant, "Cy")
        await relay()
        rows = await deliveries(rt, tenant)
        assert len(rows) == 2  # the unsubscribed listener gets nothing
        for d in rows:
            assert await deliver(rt, d.id) == "delivered"
        assert len(one.received()) == len(two.received()) == 1
        r = await client.get(f"{HUB}/{s1}", headers=bearer(tenant, "admin"))
        assert r.json()["deliveries"] == {"delivered": 1}


async def test_failing_listener_is_retried_and_recorded(client: Any, rt: Any, tenant: str, relay: Any,
                                                        unsubscribe_all: Any) -> None:
    with callback_server(fail_first=2) as server:
        await subscribe(client, tenant, server.base_url, "eventType=IndividualCreateEvent")
        await create_individual(client, tenant, "Dee")
        await relay()
        [d] = await deliveries(rt, tenant)
        for n in (1, 2):
            with pytest.raises(DeliveryFailed):  # tells the job queue to retry with backoff
                await deliver(rt, d.id)
            [row] = await deliveries(rt, tenant)
            assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("pending", n, 500, "HTTP 500")
        assert await deliver(rt, d.id) == "delivered"
        [row] = await deliveries(rt, tenant)
        assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 3, 201, None)
        tries = await attempts(rt, tenant, d.id)
        assert [(t.attempt, t.status_code, t.error) for t in tries] == [
            (1, 500, "HTTP 500"), (2, 500, "HTTP 500"), (3, 201, None)]
        assert all(t.duration_ms >= 0 for t in tries)
        assert len(server.received()) == 3
        assert len({r.json()["eventId"] for r in server.received()}) == 1


async def test_always_failing_listener_ends_failed(client: Any, rt: Any, tenant: str, relay: Any,
                                                   unsubscribe_all: Any) -> None:
    with callback_server(always_fail=True) as server:
        sub = await subscribe(client, tenant, server.base_url)
        await create_individual(client, tenant, "Eve")
        await relay()
        [d] = await deliveries(rt, tenant)
        for _ in range(2):
            with pytest.raises(DeliveryFailed):
                await deliver(rt, d.id, max_attempts=3)
        assert await deliver(rt, d.id, max_attempts=3) == "failed"  # the last attempt: no more retries
        assert await deliver(rt, d.id, max_attempts=3) == "failed"  # and no further POST
        assert len(server.received()) == 3
        [row] = await deliveries(rt, tenant)
        assert (row.status, row.attempts, row.delivered_at) == ("failed", 3, None)
        assert [t.status_code for t in await attempts(rt, tenant, d.id)] == [500, 500, 500]
        r = await client.get(f"{HUB}/{sub}", headers=bearer(tenant, "admin"))
        assert r.json()["deliveries"] == {"failed": 1}


async def test_unreachable_listener_is_recorded_as_error(client: Any, rt: Any, tenant: str, relay: Any,
                                                         unsubscribe_all: Any) -> None:
    await subscribe(client, tenant, closed_port_url())
    await create_individual(client, tenant, "Fay")
    await relay()
    [d] = await deliveries(rt, tenant)
    with pytest.raises(DeliveryFailed):
        await deliver(rt, d.id)
    [row] = await deliveries(rt, tenant)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error and "ConnectError" in row.last_error
    [t] = await attempts(rt, tenant, d.id)
    assert t.status_code is None and t.error == row.last_error


# --- the real job queue ----------------------------------------------------------------------------------------
async def test_worker_delivers_after_commit_with_retry_backoff(client: Any, rt: Any, settings: Any, tenant: str,
                                                               unsubscribe_all: Any) -> None:
    """``run_worker`` as ``openbss worker`` runs it: the relay fans the committed event out, a procrastinate job is
    deferred, fails once (500) and is retried by the queue after its exponential backoff (2 s), then delivered."""
    from openbss.cli import register_domain_consumers
    from openbss.platform.runtime import Runtime
    from openbss.platform.worker import run_worker

    wrt = Runtime.build(settings)
    register_domain_consumers(wrt)
    stop = asyncio.Event()
    ready = asyncio.Event()
    with callback_server(fail_first=1) as server:
        await subscribe(client, tenant, server.base_url, "eventType=IndividualCreateEvent")
        task = asyncio.create_task(run_worker(wrt, stop, on_ready=ready.set))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            ind = await create_individual(client, tenant, "Gus")
            status = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not task.done():
                rows = await deliveries(wrt, tenant)
                status = rows[0].status if rows else None
                if status == "delivered":
                    break
                await asyncio.sleep(0.1)
            assert status == "delivered", (status, server.received())
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            await wrt.close()
        got = server.received()
        assert len(got) == 2
        assert got[0].json()["event"]["individual"]["id"] == ind["id"]
        assert got[0].json() == got[1].json()
        [d] = await deliveries(rt, tenant)
        tries = await attempts(rt, tenant, d.id)
        assert [t.status_code for t in tries] == [500, 201]
        assert tries[1].at - tries[0].at >= timedelta(seconds=1.9)  # RetryStrategy(exponential_wait=2): 2 s
        assert tries[1].at - tries[0].at < timedelta(seconds=10)


def test_server_helper_answers() -> None:
    """The listener stand-in itself: 500 for the first ``fail_first`` requests, then 201."""
    import httpx

    with callback_server(fail_first=1) as server:
        assert isinstance(server, CallbackServer)
        assert httpx.post(server.base_url, content=b"{}").status_code == 500
        assert httpx.post(server.base_url, content=b"{}").status_code == 201


async def test_fan_out_never_delivers_unfiltered(client: Any, rt: Any, services: Any, tenant: str,
                                                 unsubscribe_all: Any) -> None:
    """A process that has not loaded the API cannot evaluate a subscription's query: the fan-out fails (and the event
    is retried) rather than notify the subscriber of events its query excludes."""
    from openbss.platform.events.consumers import Event
    from openbss.platform.tmf import hub

    await subscribe(client, tenant, closed_port_url(), "eventType=IndividualDeleteEvent")
    event = Event(tenant, "party", "IndividualCreateEvent", {
        "eventId": str(uuid.uuid4()), "eventType": "IndividualCreateEvent", "event": {"individual": {"id": "u1"}}})
    apis = {api.name: api for api in services.apis}
    with pytest.raises(hub.UnknownApi):
        async with rt.db.transaction(tenant) as session:
            await hub.fan_out(session, event, {k: v for k, v in apis.items() if k != "party"})
    async with rt.db.transaction(tenant) as session:
        await hub.fan_out(session, event, apis)
    assert await deliveries(rt, tenant) == []  # with the API known, the query excludes it

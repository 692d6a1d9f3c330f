"""SLA timers: the policy chosen by ticket type, priority and segment; due times stored at creation and recomputed
on status changes (business calendar, pauses while pending); escalation steps fired once each, by any number of
schedulers at once, with their actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from openbss.care.calendar import BusinessCalendar
from openbss.care.models import SlaStep, TicketSla
from openbss.platform.events.outbox import OutboxEvent
from tests.care.helpers import ALWAYS, CFG, TT, make_policy, make_queue, move, ok, raise_ticket
from tests.conftest import bearer
from tests.customer.helpers import make_customer, make_individual

FAR = datetime(2100, 1, 1, tzinfo=UTC)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ms(value: datetime | None) -> datetime:
    """As rendered (milliseconds)."""
    assert value is not None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def clock(rt: Any, tenant: str, ticket_id: str) -> TicketSla:
    async with rt.db.transaction(tenant) as session:
        row = await session.get(TicketSla, ticket_id)
        assert row is not None
        return row


async def steps(rt: Any, tenant: str, ticket_id: str) -> dict[tuple[str, int], SlaStep]:
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(SlaStep).where(SlaStep.ticket_id == ticket_id))).scalars().all()
    return {(s.target, s.percent): s for s in rows}


async def test_the_most_specific_policy_applies(client: httpx.AsyncClient, tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    await make_policy(client, sup, name="Default")
    await make_policy(client, sup, name="Network", ticketType="network", resolutionMinutes=240)
    await make_policy(client, sup, name="Network high", ticketType="network", priority="high", resolutionMinutes=120)
    await make_policy(client, sup, name="Business", segment="corporate", resolutionMinutes=60)
    r = await client.post(f"{CFG}/slaPolicy", json={"name": "Twin", "firstResponseMinutes": 1,
                                                    "resolutionMinutes": 2, "calendar": ALWAYS,
                                                    "ticketType": "network"}, headers=sup)
    assert r.status_code == 409 and "already covers" in r.json()["message"]
    party = await make_individual(client, bearer(tenant, "admin"))
    biz = await make_customer(client, bearer(tenant, "admin"), party,
                              characteristic=[{"name": "segment", "value": "corporate"}])

    async def policy_of(**extra: Any) -> str:
        return (await raise_ticket(client, h, **extra))["sla"]["policy"]["name"]

    assert await policy_of() == "Network"
    assert await policy_of(priority="high") == "Network high"
    assert await policy_of(ticketType="billing") == "Default"
    assert await policy_of(ticketType="billing", relatedParty=[
        {"id": biz["id"], "@referredType": "Customer"}]) == "Business"
    assert await policy_of(ticketType="billing", relatedParty=[
        {"id": party["id"], "@referredType": "Individual"}]) == "Business"  # through the party's customer
    assert await policy_of(priority="high", relatedParty=[
        {"id": biz["id"], "@referredType": "Customer"}]) == "Network high"  # type and priority beat segment


async def test_due_times_on_the_business_calendar_are_stored_at_creation(client: httpx.AsyncClient, rt: Any,
                                                                        tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    office = {"timeZone": "Europe/Paris", "holidayCountry": "FR",
              "workingHours": {d: [["09:00", "17:00"]] for d in ("monday", "tuesday", "wednesday", "thursday",
                                                                  "friday")}}
    await make_policy(client, sup, calendar=office, firstResponseMinutes=120, resolutionMinutes=16 * 60)
    t = await raise_ticket(client, h)
    row = await clock(rt, tenant, t["id"])
    cal = BusinessCalendar.from_json(office)
    assert row.resolution_due == cal.add(row.started_at, timedelta(hours=16))
    assert row.first_response_due == cal.add(row.started_at, timedelta(hours=2))
    assert parse(t["sla"]["resolutionDue"]) == ms(row.resolution_due)
    assert t["expectedResolutionDate"] == t["sla"]["resolutionDue"] and t["sla"]["status"] == "running"
    # two working days of 8 hours: at least two days later, whatever the moment the test runs
    assert row.resolution_due - row.started_at >= timedelta(days=2) - timedelta(hours=16)
    s = await steps(rt, tenant, t["id"])
    assert set(s) == {("firstResponse", 100), ("resolution", 100)}  # the breach steps, always there
    assert s["resolution", 100].due_at == row.resolution_due
    # reading does not move anything
    again = await ok(await client.get(f"{TT}/{t['id']}", headers=h))
    assert again["sla"] == t["sla"]


async def test_pending_pauses_the_clock_and_extends_the_targets(client: httpx.AsyncClient, rt: Any,
                                                                tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    await make_policy(client, sup, escalation=[{"target": "resolution", "percent": 75, "action": "notify"}])
    t = await raise_ticket(client, h)
    responded = await move(client, h, t["id"], "inProgress")
    assert responded["sla"]["firstResponseDate"] and not responded["sla"]["firstResponseBreached"]
    s = await steps(rt, tenant, t["id"])
    assert s["firstResponse", 100].outcome == "void"  # met: its steps will never fire
    before = await clock(rt, tenant, t["id"])
    paused = await move(client, h, t["id"], "pending", "asked for the IMEI")
    assert paused["sla"]["status"] == "paused" and "expectedResolutionDate" in paused  # the last known due time
    assert all(x.due_at is None for x in (await steps(rt, tenant, t["id"])).values() if x.outcome is None)
    # nothing fires while paused, however late it is
    assert await sched(rt).run_once(FAR, tenant) == 0
    # three hours pass while pending (moved back in the database: the same as waiting)
    async with rt.db.transaction(tenant) as session:
        await session.execute(update(TicketSla).where(TicketSla.ticket_id == t["id"]).values(
            paused_since=TicketSla.paused_since - timedelta(hours=3)))
    resumed = await move(client, h, t["id"], "inProgress", "IMEI received")
    after = await clock(rt, tenant, t["id"])
    assert timedelta(hours=3) <= after.paused < timedelta(hours=3, minutes=1)
    assert after.resolution_due == before.resolution_due + after.paused  # a 24/7 calendar: plain time
    assert resumed["sla"]["status"] == "running"
    assert parse(resumed["expectedResolutionDate"]) == ms(after.resolution_due)
    s = await steps(rt, tenant, t["id"])
    assert s["resolution", 75].due_at == after.started_at + timedelta(minutes=360) + after.paused


def sched(rt: Any) -> Any:
    from tests.conftest import session_services

    return session_services().care.escalation(rt.db)


async def notes_of(client: httpx.AsyncClient, h: dict[str, str], ticket_id: str) -> list[str]:
    t = await ok(await client.get(f"{TT}/{ticket_id}", headers=h))
    return [n["text"] for n in t.get("note") or []]


async def test_each_escalation_step_fires_once_with_its_action(client: httpx.AsyncClient, rt: Any,
                                                               tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    experts = await make_queue(client, sup, "Experts")
    await make_policy(client, sup, escalation=[
        {"target": "resolution", "percent": 75, "action": "notify"},
        {"target": "resolution", "percent": 100, "action": "raisePriority"},
        {"target": "resolution", "percent": 150, "action": "reassign", "queue": experts["id"]}])
    t = await raise_ticket(client, h, priority="medium")
    row = await clock(rt, tenant, t["id"])
    scheduler = sched(rt)
    assert await scheduler.run_once(row.started_at + timedelta(minutes=59), tenant) == 0
    assert await scheduler.run_once(row.started_at + timedelta(minutes=60), tenant) == 1  # first response 100 %
    assert await scheduler.run_once(row.started_at + timedelta(minutes=360), tenant) == 1  # resolution 75 %
    mid = await ok(await client.get(f"{TT}/{t['id']}", headers=h))
    assert mid["sla"]["firstResponseBreached"] and not mid["sla"]["resolutionBreached"]
    assert mid["priority"] == "medium"
    assert await scheduler.run_once(FAR, tenant) == 2  # 100 % and 150 %
    assert await scheduler.run_once(FAR, tenant) == 0
    done = await ok(await client.get(f"{TT}/{t['id']}", headers=h))
    assert done["priority"] == "high" and done["queue"] == {"id": experts["id"], "name": "Experts"}
    assert done["sla"]["resolutionBreached"]
    assert [n for n in await notes_of(client, h, t["id"]) if n.startswith("SLA escalation")] == [
        "SLA escalation: 100 % of the first response target reached (notify)",
        "SLA escalation: 75 % of the resolution target reached (notify)",
        "SLA escalation: 100 % of the resolution target reached (raisePriority)",
        "SLA escalation: 150 % of the resolution target reached (reassign)"]
    async with rt.db.transaction(tenant) as session:
        n = await session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "TroubleTicketSlaEscalationEvent"))
    assert n == 4
    records = await ok(await client.get("/audit/v1/auditRecord", params={
        "resourceType": "TroubleTicket", "resourceId": t["id"]}, headers=bearer(tenant, "admin")))
    assert [r["actor"] for r in records if r["action"] == "escalate"] == ["care-sla"] * 4


async def test_schedulers_running_together_fire_each_step_once(client: httpx.AsyncClient, rt: Any,
                                                               tenant: str) -> None:
    import asyncio

    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    await make_policy(client, sup, escalation=[{"target": "resolution", "percent": p, "action": "notify"}
                                               for p in (25, 50, 75, 150)])
    await sched(rt).run_once(FAR)  # what earlier tests left due, in their tenants
    tickets = [await raise_ticket(client, h) for _ in range(12)]
    schedulers = [sched(rt) for _ in range(4)]
    for s in schedulers:
        s.batch = 5
    fired = await asyncio.gather(*(s.run_once(FAR) for s in schedulers))  # every tenant: the system-scope path
    assert sum(fired) == 12 * 6  # first response 100 %, resolution 25/50/75/100/150
    for t in tickets:
        notes = [n for n in await notes_of(client, h, t["id"]) if n.startswith("SLA escalation")]
        assert len(notes) == len(set(notes)) == 6


async def test_resolution_and_closure_end_the_clock(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    await make_policy(client, sup)
    t = await raise_ticket(client, h)
    await move(client, h, t["id"], "inProgress")
    resolved = await move(client, h, t["id"], "resolved")
    assert resolved["sla"]["status"] == "paused" and not resolved["sla"]["resolutionBreached"]
    assert "expectedResolutionDate" in resolved
    assert await sched(rt).run_once(FAR, tenant) == 0
    closed = await move(client, h, t["id"], "closed")
    assert closed["sla"]["status"] == "stopped"
    assert {s.outcome for s in (await steps(rt, tenant, t["id"])).values()} == {"void"}
    assert await sched(rt).run_once(FAR, tenant) == 0


async def test_late_resolution_is_a_breach(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    await make_policy(client, sup)
    t = await raise_ticket(client, h)
    async with rt.db.transaction(tenant) as session:  # the targets passed without the scheduler running
        await session.execute(update(TicketSla).where(TicketSla.ticket_id == t["id"]).values(
            first_response_due=datetime(2000, 1, 1, tzinfo=UTC), resolution_due=datetime(2000, 1, 1, tzinfo=UTC)))
    late = await move(client, h, t["id"], "resolved")
    assert late["sla"]["firstResponseBreached"] and late["sla"]["resolutionBreached"]


@pytest.mark.parametrize("policy, needle", [
    ({"calendar": {"timeZone": "Nowhere/City", "workingHours": {"monday": [["09:00", "17:00"]]}}}, "time zone"),
    ({"calendar": {"workingHours": {}}}, "no working hours"),
    ({"calendar": {**ALWAYS, "holidayCountry": "ZZ"}}, "ZZ"),
    ({"firstResponseMinutes": 600, "resolutionMinutes": 60}, "cannot exceed"),
    ({"escalation": [{"target": "resolution", "percent": 75, "action": "reassign"}]}, "queue"),
    ({"escalation": [{"target": "resolution", "percent": 75, "action": "notify"},
                     {"target": "resolution", "percent": 75, "action": "raisePriority"}]}, "second step"),
    ({"escalation": [{"target": "resolution", "percent": 75, "action": "page"}]}, "action"),
    ({"segment": "vip"}, "residential"),
])
async def test_bad_policies_are_refused(client: httpx.AsyncClient, tenant: str, policy: dict[str, Any],
                                        needle: str) -> None:
    sup = bearer(tenant, "care_supervisor")
    body = {"name": "Bad", "firstResponseMinutes": 60, "resolutionMinutes": 480, "calendar": ALWAYS, **policy}
    r = await client.post(f"{CFG}/slaPolicy", json=body, headers=sup)
    assert r.status_code == 400 and needle in r.text, r.text
    assert await ok(await client.get(f"{CFG}/slaPolicy", headers=sup)) == []


async def test_a_deactivated_policy_no_longer_applies(client: httpx.AsyncClient, tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    p = await make_policy(client, sup)
    running = await raise_ticket(client, h)
    out = await ok(await client.post(f"{CFG}/slaPolicy/{p['id']}/deactivate", headers=sup))
    assert out["active"] is False
    assert "sla" not in await raise_ticket(client, h)
    again = await ok(await client.get(f"{TT}/{running['id']}", headers=h))
    assert again["sla"]["policy"]["id"] == p["id"]  # running tickets keep their targets
    await make_policy(client, sup)  # the same match again, now that the first one is inactive


async def test_a_deleted_ticket_takes_its_clock_with_it(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    sup, h = bearer(tenant, "care_supervisor"), bearer(tenant, "csr_agent")
    await make_policy(client, sup)
    t = await raise_ticket(client, h)
    assert len(await steps(rt, tenant, t["id"])) == 2
    assert (await client.delete(f"{TT}/{t['id']}", headers=h)).status_code == 204
    assert await steps(rt, tenant, t["id"]) == {}
    async with rt.db.transaction(tenant) as session:
        assert await session.get(TicketSla, t["id"]) is None
    assert await sched(rt).run_once(FAR, tenant) == 0

"""Impact: alarms attached to the inventory's resources and services, and one trouble ticket per problem on a
managed object — opened by its first critical alarm (not by a repeat, another critical alarm or concurrent ones),
noted as alarms clear, resolved when the last one clears."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.assurance.helpers import ALARM, BASE, TT, alarm_body, make_resource, ok, raise_alarm
from tests.conftest import bearer

PROBLEMS = "/api/assurance/v1/problem"


async def tickets(client: httpx.AsyncClient, tenant: str) -> list[dict[str, Any]]:
    return await ok(await client.get(f"{TT}?limit=100", headers=bearer(tenant, "csr_agent")))  # type: ignore[no-any-return]


async def test_a_problem_opens_one_ticket_resolved_when_its_alarms_clear(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    inv = await make_resource(rt, services, tenant)
    rid, sid = inv["resource"]["id"], inv["service"]["id"]
    minor = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="minor", probableCause="fanFailure"))
    assert minor["alarmedObject"]["@type"] == "Resource" and minor["alarmedObject"]["href"].endswith(
        f"/resource/{rid}")
    assert minor["alarmedObjectType"] == "LogicalResource"
    assert [s["id"] for s in minor["affectedService"]] == [sid]
    assert await tickets(client, tenant) == []  # not critical: no ticket

    first = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical"))
    await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical"))  # a repeat
    second = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical", probableCause="powerProblem"))
    [ticket] = await tickets(client, tenant)
    assert ticket["severity"] == "critical" and ticket["ticketType"] == "networkProblem"
    assert {(e["role"], e["id"]) for e in ticket["relatedEntity"]} == {
        ("alarmedObject", rid), ("alarm", str(first["id"])), ("affectedService", sid)}
    [problem] = await ok(await client.get(f"{PROBLEMS}?objectId={rid}", headers=h))
    assert problem["open"] and problem["troubleTicketId"] == ticket["id"]

    await ok(await client.post(f"{BASE}/clearAlarms", json={
        "clearSystemId": "noc", "clearUserId": "alice", "alarmClearedTime": "2026-12-04T11:00:00Z",
        "alarmPattern": [{"id": first["id"]}]}, headers=h), 201)
    noted = await ok(await client.get(f"{TT}/{ticket['id']}", headers=bearer(tenant, "csr_agent")))
    assert noted["status"] == "acknowledged"
    assert "1 critical alarm(s) still open" in noted["note"][-1]["text"]
    await ok(await client.patch(f"{ALARM}/{second['id']}", json={"state": "cleared"}, headers=h))
    resolved = await ok(await client.get(f"{TT}/{ticket['id']}", headers=bearer(tenant, "csr_agent")))
    assert resolved["status"] == "resolved"
    assert not (await ok(await client.get(f"{PROBLEMS}?objectId={rid}", headers=h)))[0]["open"]
    # the minor alarm still open does not keep the problem; a new critical alarm is a new problem, a new ticket
    again = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical"))
    assert again["id"] != first["id"]
    assert len(await tickets(client, tenant)) == 2


async def test_concurrent_critical_alarms_on_one_object_open_one_ticket(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    rid = (await make_resource(rt, services, tenant, "cell-site-3"))["resource"]["id"]
    causes = ["lossOfSignal", "powerProblem", "fanFailure", "diskFailure", "antennaFailure", "lossOfFrame"]
    results = await asyncio.gather(*(client.post(ALARM, json=alarm_body(
        rid, perceivedSeverity="critical", probableCause=c), headers=h) for c in causes * 2))
    assert {r.status_code for r in results} == {201}, [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == len(causes)
    assert len(await tickets(client, tenant)) == 1
    assert len(await ok(await client.get(f"{PROBLEMS}?objectId={rid}", headers=h))) == 1


async def test_alarms_off_the_inventory_open_no_ticket(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    a = await raise_alarm(client, h, alarm_body("unknown-box", perceivedSeverity="critical"))
    assert "href" not in a["alarmedObject"] and "affectedService" not in a
    assert await tickets(client, tenant) == []

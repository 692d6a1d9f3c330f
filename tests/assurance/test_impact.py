"""Impact: alarms attached to the inventory's resources and services; a TMF656 service problem per root object,
opened by its first critical alarm (not by a repeat, another critical alarm or concurrent ones), with one trouble
ticket, noted as its root alarms clear and resolved with its last alarm; the customers and products it affects,
on the problem and in the customer 360."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from openbss.platform.tmf.resource import system_context
from tests.assurance.helpers import (
    ALARM,
    BASE,
    PROBLEM,
    TMF656,
    TT,
    alarm_body,
    make_resource,
    ok,
    raise_alarm,
)
from tests.conftest import bearer
from tests.customer.helpers import C360, assert_valid, make_customer, make_individual


async def tickets(client: httpx.AsyncClient, tenant: str) -> list[dict[str, Any]]:
    return await ok(await client.get(f"{TT}?limit=100", headers=bearer(tenant, "csr_agent")))  # type: ignore[no-any-return]


async def problems(client: httpx.AsyncClient, h: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    out = await ok(await client.get(f"{PROBLEM}?limit=100{query}", headers=h))
    for p in out:
        assert_valid(TMF656, "ServiceProblem", p)
    return out  # type: ignore[no-any-return]


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
    assert await tickets(client, tenant) == [] and await problems(client, h) == []  # not critical

    first = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical"))
    await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical"))  # a repeat
    second = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical", probableCause="powerProblem"))
    [ticket] = await tickets(client, tenant)
    [problem] = await problems(client, h)
    assert first["serviceProblem"]["id"] == second["serviceProblem"]["id"] == problem["id"]
    assert problem["status"] == "inProgress" and problem["priority"] == 1
    assert problem["@type"] == "OpenBSSServiceProblem" and problem["@baseType"] == "ServiceProblem"
    assert problem["firstAlert"]["id"] == str(first["id"])
    assert [a["id"] for a in problem["underlyingAlarm"]] == [str(first["id"]), str(second["id"])]
    assert [r["id"] for r in problem["rootCauseResource"]] == [rid]
    assert [s["id"] for s in problem["affectedService"]] == [sid] and problem["affectedNumberOfServices"] == 1
    assert problem["troubleTicket"][0]["id"] == ticket["id"]
    assert ticket["severity"] == "critical" and ticket["ticketType"] == "networkProblem"
    assert {(e["role"], e["id"]) for e in ticket["relatedEntity"]} == {
        ("serviceProblem", problem["id"]), ("alarmedObject", rid), ("alarm", str(first["id"])),
        ("affectedService", sid)}
    schema = await ok(await client.get(problem["@schemaLocation"].removeprefix("http://testserver")))
    assert set(schema["allOf"][1]["properties"]) == {"affectedCustomerCount", "affectedProductCount"}

    await ok(await client.post(f"{BASE}/clearAlarms", json={
        "clearSystemId": "noc", "clearUserId": "alice", "alarmClearedTime": "2026-12-04T11:00:00Z",
        "alarmPattern": [{"id": first["id"]}]}, headers=h), 201)
    noted = await ok(await client.get(f"{TT}/{ticket['id']}", headers=bearer(tenant, "csr_agent")))
    assert noted["status"] == "acknowledged"
    assert "1 alarm(s) of the problem still open" in noted["note"][-1]["text"]
    await ok(await client.patch(f"{ALARM}/{second['id']}", json={"state": "cleared"}, headers=h))
    resolved = await ok(await client.get(f"{TT}/{ticket['id']}", headers=bearer(tenant, "csr_agent")))
    assert resolved["status"] == "resolved"
    [done] = await problems(client, h)
    assert done["status"] == "resolved" and done["resolutionDate"]
    # the minor alarm still open does not keep the problem; a new critical alarm is a new problem, a new ticket
    again = await raise_alarm(client, h, alarm_body(rid, perceivedSeverity="critical"))
    assert again["id"] != first["id"] and again["serviceProblem"]["id"] != problem["id"]
    assert len(await tickets(client, tenant)) == 2
    assert len(await problems(client, h, "&status=inProgress")) == 1


async def test_concurrent_critical_alarms_on_one_object_open_one_problem(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    rid = (await make_resource(rt, services, tenant, "cell-site-3"))["resource"]["id"]
    causes = ["lossOfSignal", "powerProblem", "fanFailure", "diskFailure", "antennaFailure", "lossOfFrame"]
    results = await asyncio.gather(*(client.post(ALARM, json=alarm_body(
        rid, perceivedSeverity="critical", probableCause=c), headers=h) for c in causes * 2))
    assert {r.status_code for r in results} == {201}, [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == len(causes)
    assert len({r.json()["serviceProblem"]["id"] for r in results}) == 1
    assert len(await tickets(client, tenant)) == 1
    assert len(await problems(client, h)) == 1


async def test_alarms_off_the_inventory_open_no_problem(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    a = await raise_alarm(client, h, alarm_body("unknown-box", perceivedSeverity="critical"))
    assert "href" not in a["alarmedObject"] and "affectedService" not in a and "serviceProblem" not in a
    assert await tickets(client, tenant) == []


async def test_the_customers_and_products_a_problem_affects(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    admin = bearer(tenant, "admin")
    h = bearer(tenant, "network_ops")
    customer = await make_customer(client, admin, await make_individual(client, admin))
    inv = await make_resource(rt, services, tenant, "olt-9")
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        product = await services.inventory.resources["product"].record(ctx, {
            "id": "prod-olt-9", "name": "Fiber 1G", "status": "active",
            "realizingService": [{"id": inv["service"]["id"]}],
            "relatedParty": [{"id": customer["id"], "role": "customer", "@referredType": "Customer"}]})
    await raise_alarm(client, h, alarm_body(inv["resource"]["id"], perceivedSeverity="critical"))
    [problem] = await problems(client, h)
    assert problem["affectedCustomerCount"] == 1 and problem["affectedProductCount"] == 1
    assert [(p["id"], p["role"]) for p in problem["relatedParty"]] == [(customer["id"], "affectedCustomer")]
    assert [(e["id"], e["role"]) for e in problem["relatedEntity"]] == [(product["id"], "affectedProduct")]
    assert [p["id"] for p in await problems(client, h, f"&relatedParty.id={customer['id']}")] == [problem["id"]]
    view = await ok(await client.get(f"{C360}/{customer['id']}", headers=admin))
    assert view["problems"]["open"] == 1 and [p["id"] for p in view["problems"]["recent"]] == [problem["id"]]


async def test_an_operator_declares_and_works_a_problem(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    body = {"category": "serviceProvider.declarer", "priority": 3, "description": "Slow DNS in the north region",
            "reason": "customer complaints", "originatorParty": {"id": "noc-1", "@referredType": "Individual"}}
    r = await client.post(PROBLEM, json=body, headers=h)
    assert r.status_code == 201, r.text
    p = r.json()
    assert_valid(TMF656, "ServiceProblem", p)
    assert p["status"] == "pending" and r.headers["Location"] == p["href"] and len(p["troubleTicket"]) == 1
    for bad, needle in [({**body, "priority": 11}, "priority"), ({**body, "status": "resolved"}, "resolved"),
                        ({**body, "underlyingAlarm": [{"id": "1"}]}, "underlyingAlarm"),
                        ({k: v for k, v in body.items() if k != "reason"}, "reason")]:
        r = await client.post(PROBLEM, json=bad, headers=h)
        assert r.status_code == 400 and needle in r.json()["message"], r.text
    worked = await ok(await client.patch(f"{PROBLEM}/{p['id']}", json={"status": "inProgress"}, headers=h))
    assert worked["status"] == "inProgress" and worked["statusChangeDate"]
    r = await client.patch(f"{PROBLEM}/{p['id']}", json={"status": "pending"}, headers=h)
    assert r.status_code in (400, 409) and "pending" in r.json()["message"]
    done = await ok(await client.patch(f"{PROBLEM}/{p['id']}", json={"status": "resolved"}, headers=h))
    assert done["resolutionDate"]
    assert (await client.post(PROBLEM, json=body, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.delete(f"{PROBLEM}/{p['id']}", headers=h)).status_code == 405

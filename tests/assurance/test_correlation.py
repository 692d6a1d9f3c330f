"""Correlation on the inventory's topology by the tenant's rules: a child alarm suppressed only while every parent of
its object is down (and released when one comes back), root cause within a time window (also when the parent's
alarm comes last: the child's problem is merged), grouping of a failed node's storm into one problem and one
ticket (under concurrent raises), the rules' API, and flapping problems marked with their notifications damped."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from openbss.assurance.models import ServiceProblem
from tests.assurance.helpers import (
    ALARM,
    BASE,
    PROBLEM,
    RULES,
    TT,
    add_rules,
    alarm_body,
    make_topology,
    ok,
    raise_alarm,
)
from tests.care.helpers import events_of
from tests.conftest import bearer
from tests.customer.helpers import assert_valid

TMF656 = "TMF656-ServiceProblem-v4.0.0.swagger.json"


def node_down(obj: str, **extra: Any) -> dict[str, Any]:
    return alarm_body(obj, perceivedSeverity="critical", alarmType="equipmentAlarm",
                      probableCause="equipmentMalfunction", specificProblem="node down", **extra)


async def open_problems(client: httpx.AsyncClient, h: dict[str, str]) -> list[dict[str, Any]]:
    out = await ok(await client.get(f"{PROBLEM}?status=inProgress&limit=100", headers=h))
    return out  # type: ignore[no-any-return]


async def test_a_failed_nodes_storm_raised_concurrently_makes_one_problem(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    topo = await make_topology(rt, services, tenant, children=4, dual_homed=True)
    await add_rules(client, h, "suppression", "rootCause", "grouping")
    agg = topo["agg"]["id"]
    root = await raise_alarm(client, h, node_down(agg))
    assert root["isRootCause"] is True
    storm = [alarm_body(site["id"], perceivedSeverity="critical", specificProblem=f"S1 link {n}")
             for site in topo["sites"] for n in range(5)]
    storm += [alarm_body(agg, perceivedSeverity="critical", specificProblem=f"port {n} down") for n in range(8)]
    storm += [alarm_body(topo["dual"]["id"], perceivedSeverity="critical")]
    results = await asyncio.gather(*(client.post(ALARM, json=b, headers=h) for b in storm))
    assert {r.status_code for r in results} == {201}, [r.text for r in results if r.status_code != 201]
    alarms = [r.json() for r in results]
    [problem] = await open_problems(client, h)
    assert_valid(TMF656, "ServiceProblem", problem)
    assert {a["serviceProblem"]["id"] for a in alarms} == {problem["id"]}
    children = [a for a in alarms if a["alarmedObject"]["id"] != agg]
    dual = [a for a in children if a["alarmedObject"]["id"] == topo["dual"]["id"]]
    singles = [a for a in children if a not in dual]
    # suppressed: every parent (the one aggregation node) is down; the dual-homed site still has a parent up: it is
    # correlated (root cause in the window) but not suppressed
    assert all(a["suppressed"] and a["parentAlarm"] == [{"id": str(root["id"]), "href": root["href"]}]
               and a["isRootCause"] is False for a in singles)
    assert [(a.get("suppressed"), a["parentAlarm"][0]["id"]) for a in dual] == [(None, str(root["id"]))]
    assert len(await ok(await client.get(f"{TT}?limit=100", headers=bearer(tenant, "csr_agent")))) == 1
    # the impact: every cell site's service
    assert {s["id"] for s in problem["affectedService"]} == {s["id"] for s in topo["services"].values()}
    assert {r["id"] for r in problem["affectedResource"]} >= {agg, *(s["id"] for s in topo["sites"])}
    suppressed = await ok(await client.get(f"{ALARM}?suppressed=true&limit=100", headers=h))
    assert len(suppressed) == len(singles)
    grouped = await client.get(f"{ALARM}?serviceProblem.id={problem['id']}&limit=1", headers=h)
    assert grouped.headers["X-Total-Count"] == str(len(alarms) + 1)

    # the node-down alarm clears: the node is still down (its ports' critical alarms), the children stay suppressed
    await ok(await client.patch(f"{ALARM}/{root['id']}", json={"state": "cleared"}, headers=h))
    still = await ok(await client.get(f"{ALARM}/{singles[0]['id']}", headers=h))
    assert still["suppressed"] is True and still["parentAlarm"][0]["id"] != str(root["id"])
    # the node comes back: the children it suppressed are released (no parent down any more)
    await ok(await client.post(f"{BASE}/clearAlarms", json={
        "clearSystemId": "noc", "clearUserId": "x", "alarmClearedTime": "2026-12-04T11:00:00Z",
        "alarmPattern": [{"alarmedObject": {"id": agg}}]}, headers=h), 201)
    released = await ok(await client.get(f"{ALARM}/{singles[0]['id']}", headers=h))
    assert released["suppressed"] is False and "parentAlarm" not in released
    assert (await open_problems(client, h))[0]["id"] == problem["id"]  # its alarms are still open
    async with rt.db.transaction(tenant) as session:
        assert await session.scalar(select(func.count()).select_from(ServiceProblem)) == 1


async def test_a_child_stays_unsuppressed_while_one_parent_is_up(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    topo = await make_topology(rt, services, tenant, children=1, dual_homed=True)
    await add_rules(client, h, "suppression")
    dual = topo["dual"]["id"]
    a1 = await raise_alarm(client, h, node_down(topo["agg"]["id"]))
    child = await raise_alarm(client, h, alarm_body(dual, perceivedSeverity="major"))
    assert "suppressed" not in child and "parentAlarm" not in child  # agg2 is up
    a2 = await raise_alarm(client, h, node_down(topo["agg2"]["id"]))
    child = await ok(await client.get(f"{ALARM}/{child['id']}", headers=h))
    assert child["suppressed"] is True  # both parents down now
    assert {a["id"] for a in child["parentAlarm"]} == {str(a2["id"])}
    r = await raise_alarm(client, h, alarm_body(dual, perceivedSeverity="major", probableCause="powerProblem"))
    assert r["suppressed"] is True and {a["id"] for a in r["parentAlarm"]} == {str(a1["id"]), str(a2["id"])}
    await ok(await client.patch(f"{ALARM}/{a1['id']}", json={"state": "cleared"}, headers=h))
    assert (await ok(await client.get(f"{ALARM}/{r['id']}", headers=h)))["suppressed"] is False


async def test_root_cause_arriving_last_merges_the_childs_problem(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    topo = await make_topology(rt, services, tenant, children=2)
    await add_rules(client, h, "rootCause", windowSeconds=120)
    site = topo["sites"][0]["id"]
    child = await raise_alarm(client, h, alarm_body(site, perceivedSeverity="critical",
                                                    alarmRaisedTime="2026-12-04T10:00:30Z"))
    [first] = await open_problems(client, h)
    late = await raise_alarm(client, h, alarm_body(topo["sites"][1]["id"], perceivedSeverity="critical",
                                                   alarmRaisedTime="2026-12-04T09:50:00Z"))  # out of the window
    root = await raise_alarm(client, h, node_down(topo["agg"]["id"], alarmRaisedTime="2026-12-04T10:00:00Z"))
    problems = await open_problems(client, h)
    assert {p["id"] for p in problems} == {root["serviceProblem"]["id"], late["serviceProblem"]["id"]}
    moved = await ok(await client.get(f"{ALARM}/{child['id']}", headers=h))
    assert moved["serviceProblem"]["id"] == root["serviceProblem"]["id"] and moved["isRootCause"] is False
    assert moved["parentAlarm"][0]["id"] == str(root["id"]) and "suppressed" not in moved
    merged = await ok(await client.get(f"{PROBLEM}/{first['id']}", headers=h))
    assert merged["status"] == "cancelled" and merged["parentProblem"][0]["id"] == root["serviceProblem"]["id"]
    ticket = await ok(await client.get(f"{TT}/{merged['troubleTicket'][0]['id']}",
                                       headers=bearer(tenant, "csr_agent")))
    assert ticket["status"] == "resolved"
    # the root's problem is resolved when its last alarm clears, with its ticket
    for a in (root, child):
        await ok(await client.patch(f"{ALARM}/{a['id']}", json={"state": "cleared"}, headers=h))
    done = await ok(await client.get(f"{PROBLEM}/{root['serviceProblem']['id']}", headers=h))
    assert done["status"] == "resolved"


async def test_rules_are_managed_per_tenant_and_validated(client: httpx.AsyncClient, tenant: str,
                                                          other_tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    r = await client.post(RULES, json={"name": "dual", "kind": "suppression", "relationshipTypes": ["reliesOn"],
                                       "downSeverities": ["critical", "major"]}, headers=h)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["enabled"] and rule["downSeverities"] == ["critical", "major"] and r.headers["Location"].endswith(
        rule["id"])
    for bad, needle in [({"name": "x", "kind": "magic"}, "kind"),
                        ({"name": "x", "kind": "rootCause", "windowSeconds": 0}, "windowSeconds"),
                        ({"name": "x", "kind": "suppression", "downSeverities": ["awful"]}, "awful"),
                        ({"name": "x", "kind": "grouping", "scope": "galaxy"}, "scope"),
                        ({"name": "x", "kind": "grouping", "colour": "red"}, "colour")]:
        r = await client.post(RULES, json=bad, headers=h)
        assert r.status_code == 400 and needle in r.json()["message"], (bad, r.text)
    changed = await ok(await client.patch(f"{RULES}/{rule['id']}", json={"enabled": False}, headers=h))
    assert changed["enabled"] is False and changed["downSeverities"] == ["critical", "major"]
    r = await client.patch(f"{RULES}/{rule['id']}", json={"kind": "grouping"}, headers=h)
    assert r.status_code == 400
    assert [x["id"] for x in await ok(await client.get(RULES, headers=h))] == [rule["id"]]
    assert await ok(await client.get(RULES, headers=bearer(other_tenant, "network_ops"))) == []
    assert (await client.get(f"{RULES}/{rule['id']}", headers=bearer(other_tenant, "network_ops"))).status_code == 404
    assert (await client.post(RULES, json={"name": "x", "kind": "grouping"},
                              headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.delete(f"{RULES}/{rule['id']}", headers=h)).status_code == 204
    assert (await client.get(f"{RULES}/{rule['id']}", headers=h)).status_code == 404


async def test_a_flapping_problem_is_marked_and_its_notifications_damped(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    h = bearer(tenant, "network_ops")
    topo = await make_topology(rt, services, tenant, children=1)
    site = topo["sites"][0]["id"]
    ids = []
    for _ in range(8):  # the default threshold: more than 5 raises in 10 minutes
        a = await raise_alarm(client, h, alarm_body(site, perceivedSeverity="critical"))
        ids.append(a)
        await ok(await client.post(f"{BASE}/clearAlarms", json={
            "clearSystemId": "noc", "clearUserId": "x", "alarmClearedTime": "2026-12-04T11:00:00Z",
            "alarmPattern": [{"id": a["id"]}]}, headers=h), 201)
    assert [a.get("flapping", False) for a in ids] == [False] * 5 + [True] * 3
    assert [a.get("flapCount") for a in ids[5:]] == [6, 7, 8]
    assert all("serviceProblem" not in a for a in ids[5:])  # a flapping alarm opens no problem, no ticket
    tickets = await ok(await client.get(f"{TT}?limit=100", headers=bearer(tenant, "csr_agent")))
    assert len(tickets) == 5
    assert await events_of(rt, tenant, str(ids[5]["id"])) == [
        "AlarmCreateEvent", "AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent"]
    assert await events_of(rt, tenant, str(ids[6]["id"])) == []  # damped
    flapping = await client.get(f"{ALARM}?flapping=true&limit=1", headers=h)
    assert flapping.headers["X-Total-Count"] == "3"


async def test_a_batch_folds_repeats_and_counts_each_report(
        client: httpx.AsyncClient, tenant: str, rt: Any, services: Any) -> None:
    from openbss.assurance.service import Signal
    from openbss.platform.tmf.resource import system_context

    h = bearer(tenant, "network_ops")
    first = await raise_alarm(client, h, alarm_body("olt-1"))
    second = await raise_alarm(client, h, alarm_body("olt-2"))
    fourth = await raise_alarm(client, h, alarm_body("olt-4"))

    def report(obj: str, minute: int, **extra: Any) -> Signal:
        return Signal("raise", alarm_body(obj, alarmRaisedTime=f"2026-12-04T10:{minute:02d}:00.000Z",
                                          alarmDetails=f"report {minute}", **extra), "syslog")

    batch = [report("olt-1", m) for m in range(1, 8)] + [report("olt-2", 1)]
    batch += [Signal("clear", alarm_body("olt-2"), "syslog"), report("olt-2", 9)]  # cleared, then raised anew
    batch += [report("olt-3", 2), report("olt-3", 3), report("olt-1", 8, perceivedSeverity="critical")]
    batch += [report("olt-4", m) for m in (5, 7, 6)]  # the plain repeats: one statement for the batch
    async with rt.db.transaction(tenant) as session:
        applied = await services.assurance.service.apply(
            system_context(tenant, session, "http://testserver", "syslog"), batch)
    assert applied.counts() == {"raised": 2, "repeated": 13, "cleared": 1, "unmatchedClears": 0}
    a = await ok(await client.get(f"{ALARM}/{first['id']}", headers=h))
    assert a["occurrenceCount"] == 9 and a["lastOccurrenceTime"] == "2026-12-04T10:08:00.000Z"
    assert a["perceivedSeverity"] == "critical" and a["state"] == "updated" and a["alarmDetails"] == "report 8"
    assert (await ok(await client.get(f"{ALARM}/{second['id']}", headers=h)))["occurrenceCount"] == 2
    olt3 = await ok(await client.get(f"{ALARM}?alarmedObject.id=olt-3", headers=h))
    assert [(x["occurrenceCount"], x["lastOccurrenceTime"]) for x in olt3] == [(2, "2026-12-04T10:03:00.000Z")]
    olt2 = await ok(await client.get(f"{ALARM}?alarmedObject.id=olt-2&state=raised", headers=h))
    assert [x["occurrenceCount"] for x in olt2] == [1]  # the raise after the clear is a new alarm
    # the folded repeats are audited and announced once, and the search index follows them
    d = await ok(await client.get(f"{ALARM}/{fourth['id']}", headers=h))
    assert d["occurrenceCount"] == 4 and d["lastOccurrenceTime"] == "2026-12-04T10:07:00.000Z"
    assert d["alarmDetails"] == "report 6" and d["state"] == "raised"
    for alarm in (first, fourth):
        audit = await ok(await client.get(f"/audit/v1/auditRecord?resourceType=Alarm&resourceId={alarm['id']}",
                                          headers=bearer(tenant, "admin")))
        assert sorted(x["action"] for x in audit) == ["create", "repeat"]
    assert await events_of(rt, tenant, str(fourth["id"])) == ["AlarmCreateEvent", "AlarmAttributeValueChangeEvent"]
    found = await ok(await client.get(f"{ALARM}?lastOccurrenceTime.gte=2026-12-04T10:07:00Z&alarmedObject.id=olt-4",
                                      headers=h))
    assert [x["id"] for x in found] == [fourth["id"]]
    found = await ok(await client.get(f"{ALARM}?alarmDetails=report 6", headers=h))
    assert [x["id"] for x in found] == [fourth["id"]]

"""TMF642 alarms: raising with the mandatory attributes and the X.733 vocabularies, deduplication by reduction key
(also under concurrent raises), the operation tasks (acknowledge, unacknowledge, comment, clear), filters, events,
audit and tenant isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from openbss.assurance.models import Alarm
from tests.assurance.helpers import ALARM, BASE, TMF642, alarm_body, ok, raise_alarm
from tests.care.helpers import events_of
from tests.conftest import bearer
from tests.customer.helpers import assert_valid


async def test_an_alarm_is_raised_with_its_extension(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    r = await client.post(ALARM, json=alarm_body(), headers=h)
    assert r.status_code == 201, r.text
    a = r.json()
    assert_valid(TMF642, "Alarm", a)
    assert isinstance(a["id"], int) and r.headers["Location"] == a["href"] and a["href"].endswith(f"{ALARM}/{a['id']}")
    assert a["state"] == "raised" and a["ackState"] == "unacknowledged" and a["occurrenceCount"] == 1
    assert a["@type"] == "OpenBSSAlarm" and a["@baseType"] == "Alarm"
    assert a["reductionKey"] == f"{a['alarmedObject']['id']}|communicationsAlarm|lossOfSignal|LOS on port 1"
    schema = await ok(await client.get(a["@schemaLocation"].removeprefix("http://testserver")))
    assert set(schema["allOf"][1]["properties"]) == {"reductionKey", "occurrenceCount", "lastOccurrenceTime",
                                                     "serviceProblem", "suppressed", "flapping", "flapCount"}
    got = await ok(await client.get(f"{ALARM}/{a['id']}", headers=h))
    assert got == a


async def test_bad_alarms_are_refused_naming_the_problem(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    for body, needle in [
        ({k: v for k, v in alarm_body().items() if k != "probableCause"}, "probableCause"),
        (alarm_body(alarmType="badAlarm"), "alarmType"),
        (alarm_body(probableCause="gremlins"), "probableCause"),
        (alarm_body(perceivedSeverity="apocalyptic"), "perceivedSeverity"),
        (alarm_body(perceivedSeverity="cleared"), "cleared"),
        (alarm_body(state="cleared"), "raised"),
        (alarm_body(alarmedObject={"href": "x"}), "alarmedObject"),
        (alarm_body(occurrenceCount=5), "occurrenceCount"),
    ]:
        r = await client.post(ALARM, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], (needle, r.text)
    total = (await client.get(ALARM, headers=h)).headers["X-Total-Count"]
    assert total == "0"
    assert (await client.post(ALARM, json=alarm_body(), headers=bearer(tenant, "csr_agent"))).status_code == 403


async def test_repeats_raise_the_count_not_a_new_alarm(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    first = await raise_alarm(client, h, alarm_body("olt-7"))
    again = await raise_alarm(client, h, alarm_body("olt-7", alarmRaisedTime="2026-12-04T10:05:00Z",
                                                    perceivedSeverity="critical"))
    assert again["id"] == first["id"] and again["occurrenceCount"] == 2
    assert again["lastOccurrenceTime"] == "2026-12-04T10:05:00.000Z" and again["alarmRaisedTime"] == first[
        "alarmRaisedTime"]
    assert again["perceivedSeverity"] == "critical" and again["state"] == "updated"
    other = await raise_alarm(client, h, alarm_body("olt-7", specificProblem="LOS on port 2"))
    assert other["id"] != first["id"]
    r = await client.get(f"{ALARM}?alarmedObject.id=olt-7&sort=alarmRaisedTime", headers=h)
    assert r.headers["X-Total-Count"] == "2"
    crit = await ok(await client.get(f"{ALARM}?perceivedSeverity=critical&fields=id,state", headers=h))
    assert [(x["id"], x["state"]) for x in crit] == [(first["id"], "updated")]
    assert await events_of(rt, tenant, str(first["id"])) == [
        "AlarmCreateEvent", "AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent"]
    audit = await ok(await client.get(f"/audit/v1/auditRecord?resourceType=Alarm&resourceId={first['id']}",
                                      headers=bearer(tenant, "admin")))
    assert sorted(a["action"] for a in audit) == ["create", "repeat"]


async def test_concurrent_raises_of_one_problem_make_one_alarm(client: httpx.AsyncClient, tenant: str,
                                                               rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    results = await asyncio.gather(*(client.post(ALARM, json=alarm_body("bng-1"), headers=h) for _ in range(12)))
    assert [r.status_code for r in results] == [201] * 12, [r.text for r in results if r.status_code != 201]
    assert len({r.json()["id"] for r in results}) == 1
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(Alarm.body["occurrenceCount"].as_integer(), Alarm.is_open))).all()
    assert rows == [(12, True)]


async def test_tasks_acknowledge_comment_and_clear_by_pattern(client: httpx.AsyncClient, tenant: str,
                                                              rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    a = await raise_alarm(client, h, alarm_body("rtr-1"))
    b = await raise_alarm(client, h, alarm_body("rtr-1", probableCause="powerProblem"))
    c = await raise_alarm(client, h, alarm_body("rtr-2"))
    ack = await ok(await client.post(f"{BASE}/ackAlarms", json={
        "ackSystemId": "noc", "ackUserId": "alice", "alarmPattern": [{"alarmedObject": {"id": "rtr-1"}}]},
        headers=h), 201)
    assert_valid(TMF642, "AckAlarms", ack)
    assert ack["state"] == "done" and sorted(x["id"] for x in ack["ackedAlarm"]) == sorted([a["id"], b["id"]])
    assert (await ok(await client.get(f"{ALARM}/{a['id']}", headers=h)))["ackUserId"] == "alice"
    assert (await ok(await client.get(f"{ALARM}/{c['id']}", headers=h)))["ackState"] == "unacknowledged"
    again = await ok(await client.post(f"{BASE}/ackAlarms", json={
        "ackSystemId": "noc", "ackUserId": "alice", "alarmPattern": [{"id": a["id"]}]}, headers=h), 201)
    assert again["ackedAlarm"] == []  # already acknowledged
    unack = await ok(await client.post(f"{BASE}/unAckAlarms", json={
        "ackSystemId": "noc", "ackUserId": "bob", "alarmPattern": [{"id": b["id"]}]}, headers=h), 201)
    assert [x["id"] for x in unack["unAckedAlarm"]] == [b["id"]]
    com = await ok(await client.post(f"{BASE}/commentAlarms", json={
        "comment": {"comment": "field team dispatched", "userId": "alice", "systemId": "noc"},
        "alarmPattern": [{"id": c["id"]}]}, headers=h), 201)
    assert [x["id"] for x in com["commentedAlarm"]] == [c["id"]]
    assert (await ok(await client.get(f"{ALARM}/{c['id']}", headers=h)))["comment"][0]["comment"] == \
        "field team dispatched"
    clear = await ok(await client.post(f"{BASE}/clearAlarms", json={
        "clearSystemId": "noc", "clearUserId": "alice", "alarmClearedTime": "2026-12-04T11:00:00Z",
        "alarmPattern": [{"alarmedObject": {"id": "rtr-1"}, "probableCause": "lossOfSignal"}]}, headers=h), 201)
    assert [x["id"] for x in clear["clearedAlarm"]] == [a["id"]]
    cleared = await ok(await client.get(f"{ALARM}/{a['id']}", headers=h))
    assert cleared["state"] == "cleared" and cleared["perceivedSeverity"] == "cleared"
    assert cleared["alarmClearedTime"] == "2026-12-04T11:00:00.000Z" and cleared["clearUserId"] == "alice"
    assert_valid(TMF642, "Alarm", cleared)
    # the problem raised again after its clear is a new alarm
    new = await raise_alarm(client, h, alarm_body("rtr-1"))
    assert new["id"] != a["id"] and new["occurrenceCount"] == 1
    listed = await ok(await client.get(f"{BASE}/clearAlarms/{clear['id']}", headers=h))
    assert listed["clearedAlarm"] == clear["clearedAlarm"]
    r = await client.patch(f"{ALARM}/{a['id']}", json={"alarmDetails": "x"}, headers=h)
    assert r.status_code == 400 and "cleared" in r.json()["message"]
    r = await client.post(f"{BASE}/ackAlarms", json={"ackSystemId": "n", "ackUserId": "u", "alarmPattern": [{}]},
                          headers=h)
    assert r.status_code == 400 and "pattern" in r.json()["message"]


async def test_patch_clears_and_refuses_changing_the_problem(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    a = await raise_alarm(client, h, alarm_body())
    r = await client.patch(f"{ALARM}/{a['id']}", json={"probableCause": "powerProblem"}, headers=h)
    assert r.status_code == 400 and "probableCause" in r.json()["message"]
    r = await client.patch(f"{ALARM}/{a['id']}", json={"perceivedSeverity": "minor"}, headers=h)
    assert (await ok(r))["state"] == "updated"
    out = await ok(await client.patch(f"{ALARM}/{a['id']}", json={"state": "cleared"}, headers=h))
    assert out["perceivedSeverity"] == "cleared" and out["alarmClearedTime"]
    assert_valid(TMF642, "Alarm", out)


async def test_alarms_are_isolated_per_tenant(client: httpx.AsyncClient, tenant: str, other_tenant: str,
                                              rt: Any) -> None:
    a = await raise_alarm(client, bearer(tenant, "network_ops"), alarm_body("shared-name"))
    b = await raise_alarm(client, bearer(other_tenant, "network_ops"), alarm_body("shared-name"))
    assert a["id"] != b["id"] and b["occurrenceCount"] == 1  # the same key in two tenants: two alarms
    r = await client.get(f"{ALARM}/{a['id']}", headers=bearer(other_tenant, "network_ops"))
    assert r.status_code == 404
    async with rt.db.transaction(other_tenant) as session:
        assert await session.scalar(select(func.count()).select_from(Alarm)) == 1

"""TMF628 performance management: indicator specifications and groups, measurement collection jobs (validation,
schedule, states), SNMP collection from a real ``snmpd`` on loopback (gauges and cumulative counters, wrap-around,
an unreachable agent), pushed measurements (duplicates ignored), rollups 5 min → hour → day, retention by day
partition, and the responses against the specification's schemas."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from openbss.assurance.performance import Collector, Reading
from tests.assurance.helpers import ok
from tests.conftest import bearer
from tests.customer.helpers import assert_valid, raw_rows

PM = "/tmf-api/performance/v4"
PI = f"{PM}/performanceIndicatorSpecification"
GROUP = f"{PM}/performanceIndicatorGroupSpecification"
JOB = f"{PM}/measurementCollectionJob"
PUSH = "/api/assurance/v1/measurement"
KPI = "/api/assurance/v1/kpi"
TMF628 = "TMF628-Performance-v4.0.0.swagger.json"
IF_IN_OCTETS_1 = "1.3.6.1.2.1.2.2.1.10.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


def snmpd_or_skip() -> str:
    found = shutil.which("snmpd") or ("/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd") else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's snmpd is missing (make snmp-agent installs it)")
        pytest.skip("Debian's snmpd is missing (make snmp-agent installs it)")
    return found


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: the test agent's SNMPv3 user (authPriv: SHA authentication, AES privacy)
V3_USER, V3_AUTH, V3_PRIV = "noc-poller", "auth-secret-7301", "priv-secret-7302"


@pytest.fixture
async def snmpd(tmp_path: Path) -> AsyncIterator[int]:
    """A net-snmp agent on 127.0.0.1 at a free high port, read-only community ``public`` and the read-only v3 user
    ``V3_USER`` (authPriv, SHA/AES), its own configuration, persistent directory and no MIB loading; stopped after
    the test."""
    binary = snmpd_or_skip()
    port = free_udp_port()
    conf = tmp_path / "snmpd.conf"
    conf.write_text(f"rocommunity public 127.0.0.1\ncreateUser {V3_USER} SHA \"{V3_AUTH}\" AES \"{V3_PRIV}\"\n"
                    f"rouser {V3_USER} authpriv\n")
    env = {**os.environ, "MIBS": "", "MIBDIRS": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        binary, "-f", "-Lf", str(tmp_path / "snmpd.log"), "-C", "-c", str(conf), "-p", str(tmp_path / "pid"),
        f"--persistentDir={tmp_path}", f"udp:127.0.0.1:{port}", env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    from openbss.assurance.performance import snmp_get

    for _ in range(50):  # until it answers
        try:
            await snmp_get("127.0.0.1", port, "public", [SYS_UPTIME], wait=0.2)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"snmpd did not answer: {(tmp_path / 'snmpd.log').read_text()}")
    yield port
    proc.terminate()
    await proc.wait()


async def indicator(client: httpx.AsyncClient, h: dict[str, str], name: str | None = None, **extra: Any
                    ) -> dict[str, Any]:
    out = await ok(await client.post(PI, json={"name": name or f"kpi-{uuid.uuid4().hex[:8]}", "indicatorUnit": "1",
                                               "indicatorType": "int", "collectionType": "gauge", **extra},
                                     headers=h), 201)
    assert_valid(TMF628, "PerformanceIndicatorSpecification", out)
    return out  # type: ignore[no-any-return]


def job_body(*indicators: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"fileTransferData": [{"fileFormat": "json", "transportProtocol": "https"}], "granularity": "g_1mn",
            "reportingPeriod": "r_5mn",
            "performanceIndicatorSpecification": [{"id": i["id"]} for i in indicators], **extra}


async def test_indicator_specifications_and_groups(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    octets = await indicator(client, h, "ifInOctets", snmpOid=IF_IN_OCTETS_1, collectionType="cumulative")
    assert octets["@type"] == "OpenBSSPerformanceIndicatorSpecification"
    assert octets["@baseType"] == "PerformanceIndicatorSpecification"
    schema = await ok(await client.get(octets["@schemaLocation"].removeprefix("http://testserver")))
    assert "snmpOid" in schema["allOf"][1]["properties"]
    plain = await indicator(client, h, "latencyMs", indicatorUnit="ms")
    assert plain["@type"] == "PerformanceIndicatorSpecification" and "snmpOid" not in plain
    for body, status, needle in [
        ({"indicatorUnit": "ms"}, 400, "name"),
        ({"name": "ifInOctets"}, 409, "ifInOctets"),
        ({"name": "x", "snmpOid": "ifInOctets"}, 400, "snmpOid"),
        ({"name": "y", "collectionType": "sometimes"}, 400, "collectionType"),
    ]:
        r = await client.post(PI, json=body, headers=h)
        assert r.status_code == status, r.text
        assert needle in r.json()["message"], r.text
    assert (await client.get(PI, headers=h)).headers["X-Total-Count"] == "2"
    r = await client.patch(f"{PI}/{plain['id']}", json={"name": "renamed"}, headers=h)
    assert r.status_code == 400 and "name" in r.json()["message"]
    group = await ok(await client.post(GROUP, json={"name": "interface", "performanceIndicatorSpecification": [
        {"id": octets["id"]}]}, headers=h), 201)
    assert_valid(TMF628, "PerformanceIndicatorGroupSpecification", group)
    r = await client.post(GROUP, json={"name": "bad", "performanceIndicatorSpecification": [{"id": "nope"}]},
                          headers=h)
    assert r.status_code == 400 and "nope" in r.json()["message"]
    assert (await client.post(PI, json={"name": "z"}, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.get(PI, headers=bearer(tenant, "csr_agent"))).status_code == 403


async def test_bad_jobs_are_refused_naming_the_problem(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    kpi = await indicator(client, h, snmpOid=SYS_UPTIME)
    agent = {"snmpAgent": {"address": "127.0.0.1", "port": 1161}, "monitoredObject": {"id": "agg-1"}}
    for body, needle in [
        ({"granularity": "g_1mn"}, "fileTransferData"),
        (job_body(), "performance indicator"),
        ({**job_body(kpi), "performanceIndicatorSpecification": [{"id": "ghost"}]}, "ghost"),
        (job_body(kpi, reportingPeriod="r_1mn", granularity="g_5mn"), "reportingPeriod"),
        (job_body(kpi, snmpAgent={"address": "127.0.0.1"}), "monitoredObject"),
        (job_body(kpi, granularity="g_1m", **agent), "granularity"),
        (job_body(kpi, **{**agent, "snmpAgent": {"address": "127.0.0.1", "port": 70000}}), "port"),
        (job_body(kpi, executionState="completed"), "executionState"),
        (job_body(kpi, trackingRecord=[{"id": "1"}]), "trackingRecord"),
        (job_body(kpi, scheduleDefinition={"scheduleDefinitionStartTime": "2026-12-05T00:00:00Z",
                                           "scheduleDefinitionEndTime": "2026-12-04T00:00:00Z"}), "EndTime"),
    ]:
        r = await client.post(JOB, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], (needle, r.text)
    assert (await client.get(JOB, headers=h)).headers["X-Total-Count"] == "0"


async def test_a_job_polls_a_real_snmp_agent(client: httpx.AsyncClient, tenant: str, services: Any, rt: Any,
                                             snmpd: int) -> None:
    h = bearer(tenant, "network_ops")
    octets = await indicator(client, h, "ifInOctets.1", snmpOid=IF_IN_OCTETS_1, collectionType="cumulative",
                             indicatorUnit="octets")
    uptime = await indicator(client, h, "sysUpTime", snmpOid=SYS_UPTIME, indicatorUnit="centiseconds")
    group = await ok(await client.post(GROUP, json={"name": "agent", "performanceIndicatorSpecification": [
        {"id": uptime["id"]}]}, headers=h), 201)
    job = await ok(await client.post(JOB, json=job_body(
        octets, performanceIndicatorGroupSpecification=[group],
        snmpAgent={"address": "127.0.0.1", "port": snmpd, "community": "public"},
        monitoredObject={"id": "agg-1", "@referredType": "PhysicalResource"}), headers=h), 201)
    assert_valid(TMF628, "MeasurementCollectionJob", job)
    assert job["@type"] == "OpenBSSMeasurementCollectionJob" and job["executionState"] == "acknowledged"
    assert job["adminState"] == "unlocked" and {i["name"] for i in job["performanceIndicatorSpecification"]} == {
        "ifInOctets.1", "sysUpTime"}
    due = datetime.fromisoformat(job["nextCollectionTime"].replace("Z", "+00:00"))
    assert due.second == 0 and due > datetime.now(UTC) - timedelta(seconds=1)

    collector: Collector = services.assurance.collector
    assert await collector.collect_due(rt.db, [tenant], now=due - timedelta(seconds=1)) == 0  # not yet due
    assert await collector.collect_due(rt.db, [tenant], now=due) == 1
    assert await collector.collect_due(rt.db, [tenant], now=due) == 0  # moved on: not collected twice
    after = await ok(await client.get(f"{JOB}/{job['id']}", headers=h))
    assert after["executionState"] == "inProgress" and after["lastCollectionTime"].startswith(due.strftime("%Y-%m-%d"))
    assert after["nextCollectionTime"] == (due + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "collected 1 measurement" in after["trackingRecord"][-1]["description"]  # the counter's baseline
    assert_valid(TMF628, "MeasurementCollectionJob", after)
    assert await collector.collect_due(rt.db, [tenant], now=due + timedelta(minutes=1)) == 1

    window = {"objectId": "agg-1", "granularity": "raw", "start": (due - timedelta(minutes=10)).isoformat(),
              "end": (due + timedelta(minutes=5)).isoformat()}
    up = await ok(await client.get(KPI, params={**window, "indicator": "sysUpTime"}, headers=h))
    assert len(up["points"]) == 2 and Decimal(str(up["points"][1]["value"])) >= Decimal(str(up["points"][0]["value"]))
    octet = await ok(await client.get(KPI, params={**window, "indicator": "ifInOctets.1"}, headers=h))
    assert len(octet["points"]) == 1 and Decimal(str(octet["points"][0]["value"])) >= 0  # an increase, not a total
    five = await ok(await client.get(KPI, params={**window, "indicator": "sysUpTime", "granularity": "5min"},
                                     headers=h))
    assert sum(p["samples"] for p in five["points"]) == 2

    locked = await ok(await client.patch(f"{JOB}/{job['id']}", json={"adminState": "locked"}, headers=h))
    assert "nextCollectionTime" not in locked
    assert await collector.collect_due(rt.db, [tenant], now=due + timedelta(hours=1)) == 0
    cancelled = await ok(await client.patch(f"{JOB}/{job['id']}", json={"executionState": "cancelled"}, headers=h))
    assert cancelled["executionState"] == "cancelled"
    r = await client.patch(f"{JOB}/{job['id']}", json={"executionState": "inProgress"}, headers=h)
    assert r.status_code == 409, r.text  # a cancelled job stays cancelled


async def test_a_job_polls_an_snmpv3_agent_with_sealed_credentials(client: httpx.AsyncClient, tenant: str,
                                                                   services: Any, rt: Any, snmpd: int) -> None:
    h = bearer(tenant, "network_ops")
    uptime = await indicator(client, h, "sysUpTime", snmpOid=SYS_UPTIME, indicatorUnit="centiseconds")
    agent = {"address": "127.0.0.1", "port": snmpd, "version": "3", "securityName": V3_USER,
             "authProtocol": "SHA", "authKey": V3_AUTH, "privProtocol": "AES", "privKey": V3_PRIV}
    job = await ok(await client.post(JOB, json=job_body(uptime, snmpAgent=agent, monitoredObject={"id": "agg-v3"}),
                                     headers=h), 201)
    assert_valid(TMF628, "MeasurementCollectionJob", job)
    # the credentials are write-only: not in the response, a read, a list, the audit trail nor the events
    assert job["snmpAgent"] == {k: v for k, v in agent.items() if k not in ("authKey", "privKey")}
    got = await ok(await client.get(f"{JOB}/{job['id']}", headers=h))
    listed = (await client.get(JOB, headers=h)).text
    assert "authKey" not in got["snmpAgent"] and V3_AUTH not in listed and V3_PRIV not in listed
    # ...and sealed at rest with the tenant's data key
    (body,) = (await raw_rows(rt, "SELECT body::text FROM measurement_collection_job WHERE id = :i",
                              i=job["id"]))[0]
    assert V3_AUTH not in body and V3_PRIV not in body and body.count("pii:1:") == 2
    due = datetime.fromisoformat(job["nextCollectionTime"].replace("Z", "+00:00"))
    assert await services.assurance.collector.collect_due(rt.db, [tenant], now=due) == 1
    after = await ok(await client.get(f"{JOB}/{job['id']}", headers=h))
    assert after["executionState"] == "inProgress", after["trackingRecord"]
    assert "collected 1 measurement" in after["trackingRecord"][-1]["description"]
    points = (await ok(await client.get(KPI, params={
        "objectId": "agg-v3", "indicator": "sysUpTime", "granularity": "raw",
        "start": (due - timedelta(minutes=1)).isoformat(), "end": (due + timedelta(minutes=1)).isoformat()},
        headers=h)))["points"]
    assert len(points) == 1 and Decimal(str(points[0]["value"])) > 0

    # a changed address keeps the sealed keys; a wrong key is a failed collection that names no secret
    moved = await ok(await client.patch(f"{JOB}/{job['id']}", json={"snmpAgent": {"port": snmpd}}, headers=h))
    assert "privKey" not in moved["snmpAgent"] and moved["snmpAgent"]["securityName"] == V3_USER
    wrong = "not-the-auth-key"
    await ok(await client.patch(f"{JOB}/{job['id']}", json={"snmpAgent": {"authKey": wrong}}, headers=h))
    nxt = due + timedelta(minutes=1)
    assert await services.assurance.collector.collect_due(rt.db, [tenant], now=nxt) == 1
    failed = await ok(await client.get(f"{JOB}/{job['id']}", headers=h))
    assert failed["executionState"] == "failed" and "failed" in failed["trackingRecord"][-1]["description"]
    assert wrong not in str(failed) and V3_PRIV not in str(failed)
    for sql in ("SELECT changes::text FROM audit_record WHERE resource_id = :i",
                "SELECT envelope::text FROM outbox_event WHERE resource_id = :i"):
        for (text_,) in await raw_rows(rt, sql, i=job["id"]):
            for secret in (V3_AUTH, V3_PRIV, wrong):
                assert secret not in text_, (sql, text_)


async def test_bad_snmpv3_agents_are_refused(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    kpi = await indicator(client, h, snmpOid=SYS_UPTIME)
    v3 = {"address": "127.0.0.1", "version": "3", "securityName": "u", "authKey": "long-enough-1"}
    for agent, needle in (
            ({"address": "127.0.0.1", "securityName": "u", "authKey": "long-enough-1"}, "version"),
            ({**v3, "community": "public"}, "community"),
            ({**v3, "securityName": ""}, "securityName"),
            ({k: v for k, v in v3.items() if k != "authKey"}, "authKey"),
            ({**v3, "authKey": "short"}, "authKey"),
            ({**v3, "privKey": "short"}, "privKey"),
            ({**v3, "privProtocol": "AES"}, "privProtocol"),
            ({**v3, "authProtocol": "SHA999"}, "authProtocol"),
            ({**v3, "authKey": "pii:1:k:abcd"}, "pii:1:")):
        r = await client.post(JOB, json=job_body(kpi, snmpAgent=agent, monitoredObject={"id": "x"}), headers=h)
        assert r.status_code == 400, (agent, r.text)
        assert needle in r.json()["message"], (needle, r.text)
        assert "long-enough-1" not in r.text
    assert (await client.get(JOB, headers=h)).headers["X-Total-Count"] == "0"


ON_DEMAND = f"{PM}/onDemandCollection"
TRACKING = f"{PM}/trackingRecord"


async def test_an_on_demand_collection_runs_once(client: httpx.AsyncClient, tenant: str, services: Any, rt: Any,
                                                 snmpd: int) -> None:
    h = bearer(tenant, "network_ops")
    uptime = await indicator(client, h, "sysUpTime", snmpOid=SYS_UPTIME, indicatorUnit="centiseconds")
    octets = await indicator(client, h, "ifInOctets.1", snmpOid=IF_IN_OCTETS_1, collectionType="cumulative")
    body = {"fileTransferData": [{"fileFormat": "json"}], "monitoredObject": {"id": "agg-od"},
            "performanceIndicatorSpecification": [{"id": uptime["id"]}, {"id": octets["id"]}],
            "snmpAgent": {"address": "127.0.0.1", "port": snmpd, "version": "3", "securityName": V3_USER,
                          "authKey": V3_AUTH, "privKey": V3_PRIV}}
    once = await ok(await client.post(ON_DEMAND, json=body, headers=h), 201)
    assert_valid(TMF628, "OnDemandCollection", once)
    assert once["@type"] == "OpenBSSOnDemandCollection" and once["executionState"] == "acknowledged"
    assert "authKey" not in once["snmpAgent"] and "privKey" not in once["snmpAgent"]
    collector: Collector = services.assurance.collector
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert await collector.collect_due(rt.db, [tenant], now=now) == 1
    assert await collector.collect_due(rt.db, [tenant], now=now + timedelta(hours=1)) == 0  # once only
    done = await ok(await client.get(f"{ON_DEMAND}/{once['id']}", headers=h))
    assert_valid(TMF628, "OnDemandCollection", done)
    assert done["executionState"] == "completed" and "nextCollectionTime" not in done
    (record,) = done["trackingRecord"]
    assert "collected 1 measurement" in record["description"] and "ifInOctets.1" in record["description"]
    points = (await ok(await client.get(KPI, params={
        "objectId": "agg-od", "indicator": "sysUpTime", "granularity": "raw",
        "start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()},
        headers=h)))["points"]
    assert len(points) == 1
    # the spec's states, in order, announced as ExecutionStateChange events (without the credentials)
    events = await raw_rows(rt, "SELECT event_type, envelope::text FROM outbox_event WHERE resource_id = :i "
                                "ORDER BY id", i=once["id"])
    kinds = [k for k, _ in events]
    assert kinds[0] == "OnDemandCollectionCreateEvent" and kinds.count("OnDemandCollectionExecutionStateChangeEvent") \
        == 2, kinds
    assert all(V3_AUTH not in e and V3_PRIV not in e for _, e in events)
    # a finished collection does not change any more
    r = await client.patch(f"{ON_DEMAND}/{once['id']}", json={"jobPriority": 2}, headers=h)
    assert r.status_code == 400 and "completed" in r.json()["message"], r.text
    r = await client.patch(f"{ON_DEMAND}/{once['id']}", json={"executionState": "cancelled"}, headers=h)
    assert r.status_code in (400, 409), r.text

    # the tracking record is a resource of its own, naming the collection it records
    got = await ok(await client.get(f"{TRACKING}/{record['id']}", headers=h))
    assert_valid(TMF628, "TrackingRecord", got)
    assert got["description"] == record["description"]
    assert {c["name"]: c["value"] for c in got["characteristic"]}["collectionId"] == once["id"]
    listed = await ok(await client.get(TRACKING, headers=h))
    assert any(t["id"] == record["id"] for t in listed)
    for t in listed:
        assert_valid(TMF628, "TrackingRecord", t)
    assert (await client.post(TRACKING, json={"description": "x"}, headers=h)).status_code in (404, 405)
    assert not [k for k, _ in await raw_rows(rt, "SELECT event_type, 1 FROM outbox_event WHERE resource_id = :i",
                                             i=record["id"])]  # the specification has no tracking record events

    # cancelled before it runs: never collected; a locked one waits
    cancelled = await ok(await client.post(ON_DEMAND, json=body, headers=h), 201)
    out = await ok(await client.patch(f"{ON_DEMAND}/{cancelled['id']}", json={"executionState": "cancelled"},
                                      headers=h))
    assert out["executionState"] == "cancelled"
    locked = await ok(await client.post(ON_DEMAND, json={**body, "adminState": "locked"}, headers=h), 201)
    assert await collector.collect_due(rt.db, [tenant], now=now + timedelta(hours=2)) == 0
    await ok(await client.patch(f"{ON_DEMAND}/{locked['id']}", json={"adminState": "unlocked"}, headers=h))
    assert await collector.collect_due(rt.db, [tenant], now=now + timedelta(hours=2)) == 1
    for bad, needle in (({**body, "snmpAgent": None}, "snmpAgent"), ({**body, "monitoredObject": None},
                                                                      "monitoredObject"),
                        ({**body, "executionState": "completed"}, "executionState")):
        r = await client.post(ON_DEMAND, json={k: v for k, v in bad.items() if v is not None}, headers=h)
        assert r.status_code == 400 and needle in r.json()["message"], r.text


async def test_an_on_demand_collection_of_an_unreachable_agent_fails(client: httpx.AsyncClient, tenant: str,
                                                                    services: Any, rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    kpi = await indicator(client, h, snmpOid=SYS_UPTIME)
    once = await ok(await client.post(ON_DEMAND, json={
        "fileTransferData": [{"fileFormat": "json"}], "monitoredObject": {"id": "gone-od"},
        "performanceIndicatorSpecification": [{"id": kpi["id"]}],
        "snmpAgent": {"address": "127.0.0.1", "port": free_udp_port()}}, headers=h), 201)
    assert await services.assurance.collector.collect_due(rt.db, [tenant],
                                                          now=datetime.now(UTC) + timedelta(seconds=1)) == 1
    failed = await ok(await client.get(f"{ON_DEMAND}/{once['id']}", headers=h))
    assert failed["executionState"] == "failed" and "failed" in failed["trackingRecord"][-1]["description"]
    assert_valid(TMF628, "OnDemandCollection", failed)


async def test_an_unreachable_agent_is_a_failed_collection(client: httpx.AsyncClient, tenant: str, services: Any,
                                                           rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    kpi = await indicator(client, h, snmpOid=SYS_UPTIME)
    job = await ok(await client.post(JOB, json=job_body(
        kpi, snmpAgent={"address": "127.0.0.1", "port": free_udp_port()}, monitoredObject={"id": "gone-1"},
        scheduleDefinition={"scheduleDefinitionEndTime": "2099-01-01T00:00:00Z"}), headers=h), 201)
    due = datetime.fromisoformat(job["nextCollectionTime"].replace("Z", "+00:00"))
    assert await services.assurance.collector.collect_due(rt.db, [tenant], now=due) == 1
    after = await ok(await client.get(f"{JOB}/{job['id']}", headers=h))
    assert after["executionState"] == "failed" and "failed" in after["trackingRecord"][-1]["description"]
    assert "nextCollectionTime" in after  # tried again at the next period


async def test_counters_wrap_at_their_width(services: Any, rt: Any, tenant: str) -> None:
    now = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    async with rt.db.transaction(tenant) as session:
        first = await Collector._increase(session, "job-w", "obj", "ifInOctets", Reading(Decimal(2**32 - 10),
                                                                                          "Counter32"), now)
        wrapped = await Collector._increase(session, "job-w", "obj", "ifInOctets", Reading(Decimal(5), "Counter32"),
                                            now)
        grown = await Collector._increase(session, "job-w", "obj", "ifInOctets", Reading(Decimal(105), "Counter32"),
                                          now)
        reset = await Collector._increase(session, "job-w", "obj", "other", Reading(Decimal(50), "Integer"), now)
        reset = await Collector._increase(session, "job-w", "obj", "other", Reading(Decimal(10), "Integer"), now)
    assert (first, wrapped, grown, reset) == (None, Decimal(15), Decimal(100), None)


def m(obj: str, kpi: str, when: str, value: Any) -> dict[str, Any]:
    return {"monitoredObject": {"id": obj}, "indicator": kpi, "time": when, "value": value}


async def test_pushed_measurements_roll_up_to_hours_and_days(client: httpx.AsyncClient, tenant: str, services: Any,
                                                              rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    await indicator(client, h, "latency", indicatorUnit="ms", indicatorType="float")
    batch = [m("cell-1", "latency", "2026-11-20T10:00:10Z", 10), m("cell-1", "latency", "2026-11-20T10:01:00Z", 20.5),
             m("cell-1", "latency", "2026-11-20T10:07:00Z", 30), m("cell-1", "latency", "2026-11-20T11:02:00Z", 40),
             m("cell-2", "latency", "2026-11-20T10:00:10Z", 99)]
    assert await ok(await client.post(PUSH, json={"measurement": batch}, headers=h)) == {"accepted": 5,
                                                                                       "duplicates": 0}
    # a repeat (a sender retrying) changes nothing
    assert await ok(await client.post(PUSH, json={"measurement": batch[:2]}, headers=h)) == {"accepted": 0,
                                                                                           "duplicates": 2}
    q = {"objectId": "cell-1", "indicator": "latency", "start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}
    five = (await ok(await client.get(KPI, params={**q, "granularity": "5min"}, headers=h)))["points"]
    assert [(p["time"], p["samples"], Decimal(str(p["sum"]))) for p in five] == [
        ("2026-11-20T10:00:00.000Z", 2, Decimal("30.5")), ("2026-11-20T10:05:00.000Z", 1, Decimal(30)),
        ("2026-11-20T11:00:00.000Z", 1, Decimal(40))]
    await services.assurance.roll_up(rt.db, [tenant], now=datetime(2026, 11, 21, 0, 30, tzinfo=UTC))
    hours = (await ok(await client.get(KPI, params={**q, "granularity": "hour"}, headers=h)))["points"]
    assert [(p["time"], p["samples"], Decimal(str(p["min"])), Decimal(str(p["max"]))) for p in hours] == [
        ("2026-11-20T10:00:00.000Z", 3, Decimal(10), Decimal(30)), ("2026-11-20T11:00:00.000Z", 1, Decimal(40),
                                                                     Decimal(40))]
    days = (await ok(await client.get(KPI, params={**q, "granularity": "day"}, headers=h)))["points"]
    assert len(days) == 1 and days[0]["samples"] == 4 and Decimal(str(days[0]["average"])) == Decimal("25.125")
    # rolling up again (the worker does every few minutes) recomputes, never double-counts
    await services.assurance.roll_up(rt.db, [tenant], now=datetime(2026, 11, 21, 0, 35, tzinfo=UTC))
    again = (await ok(await client.get(KPI, params={**q, "granularity": "day"}, headers=h)))["points"]
    assert again == days
    other = await ok(await client.get(KPI, params={**q, "objectId": "cell-2", "granularity": "raw"}, headers=h))
    assert [p["value"] for p in other["points"]] == [99]


async def test_bad_pushes_are_refused_whole(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    await indicator(client, h, "jitter")
    good = m("cell-9", "jitter", "2026-11-20T10:00:00Z", 1)
    for body, needle in [
        ({"measurement": [good, m("cell-9", "ghost", "2026-11-20T10:00:00Z", 1)]}, "ghost"),
        ({"measurement": [good, m("cell-9", "jitter", "2026-11-20T10:00:00", 1)]}, "time zone"),
        ({"measurement": [good, m("cell-9", "jitter", "2026-11-20T10:00:00Z", True)]}, "value"),
        ({"measurement": [good, m("cell-9", "jitter", "2026-11-20T10:00:00Z", "NaN")]}, "value"),
        ({"measurement": [{"indicator": "jitter", "time": "2026-11-20T10:00:00Z", "value": 1}]}, "monitoredObject"),
        ({"measurement": []}, "measurement"),
    ]:
        r = await client.post(PUSH, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], (needle, r.text)
    q = {"objectId": "cell-9", "indicator": "jitter", "granularity": "raw", "start": "2026-11-20T00:00:00Z",
         "end": "2026-11-21T00:00:00Z"}
    assert (await ok(await client.get(KPI, params=q, headers=h)))["points"] == []
    assert (await client.get(KPI, params={**q, "granularity": "week"}, headers=h)).status_code == 400
    assert (await client.post(PUSH, json={"measurement": [good]}, headers=bearer(tenant, "csr_agent"))
            ).status_code == 403


async def test_retention_drops_old_day_partitions_and_buckets(client: httpx.AsyncClient, tenant: str,
                                                             services: Any, rt: Any) -> None:
    h = bearer(tenant, "network_ops")
    await indicator(client, h, "errors")
    await ok(await client.post(PUSH, json={"measurement": [m("olt-1", "errors", "2025-01-10T10:00:00Z", 1),
                                                           m("olt-1", "errors", "2025-01-31T10:00:00Z", 2)]},
                               headers=h))

    async def partitions() -> set[str]:
        async with rt.db.transaction(tenant) as session:
            rows = await session.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'kpi_sample'::regclass"))
            return {r[0] for r in rows}

    assert {"kpi_sample_p20250110", "kpi_sample_p20250131"} <= await partitions()
    now = datetime(2025, 2, 1, tzinfo=UTC)
    async with rt.db.transaction(tenant) as session:
        dropped = await services.assurance.kpis.retain(session, now, {"raw": 7, "5min": 14, "hour": 60, "day": 400})
    assert dropped["partitions"] >= 1 and dropped["5min"] == 1
    assert "kpi_sample_p20250110" not in await partitions() and "kpi_sample_p20250131" in await partitions()
    q = {"objectId": "olt-1", "indicator": "errors", "start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}
    raw = (await ok(await client.get(KPI, params={**q, "granularity": "raw"}, headers=h)))["points"]
    assert [p["value"] for p in raw] == [2]
    assert len((await ok(await client.get(KPI, params={**q, "granularity": "5min"}, headers=h)))["points"]) == 1
    # a late measurement of a dropped day goes to a new partition of that day
    await ok(await client.post(PUSH, json={"measurement": [m("olt-1", "errors", "2025-01-10T11:00:00Z", 3)]},
                               headers=h))
    assert "kpi_sample_p20250110" in await partitions()


async def test_tenants_do_not_see_each_others_kpis(client: httpx.AsyncClient, tenant: str,
                                                   other_tenant: str) -> None:
    h, other = bearer(tenant, "network_ops"), bearer(other_tenant, "network_ops")
    await indicator(client, h, "shared")
    await ok(await client.post(PUSH, json={"measurement": [m("x-1", "shared", "2026-11-21T10:00:00Z", 7)]},
                               headers=h))
    q = {"objectId": "x-1", "indicator": "shared", "granularity": "raw", "start": "2026-11-21T00:00:00Z",
         "end": "2026-11-22T00:00:00Z"}
    assert len((await ok(await client.get(KPI, params=q, headers=h)))["points"]) == 1
    assert (await ok(await client.get(KPI, params=q, headers=other)))["points"] == []
    assert (await client.get(PI, headers=other)).headers["X-Total-Count"] == "0"

"""The two reads of the network operations console: the limits watched on an object per KPI
(``GET /api/assurance/v1/kpi/thresholds``) and the SLA evaluations per SLA and period
(``GET /api/assurance/v1/slaEvaluation``), both paged (``offset``/``limit``, ``X-Total-Count``)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.assurance.helpers import ok
from tests.assurance.test_sla import SLA, sla_body, world
from tests.assurance.test_thresholds import JOB, RULE, THRESHOLD, setup
from tests.conftest import bearer

LIMITS = "/api/assurance/v1/kpi/thresholds"
EVALUATIONS = "/api/assurance/v1/slaEvaluation"


async def test_the_limits_of_an_object_per_kpi(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    assert await ok(await client.get(LIMITS, params={"objectId": "cell-1"}, headers=h)) == []
    w = await setup(client, h, "cell-1,cell-2", hysteresis=20, toleranceSeconds=600, gracePeriods=2)
    # a second rule (a lower limit on the same KPI) in a threshold watching every object
    low = await ok(await client.post(RULE, json={
        "@type": "SimpleThresholdRule", "name": "latency low", "condition": "Raise", "severity": "minor",
        "measurement": {"id": w["kpi"]["id"], "@type": "PerformanceMeasurementRef"},
        "conformanceTargetLower": 1, "conformanceComparatorLower": "LE"}, headers=h), 201)
    t = await ok(await client.post(THRESHOLD, json={"@type": "Threshold", "name": "floor", "thresholdRule": [
        {"id": low["id"], "@type": "ThresholdRuleRef"}]}, headers=h), 201)
    every = await ok(await client.post(JOB, json={
        "@type": "ThresholdJob", "granularity": "G_5MN",
        "performanceThreshold": {"id": t["id"], "@type": "ThresholdRef"},
        "monitoredObjectsCriteria": [{"monitoredObjectFilter": "*"}]}, headers=h), 201)

    r = await client.get(LIMITS, params={"objectId": "cell-2"}, headers=h)
    items = await ok(r)
    assert r.headers["X-Total-Count"] == "2" and r.headers["X-Result-Count"] == "2"
    high, floor = sorted(items, key=lambda i: i["thresholdRule"]["name"])
    assert high["indicator"] == w["kpi"]["name"] and high["measurement"] == {"id": w["kpi"]["id"]}
    assert high["upper"] == {"value": 200, "comparator": "GT"} and "lower" not in high
    assert (high["severity"], high["hysteresis"], high["toleranceSeconds"], high["gracePeriods"]) == (
        "major", 20, 600, 2)
    assert high["thresholdJob"]["id"] == w["job"]["id"] and high["threshold"]["id"] == w["threshold"]["id"]
    assert floor["lower"] == {"value": 1, "comparator": "LE"} and "upper" not in floor
    assert floor["thresholdJob"]["id"] == every["id"]

    # an object outside the first job sees only the one watching every object; a locked job is not watched
    only = await ok(await client.get(LIMITS, params={"objectId": "cell-9"}, headers=h))
    assert [i["thresholdRule"]["id"] for i in only] == [low["id"]]
    await ok(await client.patch(f"{JOB}/{every['id']}", json={"adminState": "LOCKED"}, headers=h))
    assert await ok(await client.get(LIMITS, params={"objectId": "cell-9"}, headers=h)) == []

    # one KPI's, and pages
    assert await ok(await client.get(LIMITS, params={"objectId": "cell-1", "indicator": "other"}, headers=h)) == []
    r = await client.get(LIMITS, params={"objectId": "cell-1", "offset": 1, "limit": 1}, headers=h)
    assert await ok(r) == [] and r.headers["X-Total-Count"] == "1"

    # unhappy paths: no object, a bad page, a customer or a role without assurance:read
    assert (await client.get(LIMITS, headers=h)).status_code in (400, 422)
    assert (await client.get(LIMITS, params={"objectId": "cell-1", "limit": 0}, headers=h)).status_code in (400, 422)
    assert (await client.get(LIMITS, params={"objectId": "cell-1"},
                             headers=bearer(tenant, "billing_ops"))).status_code == 403


async def test_sla_evaluations_per_sla_and_period(client: httpx.AsyncClient, rt: Any, services: Any,
                                                  tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    assert await ok(await client.get(EVALUATIONS, headers=h)) == []
    w = await world(client, rt, services, tenant, [("2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z")])
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"]), headers=h), 201)
    other = await ok(await client.post(SLA, json=sla_body(w["offering"], name="Other"), headers=h), 201)
    for start in ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"):
        await ok(await client.post(f"{SLA}/{sla['id']}/evaluate", json={"periodStart": start}, headers=h))
    await ok(await client.post(f"{SLA}/{other['id']}/evaluate", json={"periodStart": "2026-11-01T00:00:00Z"},
                               headers=h))

    r = await client.get(EVALUATIONS, params={"sla": sla["id"]}, headers=h)
    items = await ok(r)
    assert r.headers["X-Total-Count"] == "2"
    assert [i["period"]["startDateTime"] for i in items] == ["2026-11-01T00:00:00.000Z", "2026-10-01T00:00:00.000Z"]
    assert [bool(i["violated"]) for i in items] == [True, False]
    assert items[0]["sla"] == {"id": sla["id"], "name": sla["name"], "version": 1} and items[0]["product"] == {
        "id": w["product"]["id"]}

    november = await ok(await client.get(EVALUATIONS, params={"period": "2026-11-01"}, headers=h))
    assert sorted(i["sla"]["id"] for i in november) == sorted([sla["id"], other["id"]])
    same = await ok(await client.get(EVALUATIONS, params={"period": "2026-11-01T01:00:00+01:00"}, headers=h))
    assert [i["id"] for i in same] == [i["id"] for i in november]
    violated = await ok(await client.get(EVALUATIONS, params={"sla": sla["id"], "violated": "true"}, headers=h))
    assert [i["period"]["startDateTime"] for i in violated] == ["2026-11-01T00:00:00.000Z"]
    r = await client.get(EVALUATIONS, params={"offset": 1, "limit": 1}, headers=h)
    assert len(await ok(r)) == 1 and r.headers["X-Total-Count"] == "3" and r.headers["X-Result-Count"] == "1"

    # unhappy paths: a period that is not a date, a time without zone, a bad page, no assurance:read
    for bad in ("November", "2026-11-01T00:00:00"):
        r = await client.get(EVALUATIONS, params={"period": bad}, headers=h)
        assert r.status_code == 400 and "'period'" in r.json()["message"], r.text
    assert (await client.get(EVALUATIONS, params={"limit": 100_000}, headers=h)).status_code in (400, 422)
    assert (await client.get(EVALUATIONS, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert await ok(await client.get(EVALUATIONS, params={"sla": "nope"}, headers=h)) == []

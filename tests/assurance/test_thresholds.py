"""TMF649 thresholds: rules (upper/lower limits, allowed crossings within a tolerance window, hysteresis),
thresholds and threshold jobs, validated against the v5 specification; a crossing raises a TMF642 alarm carrying
``crossedThresholdInformation`` and the value back within limits (by the hysteresis) clears it."""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft4Validator

from tests.assurance.helpers import ALARM, TMF642, ok
from tests.assurance.test_performance import PUSH, indicator, m
from tests.conftest import bearer
from tests.customer.helpers import assert_valid

BASE = "/tmf-api/performanceThresholding/v5"
RULE, THRESHOLD, JOB = f"{BASE}/thresholdRule", f"{BASE}/threshold", f"{BASE}/thresholdJob"
SPEC = "TMF649-Performance_Thresholding-v5.0.0.oas.yaml"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "tmf"
if not (SHARED / SPEC).exists():
    SHARED = Path(__file__).resolve().parents[2] / "src" / "openbss" / "platform" / "tmf" / "specs"


@cache
def _schemas() -> dict[str, Any]:
    return yaml.safe_load((SHARED / SPEC).read_text())["components"]["schemas"]  # type: ignore[no-any-return]


def assert_v5(definition: str, doc: dict[str, Any]) -> None:
    """The document validates against the published TMF649 schema (OpenAPI 3 schemas, draft 4 semantics)."""
    validator = Draft4Validator({"components": {"schemas": _schemas()}, "$ref": f"#/components/schemas/{definition}"})
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:5]


async def setup(client: httpx.AsyncClient, h: dict[str, str], objects: str = "cell-1", **rule: Any
                ) -> dict[str, Any]:
    kpi = await indicator(client, h, indicatorUnit="ms", indicatorType="float")
    body = {"@type": "SimpleThresholdRule", "name": "latency high", "condition": "Raise", "severity": "MAJOR",
            "measurement": {"id": kpi["id"], "@type": "PerformanceMeasurementRef"},
            "conformanceTargetUpper": 200, "conformanceComparatorUpper": "GT", **rule}
    r = await ok(await client.post(RULE, json=body, headers=h), 201)
    assert_v5("ThresholdRule_RES", r)
    t = await ok(await client.post(THRESHOLD, json={"@type": "Threshold", "name": "latency", "thresholdRule": [
        {"id": r["id"], "@type": "ThresholdRuleRef"}]}, headers=h), 201)
    assert_v5("Threshold_RES", t)
    j = await ok(await client.post(JOB, json={"@type": "ThresholdJob", "granularity": "G_5MN",
                                              "performanceThreshold": {"id": t["id"], "@type": "ThresholdRef"},
                                              "monitoredObjectsCriteria": [{"monitoredObjectFilter": objects}]},
                                   headers=h), 201)
    assert_v5("ThresholdJob_RES", j)
    assert j["executionState"] == "Active" and j["adminState"] == "UNLOCKED"
    return {"kpi": kpi, "rule": r, "threshold": t, "job": j}


async def alarms(client: httpx.AsyncClient, h: dict[str, str], obj: str) -> list[dict[str, Any]]:
    found = await ok(await client.get(ALARM, params={"alarmedObject.id": obj}, headers=h))
    return sorted(found, key=lambda a: a["alarmRaisedTime"])


async def push(client: httpx.AsyncClient, h: dict[str, str], kpi: str, obj: str, *points: tuple[str, Any]) -> None:
    await ok(await client.post(PUSH, json={"measurement": [m(obj, kpi, t, v) for t, v in points]}, headers=h))


async def test_a_crossing_raises_an_alarm_and_hysteresis_holds_its_clear(client: httpx.AsyncClient,
                                                                         tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    s = await setup(client, h, hysteresis=20)
    assert s["rule"]["@type"] == "OpenBSSSimpleThresholdRule" and s["rule"]["@baseType"] == "SimpleThresholdRule"
    kpi = s["kpi"]["name"]
    await push(client, h, kpi, "cell-1", ("2026-11-22T10:00:00Z", 150))
    assert await alarms(client, h, "cell-1") == []
    await push(client, h, kpi, "cell-1", ("2026-11-22T10:05:00Z", 250))
    [a] = await alarms(client, h, "cell-1")
    assert_valid(TMF642, "Alarm", a)
    assert a["state"] == "raised" and a["perceivedSeverity"] == "major" and a["probableCause"] == "thresholdCrossed"
    info = a["crossedThresholdInformation"]
    assert info["direction"] == "up" and info["observedValue"] == "250" and info["indicatorName"] == kpi
    assert info["indicatorUnit"] == "ms" and info["threshold"]["id"] == s["threshold"]["id"]
    assert info["granularity"] == "G_5MN"
    # 190 is back under 200 but not by the hysteresis (20): the alarm holds; a new crossing raises nothing more
    await push(client, h, kpi, "cell-1", ("2026-11-22T10:10:00Z", 190), ("2026-11-22T10:15:00Z", 230))
    [a] = await alarms(client, h, "cell-1")
    assert a["state"] == "raised"
    await push(client, h, kpi, "cell-1", ("2026-11-22T10:20:00Z", 175))
    [a] = await alarms(client, h, "cell-1")
    assert a["state"] == "cleared" and a["alarmClearedTime"] == "2026-11-22T10:20:00.000Z"
    # the next crossing is a new alarm
    await push(client, h, kpi, "cell-1", ("2026-11-22T10:25:00Z", 201))
    assert [x["state"] for x in await alarms(client, h, "cell-1")] == ["cleared", "raised"]
    # an object the job does not watch raises nothing
    await push(client, h, kpi, "cell-2", ("2026-11-22T10:25:00Z", 900))
    assert await alarms(client, h, "cell-2") == []


async def test_allowed_crossings_within_the_tolerance_window(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    s = await setup(client, h, objects="olt-1, olt-2", gracePeriods=2, toleranceSeconds=600)
    kpi = s["kpi"]["name"]
    # two crossings allowed in 10 minutes: the third within the window raises
    await push(client, h, kpi, "olt-1", ("2026-11-22T11:00:00Z", 300), ("2026-11-22T11:05:00Z", 300))
    assert await alarms(client, h, "olt-1") == []
    # 11:20: the earlier crossings left the window; 11:20, 11:22 are two, still allowed
    await push(client, h, kpi, "olt-1", ("2026-11-22T11:20:00Z", 300), ("2026-11-22T11:22:00Z", 300))
    assert await alarms(client, h, "olt-1") == []
    await push(client, h, kpi, "olt-1", ("2026-11-22T11:24:00Z", 300))
    [a] = await alarms(client, h, "olt-1")
    assert a["alarmRaisedTime"] == "2026-11-22T11:24:00.000Z"
    # olt-2 (second in the filter) is watched too; values in limits never raise
    await push(client, h, kpi, "olt-2", *[(f"2026-11-22T11:{i:02d}:00Z", 200) for i in range(10)])
    assert await alarms(client, h, "olt-2") == []


async def test_a_lower_limit_and_a_locked_job(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    s = await setup(client, h, objects="*", conformanceTargetUpper=None, conformanceComparatorUpper=None,
                    conformanceTargetLower=10, conformanceComparatorLower="LT", severity="critical")
    kpi = s["kpi"]["name"]
    await push(client, h, kpi, "bts-9", ("2026-11-22T12:00:00Z", 4))
    [a] = await alarms(client, h, "bts-9")
    assert a["crossedThresholdInformation"]["direction"] == "down" and a["perceivedSeverity"] == "critical"
    await push(client, h, kpi, "bts-9", ("2026-11-22T12:05:00Z", 10))
    assert (await alarms(client, h, "bts-9"))[0]["state"] == "cleared"
    locked = await ok(await client.patch(f"{JOB}/{s['job']['id']}", json={"adminState": "LOCKED"}, headers=h))
    assert locked["executionState"] == "Suspended"
    assert_v5("ThresholdJob_RES", locked)
    await push(client, h, kpi, "bts-9", ("2026-11-22T12:10:00Z", 1))
    assert len(await alarms(client, h, "bts-9")) == 1


async def test_bad_threshold_definitions_are_refused(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    kpi = await indicator(client, h)
    good = {"@type": "SimpleThresholdRule", "name": "r", "condition": "Raise", "severity": "MINOR",
            "measurement": {"id": kpi["id"], "@type": "PerformanceMeasurementRef"}, "conformanceTargetUpper": 5}
    for body, needle in [
        ({**good, "condition": "Clear"}, "condition"),
        ({**good, "severity": "apocalyptic"}, "severity"),
        ({**good, "measurement": {"id": "ghost", "@type": "PerformanceMeasurementRef"}}, "ghost"),
        ({k: v for k, v in good.items() if k != "conformanceTargetUpper"}, "limit"),
        ({**good, "conformanceTargetLower": 9}, "conformanceTargetLower"),
        ({**good, "conformanceTargetLower": 1, "hysteresis": 3}, "hysteresis"),
        ({**good, "conformanceComparatorUpper": "EQ"}, "conformanceComparatorUpper"),
        ({**good, "gracePeriods": -1}, "gracePeriods"),
        ({**good, "@type": "AlgorithmThresholdRule"}, "algorithmRef"),
        ({k: v for k, v in good.items() if k != "name"}, "name"),
    ]:
        r = await client.post(RULE, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], (needle, r.text)
    assert (await client.get(RULE, headers=h)).headers["X-Total-Count"] == "0"
    r = await client.post(THRESHOLD, json={"@type": "Threshold", "name": "t", "thresholdRule": [
        {"id": "nope", "@type": "ThresholdRuleRef"}]}, headers=h)
    assert r.status_code == 400 and "nope" in r.json()["message"]
    r = await client.post(JOB, json={"@type": "ThresholdJob", "granularity": "G_5MN", "performanceThreshold": {
        "id": "nope", "@type": "ThresholdRef"}, "monitoredObjectsCriteria": [{"monitoredObjectFilter": "x"}]},
        headers=h)
    assert r.status_code == 400 and "performanceThreshold" in r.json()["message"]
    assert (await client.post(RULE, json=good, headers=bearer(tenant, "csr_agent"))).status_code == 403


async def test_concurrent_crossings_raise_one_alarm_and_in_use_definitions_stay(client: httpx.AsyncClient,
                                                                               tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    s = await setup(client, h, objects="agg-9")
    kpi = s["kpi"]["name"]
    results = await asyncio.gather(*[client.post(PUSH, json={"measurement": [
        m("agg-9", kpi, f"2026-11-23T10:{i:02d}:00Z", 500)]}, headers=h) for i in range(6)])
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    [a] = await alarms(client, h, "agg-9")
    assert a["state"] == "raised"
    # what a job or a threshold uses cannot be deleted from under it
    for url in (f"{RULE}/{s['rule']['id']}", f"{THRESHOLD}/{s['threshold']['id']}",
                f"/tmf-api/performance/v4/performanceIndicatorSpecification/{s['kpi']['id']}"):
        r = await client.delete(url, headers=h)
        assert r.status_code == 409, r.text
    assert (await client.delete(f"{JOB}/{s['job']['id']}", headers=h)).status_code == 204
    assert (await client.delete(f"{THRESHOLD}/{s['threshold']['id']}", headers=h)).status_code == 204


ALGORITHM = "urn:openbss:threshold-algorithm:expression"


def params(**values: Any) -> list[dict[str, Any]]:
    kinds = {str: "StringCharacteristic", int: "IntegerCharacteristic", float: "NumberCharacteristic"}
    return [{"name": k, "@type": kinds[type(v)], "value": v} for k, v in values.items()]


async def test_an_algorithm_rule_watches_a_ratio_of_two_kpis(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    errors = (await indicator(client, h, indicatorUnit="packets"))["name"]
    packets = (await indicator(client, h, indicatorUnit="packets"))["name"]
    expression = f"{{{errors}}} / {{{packets}}} * 100"
    rule = await ok(await client.post(RULE, json={
        "@type": "AlgorithmThresholdRule", "name": "error ratio", "condition": "Raise", "severity": "MINOR",
        "algorithmRef": ALGORITHM, "algorithmParams": params(
            expression=expression, conformanceTargetUpper=5, hysteresis=1, gracePeriods=1, toleranceSeconds=900)},
        headers=h), 201)
    assert_v5("AlgorithmThresholdRule", rule)
    assert_v5("ThresholdRule_RES", rule)
    assert rule["@type"] == "AlgorithmThresholdRule" and "measurement" not in rule
    assert {"name": "conformanceComparatorUpper", "@type": "StringCharacteristic", "value": "GT"} in rule[
        "algorithmParams"]
    t = await ok(await client.post(THRESHOLD, json={"@type": "Threshold", "name": "errors", "thresholdRule": [
        {"id": rule["id"], "@type": "ThresholdRuleRef"}]}, headers=h), 201)
    await ok(await client.post(JOB, json={"@type": "ThresholdJob", "granularity": "G_5MN",
                                          "performanceThreshold": {"id": t["id"], "@type": "ThresholdRef"},
                                          "monitoredObjectsCriteria": [{"monitoredObjectFilter": "port-1"}]},
                               headers=h), 201)

    # 10:00 — 2% (within); 10:05 — 8%, the first crossing, allowed; the two KPIs may arrive apart
    await push(client, h, errors, "port-1", ("2026-11-22T10:00:00Z", 2), ("2026-11-22T10:05:00Z", 8))
    await push(client, h, packets, "port-1", ("2026-11-22T10:00:00Z", 100))
    assert await alarms(client, h, "port-1") == []
    await push(client, h, packets, "port-1", ("2026-11-22T10:05:00Z", 100))
    assert await alarms(client, h, "port-1") == []
    # 10:10 — 10% in one batch, the second crossing within 15 minutes: raised; a zero divisor is no value
    await push(client, h, errors, "port-1", ("2026-11-22T10:10:00Z", 20), ("2026-11-22T10:15:00Z", 3))
    await push(client, h, packets, "port-1", ("2026-11-22T10:10:00Z", 200), ("2026-11-22T10:15:00Z", 0))
    [a] = await alarms(client, h, "port-1")
    assert_valid(TMF642, "Alarm", a)
    assert a["state"] == "raised" and a["perceivedSeverity"] == "minor"
    assert a["alarmRaisedTime"] == "2026-11-22T10:10:00.000Z"
    info = a["crossedThresholdInformation"]
    assert info["indicatorName"] == expression and info["direction"] == "up"
    assert info["observedValue"] == "10.000000" and info["threshold"]["id"] == t["id"]
    # 4.5% is under 5 but not by the hysteresis (1): holds; 3.9% clears
    await push(client, h, errors, "port-1", ("2026-11-22T10:20:00Z", 9), ("2026-11-22T10:25:00Z", 39))
    await push(client, h, packets, "port-1", ("2026-11-22T10:20:00Z", 200))
    assert [x["state"] for x in await alarms(client, h, "port-1")] == ["raised"]
    await push(client, h, packets, "port-1", ("2026-11-22T10:25:00Z", 1000))
    [a] = await alarms(client, h, "port-1")
    assert a["state"] == "cleared" and a["alarmClearedTime"] == "2026-11-22T10:25:00.000Z"


async def test_bad_algorithm_rules_are_refused(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    kpi = (await indicator(client, h))["name"]
    base = {"@type": "AlgorithmThresholdRule", "name": "r", "condition": "Raise", "severity": "MAJOR",
            "algorithmRef": ALGORITHM}
    for body, needle in (
            ({**base, "algorithmRef": "https://example.com/algo"}, "algorithmRef"),
            ({**base, "algorithmParams": params(conformanceTargetUpper=5)}, "expression"),
            ({**base, "algorithmParams": params(expression="{nope} / 2", conformanceTargetUpper=5)}, "nope"),
            ({**base, "algorithmParams": params(expression=f"{{{kpi}}} ** 2", conformanceTargetUpper=5)},
             "+ - * /"),
            ({**base, "algorithmParams": params(expression="__import__('os')", conformanceTargetUpper=5)},
             "expression"),
            ({**base, "algorithmParams": params(expression="2 * 3", conformanceTargetUpper=5)}, "names no KPI"),
            ({**base, "algorithmParams": params(expression=f"{{{kpi}}}")}, "upper"),
            ({**base, "algorithmParams": params(expression=f"{{{kpi}}}", conformanceTargetUpper=5, weight=2)},
             "weight"),
            ({**base, "conformanceTargetUpper": 5, "algorithmParams": params(expression=f"{{{kpi}}}")},
             "conformanceTargetUpper"),
            ({**base, "algorithmParams": params(expression=f"{{{kpi}}}", conformanceTargetUpper=5,
                                                conformanceComparatorUpper="LT")}, "GT or GE"),
            ({**base, "algorithmParams": [{"name": "expression", "@type": "IntegerCharacteristic",
                                           "value": f"{{{kpi}}}"}, *params(conformanceTargetUpper=5)]}, "@type")):
        r = await client.post(RULE, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], (needle, r.text)
    assert (await client.get(RULE, headers=h)).headers["X-Total-Count"] == "0"

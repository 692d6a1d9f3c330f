"""Every filter of every TMF API answers the right rows: a walk over each API's resources and each filterable
first-level attribute of their specification (and each declared searchable one), against a tenant filled with the
demo data and with resources created through the API.

The oracle is the TMF630 semantics evaluated in Python over the full list (``Filter.matches``, the one the
notification hubs use), with the normalization of sealed attributes (blind-index digests match after it). An
attribute the server cannot filter on must be refused with 400 naming it — never a silently wrong list.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_tenant, session_services

SIMPLE = ("string", "datetime", "boolean", "integer", "number")
MAX_VALUES = 3


def _resources() -> list[tuple[Any, Any]]:
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    return [(api, r) for api in tmf_apis(get_settings()) for r in api.resources if "list" in r.operations]


def _filterable_paths(api: Any, resource: Any, index: Any) -> dict[str, Any]:
    """Path -> attribute type of what a client filters on: every first-level scalar of the specification, the id
    of every first-level reference, the resource's extension attributes and its declared searchable paths."""
    spec = api.spec
    definition = resource.read_definition or resource.type
    props, _ = spec._properties(spec.definitions[definition])
    out: dict[str, Any] = {}
    for name in props:
        attr = spec.attribute(definition, name)
        if attr is None:
            continue
        if attr.kind in SIMPLE:
            out[name] = attr
        elif (ref := spec.attribute(definition, f"{name}.id")) is not None and ref.kind == "string":
            out[f"{name}.id"] = ref
    for path, attr in resource.extra_attributes.items():
        out.setdefault(path, attr)
    for path in [*index.attributes, *index.columns]:
        out.setdefault(path, resource.extra_attributes.get(path) or spec.attribute(definition, path))
    return out


def _raw(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _populate(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    """The demo data, then through the API the resources the demo does not create."""
    from openbss.demo.care import seed_care
    from openbss.demo.catalog import demo_tariff
    from openbss.demo.charging import seed_charging
    from openbss.demo.customers import seed_customers
    from openbss.demo.orders import seed_orders

    services = session_services()
    await seed_customers(services, rt.db, tenant, "http://testserver")
    await seed_orders(services, rt, tenant, "http://testserver")  # the demo catalog, orders, inventory
    await seed_charging(services, rt.db, tenant, "http://testserver")
    await seed_care(services, rt.db, tenant, "http://testserver")  # tickets in every status, interactions
    h = bearer(tenant, "admin")

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await client.post(path, json=body, headers=h)
        assert r.status_code == 201, (path, r.text)
        return r.json()  # type: ignore[no-any-return]

    acc = "/tmf-api/accountManagement/v4"
    customers = (await client.get("/tmf-api/customerManagement/v4/customer", headers=h)).json()
    for i, c in enumerate(customers[:2]):
        rp = [{"id": c["id"], "@referredType": "Customer", "name": c["name"], "role": "customer"}]
        await post(f"{acc}/partyAccount", {"name": f"Party account {i}", "relatedParty": rp, "accountType": "x"})
        await post(f"{acc}/settlementAccount", {"name": f"Settlement {i}", "relatedParty": rp})
        await post(f"{acc}/financialAccount", {"name": f"Financial {i}", "relatedParty": rp})
        await post(f"{acc}/billFormat", {"name": f"Format {i}", "description": "PDF"})
        await post(f"{acc}/billPresentationMedia", {"name": ("email", "paper")[i]})
        await post(f"{acc}/billingCycleSpecification", {"name": f"Cycle {i}", "billingDateShift": i,
                                                         "frequency": "monthly" if i else "quarterly"})
        await post("/tmf-api/partyRoleManagement/v4/partyRole", {
            "name": f"reseller {i}", "engagedParty": c["engagedParty"],
            "contactMedium": [{"mediumType": "email",
                               "characteristic": {"emailAddress": f"role{i}@example.com"}}]})
        await post("/tmf-api/shoppingCart/v4/shoppingCart", {"relatedParty": [
            {"id": c["engagedParty"]["id"], "role": "customer", "@referredType": "Individual"}]})
    tmf620 = "/tmf-api/productCatalogManagement/v4"
    for i in range(2):
        await post(f"{tmf620}/exportJob", {})
        await post(f"{tmf620}/importJob", {"url": f"data:application/json,%7B%22a%22%3A{i}%7D"})
        await post("/api/catalog/v1/tariff", {**demo_tariff(), "name": f"Voice {i}", "lifecycleStatus": "In design"})
        await post("/tmf-api/usageManagement/v4/usageSpecification", {
            "name": f"wholesale{i}", "description": f"Wholesale usage {i}", "version": f"{i + 1}.0",
            "isBundle": bool(i), "lifecycleStatus": ("Active", "In design")[i]})
    po = "/tmf-api/productOrderingManagement/v4/productOrder"
    template = (await client.get(po, params={"state": "completed"}, headers=h)).json()[0]
    for i in range(2):
        order = await post(po, {
            "billingAccount": {"id": template["billingAccount"]["id"]}, "relatedParty": template["relatedParty"],
            "channel": [{"id": "web"}], "externalId": f"walk-{i}",
            "productOrderItem": [{"id": item["id"], "action": "add",
                                  "productOffering": {"id": item["productOffering"]["id"]},
                                  "product": {"productCharacteristic": item["product"].get(
                                      "productCharacteristic", [])}}
                                 for item in template["productOrderItem"]]})
        r = await client.patch(f"{po}/{order['id']}", json={"state": "held"}, headers=h)
        assert r.status_code == 200, r.text
        await post("/tmf-api/productOrderingManagement/v4/cancelProductOrder", {
            "productOrder": {"id": order["id"]}, "cancellationReason": f"reason {i}"})
    # bills of the demo's accounts (one and two months ahead: their products charged), and bills on demand
    from datetime import timedelta

    from openbss.platform.db import utcnow
    from openbss.platform.tmf.resource import system_context

    for days in (35, 70):
        async with rt.db.transaction(tenant) as session:
            report = await services.billing.service.run(system_context(tenant, session, "http://testserver"),
                                                        (utcnow() + timedelta(days=days)).date(), finalize=True)
        assert report.billed >= 1, report.as_dict()
    accounts = (await client.get(f"{acc}/billingAccount", headers=h)).json()
    for account in accounts[:2]:
        await post("/tmf-api/customerBillManagement/v4/customerBillOnDemand",
                   {"billingAccount": {"id": account["id"]}, "name": f"preview {account['id']}"})
    for i, account in enumerate(accounts[:2]):  # payment methods, payments (credit: no bill named) and a refund
        method = await post("/tmf-api/paymentMethod/v4/paymentMethod", {
            "@type": ("cash", "tokenizedCard")[i], "name": f"method {i}", "account": [{"id": account["id"]}],
            **({"token": "tok_instant", "brand": "visa", "lastFourDigits": "4242",
                "expirationDate": "2031-01-01T00:00:00Z"} if i else {})})
        payment = await post("/tmf-api/paymentManagement/v4/payment", {
            "account": {"id": account["id"]}, "paymentMethod": {"id": method["id"]}, "channel": {"id": "shop"},
            "totalAmount": {"unit": "EUR", "value": 100000 + i}, "description": f"payment {i}"})
        await post("/tmf-api/paymentManagement/v4/refund", {
            "account": {"id": account["id"]}, "paymentMethod": {"id": method["id"]},
            "payment": {"id": payment["id"]}, "totalAmount": {"unit": "EUR", "value": 1 + i}})
    # collections: two policies, episodes of the accounts (bills made overdue), promises, plans, exclusions
    from decimal import Decimal

    from openbss.payments.models import Receivable

    coll = "/api/collections/v1"
    for i in range(2):
        await post(f"{coll}/dunningPolicy", {"name": f"policy {i}", "isDefault": i == 0,
                                             **({} if i == 0 else {"segment": "sme"}),
                                             "dunningStep": [{"action": "suspend", "daysPastDue": 30 + i}]})
    for i, account in enumerate(accounts[:2]):
        async with rt.db.transaction(tenant) as session:
            session.add(Receivable(bill_id=f"walk-bill-{i}", billing_account_id=account["id"], number=None,
                                   bill_date=utcnow().date() - timedelta(days=20 + i),
                                   due_date=utcnow().date() - timedelta(days=5 + i), currency="EUR",
                                   amount=Decimal(500000 + i)))
    await services.collections.service.run_tenant(tenant)
    for i, account in enumerate(accounts[:2]):
        await post(f"{coll}/promiseToPay", {"billingAccount": {"id": account["id"]}, "note": f"promise {i}",
                                            "amount": {"unit": "EUR", "value": 10 + i},
                                            "promisedDate": (utcnow() + timedelta(days=3 + i)).date().isoformat()})
        await post(f"{coll}/paymentPlan", {"billingAccount": {"id": account["id"]}, "note": f"plan {i}",
                                           "instalment": [{"dueDate": (utcnow() + timedelta(days=d + i)).date()
                                                           .isoformat(), "amount": {"unit": "EUR", "value": 5}}
                                                          for d in (10, 40)]})
        await post(f"{coll}/dunningExclusion", {"billingAccount": {"id": account["id"]},
                                                "reason": ("vip", "dispute")[i], "note": f"exclusion {i}",
                                                **({"validUntil": "2031-01-01"} if i else {})})
    tmf654 = "/tmf-api/prepayBalanceManagement/v4"
    buckets = (await client.get(f"{tmf654}/bucket", params={"usageType": "monetary"}, headers=h)).json()
    for i, b in enumerate(buckets[:2]):
        common = {"bucket": {"id": b["id"]}, "usageType": "monetary", "partyAccount": b["partyAccount"]}
        money = {"amount": 5, "units": b["remainingValue"]["units"]}
        await post(f"{tmf654}/topupBalance", {**common, "amount": money, "channel": {"id": ("web", "app")[i]},
                                              "reason": "promotion"})
        await post(f"{tmf654}/adjustBalance", {"bucket": common["bucket"], "usageType": "monetary", "amount": money,
                                               "adjustType": "oneTime", "reason": f"goodwill {i}"})
        await post(f"{tmf654}/reserveBalance", {**common, "amount": money})
        if len(buckets) >= 2:
            await post(f"{tmf654}/transferBalance", {
                "bucket": common["bucket"], "usageType": "monetary", "receiverBucket": {"id": buckets[1 - i]["id"]},
                "receiverBucketUsageType": "monetary", "reason": "gift", "channel": {"id": "app"},
                "logicalResource": b["logicalResource"],
                "receiverLogicalResource": buckets[1 - i]["logicalResource"][0],
                "amount": {"amount": 1, "units": b["remainingValue"]["units"]}})
    tmf642 = "/tmf-api/alarm/v4"
    for i, (severity, cause) in enumerate((("critical", "lossOfSignal"), ("minor", "fanFailure"),
                                          ("major", "powerProblem"))):
        await post(f"{tmf642}/alarm", {
            "alarmType": ("communicationsAlarm", "equipmentAlarm")[i % 2], "perceivedSeverity": severity,
            "probableCause": cause, "specificProblem": f"problem {i}", "alarmedObject": {"id": f"ne-{i % 2}"},
            "sourceSystemId": f"ems-{i}", "state": "raised", "alarmRaisedTime": f"2026-12-0{i + 1}T10:00:00Z",
            "serviceAffecting": bool(i % 2), "alarmDetails": f"details {i}"})
    for i in range(2):
        pattern = [{"alarmedObject": {"id": f"ne-{i}"}}]
        await post(f"{tmf642}/ackAlarms", {"ackSystemId": f"noc-{i}", "ackUserId": f"u{i}", "alarmPattern": pattern})
        await post(f"{tmf642}/unAckAlarms", {"ackSystemId": f"noc-{i}", "ackUserId": f"u{i}",
                                              "alarmPattern": pattern})
        await post(f"{tmf642}/commentAlarms", {"comment": {"comment": f"c{i}"}, "alarmPattern": pattern})
    for i in range(2):
        await post(f"{tmf642}/clearAlarms", {"clearSystemId": f"noc-{i}", "clearUserId": f"u{i}",
                                              "alarmClearedTime": f"2026-12-0{i + 4}T10:00:00Z",
                                              "alarmPattern": [{"probableCause": ("fanFailure", "nothing")[i]}]})
    tmf656 = "/tmf-api/serviceProblemManagement/v4"
    for i in range(3):
        await post(f"{tmf656}/serviceProblem", {
            "category": ("serviceProvider.declarer", "system.originated")[i % 2], "priority": i + 1,
            "description": f"problem {i}", "reason": f"reason {i}", "name": f"Problem {i}",
            "originatorParty": {"id": f"noc-{i}", "@referredType": "Individual"},
            "affectedService": [{"id": f"svc-{i % 2}"}], "impactImportanceFactor": f"{i}"})
    declared = (await client.get(f"{tmf656}/serviceProblem", headers=h)).json()
    for i in range(2):
        refs = [{"id": declared[i]["id"]}]
        await post(f"{tmf656}/problemAcknowledgement", {"problem": refs})
        await post(f"{tmf656}/problemUnacknowledgement", {"problem": refs})
        await post(f"{tmf656}/problemGroup", {"parentProblem": {"id": declared[2]["id"]}, "childProblem": refs})
        await post(f"{tmf656}/problemUngroup", {"parentProblem": {"id": declared[2]["id"]}, "childProblem": refs})
    pm, thr = "/tmf-api/performance/v4", "/tmf-api/performanceThresholding/v5"
    for i in range(3):
        kpi = await post(f"{pm}/performanceIndicatorSpecification", {
            "name": f"kpi-{i}", "indicatorUnit": ("ms", "octets")[i % 2],
            "collectionType": ("gauge", "cumulative")[i % 2],
            "snmpOid": f"1.3.6.1.2.1.2.2.1.10.{i + 1}", "validFor": {"startDateTime": f"2026-12-0{i + 1}T00:00:00Z"}})
        await post(f"{pm}/performanceIndicatorGroupSpecification", {
            "name": f"group-{i}", "performanceIndicatorSpecification": [{"id": kpi["id"]}]})
        await post(f"{pm}/measurementCollectionJob", {
            "fileTransferData": [{"fileFormat": "json"}], "granularity": ("g_5mn", "g_15mn")[i % 2],
            "reportingPeriod": "r_1h", "jobPriority": i, "performanceIndicatorSpecification": [{"id": kpi["id"]}],
            "monitoredObject": {"id": f"ne-{i}"}})
        rule = await post(f"{thr}/thresholdRule", {
            "@type": "SimpleThresholdRule", "name": f"rule-{i}", "condition": "Raise",
            "severity": ("MAJOR", "MINOR")[i % 2],
            "measurement": {"id": kpi["id"], "@type": "PerformanceMeasurementRef"},
            "conformanceTargetUpper": 100 + i, "gracePeriods": i})
        threshold = await post(f"{thr}/threshold", {"@type": "Threshold", "name": f"threshold-{i}", "thresholdRule": [
            {"id": rule["id"], "@type": "ThresholdRuleRef"}]})
        await post(f"{thr}/thresholdJob", {
            "@type": "ThresholdJob", "granularity": ("G_5MN", "G_1H")[i % 2], "jobPriority": i,
            "performanceThreshold": {"id": threshold["id"], "@type": "ThresholdRef"},
            "adminState": ("UNLOCKED", "LOCKED")[i % 2],
            "monitoredObjectsCriteria": [{"monitoredObjectFilter": f"ne-{i}"}]})
        await post(f"{pm}/onDemandCollection", {
            "fileTransferData": [{"fileFormat": "json"}], "jobPriority": i, "adminState": ("unlocked", "locked")[i % 2],
            "performanceIndicatorSpecification": [{"id": kpi["id"]}], "monitoredObject": {"id": f"ne-{i}"},
            "snmpAgent": {"address": f"192.0.2.{i + 1}", "community": f"secret-{i}"}})


@pytest.fixture(scope="module")
async def walk_tenant(rt: Any, app: Any, services: Any) -> str:
    tenant = await make_tenant(rt, "walk")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await _populate(client, rt, tenant)
    # TMF628 tracking records are written by collections only: the on-demand ones above, read once (their agents
    # are unreachable documentation addresses: failed collections, each recorded)
    from datetime import UTC, datetime, timedelta

    collector = services.assurance.collector
    assert await collector.collect_due(rt.db, [tenant], now=datetime.now(UTC) + timedelta(seconds=1)) == 2
    return tenant


async def test_every_filter_of_every_api_answers_the_right_rows(client: httpx.AsyncClient, walk_tenant: str) -> None:
    from openbss.platform.tmf.query import Filter, coerce
    from openbss.platform.tmf.resource import DocumentStore
    from openbss.platform.tmf.search import values_at

    h = bearer(walk_tenant, "admin")
    problems: list[str] = []
    empty: list[str] = []
    checked = 0
    for api, resource in _resources():
        base = f"{api.base_path}/{resource.path}"
        r = await client.get(base, params={"limit": "1000"}, headers=h)
        assert r.status_code == 200, (base, r.text)
        docs = r.json()
        if len(docs) < 2:
            empty.append(base)
            continue
        index = DocumentStore(api, resource).index
        for path, attr in _filterable_paths(api, resource, index).items():
            indexed = index.attributes.get(path)
            seen: list[Any] = []
            for doc in docs:
                for v in values_at(doc, path.split(".")):
                    if isinstance(v, dict | list) or v in seen or ("," in _raw(v)):
                        continue
                    seen.append(v)
            if not seen:
                continue

            def expected(op: str, values: tuple[Any, ...], attr: Any = attr, path: str = path,
                         indexed: Any = indexed, docs: list[dict[str, Any]] = docs) -> set[str]:
                flt = Filter(path, op, values, attr)
                if indexed is not None and indexed.sealed:
                    wanted = {indexed.normalized(v) for v in values}
                    return {d["id"] for d in docs
                            if any(indexed.normalized(c) in wanted for c in values_at(d, path.split(".")))}
                return {d["id"] for d in docs if flt.matches(d)}

            async def check(params: dict[str, str], want: set[str] | None, base: str = base,
                            path: str = path) -> None:
                nonlocal checked
                checked += 1
                got = await client.get(base, params={**params, "limit": "1000"}, headers=h)
                if want is None:
                    if got.status_code != 400 or path not in got.json().get("message", ""):
                        problems.append(f"{base}?{params}: expected 400 naming '{path}', got {got.status_code}")
                    return
                if got.status_code != 200:
                    problems.append(f"{base}?{params}: {got.status_code} {got.text[:200]}")
                    return
                ids = {d["id"] for d in got.json()}
                if ids != want:
                    problems.append(f"{base}?{params}: {len(ids)} rows, expected {len(want)}")
                elif got.headers["x-total-count"] != str(len(want)):
                    problems.append(f"{base}?{params}: X-Total-Count {got.headers['x-total-count']}, "
                                    f"expected {len(want)}")

            first = await client.get(base, params={path: _raw(seen[0])}, headers=h)
            if first.status_code == 400:
                # refused: it must name the attribute, and be a filter the server truly cannot serve
                message = first.json().get("message", "")
                if path not in message or not ("encrypted" in message or "computed" in message):
                    problems.append(f"{base}?{path}=…: 400 {message}")
                continue
            for v in seen[:MAX_VALUES]:
                value = coerce(_raw(v), attr, path)
                await check({path: _raw(v)}, expected("eq", (value,)))
            if len(seen) >= 2:
                both = (coerce(_raw(seen[0]), attr, path), coerce(_raw(seen[1]), attr, path))
                await check({path: f"{_raw(seen[0])},{_raw(seen[1])}"}, expected("eq", both))
            if attr.kind in ("datetime", "integer", "number"):
                ordered = sorted(seen, key=lambda v: coerce(_raw(v), attr, path))
                pivot = ordered[len(ordered) // 2]
                value = coerce(_raw(pivot), attr, path)
                sealed = indexed is not None and indexed.sealed
                for op in ("gt", "gte", "lt", "lte"):
                    await check({f"{path}.{op}": _raw(pivot)}, None if sealed else expected(op, (value,)))
    assert not problems, "\n".join(problems[:40])
    assert not empty, f"no test data for {empty}"
    assert checked > 500, checked

"""Every change of every resource is audited. The walk goes over every resource of every TMF API the composition
root builds: where the API allows creating, updating or deleting it, it does so and finds the audit record; the
resources that only the system changes (products, services, service orders, the balance action history) are changed
the way the system does, through an order driven to completion and a top-up (pooled resources too). A resource type
that is neither walked nor listed below with its reason fails the test: a new resource cannot go unaudited
unnoticed."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from openbss.demo.catalog import demo_tariff
from openbss.demo.charging import FALLBACK_PLAN
from openbss.platform.db import utcnow
from openbss.platform.tmf.resource import system_context
from tests.customer.helpers import billing_account_body, make_individual
from tests.ordering.helpers import customer, mobile_order, run, setup_world

#: written by the credit-control path only, one row per request or usage: the ledger of what was consumed is its
#: own record (who, when, which session and request, how much); an audit row for each would double the writes of
#: the hottest path. Top-ups, adjustments, transfers and reservations of a bucket are audited (balance actions).
#: A bill's lines (TMF678 appliedCustomerBillingRate) are written with their bill, whose creation, recomputation and
#: finalization are audited; they never change once the bill is issued (a database trigger refuses it).
#: TMF656 service problem event records are the record of the problem's announced events, written with them (the
#: problem's changes themselves are audited).
LEDGER = {("prepayBalanceManagement", "bucket"), ("usageManagement", "usage"),
          ("customerBillManagement", "appliedCustomerBillingRate"),
          ("serviceProblemManagement", "serviceProblemEventRecord")}
#: changed by the system only (no create/update/delete through the API): walked through the changes that make them
SYSTEM_MADE = {("productInventory", "product"), ("serviceInventory", "service"), ("serviceOrdering", "serviceOrder"),
               ("prepayBalanceManagement", "balanceActionHistory"), ("performance", "trackingRecord"),
               ("customerBillManagement", "customerBill"), ("collections", "dunningEpisode")}
#: created through their own routes (a payment method by its TMF670 subtype; payments and refunds with their
#: Idempotency-Key and the gateway call), written by the kit's primitives: their audit trail is proven in
#: tests/payments/test_api.py
OWN_ROUTES = {("paymentMethod", "paymentMethod"), ("paymentManagement", "payment"),
              ("paymentManagement", "refund")}

Body = Callable[["World"], Awaitable[dict[str, Any]]]


class World:
    """A tenant with what the resources refer to: a party, a customer with an active billing account, the demo
    catalog and resource pools, two charging lines."""

    def __init__(self, client: httpx.AsyncClient, h: dict[str, str], tenant: str, rt: Any, services: Any) -> None:
        self.client, self.h, self.tenant, self.rt, self.services = client, h, tenant, rt, services
        self.party: dict[str, Any] = {}
        self.customer: dict[str, Any] = {}
        self.account: dict[str, Any] = {}
        self.offers: dict[str, Any] = {}
        self.buckets: list[str] = []
        self.party_accounts: list[dict[str, Any]] = []


def _export_document() -> str:
    doc = {"format": "openbss-catalog", "formatVersion": 1,
           "resources": {"category": [{"document": {"id": "c1", "name": "Imported", "lifecycleStatus": "In design"}}]}}
    return "data:application/json;base64," + base64.b64encode(json.dumps(doc).encode()).decode()


def _static(body: dict[str, Any]) -> Body:
    async def make(w: World) -> dict[str, Any]:
        return dict(body)

    return make


async def _party_ref(w: World) -> dict[str, Any]:
    return {"id": w.party["id"], "@referredType": "Individual", "name": "Audit Walk"}


async def _role(w: World) -> dict[str, Any]:
    return {"name": "reseller", "engagedParty": await _party_ref(w)}


async def _customer(w: World) -> dict[str, Any]:
    return {"name": "Audit Walk", "engagedParty": {"id": w.party["id"], "@referredType": "Individual"}}


async def _billing_account(w: World) -> dict[str, Any]:
    return billing_account_body(w.customer)


def _owned(name: str) -> Body:
    async def make(w: World) -> dict[str, Any]:
        return {"name": name, "relatedParty": [{"id": w.customer["id"], "@referredType": "Customer",
                                                "name": w.customer["name"]}]}

    return make


async def _cart(w: World) -> dict[str, Any]:
    return {"relatedParty": [{"id": w.customer["id"], "@referredType": "Customer", "role": "customer"}],
            "cartItem": [{"id": "1", "productOffering": {"id": w.offers["Mobile M"]["id"]}}]}


async def _order(w: World) -> dict[str, Any]:
    return mobile_order({"customer": w.customer, "account": w.account}, w.offers["Mobile M"])


async def _cancellation(w: World) -> dict[str, Any]:
    r = await w.client.post("/tmf-api/productOrderingManagement/v4/productOrder", json=await _order(w), headers=w.h)
    assert r.status_code == 201, r.text
    return {"productOrder": {"id": r.json()["id"]}, "cancellationReason": "audit walk"}


def _balance(path: str) -> Body:
    async def make(w: World) -> dict[str, Any]:
        body: dict[str, Any] = {"amount": {"amount": 1, "units": "EUR"}, "usageType": "monetary",
                                "bucket": {"id": w.buckets[0]}, "partyAccount": w.party_accounts[0]}
        if path == "transferBalance":
            body |= _transfer_parties()
            body |= {"receiverBucket": {"id": w.buckets[1]}, "receiverBucketUsageType": "monetary"}
            body.pop("partyAccount")
        if path == "adjustBalance":
            body["adjustType"] = "oneTime"
            body.pop("partyAccount")
        return body

    return make


def _transfer_parties() -> dict[str, Any]:
    return {"reason": "gift", "channel": {"id": "app"}, "logicalResource": [{"id": "+33690000001"}],
            "receiverLogicalResource": {"id": "+33690000002"}}


#: an applied balance action is cancelled (reversed), after which it can be deleted
CANCEL = {"status": "cancelled", "reason": "audit walk"}


async def _two_items(w: World) -> dict[str, Any]:
    return {"cartItem": [{"id": "1", "quantity": 2, "productOffering": {"id": w.offers["Mobile M"]["id"]}}]}


async def _bill_on_demand(w: World) -> dict[str, Any]:
    return {"billingAccount": {"id": w.account["id"]}}


async def _promise(w: World) -> dict[str, Any]:
    return {"billingAccount": {"id": w.account["id"]}, "amount": {"unit": "EUR", "value": 20},
            "promisedDate": (utcnow() + timedelta(days=3)).date().isoformat()}


async def _plan(w: World) -> dict[str, Any]:
    return {"billingAccount": {"id": w.account["id"]}, "instalment": [
        {"dueDate": (utcnow() + timedelta(days=d)).date().isoformat(), "amount": {"unit": "EUR", "value": 10}}
        for d in (10, 40)]}


async def _exclusion(w: World) -> dict[str, Any]:
    return {"billingAccount": {"id": w.account["id"]}, "reason": "dispute"}


#: (api, resource) -> (what to create it with, what to change with PATCH)
PM, THR = "/tmf-api/performance/v4", "/tmf-api/performanceThresholding/v5"


async def _kpi(w: World) -> dict[str, Any]:
    r = await w.client.post(f"{PM}/performanceIndicatorSpecification", json={
        "name": f"walk-kpi-{uuid.uuid4().hex[:6]}", "collectionType": "gauge"}, headers=w.h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _kpi_group(w: World) -> dict[str, Any]:
    return {"name": "walk group", "performanceIndicatorSpecification": [{"id": (await _kpi(w))["id"]}]}


async def _collection_job(w: World) -> dict[str, Any]:
    return {"fileTransferData": [{"fileFormat": "json"}], "granularity": "g_5mn",
            "performanceIndicatorSpecification": [{"id": (await _kpi(w))["id"]}]}


async def _on_demand(w: World) -> dict[str, Any]:
    return {"fileTransferData": [{"fileFormat": "json"}], "adminState": "locked",
            "performanceIndicatorSpecification": [{"id": (await _kpi(w))["id"]}], "monitoredObject": {"id": "walk-ne"},
            "snmpAgent": {"address": "192.0.2.1"}}


async def _threshold_rule(w: World) -> dict[str, Any]:
    return {"@type": "SimpleThresholdRule", "name": "walk rule", "condition": "Raise", "severity": "MAJOR",
            "measurement": {"id": (await _kpi(w))["id"], "@type": "PerformanceMeasurementRef"},
            "conformanceTargetUpper": 10}


async def _threshold(w: World) -> dict[str, Any]:
    r = await w.client.post(f"{THR}/thresholdRule", json=await _threshold_rule(w), headers=w.h)
    assert r.status_code == 201, r.text
    return {"@type": "Threshold", "name": "walk",
            "thresholdRule": [{"id": r.json()["id"], "@type": "ThresholdRuleRef"}]}


async def _threshold_job(w: World) -> dict[str, Any]:
    r = await w.client.post(f"{THR}/threshold", json=await _threshold(w), headers=w.h)
    assert r.status_code == 201, r.text
    return {"@type": "ThresholdJob", "granularity": "G_5MN",
            "performanceThreshold": {"id": r.json()["id"], "@type": "ThresholdRef"},
            "monitoredObjectsCriteria": [{"monitoredObjectFilter": "walk-ne"}]}


async def _problem(w: World) -> str:
    r = await w.client.post("/tmf-api/serviceProblemManagement/v4/serviceProblem", json={
        "category": "serviceProvider.declarer", "priority": 3, "description": "walk", "reason": "walk",
        "originatorParty": {"id": "noc", "@referredType": "Individual"}}, headers=w.h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _problems(w: World) -> dict[str, Any]:
    return {"problem": [{"id": await _problem(w)}]}


async def _problem_group(w: World) -> dict[str, Any]:
    return {"parentProblem": {"id": await _problem(w)}, "childProblem": [{"id": await _problem(w)}]}


WALK: dict[tuple[str, str], tuple[Body, dict[str, Any] | Body]] = {
    ("party", "individual"): (_static({"givenName": "Audit", "familyName": "Walk"}), {"middleName": "Q"}),
    ("party", "organization"): (_static({"tradingName": "Audit Ltd", "name": "Audit Ltd"}),
                                {"tradingName": "Audit & Co"}),
    ("partyRoleManagement", "partyRole"): (_role, {"name": "partner"}),
    ("customerManagement", "customer"): (_customer, {"status": "approved"}),
    ("accountManagement", "billingAccount"): (_billing_account, {"description": "changed"}),
    ("accountManagement", "partyAccount"): (_owned("Household"), {"description": "changed"}),
    ("accountManagement", "settlementAccount"): (_owned("Settlement"), {"description": "changed"}),
    ("accountManagement", "financialAccount"): (_owned("Receivables"), {"description": "changed"}),
    ("accountManagement", "billingCycleSpecification"): (_static({"name": "Monthly", "frequency": "monthly"}),
                                                         {"description": "changed"}),
    ("accountManagement", "billFormat"): (_static({"name": "Detailed"}), {"description": "changed"}),
    ("usageManagement", "usageSpecification"): (_static({"name": "walkUsage"}), {"description": "changed"}),
    ("accountManagement", "billPresentationMedia"): (_static({"name": "portal"}), {"description": "changed"}),
    ("productCatalogManagement", "catalog"): (_static({"name": "Walk catalog"}), {"description": "changed"}),
    ("productCatalogManagement", "category"): (_static({"name": "Walk category"}), {"description": "changed"}),
    ("productCatalogManagement", "productSpecification"): (_static({"name": "Walk spec"}),
                                                           {"description": "changed"}),
    ("productCatalogManagement", "productOffering"): (_static({"name": "Walk offer"}), {"description": "changed"}),
    ("productCatalogManagement", "productOfferingPrice"): (
        _static({"name": "Walk fee", "priceType": "recurring", "price": {"unit": "EUR", "value": 5}}),
        {"description": "changed"}),
    ("productCatalogManagement", "importJob"): (_static({"url": _export_document()}), {}),
    ("productCatalogManagement", "exportJob"): (_static({}), {}),
    ("serviceCatalogManagement", "serviceSpecification"): (
        _static({"@type": "CustomerFacingServiceSpecification", "name": "Walk service"}), {"description": "changed"}),
    ("resourceCatalogManagement", "resourceSpecification"): (
        _static({"@type": "LogicalResourceSpecification", "name": "Walk resource"}), {"description": "changed"}),
    ("catalogExtension", "tariff"): (_static({**demo_tariff(), "lifecycleStatus": "In design"}),
                                     {"description": "changed"}),
    ("prepayBalanceManagement", "topupBalance"): (_balance("topupBalance"), CANCEL),
    ("prepayBalanceManagement", "adjustBalance"): (_balance("adjustBalance"), CANCEL),
    ("prepayBalanceManagement", "transferBalance"): (_balance("transferBalance"), {**CANCEL, **_transfer_parties()}),
    ("prepayBalanceManagement", "reserveBalance"): (_balance("reserveBalance"), CANCEL),
    ("resourceInventoryManagement", "resource"): (
        _static({"@type": "PhysicalResource", "name": "Walk router", "category": "router", "serialNumber": "W1"}),
        {"description": "changed"}),
    ("shoppingCart", "shoppingCart"): (_cart, _two_items),
    ("productOrderingManagement", "productOrder"): (_order, {"description": "changed"}),
    ("productOrderingManagement", "cancelProductOrder"): (_cancellation, {}),
    ("troubleTicket", "troubleTicket"): (
        _static({"description": "No signal", "severity": "minor", "ticketType": "network"}), {"status": "inProgress"}),
    ("partyInteraction", "partyInteraction"): (
        _static({"direction": "inbound", "reason": "question", "status": "completed",
                 "interactionDate": {"startDateTime": "2026-12-01T10:00:00Z"},
                 "channel": [{"id": "phone", "href": "http://testserver/api/care/v1/channel/phone"}]}),
        {"status": "closed"}),
    ("customerBillManagement", "customerBillOnDemand"): (_bill_on_demand, {}),
    ("alarm", "alarm"): (
        _static({"alarmType": "equipmentAlarm", "perceivedSeverity": "minor", "probableCause": "fanFailure",
                 "alarmedObject": {"id": "walk-ne"}, "sourceSystemId": "ems", "state": "raised",
                 "alarmRaisedTime": "2026-12-01T10:00:00Z"}), {"alarmDetails": "changed"}),
    ("performance", "performanceIndicatorSpecification"): (
        _static({"name": "walk-kpi", "collectionType": "gauge"}), {"description": "changed"}),
    # (the specification's update of a group needs its KPIs)
    ("performance", "performanceIndicatorGroupSpecification"): (_kpi_group, _kpi_group),
    ("performance", "measurementCollectionJob"): (_collection_job, {"adminState": "locked"}),
    ("performance", "onDemandCollection"): (_on_demand, {"jobPriority": 2}),
    ("performanceThresholding", "thresholdRule"): (_threshold_rule, {"severity": "CRITICAL"}),
    ("performanceThresholding", "threshold"): (_threshold, {"description": "changed"}),
    ("performanceThresholding", "thresholdJob"): (_threshold_job, {"adminState": "LOCKED"}),
    ("serviceProblemManagement", "problemAcknowledgement"): (_problems, {}),
    ("serviceProblemManagement", "problemUnacknowledgement"): (_problems, {}),
    ("serviceProblemManagement", "problemGroup"): (_problem_group, {}),
    ("serviceProblemManagement", "problemUngroup"): (_problem_group, {}),
    ("serviceProblemManagement", "serviceProblem"): (
        _static({"category": "serviceProvider.declarer", "priority": 3, "description": "Slow DNS",
                 "reason": "complaints", "originatorParty": {"id": "noc", "@referredType": "Individual"}}),
        {"status": "inProgress"}),
    ("alarm", "ackAlarms"): (_static({"ackSystemId": "noc", "ackUserId": "walker",
                                      "alarmPattern": [{"alarmedObject": {"id": "walk-ne"}}]}), {}),
    ("alarm", "unAckAlarms"): (_static({"ackSystemId": "noc", "ackUserId": "walker",
                                        "alarmPattern": [{"alarmedObject": {"id": "walk-ne"}}]}), {}),
    ("alarm", "commentAlarms"): (_static({"comment": {"comment": "walked"},
                                          "alarmPattern": [{"alarmedObject": {"id": "walk-ne"}}]}), {}),
    ("alarm", "clearAlarms"): (_static({"clearSystemId": "noc", "clearUserId": "walker",
                                        "alarmClearedTime": "2026-12-01T11:00:00Z",
                                        "alarmPattern": [{"alarmedObject": {"id": "walk-ne"}}]}), {}),
    ("collections", "dunningPolicy"): (_static({"name": "Walk", "dunningStep": [{"action": "suspend"}]}),
                                       {"description": "walked"}),
    ("collections", "promiseToPay"): (_promise, {"note": "walked"}),
    ("collections", "paymentPlan"): (_plan, {"note": "walked"}),
    ("collections", "dunningExclusion"): (_exclusion, {"note": "walked"}),
}


async def audit_actions(w: World, resource_type: str, resource_id: str) -> list[str]:
    r = await w.client.get("/audit/v1/auditRecord", params={"resourceType": resource_type,
                                                            "resourceId": resource_id}, headers=w.h)
    assert r.status_code == 200, r.text
    return [x["action"] for x in r.json()]


async def test_every_resource_of_every_api_is_audited(client: httpx.AsyncClient, rt: Any, services: Any) -> None:
    every = {(api.name, r.path): (api, r) for api in services.apis for r in api.resources}
    unexplained = set(every) - set(WALK) - SYSTEM_MADE - LEDGER - OWN_ROUTES
    assert not unexplained, f"resources neither walked nor explained: {sorted(unexplained)}"
    named = set(WALK) | SYSTEM_MADE | LEDGER | OWN_ROUTES
    assert not named - set(every), "the walk names resources that do not exist"

    world = await setup_world(rt, client, numbers=20, sims=20)
    w = World(client, world["h"], world["tenant"], rt, services)
    w.offers = world["offers"]
    w.party = await make_individual(client, w.h, given="Audit", family="Walker", email="audit@example.net",
                                    ident="AW1")
    c = await customer(client, w.h, 7)
    w.customer, w.account = c["customer"], c["account"]
    async with rt.db.transaction(w.tenant) as session:
        ctx = system_context(w.tenant, session, "http://testserver")
        for msisdn in ("+33690000001", "+33690000002"):
            opened = await services.charging.service.open_account(
                ctx, subscriber=msisdn, payment_type="prepaid", currency="EUR", plan=FALLBACK_PLAN,
                initial_balance=Decimal(10))
            w.buckets.append(next(b["id"] for b in opened["buckets"] if b["unit"] == "money"))
            w.party_accounts.append({"id": opened["id"], "@referredType": "ChargingAccount"})

    walked: list[str] = []
    for (api_name, path), (body, patch) in WALK.items():
        api, resource = every[(api_name, path)]
        url = f"{api.base_path}/{path}"
        assert "create" in resource.operations, (api_name, path)
        r = await client.post(url, json=await body(w), headers=w.h)
        assert r.status_code == 201, (api_name, path, r.text)
        rid = r.json()["id"]
        expected = ["create"]
        if "patch" in resource.operations:
            changes = patch if isinstance(patch, dict) else await patch(w)
            assert changes, f"{api_name}/{path} can be updated: the walk needs a change for it"
            r = await client.patch(f"{url}/{rid}", json=changes, headers=w.h)
            assert r.status_code == 200, (api_name, path, r.text)
            rid = r.json()["id"]  # (a changed Active catalog object is a new version; these are drafts)
            expected.append("update")
        if "delete" in resource.operations:
            r = await client.delete(f"{url}/{rid}", headers=w.h)
            assert r.status_code == 204, (api_name, path, r.text)
            expected.append("delete")
        if (api_name, path) == ("productOrderingManagement", "cancelProductOrder"):
            expected.append("update")  # settled at once (the order had not started): done
        actions = await audit_actions(w, resource.type, rid)
        assert actions[:1] == ["create"] and set(actions) == set(expected), (api_name, path, actions)
        walked.append(path)
    assert len(walked) == len(WALK)

    # what the system changes: an order driven to completion, then its product suspended
    r = await client.post("/tmf-api/productOrderingManagement/v4/productOrder",
                          json=await _order(w), headers=w.h)
    order = r.json()
    await run(rt, w.tenant)
    order = (await client.get(f"/tmf-api/productOrderingManagement/v4/productOrder/{order['id']}",
                              headers=w.h)).json()
    assert order["state"] == "completed", order
    assert "update" in await audit_actions(w, "ProductOrder", order["id"])
    product = (await client.get(order["productOrderItem"][0]["product"]["href"].replace("http://testserver", ""),
                                headers=w.h)).json()
    suspend = {**mobile_order({"customer": w.customer, "account": w.account}, w.offers["Mobile M"]),
               "productOrderItem": [{"id": "1", "action": "modify",
                                     "product": {"id": product["id"], "status": "suspended"}}]}
    assert (await client.post("/tmf-api/productOrderingManagement/v4/productOrder", json=suspend,
                              headers=w.h)).status_code == 201
    await run(rt, w.tenant)
    assert await audit_actions(w, "Product", product["id"]) == ["create", "update"]
    for ref, kind in [(s, "Service") for s in product["realizingService"]] + \
                     [(x, "Resource") for x in product["realizingResource"]]:
        assert await audit_actions(w, kind, ref["id"]) == ["create", "update"], (kind, ref)
    service_orders = (await client.get("/tmf-api/serviceOrdering/v4/serviceOrder", headers=w.h)).json()
    assert len(service_orders) == 4  # the walk's order, the cancelled one, the activation, the suspension
    for so in service_orders:
        actions = await audit_actions(w, "ServiceOrder", so["id"])
        assert actions[0] == "create" and "update" in actions, (so["state"], actions)
        if so["state"] == "completed":
            assert actions.count("update") >= 2, actions  # inProgress, then completed
    history = (await client.get("/tmf-api/prepayBalanceManagement/v4/balanceActionHistory", headers=w.h)).json()
    assert len(history) == 8  # the four balance actions above, and their cancellations
    for entry in history:
        assert await audit_actions(w, "BalanceActionHistory", entry["id"]) == ["create"]
    imported = (await client.get("/tmf-api/productCatalogManagement/v4/category", params={"name": "Imported"},
                                 headers=w.h)).json()
    assert len(imported) == 1 and await audit_actions(w, "Category", imported[0]["id"]) == ["create"]
    # a bill: written by a run (the order's product charged), then issued
    async with rt.db.transaction(w.tenant) as session:
        ctx = system_context(w.tenant, session, "http://testserver")
        report = await services.billing.service.run(ctx, (utcnow() + timedelta(days=40)).date(), finalize=True,
                                                    account_ids=[w.account["id"]])
    assert report.finalized == 1, report.as_dict()
    [bill] = (await client.get("/tmf-api/customerBillManagement/v4/customerBill", headers=w.h)).json()
    assert await audit_actions(w, "CustomerBill", bill["id"]) == ["create", "finalize"]
    # a collection's tracking record: an on-demand collection of an unreachable agent, read once (failed)
    r = await client.post(f"{PM}/onDemandCollection", json={**await _on_demand(w), "adminState": "unlocked"},
                          headers=w.h)
    assert r.status_code == 201, r.text
    assert await services.assurance.collector.collect_due(rt.db, [w.tenant], now=utcnow() + timedelta(seconds=1)) == 1
    [record] = (await client.get(f"{PM}/onDemandCollection/{r.json()['id']}", headers=w.h)).json()["trackingRecord"]
    assert await audit_actions(w, "TrackingRecord", record["id"]) == ["create"]
    assert len(walked) + len(SYSTEM_MADE) + len(LEDGER) + len(OWN_ROUTES) == len(every)

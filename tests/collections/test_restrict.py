"""Partial barring: a ``restrict`` step bars some services of the account's lines (outgoing calls and messages, and
data by default; incoming kept) by a modify order through ordering and provisioning: the inventory's product shows
a ``barring`` characteristic, the HSS and the charging account bar the services, charging refuses them (4010) and
serves the others. A payment clearing the debt closes the episode, and one resume order lifts the bar."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from openbss.charging import service as charging
from openbss.platform.db import utcnow
from openbss.platform.tmf.resource import system_context
from openbss.provisioning.models import ElementState
from tests.charging.helpers import OCS, ccr, group
from tests.collections.helpers import API, episodes, executions
from tests.conftest import bearer, deliver_all, session_services
from tests.ordering.helpers import PO, customer, get, mobile_order, run, setup_world


async def _account(rt: Any, tenant: str, msisdn: str) -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        return await charging.get_account(system_context(tenant, session, "http://testserver"), subscriber=msisdn)


async def _cc(client: Any, tenant: str, msisdn: str, session: str, usage: str, *, incoming: bool = False) -> int:
    if usage == "data":
        body = ccr("INITIAL_REQUEST", session, 0, msisdn, context="32251@3gpp.org",
                   groups=[group(1, 1000, key="totalOctets")])
    elif usage == "sms":
        body = ccr("EVENT_REQUEST", session, 0, msisdn, context="32274@3gpp.org",
                   groups=[group(1, 1, key="serviceSpecificUnits")])
    else:
        body = ccr("INITIAL_REQUEST", session, 0, msisdn, groups=[group(1, 60)])
    if incoming:
        body["serviceInformation"] = {"roleOfNode": "TERMINATING_ROLE", "callingParty": "33600000001"}
    elif usage != "data":
        body["serviceInformation"] = {"roleOfNode": "ORIGINATING_ROLE", "calledParty": "33600000001"}
    r = await client.post(OCS, json=body, headers=bearer(tenant, "system"))
    assert r.status_code == 200, r.text
    return int(r.json()["resultCode"])


def _barring(product: dict[str, Any]) -> Any:
    return next((c["value"] for c in product.get("productCharacteristic") or [] if c["name"] == "barring"), None)


async def test_restricted_by_dunning_then_lifted_by_payment(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=10, sims=10)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, tenant, provisioning_ocs="charging")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", order
    product_url = order["productOrderItem"][0]["product"]["href"].replace("http://testserver", "")
    product = await get(client, h, product_url)
    resources = [await get(client, h, r["href"].replace("http://testserver", ""))
                 for r in product["realizingResource"]]
    msisdn = next(r for r in resources if r["category"] == "msisdn")["resourceCharacteristic"][0]["value"]
    served = {"data": await _cc(client, tenant, msisdn, "d0", "data"),
              "voiceIn": await _cc(client, tenant, msisdn, "v0", "voice", incoming=True)}
    assert 4010 not in served.values(), served

    services = session_services()
    async with rt.db.transaction(tenant) as session:
        report = await services.billing.service.run(system_context(tenant, session, "http://testserver"),
                                                    (utcnow() + timedelta(days=40)).date(), finalize=True)
    assert report.finalized == 1, report.as_dict()
    await deliver_all(rt)
    [bill] = await get(client, h, "/tmf-api/customerBillManagement/v4/customerBill")
    due = date.fromisoformat(bill["paymentDueDate"][:10])
    # an unknown service is refused when the policy is written
    r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Bad", "isDefault": True, "dunningStep": [
        {"name": "restrict", "action": "restrict", "daysPastDue": 3, "barredServices": ["outgoingFax"]}]})
    assert r.status_code == 400 and "barredServices" in r.text, r.text
    r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Bad", "isDefault": True, "dunningStep": [
        {"name": "suspend", "action": "suspend", "daysPastDue": 3, "barredServices": ["data"]}]})
    assert r.status_code == 400 and "only a restrict step" in r.text, r.text
    r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Restrict", "isDefault": True,
                                                                 "dunningStep": [
        {"name": "restrict", "action": "restrict", "daysPastDue": 3,
         "barredServices": ["outgoingVoice", "outgoingSms", "data"]}]})
    assert r.status_code == 201, r.text
    svc = services.collections.service
    assert (await svc.run_tenant(tenant, due + timedelta(days=4))).done == 1
    [ex] = await executions(rt, tenant)
    assert ex.action == "restrict" and ex.outcome and ex.outcome["product"] == [product["id"]]
    assert ex.outcome["barredServices"] == ["outgoingVoice", "outgoingSms", "data"]
    await run(rt, tenant, provisioning_ocs="charging")
    bar_order = await get(client, h, f"{PO}/{ex.outcome['productOrder'][0]}")
    assert bar_order["state"] == "completed", bar_order
    assert bar_order["productOrderItem"][0]["action"] == "modify"

    # the inventory shows the bar; the line stays active (not suspended)
    barred = await get(client, h, product_url)
    assert barred["status"] == "active"
    assert _barring(barred) == ["outgoingVoice", "outgoingSms", "data"]
    # the network and charging agree
    async with rt.db.transaction(tenant) as s:
        hss = (await s.execute(select(ElementState).where(ElementState.element == "hss"))).scalars().one()
    assert hss.profile["barring"] == ["outgoingVoice", "outgoingSms", "data"] and hss.status == "active"
    account = await _account(rt, tenant, msisdn)
    assert account["status"] == "active" and account["barred"] == ["outgoingVoice", "outgoingSms", "data"]
    # charging refuses the barred services, serves the kept ones
    assert await _cc(client, tenant, msisdn, "d1", "data") == 4010
    assert await _cc(client, tenant, msisdn, "v1", "voice") == 4010
    assert await _cc(client, tenant, msisdn, "s1", "sms") == 4010
    assert await _cc(client, tenant, msisdn, "v2", "voice", incoming=True) == served["voiceIn"]
    assert await _cc(client, tenant, msisdn, "s2", "sms", incoming=True) != 4010
    # taken once
    assert (await svc.run_tenant(tenant, due + timedelta(days=6))).claimed == 0

    # the customer pays: the episode closes and one order lifts the bar
    method = await client.post("/tmf-api/paymentMethod/v4/paymentMethod", headers=h, json={
        "@type": "cash", "name": "cash", "account": [{"id": c["account"]["id"]}]})
    assert method.status_code == 201, method.text
    r = await client.post("/tmf-api/paymentManagement/v4/payment", headers=h, json={
        "account": {"id": c["account"]["id"]}, "paymentMethod": {"id": method.json()["id"]},
        "totalAmount": {"unit": "EUR", "value": float(Decimal(str(bill["taxIncludedAmount"]["value"])))},
        "paymentItem": [{"item": {"id": bill["id"]}}]})
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    await deliver_all(rt)
    [ep] = await episodes(rt, tenant)
    assert ep.state == "closed" and ep.close_reason == "paid"
    [resume] = ep.body["resumeOrder"]
    await run(rt, tenant, provisioning_ocs="charging")
    assert (await get(client, h, f"{PO}/{resume}"))["state"] == "completed"
    lifted = await get(client, h, product_url)
    assert lifted["status"] == "active" and _barring(lifted) is None
    assert not (await _account(rt, tenant, msisdn))["barred"]
    assert await _cc(client, tenant, msisdn, "d3", "data") == served["data"]
    assert await _cc(client, tenant, msisdn, "v3", "voice") != 4010


async def test_restricted_then_suspended_one_resume_order_undoes_both(rt: Any, client: Any) -> None:
    """A line barred, then suspended: the payment's one resume order resumes it and lifts its bar (one item)."""
    w = await setup_world(rt, client, numbers=5, sims=5)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, tenant, provisioning_ocs="charging")
    order = await get(client, h, f"{PO}/{order['id']}")
    product_url = order["productOrderItem"][0]["product"]["href"].replace("http://testserver", "")
    product = await get(client, h, product_url)
    resources = [await get(client, h, r["href"].replace("http://testserver", ""))
                 for r in product["realizingResource"]]
    msisdn = next(r for r in resources if r["category"] == "msisdn")["resourceCharacteristic"][0]["value"]
    services = session_services()
    async with rt.db.transaction(tenant) as session:
        await services.billing.service.run(system_context(tenant, session, "http://testserver"),
                                           (utcnow() + timedelta(days=40)).date(), finalize=True)
    await deliver_all(rt)
    [bill] = await get(client, h, "/tmf-api/customerBillManagement/v4/customerBill")
    due = date.fromisoformat(bill["paymentDueDate"][:10])
    r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Bar", "isDefault": True, "dunningStep": [
        {"name": "restrict", "action": "restrict", "daysPastDue": 3},
        {"name": "suspend", "action": "suspend", "daysPastDue": 5}]})
    assert r.status_code == 201, r.text
    svc = services.collections.service
    await svc.run_tenant(tenant, due + timedelta(days=4))
    await run(rt, tenant, provisioning_ocs="charging")
    assert _barring(await get(client, h, product_url)) == ["outgoingVoice", "outgoingSms", "outgoingMms", "data"]
    await svc.run_tenant(tenant, due + timedelta(days=6))
    await run(rt, tenant, provisioning_ocs="charging")
    suspended = await get(client, h, product_url)
    assert suspended["status"] == "suspended" and _barring(suspended)  # still barred underneath
    assert (await _account(rt, tenant, msisdn))["status"] == "suspended"
    assert await _cc(client, tenant, msisdn, "in1", "voice", incoming=True) == 4010  # suspended: nothing served

    method = await client.post("/tmf-api/paymentMethod/v4/paymentMethod", headers=h, json={
        "@type": "cash", "name": "cash", "account": [{"id": c["account"]["id"]}]})
    r = await client.post("/tmf-api/paymentManagement/v4/payment", headers=h, json={
        "account": {"id": c["account"]["id"]}, "paymentMethod": {"id": method.json()["id"]},
        "totalAmount": {"unit": "EUR", "value": float(Decimal(str(bill["taxIncludedAmount"]["value"])))},
        "paymentItem": [{"item": {"id": bill["id"]}}]})
    assert r.status_code == 201, r.text
    await deliver_all(rt)
    [ep] = await episodes(rt, tenant)
    [resume] = ep.body["resumeOrder"]
    resume_order = await get(client, h, f"{PO}/{resume}")
    [item] = resume_order["productOrderItem"]
    assert item["product"]["status"] == "active"
    assert item["product"]["productCharacteristic"] == [{"name": "barring", "value": [], "valueType": "array"}]
    await run(rt, tenant, provisioning_ocs="charging")
    assert (await get(client, h, f"{PO}/{resume}"))["state"] == "completed"
    back = await get(client, h, product_url)
    assert back["status"] == "active" and _barring(back) is None
    account = await _account(rt, tenant, msisdn)
    assert account["status"] == "active" and not account["barred"]
    assert await _cc(client, tenant, msisdn, "d9", "data") != 4010


async def test_barring_order_validation(rt: Any, client: Any) -> None:
    """A modify item's ``barring`` names known services; a suspension does not carry one."""
    w = await setup_world(rt, client, numbers=5, sims=5)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, tenant, provisioning_ocs="charging")
    order = await get(client, h, f"{PO}/{order['id']}")
    pid = order["productOrderItem"][0]["product"]["id"]
    party = {"relatedParty": order["relatedParty"]}

    async def modify(product: dict[str, Any]) -> Any:
        return await client.post(PO, headers=h, json={**party, "productOrderItem": [
            {"id": "1", "action": "modify", "product": {"id": pid, **product}}]})

    r = await modify({"productCharacteristic": [{"name": "barring", "value": ["outgoingFax"]}]})
    assert r.status_code == 400 and "outgoingFax" in r.text, r.text
    r = await modify({"status": "suspended", "productCharacteristic": [{"name": "barring", "value": ["data"]}]})
    assert r.status_code == 400 and "INVALID_BARRING" in r.text, r.text
    r = await modify({"productCharacteristic": [{"name": "barring", "value": "data, outgoingVoice"}]})
    assert r.status_code == 201, r.text
    await run(rt, tenant, provisioning_ocs="charging")
    product = await get(client, h, f"/tmf-api/productInventory/v4/product/{pid}")
    assert _barring(product) == ["outgoingVoice", "data"]  # in the canonical order

"""Suspension and resumption flow through orders and provisioning to the inventory and charging: an overdue
account's line is suspended by a product order (the product suspended in the inventory, its charging account
suspended, so charging refuses it); a payment clearing the debt closes the episode and a resume order brings the
line back."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from openbss.charging import service as charging
from openbss.platform.db import utcnow
from openbss.platform.tmf.resource import system_context
from tests.charging.helpers import OCS, ccr, group
from tests.collections.helpers import API, assert_spec, episodes, executions
from tests.conftest import bearer, deliver_all, session_services
from tests.ordering.helpers import PO, customer, get, mobile_order, run, setup_world


async def _status(rt: Any, tenant: str, msisdn: str) -> str:
    async with rt.db.transaction(tenant) as session:
        account = await charging.get_account(system_context(tenant, session, "http://testserver"),
                                             subscriber=msisdn)
    return str(account["status"])


async def _credit_control(client: Any, tenant: str, msisdn: str, session: str) -> int:
    body = ccr("INITIAL_REQUEST", session, 0, msisdn, context="32251@3gpp.org",
               groups=[group(1, 1000, key="totalOctets")])
    r = await client.post(OCS, json=body, headers=bearer(tenant, "system"))
    assert r.status_code == 200, r.text
    return int(r.json()["resultCode"])


async def test_suspended_by_dunning_and_resumed_by_payment(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=10, sims=10)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, tenant, provisioning_ocs="charging")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", order
    product_url = order["productOrderItem"][0]["product"]["href"].replace("http://testserver", "")
    product = await get(client, h, product_url)
    resources = [await get(client, h, r["href"].replace("http://testserver", "")) for r in product["realizingResource"]]
    msisdn = next(r for r in resources if r["category"] == "msisdn")["resourceCharacteristic"][0]["value"]
    assert await _status(rt, tenant, msisdn) == "active"

    # a bill, issued and left unpaid past its due date
    services = session_services()
    async with rt.db.transaction(tenant) as session:
        report = await services.billing.service.run(system_context(tenant, session, "http://testserver"),
                                                    (utcnow() + timedelta(days=40)).date(), finalize=True)
    assert report.finalized == 1, report.as_dict()
    await deliver_all(rt)  # payments learns of the bill
    bills = await get(client, h, "/tmf-api/customerBillManagement/v4/customerBill")
    [bill] = bills
    due = date.fromisoformat(bill["paymentDueDate"][:10])
    r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Bar", "isDefault": True, "dunningStep": [
        {"name": "bar", "action": "suspend", "daysPastDue": 3}]})
    assert r.status_code == 201, r.text
    svc = services.collections.service
    early = await svc.run_tenant(tenant, due + timedelta(days=2))
    assert early.opened == 1 and early.claimed == 0  # in collection, not yet barred
    barred = await svc.run_tenant(tenant, due + timedelta(days=4))
    assert barred.done == 1
    [ex] = await executions(rt, tenant)
    assert ex.action == "suspend" and ex.outcome and ex.outcome["product"] == [product["id"]]
    await run(rt, tenant, provisioning_ocs="charging")
    suspend_order = await get(client, h, f"{PO}/{ex.outcome['productOrder'][0]}")
    assert suspend_order["state"] == "completed", suspend_order
    assert (await get(client, h, product_url))["status"] == "suspended"
    assert await _status(rt, tenant, msisdn) == "suspended"
    assert await _credit_control(client, tenant, msisdn, "dun-1") == 4010  # charging refuses the line
    # the scheduler running again does not suspend twice
    assert (await svc.run_tenant(tenant, due + timedelta(days=5))).claimed == 0

    # the customer pays the bill: the payment's event closes the episode and resumes the line
    method = await client.post("/tmf-api/paymentMethod/v4/paymentMethod", headers=h, json={
        "@type": "cash", "name": "cash", "account": [{"id": c["account"]["id"]}]})
    assert method.status_code == 201, method.text
    amount = Decimal(str(bill["taxIncludedAmount"]["value"]))
    r = await client.post("/tmf-api/paymentManagement/v4/payment", headers=h, json={
        "account": {"id": c["account"]["id"]}, "paymentMethod": {"id": method.json()["id"]},
        "totalAmount": {"unit": "EUR", "value": float(amount)}, "paymentItem": [{"item": {"id": bill["id"]}}]})
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    await deliver_all(rt)
    [ep] = await episodes(rt, tenant)
    assert ep.state == "closed" and ep.close_reason == "paid"
    resume = ep.body["resumeOrder"]
    doc = await get(client, h, f"{API}/dunningEpisode/{ep.id}")
    assert doc["resumeOrder"] == resume and doc["closeReason"] == "paid" and doc["stepTaken"][0]["action"] == "suspend"
    assert_spec("DunningEpisode", doc)
    await run(rt, tenant, provisioning_ocs="charging")
    assert (await get(client, h, f"{PO}/{resume[0]}"))["state"] == "completed"
    assert (await get(client, h, product_url))["status"] == "active"
    assert await _status(rt, tenant, msisdn) == "active"
    assert await _credit_control(client, tenant, msisdn, "dun-2") == 2001  # and serves it again
    per_day = await get(client, h, f"{API}/report/suspensionsPerDay")
    assert sum(d["suspensions"] for d in per_day) == 1 and sum(d["resumptions"] for d in per_day) == 1

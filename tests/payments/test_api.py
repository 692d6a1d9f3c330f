"""TMF670 and TMF676 over HTTP: responses validate against the specifications' schemas, lists and filters, the
hubs' events, permissions, and the extension schema."""

from __future__ import annotations

from typing import Any

from tests.billing.helpers import in_tenant
from tests.conftest import bearer
from tests.customer.helpers import assert_valid
from tests.payments.helpers import PAY, PM, card, cash, issued_bill, method, pay

TMF670 = "TMF670-PaymentMethod-v4.0.0.swagger.json"
TMF676 = "TMF676-Payment-v4.0.0.swagger.json"
SUBTYPES = {"tokenizedCard": "TokenizedCard", "cash": "Cash"}


async def test_methods_payments_and_refunds_conform_to_the_specifications(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    methods = [await method(client, admin_headers, card(account, token="tok_instant")),
               await method(client, admin_headers, cash(account))]
    for m in methods:
        assert_valid(TMF670, "PaymentMethod", m)
        assert_valid(TMF670, SUBTYPES[m["@type"]], m)
    listed = await client.get(PM, params={"@type": "cash"}, headers=admin_headers)
    assert listed.status_code == 200 and [m["id"] for m in listed.json()] == [methods[1]["id"]]
    payment = (await pay(client, admin_headers, account, methods[0]["id"], "130.00", [bill["id"]])).json()
    assert payment["status"] == "succeeded"
    assert_valid(TMF676, "Payment", payment)
    assert payment["@type"] == "OpenBSSPayment" and payment["@baseType"] == "Payment"
    schema = await client.get(payment["@schemaLocation"].replace("http://testserver", ""))
    assert schema.status_code == 200 and "allocation" in schema.json()["properties"]
    got = await client.get(f"{PAY}/payment/{payment['id']}", headers=admin_headers)
    assert got.json() == payment
    by_account = await client.get(f"{PAY}/payment", params={"account.id": account["id"], "status": "succeeded"},
                                  headers=admin_headers)
    assert [p["id"] for p in by_account.json()] == [payment["id"]]
    refund = await client.post(f"{PAY}/refund", json={
        "account": {"id": account["id"]}, "paymentMethod": {"id": methods[0]["id"]},
        "payment": {"id": payment["id"]}, "totalAmount": {"unit": "EUR", "value": 10}}, headers=admin_headers)
    assert refund.status_code == 201, refund.text
    assert_valid(TMF676, "Refund", refund.json())
    assert (await client.get(f"{PAY}/refund/{refund.json()['id']}", headers=admin_headers)).status_code == 200
    events = await in_tenant(rt, tenant, "SELECT event_type, envelope->'event'->'payment'->>'status' "
                                         "FROM outbox_event WHERE resource_id = :p ORDER BY id", p=payment["id"])
    assert [e for e in events if e[0] == "PaymentStateChangeEvent"] == [("PaymentStateChangeEvent", "succeeded")]
    assert events[0][0] == "PaymentCreateEvent"
    for resource_type, rid, actions in (("Payment", payment["id"], {"create", "succeeded"}),
                                        ("Refund", refund.json()["id"], {"create", "succeeded"}),
                                        ("PaymentMethod", methods[1]["id"], {"create"})):
        r = await client.get("/audit/v1/auditRecord", params={"resourceType": resource_type, "resourceId": rid},
                             headers=admin_headers)
        assert {a["action"] for a in r.json()} == actions, (resource_type, r.text)


async def test_payments_need_the_payments_permission(client: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    body = {"account": {"id": "a"}, "paymentMethod": {"id": "m"}, "totalAmount": {"unit": "EUR", "value": 1}}
    assert (await client.get(f"{PAY}/payment", headers=bearer(tenant, "csr_agent"))).status_code == 200
    assert (await client.post(f"{PAY}/payment", json=body, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.get(f"{PAY}/payment", headers=bearer(tenant, "network_ops"))).status_code == 403
    assert (await client.post(PM, json={}, headers=bearer(tenant, "network_ops"))).status_code == 403
    customer = bearer(tenant, "customer", party="p1")
    assert (await client.get(f"{PAY}/payment", headers=customer)).status_code == 403
    assert (await client.get(PM, headers={})).status_code == 401
    hub = await client.post(f"{PAY}/hub", json={"callback": "http://127.0.0.1:9/cb"}, headers=admin_headers)
    assert hub.status_code == 201

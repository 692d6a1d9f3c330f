"""Manual one-off charges and adjustments (``POST /billing/v1/charge``): idempotent per reference, audited,
role-checked, refused with a 400 naming the problem when wrong, and carried by the account's next bill."""

from __future__ import annotations

from typing import Any

from tests.collections.helpers import accounts
from tests.conftest import bearer, make_tenant

CHARGE = "/billing/v1/charge"
ON_DEMAND = "/tmf-api/customerBillManagement/v4/customerBillOnDemand"


def body(account_id: str, value: Any = "5.00", **extra: Any) -> dict[str, Any]:
    return {"billingAccount": {"id": account_id}, "amount": {"unit": "EUR", "value": value},
            "reasonCode": "GOODWILL", "description": "Goodwill gesture", "reference": "ticket-42", **extra}


async def test_a_charge_is_recorded_once_and_billed_on_the_next_bill(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "chg")
    h = bearer(tenant, "billing_ops")
    [a] = await accounts(client, tenant, 1)
    r = await client.post(CHARGE, json=body(a["id"], "-5.00"), headers=h)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["amount"] == {"unit": "EUR", "value": -5.0} and first["reasonCode"] == "GOODWILL"
    again = await client.post(CHARGE, json=body(a["id"], "-5.00"), headers=h)
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    other = await client.post(CHARGE, json=body(a["id"], "-6.00"), headers=h)
    assert other.status_code == 409 and "ticket-42" in other.json()["message"]
    r = await client.post(CHARGE, json=body(a["id"], "12.50", reasonCode="LATE_FEE", reference="fee-1",
                                            description="Late payment fee"), headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(ON_DEMAND, json={"billingAccount": {"id": a["id"]}}, headers=h)
    assert r.status_code == 201, r.text
    lines = r.json()["billPreview"]["appliedCustomerBillingRate"]
    assert sorted((ln["name"], ln["taxExcludedAmount"]["value"]) for ln in lines) == [
        ("Goodwill gesture", -5.0), ("Late payment fee", 12.5)]
    audit = await client.get("/audit/v1/auditRecord", params={"resourceType": "ManualCharge",
                                                              "resourceId": first["id"]}, headers=bearer(tenant))
    assert [x["action"] for x in audit.json()] == ["create"]


async def test_bad_charges_are_refused(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "chg")
    h = bearer(tenant, "billing_ops")
    [a] = await accounts(client, tenant, 1)
    for payload, words in [
        (body(a["id"], reasonCode="WHIM"), "reasonCode"),
        (body(a["id"], "0"), "zero"),
        (body(a["id"], "1.001"), "decimals"),
        (body(a["id"], "100000000000000"), "at most"),
        (body(a["id"], "-100000000000000"), "at most"),
        (body(a["id"], "abc"), "amount.value"),
        ({**body(a["id"]), "amount": {"unit": "USD", "value": 1}}, "currency"),
        (body("nope"), "does not exist"),
        ({k: v for k, v in body(a["id"]).items() if k != "reference"}, "reference"),
        (body(a["id"], colour="red"), "unknown attributes"),
        ({**body(a["id"]), "billingAccount": "x"}, "billingAccount.id"),
    ]:
        r = await client.post(CHARGE, json=payload, headers=h)
        assert r.status_code == 400, (payload, r.text)
        assert words in r.json()["message"], (words, r.json())
    r = await client.post(CHARGE, json=body(a["id"]), headers=bearer(tenant, "csr_agent"))
    assert r.status_code == 403
    r = await client.post(ON_DEMAND, json={"billingAccount": {"id": a["id"]}}, headers=h)
    assert r.json()["billPreview"]["appliedCustomerBillingRate"] == []  # nothing was written

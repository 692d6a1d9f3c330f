"""Orders in time: a back-dated order is refused beyond the tenant's back-dating limit (billing's
``backdateDays``), naming it; a modify item naming another billing account of the customer transfers the product,
and billing prorates the transfer from the order's requested start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.customer.helpers import make_billing_account
from tests.ordering.helpers import PO, PRODUCT, get, mobile_order, run
from tests.ordering.test_orders import post, world

__all__ = ["world"]

SETTINGS = "/billing/v1/settings"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_a_back_dated_order_beyond_the_limit_is_refused(client: Any, world: dict[str, Any]) -> None:
    w = world
    r = await client.patch(SETTINGS, headers=w["h"], json={"backdateDays": 30})
    assert r.status_code == 200, r.text
    before = len(await get(client, w["h"], PO))
    body = mobile_order(w["c"], w["offers"]["Mobile M"])
    body["requestedStartDate"] = stamp(datetime.now(UTC) - timedelta(days=45))
    r = await post(client, w, body)
    assert r.status_code == 400, r.text
    assert "requestedStartDate" in r.json()["message"] and "backdateDays = 30" in r.json()["message"]
    assert len(await get(client, w["h"], PO)) == before  # nothing written
    body["requestedStartDate"] = stamp(datetime.now(UTC) - timedelta(days=10))
    r = await post(client, w, body)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "acknowledged"


async def test_a_transfer_order_moves_the_product_and_billing_prorates_it(rt: Any, client: Any,
                                                                          world: dict[str, Any]) -> None:
    w = world
    r = await post(client, w, mobile_order(w["c"], w["offers"]["Mobile M"]))
    assert r.status_code == 201, r.text
    await run(rt, w["tenant"])
    order = await get(client, w["h"], f"{PO}/{r.json()['id']}")
    assert order["state"] == "completed", order
    product_id = order["productOrderItem"][0]["product"]["id"]
    other = await make_billing_account(client, w["h"], w["c"]["customer"], state="active")
    stranger = await make_billing_account(client, w["h"], w["corp"]["customer"], state="active")
    rp = [{"id": w["c"]["customer"]["id"], "@referredType": "Customer", "role": "customer"}]

    def transfer(to: str) -> dict[str, Any]:
        return {"relatedParty": rp, "productOrderItem": [
            {"id": "1", "action": "modify", "product": {"id": product_id}, "billingAccount": {"id": to}}]}

    bad = await post(client, w, transfer(stranger["id"]))
    assert bad.status_code in (400, 422), bad.text
    assert "billingAccount" in bad.json()["message"]
    # an account in another currency: the product's EUR prices would be billed as dollars
    dollars = await make_billing_account(client, w["h"], w["c"]["customer"], state="active", currency="USD",
                                   creditLimit={"unit": "USD", "value": 100})
    orders = len(await get(client, w["h"], PO))
    bad = await post(client, w, transfer(dollars["id"]))
    assert bad.status_code == 400, bad.text
    assert bad.json()["code"] == "INVALID_BILLING_ACCOUNT", bad.json()
    assert "USD" in bad.json()["message"] and "EUR" in bad.json()["message"], bad.json()
    assert len(await get(client, w["h"], PO)) == orders
    r = await post(client, w, transfer(other["id"]))
    assert r.status_code == 201, r.text
    await run(rt, w["tenant"])
    done = await get(client, w["h"], f"{PO}/{r.json()['id']}")
    assert done["state"] == "completed", done
    product = await get(client, w["h"], f"{PRODUCT}/{product_id}")
    assert product["billingAccount"]["id"] == other["id"]
    changes = [c for c in await get(client, w["h"], "/billing/v1/productChange", **{"product.id": product_id})
               if c["product"]["id"] == product_id]
    assert [(c["kind"], c["billingAccount"]["id"], c["toBillingAccount"]["id"]) for c in changes] == [
        ("transfer", w["c"]["account"]["id"], other["id"])]

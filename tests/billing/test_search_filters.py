"""Bills and lines keep few search entries (a bill run writes them for every bill and line), yet every TMF630
filter still answers exactly: the account and the bill of a line through the tables' columns, the declared
attributes through the index, any other attribute through the document path filter."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.billing.helpers import CB, billing_account, in_tenant, one_time, recurring, run, sell


async def _ids(client: Any, h: dict[str, str], path: str, params: dict[str, str]) -> set[str]:
    r = await client.get(f"{CB}/{path}", params=params, headers=h)
    assert r.status_code == 200, r.text
    assert int(r.headers["x-total-count"]) == len(r.json())
    return {d["id"] for d in r.json()}


async def test_filters_on_indexed_and_unindexed_attributes(client: Any, rt: Any, tenant: str,
                                                            admin_headers: dict[str, str]) -> None:
    h = admin_headers
    one = await billing_account(client, h, tz="UTC")
    two = await billing_account(client, h, tz="UTC")
    await sell(rt, tenant, one, "2027-01-10T00:00:00Z", [recurring("31.00"), one_time("20.00")])
    await sell(rt, tenant, two, "2027-01-15T00:00:00Z", [recurring("40.00")])
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    bills = {b["billingAccount"]["id"]: b for b in (await client.get(f"{CB}/customerBill", headers=h)).json()}
    lines = (await client.get(f"{CB}/appliedCustomerBillingRate", params={"limit": "100"}, headers=h)).json()
    assert len(lines) == 5
    b1, b2 = bills[one["id"]], bills[two["id"]]

    def expect(pred: Any) -> set[str]:
        return {ln["id"] for ln in lines if pred(ln)}

    # served by columns
    assert await _ids(client, h, "appliedCustomerBillingRate", {"bill.id": b1["id"]}) == expect(
        lambda ln: ln["bill"]["id"] == b1["id"])
    assert await _ids(client, h, "appliedCustomerBillingRate", {"bill.id": f"{b1['id']},{b2['id']}"}) == expect(
        lambda ln: True)
    assert await _ids(client, h, "appliedCustomerBillingRate", {"billingAccount.id": two["id"]}) == expect(
        lambda ln: ln["billingAccount"]["id"] == two["id"])
    assert await _ids(client, h, "customerBill", {"billingAccount.id": one["id"]}) == {b1["id"]}
    assert await _ids(client, h, "customerBill", {"billingAccount.id": "nobody"}) == set()
    # served by the index
    assert await _ids(client, h, "customerBill", {"billNo": b2["billNo"]}) == {b2["id"]}
    assert await _ids(client, h, "customerBill", {"state": "validated"}) == {b1["id"], b2["id"]}
    assert await _ids(client, h, "appliedCustomerBillingRate", {"type": "appliedBillingCharge",
                                                                "billingAccount.id": one["id"]}) == expect(
        lambda ln: ln["billingAccount"]["id"] == one["id"])
    # not indexed: the document path filter, exact
    assert await _ids(client, h, "appliedCustomerBillingRate", {"name": "Activation"}) == expect(
        lambda ln: ln["name"] == "Activation")
    assert await _ids(client, h, "appliedCustomerBillingRate", {"isBilled": "true", "bill.id": b2["id"]}) == expect(
        lambda ln: ln["bill"]["id"] == b2["id"])
    assert await _ids(client, h, "customerBill", {"runType": "onCycle"}) == {b1["id"], b2["id"]}
    assert await _ids(client, h, "customerBill", {"nextBillDate.gte": b1["nextBillDate"]}) == {b1["id"], b2["id"]}
    assert await _ids(client, h, "customerBill", {"@type": "OpenBSSCustomerBill", "billingAccount.id": two["id"]}
                      ) == {b2["id"]}
    # a line keeps at most its three declared entries; a bill's entries are its declared attributes only
    kept = {(r[0], r[1]) for r in await in_tenant(
        rt, tenant, "SELECT DISTINCT resource_type, attribute FROM search_entry WHERE resource_type IN "
        "('AppliedCustomerBillingRate', 'CustomerBill')")}
    assert {a for t, a in kept if t == "AppliedCustomerBillingRate"} <= {"date", "type", "product.id"}
    assert {a for t, a in kept if t == "CustomerBill"} <= {"billDate", "billNo", "category", "paymentDueDate",
                                                           "relatedParty.id", "state"}

"""TMF678 over HTTP: bills and lines conform to the specification's schemas; PATCH changes the state only and
finalizes a draft; a bill on demand runs the bill run's computation and writes no bill; events; customers see
only their own bills; the billing API's bad inputs are named."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.billing.helpers import CB, TMF678, billing_account, in_tenant, one_time, recurring, run, sell
from tests.conftest import bearer
from tests.customer.helpers import assert_valid


async def _billed(client: Any, rt: Any, tenant: str, h: dict[str, str], *, finalize: bool) -> dict[str, Any]:
    account = await billing_account(client, h, tz="UTC")
    await sell(rt, tenant, account, "2027-01-10T00:00:00Z", [recurring("31.00"), one_time("20.00")])
    await run(rt, tenant, date(2027, 2, 1), finalize=finalize)
    return account


async def test_bills_and_lines_conform_to_the_specification(client: Any, rt: Any, tenant: str,
                                                            admin_headers: dict[str, str]) -> None:
    account = await _billed(client, rt, tenant, admin_headers, finalize=True)
    r = await client.get(f"{CB}/customerBill", params={"billingAccount.id": account["id"]}, headers=admin_headers)
    assert r.status_code == 200 and r.headers["x-total-count"] == "1", r.text
    [bill] = r.json()
    assert_valid(TMF678, "CustomerBill", bill)
    assert bill["state"] == "validated" and bill["billNo"].startswith("INV-2027-")
    assert bill["@type"] == "OpenBSSCustomerBill" and bill["@baseType"] == "CustomerBill"
    schema = await client.get(bill["@schemaLocation"].replace("http://testserver", ""))
    assert schema.status_code == 200 and "previousBalance" in schema.json()["properties"]
    assert (await client.get(f"{CB}/customerBill/{bill['id']}", headers=admin_headers)).json() == bill
    lines = (await client.get(f"{CB}/appliedCustomerBillingRate", params={"bill.id": bill["id"]},
                              headers=admin_headers)).json()
    assert len(lines) == 3  # activation, 22 days of January, February in advance
    for line in lines:
        assert_valid(TMF678, "AppliedCustomerBillingRate", line)
        assert line["bill"]["id"] == bill["id"] and line["isBilled"] is True
    assert sum(line["taxIncludedAmount"]["value"] for line in lines) == bill["taxIncludedAmount"]["value"]
    by_period = {line["periodCoverage"]["startDateTime"][:10]: line for line in lines if line["name"] != "Activation"}
    assert by_period["2027-01-10"]["taxExcludedAmount"]["value"] == 22  # 31 × 22/31


async def test_patch_finalizes_a_draft_and_changes_nothing_else(client: Any, rt: Any, tenant: str,
                                                                 admin_headers: dict[str, str]) -> None:
    account = await _billed(client, rt, tenant, admin_headers, finalize=False)
    [bill] = (await client.get(f"{CB}/customerBill", params={"billingAccount.id": account["id"]},
                               headers=admin_headers)).json()
    assert bill["state"] == "new" and "billNo" not in bill
    url = f"{CB}/customerBill/{bill['id']}"
    refused = await client.patch(url, json={"billNo": "X-1"}, headers=admin_headers)
    assert refused.status_code == 400 and "billNo" in refused.json()["message"]
    held = await client.patch(url, json={"state": "onHold"}, headers=admin_headers)
    assert held.status_code == 200 and held.json()["state"] == "onHold"
    issued = await client.patch(url, json={"state": "validated"}, headers=admin_headers)
    assert issued.status_code == 200, issued.text
    assert issued.json()["billNo"] == "INV-2027-000001"
    back = await client.patch(url, json={"state": "new"}, headers=admin_headers)
    assert back.status_code == 409 and "validated" in back.json()["message"]
    paid = await client.patch(url, json={"state": "settled"}, headers=admin_headers)
    assert paid.status_code == 409 and paid.json()["code"] == "STATE_SET_BY_PAYMENTS"
    sent = await client.patch(url, json={"state": "sent"}, headers=admin_headers)
    assert sent.status_code == 200 and sent.json()["billNo"] == "INV-2027-000001"
    assert (await client.patch(f"{CB}/customerBill/nope", json={"state": "sent"},
                               headers=admin_headers)).status_code == 404
    events = await in_tenant(rt, tenant, "SELECT event_type, envelope FROM outbox_event WHERE resource_id = :b "
                                         "ORDER BY id", b=bill["id"])
    changes = [e.envelope["event"]["customerBill"]["state"] for e in events
               if e.event_type.endswith("StateChangeEvent")]
    assert events[0].event_type == "CustomerBillCreateEvent"
    assert changes == ["onHold", "validated", "sent"]
    finalized = next(e.envelope for e in events if e.event_type == "CustomerBillStateChangeEvent"
                     and e.envelope["event"]["customerBill"]["state"] == "validated")
    assert finalized["event"]["customerBill"]["amountDue"]["value"] > 0


async def test_a_bill_on_demand_writes_no_bill(client: Any, rt: Any, tenant: str,
                                               admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2026-11-10T00:00:00Z", [recurring("30.00", rate="0")])
    before = await in_tenant(rt, tenant, "SELECT (SELECT count(*) FROM billing_customer_bill), "
                                         "(SELECT count(*) FROM billing_applied_rate), "
                                         "(SELECT count(*) FROM billing_number_counter)")
    r = await client.post(f"{CB}/customerBillOnDemand", json={"billingAccount": {"id": account["id"]}},
                          headers=admin_headers)
    assert r.status_code == 201, r.text
    got = r.json()
    assert_valid(TMF678, "CustomerBillOnDemand", got)
    assert got["state"] == "done"
    preview = got["billPreview"]
    assert_valid(TMF678, "CustomerBill", {k: v for k, v in preview.items() if k != "appliedCustomerBillingRate"})
    assert preview["state"] == "new" and preview["appliedCustomerBillingRate"]
    assert await in_tenant(rt, tenant, "SELECT (SELECT count(*) FROM billing_customer_bill), "
                                       "(SELECT count(*) FROM billing_applied_rate), "
                                       "(SELECT count(*) FROM billing_number_counter)") == before
    # the same computation as the run: the run then writes what the preview showed
    await run(rt, tenant, date.fromisoformat(preview["billDate"][:10]), finalize=False)
    [(total,)] = await in_tenant(rt, tenant, "SELECT body->'taxIncludedAmount'->>'value' FROM billing_customer_bill")
    assert float(total) == preview["taxIncludedAmount"]["value"]
    missing = await client.post(f"{CB}/customerBillOnDemand", json={"name": "x"}, headers=admin_headers)
    assert missing.status_code == 400 and "billingAccount.id" in missing.json()["message"]


async def test_customers_see_only_their_bills(client: Any, rt: Any, tenant: str,
                                               admin_headers: dict[str, str]) -> None:
    mine = await _billed(client, rt, tenant, admin_headers, finalize=True)
    await _billed(client, rt, tenant, admin_headers, finalize=True)
    me = bearer(tenant, "customer", party=mine["_owner"][0]["id"])
    bills = (await client.get(f"{CB}/customerBill", headers=me)).json()
    assert [b["billingAccount"]["id"] for b in bills] == [mine["id"]]
    assert (await client.patch(f"{CB}/customerBill/{bills[0]['id']}", json={"state": "sent"},
                               headers=me)).status_code == 403
    customer_id = mine["relatedParty"][0]["id"]
    view = (await client.get(f"/tmf-api/customerManagement/v4/customer360/{customer_id}", headers=admin_headers)).json()
    assert [b["billNo"] for b in view["bills"]] == [bills[0]["billNo"]]
    assert view["accounts"][0]["openBalance"]["value"] == bills[0]["amountDue"]["value"]


async def test_bill_run_api(client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("10.00", rate="0")])
    r = await client.post("/billing/v1/billRun", json={"asOf": "2027-01-01", "finalize": True}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["billed"] == 1 and r.json()["totals"] == [{"unit": "EUR", "value": 10}]
    for body, word in (({"asOf": "yesterday"}, "asOf"), ({"finalize": "yes"}, "finalize"),
                       ({"billingAccount": "x"}, "billingAccount"), ({"when": 1}, "when")):
        bad = await client.post("/billing/v1/billRun", json=body, headers=admin_headers)
        assert bad.status_code == 400 and word in bad.json()["message"], bad.text
    reader = bearer(tenant, "customer", party="p")
    assert (await client.post("/billing/v1/billRun", json={}, headers=reader)).status_code == 403

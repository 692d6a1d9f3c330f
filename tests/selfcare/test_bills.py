"""My bills in the portal: the customer's own issued bills, the amount due, each bill's PDF — never another
customer's, whatever the request names."""

from __future__ import annotations

from typing import Any

import httpx

from tests.selfcare.portal import billed_customer, new_customer, next_matching, sign_in


async def test_my_bills_lists_own_bills_with_the_amount_due_and_pdfs(rt: Any, portal_tenant: str,
                                                                    portal_client: httpx.AsyncClient,
                                                                    other_client: httpx.AsyncClient) -> None:
    ua, ub = next_matching(), next_matching()
    a = await new_customer(rt, portal_tenant, email=ua.email, given="Alice", family="Ames")
    b = await new_customer(rt, portal_tenant, email=ub.email, given="Bruno", family="Baker")
    bill_a = await billed_customer(rt, portal_tenant, a, "25.00")
    bill_b = await billed_customer(rt, portal_tenant, b, "40.00")
    await sign_in(portal_client, ua)
    await sign_in(other_client, ub)

    mine = (await portal_client.get("/selfcare/api/bills")).json()
    assert [x["billNo"] for x in mine["bills"]] == [bill_a["billNo"]]
    row = mine["bills"][0]
    # March and April in advance: 2 × 25.00 + 20 % VAT
    assert row["total"] == {"value": "60.00", "unit": "EUR"} and row["state"] == "validated"
    assert row["pdf"] == f"/selfcare/api/bills/{bill_a['id']}.pdf"
    # local dates of the account (Paris): billed 1 April for March, due 14 days later
    assert (row["billDate"], row["periodStart"], row["periodEnd"], row["dueDate"]) == (
        "2027-04-01", "2027-03-01", "2027-03-31", "2027-04-15")
    assert mine["due"] == [{"account": "Home plan", "accountId": bill_a["billingAccount"]["id"],
                            "billNo": bill_a["billNo"], "amountDue": {"value": "60.00", "unit": "EUR"},
                            "dueDate": "2027-04-15", "overdue": False, "daysPastDue": 0}]

    pdf = await portal_client.get(row["pdf"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    # another customer's bill: not found, whatever its id
    for url in (f"/selfcare/api/bills/{bill_b['id']}.pdf", "/selfcare/api/bills/..%2f..%2fsecret.pdf"):
        r = await portal_client.get(url)
        assert r.status_code == 404, (url, r.text)
    assert (await other_client.get(f"/selfcare/api/bills/{bill_b['id']}.pdf")).status_code == 200
    theirs = (await other_client.get("/selfcare/api/bills")).json()
    assert [x["billNo"] for x in theirs["bills"]] == [bill_b["billNo"]]
    async with httpx.AsyncClient(transport=portal_client._transport, base_url="http://testserver") as anon:
        assert (await anon.get("/selfcare/api/bills")).status_code == 401
        assert (await anon.get(row["pdf"])).status_code == 401

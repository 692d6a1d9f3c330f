"""Credit notes: a numbered document of its own (its own series), crediting the balance with taxes in the bill's
proportions; the bill never changes; the notes of a bill never credit more than it charged."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from tests.billing.helpers import CB, TMF678, billing_account, in_tenant, recurring, run, sell
from tests.customer.helpers import assert_valid


async def test_a_credit_note_credits_the_balance_and_never_more_than_the_bill(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("50.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    [bill] = (await client.get(f"{CB}/customerBill", headers=admin_headers)).json()
    assert bill["taxIncludedAmount"]["value"] == 60
    r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                          json={"bill": {"id": bill["id"]}, "amount": 12, "reason": "Network outage, 6 days"})
    assert r.status_code == 201, r.text
    note = r.json()
    assert_valid(TMF678, "CustomerBill", note)
    assert (note["category"], note["runType"], note["state"]) == ("creditNote", "offCycle", "validated")
    assert note["billNo"].startswith("CN-") and note["billNo"].endswith("-000001")  # dated today, its own series
    assert note["taxIncludedAmount"]["value"] == -12 and note["taxExcludedAmount"]["value"] == -10
    assert note["taxItem"][0]["taxAmount"]["value"] == -2
    assert note["correctedBill"]["billNo"] == bill["billNo"]
    assert note["previousBalance"]["value"] == 60 and note["amountDue"]["value"] == 48
    # the bill is as it was; the balance is credited
    assert (await client.get(f"{CB}/customerBill/{bill['id']}", headers=admin_headers)).json() == bill
    [(balance,)] = await in_tenant(rt, tenant, "SELECT balance_after FROM billing_customer_bill WHERE id = :n",
                                   n=note["id"])
    assert balance == Decimal(48)
    too_much = await client.post("/billing/v1/creditNote", headers=admin_headers,
                                 json={"bill": {"id": bill["id"]}, "amount": 48.01, "reason": "again"})
    assert too_much.status_code == 409 and "48.00" in too_much.json()["message"]
    rest = await client.post("/billing/v1/creditNote", headers=admin_headers,
                             json={"bill": {"id": bill["id"]}, "reason": "Cancelled"})
    assert rest.status_code == 201 and rest.json()["taxIncludedAmount"]["value"] == -48
    assert rest.json()["amountDue"]["value"] == 0
    lines = (await client.get(f"{CB}/appliedCustomerBillingRate", params={"bill.id": rest.json()["id"]},
                              headers=admin_headers)).json()
    assert len(lines) == 1 and lines[0]["type"] == "appliedBillingCredit"
    nothing_left = await client.post("/billing/v1/creditNote", headers=admin_headers,
                                     json={"bill": {"id": bill["id"]}, "reason": "more"})
    assert nothing_left.status_code == 409
    for body, word in (({"reason": "x"}, "bill.id"), ({"bill": {"id": bill["id"]}}, "reason"),
                       ({"bill": {"id": bill["id"]}, "reason": "x", "amount": "lots"}, "amount"),
                       ({"bill": {"id": rest.json()["id"]}, "reason": "x"}, "credit note")):
        bad = await client.post("/billing/v1/creditNote", json=body, headers=admin_headers)
        assert bad.status_code == 400 and word in bad.json()["message"], bad.text


async def test_the_credit_notes_of_a_bill_credit_exactly_its_tax_whatever_the_pieces(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """Three credit notes of a third each of a bill of 60.00 (10.00 VAT): each note's tax, rounded on its own,
    would be 3.33 + 3.33 + 3.33 = 9.99 (and the net 50.01: more revenue reversed than was billed). Each note credits
    the tax of what the notes credited so far, less what the earlier ones credited: together, exactly the bill's."""
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("50.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    [bill] = (await client.get(f"{CB}/customerBill", headers=admin_headers)).json()
    assert bill["taxIncludedAmount"]["value"] == 60 and bill["taxItem"][0]["taxAmount"]["value"] == 10
    notes = []
    for _ in range(3):
        r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                              json={"bill": {"id": bill["id"]}, "amount": "20.00", "reason": "Goodwill"})
        assert r.status_code == 201, r.text
        notes.append(r.json())
    tax = sum((Decimal(str(n["taxItem"][0]["taxAmount"]["value"])) for n in notes), Decimal(0))
    net = sum((Decimal(str(n["taxExcludedAmount"]["value"])) for n in notes), Decimal(0))
    assert (tax, net) == (Decimal("-10.00"), Decimal("-50.00"))
    assert [Decimal(str(n["taxIncludedAmount"]["value"])) for n in notes] == [Decimal("-20.00")] * 3


async def test_a_credit_note_finer_than_the_currency_is_refused_not_rounded(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A credit note of 10.005 EUR was rounded to 10.01 (more credit than asked) and one of 0.004 refused as a
    credit of 0.00: an amount with more decimals than the currency allows is refused, and nothing is credited."""
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("50.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    [bill] = (await client.get(f"{CB}/customerBill", headers=admin_headers)).json()
    for amount in ("10.005", 0.004):
        r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                              json={"bill": {"id": bill["id"]}, "amount": amount, "reason": "Outage"})
        assert r.status_code == 400 and "decimals" in r.json()["message"], r.text
    notes = await in_tenant(rt, tenant, "SELECT count(*) FROM billing_customer_bill WHERE corrects_bill_id = :b",
                            b=bill["id"])
    assert notes == [(0,)]

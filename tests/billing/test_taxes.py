"""Taxes: exact per line (exclusive and inclusive prices, stacking rates, 0- and 3-decimal currencies), summed per
rate on the bill; the built-in engine's table by jurisdiction, category and validity; exempt accounts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.taxes import TaxRate, applicable, taxes_of
from tests.billing.helpers import billing_account, in_tenant, one_time, recurring, run, sell

VAT = TaxRate("FR", "standard", "VAT", Decimal(20), date(2000, 1, 1))
LEVY = TaxRate("FR", "standard", "Telecom levy", Decimal("1.3"), date(2027, 1, 1))
OLD = TaxRate("FR", "standard", "VAT", Decimal("19.6"), date(1995, 1, 1), date(2000, 1, 1))


def test_exclusive_and_inclusive_prices() -> None:
    assert taxes_of(Decimal("10.00"), [VAT], "EUR") == (Decimal("10.00"), [
        type(taxes_of(Decimal(1), [VAT], "EUR")[1][0])("VAT", "standard", Decimal(20), Decimal("2.00"))])
    net, taxes = taxes_of(Decimal("10.00"), [VAT, LEVY], "EUR", inclusive=True)
    assert net == Decimal("8.24") and [t.amount for t in taxes] == [Decimal("1.65"), Decimal("0.11")]  # 10 / 1.213
    assert net + sum(t.amount for t in taxes) == Decimal("10.00")
    assert taxes_of(Decimal(1000), [VAT], "JPY", inclusive=True)[0] == Decimal(833)
    assert taxes_of(Decimal("1.000"), [VAT], "BHD")[1][0].amount == Decimal("0.200")


def test_the_table_by_jurisdiction_category_and_date() -> None:
    table = [VAT, LEVY, OLD, TaxRate("US-CA", "standard", "Sales tax", Decimal("7.25"), date(2000, 1, 1)),
             TaxRate("FR", "reduced", "VAT", Decimal("5.5"), date(2000, 1, 1))]
    assert applicable(table, "FR", None, "standard", date(2026, 6, 1)) == [VAT]
    assert applicable(table, "FR", None, "standard", date(2027, 6, 1)) == [VAT, LEVY]
    assert applicable(table, "FR", None, "standard", date(1999, 6, 1)) == [OLD]
    assert [r.rate for r in applicable(table, "FR", None, "reduced", date(2027, 6, 1))] == [Decimal("5.5")]
    assert [r.name for r in applicable(table, "US", "CA", "standard", date(2027, 6, 1))] == ["Sales tax"]
    assert applicable(table, "DE", None, "standard", date(2027, 6, 1)) == []


@settings(max_examples=300, deadline=None)
@given(amount=st.decimals(min_value=Decimal("-10000"), max_value=Decimal("10000"), places=3),
       currency=st.sampled_from(["EUR", "JPY", "BHD"]),
       rates=st.lists(st.decimals(min_value=Decimal(0), max_value=Decimal(30), places=2), min_size=1, max_size=3))
def test_an_inclusive_price_splits_into_net_and_taxes_exactly(amount: Decimal, currency: str,
                                                             rates: list[Decimal]) -> None:
    table = [TaxRate("FR", "standard", f"T{i}", r, date(2000, 1, 1)) for i, r in enumerate(rates)]
    gross = amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]))
    net, taxes = taxes_of(gross, table, currency, inclusive=True)
    assert net + sum(t.amount for t in taxes) == gross
    exclusive = taxes_of(net, table, currency)[1]
    assert all(abs(a.amount - b.amount) <= Decimal(1).scaleb(-MINOR_UNITS[currency]) * len(rates)
               for a, b in zip(taxes, exclusive, strict=True))


async def _rates(client: Any, h: dict[str, str]) -> None:
    for body in ({"jurisdiction": "FR", "category": "standard", "name": "VAT", "rate": 20, "validFrom": "2000-01-01"},
                 {"jurisdiction": "FR", "category": "standard", "name": "Telecom levy", "rate": "1.3",
                  "validFrom": "2027-01-01"}):
        r = await client.post("/billing/v1/taxRate", json=body, headers=h)
        assert r.status_code == 201, r.text


async def test_the_built_in_engine_on_a_bill(client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    await _rates(client, admin_headers)
    assert (await client.patch("/billing/v1/settings", json={"taxCountry": "FR"}, headers=admin_headers)).status_code \
        == 200
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("10.00"), one_time("33.33")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    [(body,)] = await in_tenant(rt, tenant, "SELECT body FROM billing_customer_bill")
    # per line: 10.00 → 2.00 + 0.13; 33.33 → 6.67 + 0.43; summed per rate
    assert body["taxItem"] == [
        {"@type": "TaxItem", "taxCategory": "Telecom levy/standard", "taxRate": Decimal("1.3"),
         "taxAmount": {"unit": "EUR", "value": Decimal("0.56")}},
        {"@type": "TaxItem", "taxCategory": "VAT/standard", "taxRate": Decimal(20),
         "taxAmount": {"unit": "EUR", "value": Decimal("8.67")}}]
    assert body["taxExcludedAmount"]["value"] == Decimal("43.33")
    assert body["taxIncludedAmount"]["value"] == Decimal("52.56")


async def test_inclusive_prices_and_an_exempt_account(client: Any, rt: Any, tenant: str,
                                                      admin_headers: dict[str, str]) -> None:
    await _rates(client, admin_headers)
    r = await client.patch("/billing/v1/settings", json={"taxCountry": "FR", "taxInclusive": True},
                           headers=admin_headers)
    assert r.status_code == 200, r.text
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("10.00")])
    exempt = await billing_account(client, admin_headers, tz="UTC")
    r = await client.patch(f"/tmf-api/accountManagement/v4/billingAccount/{exempt['id']}", headers=admin_headers,
                           json={"taxExemption": [{"certificateNumber": "EX-42", "issuingJurisdiction": "FR",
                                                   "reason": "embassy",
                                                   "validFor": {"startDateTime": "2026-01-01T00:00:00Z"}}]})
    assert r.status_code == 200, r.text
    await sell(rt, tenant, exempt, "2027-01-01T00:00:00Z", [recurring("10.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    rows = await in_tenant(rt, tenant, "SELECT billing_account_id, body FROM billing_customer_bill")
    bills = {r[0]: r[1] for r in rows}
    assert bills[account["id"]]["taxIncludedAmount"]["value"] == Decimal("10.00")  # the price, tax included
    assert bills[account["id"]]["taxExcludedAmount"]["value"] == Decimal("8.24")
    assert bills[exempt["id"]]["taxItem"] == [] and bills[exempt["id"]]["taxIncludedAmount"]["value"] == 10


async def test_an_exemption_is_valid_on_the_local_dates_of_the_account(client: Any, rt: Any, tenant: str,
                                                                        admin_headers: dict[str, str]) -> None:
    await _rates(client, admin_headers)
    r = await client.patch("/billing/v1/settings", json={"taxCountry": "FR"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    # valid until 2 January 2027 at midnight in Paris (23:00 UTC on the 1st): the bill of 1 January is exempt
    paris = await billing_account(client, admin_headers, tz="Europe/Paris")
    # valid from 1 January 2027 at midnight in Paris (23:00 UTC on 31 December): not yet on the bill of 31 December
    starts = await billing_account(client, admin_headers, tz="Europe/Paris", day=31)
    for account, valid in ((paris, {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T23:00:00Z"}),
                           (starts, {"startDateTime": "2026-12-31T23:00:00Z"})):
        r = await client.patch(f"/tmf-api/accountManagement/v4/billingAccount/{account['id']}", headers=admin_headers,
                               json={"taxExemption": [{"certificateNumber": "EX-7", "issuingJurisdiction": "FR",
                                                       "reason": "embassy", "validFor": valid}]})
        assert r.status_code == 200, r.text
        await sell(rt, tenant, account, "2026-12-01T00:00:00Z", [one_time("10.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    rows = await in_tenant(rt, tenant, "SELECT billing_account_id, body FROM billing_customer_bill")
    bills = {r[0]: r[1] for r in rows}
    assert bills[paris["id"]]["taxItem"] == [], bills[paris["id"]]["taxItem"]
    assert bills[paris["id"]]["taxIncludedAmount"]["value"] == Decimal("10.00")
    assert bills[starts["id"]]["taxIncludedAmount"]["value"] == Decimal("12.00")  # 20 % VAT: not exempt yet


async def test_bad_tax_rates_are_refused(client: Any, admin_headers: dict[str, str]) -> None:
    base = {"jurisdiction": "FR", "category": "standard", "name": "VAT", "rate": 20, "validFrom": "2000-01-01"}
    for change, word in (({"jurisdiction": "France"}, "jurisdiction"), ({"rate": 120}, "rate"),
                         ({"rate": "x"}, "rate"), ({"validFrom": "soon"}, "validFrom"),
                         ({"validTo": "1999-01-01"}, "validTo"), ({"color": "red"}, "color")):
        r = await client.post("/billing/v1/taxRate", json={**base, **change}, headers=admin_headers)
        assert r.status_code == 400 and word in r.json()["message"], (change, r.text)
    assert (await client.get("/billing/v1/taxRate", headers=admin_headers)).json() == []

"""The tax engine interface: an external provider's quote fetched before the write transaction, served inside it;
a quote that no longer matches the bill parks the account instead of taxing it wrongly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from openbss.platform.tmf.resource import system_context
from openbss.pricing.taxes import QuotedTaxEngine, Tax, TaxedLine, TaxQuoteMismatch, TaxRequest
from tests.billing.helpers import billing_account, in_tenant, one_time, recurring, sell
from tests.conftest import session_services

D = Decimal


def provider(request: TaxRequest) -> list[TaxedLine]:
    """A stand-in for a remote tax service: 7 % sales tax and a 0.50 fee per line."""
    return [TaxedLine(ln.key, ln.amount, (Tax("Sales tax", ln.category, D(7), (ln.amount * D("0.07")).quantize(
        D("0.01"))), Tax("E911 fee", "telecom", D(0), D("0.50")))) for ln in request.lines]


async def test_a_quote_fetched_before_the_transaction_taxes_the_bill(client: Any, rt: Any, tenant: str,
                                                                     admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("30.00"), one_time("10.00")])
    billing = session_services().billing.service
    async with rt.db.transaction(tenant) as session:  # read only: nothing is written
        request = await billing.tax_request_for(system_context(tenant, session, "http://testserver"), account["id"],
                                                date(2027, 3, 1))
    assert [(ln.amount, ln.category) for ln in request.lines] == [(D("30.00"), "standard"), (D("10.00"), "standard")]
    assert await in_tenant(rt, tenant, "SELECT id FROM billing_customer_bill") == []
    quote = provider(request)  # the network call: outside any transaction
    async with rt.db.transaction(tenant) as session:
        bill = await billing.bill_account(system_context(tenant, session, "http://testserver"), account["id"],
                                          date(2027, 3, 1), finalize=True,
                                          tax_engine=QuotedTaxEngine(request, quote))
    assert bill is not None
    # 40.00 + 7 % (2.10 + 0.70) + 2 × 0.50
    assert bill["taxIncludedAmount"]["value"] == D("43.80")
    assert {(t["taxCategory"], t["taxAmount"]["value"]) for t in bill["taxItem"]} == {
        ("Sales tax/standard", D("2.80")), ("E911 fee/telecom", D("1.00"))}  # a fixed fee is listed too


async def test_a_stale_quote_parks_nothing_and_writes_nothing(client: Any, rt: Any, tenant: str,
                                                              admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("30.00")])
    billing = session_services().billing.service
    async with rt.db.transaction(tenant) as session:
        request = await billing.tax_request_for(system_context(tenant, session, "http://testserver"), account["id"],
                                                date(2027, 3, 1))
    quote = provider(request)
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [one_time("10.00")])  # sold since the quote
    with pytest.raises(TaxQuoteMismatch, match="the bill changed since it was quoted"):
        async with rt.db.transaction(tenant) as session:
            await billing.bill_account(system_context(tenant, session, "http://testserver"), account["id"],
                                       date(2027, 3, 1), tax_engine=QuotedTaxEngine(request, quote))
    assert await in_tenant(rt, tenant, "SELECT id FROM billing_customer_bill") == []

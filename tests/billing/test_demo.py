"""The demo's bills: four months of issued bills with a trial that converts, an upgrade with its proration credit,
a cancellation, a postpaid line over its allowance, a tax-exempt business account and a credit note; their PDFs;
seeding twice changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from openbss.demo.billing import seed_billing
from tests.billing.helpers import in_tenant
from tests.conftest import bearer, make_tenant, session_services

D = Decimal


async def test_the_demo_has_months_of_bills_for_each_scenario(client: httpx.AsyncClient, rt: Any) -> None:
    tenant = await make_tenant(rt, "demo")
    services = session_services()
    accounts = await seed_billing(services, rt.db, tenant, "http://testserver")
    assert await seed_billing(services, rt.db, tenant, "http://testserver") == {}

    async def lines(scenario: str) -> list[tuple[str, Any, D, dict[str, Any]]]:
        rows = await in_tenant(rt, tenant, "SELECT charge_key, period_start, amount, body FROM billing_applied_rate "
                                           "WHERE billing_account_id = :a ORDER BY period_start, charge_key",
                               a=accounts[scenario])
        return [(r[0].split("|")[0], r[1].isoformat(), r[2], r[3]) for r in rows]

    bills = await in_tenant(rt, tenant, "SELECT billing_account_id, state, number FROM billing_customer_bill")
    assert all(b[1] == "validated" for b in bills) and len(bills) >= 6 * 4
    trial = [(k, s, a) for k, s, a, _ in await lines("trial")]
    # a month free from 15 August, then 29.99: 16 of September's 30 days (15.99), then whole months
    assert trial[:2] == [("recurring", "2026-08-15", D("0.00")), ("recurring", "2026-09-01", D("0.00"))]
    assert trial[2:] == [("recurring", "2026-09-15", D("15.99")), ("recurring", "2026-10-01", D("29.99")),
                         ("recurring", "2026-11-01", D("29.99")), ("recurring", "2026-12-01", D("29.99"))]
    upgrade = [(k, s, a) for k, s, a, _ in await lines("upgrade")]
    # September billed 19.99 in advance; upgraded on the 17th: 16 of 30 days used (10.66), 9.33 credited
    assert ("credit", "2026-09-01", D("-9.33")) in upgrade and ("recurring", "2026-09-17", D("18.66")) in upgrade
    cancel = [(k, s, a) for k, s, a, _ in await lines("cancellation")]
    assert ("credit", "2026-10-01", D("-7.09")) in cancel  # cancelled 10 October: 9.99 − 9 days of 31 (2.90)
    assert not [x for x in cancel if x[1] >= "2026-11-01" and x[0] == "recurring"]
    usage = [a for k, s, a, _ in await lines("postpaid") if k == "usage"]
    assert usage and sum(usage) > 0  # the minutes over the allowance
    exempt = await lines("taxExempt")
    assert all(b["taxIncludedAmount"] == b["taxExcludedAmount"] for *_, b in exempt)
    assert exempt[0][3]["characteristic"] and any(c.get("name") == "taxExemption" and c["value"] == "DE136695976"
                                                  for c in exempt[0][3]["characteristic"])
    notes = await in_tenant(rt, tenant, "SELECT number, total FROM billing_customer_bill "
                                        "WHERE corrects_bill_id IS NOT NULL")
    assert [(n, t) for n, t in notes] == [("CN-2026-000001", D("-10.00"))]

    h = bearer(tenant, "billing_ops")
    [[bill_id]] = await in_tenant(rt, tenant, "SELECT id FROM billing_customer_bill WHERE billing_account_id = :a "
                                              "ORDER BY bill_date DESC LIMIT 1", a=accounts["postpaid"])
    pdf = await client.get(f"/billing/v1/customerBill/{bill_id}/document.pdf", headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

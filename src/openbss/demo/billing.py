"""The demo's bills: customers with four months of issued bills (September to December 2026) that show what billing
does — a trial that converts, a mid-cycle upgrade with its proration credit, a cancellation, a postpaid line over
its allowance, a tax-exempt business account (EU reverse charge), and a credit note.

Idempotent: seeded once per tenant (when the tenant has no bill yet).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from openbss.billing.models import CustomerBill
from openbss.charging.schemas import CreditControlRequest
from openbss.demo.charging import FALLBACK_PLAN
from openbss.demo.support import admin_context
from openbss.platform.db import Database
from openbss.platform.tmf.resource import Context
from openbss.services import Services

#: the bill dates of the demo: cycle day 1, Paris
BILL_DATES = (date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1))
POSTPAID_LINE = "+33600000777"


def _fee(name: str, price_id: str, value: str) -> dict[str, Any]:
    return {"name": name, "priceType": "recurring", "recurringChargePeriod": "month",
            "price": {"dutyFreeAmount": {"unit": "EUR", "value": value}, "taxRate": 20},
            "productOfferingPrice": {"id": price_id, "name": name}}


async def _customer(services: Services, ctx: Context, given: str, family: str, *, business: bool = False,
                    **account: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    if business:
        party = await services.party.service.create_organization(ctx, {"name": given, "tradingName": given})
    else:
        party = await services.party.service.create_individual(ctx, {"givenName": given, "familyName": family})
    customer = await services.customer.service.create_customer(ctx, {
        "name": party.get("fullName") or party.get("name") or given, "status": "active",
        "engagedParty": {"id": party["id"], "@referredType": party["@type"]}})
    bill_account = await services.account.service.create_billing_account(ctx, {
        "name": f"{given} {family}".strip(), "currency": "EUR", "paymentTermsDays": 14,
        "billCycle": {"billingDay": 1, "frequency": "monthly", "timeZone": "Europe/Paris"},
        "contact": [{"contactType": "billing", "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                     "contactMedium": [{"mediumType": "postalAddress", "characteristic": {
                         "street1": "1 rue de la Paix", "city": "Paris", "postCode": "75002", "country": "FR"}}]}],
        "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer",
                          "name": customer["name"]}], **account})
    await services.account.service.activate(ctx, bill_account["id"])
    return party, customer, bill_account


async def _product(services: Services, ctx: Context, party: dict[str, Any], account: dict[str, Any], name: str,
                   start: str, prices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    product: dict[str, Any] = await services.inventory.service.products.record(ctx, {
        "@type": "Product", "name": name, "status": "active", "startDate": start,
        "billingAccount": {"id": account["id"]}, "productPrice": prices,
        "relatedParty": [{"id": party["id"], "role": "owner", "@referredType": party["@type"]}], **extra})
    return product


async def _calls(services: Services, db: Database, tenant_id: str, base_url: str, msisdn: str) -> None:
    """25 minutes of calls in November 2026 on a line with 10 minutes included: 15 minutes over the allowance."""
    start = datetime(2026, 11, 9, 9, tzinfo=UTC)
    for i, seconds in enumerate((600, 480, 420)):
        sid = f"demo-bill;{msisdn};{i}"
        when = start + timedelta(days=3 * i)
        for n, kind, units in ((0, "INITIAL_REQUEST", {"requestedServiceUnit": {"time": 900}}),
                               (1, "TERMINATION_REQUEST", {"usedServiceUnit": {"time": seconds}})):
            await services.charging.service.credit_control(db, tenant_id, CreditControlRequest.model_validate({
                "sessionId": sid, "requestType": kind, "requestNumber": n, "serviceContextId": "32260@3gpp.org",
                "subscriptionId": {"type": "END_USER_E164", "data": msisdn},
                "eventTimestamp": (when + timedelta(seconds=n * seconds)).isoformat(),
                "serviceInformation": {"calledParty": "+33145000000"},
                "multipleServicesCreditControl": [{"ratingGroup": 1, **units}]}), base_url)


async def seed_billing(services: Services, db: Database, tenant_id: str, base_url: str) -> dict[str, str]:
    """Seed the demo's billing customers and bill them month by month; returns the billing account id of each
    scenario (empty when the tenant already has bills)."""
    billing = services.billing.service
    async with db.transaction(tenant_id) as session:
        if (await session.scalar(select(func.count()).select_from(CustomerBill))) or 0:
            return {}
        ctx = admin_context(tenant_id, session, base_url, subject="billing-demo")
        if not await billing.tax_rates(ctx):
            await billing.add_tax_rate(ctx, {"jurisdiction": "FR", "category": "standard", "name": "VAT",
                                             "rate": 20, "validFrom": "2000-01-01"})
        catalog = services.catalog.service.get_service("productOfferingPrice")
        trial_price = await catalog.create(ctx, {
            "name": "Fibre 1G", "priceType": "recurring", "price": {"unit": "EUR", "value": "29.99"},
            "recurringChargePeriodType": "month", "lifecycleStatus": "Active",
            "pricePhase": [{"name": "Free trial", "duration": {"amount": 1, "units": "month"}, "price": 0}]},
            any_status=True)
        accounts: dict[str, str] = {}

        party, _, acc = await _customer(services, ctx, "Tess", "Trial")
        await _product(services, ctx, party, acc, "Fibre 1G (trial, then 29.99)", "2026-08-14T22:00:00Z",
                       [_fee("Fibre 1G", trial_price["id"], "29.99")])
        accounts["trial"] = acc["id"]

        party, _, acc = await _customer(services, ctx, "Ugo", "Upgrade")
        upgraded = await _product(services, ctx, party, acc, "Mobile 20 GB → 100 GB", "2026-07-31T22:00:00Z",
                                  [_fee("Mobile 20 GB", "demo-mobile-20", "19.99")])
        accounts["upgrade"] = acc["id"]

        party, _, acc = await _customer(services, ctx, "Cleo", "Cancel")
        cancelled = await _product(services, ctx, party, acc, "TV option", "2026-07-31T22:00:00Z",
                                   [_fee("TV option", "demo-tv", "9.99")])
        accounts["cancellation"] = acc["id"]

        party, _, acc = await _customer(services, ctx, "Paul", "Postpaid")
        postpaid = await _product(services, ctx, party, acc, "Postpaid 10 min", "2026-07-31T22:00:00Z",
                                  [_fee("Postpaid 10 min", "demo-postpaid", "5.00")])
        plan = {**FALLBACK_PLAN, "voice": {**FALLBACK_PLAN["voice"], "allowances": [
            {"name": "10 minutes", "quantity": {"amount": 10, "units": "minute"}, "period": "month"}]}}
        await services.charging.service.open_account(
            ctx, subscriber=POSTPAID_LINE, payment_type="postpaid", billing_account_id=acc["id"],
            product_id=postpaid["id"], party_id=party["id"], plan=plan, credit_limit=Decimal(100),
            period_start=datetime(2026, 10, 31, 23, tzinfo=UTC))
        accounts["postpaid"] = acc["id"]

        party, _, acc = await _customer(services, ctx, "Nordlicht GmbH", "", business=True, vatNumber="DE136695976",
                                        taxExemption=[{"issuingJurisdiction": "EU", "reason": "reverseCharge",
                                                       "certificateNumber": "DE136695976",
                                                       "validFor": {"startDateTime": "2026-01-01T00:00:00Z"}}])
        await _product(services, ctx, party, acc, "Business fibre", "2026-07-31T22:00:00Z",
                       [_fee("Business fibre", "demo-business-fibre", "89.00")])
        accounts["taxExempt"] = acc["id"]

        party, _, acc = await _customer(services, ctx, "Nora", "Note")
        await _product(services, ctx, party, acc, "Mobile 50 GB", "2026-07-31T22:00:00Z",
                       [_fee("Mobile 50 GB", "demo-mobile-50", "24.99")])
        accounts["creditNote"] = acc["id"]

    await _calls(services, db, tenant_id, base_url, POSTPAID_LINE)
    for when in BILL_DATES:
        async with db.transaction(tenant_id) as session:
            ctx = admin_context(tenant_id, session, base_url, subject="billing-demo")
            if when == date(2026, 10, 1):  # upgraded on 17 September: a credit for the rest of September
                await billing.record_change(ctx, {
                    "product": {"id": upgraded["id"]}, "kind": "upgrade", "effective": "2026-09-17",
                    "productPrice": [_fee("Mobile 100 GB", "demo-mobile-100", "39.99")]})
            if when == date(2026, 11, 1):  # cancelled on 10 October, after October was billed: a credit
                await services.inventory.service.change_product(ctx, cancelled["id"], {
                    "status": "terminated", "terminationDate": "2026-10-09T22:00:00Z"})
            await billing.run(ctx, when, finalize=True, account_ids=list(accounts.values()))
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="billing-demo")
        noted = (await session.execute(select(CustomerBill.id).where(
            CustomerBill.billing_account_id == accounts["creditNote"], CustomerBill.bill_date == BILL_DATES[1])
        )).scalar_one()
        await billing.credit_note(ctx, noted, amount=Decimal("10.00"), reason="Network outage on 20 September")
    return accounts

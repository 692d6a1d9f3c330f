"""The demo's collections: a dunning policy (an e-mail reminder when a bill is due, the line barred ten days later)
assigned to four customers whose bill went unpaid, driven by the real scheduler as of today —

* ``reminded``: three days late, the reminder sent (an interaction in care once the worker relays its event);
* ``suspended``: fifteen days late with a mobile line: reminded, then barred by a suspend order through ordering and
  provisioning, so the line is ``suspended`` in the inventory and charging refuses it;
* ``resumed``: the same, then the bill paid in cash: the episode closes and a resume order brings the line back;
* ``promise``: four days late, reminded, and a promise to pay in a week recorded by an agent (the steps pause).

Idempotent: seeded once per tenant (when the demo policy does not exist yet). Needs the demo catalog and the number
and SIM pools (``seed_orders``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from openbss.collections.models import DunningPolicy
from openbss.demo.support import admin_context, settle_orders
from openbss.platform.db import utcnow
from openbss.platform.runtime import Runtime
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.services import Services

POLICY = "Demo dunning: remind, then bar"
#: scenario → (given name, days past due today, with a mobile line)
SCENARIOS: dict[str, tuple[str, int, bool]] = {
    "reminded": ("Rita", 3, False), "suspended": ("Sam", 15, True), "resumed": ("Ravi", 15, True),
    "promise": ("Priya", 4, False)}


def bill_date(today: date) -> date:
    """The demo bills' date: about a month ago, on a day every month has (the accounts' billing day)."""
    d = today - timedelta(days=30)
    while d.day > 28:
        d -= timedelta(days=1)
    return d


async def _customer(services: Services, ctx: Context, given: str, billed: date, terms: int, handset: bool
                    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    email = f"{given.lower()}.late@example.com"
    party = await services.party.service.create_individual(ctx, {
        "givenName": given, "familyName": "Late",
        "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": email}}]})
    customer = await services.customer.service.create_customer(ctx, {
        "name": f"{given} Late", "status": "active",
        "engagedParty": {"id": party["id"], "@referredType": "Individual"}})
    account = await services.account.service.create_billing_account(ctx, {
        "name": f"{given} Late", "currency": "EUR", "paymentTermsDays": terms,
        "billCycle": {"billingDay": billed.day, "frequency": "monthly", "timeZone": "UTC"},
        "contact": [{"contactType": "billing", "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                     "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": email}}]}],
        "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer",
                          "name": customer["name"]}]})
    await services.account.service.activate(ctx, account["id"])
    if not handset:
        return party, customer, account
    await services.inventory.service.products.record(ctx, {
        "@type": "Product", "name": "Handset instalment", "status": "active",
        "startDate": format_datetime(utcnow() - timedelta(days=(utcnow().date() - billed).days + 1)),
        "billingAccount": {"id": account["id"]},
        "relatedParty": [*account["relatedParty"], {"id": party["id"], "role": "owner",
                                                     "@referredType": "Individual"}],
        "productPrice": [{"name": "Handset instalment", "priceType": "oneTime",
                          "price": {"dutyFreeAmount": {"unit": "EUR", "value": "60.00"}, "taxRate": "20"},
                          "productOfferingPrice": {"id": "demo-collections-handset", "name": "Handset instalment"}}]})
    return party, customer, account


async def seed_collections(services: Services, runtime: Runtime, tenant_id: str, base_url: str) -> dict[str, str]:
    """Seed the demo's collections; returns the billing account id of each scenario (empty when seeded before)."""
    db = runtime.db
    collections, billing, payments = services.collections, services.billing.service, services.payments.service
    async with db.transaction(tenant_id) as session:
        if await session.scalar(select(func.count()).select_from(DunningPolicy).where(
                DunningPolicy.body["name"].astext == POLICY)):
            return {}
    today = utcnow().date()
    billed = bill_date(today)
    accounts: dict[str, str] = {}
    customers: dict[str, dict[str, Any]] = {}
    settings = services.settings.model_copy(update={"provisioning_step_backoff_seconds": 0.05,
                                                    "simulator_config_cache_seconds": 0.0})
    orchestrator = services.provisioning.orchestrator(settings)
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="collections-demo")
        offers, _ = await services.catalog.service.orderable_offerings(ctx, channel="web", market_segment="consumer")
        mobile = next(o for o in offers if o["name"] == "Mobile M")
        for key, (given, late, line) in SCENARIOS.items():
            terms = (today - billed).days - late
            _, customer, account = await _customer(services, ctx, given, billed, terms, handset=not line)
            accounts[key], customers[key] = account["id"], customer
            if line:
                await services.ordering.service.place(ctx, services.ordering.service.validate_create({
                    "externalId": f"demo-collections-{key}", "channel": [{"id": "web", "name": "Web shop"}],
                    "billingAccount": {"id": account["id"]},
                    "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer"}],
                    "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": mobile["id"]},
                                          "product": {"productCharacteristic": [
                                              {"name": "simType", "value": "eSIM"}]}}]}))
    await settle_orders(runtime, orchestrator, tenant_id)  # the lines are live

    bills: dict[str, dict[str, Any]] = {}
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="collections-demo")
        since = format_datetime(datetime.combine(billed - timedelta(days=1), time(12), tzinfo=UTC))
        for key, (_, _, line) in SCENARIOS.items():
            if line:  # the line has been live for a month: billed on the bill date (a barred line must be one
                # activated by an order: collections bars it through ordering)
                for product in await services.inventory.service.products_billed_to(ctx, accounts[key]):
                    await services.inventory.service.change_product(ctx, product["id"], {"startDate": since})
        await billing.run(ctx, billed, finalize=True, account_ids=list(accounts.values()))
        for key, account_id in accounts.items():
            found = [b for b in await billing.customer_bills(ctx, customers[key])
                     if (b.get("billingAccount") or {}).get("id") == account_id]
            bills[key] = await billing.get_bill(ctx, found[0]["id"])
            await payments.bill_issued(ctx, bills[key])  # what payments' reaction to billing's event does
        await collections.resources["dunningPolicy"].create(ctx, {
            "name": POLICY, "description": "An e-mail reminder on the due date; the line barred ten days later",
            "billingAccount": [{"id": a} for a in accounts.values()],
            "dunningStep": [
                {"name": "Reminder", "action": "reminder", "daysPastDue": 0, "channel": ["email"],
                 "template": {"en": "Your bill of {amount} {currency} is {daysPastDue} days overdue.",
                              "fr": "Votre facture de {amount} {currency} est en retard de {daysPastDue} jours."}},
                {"name": "Bar the line", "action": "suspend", "daysPastDue": 10,
                 "minimumAmount": [{"unit": "EUR", "value": 10}]}]})
    await collections.service.run_tenant(tenant_id, today, worker="demo")
    await settle_orders(runtime, orchestrator, tenant_id)  # the suspend orders, through provisioning

    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="collections-demo")
        await collections.resources["promiseToPay"].create(ctx, {
            "billingAccount": {"id": accounts["promise"]},
            "amount": bills["promise"]["taxIncludedAmount"],
            "promisedDate": (today + timedelta(days=7)).isoformat()})
        cash = await services.payments.methods["paymentMethod"].create(ctx, {
            "@type": "cash", "name": "Cash at the shop", "account": [{"id": accounts["resumed"]}]})
        principal = ctx.principal
    owed = Decimal(str(bills["resumed"]["taxIncludedAmount"]["value"]))
    await payments.pay(principal, {
        "account": {"id": accounts["resumed"]}, "paymentMethod": {"id": cash["id"]},
        "totalAmount": {"unit": "EUR", "value": owed},
        "paymentItem": [{"item": {"id": bills["resumed"]["id"], "@referredType": "CustomerBill"}}]})
    async with db.transaction(tenant_id) as session:  # what collections' reaction to the payment's event does
        ctx = admin_context(tenant_id, session, base_url, subject="collections-demo")
        await collections.service.account_changed(ctx, accounts["resumed"])
    await settle_orders(runtime, orchestrator, tenant_id)  # the resume order
    return accounts

"""Helpers of the portal tests: demo-like customers with charging lines, and signing in through the loopback
identity provider's real sign-in form."""

from __future__ import annotations

import html
import itertools
import random
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import httpx

from openbss.demo.identity_provider import IdpUser
from openbss.platform.auth import Principal, permissions_for
from openbss.platform.tmf.resource import Context
from tests.conftest import session_services

PASSWORD = "pw-Secret-1"
# identity provider users: verified emails that match a customer (one per test), verified "social" emails that
# match nobody, and unverified emails
MATCHING = [IdpUser(sub=f"m{n}", username=f"m{n}", password=PASSWORD, email=f"match{n}@example.net",
                    name=f"Match {n}") for n in range(300)]
SOCIAL = [IdpUser(sub=f"s{n}", username=f"s{n}", password=PASSWORD, email=f"social{n}@social.example",
                  name=f"Social {n}") for n in range(40)]
UNVERIFIED = [IdpUser(sub=f"u{n}", username=f"u{n}", password=PASSWORD, email=f"unverified{n}@example.net",
                      email_verified=False) for n in range(10)]
CORPORATE_USER = IdpUser(sub="corp-claire", username="claire", password=PASSWORD,
                         email="it.manager@northwind.example", name="Claire Moreau")
USERS = [*MATCHING, *SOCIAL, *UNVERIFIED, CORPORATE_USER]
_matching, _social, _unverified = itertools.count(), itertools.count(), itertools.count()
_numbers = random.Random()


def next_matching() -> IdpUser:
    return MATCHING[next(_matching)]


def next_social() -> IdpUser:
    return SOCIAL[next(_social)]


def next_unverified() -> IdpUser:
    return UNVERIFIED[next(_unverified)]


def new_msisdn() -> str:
    return f"+3367{_numbers.randrange(10**7):07d}"


def admin_context(tenant: str, session: Any) -> Context:
    return Context(principal=Principal("test", tenant, ("admin",), permissions=permissions_for(("admin",))),
                   session=session, base_url="http://testserver")


async def new_customer(rt: Any, tenant: str, *, email: str, msisdn: str | None = None, given: str = "Ana",
                       family: str = "Lopez", balance: str = "20.00", segment: str = "residential",
                       directory_id: str | None = None, payment_type: str = "prepaid",
                       email_verified: bool = True) -> dict[str, Any]:
    """A customer (party, customer, active billing account) with a charging line on the fallback plan."""
    from openbss.charging import service as charging
    from openbss.demo.charging import FALLBACK_PLAN

    msisdn = msisdn or new_msisdn()
    async with rt.db.transaction(tenant) as session:
        ctx = admin_context(tenant, session)
        if segment == "corporate":
            party = await session_services().party.service.create_organization(ctx, {"tradingName": given,
                                                                                       "name": given})
        else:
            party = await session_services().party.service.create_individual(ctx, {
                "givenName": given, "familyName": family, "contactMedium": [
                    {"mediumType": "email", "characteristic": {"emailAddress": email}},
                    {"mediumType": "phone", "characteristic": {"phoneNumber": "+33612345678", "contactType": "mobile"}},
                    {"mediumType": "postalAddress", "characteristic": {"street1": "1 Main Street", "city": "Paris",
                                                                       "postCode": "75001", "country": "FR"}}]})
        chars = [{"name": "segment", "valueType": "string", "value": segment},
                 {"name": "emailVerified", "valueType": "boolean", "value": email_verified}]
        if directory_id:
            chars.append({"name": "corporateDirectoryId", "valueType": "string", "value": directory_id})
        customer = await session_services().customer.service.create_customer(ctx, {
            "name": party.get("fullName") or given, "status": "active",
            "engagedParty": {"id": party["id"], "@referredType": party["@type"]}, "characteristic": chars})
        account = await session_services().account.service.create_billing_account(ctx, {
            "name": "main", "accountType": segment, "currency": "EUR",
            "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer",
                              "name": customer["name"]}]})
        await session_services().account.service.activate(ctx, account["id"])
        product = await session_services().inventory.service.record_subscription(ctx, {
            "name": "Prepaid S", "relatedParty": [{"id": party["id"], "role": "customer",
                                                   "@referredType": party["@type"]}]}, [], [])
        opened = await session_services().charging.service.open_account(
            charging.system_context(session, tenant, "http://testserver"), subscriber=msisdn,
            payment_type=payment_type, currency="EUR", party_id=party["id"], product_id=product["id"],
            plan=FALLBACK_PLAN, initial_balance=Decimal(balance), credit_limit=Decimal("50"))
    return {"party_id": party["id"], "customer_id": customer["id"], "msisdn": msisdn, "account": opened,
            "product_id": product["id"]}


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


async def idp_sign_in(authorize_url: str, username: str, password: str = PASSWORD) -> httpx.Response:
    """Fill in the identity provider's sign-in form (real HTTP); returns its answer (a redirect on success)."""
    async with httpx.AsyncClient(timeout=10) as idp:
        page = await idp.get(authorize_url)
        assert page.status_code == 200, page.text[:300]
        fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
        found = _ACTION.search(page.text)
        assert found, "no sign-in form"
        fields.update(username=username, password=password)
        return await idp.post(urljoin(authorize_url, html.unescape(found.group(1))), data=fields)


async def sign_in(client: httpx.AsyncClient, user: IdpUser, provider: str = "north") -> httpx.Response:
    """The whole browser flow; returns the portal's final redirect (to #/profile, #/link or #/signin?error)."""
    start = await client.get(f"/selfcare/auth/login/{provider}")
    assert start.status_code == 303, start.text
    answer = await idp_sign_in(start.headers["location"], user.username, user.password)
    assert answer.status_code == 302, answer.text[:300]
    back = answer.headers["location"]
    assert back.startswith("http://testserver/selfcare/auth/callback?")
    return await client.get(back.removeprefix("http://testserver"))


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("sc_csrf", "")}


async def last_message(rt: Any, tenant: str, to: str) -> str | None:
    from sqlalchemy import select

    from openbss.platform.messaging import OutboundMessage

    async with rt.db.transaction(tenant) as session:
        row = (await session.execute(select(OutboundMessage).where(OutboundMessage.recipient == to)
                                     .order_by(OutboundMessage.id.desc()).limit(1))).scalar_one_or_none()
        return row.body if row else None


def code_in(text: str | None) -> str:
    found = re.search(r"\b(\d{6})\b", text or "")
    assert found, f"no code in {text!r}"
    return found.group(1)


async def billed_customer(rt: Any, tenant: str, cust: dict[str, Any], amount: str = "25.00") -> dict[str, Any]:
    """An issued bill for the customer: a billing account of its own, a monthly plan sold on 1 March 2027, billed
    as of 1 April 2027 (March and April in advance). Returns the bill."""
    from datetime import date

    async with rt.db.transaction(tenant) as session:
        ctx = admin_context(tenant, session)
        account = await session_services().account.service.create_billing_account(ctx, {
            "name": "Home plan", "currency": "EUR", "paymentTermsDays": 14,
            "billCycle": {"billingDay": 1, "frequency": "monthly", "timeZone": "Europe/Paris"},
            "relatedParty": [{"id": cust["customer_id"], "@referredType": "Customer", "role": "customer",
                              "name": "customer"}]})
        await session_services().inventory.service.products.record(ctx, {
            "@type": "Product", "name": "Home plan", "status": "active", "startDate": "2027-02-28T23:00:00.000Z",
            "billingAccount": {"id": account["id"]},
            "productPrice": [{"name": "Monthly fee", "priceType": "recurring", "recurringChargePeriod": "month",
                              "price": {"dutyFreeAmount": {"unit": "EUR", "value": amount}, "taxRate": "20"},
                              "productOfferingPrice": {"id": "pop-home", "name": "Monthly fee"}}],
            "relatedParty": [{"id": cust["party_id"], "role": "owner", "@referredType": "Individual"}]})
        bill = await session_services().billing.service.bill_account(ctx, account["id"], date(2027, 4, 1),
                                                                     finalize=True)
    assert bill is not None
    return bill


async def overdue_customer(rt: Any, tenant: str, cust: dict[str, Any], amount: str = "25.00", *,
                           card: str | None = "tok_instant", name: str = "Home plan") -> dict[str, Any]:
    """A billing account of the customer with a bill of a run 40 days ago, unpaid and past due (as payments knows
    it), a default card (a sandbox test token) when ``card``, and collections' default policy (a reminder on
    the due date): the account is in dunning. Returns the bill."""
    from datetime import date, timedelta

    from sqlalchemy import select

    from openbss.collections.models import DunningPolicy
    from tests.conftest import deliver_all

    today = date.today()
    async with rt.db.transaction(tenant) as session:
        ctx = admin_context(tenant, session)
        account = await session_services().account.service.create_billing_account(ctx, {
            "name": name, "currency": "EUR", "paymentTermsDays": 14,
            "billCycle": {"billingDay": 1, "frequency": "monthly", "timeZone": "UTC"},
            "contact": [{"contactType": "primary", "contactName": "Billing",
                         "validFor": {"startDateTime": "2026-01-01T00:00:00Z"}, "contactMedium": [
                {"mediumType": "email", "characteristic": {"emailAddress": "billing.overdue@example.org"}}]}],
            "relatedParty": [{"id": cust["customer_id"], "@referredType": "Customer", "role": "customer",
                              "name": "customer"}]})
        start = today - timedelta(days=70)
        await session_services().inventory.service.products.record(ctx, {
            "@type": "Product", "name": "Home plan", "status": "active",
            "startDate": f"{start.isoformat()}T00:00:00.000Z", "billingAccount": {"id": account["id"]},
            "productPrice": [{"name": "Monthly fee", "priceType": "recurring", "recurringChargePeriod": "month",
                              "price": {"dutyFreeAmount": {"unit": "EUR", "value": amount}, "taxRate": "20"},
                              "productOfferingPrice": {"id": "pop-home", "name": "Monthly fee"}}],
            "relatedParty": [{"id": cust["party_id"], "role": "owner", "@referredType": "Individual"}]})
        bill = await session_services().billing.service.bill_account(ctx, account["id"], today - timedelta(days=40),
                                                                     finalize=True)
        assert bill is not None
        policies = session_services().collections.resources["dunningPolicy"]
        if not await session.scalar(select(DunningPolicy.id).where(DunningPolicy.is_default)):
            await policies.create(ctx, {"name": "Portal dunning", "isDefault": True, "dunningStep": [
                {"name": "Reminder", "action": "reminder", "daysPastDue": 0, "channel": ["email"],
                 "template": {"en": "Please pay {amount} {currency}"}}]})
    await deliver_all(rt)  # payments learns of the bill
    if card:
        async with rt.db.transaction(tenant) as session:
            methods = session_services().payments.methods["paymentMethod"]
            await methods.create(admin_context(tenant, session), {
                "@type": "tokenizedCard", "name": "Visa ending 4242", "token": card, "brand": "visa",
                "lastFourDigits": "4242", "isPreferred": True, "expirationDate": "2031-12-31T23:59:59Z",
                "account": [{"id": account["id"]}]})
    await session_services().collections.service.run_tenant(tenant)  # the account enters dunning
    return {**bill, "billingAccountId": account["id"]}

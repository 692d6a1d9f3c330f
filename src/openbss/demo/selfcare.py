"""Demo data of the self-care portal: customers whose lines have live balances and usage, and the identities of
the built-in demo identity provider.

* Alex Martin (residential, prepaid +33 6 00 00 01 01): the provider's verified email matches the customer's, so
  the first sign-in links automatically;
* Camille Durand (residential, postpaid +33 6 00 00 02 02): signs in with a social account whose email is not
  the customer's, so the portal asks for the mobile number and a code sent by SMS (read it from the SMS
  simulator);
* Claire Moreau of Northwind Logistics (corporate, +33 6 00 00 09 01): her data lives in the corporate directory
  (when one is configured).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openbss.demo.catalog import seed_catalog
from openbss.demo.charging import FALLBACK_PLAN
from openbss.demo.identity_provider import IdpUser
from openbss.demo.support import admin_context
from openbss.party.service import list_all
from openbss.platform.db import Database
from openbss.platform.errors import DomainError
from openbss.platform.tmf.resource import Context, system_context
from openbss.selfcare.directory import DIRECTORY_ID, EMAIL_VERIFIED, PREFERENCES
from openbss.services import Services

PREPAID, POSTPAID, CORPORATE_LINE = "+33600000101", "+33600000202", "+33600000901"
NORTHWIND = "c0c0a000-0000-4000-8000-000000000001"
DEMO_PASSWORD = "demo"  # noqa: S105 - the demo identity provider's published demo password

DEMO_USERS = [
    IdpUser(sub="demo-alex", username="alex", password=DEMO_PASSWORD, email="alex.martin@example.net",
            email_verified=True, name="Alex Martin", given_name="Alex", family_name="Martin"),
    IdpUser(sub="demo-camille", username="camille", password=DEMO_PASSWORD, email="camille.d@social.example",
            email_verified=True, name="Camille Durand", given_name="Camille", family_name="Durand"),
    IdpUser(sub="demo-claire", username="claire", password=DEMO_PASSWORD, email="it.manager@northwind.example",
            email_verified=True, name="Claire Moreau", given_name="Claire", family_name="Moreau"),
]

PEOPLE: list[dict[str, Any]] = [
    {"givenName": "Alex", "familyName": "Martin", "email": "alex.martin@example.net", "phone": "+33612340101",
     "address": {"street1": "8 rue de la Paix", "postCode": "75002", "city": "Paris", "country": "FR"},
     "msisdn": PREPAID, "offering": "Prepaid S", "preferences": {"email": True, "sms": True, "post": False,
                                                                "language": "en"}},
    {"givenName": "Camille", "familyName": "Durand", "email": "camille.durand@example.org", "phone": "+33612340202",
     "address": {"street1": "21 quai Saint-Antoine", "postCode": "69002", "city": "Lyon", "country": "FR"},
     "msisdn": POSTPAID, "offering": "Mobile M", "preferences": {"email": True, "sms": False, "post": True,
                                                                "language": "fr"}},
]


async def _line(services: Services, ctx: Context, offering: str, msisdn: str, customer: dict[str, Any],
                account: dict[str, Any]) -> dict[str, Any]:
    """A live mobile line recorded in the inventory with what an order of ``offering`` would have given it."""
    offers, _ = await services.catalog.service.orderable_offerings(ctx, limit=1000)
    known = {o["name"]: o["id"] for o in offers}
    if offering not in known:  # an offering sold only within a bundle (not orderable on its own)
        found = await list_all(ctx, services.catalog.catalog["productOffering"], {"name": [offering]})
        known.update({o["name"]: o["id"] for o in found})
    product = await services.ordering.service.product_for(
        ctx, known[offering], customer=customer, billing_account=account, characteristics={"msisdn": msisdn})
    return await services.inventory.service.record_subscription(ctx, product, [], [])


async def seed_selfcare(services: Services, db: Database, tenant_id: str, base_url: str) -> dict[str, dict[str, str]]:
    """Create the portal's demo customers (idempotent); returns the owners of their lines for the charging seed
    (``{msisdn: {"party_id", "product_id", "billing_account_id"}}``)."""
    await seed_catalog(services, db, tenant_id, base_url)
    customers, parties = services.customer.service, services.party.service
    accounts = services.account.service
    owners: dict[str, dict[str, str]] = {}
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url)
        for person in PEOPLE:
            found, _ = await customers.search(ctx, {"email": person["email"]}, limit=1)
            if found:
                continue
            party = await parties.create_individual(ctx, {
                "givenName": person["givenName"], "familyName": person["familyName"],
                "contactMedium": [
                    {"mediumType": "email", "preferred": True,
                     "characteristic": {"emailAddress": person["email"], "contactType": "personal"}},
                    {"mediumType": "phone", "characteristic": {"phoneNumber": person["phone"],
                                                               "contactType": "mobile"}},
                    {"mediumType": "postalAddress", "characteristic": {**person["address"],
                                                                       "contactType": "home"}}]})
            customer = await customers.create_customer(ctx, {
                "name": party["fullName"], "status": "active",
                "engagedParty": {"id": party["id"], "@referredType": "Individual"},
                "characteristic": [{"name": "segment", "valueType": "string", "value": "residential"},
                                   {"name": PREFERENCES, "valueType": "object", "value": person["preferences"]},
                                   {"name": EMAIL_VERIFIED, "valueType": "boolean", "value": True}]})
            account = await accounts.create_billing_account(ctx, {
                "name": f"{party['fullName']} – mobile", "accountType": "residential", "currency": "EUR",
                "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "name": customer["name"],
                                  "role": "customer"}],
                "billCycle": {"billingDay": 1, "frequency": "monthly", "timeZone": "Europe/Paris"}})
            await accounts.activate(ctx, account["id"])
            product = await _line(services, ctx, person["offering"], person["msisdn"], customer, account)
            owners[person["msisdn"]] = {"party_id": party["id"], "party_type": "Individual",
                                        "product_id": product["id"], "billing_account_id": account["id"]}
        corporate, _ = await customers.search(ctx, {"name": "Northwind Logistics", "segment": "corporate"},
                                              limit=10)
        if not any(c.get("name") == "Northwind Logistics (portal demo)" for c in corporate):
            org = await parties.create_organization(ctx, {
                "tradingName": "Northwind Logistics", "name": "Northwind Logistics SAS", "isLegalEntity": True,
                "organizationType": "company"})
            customer = await customers.create_customer(ctx, {
                "name": "Northwind Logistics (portal demo)", "status": "active",
                "engagedParty": {"id": org["id"], "@referredType": "Organization"},
                "characteristic": [{"name": "segment", "valueType": "string", "value": "corporate"},
                                   {"name": DIRECTORY_ID, "valueType": "string", "value": NORTHWIND}]})
            account = await accounts.create_billing_account(ctx, {
                "name": "Northwind Logistics – mobile fleet", "accountType": "corporate", "currency": "EUR",
                "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "name": customer["name"],
                                  "role": "customer"}],
                "creditLimit": {"unit": "EUR", "value": 500},
                "billCycle": {"billingDay": 1, "frequency": "monthly", "timeZone": "Europe/Paris"}})
            await accounts.activate(ctx, account["id"])
            product = await _line(services, ctx, "Business mobile line", CORPORATE_LINE, customer, account)
            owners[CORPORATE_LINE] = {"party_id": org["id"], "party_type": "Organization",
                                      "product_id": product["id"], "billing_account_id": account["id"]}
    return owners


async def seed_corporate_line(services: Services, db: Database, tenant_id: str, base_url: str,
                              owner: dict[str, str]) -> None:
    """The corporate demo line's charging account (postpaid, with the built-in plan)."""
    charging = services.charging.service
    async with db.transaction(tenant_id) as session:
        ctx = system_context(tenant_id, session, base_url, subject="charging-seed")
        try:
            await charging.get_account(ctx, subscriber=CORPORATE_LINE)
            return
        except DomainError:
            pass  # not there yet: open it
        await charging.open_account(ctx, subscriber=CORPORATE_LINE, payment_type="postpaid", currency="EUR",
                                    time_zone="Europe/Paris", credit_limit=Decimal("500.00"),
                                    product_id=owner["product_id"], party_id=owner["party_id"],
                                    party_type=owner.get("party_type", "Organization"),
                                    billing_account_id=owner.get("billing_account_id"), plan=FALLBACK_PLAN)

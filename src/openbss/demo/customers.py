"""Demo customers: a few hundred realistic residential, SME and corporate customers with their billing accounts.

``seed_customers(services, db, tenant_id, base_url)`` is idempotent (it does nothing when the tenant already has
customers) and goes through the domains' services, so the data is encrypted, indexed, audited and evented like any
other.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import func, select

from openbss.customer.models import Customer
from openbss.demo.support import admin_context
from openbss.platform.db import Database
from openbss.services import Services

RESIDENTIAL, SME, CORPORATE = 240, 45, 15

GIVEN = ("Amelia Olivia Isla Ava Mia Ivy Lily Grace Freya Florence Emily Ella Poppy Evie Charlotte Sophie Alice "
         "Matilda Ruby Lucy Hannah Nora Zara Aisha Leah Amara Noah Oliver George Arthur Leo Harry Oscar Henry Jack "
         "Charlie Thomas William Lucas Isaac Edward James Joshua Elijah Max Sebastian Rory Benjamin Ethan Adam Hugo "
         "Joseph Louis Kenji Yuki Wei Mei Ana Pedro Joao Maria Jose Carlos Sofia Lucia Mateo Elena Paula Carmen "
         "Giulia Francesco Chiara Marco Matteo Emma Louise Jade Gabriel Raphael Jules Lina Rose Leon Paul Finn Lea "
         "Emil Anton Olga Ivan Katarina Fatima Omar Yusuf Amina Ibrahim Chidi Ngozi Kwame Kofi Priya Arjun Rohan "
         "Ananya").split()
FAMILY = ("Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White "
          "Roberts Green Hall Wood Jackson Clarke Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy "
          "Moreau Simon Laurent Lefebvre Michel Garcia Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci "
          "Marino Greco Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoffmann Okafor Adeyemi Mensah "
          "Boateng Patel Sharma Singh Kumar Watanabe Tanaka Suzuki Sato Nakamura Fernandez Lopez Martinez Sanchez "
          "Perez Gomez Silva Santos Oliveira Costa Novak Horvat Kowalski Nowak").split()
PLACES = [("London", "GB", "+44 7700 9", "Europe/London", "GBP"), ("Paris", "FR", "+33 6 12 ", "Europe/Paris", "EUR"),
          ("Milano", "IT", "+39 347 ", "Europe/Rome", "EUR"), ("Madrid", "ES", "+34 612 ", "Europe/Madrid", "EUR"),
          ("Berlin", "DE", "+49 151 ", "Europe/Berlin", "EUR")]
STREETS = ("High Street", "Station Road", "Rue de la Paix", "Via Roma", "Calle Mayor", "Hauptstrasse",
           "Church Lane", "Avenue Victor Hugo", "Corso Como", "Gran Via")
SME_KINDS = ("Bakery", "Plumbing", "Dental Clinic", "Architects", "Cafe", "Garage", "Florist", "Consulting",
             "Print Shop", "Pharmacy", "Bistro", "Fitness Studio", "Law Office", "Bike Shop", "Studio")
CORPORATES = ("Northwind Logistics", "Contoso Retail", "Fabrikam Manufacturing", "Tailspin Airlines",
              "Wide World Importers", "Adventure Works", "Litware Software", "Proseware Health", "Woodgrove Bank",
              "Alpine Ski House", "Coho Vineyard", "Blue Yonder Energy", "Margie's Travel", "Fourth Coffee",
              "Trey Research")


def _phone(rng: random.Random, prefix: str) -> str:
    digits = "".join(str(rng.randint(0, 9)) for _ in range(14 - len(prefix.replace(" ", "").lstrip("+"))))
    return prefix + digits


def _address(rng: random.Random, city: str, country: str) -> dict[str, Any]:
    return {"mediumType": "postalAddress", "characteristic": {
        "street1": f"{rng.randint(1, 220)} {rng.choice(STREETS)}", "city": city,
        "postCode": f"{rng.randint(10000, 99999)}", "country": country, "contactType": "billing"}}


async def seed_customers(services: Services, db: Database, tenant_id: str, base_url: str) -> None:
    party_service, customer_service = services.party.service, services.customer.service
    account_service = services.account.service
    async with db.transaction(tenant_id) as session:
        if (await session.scalar(select(func.count()).select_from(Customer))) or 0:
            return
    rng = random.Random(2026)
    used: set[str] = set()

    def email(local: str, domain: str) -> str:
        addr = f"{local}@{domain}"
        n = 2
        while addr in used:
            addr = f"{local}{n}@{domain}"
            n += 1
        used.add(addr)
        return addr

    async def one(segment: str, i: int) -> None:
        city, country, prefix, tz, currency = rng.choice(PLACES)
        async with db.transaction(tenant_id) as session:
            ctx = admin_context(tenant_id, session, base_url)
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            person: dict[str, Any] = {
                "givenName": given, "familyName": family,
                "birthDate": f"{rng.randint(1945, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00Z",
                "contactMedium": [
                    {"mediumType": "email", "preferred": True, "characteristic": {
                        "emailAddress": email(f"{given}.{family}".lower(), "example.net"), "contactType": "personal"}},
                    {"mediumType": "phone", "characteristic": {"phoneNumber": _phone(rng, prefix),
                                                               "contactType": "mobile"}},
                    _address(rng, city, country)],
                "individualIdentification": [{"identificationType": "nationalId",
                                              "identificationId": f"{country}{rng.randint(10**8, 10**9 - 1)}"}],
                "externalReference": [{"externalReferenceType": "legacyCrm", "name": f"CRM-{segment[:3]}-{i:05d}"}],
            }
            ind = await party_service.create_individual(ctx, person)
            if rng.random() < 0.8:
                await party_service.validate_individual(ctx, ind["id"])
            if segment == "residential":
                party, name = ind, ind["fullName"]
                contact_email = person["contactMedium"][0]["characteristic"]["emailAddress"]
            else:
                name = (f"{family} {rng.choice(SME_KINDS)}" if segment == "sme"
                        else CORPORATES[i % len(CORPORATES)] + ("" if i < len(CORPORATES) else f" {i}"))
                domain = name.lower().replace(" ", "").replace("'", "") + ".example"
                contact_email = email("billing", domain)
                party = await party_service.create_organization(ctx, {
                    "tradingName": name, "name": f"{name} {'Ltd' if country == 'GB' else 'SARL'}",
                    "isLegalEntity": True, "organizationType": "company" if segment == "corporate" else "smallBusiness",
                    "organizationIdentification": [{"identificationType": "companyRegistration",
                                                    "identificationId": f"{country}-{rng.randint(10**7, 10**8)}"}],
                    "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": contact_email}},
                                      _address(rng, city, country)],
                    "relatedParty": [{"id": ind["id"], "@referredType": "Individual", "name": ind["fullName"],
                                      "role": "contact"}]})
            customer = await customer_service.create_customer(ctx, {
                "name": name, "status": "initialized",
                "engagedParty": {"id": party["id"], "@referredType": party["@type"]},
                "characteristic": [{"name": "segment", "valueType": "string", "value": segment}]})
            accounts = 1 if segment == "residential" else rng.randint(1, 3 if segment == "sme" else 6)
            for n in range(accounts):
                media = rng.choices(["email", "paper", "portal"], [0.6, 0.15, 0.25])[0]
                limit = {"residential": 150, "sme": 2000, "corporate": 50000}[segment]
                account = await account_service.create_billing_account(ctx, {
                    "name": f"{name} – {'main' if n == 0 else f'site {n + 1}'}",
                    "accountType": segment,
                    "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "name": name,
                                      "role": "customer"}],
                    "currency": currency,
                    "billCycle": {"billingDay": rng.choice((1, 5, 10, 15, 20, 25)), "frequency": "monthly",
                                  "timeZone": tz},
                    "paymentTermsDays": 14 if segment == "residential" else rng.choice((30, 45, 60)),
                    "creditLimit": {"unit": currency, "value": limit},
                    "billStructure": {"presentationMedia": [{"name": media, "isRef": False}]},
                    "contact": [{"contactType": "primary", "contactName": ind["fullName"],
                                 "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                                 "contactMedium": [{"mediumType": "email",
                                                    "characteristic": {"emailAddress": contact_email}}]}],
                    **({"taxExemption": [{"issuingJurisdiction": country, "reason": "charity",
                                          "certificateNumber": f"EX-{i:05d}",
                                          "validFor": {"startDateTime": "2026-01-01T00:00:00Z"}}]}
                       if segment != "residential" and rng.random() < 0.1 else {}),
                })
                if rng.random() < 0.9:
                    await account_service.activate(ctx, account["id"])
                    if rng.random() < 0.04:
                        await account_service.suspend(ctx, account["id"])
            status = "active" if rng.random() < 0.92 else "approved"
            await customer_service.set_status(ctx, customer["id"], status)

    for segment, count in (("residential", RESIDENTIAL), ("sme", SME), ("corporate", CORPORATE)):
        for i in range(count):
            await one(segment, i)

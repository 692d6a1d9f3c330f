"""The demo tenant and its first parties (individuals and organizations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openbss.demo.support import admin_context
from openbss.party.models import Individual
from openbss.platform.db import Database
from openbss.platform.tenancy import ensure_tenant
from openbss.services import Services

DEMO_TENANT = "demo"

DEMO_INDIVIDUALS: list[dict[str, Any]] = [
    {
        "givenName": given, "familyName": family, "gender": gender, "nationality": nat,
        "birthDate": birth,
        "contactMedium": [
            {"mediumType": "email", "preferred": True,
             "characteristic": {"emailAddress": f"{given.lower()}.{family.lower()}@example.net",
                                "contactType": "personal"}},
            {"mediumType": "phone", "characteristic": {"phoneNumber": phone, "contactType": "mobile"}},
            {"mediumType": "postalAddress", "characteristic": {
                "street1": street, "city": city, "postCode": post, "country": country}},
        ],
        "individualIdentification": [{"identificationType": "passport", "identificationId": pid}],
        "partyCharacteristic": [{"name": "preferredLanguage", "valueType": "string", "value": lang}],
    }
    for given, family, gender, nat, birth, phone, street, city, post, country, pid, lang in [
        ("Amelia", "Hart", "female", "GB", "1986-04-12T00:00:00Z", "+447700900123", "12 Kings Road", "London",
         "SW3 4ND", "GB", "P9876543", "en"),
        ("Lucas", "Moreau", "male", "FR", "1979-11-03T00:00:00Z", "+33612345678", "8 rue Oberkampf", "Paris",
         "75011", "FR", "FR1234567", "fr"),
        ("Sofia", "Rossi", "female", "IT", "1995-07-21T00:00:00Z", "+393471234567", "Via Roma 5", "Milano",
         "20121", "IT", "IT7654321", "it"),
        ("Kenji", "Watanabe", "male", "JP", "1990-01-30T00:00:00Z", "+819012345678", "1-2-3 Shibuya", "Tokyo",
         "150-0002", "JP", "JP1122334", "ja"),
        ("Amara", "Okafor", "female", "NG", "1988-09-09T00:00:00Z", "+2348031234567", "14 Allen Avenue",
         "Lagos", "100271", "NG", "NG5566778", "en"),
    ]
]

DEMO_ORGANIZATIONS: list[dict[str, Any]] = [
    {"tradingName": "Northwind Logistics", "name": "Northwind Logistics Ltd", "nameType": "Ltd",
     "organizationType": "company", "isLegalEntity": True, "isHeadOffice": True,
     "organizationIdentification": [{"identificationType": "companyRegistration", "identificationId": "09876543"}],
     "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": "it@northwind.example"}}]},
    {"tradingName": "Contoso Clinics", "name": "Contoso Clinics SA", "nameType": "SA",
     "organizationType": "company", "isLegalEntity": True,
     "contactMedium": [{"mediumType": "phone", "characteristic": {"phoneNumber": "+34911234567"}}]},
]


async def seed_parties(services: Services, db: Database, base_url: str) -> dict[str, Any]:
    """Idempotent: the demo tenant and its parties are created once; later runs find them."""
    async with db.transaction(None) as session:
        await ensure_tenant(session, DEMO_TENANT, "Demo Telecom")
    parties = services.party.service
    async with db.transaction(DEMO_TENANT) as session:
        first = await session.scalar(select(Individual.id).order_by(Individual.created_at).limit(1))
        if first is not None:
            return {"customer_party": first, "created": False}
        ctx = admin_context(DEMO_TENANT, session, base_url)
        created = [await parties.create_individual(ctx, p) for p in DEMO_INDIVIDUALS]
        for org in DEMO_ORGANIZATIONS:
            org = dict(org)
            org["relatedParty"] = [{"id": created[0]["id"], "role": "contact", "@referredType": "Individual"}]
            await parties.create_organization(ctx, org)
        await parties.validate_individual(ctx, created[0]["id"])
        return {"customer_party": created[0]["id"], "created": True}

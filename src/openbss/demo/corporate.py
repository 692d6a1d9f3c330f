"""The demo corporate customers of the portal's corporate directory (MariaDB): Northwind Logistics, Contoso Retail,
Fabrikam Manufacturing, with their contacts and lines."""

from __future__ import annotations

from typing import Any

from openbss.selfcare.corporate import CorporateDirectory


def _line(number: int, product: str, status: str = "active") -> dict[str, str]:
    return {"id": f"c0c0b000-0000-4000-8000-{number:012d}", "name": product, "status": status,
            "msisdn": f"+33600000{number:03d}"}


DEMO_CORPORATE_CUSTOMERS: list[dict[str, Any]] = [
    {
        "customerId": "c0c0a000-0000-4000-8000-000000000001",
        "name": {"givenName": "Claire", "familyName": "Moreau", "organization": "Northwind Logistics"},
        "email": "it.manager@northwind.example", "emailVerified": True, "phone": "+33199000901",
        "address": {"street1": "14 rue des Entrepôts", "street2": "Bâtiment B", "postCode": "69007", "city": "Lyon",
                    "stateOrProvince": "", "country": "FR"},
        "preferences": {"email": True, "sms": True, "post": False, "language": "fr"},
        "accountState": "active",
        "products": [_line(901, "Business Mobile L"), _line(902, "Business Mobile L"),
                     _line(903, "Business Data 100 GB")],
    },
    {
        "customerId": "c0c0a000-0000-4000-8000-000000000002",
        "name": {"givenName": "Oliver", "familyName": "Bennett", "organization": "Contoso Retail"},
        "email": "it.manager@contoso.example", "emailVerified": True, "phone": "+442079460902",
        "address": {"street1": "Unit 4, Riverside Business Park", "street2": "Wandle Way", "postCode": "SW18 4BX",
                    "city": "London", "stateOrProvince": "", "country": "GB"},
        "preferences": {"email": True, "sms": False, "post": False, "language": "en"},
        "accountState": "active",
        "products": [_line(911, "Business Mobile M"), _line(912, "Business Mobile L", "suspended")],
    },
    {
        "customerId": "c0c0a000-0000-4000-8000-000000000003",
        "name": {"givenName": "Lukas", "familyName": "Becker", "organization": "Fabrikam Manufacturing"},
        "email": "it.manager@fabrikam.example", "emailVerified": True, "phone": "+4930231250903",
        "address": {"street1": "Industriestraße 27", "street2": "", "postCode": "70565", "city": "Stuttgart",
                    "stateOrProvince": "Baden-Württemberg", "country": "DE"},
        "preferences": {"email": True, "sms": False, "post": True, "language": "de"},
        "accountState": "active",
        "products": [_line(921, "Business Mobile XL"), _line(922, "Business Mobile L"),
                     _line(923, "Business Mobile L")],
    },
]


async def seed_demo(directory: CorporateDirectory, tenant_id: str) -> None:
    """Load the demo corporate customers into the tenant (creates the schema first; safe to run again)."""
    await directory.create_schema()
    for record in DEMO_CORPORATE_CUSTOMERS:
        await directory.upsert_customer(tenant_id, record)

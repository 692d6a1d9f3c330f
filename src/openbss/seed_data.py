"""Demo data of ``openbss demo``."""

from __future__ import annotations

from typing import Any

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

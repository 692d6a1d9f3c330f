"""Which attributes of parties and party roles are personal data: stored encrypted, some searchable.

Organization names are not personal data and stay plain (sortable); an operator with many sole traders adds
them with ``OPENBSS_PII_ATTRIBUTES='{"Organization": ["name", "tradingName"]}'``.
"""

from __future__ import annotations

from typing import Any

from openbss.party.models import Individual, Organization, PartyRole
from openbss.platform.personal_data import PersonalDataCodec, Searchable

EMAIL = "contactMedium.characteristic.emailAddress"
PHONE = "contactMedium.characteristic.phoneNumber"
CONTACT_SEARCH = {EMAIL: Searchable("email", "email"), PHONE: Searchable("phone", "phone")}


def external_ids(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """External references (type + id in another system) are unique per tenant."""
    out = []
    for i, ref in enumerate(doc.get("externalReference") or []):
        if ref.get("name"):
            out.append(("externalId", f"{ref.get('externalReferenceType') or ''}|{ref['name']}",
                        f"externalReference[{i}].name"))
    return out


individual_codec = PersonalDataCodec(
    "Individual", Individual,
    personal=("givenName", "familyName", "middleName", "fullName", "formattedName", "legalName",
              "preferredGivenName", "familyNamePrefix", "otherName", "birthDate", "placeOfBirth", "deathDate",
              "contactMedium.characteristic", "individualIdentification.identificationId",
              "individualIdentification.attachment", "disability", "relatedParty.name"),
    indexed={
        "givenName": Searchable("givenName", "name"),
        "familyName": Searchable("familyName", "name"),
        "fullName": Searchable("fullName", "name"),
        **CONTACT_SEARCH,
        "individualIdentification.identificationId": Searchable("identification", "identifier"),
    },
    unique=external_ids,
)

organization_codec = PersonalDataCodec(
    "Organization", Organization,
    personal=("contactMedium.characteristic", "relatedParty.name"),
    indexed={**CONTACT_SEARCH,
             "organizationIdentification.identificationId": Searchable("identification", "identifier")},
    unique=external_ids,
)

party_role_codec = PersonalDataCodec(
    "PartyRole", PartyRole,
    personal=("contactMedium.characteristic", "engagedParty.name", "relatedParty.name", "creditProfile"),
    indexed=dict(CONTACT_SEARCH),
)

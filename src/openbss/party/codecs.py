"""Which attributes of parties and party roles are personal data (stored encrypted), and which are searchable.

Organization names are not personal data and stay plain (sortable); an operator with many sole traders adds
them with ``OPENBSS_PII_ATTRIBUTES='{"Organization": ["name", "tradingName"]}'``.

Searchable: the specification's first-level attributes (the kit's default: names, status, dates, references;
sealed ones through blind-index digests), plus e-mail addresses, phone numbers and identification numbers.
"""

from __future__ import annotations

from typing import Any

from openbss.party.models import Individual, Organization, PartyRole
from openbss.platform.personal_data import PersonalDataCodec
from openbss.platform.tmf.search import Indexed, Searchable

EMAIL = "contactMedium.characteristic.emailAddress"
PHONE = "contactMedium.characteristic.phoneNumber"
CONTACTS = (Indexed(EMAIL, "email"), Indexed(PHONE, "phone"))
#: the identification path of each party type (searched by ``customerSearch?identification=``)
IDENTIFICATION = {"Individual": "individualIdentification.identificationId",
                  "Organization": "organizationIdentification.identificationId"}


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
)
individual_search = Searchable(
    include=(*CONTACTS, Indexed(IDENTIFICATION["Individual"], "identifier"), "externalReference.name"),
    unique=external_ids)

organization_codec = PersonalDataCodec(
    "Organization", Organization, personal=("contactMedium.characteristic", "relatedParty.name"))
organization_search = Searchable(
    include=(*CONTACTS, Indexed(IDENTIFICATION["Organization"], "identifier"), "externalReference.name"),
    unique=external_ids)

party_role_codec = PersonalDataCodec(
    "PartyRole", PartyRole,
    personal=("contactMedium.characteristic", "engagedParty.name", "relatedParty.name", "creditProfile"),
)
party_role_search = Searchable(include=CONTACTS)

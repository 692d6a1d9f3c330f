"""Personal attributes of a customer: stored encrypted; name (with word prefixes), e-mail and phone searchable."""

from __future__ import annotations

from typing import Any

from openbss.customer.models import Customer
from openbss.customer.schemas import EXTERNAL_ID
from openbss.platform.personal_data import PersonalDataCodec, Searchable


def external_id(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    for i, ch in enumerate(doc.get("characteristic") or []):
        if ch.get("name") == EXTERNAL_ID and ch.get("value") not in (None, ""):
            return [(EXTERNAL_ID, str(ch["value"]), f"characteristic[{i}].value (externalId)")]
    return []


customer_codec = PersonalDataCodec(
    "Customer", Customer,
    personal=("name", "contactMedium.characteristic", "engagedParty.name", "relatedParty.name", "account.name",
              "creditProfile"),
    indexed={
        "name": Searchable("name", "name", prefix=True),
        "contactMedium.characteristic.emailAddress": Searchable("email", "email"),
        "contactMedium.characteristic.phoneNumber": Searchable("phone", "phone"),
        # not personal, but searched under row-level security, where jsonb operators cannot use the GIN index
        "account.id": Searchable("account", "exact"),
    },
    unique=external_id,
)

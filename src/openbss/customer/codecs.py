"""Personal attributes of a customer (stored encrypted) and its searchable attributes: the specification's
first-level ones (the kit's default), the name also by word prefixes (``customerSearch``), e-mail and phone."""

from __future__ import annotations

from typing import Any

from openbss.customer.models import Customer
from openbss.customer.schemas import EXTERNAL_ID
from openbss.platform.personal_data import PersonalDataCodec
from openbss.platform.tmf.search import Indexed, Searchable

EMAIL = "contactMedium.characteristic.emailAddress"
PHONE = "contactMedium.characteristic.phoneNumber"


def external_id(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    for i, ch in enumerate(doc.get("characteristic") or []):
        if ch.get("name") == EXTERNAL_ID and ch.get("value") not in (None, ""):
            return [(EXTERNAL_ID, str(ch["value"]), f"characteristic[{i}].value (externalId)")]
    return []


customer_codec = PersonalDataCodec(
    "Customer", Customer,
    personal=("name", "contactMedium.characteristic", "engagedParty.name", "relatedParty.name", "account.name",
              "creditProfile"),
)
customer_search = Searchable(include=(Indexed("name", "name", prefix=True), Indexed(EMAIL, "email"),
                                      Indexed(PHONE, "phone")), unique=external_id)

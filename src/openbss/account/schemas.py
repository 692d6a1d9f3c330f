"""TMF666 shapes from the official specification, with OpenBSS's billing account extension.

A billing account carries, on top of TMF666 (``creditLimit``, ``taxExemption``, ``contact``,
``billStructure.presentationMedia``...), the attributes billing needs, declared as an extension of the
specification's own definitions: a billing account is the TMF630 subtype ``OpenBSSBillingAccount`` (``@baseType``
BillingAccount, ``@schemaLocation`` its published schema, ``/tmf-api/schema/OpenBSSBillingAccount.schema.json``):

* ``currency``: ISO 4217 code of every amount of the account;
* ``billCycle``: ``{billingDay: 1..31, frequency: monthly|bimonthly|quarterly|yearly, timeZone: IANA name}``
  (a billing day past a month's end is that month's last day)
  (bill cycles are computed in the account's time zone);
* ``paymentTermsDays``: days between the bill date and its due date;
* ``vatNumber``: the holder's EU VAT number, checked by its checksum (``pricing.vat``).
"""

from __future__ import annotations

from typing import Any

from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.spec import load_spec

SPEC_FILE = "TMF666-Account-v4.0.0.swagger.json"
spec = load_spec(SPEC_FILE)

FREQUENCIES = ("monthly", "bimonthly", "quarterly", "yearly")
PRESENTATION_MEDIA = ("email", "paper", "portal")
STATES = ("defined", "active", "suspended", "closed")

EXTENSION = {
    "currency": {"type": "string", "description": "ISO 4217 currency of the account's amounts"},
    "billCycle": {"$ref": "#/definitions/OpenBSSBillCycle"},
    "paymentTermsDays": {"type": "integer", "description": "Days from the bill date to its due date"},
    "vatNumber": {"type": "string", "description": "The holder's EU VAT identification number (checksum checked)"},
}
BILL_CYCLE = {
    "type": "object",
    "description": "When the account is billed: day of month, frequency and the time zone of the cycle",
    "required": ["billingDay"],
    "properties": {
        "billingDay": {"type": "integer",
                       "description": "Day of the month the bill is produced (1..31; a shorter month's last day)"},
        "frequency": {"type": "string", "enum": list(FREQUENCIES)},
        "timeZone": {"type": "string", "description": "IANA time zone, e.g. Europe/Paris"},
    },
}

#: the subtype every billing account is rendered as (platform/tmf/extensions.py)
ACCOUNT_EXTENSION = Extension(
    name="OpenBSSBillingAccount", base="BillingAccount", spec_file=SPEC_FILE,
    description="A billing account with its currency, bill cycle and payment terms (OpenBSS).",
    properties=EXTENSION, definitions={"OpenBSSBillCycle": BILL_CYCLE})

RESOURCES = ("BillingAccount", "PartyAccount", "SettlementAccount", "FinancialAccount", "BillingCycleSpecification",
             "BillFormat", "BillPresentationMedia")


def _optional(name: str) -> dict[str, Any]:
    return {k: v for k, v in spec.definitions[name].items() if k != "required"}


if "OpenBSSBillingAccount" not in spec.definitions:
    spec.definitions["OpenBSSBillCycle"] = BILL_CYCLE
    # The specification's *_Update definitions list mandatory attributes, which would make every PATCH repeat
    # them; a merge patch carries only what changes (the merged result is validated against *_Create).
    for resource in RESOURCES:
        spec.definitions[f"OpenBSS{resource}_Update"] = _optional(f"{resource}_Update")
    base: dict[str, Any]
    for name, base in (("OpenBSSBillingAccount", spec.definitions["BillingAccount"]),
                       ("OpenBSSBillingAccount_Create", spec.definitions["BillingAccount_Create"]),
                       ("OpenBSSBillingAccount_Update", _optional("BillingAccount_Update"))):
        spec.definitions[name] = {**base, "properties": {**base["properties"], **EXTENSION}}

BillingAccount = spec.model("OpenBSSBillingAccount")
BillingAccountCreate = spec.model("OpenBSSBillingAccount_Create")
BillingAccountUpdate = spec.model("OpenBSSBillingAccount_Update")

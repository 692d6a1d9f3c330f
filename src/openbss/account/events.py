"""Events the account domain emits (through the TMF kit) on its hub and the event backbone."""

from __future__ import annotations

API = "accountManagement"
RESOURCES = ("BillingAccount", "PartyAccount", "SettlementAccount", "FinancialAccount", "BillingCycleSpecification",
             "BillFormat", "BillPresentationMedia")
EVENT_TYPES = tuple(f"{r}{kind}Event" for r in RESOURCES
                    for kind in ("Create", "AttributeValueChange", "StateChange", "Delete"))

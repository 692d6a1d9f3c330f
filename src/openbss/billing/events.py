"""Events billing emits (through the TMF kit) on its hub and the event backbone.

``CustomerBillCreateEvent`` when a draft bill is written, ``CustomerBillAttributeValueChangeEvent`` when a draft is
recomputed, ``CustomerBillStateChangeEvent`` when a bill is finalized (``state: validated``, with its number and
amount due: what payments, the ledger and collections react to) and at every later state change.
"""

from __future__ import annotations

API = "customerBillManagement"
BILL_FINALIZED_STATE = "validated"
EVENT_TYPES = tuple(f"{r}{kind}Event" for r in ("CustomerBill", "CustomerBillOnDemand")
                    for kind in ("Create", "AttributeValueChange", "StateChange", "Delete"))

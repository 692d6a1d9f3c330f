"""TMF629 shapes, built from the official specification."""

from __future__ import annotations

from openbss.platform.tmf.spec import load_spec

SPEC_FILE = "TMF629-Customer-v4.0.0.swagger.json"
spec = load_spec(SPEC_FILE)

# The specification's Customer_Update lists engagedParty as required, which would make every PATCH repeat it;
# a merge patch only carries what changes (the merged result is still validated against Customer_Create).
if "OpenBSSCustomer_Update" not in spec.definitions:
    spec.definitions["OpenBSSCustomer_Update"] = {
        k: v for k, v in spec.definitions["Customer_Update"].items() if k != "required"}

Customer = spec.model("Customer")
CustomerCreate = spec.model("Customer_Create")
CustomerUpdate = spec.model("OpenBSSCustomer_Update")

#: the customer segments later domains (pricing, dunning, self-care) key on, as characteristic "segment"
SEGMENTS = ("residential", "sme", "corporate")
SEGMENT = "segment"
EXTERNAL_ID = "externalId"

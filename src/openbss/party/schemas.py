"""TMF632 shapes, built from the official specification (mandatory attributes, types and enums as it says)."""

from __future__ import annotations

from openbss.platform.tmf.spec import load_spec

SPEC_FILE = "TMF632-Party-v4.0.0.swagger.json"
spec = load_spec(SPEC_FILE)

Individual = spec.model("Individual")
IndividualCreate = spec.model("Individual_Create")
IndividualUpdate = spec.model("Individual_Update")
Organization = spec.model("Organization")
OrganizationCreate = spec.model("Organization_Create")
OrganizationUpdate = spec.model("Organization_Update")

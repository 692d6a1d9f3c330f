"""TMF632 and TMF669 shapes, built from the official specifications (mandatory attributes, types and enums as
they say)."""

from __future__ import annotations

from openbss.platform.tmf.spec import load_spec

SPEC_FILE = "TMF632-Party-v4.0.0.swagger.json"
ROLE_SPEC_FILE = "TMF669-PartyRole-v4.0.0.swagger.json"
spec = load_spec(SPEC_FILE)
role_spec = load_spec(ROLE_SPEC_FILE)

Individual = spec.model("Individual")
IndividualCreate = spec.model("Individual_Create")
IndividualUpdate = spec.model("Individual_Update")
Organization = spec.model("Organization")
OrganizationCreate = spec.model("Organization_Create")
OrganizationUpdate = spec.model("Organization_Update")
PartyRole = role_spec.model("PartyRole")
PartyRoleCreate = role_spec.model("PartyRole_Create")
PartyRoleUpdate = role_spec.model("PartyRole_Update")

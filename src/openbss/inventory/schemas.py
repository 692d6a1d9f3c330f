"""TMF637, TMF638 and TMF639 shapes, from the official specifications."""

from __future__ import annotations

from openbss.platform.tmf.spec import load_spec

PRODUCT_SPEC = "TMF637-ProductInventory-v4.0.0.swagger.json"
SERVICE_SPEC = "TMF638-ServiceInventory-v4.0.0.swagger.json"
RESOURCE_SPEC = "TMF639-ResourceInventory-v4.0.0.swagger.json"

resource_spec = load_spec(RESOURCE_SPEC)
# TMF639's Resource_Create lists id and href as required (the server assigns them): the create shape the server
# validates against leaves them out.
for _name in ("Resource_Create", "Resource_Update"):
    _target = f"OpenBSS{_name}"
    if _target not in resource_spec.definitions:
        resource_spec.definitions[_target] = {
            k: v for k, v in resource_spec.definitions[_name].items() if k != "required"}

"""TMF637, TMF638 and TMF639 shapes, from the official specifications."""

from __future__ import annotations

from openbss.platform.tmf.spec import load_spec

PRODUCT_SPEC = "TMF637-ProductInventory-v4.0.0.swagger.json"
SERVICE_SPEC = "TMF638-ServiceInventory-v4.0.0.swagger.json"
RESOURCE_SPEC = "TMF639-ResourceInventory-v4.0.0.swagger.json"

resource_spec = load_spec(RESOURCE_SPEC)
# The shapes the server validates a resource against: TMF639's Resource_Create and Resource_Update, plus the
# attributes of the specification's two subtypes (LogicalResource's ``value``, PhysicalResource's serial number,
# manufacture date, power state and version), which a ``@type`` of that subtype may carry. Resource_Create's
# mandatory ``name`` stays mandatory; its ``id`` and ``href`` (also listed as required) are the server's to assign.
_SUBTYPE_PROPERTIES = {
    name: schema
    for subtype in ("LogicalResource", "PhysicalResource")
    for name, schema in resource_spec.definitions[subtype]["properties"].items()
    if name not in resource_spec.definitions["Resource"]["properties"]
}
for _name, _required in (("Resource_Create", ["name"]), ("Resource_Update", [])):
    _target = f"OpenBSS{_name}"
    if _target not in resource_spec.definitions:
        _base = resource_spec.definitions[_name]
        resource_spec.definitions[_target] = {
            **{k: v for k, v in _base.items() if k != "required"},
            "properties": {**_base["properties"], **_SUBTYPE_PROPERTIES},
            **({"required": _required} if _required else {}),
        }

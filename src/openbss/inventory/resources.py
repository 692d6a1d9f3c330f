"""The rules of TMF639 resources written through the API.

Two kinds of resources live in the resource inventory:

* **Recorded** resources: what an operator records by hand or from a network discovery (routers, ONTs bought by
  the customer, ports, licences): ``POST /resource``, ``PATCH /resource/{id}`` (JSON merge patch), ``DELETE``.
* **Pooled** resources: the MSISDNs, SIM cards, static IPv4 addresses and ONTs of the resource pools
  (``/api/inventory/v1/``), recorded by the inventory when an order allocates them. A pooled resource is one whose
  ``category`` is a pool kind (``msisdn``, ``sim``, ``ipv4``, ``ont``) and whose ``value`` characteristic is an
  item of that pool. Orders own their lifecycle: the API refuses to record one by hand (allocate it through an
  order), to delete one, or to change what allocation relies on — its identity (``@type``, ``category``, ``name``,
  the characteristics read from the pool) and its states (``resourceStatus``, ``usageState``,
  ``administrativeState``) and operating dates — with 409 ``POOL_MANAGED`` naming the attributes. What describes
  it (``description``, ``note``, ``place``, ``attachment``, ``relatedParty``, other characteristics, ...) can be
  edited. The inventory's own changes (suspend, resume, terminate a product) are system changes and are not
  subject to these rules.

``@type`` is ``Resource`` or one of the specification's subtypes ``LogicalResource`` (with its ``value``) and
``PhysicalResource`` (``serialNumber``, ``manufactureDate``, ``powerState``, ``versionNumber``); another type is
an extension and names its schema in ``@schemaLocation``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from openbss.inventory import pools
from openbss.inventory.errors import InvalidResource, PoolManaged
from openbss.platform.tmf.resource import Context, ResourceHooks

#: the attributes of TMF639's resource subtypes (what the create and update shapes add to Resource's)
SUBTYPE_ATTRIBUTES = {"LogicalResource": ("value",),
                      "PhysicalResource": ("serialNumber", "manufactureDate", "powerState", "versionNumber")}
SPEC_TYPES = ("Resource", *SUBTYPE_ATTRIBUTES)
#: what allocation relies on: unchangeable through the API on a pooled resource
PROTECTED = ("@type", "@baseType", "category", "name", "value", "resourceStatus", "usageState",
             "administrativeState", "startOperatingDate", "endOperatingDate")
#: the characteristics a pooled resource carries from its pool item
POOL_CHARACTERISTICS = ("value", "iccid", "imsi", "kiRef", "model", "prefixLength")
#: where each pool is loaded (named in the refusal of a pooled resource recorded by hand)
POOL_LOADERS = {"msisdn": "/api/inventory/v1/numberRange", "sim": "/api/inventory/v1/simBatch",
                "ipv4": "/api/inventory/v1/ipv4Pool", "ont": "/api/inventory/v1/ont"}


def pool_identity(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(pool kind, value) of a document that names a pool item, else None."""
    kind = str(doc.get("category") or "").strip().lower()
    if kind not in pools.KINDS:
        return None
    for ch in doc.get("resourceCharacteristic") or []:
        if isinstance(ch, dict) and ch.get("name") == "value" and isinstance(ch.get("value"), str):
            return kind, ch["value"]
    if isinstance(doc.get("value"), str):
        return kind, doc["value"]
    return None


async def pooled(ctx: Context, doc: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, value, pool status) when ``doc`` names an item of a resource pool."""
    identity = pool_identity(doc)
    if identity is None:
        return None
    item = await pools.find(ctx.session, *identity)
    return (identity[0], item.value, item.status) if item is not None else None


def _pool_characteristics(doc: dict[str, Any]) -> dict[str, Any]:
    return {str(ch.get("name")): ch.get("value") for ch in doc.get("resourceCharacteristic") or []
            if isinstance(ch, dict) and ch.get("name") in POOL_CHARACTERISTICS}


def check_type(doc: dict[str, Any]) -> None:
    kind = doc.get("@type") or "Resource"
    if kind not in SPEC_TYPES and not doc.get("@schemaLocation"):
        raise InvalidResource(f"'@type': '{kind}' is not one of {', '.join(SPEC_TYPES)}; an extension type names "
                              f"its schema in '@schemaLocation'")
    family = kind if kind in SUBTYPE_ATTRIBUTES else doc.get("@baseType")
    for subtype, attributes in SUBTYPE_ATTRIBUTES.items():
        for attr in attributes:
            if attr in doc and family != subtype:
                raise InvalidResource(f"'{attr}' is an attribute of {subtype}: give '@type': '{subtype}' "
                                      f"(or '@baseType': '{subtype}' for an extension type)")


class ResourceRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = None

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        check_type(doc)
        found = await pooled(ctx, doc)
        if found is not None:
            kind, value, status = found
            raise PoolManaged(f"{kind} '{value}' is an item of the {kind} pool ({status}): pooled resources are "
                              f"recorded when an order allocates them, not by hand (the pool is loaded with POST "
                              f"{POOL_LOADERS[kind]})")

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        check_type(merged)
        found = await pooled(ctx, current)
        if found is None:
            # a recorded resource may not become the record of a pool item either
            became = await pooled(ctx, merged)
            if became is not None:
                kind, value, status = became
                raise PoolManaged(f"{kind} '{value}' is an item of the {kind} pool ({status}): a recorded resource "
                                  f"cannot take its identity; orders allocate pooled resources")
            return
        kind, value, status = found
        changed = [a for a in PROTECTED if current.get(a) != merged.get(a)]
        if _pool_characteristics(current) != _pool_characteristics(merged):
            changed.append("resourceCharacteristic (" + ", ".join(
                n for n in POOL_CHARACTERISTICS if _pool_characteristics(current).get(n)
                != _pool_characteristics(merged).get(n)) + ")")
        if changed:
            raise PoolManaged(f"resource '{current.get('id')}' is {kind} '{value}' of the {kind} pool ({status}): "
                              f"{', '.join(changed)} can change only through orders (modify, suspend or terminate "
                              f"the product using it); its description, notes, place, attachments, related parties and "
                              f"other characteristics can be edited")

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        found = await pooled(ctx, current)
        if found is not None:
            kind, value, status = found
            raise PoolManaged(f"resource '{current.get('id')}' is {kind} '{value}' of the {kind} pool ({status}): "
                              f"it cannot be deleted; terminating the product using it gives it back to the pool")

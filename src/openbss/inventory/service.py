"""The inventory's named actions: record what an order made live (the subscription, its services and resources)
and move it through suspend, resume, change and terminate. Orders and collections call these; nothing else writes
the inventory."""

from __future__ import annotations

from typing import Any

from openbss.inventory import pools
from openbss.platform.db import utcnow
from openbss.platform.tmf.resource import Context, ResourceService
from openbss.platform.tmf.spec import format_datetime

#: product status -> status of its services and resources
SERVICE_STATE = {"active": "active", "suspended": "inactive", "terminated": "terminated"}
RESOURCE_STATUS = {"active": "available", "suspended": "suspended", "terminated": "standby"}
RESOURCE_USAGE = {"active": "active", "suspended": "idle", "terminated": "idle"}


def _ref(doc: dict[str, Any], referred: str | None = None) -> dict[str, Any]:
    out = {"id": doc["id"], "href": doc["href"]}
    if doc.get("name"):
        out["name"] = doc["name"]
    if referred:
        out["@referredType"] = referred
    return out


class InventoryService:
    def __init__(self, products: ResourceService, services: ResourceService, resources: ResourceService) -> None:
        self.products = products
        self.services = services
        self.resources = resources

    async def _write(self, ctx: Context, svc: ResourceService, resource_id: str, changes: dict[str, Any],
                     state_field: str | None) -> dict[str, Any]:
        """A system change of an inventory document: merged, stored, with its events."""
        row = await svc.store.get(ctx, resource_id, for_update=True)
        current = dict(row.body)
        merged = {**current, **changes}
        if merged == current:
            return svc.store.shape(ctx.base_url, row.id, current)
        await svc.store.replace(ctx, row, merged)
        rendered = svc.store.shape(ctx.base_url, row.id, merged)
        await svc._audit(ctx, row.id, "update", current, merged)
        await svc._emit(ctx, f"{svc.resource.type}AttributeValueChangeEvent", rendered)
        if state_field and current.get(state_field) != merged.get(state_field):
            await svc._emit(ctx, f"{svc.resource.type}StateChangeEvent", rendered)
        return rendered

    async def get_product(self, ctx: Context, product_id: str) -> dict[str, Any]:
        return await self.products.get(ctx, product_id)

    async def record_subscription(self, ctx: Context, product: dict[str, Any], services: list[dict[str, Any]],
                                  resources: list[dict[str, Any]]) -> dict[str, Any]:
        """Create the active product with the services realizing it and the resources they use."""
        now = format_datetime(utcnow())
        res_docs = []
        for r in resources:
            doc = {"@type": "LogicalResource" if r.get("category") in ("msisdn", "ipv4") else "PhysicalResource",
                   "resourceStatus": "available", "usageState": "active", "administrativeState": "unlocked",
                   "operationalState": "enable", "startOperatingDate": now, **r}
            res_docs.append(await self.resources.create(ctx, doc))
        svc_docs = []
        for s in services:
            doc = {"@type": "Service", "state": "active", "startDate": now, "hasStarted": True,
                   "isServiceEnabled": True, **s}
            uses = doc.pop("_resources", None)
            if uses is not None:
                doc["supportingResource"] = [_ref(d, d.get("@type")) for d in res_docs
                                             if d.get("category") in uses]
            svc_docs.append(await self.services.create(ctx, doc))
        doc = {"@type": "Product", "status": "active", "startDate": now, **product,
               "realizingService": [_ref(d, "Service") for d in svc_docs],
               "realizingResource": [_ref(d, d.get("@type")) for d in res_docs]}
        return await self.products.create(ctx, doc)

    async def change_product(self, ctx: Context, product_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change plan or characteristics of a live product."""
        return await self._write(ctx, self.products, product_id, changes, "status")

    async def relate_products(self, ctx: Context, product_id: str, relationship_type: str,
                              related: list[dict[str, Any]]) -> dict[str, Any]:
        """Add ``productRelationship`` entries (e.g. ``bundled``: a bundle's products) to a product, once each."""
        product = await self.products.get(ctx, product_id)
        current = list(product.get("productRelationship") or [])
        have = {(r.get("relationshipType"), (r.get("product") or {}).get("id")) for r in current}
        added = [{"@type": "ProductRelationship", "relationshipType": relationship_type,
                  "product": {**{k: p[k] for k in ("id", "href", "name") if p.get(k) is not None},
                              "@referredType": "Product"}}
                 for p in related if (relationship_type, p.get("id")) not in have]
        if not added:
            return product
        return await self._write(ctx, self.products, product_id, {"productRelationship": current + added}, "status")

    async def set_product_status(self, ctx: Context, product_id: str, status: str) -> dict[str, Any]:
        """Suspend, resume (active) or terminate a product, its services and resources."""
        product = await self.products.get(ctx, product_id)
        changes: dict[str, Any] = {"status": status}
        if status == "terminated":
            changes["terminationDate"] = format_datetime(utcnow())
        for ref in product.get("realizingService") or []:
            sc: dict[str, Any] = {"state": SERVICE_STATE[status], "isServiceEnabled": status == "active"}
            if status == "terminated":
                sc["endDate"] = format_datetime(utcnow())
            await self._write(ctx, self.services, ref["id"], sc, "state")
        for ref in product.get("realizingResource") or []:
            rc: dict[str, Any] = {"resourceStatus": RESOURCE_STATUS[status], "usageState": RESOURCE_USAGE[status]}
            if status == "terminated":
                rc["endOperatingDate"] = format_datetime(utcnow())
                rc["administrativeState"] = "locked"
            await self._write(ctx, self.resources, ref["id"], rc, "resourceStatus")
        return await self._write(ctx, self.products, product_id, changes, "status")


async def allocate_resource(ctx: Context, kind: str, key: str, assigned_to: str, *, value: str | None = None,
                            pool: str | None = None) -> dict[str, Any]:
    """Take one free MSISDN, SIM, IPv4 address or ONT (idempotent by ``key``); see ``pools.allocate``."""
    from openbss.inventory import pools

    got = await pools.allocate(ctx.session, kind, key, assigned_to, pool=pool, value=value)
    return got.as_dict()


async def release_resource(ctx: Context, key: str, *, quarantine_days: float | None = None,
                           retire: bool = False) -> bool:
    """Give back what ``key`` allocated: to the pool, into quarantine, or retired."""
    from datetime import timedelta

    from openbss.inventory import pools

    quarantine = timedelta(days=quarantine_days) if quarantine_days else None
    return await pools.release(ctx.session, key, quarantine=quarantine, retire=retire)


def get_inventory_service() -> InventoryService:
    from openbss.inventory.api import inventory_service

    return inventory_service


async def pools_are_empty(ctx: Context) -> bool:
    counts = await pools.counts(ctx.session)
    return not any(sum(v.values()) for v in counts.values())


async def load_demo_pools(ctx: Context, *, first_msisdn: str, last_msisdn: str, sims_csv: str, ipv4_cidr: str,
                          ont_serials: list[str], ont_model: str) -> None:
    """Fill the resource pools (numbers, SIMs, addresses, ONTs) in one go: the demo and tests use it."""
    await pools.add_number_range(ctx.session, first_msisdn, last_msisdn)
    await pools.load_sims(ctx.session, sims_csv)
    await pools.add_ipv4_pool(ctx.session, ipv4_cidr)
    await pools.add_onts(ctx.session, ont_serials, model=ont_model)

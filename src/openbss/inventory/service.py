"""The inventory's named actions: record what an order made live (the subscription, its services and resources)
and move it through suspend, resume, change and terminate; allocate and release pool items. Orders and
collections call these; nothing else writes the inventory. It also answers the questions other domains ask before
removing what was sold: products using a catalog object, live products of a party."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from openbss.inventory import pools
from openbss.inventory.models import Product
from openbss.party.service import list_all
from openbss.platform.db import utcnow
from openbss.platform.tmf.resource import Context, ResourceService
from openbss.platform.tmf.spec import format_datetime

#: a product in one of these states is live: its offering, prices and owner cannot go away
LIVE_STATUSES = ("created", "pendingActive", "active", "suspended", "pendingTerminate")
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

    @staticmethod
    async def _write(ctx: Context, svc: ResourceService, resource_id: str, changes: dict[str, Any],
                     ) -> dict[str, Any]:
        """A system change of an inventory document (top-level attributes replaced), audited and evented."""
        return await svc.change(ctx, resource_id, lambda doc: doc.update(changes))

    def product_href(self, base_url: str, product_id: str) -> str:
        return self.products.store.href(base_url, product_id)

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
            # a system write (``record``): the API's rules refuse pooled resources recorded by hand
            res_docs.append(await self.resources.record(ctx, doc))
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
        return await self._write(ctx, self.products, product_id, changes)

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
        return await self._write(ctx, self.products, product_id, {"productRelationship": current + added})

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
            await self._write(ctx, self.services, ref["id"], sc)
        for ref in product.get("realizingResource") or []:
            rc: dict[str, Any] = {"resourceStatus": RESOURCE_STATUS[status], "usageState": RESOURCE_USAGE[status]}
            if status == "terminated":
                rc["endOperatingDate"] = format_datetime(utcnow())
                rc["administrativeState"] = "locked"
            await self._write(ctx, self.resources, ref["id"], rc)
        return await self._write(ctx, self.products, product_id, changes)

    # --- pools ------------------------------------------------------------------------------------------------
    async def allocate_resource(self, ctx: Context, kind: str, key: str, assigned_to: str, *,
                                value: str | None = None, pool: str | None = None) -> dict[str, Any]:
        """Take one free MSISDN, SIM, IPv4 address or ONT (idempotent by ``key``); see ``pools.allocate``."""
        got = await pools.allocate(ctx.session, kind, key, assigned_to, pool=pool, value=value)
        return got.as_dict()

    async def release_resource(self, ctx: Context, key: str, *, quarantine_days: float | None = None,
                               retire: bool = False) -> bool:
        """Give back what ``key`` allocated: to the pool, into quarantine, or retired."""
        quarantine = timedelta(days=quarantine_days) if quarantine_days else None
        return await pools.release(ctx.session, key, quarantine=quarantine, retire=retire)

    async def add_number_range(self, ctx: Context, first: str, last: str, pool: str = "default") -> dict[str, int]:
        return await pools.add_number_range(ctx.session, first, last, pool)

    async def add_ipv4_pool(self, ctx: Context, cidr: str, pool: str = "default") -> dict[str, int]:
        return await pools.add_ipv4_pool(ctx.session, cidr, pool)

    async def add_onts(self, ctx: Context, serials: Iterable[str], pool: str = "default",
                       model: str | None = None) -> dict[str, int]:
        return await pools.add_onts(ctx.session, serials, pool, model)

    async def load_sims(self, ctx: Context, content: str, pool: str = "default") -> dict[str, int]:
        """SIM cards from a CSV (iccid,imsi,ki_ref[,pool,form]); cards already known are skipped."""
        return await pools.load_sims(ctx.session, content, pool)

    async def pool_counts(self, ctx: Context) -> dict[str, dict[str, int]]:
        return await pools.counts(ctx.session)

    # --- what other domains ask ----------------------------------------------------------------------------
    async def live_products_using(self, ctx: Context, resource_type: str, resource_id: str) -> int:
        """How many live products were sold with a catalog offering, price or product specification (the catalog
        refuses to delete what is still sold)."""
        body = Product.body
        conditions = {
            "ProductOffering": [body.contains({"productOffering": {"id": resource_id}})],
            "ProductOfferingPrice": [body.contains({"productPrice": [{"productOfferingPrice": {"id": resource_id}}]})],
            "ProductSpecification": [body.contains({"productSpecification": {"id": resource_id}})],
        }.get(resource_type)
        if not conditions:
            return 0
        return int(await ctx.session.scalar(select(func.count()).select_from(Product).where(
            or_(*conditions), body["status"].astext.in_(LIVE_STATUSES))) or 0)

    async def erasure_guard(self, ctx: Context, party_id: str) -> str | None:
        """Why a party cannot be erased yet: the live products it holds (terminate them first)."""
        live = await self.live_products_of(ctx, [party_id])
        if not live:
            return None
        names = ", ".join(f"'{p.get('name') or p['id']}' ({p.get('status')})" for p in live[:3])
        return f"{len(live)} live product(s): {names}{' ...' if len(live) > 3 else ''}"

    async def customer_products(self, ctx: Context, customer: dict[str, Any]) -> list[dict[str, Any]]:
        """The customer 360 section: the live products of the customer or its party."""
        return await self.live_products_of(ctx, [customer["id"], (customer.get("engagedParty") or {}).get("id", "")])

    async def products_billed_to(self, ctx: Context, billing_account_id: str) -> list[dict[str, Any]]:
        """Every product charged to a billing account, whatever its status (a terminated one may still owe its
        last period or a credit), in no particular order."""
        # through the search index (``billingAccount.id`` entries): a document containment filter would read every
        # product of the tenant under row-level security, once per account billed
        return await list_all(ctx, self.products, {"billingAccount.id": [billing_account_id]})

    async def products_billed_to_many(self, ctx: Context, billing_account_ids: Sequence[str],
                                      ) -> dict[str, list[dict[str, Any]]]:
        """``products_billed_to`` of many billing accounts in one query (through the same search entries), per
        account, each list in the order ``products_billed_to`` gives."""
        out: dict[str, list[dict[str, Any]]] = {}
        ids = list(dict.fromkeys(billing_account_ids))
        store = self.products.store
        for start in range(0, len(ids), 10000):
            matching = await store.index.matching_ids(ctx, "billingAccount.id", ids[start:start + 10000])
            rows = (await ctx.session.execute(select(Product).where(Product.id.in_(matching))
                                              .order_by(Product.created_at.desc(), Product.id))).scalars().all()
            for doc in await store.render_all(ctx, list(rows)):
                out.setdefault(str((doc.get("billingAccount") or {}).get("id")), []).append(doc)
        return out

    async def live_products_of(self, ctx: Context, party_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The live products whose related parties include one of ``party_ids`` (a party or its customers)."""
        ids = [i for i in dict.fromkeys(party_ids) if i]
        if not ids:
            return []
        body = Product.body
        rows = (await ctx.session.execute(select(Product).where(
            or_(*[body.contains({"relatedParty": [{"id": i}]}) for i in ids]),
            body["status"].astext.in_(LIVE_STATUSES)).order_by(Product.created_at, Product.id))).scalars().all()
        return await self.products.store.render_all(ctx, list(rows))

"""Business rules of carts and product orders, and the order lifecycle.

**Validation (POST productOrder).** The order names its customer (``relatedParty`` with ``@referredType``
Customer). For each item, by action:

* ``add`` — the offering is orderable now (Active, valid, sellable) through the order's ``channel`` by the
  customer's segment (TMF629 characteristic ``segment``, mapped to the catalog's market segments by
  ``OPENBSS_ORDERING_SEGMENT_MAP``); the chosen ``product.productCharacteristic`` values are allowed; a bundle's
  child items (nested ``productOrderItem``) respect the bundle's cardinalities; the billing account (item's, else
  the order's) is active and belongs to the customer (or its party).
* ``modify`` — ``product.id`` names a live product of the customer: ``product.status`` suspended (suspend) or
  active (resume), a new ``productOffering`` (change plan, orderable as above), new characteristics, or the item's
  ``billingAccount`` naming another account of the customer (transfer: the product is charged to it from then on).
  An item changing the offering records the product's prices before the change (``previousProductPrice``: its
  ``productPrice`` as the order found it), which the order's events carry to billing.
* ``delete`` — ``product.id`` names a product of the customer that is not terminated (terminate).

A ``requestedStartDate`` in the past is a back-dated order: refused (400) beyond the tenant's back-dating limit
(billing's ``backdateDays``, asked through ``effective_dates``). A violation is a 4xx naming the item and the rule.
Valid orders are *acknowledged*, priced, and decomposed into
service orders and durable steps (provisioning) in the same transaction.

**Lifecycle (TMF622).** acknowledged (or pending, until a future ``requestedStartDate``: no step runs before it) →
inProgress (the first step ran) → completed | partial (some items completed,
others failed or cancelled) | failed. ``PATCH state=held`` parks an acknowledged or in-progress order (no step
starts), ``state=inProgress`` releases it. ``cancelProductOrder`` moves an acknowledged/inProgress/held order to
pendingCancellation, compensates what its items did, and ends cancelled (or partial when an item had completed).
An operator may retry a failed or partial order (``POST productOrder/{id}/retry``): failed items run again.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from openbss.account.service import AccountService
from openbss.catalog.service import ProductCatalog
from openbss.customer.service import CustomerService, segment_of
from openbss.inventory.service import InventoryService
from openbss.ordering.errors import (
    BundleCardinality,
    IdempotencyKeyReused,
    InvalidBillingAccount,
    InvalidItemCharacteristic,
    InvalidOrder,
    NotOrderable,
    OrderNotCancellable,
)
from openbss.ordering.models import IdempotencyKey
from openbss.ordering.pricing import item_quantity, offering_prices, totals
from openbss.platform.db import json_dumps, utcnow
from openbss.platform.errors import BadRequest, DomainError, InvalidStateTransition, NotFound
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.spec import format_datetime
from openbss.provisioning import service as provisioning
from openbss.provisioning.service import ItemProgress, ProvisioningService
from openbss.settings import Settings


class EffectiveDates(Protocol):
    async def check_effective(self, ctx: Context, when: datetime, *, what: str = ...) -> None:
        """Raise a 4xx naming the limit when ``when`` is back-dated beyond what the tenant allows."""
        ...


ACTIVE_STATES = ("acknowledged", "inProgress", "pending", "held")
TERMINAL_ITEM = ("completed", "failed", "cancelled", "rejected")
PATCHABLE = {"state", "note", "description", "externalId", "priority", "notificationContact",
             "requestedCompletionDate", "expectedCompletionDate", "category"}


def walk_items(items: list[dict[str, Any]], parent: dict[str, Any] | None = None
               ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    for item in items or []:
        yield item, parent
        yield from walk_items(item.get("productOrderItem") or [], item)


def ref(doc: dict[str, Any], referred: str | None = None) -> dict[str, Any]:
    out = {k: doc[k] for k in ("id", "href", "name") if doc.get(k) is not None}
    if referred:
        out["@referredType"] = referred
    return out


#: the attribute of a modify item changing the offering that holds the product's prices before the change (its
#: ``productPrice`` as the order found it): carried by the order's events, what billing prorates the change from
PREVIOUS_PRICE = "previousProductPrice"
#: the product characteristic of a partial bar (modify orders place and lift it; not one of the catalog's)
BARRING = "barring"


def _without_barring(item: dict[str, Any]) -> dict[str, Any]:
    product = dict(item.get("product") or {})
    product["productCharacteristic"] = [c for c in product.get("productCharacteristic") or []
                                        if c.get("name") != BARRING]
    return {**item, "product": product}


def characteristics_of(item: dict[str, Any]) -> dict[str, Any]:
    return {c.get("name"): c.get("value") for c in (item.get("product") or {}).get("productCharacteristic") or []
            if c.get("name")}


async def default_characteristics(ctx: Context, catalog: ProductCatalog, offering: dict[str, Any]) -> dict[str, Any]:
    """The values a product gets for characteristics the order leaves out: the offering's only allowed value,
    else the specification's default."""
    spec_ref = offering.get("productSpecification") or {}
    if not spec_ref.get("id"):
        return {}
    spec = await catalog.get_product_specification(ctx, spec_ref["id"])
    out: dict[str, Any] = {}
    for ch in spec.get("productSpecCharacteristic") or []:
        values = ch.get("productSpecCharacteristicValue") or []
        default = next((v.get("value") for v in values if v.get("isDefault") and "value" in v), None)
        if default is not None:
            out[ch["name"]] = default
    for use in offering.get("prodSpecCharValueUse") or []:
        values = [v.get("value") for v in use.get("productSpecCharacteristicValue") or [] if "value" in v]
        if len(values) == 1:
            out[use["name"]] = values[0]
    return out


# --- validation ------------------------------------------------------------------------------------------------
class OrderValidator:
    def __init__(self, ctx: Context, doc: dict[str, Any], orders: ProductOrderService) -> None:
        self.ctx = ctx
        self.doc = doc
        self.catalog = orders.catalog
        self.customers = orders.customers
        self.accounts = orders.accounts
        self.inventory = orders.inventory
        self.segment_map = orders.settings.ordering_segment_map
        self.customer: dict[str, Any] = {}
        self.party_ids: set[str] = set()
        self.segment: str | None = None
        self.channel: str | None = None
        self.offerings: dict[str, dict[str, Any]] = {}

    async def customer_of_order(self) -> None:
        refs = [p for p in self.doc.get("relatedParty") or [] if p.get("@referredType") == "Customer"]
        if len(refs) != 1:
            raise InvalidOrder("'relatedParty': a product order names exactly one customer "
                               "(@referredType Customer)", code="MISSING_CUSTOMER")
        customer = await self.customers.find_customer(self.ctx, str(refs[0].get("id")))
        if customer is None:
            raise InvalidOrder(f"'relatedParty': customer '{refs[0].get('id')}' does not exist",
                               code="UNKNOWN_CUSTOMER")
        if customer.get("status") in ("closed", "suspended"):
            raise InvalidOrder(f"'relatedParty': customer '{customer['id']}' is {customer.get('status')}",
                               code="CUSTOMER_NOT_ACTIVE")
        self.customer = customer
        self.party_ids = {customer["id"], (customer.get("engagedParty") or {}).get("id", "")}
        seg = segment_of(customer)
        self.segment = self.segment_map.get(seg, seg) if seg else None
        channels = self.doc.get("channel") or []
        self.channel = channels[0].get("id") if channels else None
        refs[0].setdefault("name", customer.get("name"))
        refs[0].setdefault("role", "customer")

    async def billing_account(self, where: str, ref_: dict[str, Any] | None) -> dict[str, Any]:
        if not ref_ or not ref_.get("id"):
            raise InvalidBillingAccount(f"{where}: a billing account is required (item's or order's "
                                        "billingAccount)")
        try:
            account = await self.accounts.get_billing_account(self.ctx, ref_["id"])
        except NotFound as exc:
            raise InvalidBillingAccount(f"{where}.billingAccount: '{ref_['id']}' does not exist") from exc
        if account.get("state") != "active":
            raise InvalidBillingAccount(f"{where}.billingAccount: '{ref_['id']}' is {account.get('state')}, "
                                        "not active")
        if not any(rp.get("id") in self.party_ids for rp in account.get("relatedParty") or []):
            raise InvalidBillingAccount(f"{where}.billingAccount: '{ref_['id']}' does not belong to customer "
                                        f"'{self.customer['id']}'")
        return account

    async def same_currency(self, where: str, offering: dict[str, Any], account: dict[str, Any]) -> None:
        """Every price of the offering (one-time, recurring, usage) is in the billing account's currency: billing
        and charging take a price's amount in the account's currency, so a price in another one would be billed
        (or taken from the balance) as that many of the account's units."""
        currency = account.get("currency")
        units: set[str] = set()
        for price_ref in offering.get("productOfferingPrice") or []:
            if not price_ref.get("id"):
                continue
            unit = ((await self.catalog.get_usable_price(self.ctx, price_ref["id"])).get("price") or {}).get("unit")
            if unit:
                units.add(str(unit))
        other = sorted(units - {currency})
        if currency and other:
            raise InvalidBillingAccount(
                f"{where}.billingAccount: '{account.get('id')}' is billed in '{currency}', offering "
                f"'{offering.get('name') or offering.get('id')}' is priced in {', '.join(other)}")

    async def offering(self, where: str, offering_ref: dict[str, Any] | None, *, in_bundle: bool) -> dict[str, Any]:
        if not offering_ref or not offering_ref.get("id"):
            raise InvalidOrder(f"{where}.productOffering.id is required for action add")
        oid = offering_ref["id"]
        try:
            reasons = await self.catalog.orderability(self.ctx, oid, channel=self.channel,
                                                      market_segment=self.segment)
        except NotFound as exc:
            raise NotOrderable(f"{where}.productOffering: offering '{oid}' does not exist") from exc
        if in_bundle:
            reasons = [r for r in reasons if not r.startswith("not sellable")]
        if reasons:
            raise NotOrderable(f"{where}: offering '{oid}' cannot be ordered: {'; '.join(reasons)}")
        offering = await self.catalog.get_offering(self.ctx, oid)
        self.offerings[oid] = offering
        return offering

    async def characteristics(self, where: str, offering_id: str, item: dict[str, Any]) -> None:
        values = list(characteristics_of(item).items())
        try:
            await self.catalog.check_characteristic_values(self.ctx, offering_id, values)
        except DomainError as exc:
            raise InvalidItemCharacteristic(f"{where}.product.productCharacteristic: {exc.message}") from exc

    def bundle(self, where: str, item: dict[str, Any], offering: dict[str, Any]) -> None:
        children = item.get("productOrderItem") or []
        options = {b["id"]: b for b in offering.get("bundledProductOffering") or []}
        if not offering.get("isBundle"):
            if children:
                raise BundleCardinality(f"{where}: offering '{offering.get('name')}' is not a bundle; it has no "
                                        "child items")
            return
        counts: dict[str, int] = {}
        for i, child in enumerate(children):
            cid = str((child.get("productOffering") or {}).get("id"))
            if cid not in options:
                raise BundleCardinality(f"{where}.productOrderItem[{i}]: offering '{cid}' is not part of bundle "
                                        f"'{offering.get('name')}'")
            counts[cid] = counts.get(cid, 0) + item_quantity(f"{where}.productOrderItem[{i}]", child)
        for oid, b in options.items():
            opt = b.get("bundledProductOfferingOption") or {}
            lo, hi = opt.get("numberRelOfferLowerLimit"), opt.get("numberRelOfferUpperLimit")
            n = counts.get(oid, 0)
            if (lo is not None and n < lo) or (hi is not None and n > hi):
                raise BundleCardinality(f"{where}: bundle '{offering.get('name')}' needs between {lo} and {hi} "
                                        f"'{b.get('name') or oid}' item(s), the order has {n}")

    async def live_product(self, where: str, item: dict[str, Any]) -> dict[str, Any]:
        pid = (item.get("product") or {}).get("id")
        if not pid:
            raise InvalidOrder(f"{where}.product.id is required for action {item.get('action')}")
        try:
            product = await self.inventory.get_product(self.ctx, pid)
        except NotFound as exc:
            raise InvalidOrder(f"{where}.product.id: product '{pid}' does not exist", code="UNKNOWN_PRODUCT") from exc
        if not any(rp.get("id") in self.party_ids for rp in product.get("relatedParty") or []):
            raise InvalidOrder(f"{where}.product.id: product '{pid}' does not belong to customer "
                               f"'{self.customer['id']}'", code="UNKNOWN_PRODUCT")
        if product.get("status") not in ("active", "suspended"):
            raise InvalidOrder(f"{where}.product.id: product '{pid}' is {product.get('status')}",
                               code="PRODUCT_NOT_LIVE")
        return product


class OrderRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = {
        "acknowledged": {"inProgress", "held", "pending", "pendingCancellation", "rejected", "failed", "completed",
                         "partial", "cancelled"},
        "pending": {"inProgress", "held", "pendingCancellation", "cancelled"},
        "held": {"inProgress", "acknowledged", "pendingCancellation", "cancelled"},
        "inProgress": {"completed", "partial", "failed", "held", "pending", "pendingCancellation", "cancelled"},
        "pendingCancellation": {"cancelled", "partial", "failed"},
        "assessingCancellation": {"pendingCancellation", "inProgress"},
        "failed": {"inProgress"},  # an operator retry
        "partial": {"inProgress"},
        "completed": set(), "cancelled": set(), "rejected": set(),
    }


# --- product orders ----------------------------------------------------------------------------------------------
class ProductOrderService(ResourceService):
    """The kit's service for productOrder, with creation (validation, pricing, decomposition, idempotency) and
    state changes as named actions. Its items follow their provisioning (``sync_items``): ordering reacts to
    provisioning's ``OrderItemProvisioningStateChangeEvent`` (``ordering.events``), and syncs at once after the
    commands it gives provisioning itself (cancel, retry)."""

    def __init__(self, api: TmfApi, resource: TmfResource, *, catalog: ProductCatalog, customers: CustomerService,
                 accounts: AccountService, inventory: InventoryService, provisioning: ProvisioningService,
                 settings: Settings) -> None:
        super().__init__(api, resource)
        self.catalog = catalog
        self.customers = customers
        self.accounts = accounts
        self.inventory = inventory
        self.provisioning = provisioning
        self.settings = settings
        #: set by the domain's wiring: the cancellations settled when an order ends cancelled or partial
        self.cancellations: CancelOrderService | None = None
        #: set by the composition root: the back-dating limit of a ``requestedStartDate`` in the past (billing's)
        self.effective_dates: EffectiveDates | None = None

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        key = ctx.request.headers.get("Idempotency-Key") if ctx.request is not None else None
        return await self.place(ctx, doc, idempotency_key=key)

    async def place(self, ctx: Context, doc: dict[str, Any], *, idempotency_key: str | None = None
                    ) -> dict[str, Any]:
        order_id = str(uuid.uuid4())
        if idempotency_key:
            if len(idempotency_key) > 200:
                raise BadRequest("Idempotency-Key: at most 200 characters", code="INVALID_IDEMPOTENCY_KEY")
            digest = hashlib.sha256(json_dumps(doc).encode()).hexdigest()
            inserted = (await ctx.session.execute(
                insert(IdempotencyKey).values(key=idempotency_key, request_hash=digest, order_id=order_id)
                .on_conflict_do_nothing().returning(IdempotencyKey.order_id))).first()
            if inserted is None:  # a retry: the first request committed (or we waited for it to)
                known = (await ctx.session.execute(select(IdempotencyKey).where(
                    IdempotencyKey.key == idempotency_key))).scalars().one()
                if known.request_hash != digest:
                    raise IdempotencyKeyReused(f"Idempotency-Key '{idempotency_key}' was used for another order "
                                               f"('{known.order_id}')")
                return await self.get(ctx, known.order_id)
        return await self._place(ctx, order_id, doc)

    async def _place(self, ctx: Context, order_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        v = OrderValidator(ctx, doc, self)
        await v.customer_of_order()
        items = doc.get("productOrderItem") or []
        seen: set[str] = set()
        plans: list[provisioning.ItemRequest] = []
        all_prices: list[dict[str, Any]] = []
        for item, parent in walk_items(items):
            iid = str(item.get("id"))
            where = f"productOrderItem '{iid}'"
            if iid in seen:
                raise InvalidOrder(f"{where}: item ids must be unique in the order")
            seen.add(iid)
            action = item.get("action")
            quantity = item_quantity(where, item)
            item["state"] = "acknowledged"
            if action == "noChange":
                item["state"] = "completed"
                continue
            if parent is not None and action != "add":
                raise InvalidOrder(f"{where}: items inside a bundle item are added with it (action add)")
            ba_ref = item.get("billingAccount") or doc.get("billingAccount")
            item.pop(PREVIOUS_PRICE, None)  # the order states it (a plan change), never its sender
            if action == "add":
                offering = await v.offering(where, item.get("productOffering"), in_bundle=parent is not None)
                await v.characteristics(where, offering["id"], item)
                v.bundle(where, item, offering)
                await v.same_currency(where, offering, await v.billing_account(where, ba_ref))
                item["productOffering"] = {**ref(offering), **({"version": offering["version"]}
                                                               if offering.get("version") else {})}
                prices = await offering_prices(ctx, self.catalog, offering, quantity)
                if prices:
                    item["itemPrice"] = prices
                    item["itemTotalPrice"] = totals(prices)
                    all_prices += prices
                defaults = await default_characteristics(ctx, self.catalog, offering)
                plans.append(self._activation(doc, item, offering, ba_ref or {}, v, defaults))
            elif action in ("modify", "delete"):
                product = await v.live_product(where, item)
                moved_to = (item.get("billingAccount") or {}).get("id") if action == "modify" else None
                to_account: dict[str, Any] | None = None
                if moved_to and moved_to != (product.get("billingAccount") or {}).get("id"):
                    to_account = await v.billing_account(where, item["billingAccount"])  # a transfer
                plans.append(await self._change(ctx, doc, item, product, v, where, to_account))
            else:
                raise InvalidOrder(f"{where}: action '{action}' is not one of add, modify, delete, noChange")
        if all_prices:
            doc["orderTotalPrice"] = totals(all_prices)
        now = format_datetime(utcnow())
        start = doc.get("requestedStartDate")
        if plans and isinstance(start, str) and self.effective_dates is not None:
            try:
                moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError as exc:
                raise InvalidOrder(f"'requestedStartDate': {start!r} is not a date-time") from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            await self.effective_dates.check_effective(ctx, moment, what="'requestedStartDate'")
        deferred = bool(plans) and isinstance(start, str) and start > now
        doc.update({"@type": "ProductOrder", "id": order_id, "orderDate": now,
                    "state": "pending" if deferred else "acknowledged"})
        doc.setdefault("category", "B2C" if v.segment in (None, "consumer") else "B2B")
        rendered = await self.record(ctx, doc)
        for req in plans:
            req.order_id = order_id
            if deferred:
                req.not_before = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
            req.product.setdefault("productOrderItem", [{"orderItemId": req.item_id, "productOrderId": order_id,
                                                         "orderItemAction": req.action,
                                                         "productOrderHref": rendered["href"]}])
            await self.provisioning.plan_item(ctx, req)
        if not plans:
            return await self.transition(ctx, order_id, "completed")
        return rendered

    def _activation(self, doc: dict[str, Any], item: dict[str, Any], offering: dict[str, Any],
                    ba_ref: dict[str, Any], v: OrderValidator, defaults: dict[str, Any]) -> provisioning.ItemRequest:
        chars = {**defaults, **characteristics_of(item)}
        spec = offering.get("productSpecification") or {}
        product = product_document(offering, item, ba_ref, v.customer, chars)
        return provisioning.ItemRequest(
            order_id="", item_id=str(item["id"]), action="add", kind="activate", offering=offering,
            product_spec_id=spec.get("id"), characteristics=chars, billing_account_id=ba_ref["id"],
            related_party=list(doc.get("relatedParty") or []), product=product)

    async def product_for(self, ctx: Context, offering_id: str, *, customer: dict[str, Any],
                          billing_account: dict[str, Any], characteristics: dict[str, Any] | None = None,
                          ) -> dict[str, Any]:
        """The product document an order's ``add`` item of ``offering_id`` records in the inventory when it is live
        (offering, prices with their alterations, billing account, customer and owner, characteristics) — for a
        product recorded without an order (a migration from another system, demo data)."""
        offering = await self.catalog.get_offering(ctx, offering_id)
        item: dict[str, Any] = {"productOffering": {**ref(offering), **({"version": offering["version"]}
                                                                        if offering.get("version") else {})}}
        prices = await offering_prices(ctx, self.catalog, offering)
        if prices:
            item["itemPrice"] = prices
        chars = {**await default_characteristics(ctx, self.catalog, offering), **(characteristics or {})}
        return product_document(offering, item, {k: billing_account[k] for k in ("id", "href")
                                                 if billing_account.get(k)}, customer, chars)

    async def _change(self, ctx: Context, doc: dict[str, Any], item: dict[str, Any], product: dict[str, Any],
                      v: OrderValidator, where: str, new_account: dict[str, Any] | None = None,
                      ) -> provisioning.ItemRequest:
        wanted = item.get("product") or {}
        base = {"order_id": "", "item_id": str(item["id"]), "action": item["action"], "product_id": product["id"],
                "related_party": list(doc.get("relatedParty") or [])}
        if item["action"] == "delete":
            return provisioning.ItemRequest(kind="terminate", **base)
        status = wanted.get("status")
        barring = self._barring(where, item, product)
        if status == "suspended":
            if product.get("status") != "active":
                raise InvalidOrder(f"{where}: product '{product['id']}' is {product.get('status')}; only an active "
                                   "product can be suspended", code="PRODUCT_NOT_ACTIVE")
            if barring is not None:
                raise InvalidOrder(f"{where}: a suspension does not change the barring (order it apart)",
                                   code="INVALID_BARRING")
            return provisioning.ItemRequest(kind="suspend", **base)
        if status == "active" and product.get("status") == "suspended":
            return provisioning.ItemRequest(kind="resume", changes={} if barring is None else barring, **base)
        if product.get("status") != "active":
            raise InvalidOrder(f"{where}: product '{product['id']}' is {product.get('status')}; resume it before "
                               "changing it", code="PRODUCT_NOT_ACTIVE")
        changes: dict[str, Any] = {"product": {}}
        if barring is not None:
            changes |= barring
        to_account = item.get("billingAccount") or {}
        if to_account.get("id") and to_account["id"] != (product.get("billingAccount") or {}).get("id"):
            changes["product"]["billingAccount"] = {"id": to_account["id"],
                                                    **({"href": to_account["href"]} if to_account.get("href") else {})}
        new_offer = (item.get("productOffering") or {}).get("id")
        offering_id = (product.get("productOffering") or {}).get("id")
        if new_offer and new_offer != offering_id:
            offering = await v.offering(where, item["productOffering"], in_bundle=False)
            item["productOffering"] = ref(offering)
            changes["product"]["productOffering"] = ref(offering)
            changes["product"]["name"] = offering.get("name")
            changes |= {"offeringId": offering["id"], "offeringName": offering.get("name")}
            prices = await offering_prices(ctx, self.catalog, offering)
            changes["product"]["productPrice"] = [
                {k: p[k] for k in ("name", "priceType", "recurringChargePeriod", "price", "productOfferingPrice")
                 if k in p} for p in prices]
            if prices:
                item["itemPrice"] = prices
                item["itemTotalPrice"] = totals(prices)
            # what the product was charged before the change: billing prorates the change from it
            item[PREVIOUS_PRICE] = [dict(p) for p in product.get("productPrice") or []]
            offering_id = offering["id"]
            if new_account is None:
                account_id = (product.get("billingAccount") or {}).get("id")
                if account_id:
                    new_account = await v.accounts.get_billing_account(ctx, account_id)
        elif new_account is not None and offering_id:
            offering = await self.catalog.get_offering(ctx, offering_id)
        if new_account is not None and offering_id:
            await v.same_currency(where, offering, new_account)
        chars = {k: val for k, val in characteristics_of(item).items() if k != BARRING}
        if chars:
            await v.characteristics(where, str(offering_id), _without_barring(item))
            merged = {c["name"]: c for c in (changes["product"].get("productCharacteristic")
                                             or product.get("productCharacteristic") or [])}
            for k, val in chars.items():
                merged[k] = {"name": k, "value": val, "valueType": "string" if isinstance(val, str) else
                             type(val).__name__}
            changes["product"]["productCharacteristic"] = list(merged.values())
            changes["characteristics"] = chars
        if not changes["product"]:
            raise InvalidOrder(f"{where}: a modify names a new product.status (suspended/active), productOffering, "
                               "product.productCharacteristic or billingAccount", code="NOTHING_TO_MODIFY")
        return provisioning.ItemRequest(kind="change", changes=changes, **base)

    @staticmethod
    def _barring(where: str, item: dict[str, Any], product: dict[str, Any]) -> dict[str, Any] | None:
        """The partial bar a modify item places or lifts: its ``barring`` product characteristic (the barred
        services, ``[]`` lifts the bar), as the changes provisioning applies (the HSS and the OCS bar the services,
        the inventory's product shows the characteristic); None when the item does not name it."""
        values = [c.get("value") for c in (item.get("product") or {}).get("productCharacteristic") or []
                  if c.get("name") == BARRING]
        if not values:
            return None
        value = values[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidOrder(f"{where}.product.productCharacteristic '{BARRING}': a list of barred services "
                               f"({', '.join(provisioning.BARRABLE_SERVICES)}); [] lifts the bar",
                               code="INVALID_BARRING")
        unknown = sorted(set(value) - set(provisioning.BARRABLE_SERVICES))
        if unknown:
            raise InvalidOrder(f"{where}.product.productCharacteristic '{BARRING}': unknown service(s) "
                               f"{', '.join(unknown)} (known: {', '.join(provisioning.BARRABLE_SERVICES)})",
                               code="INVALID_BARRING")
        barred = [s for s in provisioning.BARRABLE_SERVICES if s in value]
        kept = [c for c in product.get("productCharacteristic") or [] if c.get("name") != BARRING]
        if barred:
            kept.append({"name": BARRING, "value": barred, "valueType": "array"})
        return {"product": {"productCharacteristic": kept}, "barring": barred}

    # --- named state changes ----------------------------------------------------------------------------------
    async def transition(self, ctx: Context, order_id: str, state: str) -> dict[str, Any]:
        def mutate(doc: dict[str, Any]) -> None:
            doc["state"] = state
            if state in ("completed", "failed", "partial", "cancelled"):
                doc["completionDate"] = format_datetime(utcnow())
        return await self.change(ctx, order_id, mutate)

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(changes) - PATCHABLE)
        if bad:
            raise BadRequest(f"'{bad[0]}' cannot change once the order is acknowledged (cancel it and order again)",
                             code="IMMUTABLE_ATTRIBUTE")
        current = await self.get(ctx, resource_id)
        state = changes.get("state")
        if state is not None and state != current.get("state"):
            if state == "held" and current.get("state") in ("acknowledged", "inProgress", "pending"):
                await self.provisioning.hold_order(ctx, resource_id, True)
            elif state == "inProgress" and current.get("state") == "held":
                await self.provisioning.hold_order(ctx, resource_id, False)
            else:
                raise InvalidStateTransition(f"ProductOrder state can be set to 'held' (from acknowledged or "
                                             f"inProgress) or back to 'inProgress' (from held), not from "
                                             f"'{current.get('state')}' to '{state}'; cancel with "
                                             "cancelProductOrder")
        rest = {k: v for k, v in changes.items() if k != "state"}

        def mutate(doc: dict[str, Any]) -> None:
            doc.update(rest)
            if state is not None:
                doc["state"] = state
            doc.pop("lastUpdate", None)  # not a TMF622 attribute (an older version kept one)
        return await self.change(ctx, resource_id, mutate)

    async def delete(self, ctx: Context, resource_id: str) -> None:
        raise OrderNotCancellable("a product order is not deleted: cancel it with cancelProductOrder")

    async def cancel(self, ctx: Context, order_id: str, reason: str | None) -> str:
        order = await self.get(ctx, order_id)
        if order.get("state") not in ACTIVE_STATES:
            raise OrderNotCancellable(f"product order '{order_id}' is {order.get('state')}; only an acknowledged, "
                                      "pending, held or in-progress order can be cancelled")

        def mutate(doc: dict[str, Any]) -> None:
            doc["state"] = "pendingCancellation"
            doc["cancellationReason"] = reason or "cancelled on request"
            doc["cancellationDate"] = format_datetime(utcnow())
        await self.change(ctx, order_id, mutate)
        await self.provisioning.cancel_order(ctx, order_id)
        final = await self.sync_items(ctx, order_id)
        return str(final.get("state"))

    async def retry(self, ctx: Context, order_id: str) -> dict[str, Any]:
        order = await self.get(ctx, order_id)
        if order.get("state") not in ("failed", "partial", "inProgress"):
            raise InvalidStateTransition(f"product order '{order_id}' is {order.get('state')}: only a failed or "
                                         "partial order can be retried")
        await self.provisioning.retry_order(ctx, order_id)
        return await self.sync_items(ctx, order_id)

    # --- items follow their provisioning --------------------------------------------------------------------
    async def sync_items(self, ctx: Context, order_id: str) -> dict[str, Any]:
        """Bring the order's items (state, product, failure note) and the order's state in line with what
        provisioning has done for them — its state of record, so that the same, a repeated or a late event all
        lead to the same order. Idempotent: an order already in line is not written."""
        progress = {p.order_item_id: p for p in await self.provisioning.item_progress(ctx, order_id)}
        newly_completed: list[str] = []
        now = format_datetime(utcnow())
        through_in_progress = False

        def mutate(doc: dict[str, Any]) -> None:
            nonlocal through_in_progress
            before = doc.get("state")
            notes = list(doc.get("note") or [])
            for item, _ in walk_items(doc.get("productOrderItem") or []):
                p = progress.get(str(item.get("id")))
                if p is None:
                    continue
                state = _item_state(p, str(item.get("state")))
                if state == "completed" and item.get("state") != "completed":
                    newly_completed.append(str(item["id"]))
                item["state"] = state
                if p.product_id and item.get("action") == "add":
                    item["product"] = {**(item.get("product") or {}), "id": p.product_id,
                                       "href": self.inventory.product_href(ctx.base_url, p.product_id),
                                       "@referredType": "Product"}
                author = f"orchestrator:{p.order_item_id}"
                kept = [n for n in notes if n.get("author") != author]
                if p.state == "failed":
                    old = next((n for n in notes if n.get("author") == author), None)
                    text = f"item {p.order_item_id} failed at step {p.failed_step}: {p.reason}"
                    kept.append(old if old is not None and old.get("text") == text else
                                {"author": author, "date": now, "text": text})
                notes = kept
            if notes or doc.get("note") is not None:
                doc["note"] = notes
            doc["state"] = order_state(doc)
            if before in ("acknowledged", "pending") and doc["state"] != "inProgress" \
                    and any(p.started for p in progress.values()):
                # an order whose steps ran goes through inProgress, even when its items ended before ordering
                # heard of them: first that state change, then (again) this one
                doc["state"] = "inProgress"
                through_in_progress = True
            if doc["state"] in ("completed", "failed", "partial", "cancelled"):
                doc.setdefault("completionDate", now)
            else:
                doc.pop("completionDate", None)

        out = await self.change(ctx, order_id, mutate)
        if through_in_progress:  # (the items completed by the first write stay in newly_completed)
            out = await self.change(ctx, order_id, mutate)
        for item_id in newly_completed:
            await self._relate_bundle(ctx, out, item_id)
        if out.get("state") in ("cancelled", "partial") and self.cancellations is not None:
            await self.cancellations.settle(ctx, order_id, str(out["state"]))
        return out

    async def _relate_bundle(self, ctx: Context, doc: dict[str, Any], item_id: str) -> None:
        """Once both a bundle item's product and a child item's product exist, the bundle's product lists the
        child's as ``bundled`` (TMF637 ProductRelationship); whichever of the two completes last links them."""
        for item, parent in walk_items(doc.get("productOrderItem") or []):
            if str(item.get("id")) != item_id or item.get("action") != "add":
                continue
            if parent is not None:
                pairs = [(parent, item)]
            else:
                pairs = [(item, child) for child in item.get("productOrderItem") or []]
            for bundle, child in pairs:
                bundle_product, child_product = bundle.get("product") or {}, child.get("product") or {}
                if bundle.get("action") == "add" and bundle_product.get("id") and child_product.get("id") \
                        and child_product.get("@referredType") == "Product":
                    await self.inventory.relate_products(ctx, bundle_product["id"], "bundled", [child_product])
            return


def product_document(offering: dict[str, Any], item: dict[str, Any], ba_ref: dict[str, Any],
                     customer: dict[str, Any], chars: dict[str, Any]) -> dict[str, Any]:
    """The product an ``add`` item makes live: the offering (as ordered), its prices, the billing account, the
    customer and its party (owner), the characteristics."""
    spec = offering.get("productSpecification") or {}
    product: dict[str, Any] = {
        "name": offering.get("name"), "isBundle": bool(offering.get("isBundle")), "isCustomerVisible": True,
        "orderDate": format_datetime(utcnow()),
        "productOffering": item["productOffering"],
        "billingAccount": {"id": ba_ref["id"], **({"href": ba_ref["href"]} if ba_ref.get("href") else {})},
        # references only: the customer's name stays in its (sealed) record
        "relatedParty": [{"id": customer["id"], "role": "customer", "@referredType": "Customer"}]
        + ([{"id": party["id"], "role": "owner", "@referredType": party.get("@referredType", "Individual")}]
           if (party := customer.get("engagedParty") or {}).get("id") else []),
        "productCharacteristic": [{"name": k, "value": val, "valueType": type(val).__name__ if not
                                   isinstance(val, str) else "string"} for k, val in chars.items()],
    }
    if spec.get("id"):
        product["productSpecification"] = {k: spec[k] for k in ("id", "href", "name", "version") if k in spec}
    if item.get("itemPrice"):
        product["productPrice"] = [
            {k: p[k] for k in ("name", "priceType", "recurringChargePeriod", "price", "productOfferingPrice")
             if k in p} for p in item["itemPrice"]]
        for pp, ip in zip(product["productPrice"], item["itemPrice"], strict=True):
            if ip.get("priceAlteration"):
                pp["productPriceAlteration"] = ip["priceAlteration"]
    return product


def _item_state(progress: ItemProgress, current: str) -> str:
    """An order item's state from its provisioning: ``running`` items stay as they are until their first step
    ran."""
    if progress.state in ("completed", "failed", "cancelled"):
        return progress.state
    if progress.state == "compensating" or progress.started:
        return "inProgress"
    return current


def order_state(doc: dict[str, Any]) -> str:
    states = [str(i.get("state")) for i, _ in walk_items(doc.get("productOrderItem") or [])
              if i.get("action") != "noChange"]
    current = str(doc.get("state"))
    if not states:
        return "completed"
    if any(s not in TERMINAL_ITEM for s in states):
        if current in ("held", "pendingCancellation"):
            return current
        return "inProgress"
    kinds = set(states)
    if kinds == {"completed"}:
        return "completed"
    if kinds == {"cancelled"}:
        return "cancelled"
    if "completed" in kinds:
        return "partial"
    if current == "pendingCancellation" and "cancelled" in kinds and "failed" not in kinds:
        return "cancelled"
    return "failed"


# --- cancellation (TMF622 cancelProductOrder) ---------------------------------------------------------------------
class CancelOrderService(ResourceService):
    def __init__(self, api: TmfApi, resource: TmfResource, orders: ProductOrderService) -> None:
        super().__init__(api, resource)
        self.orders = orders

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        order_ref = doc.get("productOrder") or {}
        if not order_ref.get("id"):
            raise InvalidOrder("'productOrder.id' is required")
        orders = self.orders
        try:
            await orders.get(ctx, order_ref["id"])
        except NotFound as exc:
            raise InvalidOrder(f"'productOrder.id': product order '{order_ref['id']}' does not exist",
                               code="UNKNOWN_ORDER") from exc
        doc = {**doc, "@type": "CancelProductOrder", "state": "inProgress",
               "productOrder": {"id": order_ref["id"], "href": orders.store.href(ctx.base_url, order_ref["id"]),
                                "@referredType": "ProductOrder"}}
        out = await super().create(ctx, doc)
        final = await orders.cancel(ctx, order_ref["id"], doc.get("cancellationReason"))
        if final in ("cancelled", "partial"):
            await self.settle(ctx, order_ref["id"], final)
            return await self.get(ctx, out["id"])
        return out

    async def settle(self, ctx: Context, order_id: str, order_state_: str) -> None:
        from openbss.ordering.models import CancelProductOrder

        rows = (await ctx.session.execute(select(CancelProductOrder).where(
            CancelProductOrder.body["productOrder"]["id"].astext == order_id).with_for_update())).scalars().all()
        for row in rows:
            if row.body.get("state") != "inProgress":
                continue
            await self.change(ctx, row.id, partial(_settled, "done" if order_state_ == "cancelled"
                                                   else "terminatedWithError"))


def _settled(state: str, doc: dict[str, Any]) -> None:
    doc["state"] = state
    doc["effectiveCancellationDate"] = format_datetime(utcnow())

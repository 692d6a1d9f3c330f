"""TMF663 shopping carts with live prices from the catalog.

Every create or update re-prices the cart: each item's one-time and recurring prices (with their alterations)
from the offering's current prices, the item totals and the cart totals. Checkout turns the cart into a product
order (``POST shoppingCart/{id}/checkout``), validated like any order.
"""

from __future__ import annotations

from typing import Any, ClassVar

from openbss.catalog.service import ProductCatalog
from openbss.ordering.errors import InvalidOrder
from openbss.ordering.pricing import offering_prices, totals
from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import Context, ResourceHooks


async def price_cart(ctx: Context, catalog: ProductCatalog, doc: dict[str, Any]) -> None:
    all_prices: list[dict[str, Any]] = []
    for i, item in enumerate(doc.get("cartItem") or []):
        where = f"cartItem[{i}]"
        item.setdefault("id", str(i + 1))
        item.setdefault("action", "add")
        item.setdefault("status", "active")
        oid = (item.get("productOffering") or {}).get("id")
        if item["action"] != "add":
            continue
        if not oid:
            raise InvalidOrder(f"{where}.productOffering.id is required")
        try:
            offering = await catalog.get_offering(ctx, oid)
        except NotFound as exc:
            raise InvalidOrder(f"{where}.productOffering: offering '{oid}' does not exist",
                               code="UNKNOWN_OFFERING") from exc
        item["productOffering"] = {"id": offering["id"], "href": offering["href"], "name": offering.get("name")}
        prices = await offering_prices(ctx, catalog, offering, int(item.get("quantity") or 1))
        item["itemPrice"] = prices
        item["ItemTotalPrice"] = totals(prices)  # (sic) the TMF663 attribute name
        if item["status"] == "active":
            all_prices += prices
    doc["cartTotalPrice"] = totals(all_prices)


class CartRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = None

    def __init__(self, catalog: ProductCatalog) -> None:
        self.catalog = catalog

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        await price_cart(ctx, self.catalog, doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        await price_cart(ctx, self.catalog, merged)


def order_from_cart(cart: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The product order of a cart's active items."""
    items = []
    for item in cart.get("cartItem") or []:
        if item.get("status", "active") != "active":
            continue
        oi: dict[str, Any] = {"id": str(item["id"]), "action": item.get("action", "add"),
                              "quantity": int(item.get("quantity") or 1),
                              "productOffering": {"id": item["productOffering"]["id"]}}
        if item.get("product"):
            oi["product"] = {k: v for k, v in item["product"].items()
                             if k in ("id", "productCharacteristic", "status")}
        items.append(oi)
    if not items:
        raise InvalidOrder("the cart has no active item to order", code="EMPTY_CART")
    doc: dict[str, Any] = {"productOrderItem": items,
                           "relatedParty": extra.get("relatedParty") or cart.get("relatedParty") or []}
    for k in ("billingAccount", "channel", "description", "externalId", "note"):
        if extra.get(k) is not None:
            doc[k] = extra[k]
    return doc

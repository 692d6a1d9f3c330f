"""TMF663 shopping carts with live prices from the catalog.

Every create or update re-prices the cart: each item's one-time and recurring prices (with their alterations)
from the offering's current prices, the item totals and the cart totals. Checkout turns the cart into a product
order (``POST shoppingCart/{id}/checkout``), validated like any order, and closes the cart: a cart is checked out
once (its row is locked for the checkout and the checkout recorded under a unique key); a second checkout answers
409 naming the first order, and a checked-out cart can no longer be changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select

from openbss.catalog.service import ProductCatalog
from openbss.ordering.errors import CartCheckedOut, InvalidOrder
from openbss.ordering.models import CartCheckout, IdempotencyKey
from openbss.ordering.pricing import item_quantity, offering_prices, totals
from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfApi, TmfResource

if TYPE_CHECKING:
    from openbss.ordering.service import ProductOrderService


async def price_cart(ctx: Context, catalog: ProductCatalog, doc: dict[str, Any]) -> None:
    all_prices: list[dict[str, Any]] = []
    for i, item in enumerate(doc.get("cartItem") or []):
        where = f"cartItem[{i}]"
        item.setdefault("id", str(i + 1))
        item.setdefault("action", "add")
        item.setdefault("status", "active")
        oid = (item.get("productOffering") or {}).get("id")
        quantity = item_quantity(where, item)
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
        prices = await offering_prices(ctx, catalog, offering, quantity)
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
        await refuse_checked_out(ctx, str(current["id"]))
        await price_cart(ctx, self.catalog, merged)


async def refuse_checked_out(ctx: Context, cart_id: str) -> None:
    """Raise ``CartCheckedOut`` (409, naming the order) when the cart was checked out."""
    order_id = (await ctx.session.execute(select(CartCheckout.order_id).where(
        CartCheckout.cart_id == cart_id))).scalar_one_or_none()
    if order_id is not None:
        href = f"{ctx.base_url}/tmf-api/productOrderingManagement/v4/productOrder/{order_id}"
        raise CartCheckedOut(f"shoppingCart '{cart_id}' was checked out already: productOrder '{order_id}' "
                             f"({href})")


class CartService(ResourceService):
    """The kit's service for shoppingCart, with the checkout."""

    def __init__(self, api: TmfApi, resource: TmfResource, orders: ProductOrderService) -> None:
        super().__init__(api, resource)
        self.orders = orders

    async def checkout(self, ctx: Context, cart_id: str, extra: dict[str, Any], *,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        """The product order of the cart's active items; the cart is closed in the same transaction."""
        row = await self.store.get(ctx, cart_id, for_update=True)  # concurrent checkouts of the cart queue here
        if idempotency_key and (await ctx.session.execute(select(IdempotencyKey.order_id).where(
                IdempotencyKey.key == idempotency_key))).first() is not None:
            # a retry of a checkout that committed: the same order (or 409 if the key served another request)
            cart = (await self.store.documents(ctx, [row]))[0]
            doc = self.orders.validate_create(order_from_cart(cart, extra))
            return await self.orders.place(ctx, doc, idempotency_key=idempotency_key)
        await refuse_checked_out(ctx, cart_id)
        cart = (await self.store.documents(ctx, [row]))[0]
        doc = self.orders.validate_create(order_from_cart(cart, extra))
        order = await self.orders.place(ctx, doc, idempotency_key=idempotency_key)
        ctx.session.add(CartCheckout(cart_id=cart_id, order_id=order["id"]))
        await ctx.session.flush()

        def close(doc: dict[str, Any]) -> None:
            doc["validFor"] = {**(doc.get("validFor") or {}), "endDateTime": order["orderDate"]}

        await self.change(ctx, cart_id, close, action="checkout")
        return order


def order_from_cart(cart: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The product order of a cart's active items."""
    items = []
    for item in cart.get("cartItem") or []:
        if item.get("status", "active") != "active":
            continue
        oi: dict[str, Any] = {"id": str(item["id"]), "action": item.get("action", "add"),
                              "quantity": item_quantity(f"cartItem '{item['id']}'", item),
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

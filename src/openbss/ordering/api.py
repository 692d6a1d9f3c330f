"""Ordering HTTP APIs.

* TMF663 Shopping Cart at ``/tmf-api/shoppingCart/v4/shoppingCart`` (live prices), plus
  ``POST shoppingCart/{id}/checkout`` → a product order.
* TMF622 Product Ordering at ``/tmf-api/productOrderingManagement/v4/``: productOrder (POST honours
  ``Idempotency-Key``), cancelProductOrder, hub; extensions ``POST productOrder/{id}/retry`` (operator retry of a
  failed order) and ``GET productOrder/{id}/progress`` (each item's steps: which failed and why).
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from openbss.ordering.cart import CartRules, order_from_cart
from openbss.ordering.models import CancelProductOrder, ProductOrder, ShoppingCart
from openbss.ordering.schemas import CART_SPEC, ORDER_SPEC
from openbss.ordering.service import (
    CANCELS,
    ORDERS,
    CancelOrderService,
    OrderRules,
    ProductOrderService,
)
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import (
    ResourceService,
    TmfApi,
    TmfJSONResponse,
    TmfResource,
    build_router,
    unit_of_work,
)
from openbss.provisioning import service as provisioning

cart_api = TmfApi(
    name="shoppingCart", title="TMF663 Shopping Cart", spec_file=CART_SPEC, permission="ordering",
    resources=[TmfResource(path="shoppingCart", type="ShoppingCart", table=ShoppingCart, hooks=CartRules(),
                           owner_paths=("relatedParty.id",))])

order_api = TmfApi(
    name="productOrderingManagement", title="TMF622 Product Ordering", spec_file=ORDER_SPEC,
    permission="ordering",
    resources=[
        TmfResource(path="productOrder", type="ProductOrder", table=ProductOrder, hooks=OrderRules(),
                    state_field="state", initial_state="acknowledged", owner_paths=("relatedParty.id",),
                    update_definition="OpenBSSProductOrder_Update", service_class=ProductOrderService,
                    operations=frozenset({"create", "list", "get", "patch"}), customer_operations=frozenset({
                        "list", "get"})),
        TmfResource(path="cancelProductOrder", type="CancelProductOrder", table=CancelProductOrder,
                    state_field="state", initial_state="inProgress", service_class=CancelOrderService,
                    update_definition="OpenBSSCancelProductOrder_Update",
                    operations=frozenset({"create", "list", "get"}), customer_operations=frozenset()),
    ])


def _order_routes(router: APIRouter, services: dict[str, ResourceService]) -> None:
    orders = services["productOrder"]
    assert isinstance(orders, ProductOrderService)

    async def retry(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("ordering", WRITE)
        async with unit_of_work(request, principal) as ctx:
            out = await orders.retry(ctx, id)
        return TmfJSONResponse(out)

    async def progress(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("ordering", READ)
        async with unit_of_work(request, principal) as ctx:
            order = await orders.get(ctx, id)
            items = await provisioning.order_progress(ctx, id)
        return TmfJSONResponse({"id": id, "state": order.get("state"), "productOrderItem": items})

    router.add_api_route("/productOrder/{id}/retry", retry, methods=["POST"], tags=[order_api.title],
                         name="retryProductOrder", summary="Retry the failed items of a product order")
    router.add_api_route("/productOrder/{id}/progress", progress, methods=["GET"], tags=[order_api.title],
                         name="productOrderProgress", summary="Each item's orchestration steps")


router, services = build_router(order_api, extra=_order_routes)
ORDERS.update({"productOrder": services["productOrder"]})  # type: ignore[dict-item]
CANCELS.update({"cancelProductOrder": services["cancelProductOrder"]})  # type: ignore[dict-item]
order_service: ProductOrderService = services["productOrder"]  # type: ignore[assignment]
cancel_service: CancelOrderService = services["cancelProductOrder"]  # type: ignore[assignment]
provisioning.register_order_listener(order_service.on_item)


def _cart_routes(router: APIRouter, cart_services: dict[str, ResourceService]) -> None:
    carts = cart_services["shoppingCart"]

    async def checkout(request: Request, id: str, body: dict[str, Any] = Body(default={}),
                       principal: Principal = Depends(authenticate)) -> Response:
        principal.require("ordering", WRITE)
        async with unit_of_work(request, principal) as ctx:
            cart = await carts.get(ctx, id)
            doc = order_from_cart(cart, body)
            validated = order_service.validate_create(doc)
            out = await order_service.place(ctx, validated,
                                            idempotency_key=request.headers.get("Idempotency-Key"))
        return TmfJSONResponse(out, status_code=201, headers={"Location": out["href"]})

    router.add_api_route("/shoppingCart/{id}/checkout", checkout, methods=["POST"], status_code=201,
                         tags=[cart_api.title], name="checkoutShoppingCart",
                         summary="Order the cart's active items (a TMF622 productOrder)")


cart_router, cart_services = build_router(cart_api, extra=_cart_routes)

ROUTERS: list[tuple[str, APIRouter]] = [(cart_api.title, cart_router), (order_api.title, router)]

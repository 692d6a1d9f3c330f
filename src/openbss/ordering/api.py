"""Ordering HTTP APIs.

* TMF663 Shopping Cart at ``/tmf-api/shoppingCart/v4/shoppingCart`` (live prices), plus
  ``POST shoppingCart/{id}/checkout`` → a product order.
* TMF622 Product Ordering at ``/tmf-api/productOrderingManagement/v4/``: productOrder (POST honours
  ``Idempotency-Key``), cancelProductOrder, hub; extensions ``POST productOrder/{id}/retry`` (operator retry of a
  failed order) and ``GET productOrder/{id}/progress`` (each item's steps: which failed and why).
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from openbss.ordering.cart import CartService
from openbss.ordering.service import ProductOrderService
from openbss.ordering.wiring import OrderingServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.platform.tmf.router import api_router


def _order_routes(orders: ProductOrderService, tag: str) -> Callable[[APIRouter], None]:
    def add(router: APIRouter) -> None:
        async def retry(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
            principal.require("ordering", WRITE)
            async with unit_of_work(request, principal) as ctx:
                out = await orders.retry(ctx, id)
            return TmfJSONResponse(out)

        async def progress(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
            principal.require("ordering", READ)
            async with unit_of_work(request, principal) as ctx:
                order = await orders.get(ctx, id)
                items = await orders.provisioning.order_progress(ctx, id)
            return TmfJSONResponse({"id": id, "state": order.get("state"), "productOrderItem": items})

        router.add_api_route("/productOrder/{id}/retry", retry, methods=["POST"], tags=[tag],
                             name="retryProductOrder", summary="Retry the failed items of a product order")
        router.add_api_route("/productOrder/{id}/progress", progress, methods=["GET"], tags=[tag],
                             name="productOrderProgress", summary="Each item's orchestration steps")

    return add


def _cart_routes(carts: CartService, tag: str) -> Callable[[APIRouter], None]:
    def add(router: APIRouter) -> None:
        async def checkout(request: Request, id: str, body: dict[str, Any] = Body(default={}),
                           principal: Principal = Depends(authenticate)) -> Response:
            principal.require("ordering", WRITE)
            async with unit_of_work(request, principal) as ctx:
                out = await carts.checkout(ctx, id, body, idempotency_key=request.headers.get("Idempotency-Key"))
            return TmfJSONResponse(out, status_code=201, headers={"Location": out["href"]})

        router.add_api_route("/shoppingCart/{id}/checkout", checkout, methods=["POST"], status_code=201,
                             tags=[tag], name="checkoutShoppingCart",
                             summary="Order the cart's active items (a TMF622 productOrder)")

    return add


def routers(svc: OrderingServices) -> list[tuple[str, APIRouter]]:
    return [
        (svc.cart_api.title, api_router(svc.cart_api, svc.carts,
                                        extra=_cart_routes(svc.cart_service, svc.cart_api.title))),
        (svc.order_api.title, api_router(svc.order_api, svc.orders,
                                         extra=_order_routes(svc.service, svc.order_api.title))),
    ]

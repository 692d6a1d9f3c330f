"""The catalog's HTTP APIs.

* TMF620 Product Catalog Management at ``/tmf-api/productCatalogManagement/v4/``: catalog, category,
  productSpecification, productOffering, productOfferingPrice, importJob, exportJob, hub.
* Service and resource specifications in the TMF633/TMF634 v4 shapes at
  ``/tmf-api/serviceCatalogManagement/v4/serviceSpecification`` and
  ``/tmf-api/resourceCatalogManagement/v4/resourceSpecification`` (the official TMF633/634 files are not bundled
  in this repository; the shapes are declared in ``OpenBSS-CatalogExtensions-v1.swagger.json`` with the TMF names).
* OpenBSS extensions at ``/api/catalog/v1/``: tariffs (see ``catalog.tariff`` for why not under TMF620), and
  read operations the TMF resources lack: versions of a lineage, orderability/eligibility, orderable offerings
  (also for customers), decomposition of a product specification, rating with a tariff, export content.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from openbss.catalog.transfer import JobService
from openbss.catalog.wiring import CatalogServices
from openbss.platform.auth import READ, Principal
from openbss.platform.errors import BadRequest, Forbidden
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.query import MAX_LIMIT, MAX_OFFSET
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.platform.tmf.router import api_router
from openbss.pricing.rating import RatingRuleError


def _staff(principal: Principal) -> None:
    principal.require("catalog", READ)
    if principal.is_customer:
        raise Forbidden("customers cannot use this catalog operation", code="CUSTOMER_FORBIDDEN")


def _moment(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"'at': '{raw}' is not an ISO 8601 date-time", code="INVALID_QUERY") from exc
    if value.tzinfo is None:
        raise BadRequest(f"'at': '{raw}' needs a time zone offset (e.g. Z)", code="INVALID_QUERY")
    return value


def _extension_routes(svc: CatalogServices, router: APIRouter) -> None:
    product_catalog = svc.service
    exports = svc.jobs["exportJob"]
    assert isinstance(exports, JobService)

    async def versions(request: Request, kind: str, id: str,
                       principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal)
        if kind not in ("productOffering", "productOfferingPrice", "tariff"):
            raise BadRequest(f"'{kind}' has no versions (productOffering, productOfferingPrice, tariff)",
                             code="NOT_VERSIONED")
        async with unit_of_work(request, principal) as ctx:
            items = await product_catalog.get_service(kind).versions(ctx, id)
        return TmfJSONResponse(items, headers={"X-Total-Count": str(len(items)), "X-Result-Count": str(len(items))})

    async def orderability(request: Request, id: str, at: str | None = Query(None),
                           channel: str | None = Query(None), marketSegment: str | None = Query(None),
                           principal: Principal = Depends(authenticate)) -> Response:
        principal.require("catalog", READ)
        async with unit_of_work(request, principal) as ctx:
            reasons = await product_catalog.orderability(ctx, id, at=_moment(at), channel=channel,
                                                         market_segment=marketSegment)
        return TmfJSONResponse({"productOffering": {"id": id}, "orderable": not reasons, "reason": reasons})

    async def orderable(request: Request, at: str | None = Query(None), channel: str | None = Query(None),
                        marketSegment: str | None = Query(None), offset: int = Query(0, ge=0, le=MAX_OFFSET),
                        limit: int = Query(100, ge=1, le=MAX_LIMIT),
                        principal: Principal = Depends(authenticate)) -> Response:
        principal.require("catalog", READ)
        async with unit_of_work(request, principal) as ctx:
            items, total = await product_catalog.orderable_offerings(
                ctx, at=_moment(at), channel=channel, market_segment=marketSegment, offset=offset, limit=limit)
        return TmfJSONResponse(items, headers={"X-Total-Count": str(total), "X-Result-Count": str(len(items))})

    async def decomposition(request: Request, id: str,
                            principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal)
        async with unit_of_work(request, principal) as ctx:
            out = await product_catalog.decomposition(ctx, id)
        return TmfJSONResponse(out)

    async def rate(request: Request, id: str, destination: str = Query(...),
                   at: str | None = Query(None), visitedCountry: str | None = Query(None),
                   quantity: str = Query("60"), principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal)
        try:
            qty = Decimal(quantity)
        except InvalidOperation as exc:
            raise BadRequest(f"'quantity': '{quantity}' is not a number", code="INVALID_QUERY") from exc
        if not qty.is_finite() or qty < 0:
            raise BadRequest("'quantity' must be a non-negative number", code="INVALID_QUERY")
        async with unit_of_work(request, principal) as ctx:
            compiled = await product_catalog.compiled_tariff(ctx, id)
        from openbss.platform.db import utcnow

        try:
            ev = compiled.rate(destination, _moment(at) or utcnow(), visited_country=visitedCountry, quantity=qty)
        except RatingRuleError as exc:
            raise BadRequest(str(exc), code="NOT_RATABLE") from exc
        out: dict[str, Any] = {
            "tariff": {"id": id}, "destination": destination, "destinationZone": ev.destination_zone,
            "matchedPrefix": ev.prefix, "roamingZone": ev.roaming_zone, "timeBand": ev.time_band,
            "ratingIncrement": {"initial": ev.rate.initial, "subsequent": ev.rate.subsequent},
            "price": {"unit": ev.rate.currency, "value": ev.rate.price},
            "unitOfMeasure": {"amount": ev.rate.per_amount, "units": ev.rate.per_unit},
            "billableQuantity": ev.billable_quantity, "amount": {"unit": ev.rate.currency, "value": ev.amount},
        }
        return TmfJSONResponse(out)

    async def export_content(request: Request, id: str,
                             principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal)
        async with unit_of_work(request, principal) as ctx:
            out = await exports.content(ctx, id)
        return TmfJSONResponse(out)

    tags: list[str | Enum] = [svc.extension_api.title]
    router.add_api_route("/tariff/{id}/rate", rate, methods=["GET"], tags=tags, name="rateWithTariff",
                         summary="Rate one event with a tariff (zone, band, increments, amount)",
                         response_class=TmfJSONResponse)
    router.add_api_route("/{kind}/{id}/versions", versions, methods=["GET"], tags=tags, name="listVersions",
                         summary="All versions of an offering, price or tariff", response_class=TmfJSONResponse)
    router.add_api_route("/productOffering/{id}/orderability", orderability, methods=["GET"], tags=tags,
                         name="offeringOrderability",
                         summary="Whether an offering can be ordered (lifecycle, validity, channel, segment)",
                         response_class=TmfJSONResponse)
    router.add_api_route("/orderableOffering", orderable, methods=["GET"], tags=tags, name="listOrderableOfferings",
                         summary="Offerings orderable now for a channel and a customer segment",
                         response_class=TmfJSONResponse)
    router.add_api_route("/productSpecification/{id}/decomposition", decomposition, methods=["GET"], tags=tags,
                         name="productDecomposition",
                         summary="Services and resources a product specification decomposes into",
                         response_class=TmfJSONResponse)
    router.add_api_route("/exportJob/{id}/content", export_content, methods=["GET"], tags=tags,
                         name="exportJobContent", summary="The exported catalog document",
                         response_class=TmfJSONResponse)


def routers(svc: CatalogServices) -> list[tuple[str, APIRouter]]:
    return [(api.title, api_router(api, svc.services_of(api),
                                   extra=partial(_extension_routes, svc) if api is svc.extension_api else None))
            for api in svc.apis]

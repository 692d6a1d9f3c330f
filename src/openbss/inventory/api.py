"""Inventory HTTP APIs.

* TMF637 Product Inventory at ``/tmf-api/productInventory/v4/product`` (subscriptions),
* TMF638 Service Inventory at ``/tmf-api/serviceInventory/v4/service``,
* TMF639 Resource Inventory at ``/tmf-api/resourceInventoryManagement/v4/resource`` — with hubs and events.
  Products and services are read-only through the API: orders (and collections, through orders) change them.
  Resources can also be recorded, patched and deleted (routers, ONTs, ports, licences); pooled resources are
  protected (see ``inventory.resources``).
* Resource pools at ``/api/inventory/v1/``: number ranges, SIM cards (CSV), IPv4 CIDR pools, ONTs, counts.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from openbss.inventory.service import InventoryService
from openbss.inventory.wiring import InventoryServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.runtime import authenticate, permitted
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.platform.tmf.router import api_router


# --- pools ----------------------------------------------------------------------------------------------------
class NumberRange(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    first: str = Field(..., alias="from", description="First MSISDN (digits, with country code)")
    last: str = Field(..., alias="to", description="Last MSISDN")
    pool: str = "default"


class IpPool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cidr: str
    pool: str = "default"


class OntBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serialNumber: list[str] = Field(..., min_length=1, max_length=100_000)
    model: str | None = None
    pool: str = "default"


class SimFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csv: str = Field(..., description="iccid,imsi,ki_ref[,pool,form] lines with a header")
    pool: str = "default"


def _ops(principal: Principal, action: str) -> None:
    principal.require("inventory", action)


def pool_router(inventory: InventoryService) -> APIRouter:
    router = APIRouter(prefix="/api/inventory/v1", tags=["Resource pools"])

    async def add_number_range(request: Request, body: NumberRange = Body(...),
                               principal: Principal = Depends(permitted("inventory", WRITE))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            out = await inventory.add_number_range(ctx, body.first, body.last, body.pool)
        return TmfJSONResponse(out, status_code=201)

    async def add_ip_pool(request: Request, body: IpPool = Body(...),
                          principal: Principal = Depends(permitted("inventory", WRITE))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            out = await inventory.add_ipv4_pool(ctx, body.cidr, body.pool)
        return TmfJSONResponse(out, status_code=201)

    async def add_onts(request: Request, body: OntBatch = Body(...),
                       principal: Principal = Depends(permitted("inventory", WRITE))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            out = await inventory.add_onts(ctx, body.serialNumber, body.pool, body.model)
        return TmfJSONResponse(out, status_code=201)

    async def load_sims(request: Request, body: SimFile = Body(...),
                        principal: Principal = Depends(permitted("inventory", WRITE))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            out = await inventory.load_sims(ctx, body.csv, body.pool)
        return TmfJSONResponse(out, status_code=201)

    async def pool_counts(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        _ops(principal, READ)
        async with unit_of_work(request, principal) as ctx:
            out: dict[str, Any] = await inventory.pool_counts(ctx)
        return TmfJSONResponse(out)

    router.add_api_route("/numberRange", add_number_range, methods=["POST"], status_code=201,
                         summary="Add an MSISDN range (golden numbers are held back)")
    router.add_api_route("/ipv4Pool", add_ip_pool, methods=["POST"], status_code=201,
                         summary="Add the host addresses of a CIDR block")
    router.add_api_route("/ont", add_onts, methods=["POST"], status_code=201, summary="Register ONTs by serial")
    router.add_api_route("/simBatch", load_sims, methods=["POST"], status_code=201,
                         summary="Load SIM cards from a CSV file (iccid,imsi,ki_ref)")
    router.add_api_route("/poolCount", pool_counts, methods=["GET"], summary="Pool items by kind and status")
    return router


def routers(svc: InventoryServices) -> list[tuple[str, APIRouter]]:
    return [*((api.title, api_router(api, svc.services_of(api))) for api in svc.apis),
            ("Resource pools", pool_router(svc.service))]

"""Inventory HTTP APIs.

* TMF637 Product Inventory at ``/tmf-api/productInventory/v4/product`` (subscriptions),
* TMF638 Service Inventory at ``/tmf-api/serviceInventory/v4/service``,
* TMF639 Resource Inventory at ``/tmf-api/resourceInventoryManagement/v4/resource`` — with hubs and events.
  Read-only through the API: orders (and collections, through orders) change the inventory.
* Resource pools at ``/api/inventory/v1/``: number ranges, SIM cards (CSV), IPv4 CIDR pools, ONTs, counts.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from openbss.inventory import pools
from openbss.inventory.models import Product, Resource, Service
from openbss.inventory.schemas import PRODUCT_SPEC, RESOURCE_SPEC, SERVICE_SPEC
from openbss.inventory.service import InventoryService
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import TmfApi, TmfJSONResponse, TmfResource, build_router, unit_of_work

READ_ONLY = frozenset({"list", "get"})

product_api = TmfApi(
    name="productInventory", title="TMF637 Product Inventory", spec_file=PRODUCT_SPEC, permission="inventory",
    resources=[TmfResource(path="product", type="Product", table=Product, state_field="status",
                           owner_paths=("relatedParty.id",), operations=READ_ONLY,
                           customer_operations=READ_ONLY)])
service_api = TmfApi(
    name="serviceInventory", title="TMF638 Service Inventory", spec_file=SERVICE_SPEC, permission="inventory",
    resources=[TmfResource(path="service", type="Service", table=Service, state_field="state",
                           operations=READ_ONLY, customer_operations=frozenset())])
resource_api = TmfApi(
    name="resourceInventoryManagement", title="TMF639 Resource Inventory", spec_file=RESOURCE_SPEC,
    permission="inventory",
    resources=[TmfResource(path="resource", type="Resource", table=Resource, state_field="resourceStatus",
                           create_definition="OpenBSSResource_Create", update_definition="OpenBSSResource_Update",
                           operations=READ_ONLY, customer_operations=frozenset())])

product_router, product_services = build_router(product_api)
service_router, service_services = build_router(service_api)
resource_router, resource_services = build_router(resource_api)
inventory_service = InventoryService(product_services["product"], service_services["service"],
                                     resource_services["resource"])


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


pool_router = APIRouter(prefix="/api/inventory/v1", tags=["Resource pools"])


def _ops(principal: Principal, action: str) -> None:
    principal.require("inventory", action)


async def add_number_range(request: Request, body: NumberRange = Body(...),
                           principal: Principal = Depends(authenticate)) -> Response:
    _ops(principal, WRITE)
    async with unit_of_work(request, principal) as ctx:
        out = await pools.add_number_range(ctx.session, body.first, body.last, body.pool)
    return TmfJSONResponse(out, status_code=201)


async def add_ip_pool(request: Request, body: IpPool = Body(...),
                      principal: Principal = Depends(authenticate)) -> Response:
    _ops(principal, WRITE)
    async with unit_of_work(request, principal) as ctx:
        out = await pools.add_ipv4_pool(ctx.session, body.cidr, body.pool)
    return TmfJSONResponse(out, status_code=201)


async def add_onts(request: Request, body: OntBatch = Body(...),
                   principal: Principal = Depends(authenticate)) -> Response:
    _ops(principal, WRITE)
    async with unit_of_work(request, principal) as ctx:
        out = await pools.add_onts(ctx.session, body.serialNumber, body.pool, body.model)
    return TmfJSONResponse(out, status_code=201)


async def load_sims(request: Request, body: SimFile = Body(...),
                    principal: Principal = Depends(authenticate)) -> Response:
    _ops(principal, WRITE)
    async with unit_of_work(request, principal) as ctx:
        out = await pools.load_sims(ctx.session, body.csv, body.pool)
    return TmfJSONResponse(out, status_code=201)


async def pool_counts(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    _ops(principal, READ)
    async with unit_of_work(request, principal) as ctx:
        out: dict[str, Any] = await pools.counts(ctx.session)
    return TmfJSONResponse(out)


pool_router.add_api_route("/numberRange", add_number_range, methods=["POST"], status_code=201,
                          summary="Add an MSISDN range (golden numbers are held back)")
pool_router.add_api_route("/ipv4Pool", add_ip_pool, methods=["POST"], status_code=201,
                          summary="Add the host addresses of a CIDR block")
pool_router.add_api_route("/ont", add_onts, methods=["POST"], status_code=201, summary="Register ONTs by serial")
pool_router.add_api_route("/simBatch", load_sims, methods=["POST"], status_code=201,
                          summary="Load SIM cards from a CSV file (iccid,imsi,ki_ref)")
pool_router.add_api_route("/poolCount", pool_counts, methods=["GET"], summary="Pool items by kind and status")

ROUTERS: list[tuple[str, APIRouter]] = [
    (product_api.title, product_router), (service_api.title, service_router),
    (resource_api.title, resource_router), ("Resource pools", pool_router)]

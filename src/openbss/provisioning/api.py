"""Provisioning HTTP APIs.

* TMF641 Service Ordering at ``/tmf-api/serviceOrdering/v4/serviceOrder`` (read: service orders are made by the
  decomposition of product orders), with hub and events (ServiceOrderStateChangeEvent, ...).
* ``/api/provisioning/v1/``: the network simulators' fault injection (``PUT simulator/{element}``) and what the
  network saw (``GET networkCall``, ``GET elementState``).
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from sqlalchemy import select

from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.errors import NotFound
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.platform.tmf.router import api_router
from openbss.provisioning.adapters import ELEMENTS, check_faults
from openbss.provisioning.models import ElementState, NetworkCall, SimulatorConfig
from openbss.provisioning.service import ProvisioningService
from openbss.provisioning.wiring import ProvisioningServices


def _element(element: str) -> str:
    if element not in ELEMENTS:
        raise NotFound(f"no network element '{element}' (elements: {', '.join(ELEMENTS)})")
    return element


def _put_simulator(provisioning: ProvisioningService) -> Any:
    async def put_simulator(request: Request, element: str, body: dict[str, Any] = Body(...),
                            principal: Principal = Depends(authenticate)) -> Response:
        principal.require("provisioning", WRITE)
        _element(element)
        config = check_faults(body)
        async with unit_of_work(request, principal) as ctx:
            await provisioning.set_simulator_faults(ctx, element, config)
        return TmfJSONResponse({"element": element, **config})

    return put_simulator


async def get_simulator(request: Request, element: str, principal: Principal = Depends(authenticate)) -> Response:
    principal.require("provisioning", READ)
    _element(element)
    async with unit_of_work(request, principal) as ctx:
        cfg = await ctx.session.scalar(select(SimulatorConfig.config).where(SimulatorConfig.element == element))
    defaults = ctx.request.app.state.runtime.settings.simulator_faults.get(element, {}) if ctx.request else {}
    return TmfJSONResponse({"element": element, **defaults, **(cfg or {})})


async def list_calls(request: Request, element: str | None = Query(None), subscriber: str | None = Query(None),
                     outcome: str | None = Query(None), limit: int = Query(1000, ge=1, le=10000),
                     principal: Principal = Depends(authenticate)) -> Response:
    principal.require("provisioning", READ)
    stmt = select(NetworkCall).order_by(NetworkCall.id).limit(limit)
    if element:
        stmt = stmt.where(NetworkCall.element == element)
    if subscriber:
        stmt = stmt.where(NetworkCall.subscriber == subscriber)
    if outcome:
        stmt = stmt.where(NetworkCall.outcome.in_(outcome.split(",")))
    async with unit_of_work(request, principal) as ctx:
        rows = (await ctx.session.execute(stmt)).scalars().all()
    return TmfJSONResponse([{"element": r.element, "operation": r.operation, "subscriber": r.subscriber,
                             "idempotencyKey": r.idempotency_key, "outcome": r.outcome, "request": r.request,
                             "response": r.response, "at": r.at.isoformat()} for r in rows])


async def list_state(request: Request, element: str | None = Query(None),
                     principal: Principal = Depends(authenticate)) -> Response:
    principal.require("provisioning", READ)
    stmt = select(ElementState).order_by(ElementState.element, ElementState.subscriber)
    if element:
        stmt = stmt.where(ElementState.element == element)
    async with unit_of_work(request, principal) as ctx:
        rows = (await ctx.session.execute(stmt)).scalars().all()
    return TmfJSONResponse([{"element": r.element, "subscriber": r.subscriber, "status": r.status,
                             "profile": r.profile} for r in rows])


def ops_router(provisioning: ProvisioningService) -> APIRouter:
    router = APIRouter(prefix="/api/provisioning/v1", tags=["Network simulators"])
    router.add_api_route("/simulator/{element}", _put_simulator(provisioning), methods=["PUT"],
                         summary="Set a simulated element's fault injection for this tenant")
    router.add_api_route("/simulator/{element}", get_simulator, methods=["GET"],
                         summary="A simulated element's fault injection")
    router.add_api_route("/networkCall", list_calls, methods=["GET"], summary="Every call the simulators received")
    router.add_api_route("/elementState", list_state, methods=["GET"], summary="What the simulated elements hold")
    return router


def routers(svc: ProvisioningServices) -> list[tuple[str, APIRouter]]:
    return [(svc.api.title, api_router(svc.api, svc.resources)), ("Network simulators", ops_router(svc.service))]

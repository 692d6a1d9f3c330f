"""Customer care's HTTP APIs.

* TMF621 Trouble Ticket at ``/tmf-api/troubleTicket/v4/troubleTicket`` (with hub and events);
* TMF683 Party Interaction at ``/tmf-api/partyInteraction/v4/partyInteraction`` (with hub and events);
* OpenBSS care configuration at ``/api/care/v1/``: work queues (``queue``), SLA policies (``slaPolicy``), the
  contact channels (``channel``), the JSON schema of the trouble ticket's extension
  (``schema/OpenBSSTroubleTicket.json``) and the download of tickets' attachments
  (``troubleTicket/{id}/attachment/{attachmentId}``). Reading needs ``care:read``; configuring queues and SLA
  policies needs ``careconfig:write`` (the ``care_supervisor`` and ``admin`` roles).
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

import re
from typing import Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from openbss.care.agent_api import agent_router, console_router
from openbss.care.console_auth import console_auth_router
from openbss.care.errors import CareNotFound
from openbss.care.schemas import extension_schema
from openbss.care.service import CHANNELS, SCHEMA_PATH, CareConfiguration, TicketService, channel_ref
from openbss.care.wiring import CareServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.errors import Forbidden
from openbss.platform.runtime import authenticate, permitted
from openbss.platform.tmf.resource import TmfJSONResponse, base_url, unit_of_work
from openbss.platform.tmf.router import api_router

CONFIG_SCOPE = "careconfig"


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)


class EscalationStepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: Literal["firstResponse", "resolution"]
    percent: int = Field(..., ge=1, le=1000, description="Share of the target's business time, e.g. 75, 100, 150")
    action: Literal["notify", "reassign", "raisePriority"]
    queue: str | None = Field(None, description="The queue a reassign step moves the ticket to")


class CalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeZone: str = "UTC"
    workingHours: dict[str, list[list[str]]] = Field(
        ..., description='Per weekday, working intervals: {"monday": [["09:00", "17:00"]], ...}; a missing day is '
                         "closed")
    holidayCountry: str | None = Field(None, description="ISO 3166 country of the public holidays, e.g. FR")
    holidaySubdivision: str | None = None
    closedDays: list[str] = Field(default_factory=list, description="Extra closed days, YYYY-MM-DD")


class SlaPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=100)
    ticketType: str | None = Field(None, max_length=100, description="None: any ticket type")
    priority: str | None = Field(None, max_length=50, description="None: any priority")
    segment: str | None = Field(None, max_length=100, description="Customer segment; None: any")
    firstResponseMinutes: int = Field(..., ge=1, le=60 * 24 * 365)
    resolutionMinutes: int = Field(..., ge=1, le=60 * 24 * 365)
    calendar: CalendarIn
    escalation: list[EscalationStepIn] = Field(default_factory=list, max_length=20)


def _staff(principal: Principal, scope: str, action: str) -> None:
    principal.require(scope, action)
    if principal.is_customer:
        raise Forbidden("customers cannot use the care configuration", code="CUSTOMER_FORBIDDEN")


def config_router(config: CareConfiguration, tickets: TicketService) -> APIRouter:
    router = APIRouter(prefix="/api/care/v1", tags=["Care configuration"])

    # the configuration's writes check their permission in a dependency: before the body is validated
    async def create_queue(request: Request, body: QueueIn = Body(...),
                           principal: Principal = Depends(permitted(CONFIG_SCOPE, WRITE))) -> Response:
        _staff(principal, CONFIG_SCOPE, WRITE)
        async with unit_of_work(request, principal) as ctx:
            out = await config.create_queue(ctx, body.name, body.description)
        return TmfJSONResponse(out, status_code=201)

    async def list_queues(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, "care", READ)
        async with unit_of_work(request, principal) as ctx:
            out = await config.queues(ctx)
        return TmfJSONResponse(out, headers={"X-Total-Count": str(len(out)), "X-Result-Count": str(len(out))})

    async def get_queue(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, "care", READ)
        async with unit_of_work(request, principal) as ctx:
            out = await config.queue(ctx, id)
        return TmfJSONResponse(out)

    async def create_policy(request: Request, body: SlaPolicyIn = Body(...),
                            principal: Principal = Depends(permitted(CONFIG_SCOPE, WRITE))) -> Response:
        _staff(principal, CONFIG_SCOPE, WRITE)
        async with unit_of_work(request, principal) as ctx:
            out = await config.create_policy(ctx, body.model_dump())
        return TmfJSONResponse(out, status_code=201)

    async def list_policies(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, "care", READ)
        async with unit_of_work(request, principal) as ctx:
            out = await config.policies(ctx)
        return TmfJSONResponse(out, headers={"X-Total-Count": str(len(out)), "X-Result-Count": str(len(out))})

    async def get_policy(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, "care", READ)
        async with unit_of_work(request, principal) as ctx:
            out = await config.policy(ctx, id)
        return TmfJSONResponse(out)

    async def deactivate_policy(request: Request, id: str,
                                principal: Principal = Depends(permitted(CONFIG_SCOPE, WRITE))) -> Response:
        _staff(principal, CONFIG_SCOPE, WRITE)
        async with unit_of_work(request, principal) as ctx:
            out = await config.deactivate_policy(ctx, id)
        return TmfJSONResponse(out)

    async def list_channels(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("care", READ)
        base = base_url(request)
        return TmfJSONResponse([channel_ref(base, c) for c in CHANNELS])

    async def get_channel(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("care", READ)
        if id not in CHANNELS:
            raise CareNotFound(f"channel '{id}' not found")
        return TmfJSONResponse(channel_ref(base_url(request), id))

    async def download(request: Request, id: str, attachment_id: str,
                       principal: Principal = Depends(authenticate)) -> Response:
        principal.require("care", READ)
        async with unit_of_work(request, principal) as ctx:
            ticket = await tickets.get(ctx, id)  # a customer reaches only their own tickets
            data, attachment = await tickets.rules.attachments.read(ctx, ticket, attachment_id)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(attachment.get("name") or attachment_id))
        return Response(data, media_type=str(attachment["mimeType"]),
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "X-Content-Type-Options": "nosniff"})

    async def schema(request: Request) -> Response:
        return TmfJSONResponse(extension_schema(f"{base_url(request)}{SCHEMA_PATH}"))

    router.add_api_route("/queue", create_queue, methods=["POST"], status_code=201, summary="Create a work queue")
    router.add_api_route("/queue", list_queues, methods=["GET"], summary="List the work queues")
    router.add_api_route("/queue/{id}", get_queue, methods=["GET"], summary="Retrieve a work queue")
    router.add_api_route("/slaPolicy", create_policy, methods=["POST"], status_code=201,
                         summary="Create an SLA policy")
    router.add_api_route("/slaPolicy", list_policies, methods=["GET"], summary="List the SLA policies")
    router.add_api_route("/slaPolicy/{id}", get_policy, methods=["GET"], summary="Retrieve an SLA policy")
    router.add_api_route("/slaPolicy/{id}/deactivate", deactivate_policy, methods=["POST"],
                         summary="Deactivate an SLA policy (running tickets keep their targets)")
    router.add_api_route("/channel", list_channels, methods=["GET"], summary="The contact channels")
    router.add_api_route("/channel/{id}", get_channel, methods=["GET"], summary="A contact channel")
    router.add_api_route("/troubleTicket/{id}/attachment/{attachment_id}", download, methods=["GET"],
                         summary="Download a trouble ticket's attachment", response_class=Response)
    router.add_api_route(SCHEMA_PATH.removeprefix("/api/care/v1"), schema, methods=["GET"],
                         summary="JSON schema of the OpenBSSTroubleTicket extension")
    return router


def routers(svc: CareServices) -> list[tuple[str, APIRouter]]:
    return [*((api.title, api_router(api, svc.services_of(api))) for api in svc.apis),
            ("Care configuration", config_router(svc.service.config, svc.service.tickets)),
            ("Care configuration", agent_router(svc.adjustments, svc.selfcare_reset)),
            ("Care configuration", console_router()),
            ("Care configuration", console_auth_router(svc.settings))]

"""TMF632 Party Management at /tmf-api/party/v4/ (individual, organization) and TMF669 Party Role Management at
/tmf-api/partyRoleManagement/v4/ (partyRole), with hubs and events. Personal attributes are encrypted at rest."""

from __future__ import annotations

from fastapi import APIRouter

from openbss.party.wiring import PartyServices
from openbss.platform.tmf.router import api_router


def routers(svc: PartyServices) -> list[tuple[str, APIRouter]]:
    return [(svc.party_api.title, api_router(svc.party_api, svc.parties)),
            (svc.role_api.title, api_router(svc.role_api, svc.roles))]

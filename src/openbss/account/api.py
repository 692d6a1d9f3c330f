"""TMF666 Account Management at /tmf-api/accountManagement/v4/: billingAccount, partyAccount, settlementAccount,
financialAccount, billingCycleSpecification, billFormat, billPresentationMedia — with hub and events."""

from __future__ import annotations

from fastapi import APIRouter

from openbss.account.wiring import AccountServices
from openbss.platform.tmf.router import api_router


def routers(svc: AccountServices) -> list[tuple[str, APIRouter]]:
    return [(svc.api.title, api_router(svc.api, svc.resources))]

"""The agent console (``/console/``, static files of ``care/console``) and the actions it needs beyond the TMF APIs,
under ``/api/care/v1/``:

* ``GET /agent/me``: who the caller is (roles, bill-adjustment limit, may they approve; agents and network
  operations accounts, the NOC view's);
* ``GET|PUT /adjustmentLimit``: the agents' bill-adjustment limits, per role or per agent (``PUT``: supervisors);
* ``POST /billAdjustment``: credit an issued bill (a credit note) within the agent's limit — 201 ``applied`` —
  or ask for a supervisor's approval above it — 202 ``pendingApproval``;
* ``GET /approval``, ``GET /approval/{id}``, ``POST /approval/{id}/approve|reject``: the approvals (deciding:
  supervisors, never the requester);
* ``POST /topUp``: credit a prepaid line's main balance (``care:write``) within the agent's limit — 201
  ``applied`` — or ask for a supervisor's approval above it — 202 ``pendingApproval`` (the same approvals);
* ``POST /selfcareAccessReset``: reset a customer's self-care access (``care:write``): end their portal sessions,
  unlink their sign-in identities, send them a sign-in link.

Every action is authorized here, on the server, and audited with the caller's identity.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from openbss.care.adjustments import CONFIG_SCOPE, Adjustments, parse_amount
from openbss.care.errors import InvalidAdjustment
from openbss.care.selfcare_access import SelfcareReset
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.errors import Forbidden
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work

CONSOLE_STATIC = Path(__file__).parent / "console"
#: the console's scripts, styles and requests are its own origin's only; it is never framed
CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class ConsoleSecurityHeaders:
    """The headers of every response under /console (the platform middleware adds those a response lacks)."""

    prefix = "/console"

    def __init__(self) -> None:
        self.headers = ((b"content-security-policy", CONSOLE_CSP.encode()), (b"x-content-type-options", b"nosniff"),
                        (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"))

    def for_path(self, path: str) -> Sequence[tuple[bytes, bytes]]:
        return self.headers


class Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(..., min_length=1, max_length=64)


class AppliesTo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(..., description="'role' or 'agent'")
    id: str = Field(..., min_length=1, max_length=200, description="A role name, or an agent's user id")


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: StrictStr | StrictInt = Field(..., description="A decimal amount, e.g. \"50.00\"")
    unit: str = Field(..., min_length=3, max_length=3, description="ISO 4217 currency, e.g. EUR")


class LimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appliesTo: AppliesTo
    amount: Money


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bill: Ref
    amount: StrictStr | StrictInt = Field(..., description="Tax included, in the bill's currency, e.g. \"12.50\"")
    reason: str = Field(..., min_length=1, max_length=500)
    customer: Ref | None = None


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: Ref
    reason: str | None = Field(None, max_length=500, description="Why (e.g. \"lost phone; caller verified\")")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500)


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscriber: str = Field(..., min_length=3, max_length=40, description="The line's MSISDN")
    amount: StrictStr | StrictInt = Field(..., description="In the line's currency, e.g. \"10.00\"")
    reason: str | None = Field(None, max_length=500)
    customer: Ref | None = None


def _agent(principal: Principal, scope: str, action: str) -> None:
    principal.require(scope, action)
    if principal.is_customer:
        raise Forbidden("the console's actions are the operator's staff's", code="CUSTOMER_FORBIDDEN")


def staff(scope: str, action: str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency: a staff principal holding ``scope:action``, checked before the body is validated."""
    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        _agent(principal, scope, action)
        return principal

    return dependency


def agent_router(adjustments: Adjustments, selfcare: SelfcareReset) -> APIRouter:
    router = APIRouter(prefix="/api/care/v1", tags=["Care configuration"])

    async def me(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        # agents (care:read) and network operations (assurance:read: the console's NOC view) sign in
        _agent(principal, "assurance" if principal.can("assurance", READ) and not principal.can("care", READ)
               else "care", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await adjustments.me(ctx))

    async def list_limits(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        _agent(principal, "care", READ)
        async with unit_of_work(request, principal) as ctx:
            out = await adjustments.limits(ctx)
        return TmfJSONResponse(out, headers={"X-Total-Count": str(len(out)), "X-Result-Count": str(len(out))})

    async def set_limit(request: Request, body: LimitIn = Body(...),
                        principal: Principal = Depends(staff(CONFIG_SCOPE, WRITE))) -> Response:
        _agent(principal, CONFIG_SCOPE, WRITE)
        async with unit_of_work(request, principal) as ctx:
            out = await adjustments.set_limit(ctx, body.appliesTo.kind, body.appliesTo.id, body.amount.value,
                                              body.amount.unit)
        return TmfJSONResponse(out)

    async def adjust(request: Request, body: AdjustmentIn = Body(...),
                     principal: Principal = Depends(staff("care", WRITE))) -> Response:
        _agent(principal, "care", WRITE)
        amount = parse_amount(body.amount)
        async with unit_of_work(request, principal) as ctx:
            outcome, out = await adjustments.adjust_bill(ctx, body.bill.id, amount, body.reason,
                                                         body.customer.id if body.customer else None)
        if outcome == "applied":
            return TmfJSONResponse({"status": "applied", "creditNote": out}, status_code=201)
        return TmfJSONResponse({"status": "pendingApproval", "approval": out}, status_code=202,
                               headers={"Location": str(out["href"])})

    async def list_approvals(request: Request, status: str | None = Query(None, max_length=100),
                             principal: Principal = Depends(authenticate)) -> Response:
        _agent(principal, "care", READ)
        if status and any(s not in ("pending", "approved", "rejected") for s in status.split(",")):
            raise InvalidAdjustment("'status' must be among pending, approved, rejected")
        async with unit_of_work(request, principal) as ctx:
            out = await adjustments.approvals(ctx, status)
        return TmfJSONResponse(out, headers={"X-Total-Count": str(len(out)), "X-Result-Count": str(len(out))})

    async def get_approval(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        _agent(principal, "care", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await adjustments.approval(ctx, id))

    async def approve(request: Request, id: str, body: DecisionIn | None = Body(None),
                      principal: Principal = Depends(staff(CONFIG_SCOPE, WRITE))) -> Response:
        _agent(principal, CONFIG_SCOPE, WRITE)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await adjustments.decide(ctx, id, True, body.reason if body else None))

    async def reject(request: Request, id: str, body: DecisionIn | None = Body(None),
                     principal: Principal = Depends(staff(CONFIG_SCOPE, WRITE))) -> Response:
        _agent(principal, CONFIG_SCOPE, WRITE)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await adjustments.decide(ctx, id, False, body.reason if body else None))

    async def top_up(request: Request, body: TopUpIn = Body(...),
                     principal: Principal = Depends(staff("care", WRITE))) -> Response:
        _agent(principal, "care", WRITE)
        amount = parse_amount(body.amount)
        async with unit_of_work(request, principal) as ctx:
            outcome, out = await adjustments.request_top_up(ctx, body.subscriber, amount, body.reason,
                                                            body.customer.id if body.customer else None)
        if outcome == "applied":
            return TmfJSONResponse({"status": "applied", **out}, status_code=201)
        return TmfJSONResponse({"status": "pendingApproval", "approval": out}, status_code=202,
                               headers={"Location": str(out["href"])})

    async def reset_selfcare(request: Request, body: ResetIn = Body(...),
                             principal: Principal = Depends(staff("care", WRITE))) -> Response:
        _agent(principal, "care", WRITE)
        async with unit_of_work(request, principal) as ctx:
            out = await selfcare.reset(ctx, body.customer.id, body.reason)
        return TmfJSONResponse(out, status_code=201)

    router.add_api_route("/agent/me", me, methods=["GET"], summary="The signed-in agent: roles and limits")
    router.add_api_route("/adjustmentLimit", list_limits, methods=["GET"], summary="Agents' adjustment limits")
    router.add_api_route("/adjustmentLimit", set_limit, methods=["PUT"],
                         summary="Set a role's or an agent's bill-adjustment limit")
    router.add_api_route("/billAdjustment", adjust, methods=["POST"], status_code=201,
                         summary="Credit an issued bill (within the agent's limit; above it: an approval request)")
    router.add_api_route("/approval", list_approvals, methods=["GET"], summary="Approval requests")
    router.add_api_route("/approval/{id}", get_approval, methods=["GET"], summary="An approval request")
    router.add_api_route("/approval/{id}/approve", approve, methods=["POST"], summary="Approve (supervisors)")
    router.add_api_route("/approval/{id}/reject", reject, methods=["POST"], summary="Reject (supervisors)")
    router.add_api_route("/topUp", top_up, methods=["POST"], status_code=201,
                         summary="Top up a prepaid line's main balance (within the agent's limit; above it: an "
                                 "approval request)")
    router.add_api_route("/selfcareAccessReset", reset_selfcare, methods=["POST"], status_code=201,
                         summary="Reset a customer's self-care access: end their portal sessions, unlink their "
                                 "sign-in identities, send them a sign-in link")
    return router


def console_router() -> APIRouter:
    """The console's page (its assets are static files mounted at ``/console/assets``)."""
    router = APIRouter(tags=["Care configuration"])

    async def page() -> Any:
        return FileResponse(CONSOLE_STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

    router.add_api_route("/console/", page, methods=["GET"], include_in_schema=False)
    return router


__all__ = ["CONSOLE_STATIC", "ConsoleSecurityHeaders", "agent_router", "console_router"]

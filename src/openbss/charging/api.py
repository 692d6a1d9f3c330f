"""HTTP APIs of online charging.

* ``POST /ocs/v1/creditControl`` — credit control for network elements (Diameter Gy/Ro mapped to JSON one to one;
  see ``schemas.py`` for the AVP mapping and ``docs/api.md``). Always 200 with a Diameter result code once the
  request is well formed; 400 for a malformed request, 401/403 for authentication. Permission ``charging:write``
  (roles ``system`` and ``admin``; network elements call with a system token).
* TMF654 Prepay Balance Management at ``/tmf-api/prepayBalanceManagement/v4/``: bucket, accumulatedBalance (read),
  topupBalance, adjustBalance, transferBalance, reserveBalance (actions applied on creation), balanceActionHistory
  (read), hub.
* TMF635 Usage Management at ``/tmf-api/usageManagement/v4/``: usage (read: one rated record per debit), hub.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

import time
from typing import Any

import jwt
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import String, cast, func, select

from openbss.charging import service
from openbss.charging.errors import InvalidChargingRequest
from openbss.charging.events import API
from openbss.charging.models import ChargingAccount
from openbss.charging.schemas import CreditControlAnswer, CreditControlRequest
from openbss.charging.service import ChargingService
from openbss.charging.wiring import ChargingServices
from openbss.platform.auth import READ, WRITE, Principal, bearer_token
from openbss.platform.db import MAX_OFFSET, json_dumps, utcnow
from openbss.platform.errors import NotFound, Unauthorized, UnsupportedMediaType
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.resource import Context, TmfJSONResponse, base_url, unit_of_work
from openbss.platform.tmf.router import api_router


# --- accumulatedBalance: aggregated live per account and usage type ---------------------------------------------
def _accumulated_routes(router: APIRouter) -> None:
    async def list_accumulated(request: Request, principal: Principal = Depends(authenticate),
                               offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(100, ge=1, le=1000),
                               logicalResource_id: str | None = Query(None, alias="logicalResource.id"),
                               product_id: str | None = Query(None, alias="product.id"),
                               partyAccount_id: str | None = Query(None, alias="partyAccount.id"),
                               usageType: str | None = Query(None)) -> Response:
        principal.require("charging", READ)
        async with unit_of_work(request, principal) as ctx:
            stmt = select(ChargingAccount.id)
            if logicalResource_id:
                stmt = stmt.where(ChargingAccount.subscriber == service.subscriber_key(logicalResource_id))
            if product_id:
                stmt = stmt.where(ChargingAccount.product_id == product_id)
            if partyAccount_id:
                stmt = stmt.where(ChargingAccount.billing_account_id == partyAccount_id)
            if principal.is_customer:
                stmt = stmt.where(ChargingAccount.party_id == cast(principal.party_id or "", String))
            total = await ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            ids = (await ctx.session.execute(stmt.order_by(ChargingAccount.created_at, ChargingAccount.id)
                                             .offset(offset).limit(limit))).scalars().all()
            items: list[dict[str, Any]] = []
            for account_id in ids:
                items += await _accumulated(ctx, account_id, usageType)
        return TmfJSONResponse(items, headers={"X-Total-Count": str(total), "X-Result-Count": str(len(items))})

    async def get_accumulated(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("charging", READ)
        account_id, _, usage_type = id.rpartition(".")
        async with unit_of_work(request, principal) as ctx:
            found = await _accumulated(ctx, account_id, usage_type) if account_id else []
        if not found:
            raise NotFound(f"AccumulatedBalance '{id}' not found")
        return TmfJSONResponse(found[0])

    router.add_api_route("/accumulatedBalance", list_accumulated, methods=["GET"], name="listAccumulatedBalance",
                         summary="List accumulated balances (per account and usage type, live)")
    router.add_api_route("/accumulatedBalance/{id}", get_accumulated, methods=["GET"],
                         name="retrieveAccumulatedBalance", summary="Retrieves an AccumulatedBalance by ID")


async def _accumulated(ctx: Context, account_id: str, usage_type: str | None) -> list[dict[str, Any]]:
    try:
        account = await service.get_account(ctx, account_id)
    except NotFound:
        return []
    if ctx.principal.is_customer and account.get("party_id") != ctx.principal.party_id:
        return []
    base = ctx.base_url
    out = []
    by_type: dict[str, list[dict[str, Any]]] = {}
    now = utcnow().timestamp()
    for b in account["buckets"]:
        if b.get("valid_to") is not None and b["valid_to"] <= now:
            continue
        by_type.setdefault(service.TMF_USAGE_TYPE[b["unit"]], []).append(b)
    for tmf_type, buckets in sorted(by_type.items()):
        if usage_type and tmf_type != usage_type:
            continue
        unit = buckets[0]["unit"]
        total = sum(int(b["remaining"]) for b in buckets)
        doc: dict[str, Any] = {
            "id": f"{account_id}.{tmf_type}", "href": f"{base}/tmf-api/{API}/v4/accumulatedBalance/{account_id}."
                                                      f"{tmf_type}",
            "@type": "AccumulatedBalance", "name": f"{tmf_type} balance of {account['subscriber']}",
            "bucket": [{"id": b["id"], "href": f"{base}/tmf-api/{API}/v4/bucket/{b['id']}"} for b in buckets],
            "totalBalance": service.units_quantity(total, unit, account["currency"]),
            "logicalResource": {"id": account["subscriber"], "name": "MSISDN", "@referredType": "MSISDN"},
        }
        if account.get("product_id"):
            doc["product"] = [{"id": account["product_id"], "@referredType": "Product"}]
        if account.get("billing_account_id"):
            doc["partyAccount"] = {"id": account["billing_account_id"], "@referredType": "BillingAccount"}
        out.append(doc)
    return out


# --- credit control ---------------------------------------------------------------------------------------------
_principals: dict[str, tuple[Principal, float]] = {}
PRINCIPAL_CACHE_SECONDS = 300.0


async def network_element(request: Request) -> Principal:
    """``authenticate``, with the verified principal of a bearer token cached (by the exact token, until it
    expires and at most five minutes): a network element sends the same token with every request, and an RSA
    signature check per request is a measurable part of the credit-control CPU budget."""
    token = bearer_token(request)
    now = time.time()
    hit = _principals.get(token)
    if hit is None or hit[1] <= now:
        principal = await authenticate(request)
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp", now)
        if len(_principals) >= 4096:
            _principals.clear()
        _principals[token] = (principal, min(float(expires), now + PRINCIPAL_CACHE_SECONDS))
        return principal
    principal = hit[0]
    if not await runtime(request).tenants.is_active(principal.tenant_id):
        raise Unauthorized(f"tenant '{principal.tenant_id}' does not exist or is not active", code="UNKNOWN_TENANT")
    return principal


def credit_control_router(charging: ChargingService) -> APIRouter:
    router = APIRouter(prefix="/ocs/v1", tags=["Online charging (credit control)"])
    router.add_api_route("/creditControl", _credit_control(charging), methods=["POST"], **CREDIT_CONTROL_DOC)

    async def get_settings(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("charging", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await service.charging_settings(ctx))

    async def patch_settings(request: Request, body: Any = Body(...),
                             principal: Principal = Depends(authenticate)) -> Response:
        principal.require("rating", WRITE)  # a rating convention, shared with batch rating (billing operations)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await charging.set_settings(ctx, body))

    router.add_api_route("/settings", get_settings, methods=["GET"], summary="The tenant's charging settings")
    router.add_api_route("/settings", patch_settings, methods=["PATCH"],
                         summary="Change the tenant's charging settings (bandChange: start | split)")
    return router


CREDIT_CONTROL_DOC: dict[str, Any] = dict(
    summary="Credit-control request (Diameter Gy/Ro CCR -> CCA)",
    description="INITIAL reserves a quota per rating group, UPDATE reports used units and reserves more, "
                "TERMINATE reports the final units and releases the rest, EVENT charges a one-shot service. "
                "The answer carries Diameter result codes: 2001 success, 4010 service denied, 4012 credit limit "
                "reached, 5002 unknown session, 5004 invalid value (e.g. out-of-order request number), "
                "5030 user unknown, 5031 rating failed. A repeated request (same sessionId and requestNumber) "
                "gets the same answer and is charged once.",
    responses={200: {"model": CreditControlAnswer, "description": "The answer, with Diameter result codes"},
               400: {"description": "Malformed request"}, 401: {"description": "Unauthorized"},
               403: {"description": "Forbidden"}},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema":
                                                                     CreditControlRequest.model_json_schema()}},
                                   "required": True}})


def _credit_control(charging: ChargingService) -> Any:
    async def credit_control(request: Request, principal: Principal = Depends(network_element)) -> Response:
        principal.require("charging", WRITE)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise UnsupportedMediaType(f"Content-Type must be application/json, got '{ctype or 'none'}'")
        try:
            ccr = CreditControlRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidChargingRequest(validation_message(exc)) from exc
        rt = runtime(request)
        answer = await charging.credit_control(rt.db, principal.tenant_id, ccr, base_url(request))
        return Response(json_dumps(answer), media_type="application/json")

    return credit_control


def routers(svc: ChargingServices) -> list[tuple[str, APIRouter]]:
    return [(svc.prepay_api.title, api_router(svc.prepay_api, svc.balances, extra=_accumulated_routes)),
            (svc.usage_api.title, api_router(svc.usage_api, svc.usage)),
            ("Online charging (credit control)", credit_control_router(svc.service))]

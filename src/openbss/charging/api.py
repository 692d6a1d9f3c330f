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
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import String, cast, false, func, or_, select

from openbss.charging import repository as repo
from openbss.charging import service
from openbss.charging.errors import InvalidBalanceAction, InvalidChargingRequest
from openbss.charging.events import API, EXTRA_EVENT_TYPES, USAGE_API
from openbss.charging.models import (
    AdjustBalance,
    BalanceActionHistory,
    Bucket,
    ChargingAccount,
    ReserveBalance,
    TopupBalance,
    TransferBalance,
    Usage,
)
from openbss.charging.schemas import SPEC_FILE, USAGE_SPEC_FILE, CreditControlAnswer, CreditControlRequest
from openbss.platform.auth import READ, WRITE, Principal, bearer_token
from openbss.platform.db import json_dumps, utcnow
from openbss.platform.errors import Conflict, NotFound, Unauthorized, UnsupportedMediaType
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.resource import (
    Context,
    DocumentCodec,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfJSONResponse,
    TmfResource,
    base_url,
    build_router,
    unit_of_work,
)
from openbss.platform.tmf.search import Searchable, column_filter, datetime_column
from openbss.platform.tmf.spec import format_datetime


class ChargingTmfApi(TmfApi):
    def event_types(self) -> set[str]:
        return super().event_types() | set(EXTRA_EVENT_TYPES)


# --- buckets: live values overlaid on the stored document ------------------------------------------------------
class BucketCodec(DocumentCodec):
    async def decode(self, ctx: Context, rows: list[TmfDocument]) -> list[dict[str, Any]]:
        now = utcnow()
        out = []
        for row in rows:
            assert isinstance(row, Bucket)
            doc = dict(row.body)
            currency = (doc.get("remainingValue") or {}).get("units")
            doc["remainingValue"] = service.units_quantity(row.remaining, row.unit, currency)
            doc["reservedValue"] = service.units_quantity(row.reserved, row.unit, currency)
            doc["remainingValueName"] = service.remaining_name(row.remaining, row.unit, currency)
            # extension attributes (TMF630 allows them): the size of the bucket when it was granted
            doc["initialValue"] = service.units_quantity(row.initial, row.unit, currency)
            doc["initialValueName"] = service.remaining_name(row.initial, row.unit, currency)
            doc["status"] = "expired" if row.valid_to is not None and row.valid_to <= now else "active"
            doc["confirmationDate"] = format_datetime(row.last_update)
            out.append(doc)
        return out

    def sortable(self, path: str) -> bool:
        return path not in ("remainingValue.amount", "reservedValue.amount")

    def owner_condition(self, party_id: str, table: Any) -> Any:
        return party_accounts(table, party_id)


def party_accounts(table: Any, party_id: str) -> Any:
    """Rows of the party's charging accounts (the documents' relatedParty is the account's party), by index."""
    return table.account_id.in_(select(ChargingAccount.id).where(ChargingAccount.party_id == party_id))


def _by_account(table: Any, column: Any) -> Any:
    """A filter on an attribute the documents copy from their charging account (party, product, billing
    account), answered through the account's indexed column."""
    def build(flt: Any) -> Any:
        if flt.op != "eq":
            return None
        return table.account_id.in_(select(ChargingAccount.id).where(column.in_([str(v) for v in flt.values])))
    return build


def _bucket_status(flt: Any) -> Any:
    """``status`` of a bucket is computed when read (``expired`` once its validity ended)."""
    if flt.op != "eq":
        return None
    now = func.now()
    expired = Bucket.valid_to.is_not(None) & (Bucket.valid_to <= now)
    conds = [expired if v == "expired" else ~expired if v == "active" else false() for v in flt.values]
    return or_(*conds)


# Buckets and usage records are written by the charging hot path (``repository``), not through the kit: their
# searchable attributes are served by typed columns; other filters read the documents.
BUCKET_SEARCH = Searchable(side_table=False, columns={
    "status": _bucket_status,
    "confirmationDate": datetime_column(Bucket.last_update),
    "relatedParty.id": _by_account(Bucket, ChargingAccount.party_id),
    "product.id": _by_account(Bucket, ChargingAccount.product_id),
    "partyAccount.id": _by_account(Bucket, ChargingAccount.billing_account_id),
}, unsupported={"remainingValueName": "it is computed from the live balance when read"})
USAGE_SEARCH = Searchable(side_table=False, columns={
    "usageDate": datetime_column(Usage.usage_date),
    "usageType": column_filter(Usage.usage_type),
    "relatedParty.id": _by_account(Usage, ChargingAccount.party_id),
})


# --- balance actions: applied when created ----------------------------------------------------------------------
def _now() -> str:
    return format_datetime(utcnow())


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


async def _bucket_units(ctx: Context, doc: dict[str, Any], attr: str = "bucket") -> tuple[str, dict[str, Any], int]:
    ref = doc.get(attr) or {}
    account_id, bucket = await service.account_of_bucket(ctx, str(ref.get("id")))
    currency = (bucket["body"].get("remainingValue") or {}).get("units")
    expected = service.TMF_USAGE_TYPE[bucket["unit"]]
    if doc.get("usageType") not in (None, expected):
        raise InvalidBalanceAction(f"'usageType': bucket '{bucket['id']}' holds {expected}, not "
                                   f"{doc.get('usageType')}")
    amount = doc.get("amount") or {}
    if amount.get("amount") is None or not amount.get("units"):
        raise InvalidBalanceAction("'amount': amount and units are required")
    units = service.quantity_to_units(amount["amount"], amount["units"], bucket["unit"], currency)
    return account_id, bucket, units


async def _history(ctx: Context, action: str, doc: dict[str, Any], bucket: dict[str, Any]) -> None:
    history = SERVICES["balanceActionHistory"]
    hid = str(uuid.uuid4())
    logical = bucket["body"].get("logicalResource") or [{"id": "unknown"}]
    kept = ("amount", "bucket", "usageType", "reason", "requestedDate", "confirmationDate", "channel", "requestor",
            "adjustType", "receiverBucket", "logicalResource", "partyAccount", "relatedParty", "product")
    entry: dict[str, Any] = {k: doc[k] for k in kept if k in doc}
    entry.update({"id": hid, "@type": "BalanceActionHistory", "status": doc.get("status", "completed"),
                  "description": action,
                  "receiverLogicalResource": doc.get("receiverLogicalResource") or logical[0]})
    await history.store.insert(ctx, hid, entry)


def _complete(doc: dict[str, Any], bucket: dict[str, Any]) -> None:
    now = _now()
    doc["status"] = "completed"
    doc.setdefault("requestedDate", now)
    doc["confirmationDate"] = now
    for attr in ("logicalResource", "partyAccount", "relatedParty", "product"):
        if attr not in doc and attr in bucket["body"]:
            doc[attr] = bucket["body"][attr]


class TopupRules(ResourceHooks):
    """A top-up credits the bucket once per ``Idempotency-Key`` header: a repeated POST (a payment provider's retry)
    is refused with 409 naming the first top-up, and the balance moves once."""

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        key = ctx.request.headers.get("idempotency-key") if ctx.request is not None else None
        if key:
            conn = await repo.session_connection(ctx.session)
            await repo.lock_account(conn, account_id=account_id)  # duplicates wait here, then see the first
            first = await repo.topup_with_key(conn, key[:200])
            if first is not None:
                raise Conflict(f"top-up '{first}' already used Idempotency-Key '{key[:200]}'",
                               code="DUPLICATE_TOPUP")
            doc["idempotencyKey"] = key[:200]
        await service.topup(ctx, account_id, units, bucket_id=bucket["id"])
        _complete(doc, bucket)
        await _history(ctx, "topupBalance", doc, bucket)


class AdjustRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        await service.adjust(ctx, account_id, bucket["id"], units)
        _complete(doc, bucket)
        await _history(ctx, "adjustBalance", doc, bucket)


class TransferRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        _, bucket, units = await _bucket_units(ctx, doc)
        await service.transfer(ctx, bucket["id"], str(doc["receiverBucket"]["id"]), units)
        _complete(doc, bucket)
        await _history(ctx, "transferBalance", doc, bucket)


class ReserveRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        end = _moment((doc.get("validFor") or {}).get("endDateTime"))
        await service.reserve(ctx, account_id, bucket["id"], units, end)
        _complete(doc, bucket)
        await _history(ctx, "reserveBalance", doc, bucket)


ACTION_OPS = frozenset({"create", "list", "get"})
READ_OPS = frozenset({"list", "get"})

prepay_api = ChargingTmfApi(
    name=API, title="TMF654 Prepay Balance Management", spec_file=SPEC_FILE, permission="charging",
    resources=[
        TmfResource(path="bucket", type="Bucket", table=Bucket, create_definition="Bucket",
                    update_definition="Bucket", operations=READ_OPS, customer_operations=READ_OPS,
                    owner_paths=("relatedParty.id",), codec=BucketCodec(), audited=False,
                    searchable=BUCKET_SEARCH),
        TmfResource(path="topupBalance", type="TopupBalance", table=TopupBalance, hooks=TopupRules(),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=("relatedParty.id",)),
        TmfResource(path="adjustBalance", type="AdjustBalance", table=AdjustBalance, hooks=AdjustRules(),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=("relatedParty.id",)),
        TmfResource(path="transferBalance", type="TransferBalance", table=TransferBalance, hooks=TransferRules(),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=("relatedParty.id",)),
        TmfResource(path="reserveBalance", type="ReserveBalance", table=ReserveBalance, hooks=ReserveRules(),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=("relatedParty.id",)),
        TmfResource(path="balanceActionHistory", type="BalanceActionHistory", table=BalanceActionHistory,
                    create_definition="BalanceActionHistory", update_definition="BalanceActionHistory",
                    operations=READ_OPS, customer_operations=READ_OPS, owner_paths=("relatedParty.id",),
                    audited=False),
    ],
)

class UsageCodec(DocumentCodec):
    """A customer's usage is found through its accounts (``usageDate`` filters use the indexed ``usage_date``
    column: ``USAGE_SEARCH``)."""

    def owner_condition(self, party_id: str, table: Any) -> Any:
        return party_accounts(table, party_id)


usage_api = TmfApi(
    name=USAGE_API, title="TMF635 Usage Management", spec_file=USAGE_SPEC_FILE, permission="charging",
    resources=[TmfResource(path="usage", type="Usage", table=Usage, operations=READ_OPS, codec=UsageCodec(),
                           customer_operations=READ_OPS, owner_paths=("relatedParty.id",), audited=False,
                           searchable=USAGE_SEARCH)],
)


# --- accumulatedBalance: aggregated live per account and usage type ---------------------------------------------
def _accumulated_routes(router: APIRouter, services: dict[str, ResourceService]) -> None:
    async def list_accumulated(request: Request, principal: Principal = Depends(authenticate),
                               offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000),
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


router, SERVICES = build_router(prepay_api, extra=_accumulated_routes)
usage_router, USAGE_SERVICES = build_router(usage_api)

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


credit_control_router = APIRouter(prefix="/ocs/v1", tags=["Online charging (credit control)"])


@credit_control_router.post(
    "/creditControl", summary="Credit-control request (Diameter Gy/Ro CCR -> CCA)",
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
    answer = await service.credit_control(rt.db, principal.tenant_id, ccr, base_url(request))
    return Response(json_dumps(answer), media_type="application/json")


ROUTERS = [(prepay_api.title, router), (usage_api.title, usage_router),
           ("Online charging (credit control)", credit_control_router)]

__all__ = ["ROUTERS", "SERVICES", "USAGE_SERVICES", "prepay_api", "repo", "usage_api"]

"""TMF654 balance actions applied when they are created (top-up, adjustment, transfer, reservation), each recorded
in the balance action history; and how buckets and usage records are read (live values overlaid on the stored
document, a customer's rows found through its charging accounts, ``usageDate`` filters on the indexed column)."""
# No ``from __future__ import annotations``: the hooks are plain classes, but keep the module like the API's.

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import false, func, or_, select

from openbss.charging import repository as repo
from openbss.charging import service
from openbss.charging.errors import InvalidBalanceAction
from openbss.charging.events import EXTRA_EVENT_TYPES
from openbss.charging.models import Bucket, ChargingAccount, Usage
from openbss.charging.schemas import SPEC_FILE
from openbss.platform.db import utcnow
from openbss.platform.errors import Conflict
from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.resource import Context, DocumentCodec, ResourceHooks, ResourceService, TmfApi, TmfDocument
from openbss.platform.tmf.search import Searchable, column_filter, datetime_column
from openbss.platform.tmf.spec import format_datetime


class ChargingTmfApi(TmfApi):
    def event_types(self) -> set[str]:
        return super().event_types() | set(EXTRA_EVENT_TYPES)


#: TMF630 extensions of TMF654 (platform/tmf/extensions.py): what a bucket and a top-up carry beyond the spec
BUCKET_EXTENSION = Extension(
    name="OpenBSSBucket", base="Bucket", spec_file=SPEC_FILE,
    description="A bucket with the size it was granted with.",
    properties={"initialValue": {"$ref": "#/definitions/Quantity",
                                 "description": "The bucket's size when it was granted"},
                "initialValueName": {"type": "string", "description": "initialValue for display"}})
TOPUP_EXTENSION = Extension(
    name="OpenBSSTopupBalance", base="TopupBalance", spec_file=SPEC_FILE,
    description="A top-up made with an Idempotency-Key header: a repeated request with the key is refused.",
    properties={"idempotencyKey": {"type": "string", "maxLength": 200,
                                   "description": "The Idempotency-Key the top-up was made with"}})


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
            BUCKET_EXTENSION.mark(doc, ctx.base_url)
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
}, unsupported={"remainingValueName": "it is computed from the live balance when read",
                **{a: "it is computed when read (every bucket is the subtype OpenBSSBucket)"
                   for a in ("@type", "@baseType", "@schemaLocation")}})
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


async def _history(ctx: Context, history: ResourceService, action: str, doc: dict[str, Any],
                   bucket: dict[str, Any]) -> None:
    hid = str(uuid.uuid4())
    logical = bucket["body"].get("logicalResource") or [{"id": "unknown"}]
    kept = ("amount", "bucket", "usageType", "reason", "requestedDate", "confirmationDate", "channel", "requestor",
            "adjustType", "receiverBucket", "logicalResource", "partyAccount", "relatedParty", "product")
    entry: dict[str, Any] = {k: doc[k] for k in kept if k in doc}
    entry.update({"id": hid, "@type": "BalanceActionHistory", "status": doc.get("status", "completed"),
                  "description": action,
                  "receiverLogicalResource": doc.get("receiverLogicalResource") or logical[0]})
    await history.record(ctx, entry)


def _complete(doc: dict[str, Any], bucket: dict[str, Any]) -> None:
    now = _now()
    doc["status"] = "completed"
    doc.setdefault("requestedDate", now)
    doc["confirmationDate"] = now
    for attr in ("logicalResource", "partyAccount", "relatedParty", "product"):
        if attr not in doc and attr in bucket["body"]:
            doc[attr] = bucket["body"][attr]


class BalanceActionRules(ResourceHooks):
    """A balance action is applied when it is created, and recorded in the balance action history (``history``:
    the balanceActionHistory resource's service)."""

    def __init__(self, history: ResourceService) -> None:
        self.history = history


class TopupRules(BalanceActionRules):
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
            TOPUP_EXTENSION.mark(doc, ctx.base_url)
        await service.topup(ctx, account_id, units, bucket_id=bucket["id"])
        _complete(doc, bucket)
        await _history(ctx, self.history, "topupBalance", doc, bucket)


class AdjustRules(BalanceActionRules):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        await service.adjust(ctx, account_id, bucket["id"], units)
        _complete(doc, bucket)
        await _history(ctx, self.history, "adjustBalance", doc, bucket)


class TransferRules(BalanceActionRules):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        _, bucket, units = await _bucket_units(ctx, doc)
        await service.transfer(ctx, bucket["id"], str(doc["receiverBucket"]["id"]), units)
        _complete(doc, bucket)
        await _history(ctx, self.history, "transferBalance", doc, bucket)


class ReserveRules(BalanceActionRules):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        end = _moment((doc.get("validFor") or {}).get("endDateTime"))
        await service.reserve(ctx, account_id, bucket["id"], units, end)
        _complete(doc, bucket)
        await _history(ctx, self.history, "reserveBalance", doc, bucket)


class UsageCodec(DocumentCodec):
    """A customer's usage is found through its accounts (``usageDate`` filters use the indexed ``usage_date``
    column: ``USAGE_SEARCH``)."""

    def owner_condition(self, party_id: str, table: Any) -> Any:
        return party_accounts(table, party_id)



"""TMF654 balance actions applied when they are created (top-up, adjustment, transfer, reservation), each recorded
in the balance action history; and how buckets and usage records are read (live values overlaid on the stored
document, a customer's rows found through its charging accounts, ``usageDate`` filters on the indexed column).

**State model of a balance action** (TMF654 ``ActionStatusType``). An action is applied when it is created and is
then ``completed``. ``PATCH`` with ``"status": "cancelled"`` reverses it exactly, in the same transaction: a top-up
is debited back from its bucket, an adjustment is applied in the other direction, a transfer moves the amount back
from the receiving bucket, a reservation releases what it holds. A reversal that the balance cannot take (the
credit was used meanwhile, the bucket expired) is refused with 409 naming what is missing, and nothing moves. The
cancellation is recorded in the balance action history, audited, and announced with ``...CancelEvent``.
Other attributes of an applied action cannot change (409 ``ACTION_APPLIED``), except ``description`` and
``reason``. ``DELETE`` never loses the record of money moved: a completed top-up, adjustment or transfer is refused
(409: cancel it first); a cancelled one is deleted; deleting a reservation releases what it still holds (the
spec's "unreserve") and deletes it. TransferBalance_Update has no ``status`` in TMF654 v4: OpenBSS accepts it
there too, so that a transfer is cancelled like the other actions.

**Party account.** ``partyAccount`` (mandatory when creating a top-up or a reservation) names the account that
owns the bucket: the line's billing account, or, for a line without one, its charging account
(``@referredType: ChargingAccount``). Every bucket shows it, and an action naming another account is refused
(400), so that a mistyped bucket id cannot credit another customer's line."""
# No ``from __future__ import annotations``: the hooks are plain classes, but keep the module like the API's.

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, create_model
from sqlalchemy import false, func, or_, select

from openbss.charging import repository as repo
from openbss.charging import service
from openbss.charging.errors import ActionApplied, InsufficientBalance, InvalidBalanceAction, NotReversible
from openbss.charging.events import EXTRA_EVENT_TYPES
from openbss.charging.models import Bucket, ChargingAccount, Usage
from openbss.charging.schemas import SPEC_FILE
from openbss.platform.db import utcnow
from openbss.platform.errors import Conflict, InvalidStateTransition
from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.resource import (
    Context,
    DocumentCodec,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfResource,
    merge_patch,
)
from openbss.platform.tmf.search import Searchable, column_filter, datetime_column
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import to_decimal


class ChargingTmfApi(TmfApi):
    def event_types(self) -> set[str]:
        return super().event_types() | set(EXTRA_EVENT_TYPES)


#: TMF630 extensions of TMF654 (platform/tmf/extensions.py): what a bucket and a top-up carry beyond the spec
BUCKET_EXTENSION = Extension(
    name="OpenBSSBucket", base="Bucket", spec_file=SPEC_FILE,
    description="A bucket with the size it was granted with, and what it may pay for when it is restricted.",
    properties={"initialValue": {"$ref": "#/definitions/Quantity",
                                 "description": "The bucket's size when it was granted"},
                "initialValueName": {"type": "string", "description": "initialValue for display"},
                "usageRestriction": {
                    "type": "object", "additionalProperties": False,
                    "description": "A restricted bucket pays only for these usage types, destination zones and "
                                   "time bands (each absent: any)",
                    "properties": {"usageType": {"type": "array", "items": {"type": "string"}},
                                   "destinationZone": {"type": "array", "items": {"type": "string"}},
                                   "timeBand": {"type": "array", "items": {"type": "string"}}}}})
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
            doc["partyAccount"] = party_account_of(doc, row.account_id)
            out.append(doc)
        return out

    def sortable(self, path: str) -> bool:
        return path not in ("remainingValue.amount", "reservedValue.amount")

    def owner_condition(self, party_id: str, table: Any) -> Any:
        return party_accounts(table, party_id)


def party_account_of(body: dict[str, Any], account_id: str) -> dict[str, Any]:
    """The account owning a bucket (``body``: its stored document): the line's billing account, else its charging
    account — what a balance action names in ``partyAccount``."""
    return body.get("partyAccount") or {"id": account_id, "@referredType": "ChargingAccount"}


def _party_account_filter(flt: Any) -> Any:
    """``partyAccount.id`` of a bucket: its billing account, or the charging account of a line without one."""
    if flt.op != "eq":
        return None
    values = [str(v) for v in flt.values]
    return Bucket.account_id.in_(select(ChargingAccount.id).where(
        ChargingAccount.billing_account_id.in_(values)
        | (ChargingAccount.billing_account_id.is_(None) & ChargingAccount.id.in_(values))))


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
    "partyAccount.id": _party_account_filter,
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
    owner = party_account_of(bucket["body"], account_id)
    named = (doc.get("partyAccount") or {}).get("id")
    if named is not None and named != owner["id"]:
        raise InvalidBalanceAction(f"'partyAccount.id': bucket '{bucket['id']}' belongs to party account "
                                   f"'{owner['id']}' (the bucket's partyAccount), not '{named}'")
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
    doc.setdefault("partyAccount", party_account_of(bucket["body"], bucket["account_id"]))


def _amount_text(doc: dict[str, Any]) -> str:
    amount = doc.get("amount") or {}
    value = amount.get("amount")
    if value is not None and not isinstance(value, bool | dict | list):
        value = format(to_decimal(value).normalize(), "f")
    return f"{value} {amount.get('units')}"


class BalanceActionRules(ResourceHooks):
    """A balance action is applied when it is created, and recorded in the balance action history (``history``:
    the balanceActionHistory resource's service). ``cancel`` reverses it (see the module's state model)."""

    #: the history's name of the action (its resource path)
    action = ""
    #: the attribute naming the bucket a reversal debits
    debited = "bucket"

    def __init__(self, history: ResourceService) -> None:
        self.history = history

    async def reverse(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        """Undo the action's effect on the balances; returns the bucket row its history entry names."""
        raise NotReversible(f"a {self.action} cannot be reversed")

    async def cancel(self, ctx: Context, doc: dict[str, Any]) -> None:
        """Reverse the action and record the cancellation (``doc`` becomes cancelled)."""
        try:
            bucket = await self.reverse(ctx, doc)
        except InsufficientBalance as exc:
            ref = str((doc.get(self.debited) or {}).get("id"))
            _, row = await service.account_of_bucket(ctx, ref)
            currency = (row["body"].get("remainingValue") or {}).get("units")
            free = int(row["remaining"]) - int(row["reserved"]) - int(row["lower_limit"])
            raise NotReversible(f"{self.action} '{doc.get('id')}' ({_amount_text(doc)}) cannot be cancelled: "
                                f"bucket '{ref}' has {service.remaining_name(max(free, 0), row['unit'], currency)} "
                                f"available, less than the amount to take back (it was used meanwhile)") from exc
        except InvalidBalanceAction as exc:
            raise NotReversible(f"{self.action} '{doc.get('id')}' ({_amount_text(doc)}) cannot be cancelled: "
                                f"{exc.message}") from exc
        doc["status"] = "cancelled"
        entry = {**doc, "requestedDate": _now(), "confirmationDate": _now()}
        await _history(ctx, self.history, f"{self.action} cancelled", entry, bucket)


class TopupRules(BalanceActionRules):
    """A top-up credits the bucket once per ``Idempotency-Key`` header: a repeated POST (a payment provider's retry)
    is refused with 409 naming the first top-up, and the balance moves once. Cancelled, it is debited back."""

    action = "topupBalance"

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
        await service.topup(ctx, account_id, units, bucket_id=bucket["id"], funding="external",
                            reason=f"top-up {doc.get('id')}")
        _complete(doc, bucket)
        await _history(ctx, self.history, self.action, doc, bucket)

    async def reverse(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        await service.adjust(ctx, account_id, bucket["id"], -units, funding="external",
                             reason=f"top-up {doc.get('id')} cancelled")
        return bucket


class AdjustRules(BalanceActionRules):
    action = "adjustBalance"

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        await service.adjust(ctx, account_id, bucket["id"], units)
        _complete(doc, bucket)
        await _history(ctx, self.history, self.action, doc, bucket)

    async def reverse(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        await service.adjust(ctx, account_id, bucket["id"], -units)
        return bucket


class TransferRules(BalanceActionRules):
    action = "transferBalance"
    debited = "receiverBucket"

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        _, bucket, units = await _bucket_units(ctx, doc)
        await service.transfer(ctx, bucket["id"], str(doc["receiverBucket"]["id"]), units)
        _complete(doc, bucket)
        await _history(ctx, self.history, self.action, doc, bucket)

    async def reverse(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        _, bucket, units = await _bucket_units(ctx, doc)
        await service.transfer(ctx, str(doc["receiverBucket"]["id"]), bucket["id"], units)
        return bucket


class ReserveRules(BalanceActionRules):
    """A reservation holds the amount until its ``validFor.endDateTime`` (default: the account's quota validity,
    then shown in ``validFor``); cancelled or deleted before, it releases what it holds."""

    action = "reserveBalance"

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id, bucket, units = await _bucket_units(ctx, doc)
        end = _moment((doc.get("validFor") or {}).get("endDateTime"))
        until = await service.reserve(ctx, account_id, bucket["id"], units, end, key=doc["id"])
        doc["validFor"] = {**(doc.get("validFor") or {}), "endDateTime": format_datetime(until)}
        _complete(doc, bucket)
        await _history(ctx, self.history, self.action, doc, bucket)

    async def reverse(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        account_id, bucket = await service.account_of_bucket(ctx, str((doc.get("bucket") or {}).get("id")))
        if await service.release_reservation(ctx, account_id, str(doc["id"])) is None:
            end = (doc.get("validFor") or {}).get("endDateTime")
            raise NotReversible(f"reserveBalance '{doc['id']}' holds nothing any more: it expired"
                                f"{f' at {end}' if end else ''} and its amount was released then")
        return bucket


#: what an applied action lets a PATCH change (the rest is what moved the money)
EDITABLE = frozenset({"description", "reason", "status"})


class BalanceActionService(ResourceService):
    """The kit's service of a balance action, with the action's state model: creation applies it (the id is
    assigned first, so that a reservation carries it), ``PATCH`` with status ``cancelled`` reverses it, ``DELETE``
    keeps the record of money moved (see the module's documentation)."""

    def __init__(self, api: TmfApi, resource: TmfResource) -> None:
        super().__init__(api, resource)
        assert isinstance(resource.hooks, BalanceActionRules), f"{resource.type} needs BalanceActionRules"
        self.rules: BalanceActionRules = resource.hooks
        base = self.update_model
        if "status" not in base.model_fields:  # TMF654 v4's TransferBalance_Update: cancelled like the others
            status: dict[str, Any] = {"status": (Literal["created", "failed", "cancelled", "completed"] | None,
                                                 Field(None, alias="status"))}
            self.update_model = create_model(base.__name__, __base__=base, **status)
            self.update_model.__doc__ = base.__doc__

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        r = self.resource
        doc = {**doc, "@type": doc.get("@type") or r.type, "id": r.id_factory()}
        await self.rules.before_create(ctx, doc)
        return await self.record(ctx, doc)

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        cancelled = False

        async def apply(doc: dict[str, Any]) -> None:
            nonlocal cancelled
            merged = merge_patch(doc, changes)
            moved = sorted(k for k in set(doc) | set(merged) if k not in EDITABLE and doc.get(k) != merged.get(k))
            if moved:
                raise ActionApplied(f"{self.resource.type} '{resource_id}' was applied: "
                                    f"{', '.join(repr(k) for k in moved)} cannot change (only description, reason "
                                    f"and status: cancelled); cancel it and create another")
            old, new = doc.get("status"), merged.get("status")
            if old != new:
                if (old, new) != ("completed", "cancelled"):
                    raise InvalidStateTransition(f"{self.resource.type} cannot go from '{old}' to '{new}' (an "
                                                 f"applied action can only be cancelled)")
                await self.rules.cancel(ctx, doc)
                cancelled = True
            for k in ("description", "reason"):
                if merged.get(k) is None:
                    doc.pop(k, None)
                else:
                    doc[k] = merged[k]

        rendered = await self.change(ctx, resource_id, apply)
        if cancelled:
            await self._emit(ctx, f"{self.resource.type}CancelEvent", rendered)
        return rendered

    async def delete(self, ctx: Context, resource_id: str) -> None:
        current = await self.get(ctx, resource_id)
        if current.get("status") == "completed":
            if isinstance(self.rules, ReserveRules):
                try:  # unreserve: what it still holds is released, the cancellation recorded
                    await self.patch(ctx, resource_id, {"status": "cancelled"})
                except NotReversible:
                    pass  # it expired: it holds nothing (the attempt released what had expired)
            else:
                raise ActionApplied(
                    f"{self.resource.type} '{resource_id}' was applied ({_amount_text(current)}): deleting it would "
                    f"lose the record of money moved; cancel it first (PATCH status cancelled, which reverses it)")
        await super().delete(ctx, resource_id)


class UsageCodec(DocumentCodec):
    """A customer's usage is found through its accounts (``usageDate`` filters use the indexed ``usage_date``
    column: ``USAGE_SEARCH``)."""

    def owner_condition(self, party_id: str, table: Any) -> Any:
        return party_accounts(table, party_id)



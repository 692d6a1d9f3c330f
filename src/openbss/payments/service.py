"""Payments: payment methods (TMF670), payments and refunds (TMF676), their allocation to bills, and the open
balance of a billing account.

**A payment** is a state machine, every transition recorded (``payments_transition``)::

    initiated ──► pending ──► succeeded
        │           │  └────► failed
        │           └───────► unknown ──► pending | succeeded | failed  (the janitor asks the gateway)
        └──► succeeded | failed | unknown

A create is recorded ``initiated`` and committed *before* the gateway is called, with our payment id as the
gateway's idempotency key; the gateway's answer is recorded in a second transaction (``pending``, ``succeeded``,
``failed``; ``unknown`` when the call timed out). A process killed in between leaves an ``initiated`` payment that
the janitor resolves by asking the gateway about that key — and charging again, with the same key, when the gateway
never saw it. Webhooks move the state forward only: one delivered twice is recorded once (``payments_webhook_event``)
and one arriving after a later state changes nothing. A bill has at most one payment in flight (a partial unique
index). ``Idempotency-Key`` on a create returns the first request's resource.

Cash, vouchers and bank transfers are *recorded* receipts: they succeed at once. Cards, direct debits and wallets go
through the gateway.

**Allocation.** A succeeded payment first becomes the account's credit; the credit then settles the bills the
payment names, then the account's oldest open bills; what is left stays credit and settles the next bill when it is
issued (billing's bill-finalized event). Per account, allocation is serialized by a transaction-scoped advisory lock.
Bills move to ``partiallyPaid`` or ``settled`` (billing's own state).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from schwifty import IBAN
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.billing.service import Balances
from openbss.payments import ledger
from openbss.payments.errors import (
    IdempotencyMismatch,
    InvalidPayment,
    MethodUnusable,
    PaymentInFlight,
    RefundRefused,
    WriteOffRefused,
)
from openbss.payments.gateway import Gateway, GatewayResult, GatewayTimeout, Settlement
from openbss.payments.models import (
    IN_FLIGHT,
    Allocation,
    Dispute,
    IdempotencyKey,
    LedgerDeferral,
    LedgerRevenue,
    Payment,
    PaymentMethod,
    Receivable,
    Refund,
    Topup,
    Transition,
    WebhookEvent,
    WriteOff,
)
from openbss.payments.reports import window as reports_window
from openbss.platform.auth import Principal
from openbss.platform.db import Database, insert_rows, utcnow
from openbss.platform.errors import DomainError, NotFound
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, merge_patch, system_context
from openbss.platform.tmf.spec import Spec, format_datetime
from openbss.pricing.money import MAX_AMOUNT, MINOR_UNITS, is_currency, round_money, to_decimal

log = logging.getLogger(__name__)

#: payment states and the moves allowed between them
TRANSITIONS: dict[str, frozenset[str]] = {
    "initiated": frozenset({"pending", "succeeded", "failed", "unknown"}),
    "pending": frozenset({"succeeded", "failed", "unknown"}),
    "unknown": frozenset({"pending", "succeeded", "failed"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
}
#: the moves only a dispute makes (a chargeback, a dispute won): never a charge's late webhook
DISPUTE_TRANSITIONS: dict[str, frozenset[str]] = {
    "succeeded": frozenset({"chargeback"}),
    "chargeback": frozenset({"succeeded"}),
}
#: TMF670 ``@type`` of the methods the gateway charges; the others are receipts recorded as they are
GATEWAY_KINDS = frozenset({"tokenizedCard", "directDebit", "digitalWallet"})
METHOD_TYPES = ("tokenizedCard", "directDebit", "bankAccountTransfer", "cash", "voucher", "digitalWallet")
ISSUED = ("validated", "sent", "partiallyPaid", "settled")
PAYMENT_TYPE = "OpenBSSPayment"
REFUND_TYPE = "OpenBSSRefund"
#: the allocations of a credit note's value are recorded under this prefix and the note's id (not money received)
CREDIT_NOTE = "creditNote:"
#: the allocations of a write-off are recorded under this prefix and the write-off's id
WRITE_OFF = "writeOff:"
#: refund states whose outcome is not known yet (their amount is held)
REFUND_OPEN = ("pending", "unknown")


#: the namespace of refund ids derived from a tenant's Idempotency-Key
_REFUND_IDS = uuid.UUID("6c1f0e2a-4b7d-5e93-a8c4-2d9f61b0e7a5")

class BillingAccounts(Protocol):
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]: ...


class Bills(Protocol):
    """What payments asks billing about bills (``billing.service.BillingService``)."""

    async def get_bill(self, ctx: Context, bill_id: str) -> dict[str, Any]: ...

    async def record_payment_state(self, ctx: Context, bill_id: str, state: str) -> None: ...


async def record_payment_states(bills: Bills, ctx: Context, states: dict[str, str]) -> None:
    """Tell billing the paid states of many bills: in one batch where billing has one
    (``record_payment_states``), else bill by bill."""
    if not states:
        return
    batch = getattr(bills, "record_payment_states", None)
    if batch is not None:
        await batch(ctx, states)
        return
    for bill_id, state in states.items():
        await bills.record_payment_state(ctx, bill_id, state)


@dataclass
class AllocationRequest:
    """A receipt to allocate (``PaymentService.allocate_many``): what ``allocate`` takes."""

    account_id: str
    payment_id: str | None
    amount: Decimal
    named: Sequence[str] = ()
    source: str = "payment"


class Customers(Protocol):
    """What payments asks about customers (``customer.service.CustomerService``): their segment, for reports."""

    async def find_customer(self, ctx: Context, customer_id: str) -> dict[str, Any] | None: ...


class PrepaidBalances(Protocol):
    """What payments asks online charging about prepaid balances (``charging.service.ChargingService``)."""

    async def get_account(self, ctx: Context, account_id: str | None = None) -> dict[str, Any]: ...

    async def topup(self, ctx: Context, account_id: str, amount: int, *, reason: str | None = None,
                    funding: str = "external") -> dict[str, Any]: ...

    async def prepaid_usage_totals(self, ctx: Context, since: datetime, before: datetime) -> dict[str, Decimal]: ...

    async def prepaid_credit_totals(self, ctx: Context, since: datetime, before: datetime,
                                    ) -> dict[tuple[str, str], Decimal]: ...

    async def take_back(self, ctx: Context, account_id: str, amount: int, *, reason: str | None = None,
                        ) -> dict[str, Any]:
        """Debit the main money bucket by what the gateway took back, below zero if it was spent (a debt)."""
        ...


def _money(value: Decimal, unit: str) -> dict[str, Any]:
    return {"unit": unit, "value": value}


def _parse_instant(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPayment(f"'{what}': '{value}' is not a date-time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _amount(money: Any, what: str) -> tuple[Decimal, str]:
    if not isinstance(money, dict):
        raise InvalidPayment(f"'{what}' is mandatory: {{\"unit\": <currency>, \"value\": <amount>}}")
    unit = money.get("unit")
    if not is_currency(unit):
        raise InvalidPayment(f"'{what}.unit': '{unit}' is not an ISO 4217 currency")
    try:
        value = to_decimal(money.get("value"))
    except ValueError as exc:
        raise InvalidPayment(f"'{what}.value': {exc}") from exc
    if value <= 0:
        raise InvalidPayment(f"'{what}.value' must be positive, got {value}")
    if value >= MAX_AMOUNT:
        raise InvalidPayment(f"'{what}.value' {value} is too large: at most {MAX_AMOUNT - 1} {unit}")
    if round_money(value, str(unit)) != value:
        raise InvalidPayment(f"'{what}.value' {value} has more decimals than {unit} allows")
    return value, str(unit)


def _mask_number(value: Any) -> str:
    text = str(value or "").replace(" ", "")
    if len(text) <= 4:
        return "••••"
    return f"{text[:4]} •••• {text[-4:]}" if text[:2].isalpha() else f"•••• {text[-4:]}"


def mask_method(kind: str, body: dict[str, Any]) -> str:
    """What an agent may see of a payment method (never its token or full account number)."""
    if kind == "tokenizedCard":
        expiry = str(body.get("expirationDate") or "")[:7]
        return " ".join(x for x in (str(body.get("brand") or "Card"), f"•••• {body.get('lastFourDigits', '')}",
                                    f"exp. {expiry}" if expiry else "") if x)
    if kind in ("directDebit", "bankAccountTransfer"):
        return f"IBAN {_mask_number(body.get('accountNumber'))}" if body.get("accountNumber") else kind
    if kind == "digitalWallet":
        return str(body.get("service") or body.get("name") or "wallet")
    if kind == "voucher":
        return f"voucher {_mask_number(body.get('code'))}" if body.get("code") else "voucher"
    return str(body.get("name") or kind)


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _lock_key(tenant: str, account_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"payments|{tenant}|{account_id}".encode()).digest()[:8], "big",
                          signed=True)


# --- payment methods (TMF670) ---------------------------------------------------------------------------------
class MethodRules(ResourceHooks):
    """A payment method: one of the TMF670 subtypes, for one billing account. A card is a gateway token with brand,
    last four digits and expiry — a card number is refused; a direct debit carries a SEPA mandate (IBAN checked,
    mandate reference, signature date)."""

    transitions: ClassVar[dict[str, set[str]] | None] = {
        "active": {"revoked", "expired"}, "expired": {"revoked"}, "revoked": set()}

    def __init__(self, spec: Spec, accounts: BillingAccounts) -> None:
        self.spec = spec
        self.accounts = accounts

    def validate(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The document of a payment method of subtype ``kind`` (TMF670's definition of the subtype)."""
        model = self.spec.model(kind[:1].upper() + kind[1:])
        try:
            doc: dict[str, Any] = model.model_validate(payload).to_doc()  # type: ignore[attr-defined]
        except ValidationError as exc:
            raise InvalidPayment(validation_message(exc)) from exc
        return doc

    async def prepare(self, ctx: Context, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The document to store and its columns, from a create request (validated against the subtype)."""
        kind = payload.get("@type")
        if kind in ("bankCard", "BankCard") or "cardNumber" in payload or "cvv" in payload:
            raise InvalidPayment("card numbers and security codes are never accepted: tokenize the card at the "
                                 "gateway and send a 'tokenizedCard' with its token, brand, last four digits and "
                                 "expiry")
        if kind not in METHOD_TYPES:
            raise InvalidPayment(f"'@type' must be one of {', '.join(METHOD_TYPES)} (got {kind!r})")
        doc = self.validate(kind, payload)
        for attr in ("id", "href"):
            doc.pop(attr, None)
        accounts = doc.get("account") or []
        if len(accounts) != 1:
            raise InvalidPayment("'account' must name exactly one billing account")
        account = await self.accounts.get_billing_account(ctx, accounts[0]["id"])
        ends: list[datetime] = []
        if (doc.get("validFor") or {}).get("endDateTime"):
            ends.append(_parse_instant(doc["validFor"]["endDateTime"], "validFor.endDateTime"))
        if kind == "tokenizedCard":
            if not doc.get("token"):
                raise InvalidPayment("a tokenizedCard needs the gateway's 'token'")
            last4 = str(doc.get("lastFourDigits", ""))
            if len(last4) != 4 or not last4.isdigit():
                raise InvalidPayment(f"'lastFourDigits' must be 4 digits (got {last4!r})")
            ends.append(_parse_instant(doc["expirationDate"], "expirationDate"))
        elif kind == "directDebit":
            try:
                iban = IBAN(str(doc["accountNumber"]))
            except ValueError as exc:
                raise InvalidPayment(f"'accountNumber' is not a valid IBAN: {exc}") from exc
            doc["accountNumber"] = iban.compact
            doc["accountNumberType"] = "IBAN"
            if not doc.get("BIC") and iban.bic is not None:
                doc["BIC"] = str(iban.bic)
            if not doc.get("mandateId"):
                raise InvalidPayment("a directDebit needs its SEPA mandate reference ('mandateId')")
            if not doc.get("signatureDate"):
                raise InvalidPayment("a directDebit needs the mandate's 'signatureDate'")
            _parse_instant(doc["signatureDate"], "signatureDate")
            if doc.get("cancellationDate"):
                ends.append(_parse_instant(doc["cancellationDate"], "cancellationDate"))
        elif kind == "bankAccountTransfer" and doc.get("accountNumberType", "IBAN") == "IBAN":
            try:
                doc["accountNumber"] = IBAN(str(doc["accountNumber"])).compact
            except ValueError as exc:
                raise InvalidPayment(f"'accountNumber' is not a valid IBAN: {exc}") from exc
        elif kind == "voucher":
            ends.append(_parse_instant(doc["expirationDate"], "expirationDate"))
        status = doc.get("status") or "active"
        if status not in ("active", "revoked"):
            raise InvalidPayment(f"'status' of a new payment method is 'active' (or 'revoked'), not {status!r}")
        now = utcnow()
        valid_until = min(ends) if ends else None
        if valid_until is not None and valid_until <= now:
            raise MethodUnusable(f"the {kind} expired on {format_datetime(valid_until)}")
        doc["status"] = status
        doc["statusDate"] = format_datetime(now)
        doc["account"] = [{"id": account["id"], "name": account.get("name"), "@referredType": "BillingAccount",
                           "href": account.get("href")}]
        doc["account"] = [{k: v for k, v in doc["account"][0].items() if v is not None}]
        columns = {"billing_account_id": account["id"], "kind": kind, "status": status,
                   "valid_until": valid_until, "is_default": bool(doc.get("isPreferred"))}
        return doc, columns

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        fixed = {"@type", "account", "token", "lastFourDigits", "accountNumber", "mandateId", "expirationDate"}
        touched = sorted(k for k in fixed & set(changes) if changes[k] != current.get(k))
        if touched:
            raise InvalidPayment(f"{', '.join(touched)} of a payment method cannot change: create a new method")
        if current.get("status") == "revoked" and merged.get("status") != "revoked":
            raise MethodUnusable("a revoked payment method cannot be used again")
        if merged.get("status") not in ("active", "revoked", "expired"):
            raise InvalidPayment("'status' is one of active, revoked, expired")


class MethodResourceService(ResourceService):
    """TMF670 PaymentMethod: creates by subtype (``MethodRules.prepare``); the default per billing account
    (``isPreferred``) and the status follow patches in their columns."""

    rules: MethodRules | None = None

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        assert self.rules is not None
        stored, columns = await self.rules.prepare(ctx, doc)
        if columns["is_default"]:
            await self._clear_default(ctx, columns["billing_account_id"])
        return await self.record(ctx, stored, columns=columns)

    async def _clear_default(self, ctx: Context, account_id: str) -> None:
        rows = (await ctx.session.execute(select(PaymentMethod.id).where(
            PaymentMethod.billing_account_id == account_id, PaymentMethod.is_default))).scalars().all()
        for method_id in rows:
            def unset(doc: dict[str, Any]) -> None:
                doc["isPreferred"] = False

            await self.change(ctx, method_id, unset, action="default")
            await ctx.session.execute(update(PaymentMethod).where(PaymentMethod.id == method_id)
                                      .values(is_default=False))

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        assert self.rules is not None
        rules = self.rules
        row = await ctx.session.get(PaymentMethod, resource_id)
        if row is None:
            raise NotFound(f"PaymentMethod '{resource_id}' not found", code="NOT_FOUND")
        if changes.get("isPreferred") and not row.is_default and row.billing_account_id:
            await self._clear_default(ctx, row.billing_account_id)

        async def apply(doc: dict[str, Any]) -> None:
            current = dict(doc)
            merged = merge_patch(current, changes)
            candidate = {k: v for k, v in merged.items() if k not in ("id", "href")}
            rules.validate(str(current.get("@type")), candidate)
            await rules.before_update(ctx, current, changes, merged)
            if merged.get("status") != current.get("status"):
                self.check_transition(current.get("status"), merged.get("status"))
                merged["statusDate"] = format_datetime(utcnow())
            doc.clear()
            doc.update(merged)

        out = await self.change(ctx, resource_id, apply)
        await ctx.session.execute(update(PaymentMethod).where(PaymentMethod.id == resource_id).values(
            status=out.get("status"), is_default=bool(out.get("isPreferred"))))
        return out


async def usable_method(ctx: Context, method_id: str, account_id: str | None = None) -> PaymentMethod:
    row = (await ctx.session.execute(select(PaymentMethod).where(PaymentMethod.id == method_id))).scalars().first()
    if row is None:
        raise InvalidPayment(f"payment method '{method_id}' does not exist")
    if account_id is not None and row.billing_account_id != account_id:
        raise InvalidPayment(f"payment method '{method_id}' belongs to another billing account")
    if row.status != "active":
        raise MethodUnusable(f"payment method '{method_id}' is {row.status}")
    if row.valid_until is not None and row.valid_until <= utcnow():
        raise MethodUnusable(f"payment method '{method_id}' expired on {format_datetime(row.valid_until)}")
    return row


async def default_method(ctx: Context, account_id: str) -> str | None:
    return (await ctx.session.execute(select(PaymentMethod.id).where(
        PaymentMethod.billing_account_id == account_id, PaymentMethod.is_default))).scalar()


# --- the open balance ------------------------------------------------------------------------------------------
class AccountBalances(Balances):
    """What a billing account owes: what was billed (issued bills, from billing) minus what was received (payments
    less refunds, from payments' allocations). Negative: a credit. What the account domain's guards and billing's
    previous balance ask (``account.service.OpenBalances``)."""

    async def open_balance(self, ctx: Context, billing_account_id: str) -> Decimal:
        billed = await self.billed_total(ctx, billing_account_id)  # credit notes included (negative)
        received = await received_total(ctx.session, billing_account_id)
        return billed - received

    async def open_balances(self, ctx: Context, billing_account_ids: Sequence[str]) -> dict[str, Decimal]:
        """``open_balance`` of many accounts: two queries (what a bill run's issuing asks)."""
        billed = await self.billed_totals(ctx, billing_account_ids)
        rows = await ctx.session.execute(
            select(Allocation.billing_account_id, func.coalesce(func.sum(Allocation.amount), 0)).where(
                Allocation.billing_account_id.in_(list(billing_account_ids)),
                or_(Allocation.payment_id.not_like(f"{CREDIT_NOTE}%"), Allocation.source == "refund"))
            .group_by(Allocation.billing_account_id))  # what ``received_total`` counts (credit notes' payouts too)
        received = {r[0]: Decimal(r[1] or 0) for r in rows}
        return {a: billed[a] - received.get(a, Decimal(0)) for a in billing_account_ids}


async def received_total(session: AsyncSession, account_id: str) -> Decimal:
    """What the account paid in, net: payments less their refunds, less the credit of credit notes paid out (a
    credit note's value is billed — negative —, what of it was paid out is money the account took back)."""
    value = await session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
        Allocation.billing_account_id == account_id,
        or_(Allocation.payment_id.not_like(f"{CREDIT_NOTE}%"), Allocation.source == "refund")))
    return Decimal(value or 0)


# --- payments and refunds (TMF676) ----------------------------------------------------------------------------
@dataclass
class Outcome:
    resource: dict[str, Any]
    replayed: bool = False


def _dispute_doc(row: Dispute, bills: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.dispute_id, "amount": _money(row.amount, row.currency),
                           "fee": _money(row.fee, row.currency), "status": row.status}
    if row.reason:
        out["reason"] = row.reason
    if bills:
        out["bill"] = [{"id": b, "@referredType": "CustomerBill"} for b in bills]
    return out


def _put_dispute(doc: dict[str, Any], dispute: dict[str, Any]) -> None:
    """The payment's ``dispute`` list (extension attribute) with this dispute as it stands now."""
    kept = [d for d in doc.get("dispute") or [] if d.get("id") != dispute["id"]]
    previous: dict[str, Any] = next((d for d in doc.get("dispute") or [] if d.get("id") == dispute["id"]), {})
    doc["dispute"] = [*kept, {**previous, **dispute}]


@dataclass(frozen=True)
class RefundCall:
    """A refund to send to the gateway: our refund id (its idempotency key), the payment's gateway reference."""

    refund_id: str
    reference: str
    amount: Decimal
    currency: str


async def _reserved(session: AsyncSession, account_id: str) -> dict[str, Decimal]:
    """Per payment of the account, the amount held by its refunds in flight (pending or unknown): not credit any
    more for allocations or other refunds."""
    rows = await session.execute(select(Refund.payment_id, func.sum(Refund.amount)).where(
        Refund.billing_account_id == account_id, Refund.state.in_(REFUND_OPEN)).group_by(Refund.payment_id))
    return {str(p): Decimal(a) for p, a in rows.all()}


class _Replay(Exception):
    def __init__(self, resource_id: str) -> None:
        self.resource_id = resource_id


class PaymentService:
    def __init__(self, db: Database, base_url: str, gateway: Gateway, bills: Bills, accounts: BillingAccounts,
                 payments: ResourceService, refunds: ResourceService, prepaid: PrepaidBalances | None = None,
                 other_revenue: str = "4900", customers: Customers | None = None) -> None:
        self.prepaid = prepaid
        #: customers' segments for the aging by segment (``unknown`` without)
        self.customers = customers
        #: the revenue account of billed lines without a product (late fees)
        self.other_revenue = other_revenue
        self.db = db
        self.base_url = base_url.rstrip("/")
        self.gateway = gateway
        self.bills = bills
        self.accounts = accounts
        self.payments = payments
        self.refunds = refunds

    # --- creating a payment -----------------------------------------------------------------------------------
    async def pay(self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None,
                  *, base_url: str | None = None) -> Outcome:
        """Take a payment (TMF676 ``Payment_Create``): record it, charge the gateway, record its answer."""
        base = (base_url or self.base_url).rstrip("/")
        tenant = principal.tenant_id
        try:
            async with self.db.transaction(tenant) as session:
                ctx = Context(principal=principal, session=session, base_url=base)
                payment_id = str(uuid.uuid4())
                if idempotency_key is not None:  # claimed for the payment made now (or rolled back with it)
                    await self._claim_key(ctx, "payment", idempotency_key, body, payment_id)
                rendered, row = await self._initiate(ctx, body, payment_id)
                if row.gateway is None:  # a receipt recorded as it is
                    rendered = await self._move(ctx, row.id, "succeeded", "api", "receipt recorded")
                    return Outcome(rendered)
                payment_id, amount, currency = row.id, row.amount, row.currency
                token = await self._token(ctx, row.method_id)
                zones = dict(session.info.get("payments.zones") or {})
        except _Replay as replay:
            async with self.db.transaction(tenant) as session:
                ctx = Context(principal=principal, session=session, base_url=base)
                return Outcome(await self.payments.get(ctx, replay.resource_id), replayed=True)
        result = await self._charge(tenant, payment_id, amount, currency, token)
        async with self.db.transaction(tenant) as session:
            session.info["payments.zones"] = zones  # the account read a moment ago, by this request
            ctx = Context(principal=principal, session=session, base_url=base)
            return Outcome(await self._record_result(ctx, payment_id, result, "gateway"))

    async def _claim_key(self, ctx: Context, scope: str, key: str, body: dict[str, Any],
                         resource_id: str = "") -> None:
        if not 1 <= len(key) <= 255:
            raise InvalidPayment("'Idempotency-Key' must be 1 to 255 characters")
        digest = request_hash(body)
        claimed = (await ctx.session.execute(pg_insert(IdempotencyKey).values(
            scope=scope, key=key, request_hash=digest, resource_id=resource_id).on_conflict_do_nothing()
            .returning(IdempotencyKey.key))).scalar()
        if claimed is not None:
            return
        # the key was used: by a committed request (a concurrent one waited for it on the insert above)
        row = (await ctx.session.execute(select(IdempotencyKey).where(
            IdempotencyKey.scope == scope, IdempotencyKey.key == key))).scalars().one()
        if row.request_hash != digest:
            raise IdempotencyMismatch(f"Idempotency-Key '{key}' was used for a different {scope} request")
        raise _Replay(row.resource_id)

    async def _initiate(self, ctx: Context, body: dict[str, Any], payment_id: str) -> tuple[dict[str, Any], Payment]:
        account_id = (body.get("account") or {}).get("id")
        if not account_id:
            raise InvalidPayment("'account.id' is mandatory: the billing account paying")
        account = await self.accounts.get_billing_account(ctx, account_id)
        self._remember_zone(ctx, account)
        amount, currency = _amount(body.get("totalAmount"), "totalAmount")
        if account.get("currency") and account["currency"] != currency:
            raise InvalidPayment(f"'totalAmount.unit' {currency} is not the account's currency {account['currency']}")
        method_id = (body.get("paymentMethod") or {}).get("id") or await default_method(ctx, account_id)
        if not method_id:
            raise InvalidPayment("'paymentMethod.id' is mandatory (the account has no default payment method)")
        method = await usable_method(ctx, method_id, account_id)
        topup = await self._topup_target(ctx, body.get("prepaidTopUp"), account_id, currency)
        if topup is not None and body.get("paymentItem"):
            raise InvalidPayment("a prepaid top-up ('prepaidTopUp') pays no bills: leave 'paymentItem' out")
        named: list[str] = []
        for i, item in enumerate(body.get("paymentItem") or []):
            ref = item.get("item") or {}
            if not ref.get("id"):
                raise InvalidPayment(f"'paymentItem[{i}].item.id' is mandatory: the bill paid")
            receivable = await self.receivable(ctx, str(ref["id"]))
            if receivable.billing_account_id != account_id:
                raise InvalidPayment(f"bill '{ref['id']}' is not a bill of billing account '{account_id}'")
            named.append(receivable.bill_id)
        now = format_datetime(utcnow())
        doc: dict[str, Any] = {
            **{k: v for k, v in body.items() if k in ("correlatorId", "description", "name", "channel", "payer",
                                                     "authorizationCode")},
            "id": payment_id, "@type": PAYMENT_TYPE, "@baseType": "Payment",
            "@schemaLocation": f"{ctx.base_url}/payments/v1/schema/{PAYMENT_TYPE}.json",
            "account": {"id": account_id, "name": account.get("name"), "@referredType": "BillingAccount"},
            "paymentMethod": {"id": method.id, "name": (method.body or {}).get("name"), "@referredType": method.kind},
            "totalAmount": _money(amount, currency), "amount": _money(amount, currency),
            "paymentItem": [{"item": {"id": b, "@referredType": "CustomerBill"}} for b in named],
            "paymentDate": now, "status": "initiated", "statusDate": now,
        }
        if topup is not None:
            doc["prepaidTopUp"] = topup
        doc["account"] = {k: v for k, v in doc["account"].items() if v is not None}
        gateway = self.gateway.name if method.kind in GATEWAY_KINDS else None
        columns = {"billing_account_id": account_id, "method_id": method.id, "bill_id": named[0] if named else None,
                   "state": "initiated", "amount": amount, "currency": currency, "gateway": gateway}
        if named:  # a bill has at most one payment in flight (a unique index): a clear refusal when it has one
            try:
                async with ctx.session.begin_nested():
                    rendered = await self.payments.record(ctx, doc, columns=columns)
            except IntegrityError as exc:
                if "uq_payments_payment_in_flight" in str(exc):
                    raise PaymentInFlight(f"bill '{named[0]}' already has a payment in flight: wait for its outcome"
                                          ) from exc
                raise
        else:
            rendered = await self.payments.record(ctx, doc, columns=columns)
        await self._transition(ctx.session, payment_id, None, "initiated", "api", None)
        return rendered, Payment(id=payment_id, **columns)  # what was written (not read back)

    async def _bill_lines(self, ctx: Context, bill_id: str) -> list[dict[str, Any]]:
        """The bill's lines (TMF678 AppliedCustomerBillingRate) when billing tells them; none otherwise (the
        bill's revenue is then posted as one amount)."""
        reader = getattr(self.bills, "bill_lines", None)
        return list(await reader(ctx, bill_id)) if reader is not None else []

    async def _topup_target(self, ctx: Context, target: Any, account_id: str, currency: str,
                            ) -> dict[str, Any] | None:
        """The prepaid line (its charging account) a top-up payment credits, checked; None: not a top-up."""
        if target is None:
            return None
        if not isinstance(target, dict) or not target.get("id"):
            raise InvalidPayment("'prepaidTopUp.id' is mandatory: the charging account of the prepaid line credited")
        if self.prepaid is None:
            raise InvalidPayment("prepaid top-ups are not available: online charging is not configured")
        try:
            charging = await self.prepaid.get_account(ctx, str(target["id"]))
        except DomainError as exc:
            if exc.status != 404:
                raise
            raise InvalidPayment(f"'prepaidTopUp.id': charging account '{target['id']}' does not exist") from exc
        if charging.get("payment_type") != "prepaid":
            raise InvalidPayment(f"'prepaidTopUp.id': charging account '{target['id']}' is not prepaid")
        if charging.get("status") == "closed":
            raise InvalidPayment(f"'prepaidTopUp.id': charging account '{target['id']}' is closed (its line was "
                                 "terminated)")
        if charging.get("currency") != currency:
            raise InvalidPayment(f"'totalAmount.unit' {currency} is not the prepaid balance's currency "
                                 f"{charging.get('currency')}")
        owner = charging.get("billing_account_id")
        if owner and owner != account_id:
            raise InvalidPayment(f"'prepaidTopUp.id': charging account '{target['id']}' belongs to billing account "
                                 f"'{owner}'")
        return {"id": str(charging["id"]), "@referredType": "ChargingAccount"}

    async def _credit_topup(self, ctx: Context, row: Payment, charging_account_id: str) -> bool:
        """A top-up payment succeeded: the prepaid balance is credited exactly once (``payments_topup``, unique per
        payment, in the same transaction as charging's credit) and the ledger posts cash / prepaid liability."""
        assert self.prepaid is not None
        fresh = (await ctx.session.execute(pg_insert(Topup).values(
            payment_id=row.id, charging_account_id=charging_account_id, amount=row.amount, currency=row.currency)
            .on_conflict_do_nothing().returning(Topup.payment_id))).scalar()
        if fresh is None:
            return False
        await self.prepaid.topup(ctx, charging_account_id, int(row.amount.scaleb(MINOR_UNITS.get(row.currency, 2))),
                                 reason=f"payment {row.id}", funding="payment")
        kind = ((row.body or {}).get("paymentMethod") or {}).get("@referredType", "")
        await ledger.post(ctx.session, source_type="Payment", source_id=row.id, event="topUpSucceeded",
                          currency=row.currency, description=f"prepaid top-up {row.id} of {charging_account_id}",
                          postings=ledger.topup_postings(row.amount, "card" if kind == "tokenizedCard" else kind),
                          on=await self.local_day(ctx, row.billing_account_id))
        return True

    async def post_prepaid_usage(self, ctx: Context, day: date) -> dict[str, Decimal]:
        """Recognize a day's prepaid usage (the money charging took from prepaid balances that day, per currency):
        prepaid liability → revenue, one entry per (day, currency), once; and first the money credited to prepaid
        balances that day that no payment funded (top-ups from outside, goodwill, adjustments: one entry per
        (day, currency, funding), ``ledger.prepaid_credit_postings``), so that the liability holds what the
        balances owe. Run for days that are over. Returns the amounts posted now, by currency (and
        ``currency/funding`` for credits)."""
        if self.prepaid is None:
            return {}
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        posted: dict[str, Decimal] = {}
        credits = await self.prepaid.prepaid_credit_totals(ctx, start, start + timedelta(days=1))
        for (currency, funding), amount in sorted(credits.items()):
            if amount and await ledger.post(
                    ctx.session, source_type="PrepaidCredit", source_id=f"{day.isoformat()}/{currency}/{funding}",
                    event="creditGranted", currency=currency, description=f"prepaid credit ({funding}) of {day}",
                    on=day, postings=ledger.prepaid_credit_postings(amount, funding)):
                posted[f"{currency}/{funding}"] = amount
        totals = await self.prepaid.prepaid_usage_totals(ctx, start, start + timedelta(days=1))
        for currency, amount in sorted(totals.items()):
            if amount and await ledger.post(
                    ctx.session, source_type="PrepaidUsage", source_id=f"{day.isoformat()}/{currency}",
                    event="usageRecognized", currency=currency, description=f"prepaid usage of {day}", on=day,
                    postings=[ledger.Posting(ledger.PREPAID, amount), ledger.Posting(ledger.REVENUE, -amount)]):
                posted[currency] = amount
        return posted

    async def recognize_revenue(self, ctx: Context, through: date) -> dict[str, Any]:
        """Recognize the deferred revenue of the lines billed in advance for every day before ``through``: per line,
        what its elapsed days earned (pro rata, all of it once its period is over) less what was recognized, posted
        as one entry (Deferral, line, ``recognized:<through>``): Dr 2400 deferred revenue, Cr the line's revenue
        account. Idempotent per line and day: a run again for the same day, or for an earlier one, posts
        nothing."""
        session = ctx.session
        rows = (await session.execute(select(LedgerDeferral).where(
            LedgerDeferral.recognized != LedgerDeferral.amount, LedgerDeferral.start_date < through,
            func.coalesce(LedgerDeferral.recognized_through, LedgerDeferral.start_date) < through)
            .order_by(LedgerDeferral.line_id).with_for_update(skip_locked=True))).scalars().all()
        report: dict[str, Any] = {"lines": 0, "recognized": defaultdict(Decimal)}
        for row in rows:
            target = ledger.recognized_by(Decimal(row.amount), row.start_date, row.end_date, through, row.currency)
            delta = target - Decimal(row.recognized)
            if delta and await ledger.post(
                    session, source_type="Deferral", source_id=row.line_id, event=f"recognized:{through.isoformat()}",
                    currency=row.currency, description=f"revenue of bill {row.bill_id} line {row.line_id} recognized "
                                                       f"through {through - timedelta(days=1)}",
                    postings=[ledger.Posting(ledger.DEFERRED, delta), ledger.Posting(row.revenue_account, -delta)],
                    on=through - timedelta(days=1)):
                row.recognized = target
                report["lines"] += 1
                report["recognized"][row.currency] += delta
            row.recognized_through = through
        await session.flush()
        report["recognized"] = dict(report["recognized"])
        return report

    async def recognize_revenue_of(self, tenants: Sequence[str], through: date) -> int:
        """``recognize_revenue`` for each tenant, each in its own transaction; returns the lines recognized."""
        done = 0
        for tenant in tenants:
            async with self.db.transaction(tenant) as session:
                done += (await self.recognize_revenue(system_context(tenant, session, self.base_url), through))["lines"]
        return done

    async def recognize_prepaid_usage(self, tenants: Sequence[str], day: date) -> int:
        """``post_prepaid_usage`` of ``day`` for each tenant, each in its own transaction; returns the entries
        posted now (none when run again)."""
        posted = 0
        for tenant in tenants:
            async with self.db.transaction(tenant) as session:
                posted += len(await self.post_prepaid_usage(system_context(tenant, session, self.base_url), day))
        return posted

    # --- the customer 360's payments section ------------------------------------------------------------------
    async def customer_payments(self, ctx: Context, account_ids: Sequence[str], limit: int = 20,
                                ) -> dict[str, Any]:
        """The most recent payments of these billing accounts and their payment methods, masked: a card is its
        brand, last four digits and expiry; an IBAN its country, check digits and last four characters; no token,
        mandate secret or full number is ever answered."""
        ids = [a for a in account_ids if a]
        if not ids:
            return {"recent": [], "methods": []}
        methods = list((await ctx.session.execute(select(PaymentMethod).where(
            PaymentMethod.billing_account_id.in_(ids)).order_by(PaymentMethod.created_at.desc(),
                                                                PaymentMethod.id))).scalars())
        masked = {m.id: mask_method(m.kind, m.body) for m in methods}
        rows = (await ctx.session.execute(select(Payment).where(Payment.billing_account_id.in_(ids))
                                          .order_by(Payment.created_at.desc(), Payment.id).limit(limit))).scalars()
        recent = [{"id": p.id, "href": p.body.get("href"), "paymentDate": p.body.get("paymentDate")
                   or format_datetime(p.created_at), "amount": _money(p.amount, p.currency), "status": p.state,
                   "billingAccount": {"id": p.billing_account_id}, "method": masked.get(p.method_id) or p.method_id}
                  for p in rows]
        return {"recent": recent, "methods": [
            {"id": m.id, "type": m.kind, "masked": masked[m.id], "isDefault": m.is_default, "status": m.status,
             "validUntil": format_datetime(m.valid_until) if m.valid_until else None,
             "billingAccount": {"id": m.billing_account_id}} for m in methods]}

    async def _method_doc(self, ctx: Context, method_id: str) -> dict[str, Any]:
        row = await ctx.session.get(PaymentMethod, method_id)
        return dict(row.body) if row else {}

    async def _token(self, ctx: Context, method_id: str) -> str:
        doc = await self._method_doc(ctx, method_id)
        return str(doc.get("token") or doc.get("mandateId") or doc.get("walletId") or method_id)

    async def _charge(self, tenant: str, payment_id: str, amount: Decimal, currency: str, token: str,
                      ) -> GatewayResult | None:
        try:
            return await self.gateway.charge(idempotency_key=payment_id, amount=amount, currency=currency,
                                             token=token, metadata={"tenant": tenant, "payment": payment_id})
        except GatewayTimeout:
            return None

    async def _record_result(self, ctx: Context, payment_id: str, result: GatewayResult | None, source: str,
                             ) -> dict[str, Any]:
        if result is None:
            return await self._move(ctx, payment_id, "unknown", source, "the gateway did not answer in time")
        return await self._move(ctx, payment_id, result.status, source, result.decline_code,
                                reference=result.reference, gateway_ref=result.reference or None)

    async def _transition(self, session: AsyncSession, payment_id: str, old: str | None, new: str, source: str,
                          reason: str | None) -> None:
        session.add(Transition(payment_id=payment_id, from_state=old, to_state=new, source=source,
                               reason=(reason or None) and reason[:300]))
        await session.flush()

    async def _move(self, ctx: Context, payment_id: str, new: str, source: str, reason: str | None = None, *,
                    reference: str | None = None, dispute: dict[str, Any] | None = None,
                    gateway_ref: str | None = None) -> dict[str, Any]:
        """Move a payment forward (locked row); a stale or repeated move changes nothing. A payment that
        succeeds is allocated and posted in the same transaction. ``gateway_ref``: the gateway's reference of the
        charge, recorded when the payment has none yet (even by a stale move)."""
        row = (await ctx.session.execute(select(Payment).where(Payment.id == payment_id).with_for_update()
                                         .execution_options(populate_existing=True))).scalars().first()
        if row is None:
            raise NotFound(f"Payment '{payment_id}' not found", code="NOT_FOUND")
        old = row.state
        allowed = DISPUTE_TRANSITIONS if source == "dispute" else TRANSITIONS
        if new == old or new not in allowed.get(old, frozenset()):
            if gateway_ref and row.gateway_ref is None:
                row.gateway_ref = gateway_ref
                await ctx.session.flush()
            return await self.payments.get(ctx, payment_id)
        now = format_datetime(utcnow())
        allocation: list[dict[str, Any]] | None = None
        topup = (row.body or {}).get("prepaidTopUp")
        if new == "succeeded" and old != "chargeback" and topup:
            await self._credit_topup(ctx, row, str(topup["id"]))
        elif new == "succeeded" and old != "chargeback":
            body = row.body or {}
            allocation = await self.allocate(ctx, row.billing_account_id, row.id, row.amount,
                                             [str(i["item"]["id"]) for i in body.get("paymentItem") or []])
            kind = (body.get("paymentMethod") or {}).get("@referredType", "")
            await ledger.post(ctx.session, source_type="Payment", source_id=row.id, event="paymentSucceeded",
                              currency=row.currency, description=f"payment {row.id} by {kind}",
                              postings=ledger.receipt_postings(row.amount, "card" if kind == "tokenizedCard"
                                                               else kind),
                              on=await self.local_day(ctx, row.billing_account_id))

        def apply(doc: dict[str, Any]) -> None:
            doc["status"] = new
            doc["statusDate"] = now
            if reference:
                doc["authorizationCode"] = reference
            if reason and new in ("failed", "unknown"):
                doc["statusReason"] = reason
            else:
                doc.pop("statusReason", None)
            if allocation is not None:
                doc["allocation"] = allocation
            if dispute is not None:
                _put_dispute(doc, dispute)

        row.state = new  # written with the document (one UPDATE of the row)
        if gateway_ref and row.gateway_ref is None:
            row.gateway_ref = gateway_ref
        rendered = await self.payments.change(ctx, payment_id, apply, action=new, locked=row)
        await self._transition(ctx.session, payment_id, old, new, source, reason)
        return rendered

    # --- the gateway's reports -----------------------------------------------------------------------------
    async def handle_webhook(self, body: bytes, signature: str | None) -> bool:
        """Apply a gateway's signed webhook. Returns whether it changed anything (a replay or a stale event
        does not)."""
        payload = self.gateway.verify(body, signature)
        data = payload.get("data") or {}
        if isinstance(data.get("dispute"), dict):
            return await self._dispute_webhook(payload)
        tenant = (data.get("metadata") or {}).get("tenant")
        payment_id = data.get("idempotencyKey")
        status = data.get("status")
        if status is None:
            return False  # an event of no interest to payments (acknowledged, ignored)
        if not tenant or not payment_id or status not in ("pending", "succeeded", "failed"):
            raise InvalidPayment("the webhook names no tenant, payment or status")
        async with self.db.transaction(str(tenant)) as session:
            fresh = (await session.execute(pg_insert(WebhookEvent).values(
                gateway=self.gateway.name, event_id=str(payload.get("id"))).on_conflict_do_nothing()
                .returning(WebhookEvent.event_id))).scalar()
            if fresh is None:
                return False
            ctx = system_context(str(tenant), session, self.base_url, "gateway")
            before = await session.scalar(select(Payment.state).where(Payment.id == payment_id))
            if before is None:
                return False
            await self._record_result(ctx, str(payment_id), GatewayResult(
                str(status), str(data.get("reference") or ""), data.get("declineCode")), "webhook")
            after = await session.scalar(select(Payment.state).where(Payment.id == payment_id)
                                         .execution_options(populate_existing=True))
            return bool(after != before)

    # --- disputes (chargebacks) ----------------------------------------------------------------------------
    async def _dispute_webhook(self, payload: dict[str, Any]) -> bool:
        """A gateway's dispute event (opened, closed won or lost): the payment is found by the gateway's reference
        among every tenant's (one query in the system scope), the event applied once in its tenant."""
        data = payload["data"]
        d = data["dispute"]
        reference = str(data.get("reference") or "")
        try:
            amount = to_decimal(d.get("amount"))
            fee = to_decimal(d.get("fee") or 0)
        except ValueError as exc:
            raise InvalidPayment(f"the dispute's amount or fee is not a number: {exc}") from exc
        status = str(d.get("status") or "")
        if not d.get("id") or not reference or status not in ("open", "won", "lost") or amount <= 0 or fee < 0:
            raise InvalidPayment("the dispute names no id, charge, status (open, won, lost) or positive amount")
        async with self.db.transaction(None, system=True) as session:
            found = (await session.execute(select(Payment.tenant_id, Payment.id).where(
                Payment.gateway == self.gateway.name, Payment.gateway_ref == reference))).first()
        if found is None:
            log.warning("dispute %s names charge %s that no payment made; ignored", d.get("id"), reference)
            return False
        tenant, payment_id = str(found[0]), str(found[1])
        async with self.db.transaction(tenant) as session:
            fresh = (await session.execute(pg_insert(WebhookEvent).values(
                gateway=self.gateway.name, event_id=str(payload.get("id"))).on_conflict_do_nothing()
                .returning(WebhookEvent.event_id))).scalar()
            if fresh is None:
                return False
            ctx = system_context(tenant, session, self.base_url, "gateway")
            return await self.dispute(ctx, payment_id, dispute_id=str(d["id"]), amount=amount, fee=fee,
                                      reason=str(d.get("reason") or "") or None, status=status)

    async def dispute(self, ctx: Context, payment_id: str, *, dispute_id: str, amount: Decimal, fee: Decimal,
                      reason: str | None, status: str) -> bool:
        """Apply a dispute of a succeeded payment. Opened: the payment becomes ``chargeback``, what it settled is
        taken back (its credit first, then its bills, newest first: they are open again) and the ledger posts the
        chargeback and the gateway's fee. Won: the money is the payment's again (it settles the bills it had
        settled, then the oldest open ones) and the reversal is reversed in the ledger; lost: recorded. Each step
        once: a replayed or late event changes nothing more. Returns whether anything changed."""
        session = ctx.session
        payment = (await session.execute(select(Payment).where(Payment.id == payment_id).with_for_update()
                                         .execution_options(populate_existing=True))).scalars().one()
        row = (await session.execute(select(Dispute).where(
            Dispute.gateway == (payment.gateway or ""), Dispute.dispute_id == dispute_id).with_for_update())
            ).scalars().first()
        kind = (payment.body or {}).get("paymentMethod", {}).get("@referredType", "")
        cash_kind = "card" if kind == "tokenizedCard" else kind
        changed = False
        if row is None:
            if payment.state != "succeeded":
                log.warning("dispute %s of payment %s in state %s: ignored", dispute_id, payment_id, payment.state)
                return False
            topup = (await session.execute(select(Topup).where(Topup.payment_id == payment_id))).scalars().first()
            if topup is not None and self.prepaid is not None:  # the prepaid balance gives the money back
                bills: list[str] = []
                taken = min(amount, payment.amount)
                await self.prepaid.take_back(ctx, topup.charging_account_id,
                                             int(taken.scaleb(MINOR_UNITS.get(payment.currency, 2))),
                                             reason=f"chargeback {dispute_id} of payment {payment_id}")
                postings = ledger.topup_chargeback_postings(taken, fee, cash_kind)
            else:
                taken, bills = await self._take_back(ctx, payment, min(amount, payment.amount))
                postings = ledger.chargeback_postings(taken, fee, cash_kind)
            row = Dispute(gateway=payment.gateway or "", dispute_id=dispute_id, payment_id=payment_id, amount=taken,
                          fee=fee, currency=payment.currency, reason=reason, status="open")
            session.add(row)
            await session.flush()
            await ledger.post(session, source_type="Dispute", source_id=dispute_id, event="chargeback",
                              currency=payment.currency, description=f"chargeback {dispute_id} of payment {payment_id}",
                              postings=postings,
                              on=await self.local_day(ctx, payment.billing_account_id))
            await self._move(ctx, payment_id, "chargeback", "dispute", f"dispute {dispute_id}: {reason or 'opened'}",
                             dispute=_dispute_doc(row, bills))
            changed = True
        if status in ("won", "lost") and row.status == "open":
            row.status = status
            row.closed_at = utcnow()
            await session.flush()
            topup = (await session.execute(select(Topup).where(Topup.payment_id == payment_id))).scalars().first()
            if status == "won" and topup is not None and self.prepaid is not None:
                await self.prepaid.topup(ctx, topup.charging_account_id,
                                         int(Decimal(row.amount).scaleb(MINOR_UNITS.get(payment.currency, 2))),
                                         reason=f"dispute {dispute_id} of payment {payment_id} won",
                                         funding="payment")
                await ledger.post(session, source_type="Dispute", source_id=dispute_id, event="disputeWon",
                                  currency=payment.currency, description=f"dispute {dispute_id} won",
                                  postings=ledger.topup_postings(row.amount, cash_kind),
                                  on=await self.local_day(ctx, payment.billing_account_id))
                await self._move(ctx, payment_id, "succeeded", "dispute", f"dispute {dispute_id} won",
                                 dispute=_dispute_doc(row, []))
            elif status == "won":
                named = [str(b) for b, in (await session.execute(
                    select(Allocation.bill_id).where(Allocation.payment_id == payment_id,
                                                     Allocation.source == "chargeback", Allocation.bill_id.is_not(None))
                    .group_by(Allocation.bill_id).order_by(func.min(Allocation.id)))).all()]
                await self.allocate(ctx, payment.billing_account_id, payment_id, row.amount, named,
                                    source="disputeWon")
                await ledger.post(session, source_type="Dispute", source_id=dispute_id, event="disputeWon",
                                  currency=payment.currency, description=f"dispute {dispute_id} won",
                                  postings=ledger.receipt_postings(row.amount, cash_kind),
                                  on=await self.local_day(ctx, payment.billing_account_id))
                await self._move(ctx, payment_id, "succeeded", "dispute", f"dispute {dispute_id} won",
                                 dispute=_dispute_doc(row, named))
            else:
                def lost(doc: dict[str, Any]) -> None:
                    _put_dispute(doc, _dispute_doc(row, None))

                await self.payments.change(ctx, payment_id, lost, action="disputeLost")
            changed = True
        return changed

    async def _take_back(self, ctx: Context, payment: Payment, amount: Decimal) -> tuple[Decimal, list[str]]:
        """Take ``amount`` back from what ``payment`` settled: its credit first, then its bills (newest first),
        whose state follows. Returns what was taken (less when refunds took part of it) and the bills reopened."""
        session = ctx.session
        account_id = payment.billing_account_id
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                              {"k": _lock_key(ctx.principal.tenant_id, account_id)})
        credit = Decimal(await session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
            Allocation.payment_id == payment.id, Allocation.bill_id.is_(None))) or 0)
        credit -= (await _reserved(session, account_id)).get(payment.id, Decimal(0))
        left = amount
        take = min(max(credit, Decimal(0)), left)
        if take > 0:
            session.add(Allocation(payment_id=payment.id, billing_account_id=account_id, bill_id=None, amount=-take,
                                   source="chargeback"))
            left -= take
        reopened: list[str] = []
        settled = (await session.execute(
            select(Allocation.bill_id, func.sum(Allocation.amount)).where(
                Allocation.payment_id == payment.id, Allocation.bill_id.is_not(None))
            .group_by(Allocation.bill_id).having(func.sum(Allocation.amount) > 0)
            .order_by(func.max(Allocation.id).desc()))).all()
        for bill_id, paid in settled:
            if left <= 0:
                break
            take = min(Decimal(paid), left)
            session.add(Allocation(payment_id=payment.id, billing_account_id=account_id, bill_id=bill_id,
                                   amount=-take, source="chargeback"))
            left -= take
            reopened.append(str(bill_id))
        await session.flush()
        for bill_id in reopened:
            receivable = await session.get(Receivable, (ctx.principal.tenant_id, bill_id))
            total = Decimal(await session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
                Allocation.bill_id == bill_id)) or 0)
            state = "settled" if receivable is not None and total >= receivable.amount else \
                "partiallyPaid" if total > 0 else "sent"
            await self.bills.record_payment_state(ctx, bill_id, state)
        return amount - left, reopened

    # --- the janitor ----------------------------------------------------------------------------------------
    async def janitor(self, tenant: str | None, older_than: timedelta = timedelta(minutes=2)) -> dict[str, int]:
        """Resolve the payments left initiated, pending or unknown for longer than ``older_than`` (of one tenant,
        or of every tenant: one query in the system scope): ask the gateway about each (by our payment id); a
        charge the gateway never saw is sent again (same key)."""
        report = {"checked": 0, "resolved": 0, "retried": 0}
        cutoff = utcnow() - older_than
        stmt = (select(Payment.tenant_id, Payment.id, Payment.amount, Payment.currency, Payment.method_id)
                .where(Payment.state.in_(IN_FLIGHT), Payment.gateway == self.gateway.name,
                       Payment.last_update <= cutoff).order_by(Payment.last_update).limit(500))
        async with self.db.transaction(tenant, system=tenant is None) as session:
            stale = (await session.execute(stmt)).all()
        for tenant_id, payment_id, amount, currency, method_id in stale:
            tenant = str(tenant_id)
            report["checked"] += 1
            try:
                result = await self.gateway.lookup(payment_id)
                if result is None:
                    async with self.db.transaction(tenant) as session:
                        token = await self._token(system_context(tenant, session, self.base_url), method_id)
                    result = await self._charge(tenant, payment_id, amount, currency, token)
                    report["retried"] += 1
            except GatewayTimeout:
                result = None
            async with self.db.transaction(tenant) as session:
                ctx = system_context(tenant, session, self.base_url, "payments-janitor")
                before = await session.scalar(select(Payment.state).where(Payment.id == payment_id))
                if result is None:
                    # still no answer: stamp it so the next round asks again later
                    await session.execute(update(Payment).where(Payment.id == payment_id).values(
                        last_update=utcnow()))
                    continue
                await self._record_result(ctx, payment_id, result, "janitor")
                after = await session.scalar(select(Payment.state).where(Payment.id == payment_id)
                                             .execution_options(populate_existing=True))
                if after != before:
                    report["resolved"] += 1
        return report

    # --- business dates -----------------------------------------------------------------------------------------
    @staticmethod
    def _remember_zone(ctx: Context, account: dict[str, Any]) -> None:
        """Keep the zone of an account just read (``zone``'s cache of the transaction)."""
        cache: dict[str, ZoneInfo] = ctx.session.info.setdefault("payments.zones", {})
        try:
            cache[str(account["id"])] = ZoneInfo((account.get("billCycle") or {}).get("timeZone") or "UTC")
        except (KeyError, ValueError):
            cache[str(account["id"])] = ZoneInfo("UTC")

    async def zone(self, ctx: Context, account_id: str) -> ZoneInfo:
        """The billing account's time zone (its bill cycle's ``timeZone``; UTC when it has none), once per
        transaction."""
        cache: dict[str, ZoneInfo] = ctx.session.info.setdefault("payments.zones", {})
        if account_id not in cache:
            try:
                account = await self.accounts.get_billing_account(ctx, account_id)
            except DomainError as exc:
                if exc.status != 404:
                    raise
                account = {}
            try:
                cache[account_id] = ZoneInfo((account.get("billCycle") or {}).get("timeZone") or "UTC")
            except (KeyError, ValueError):
                cache[account_id] = ZoneInfo("UTC")
        return cache[account_id]

    async def prefetch_zones(self, ctx: Context, account_ids: Sequence[str]) -> None:
        """Read the time zones of many accounts at once (``zone``'s cache) where the account domain reads many
        accounts in one query."""
        cache: dict[str, ZoneInfo] = ctx.session.info.setdefault("payments.zones", {})
        missing = [a for a in dict.fromkeys(account_ids) if a not in cache]
        batch = getattr(self.accounts, "get_billing_accounts", None)
        if not missing or batch is None:
            return
        found: dict[str, dict[str, Any]] = await batch(ctx, missing)
        for account_id in missing:
            try:
                cache[account_id] = ZoneInfo(((found.get(account_id) or {}).get("billCycle") or {}).get("timeZone")
                                             or "UTC")
            except (KeyError, ValueError):
                cache[account_id] = ZoneInfo("UTC")

    async def local_day(self, ctx: Context, account_id: str, at: datetime | None = None) -> date:
        """The business date of ``at`` (now by default) for the account: its local date in the account's zone.
        Every ledger posting of a document of the account is dated so (a bill on its bill date as billing states
        it, a receipt on the day it was received there)."""
        return (at or utcnow()).astimezone(await self.zone(ctx, account_id)).date()

    async def account_segment(self, ctx: Context, account_id: str) -> str:
        """The segment (TMF629 characteristic ``segment``) of the customer a billing account belongs to (its
        related party of type Customer); ``unknown`` when there is none. Once per account and transaction."""
        cache: dict[str, str] = ctx.session.info.setdefault("payments.segments", {})
        if account_id not in cache:
            segment = None
            try:
                account = await self.accounts.get_billing_account(ctx, account_id)
            except DomainError as exc:
                if exc.status != 404:
                    raise
                account = {}
            customer_id = next((p.get("id") for p in account.get("relatedParty") or []
                                if p.get("@referredType") == "Customer"), None)
            if customer_id and self.customers is not None:
                customer = await self.customers.find_customer(ctx, str(customer_id)) or {}
                segment = next((c.get("value") for c in customer.get("characteristic") or []
                                if c.get("name") == "segment"), None)
            cache[account_id] = str(segment or "unknown")
        return cache[account_id]

    async def settlements(self, tenant: str, start: date, end: date) -> list[Settlement]:
        """The gateway's settlements of ``[start, end]`` for ``tenant`` (a network call: outside transactions)."""
        lo, hi = reports_window(start, end)
        return [s for s in await self.gateway.settlements(lo, hi) if s.metadata.get("tenant") == tenant]

    # --- allocation ---------------------------------------------------------------------------------------------
    async def receivable(self, ctx: Context, bill_id: str) -> Receivable:
        """The bill as payments see it; read from billing when its finalization was not heard of yet (and then
        taken in as the bill-issued reaction does: posted, the account's credit settling it)."""
        row = await ctx.session.get(Receivable, (ctx.principal.tenant_id, bill_id))
        if row is not None:
            return row
        try:
            bill = await self.bills.get_bill(ctx, bill_id)
        except NotFound as exc:
            raise InvalidPayment(f"bill '{bill_id}' does not exist") from exc
        if bill.get("state") not in ISSUED:
            raise InvalidPayment(f"bill '{bill_id}' is not issued (state {bill.get('state')}): it cannot be paid")
        # what the bill-issued reaction does (once either way): remembered alone, the reaction would find the bill
        # known and let no credit settle it (nor record a credit note's credit)
        await self.bill_issued(ctx, bill)
        found = await ctx.session.get(Receivable, (ctx.principal.tenant_id, bill_id))
        assert found is not None
        return found

    async def remember_bill(self, ctx: Context, bill: dict[str, Any]) -> bool:
        """Record an issued bill as receivable (once) and post its finalization to the ledger (once)."""
        amount = to_decimal((bill.get("taxIncludedAmount") or {}).get("value", 0))
        currency = (bill.get("taxIncludedAmount") or {}).get("unit") or "EUR"
        account_id = bill["billingAccount"]["id"]
        # billing states the bill date as the instant of local midnight: its business date is the local date
        bill_date = await self.local_day(ctx, account_id, _parse_instant(bill.get("billDate")
                                                                         or format_datetime(utcnow()), "billDate"))
        due = await self.local_day(ctx, account_id, _parse_instant(bill["paymentDueDate"], "paymentDueDate")) \
            if bill.get("paymentDueDate") else bill_date
        inserted = (await ctx.session.execute(pg_insert(Receivable).values(
            bill_id=bill["id"], billing_account_id=bill["billingAccount"]["id"], number=bill.get("billNo"),
            bill_date=bill_date, due_date=due, currency=currency, amount=amount).on_conflict_do_nothing()
            .returning(Receivable.bill_id))).scalar()
        postings, deferred = await self.bill_postings(ctx, bill, amount, bill_date)
        posted = await ledger.post(ctx.session, source_type="CustomerBill", source_id=bill["id"],
                                   event="billFinalized", currency=currency,
                                   description=f"bill {bill.get('billNo') or bill['id']}",
                                   postings=postings, on=bill_date)
        if posted:
            await self._record_revenue(ctx, bill, currency, bill_date, amount)
        if posted and deferred:
            await ctx.session.execute(pg_insert(LedgerDeferral).values([
                {"line_id": d.line_id, "bill_id": bill["id"], "currency": currency, "amount": d.amount,
                 "start_date": d.start, "end_date": d.end, "revenue_account": d.account} for d in deferred])
                .on_conflict_do_nothing())
        return inserted is not None

    async def _record_revenue(self, ctx: Context, bill: dict[str, Any], currency: str, bill_date: date,
                              amount: Decimal) -> None:
        """The bill's revenue per line (product, tax rate) for the revenue report; a bill whose lines are unknown
        is one row per tax rate."""
        rows: list[dict[str, Any]] = []
        for line in await self._bill_lines(ctx, bill["id"]):
            net = (line.get("taxExcludedAmount") or {}).get("value")
            if net is None:
                continue
            taxes = line.get("appliedTax") or []
            product = line.get("product") or {}
            rows.append({"product_id": product.get("id"), "product_name": (product.get("name") or line.get("name")),
                         "tax_rate": str(taxes[0].get("taxRate")) if taxes else "0", "net": to_decimal(net),
                         "tax": sum((to_decimal((t.get("taxAmount") or {}).get("value", 0)) for t in taxes),
                                    Decimal(0))})
        if not rows:
            items = bill.get("taxItem") or []
            tax = sum((to_decimal((t.get("taxAmount") or {}).get("value", 0)) for t in items), Decimal(0))
            rate = str(items[0].get("taxRate")) if len(items) == 1 else None
            rows.append({"product_id": None, "product_name": None, "tax_rate": rate, "net": amount - tax,
                         "tax": tax})
        await ctx.session.execute(pg_insert(LedgerRevenue).values([
            {**r, "product_name": (r["product_name"] or None) and str(r["product_name"])[:200], "bill_id": bill["id"],
             "seq": i, "period": bill_date, "currency": currency} for i, r in enumerate(rows)])
            .on_conflict_do_nothing())

    async def bill_postings(self, ctx: Context, bill: dict[str, Any], amount: Decimal, bill_date: date,
                            ) -> tuple[list[ledger.Posting], list[ledger.Deferred]]:
        """The ledger postings of an issued bill (and the lines it defers), from billing's document and lines."""
        taxes: dict[str, Decimal] = {}
        for item in bill.get("taxItem") or []:
            rate = str(item.get("taxRate"))
            taxes[rate] = taxes.get(rate, Decimal(0)) + to_decimal((item.get("taxAmount") or {}).get("value", 0))
        lines = await self._bill_lines(ctx, bill["id"])
        tz = await self.zone(ctx, bill["billingAccount"]["id"])
        revenue, deferred = ledger.split_lines(lines, bill_date, other=self.other_revenue, tz=tz)
        return ledger.bill_postings(amount, taxes, revenue), deferred

    async def bill_issued(self, ctx: Context, bill: dict[str, Any]) -> None:
        """Billing issued a bill: remember it, post it, and let the account's credit settle it."""
        if bill.get("state") not in ISSUED:
            return
        if await self.remember_bill(ctx, bill):
            account_id = bill["billingAccount"]["id"]
            amount = to_decimal((bill.get("taxIncludedAmount") or {}).get("value", 0))
            named: list[str] = []
            if amount < 0:  # a credit note: its value is credit, settling the bill it corrects first
                ctx.session.add(Allocation(payment_id=f"{CREDIT_NOTE}{bill['id']}", billing_account_id=account_id,
                                           bill_id=None, amount=-amount, source="creditNote"))
                await ctx.session.flush()
                corrected = (bill.get("correctedBill") or {}).get("id")
                named = [str(corrected)] if corrected else []
            await self.allocate(ctx, account_id, None, Decimal(0), named)

    async def allocate(self, ctx: Context, account_id: str, payment_id: str | None, amount: Decimal,
                       named: Sequence[str], *, source: str = "payment") -> list[dict[str, Any]]:
        """Credit the account with ``amount`` received by ``payment_id`` (if any), then let the account's credit
        settle the named bills, then the oldest open ones. Returns what the payment settled."""
        session = ctx.session
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                              {"k": _lock_key(ctx.principal.tenant_id, account_id)})
        if payment_id is not None and amount:
            session.add(Allocation(payment_id=payment_id, billing_account_id=account_id, bill_id=None,
                                   amount=amount, source=source))
            await session.flush()
        reserved = await _reserved(session, account_id)  # held by refunds in flight
        credits = [(p, Decimal(a) - reserved.get(p, Decimal(0))) for p, a in (await session.execute(
            select(Allocation.payment_id, func.sum(Allocation.amount)).where(
                Allocation.billing_account_id == account_id, Allocation.bill_id.is_(None))
            .group_by(Allocation.payment_id).having(func.sum(Allocation.amount) > 0)
            .order_by(func.min(Allocation.id)))).all()]
        credits = [c for c in credits if c[1] > 0]
        # this payment's credit first for the bills it names
        credits.sort(key=lambda c: c[0] != payment_id)
        if not credits:
            return []
        paid = func.coalesce(select(func.sum(Allocation.amount)).where(Allocation.bill_id == Receivable.bill_id)
                             .correlate(Receivable).scalar_subquery(), 0)
        open_bills = list((await session.execute(
            select(Receivable.bill_id, Receivable.amount - paid).where(
                Receivable.billing_account_id == account_id, Receivable.amount - paid > 0)
            .order_by(Receivable.bill_date, Receivable.number, Receivable.bill_id))).all())
        order = {b: i for i, b in enumerate(named)}
        open_bills.sort(key=lambda r: order.get(r[0], len(order)))
        settled: list[dict[str, Any]] = []
        for bill_id, remaining in open_bills:
            left = Decimal(remaining)
            for i, (p, available) in enumerate(credits):
                if left <= 0:
                    break
                take = min(available, left)
                if take <= 0:
                    continue
                session.add_all([
                    Allocation(payment_id=p, billing_account_id=account_id, bill_id=None, amount=-take,
                               source="allocation"),
                    Allocation(payment_id=p, billing_account_id=account_id, bill_id=bill_id, amount=take,
                               source="allocation")])
                credits[i] = (p, available - take)
                left -= take
                if p == payment_id:
                    settled.append({"bill": {"id": bill_id, "@referredType": "CustomerBill"},
                                    "amount": take})
            if left != Decimal(remaining):
                await session.flush()
                await self.bills.record_payment_state(ctx, bill_id, "settled" if left <= 0 else "partiallyPaid")
        await session.flush()
        return settled

    async def lock_accounts(self, ctx: Context, account_ids: Sequence[str]) -> list[str]:
        """Take the allocation locks of many accounts (``allocate``'s, held until the transaction ends) in one
        statement, in lock-key order: two transactions locking overlapping sets this way cannot deadlock. Returns
        the accounts in that order."""
        tenant = ctx.principal.tenant_id
        accounts = sorted(set(account_ids), key=lambda a: _lock_key(tenant, a))
        if accounts:
            await ctx.session.execute(text(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS l(k, n) "
                "ORDER BY n"), {"keys": [_lock_key(tenant, a) for a in accounts]})
        return accounts

    async def allocate_many(self, ctx: Context, requests: Sequence[AllocationRequest],
                            ) -> list[list[dict[str, Any]]]:
        """``allocate`` for many receipts at once, with the same outcome as one ``allocate`` per request in their
        order: the accounts are locked once (in lock-key order, so that concurrent batches cannot deadlock), their
        credits, refunds in flight and open bills read in one query each, the allocations computed here — named
        bills first, else the oldest open ones; partial; what is left stays credit — and written in multi-row
        inserts; the bills' paid states go to billing in one batch. Returns what each request's payment settled."""
        session = ctx.session
        if not requests:
            return []
        accounts = await self.lock_accounts(ctx, [r.account_id for r in requests])
        reserved: dict[str, Decimal] = {}
        balances: dict[str, dict[str, Decimal]] = {a: {} for a in accounts}  # in the order of their first row
        open_bills: dict[str, list[list[Any]]] = {a: [] for a in accounts}
        for start in range(0, len(accounts), 5000):
            part = accounts[start:start + 5000]
            for p, a in (await session.execute(select(Refund.payment_id, func.sum(Refund.amount)).where(
                    Refund.billing_account_id.in_(part), Refund.state.in_(REFUND_OPEN))
                    .group_by(Refund.payment_id))).all():
                reserved[str(p)] = Decimal(a)
            for account, p, a in (await session.execute(
                    select(Allocation.billing_account_id, Allocation.payment_id, func.sum(Allocation.amount))
                    .where(Allocation.billing_account_id.in_(part), Allocation.bill_id.is_(None))
                    .group_by(Allocation.billing_account_id, Allocation.payment_id)
                    .order_by(func.min(Allocation.id)))).all():
                balances[account][p] = Decimal(a)
            # what was paid on the accounts' bills, aggregated once (a correlated sum per bill is read, under
            # row-level security, through the tenant's index: every allocation of the tenant per bill)
            paid_bills = (select(Allocation.bill_id, func.sum(Allocation.amount).label("paid"))
                          .where(Allocation.billing_account_id.in_(part), Allocation.bill_id.is_not(None))
                          .group_by(Allocation.bill_id).subquery())
            paid = func.coalesce(paid_bills.c.paid, 0)
            for account, bill_id, remaining in (await session.execute(
                    select(Receivable.billing_account_id, Receivable.bill_id, Receivable.amount - paid)
                    .outerjoin(paid_bills, paid_bills.c.bill_id == Receivable.bill_id).where(
                        Receivable.billing_account_id.in_(part), Receivable.amount - paid > 0)
                    .order_by(Receivable.billing_account_id, Receivable.bill_date, Receivable.number,
                              Receivable.bill_id))).all():
                open_bills[account].append([bill_id, Decimal(remaining)])
        rows: list[dict[str, Any]] = []
        states: dict[str, str] = {}
        out: list[list[dict[str, Any]]] = []
        for req in requests:
            account, payment_id = req.account_id, req.payment_id
            credit = balances[account]
            if payment_id is not None and req.amount:
                rows.append({"payment_id": payment_id, "billing_account_id": account, "bill_id": None,
                             "amount": req.amount, "source": req.source})
                credit[payment_id] = credit.get(payment_id, Decimal(0)) + req.amount
            credits = [(p, a - reserved.get(p, Decimal(0))) for p, a in credit.items() if a > 0]
            credits = [c for c in credits if c[1] > 0]
            credits.sort(key=lambda c: c[0] != payment_id)
            settled: list[dict[str, Any]] = []
            out.append(settled)
            if not credits:
                continue
            order = {b: i for i, b in enumerate(req.named)}
            bills = [b for b in open_bills[account] if b[1] > 0]
            bills.sort(key=lambda b: order.get(b[0], len(order)))
            for bill in bills:
                bill_id, remaining = bill
                left = remaining
                for i, (p, available) in enumerate(credits):
                    if left <= 0:
                        break
                    take = min(available, left)
                    if take <= 0:
                        continue
                    rows.append({"payment_id": p, "billing_account_id": account, "bill_id": None, "amount": -take,
                                 "source": "allocation"})
                    rows.append({"payment_id": p, "billing_account_id": account, "bill_id": bill_id, "amount": take,
                                 "source": "allocation"})
                    credits[i] = (p, available - take)
                    credit[p] -= take
                    left -= take
                    if p == payment_id:
                        settled.append({"bill": {"id": bill_id, "@referredType": "CustomerBill"}, "amount": take})
                if left != remaining:
                    bill[1] = left
                    states[bill_id] = "settled" if left <= 0 else "partiallyPaid"
        await insert_rows(session, Allocation, rows)
        await record_payment_states(self.bills, ctx, states)
        return out

    # --- refunds ------------------------------------------------------------------------------------------------
    async def refund(self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None,
                     *, base_url: str | None = None) -> Outcome:
        """Refund part of a succeeded payment, up to what of it is still the account's credit (a settled bill is
        corrected by a credit note first). Through the gateway when the payment went through it, in two phases like
        a payment: the refund is recorded ``pending`` and committed (its amount reserved: concurrent refunds never
        exceed the credit), the gateway is called outside any transaction with our refund id as its idempotency
        key, and its answer is recorded in a second transaction (allocation and ledger once, on success). A refund
        whose answer was lost stays ``pending``/``unknown``: the same request again (same ``Idempotency-Key``) or the
        janitor asks the gateway about it."""
        base = (base_url or self.base_url).rstrip("/")
        tenant = principal.tenant_id
        replayed = False
        try:
            async with self.db.transaction(tenant) as session:
                ctx = Context(principal=principal, session=session, base_url=base)
                if idempotency_key is not None:
                    await self._claim_key(ctx, "refund", idempotency_key, body)
                # with a key, the refund's id (the gateway's idempotency key) is the key's: a request sent again
                # after a lost answer (504: the gateway may have refunded) cannot refund a second time
                refund_id = (str(uuid.uuid5(_REFUND_IDS, f"{tenant}\n{idempotency_key}"))
                             if idempotency_key is not None else str(uuid.uuid4()))
                out, call = await self._open_refund(ctx, body, refund_id)
                if idempotency_key is not None:
                    await session.execute(update(IdempotencyKey).where(
                        IdempotencyKey.scope == "refund", IdempotencyKey.key == idempotency_key).values(
                        resource_id=out["id"]))
                if call is None:
                    return Outcome(out)
        except _Replay as replay:
            replayed = True
            async with self.db.transaction(tenant) as session:
                ctx = Context(principal=principal, session=session, base_url=base)
                call = await self._refund_call(session, replay.resource_id)
                if call is None:  # resolved: the first request's answer
                    return Outcome(await self.refunds.get(ctx, replay.resource_id), replayed=True)
        result = await self._refund_at_gateway(call)
        async with self.db.transaction(tenant) as session:
            ctx = Context(principal=principal, session=session, base_url=base)
            out = await self._record_refund(ctx, call.refund_id, result, "gateway")
        if result is None:
            raise DomainError(f"the gateway did not answer: refund '{call.refund_id}' is pending and will be resolved "
                              "by asking the gateway; send the same request with the same Idempotency-Key again to "
                              "learn its outcome", code="GATEWAY_TIMEOUT", status=504)
        return Outcome(out, replayed=replayed)

    async def _open_refund(self, ctx: Context, body: dict[str, Any], refund_id: str,
                           ) -> tuple[dict[str, Any], RefundCall | None]:
        """Transaction 1 of a refund: check it, reserve its amount, record it (``pending`` when the gateway is to be
        called — returned as the call to make —, ``succeeded`` for a receipt refunded at once)."""
        if body.get("creditNote") is not None:
            return await self._open_credit_note_refund(ctx, body, refund_id), None
        payment_id = (body.get("payment") or {}).get("id")
        if not payment_id:
            raise InvalidPayment("'payment.id' is mandatory: the payment refunded")
        amount, currency = _amount(body.get("totalAmount"), "totalAmount")
        payment = (await ctx.session.execute(select(Payment).where(Payment.id == payment_id).with_for_update())
                   ).scalars().first()
        if payment is None:
            raise InvalidPayment(f"payment '{payment_id}' does not exist")
        account_id = (body.get("account") or {}).get("id")
        if account_id and account_id != payment.billing_account_id:
            raise InvalidPayment(f"payment '{payment_id}' was made by billing account '{payment.billing_account_id}'")
        if payment.state != "succeeded":
            raise RefundRefused(f"payment '{payment_id}' is {payment.state}: only a succeeded payment is refunded")
        if currency != payment.currency:
            raise InvalidPayment(f"'totalAmount.unit' {currency} is not the payment's currency {payment.currency}")
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                  {"k": _lock_key(ctx.principal.tenant_id, payment.billing_account_id)})
        credit = Decimal(await ctx.session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
            Allocation.payment_id == payment_id, Allocation.bill_id.is_(None))) or 0)
        reserved = (await _reserved(ctx.session, payment.billing_account_id)).get(payment_id, Decimal(0))
        if amount > credit - reserved:
            held = f" ({reserved} held by refunds in flight)" if reserved else ""
            raise RefundRefused(f"payment '{payment_id}' has {credit - reserved} {currency} not allocated to bills"
                                f"{held}: a refund of {amount} needs a credit note on the bills it settled first")
        if payment.gateway is not None and not payment.gateway_ref:
            raise RefundRefused(f"payment '{payment_id}' has no gateway reference yet")
        state = "pending" if payment.gateway is not None else "succeeded"
        now = format_datetime(utcnow())
        doc: dict[str, Any] = {
            **{k: v for k, v in body.items() if k in ("correlatorId", "description", "name", "channel",
                                                     "requestor")},
            "id": refund_id, "@type": "Refund",
            "account": {"id": payment.billing_account_id, "@referredType": "BillingAccount"},
            "payment": {"id": payment_id, "href": f"{ctx.base_url}/tmf-api/paymentManagement/v4/payment/{payment_id}"},
            "paymentMethod": {"id": payment.method_id},
            "totalAmount": _money(amount, currency), "amount": _money(amount, currency),
            "refundDate": now, "status": state, "statusDate": now}
        rendered = await self.refunds.record(ctx, doc, columns={
            "payment_id": payment_id, "billing_account_id": payment.billing_account_id, "state": state,
            "amount": amount, "currency": currency, "gateway_ref": None})
        if state == "succeeded":
            await self._refund_succeeded(ctx, refund_id)
            return rendered, None
        return rendered, RefundCall(refund_id, str(payment.gateway_ref), amount, currency)

    async def _open_credit_note_refund(self, ctx: Context, body: dict[str, Any], refund_id: str,
                                       ) -> dict[str, Any]:
        """A refund drawing on a credit note: it pays out (by the method named: a transfer, cash — no gateway
        charge to refund) what of the credit note is still account credit, never more, once; recorded
        ``succeeded`` at once, the credit note's credit drawn and receivable / cash posted
        (``_refund_succeeded``). The account's allocation lock serializes it with allocations and other
        refunds."""
        ref = body.get("creditNote")
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str) or not ref["id"]:
            raise InvalidPayment("'creditNote.id' is mandatory: the credit note whose credit is paid out")
        if body.get("payment") is not None:
            raise InvalidPayment("a refund draws on a payment ('payment') or a credit note ('creditNote'), not both")
        note_id = ref["id"]
        amount, currency = _amount(body.get("totalAmount"), "totalAmount")
        if amount <= 0:
            raise InvalidPayment("'totalAmount.value' must be positive")
        note = await ctx.session.get(Receivable, (ctx.principal.tenant_id, note_id))
        if note is None:  # not heard of yet: what the bill-issued reaction does, now (once either way)
            try:
                bill = await self.bills.get_bill(ctx, note_id)
            except NotFound as exc:
                raise InvalidPayment(f"'creditNote.id': credit note '{note_id}' does not exist") from exc
            if bill.get("category") != "creditNote" or bill.get("state") not in ISSUED:
                raise InvalidPayment(f"'creditNote.id': '{note_id}' is not an issued credit note")
            await self.bill_issued(ctx, bill)
            note = await ctx.session.get(Receivable, (ctx.principal.tenant_id, note_id))
        if note is None or note.amount >= 0:
            raise InvalidPayment(f"'creditNote.id': '{note_id}' is not a credit note")
        account_id = note.billing_account_id
        named = (body.get("account") or {}).get("id")
        if named and named != account_id:
            raise InvalidPayment(f"credit note '{note_id}' credits billing account '{account_id}', not '{named}'")
        if currency != note.currency:
            raise InvalidPayment(f"'totalAmount.unit' {currency} is not the credit note's currency {note.currency}")
        method_id = (body.get("paymentMethod") or {}).get("id")
        if not method_id:
            raise InvalidPayment("'paymentMethod.id' is mandatory: how the money is paid out")
        method = await usable_method(ctx, str(method_id), account_id)
        if method.kind in ("tokenizedCard", "card"):
            raise InvalidPayment("a credit note is paid out by transfer, cash or voucher, not to a card (a card "
                                 "refund draws on the card's payment)")
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                  {"k": _lock_key(ctx.principal.tenant_id, account_id)})
        source = f"{CREDIT_NOTE}{note_id}"
        credit = Decimal(await ctx.session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
            Allocation.payment_id == source, Allocation.bill_id.is_(None))) or 0)
        if amount > credit:
            raise RefundRefused(f"credit note '{note_id}' has {credit} {currency} left as account credit: "
                                f"{amount} cannot be paid out")
        now = format_datetime(utcnow())
        doc: dict[str, Any] = {
            **{k: v for k, v in body.items() if k in ("correlatorId", "description", "name", "channel",
                                                     "requestor")},
            "id": refund_id, "@type": REFUND_TYPE, "@baseType": "Refund",
            "@schemaLocation": f"{ctx.base_url}/payments/v1/schema/{REFUND_TYPE}.json",
            "account": {"id": account_id, "@referredType": "BillingAccount"},
            "creditNote": {"id": note_id, "href": f"{ctx.base_url}/tmf-api/customerBillManagement/v4/customerBill/"
                                                  f"{note_id}", "@referredType": "CustomerBill"},
            "paymentMethod": {"id": str(method_id)},
            "totalAmount": _money(amount, currency), "amount": _money(amount, currency),
            "refundDate": now, "status": "succeeded", "statusDate": now}
        rendered = await self.refunds.record(ctx, doc, columns={
            "payment_id": source, "billing_account_id": account_id, "state": "succeeded", "amount": amount,
            "currency": currency, "gateway_ref": None})
        await self._refund_succeeded(ctx, refund_id)
        return rendered

    async def _refund_call(self, session: AsyncSession, refund_id: str) -> RefundCall | None:
        """The gateway call of a refund still pending or unknown (None when it is resolved)."""
        row = (await session.execute(select(Refund.state, Refund.amount, Refund.currency, Payment.gateway_ref)
                                     .join(Payment, Payment.id == Refund.payment_id)
                                     .where(Refund.id == refund_id))).first()
        if row is None or row[0] not in REFUND_OPEN:
            return None
        return RefundCall(refund_id, str(row[3]), Decimal(row[1]), str(row[2]))

    async def _refund_at_gateway(self, call: RefundCall, *, ask_first: bool = False) -> GatewayResult | None:
        """The gateway's answer about a refund (our refund id its idempotency key); None: no answer in time."""
        try:
            if ask_first:
                found = await self.gateway.lookup_refund(call.refund_id, call.reference)
                if found is not None:
                    return found
            return await self.gateway.refund(idempotency_key=call.refund_id, reference=call.reference,
                                             amount=call.amount, currency=call.currency)
        except GatewayTimeout:
            return None

    async def _record_refund(self, ctx: Context, refund_id: str, result: GatewayResult | None, source: str,
                             ) -> dict[str, Any]:
        """Transaction 2 of a refund: the gateway's answer (locked row; a refund already resolved changes
        nothing). Success allocates and posts, once."""
        row = (await ctx.session.execute(select(Refund).where(Refund.id == refund_id).with_for_update()
                                         .execution_options(populate_existing=True))).scalars().first()
        if row is None:
            raise NotFound(f"Refund '{refund_id}' not found", code="NOT_FOUND")
        if row.state not in REFUND_OPEN:
            return await self.refunds.get(ctx, refund_id)
        new = "unknown" if result is None else "succeeded" if result.status == "succeeded" else \
            "pending" if result.status == "pending" else "failed"
        if new == row.state:
            await ctx.session.execute(update(Refund).where(Refund.id == refund_id).values(last_update=utcnow()))
            return await self.refunds.get(ctx, refund_id)
        now = format_datetime(utcnow())

        def apply(doc: dict[str, Any]) -> None:
            doc["status"] = new
            doc["statusDate"] = now
            if result is not None and result.reference:
                doc["authorizationCode"] = result.reference

        rendered = await self.refunds.change(ctx, refund_id, apply, action=new)
        await ctx.session.execute(update(Refund).where(Refund.id == refund_id).values(
            state=new, gateway_ref=result.reference if result is not None and result.reference else None,
            last_update=utcnow()))
        log.info("refund %s %s -> %s (%s)", refund_id, row.state, new, source)
        if new == "succeeded":
            await self._refund_succeeded(ctx, refund_id)
        return rendered

    async def _refund_succeeded(self, ctx: Context, refund_id: str) -> None:
        """A refund succeeded: the payment's credit drawn and the ledger posted, once per refund."""
        row = (await ctx.session.execute(select(Refund).where(Refund.id == refund_id))).scalars().one()
        # locks in the order every writer takes them: the payment's row, then the account's allocation lock
        method = await ctx.session.scalar(select(Payment.method_id).where(Payment.id == row.payment_id)
                                          .with_for_update())
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                  {"k": _lock_key(ctx.principal.tenant_id, row.billing_account_id)})
        kind = await ctx.session.get(PaymentMethod, method) if method else None
        posted = await ledger.post(
            ctx.session, source_type="Refund", source_id=refund_id, event="refundSucceeded", currency=row.currency,
            description=f"refund {refund_id} of {'' if row.payment_id.startswith(CREDIT_NOTE) else 'payment '}"
                        f"{row.payment_id}",
            postings=[ledger.Posting(p.account, -p.amount) for p in ledger.receipt_postings(
                row.amount, "card" if kind is not None and kind.kind == "tokenizedCard" else "")],
            on=await self.local_day(ctx, row.billing_account_id))
        if not posted:
            return
        ctx.session.add(Allocation(payment_id=row.payment_id, billing_account_id=row.billing_account_id,
                                   bill_id=None, amount=-row.amount, source="refund"))
        await ctx.session.execute(update(Payment).where(Payment.id == row.payment_id).values(
            refunded=Payment.refunded + row.amount))
        await ctx.session.flush()

    async def refund_janitor(self, tenant: str | None, older_than: timedelta = timedelta(minutes=2),
                             ) -> dict[str, int]:
        """Resolve the refunds left pending or unknown for longer than ``older_than`` (a crash between the gateway
        call and its recording, a timeout): ask the gateway about each by our refund id, and send it again with the
        same key when the gateway never saw it."""
        report = {"checked": 0, "resolved": 0}
        cutoff = utcnow() - older_than
        stmt = (select(Refund.tenant_id, Refund.id, Refund.amount, Refund.currency, Payment.gateway_ref)
                .join(Payment, (Payment.id == Refund.payment_id) & (Payment.tenant_id == Refund.tenant_id))
                .where(Refund.state.in_(REFUND_OPEN), Payment.gateway == self.gateway.name,
                       Refund.last_update <= cutoff).order_by(Refund.last_update).limit(500))
        async with self.db.transaction(tenant, system=tenant is None) as session:
            stale = (await session.execute(stmt)).all()
        for tenant_id, refund_id, amount, currency, reference in stale:
            report["checked"] += 1
            result = await self._refund_at_gateway(RefundCall(refund_id, str(reference), Decimal(amount),
                                                              str(currency)), ask_first=True)
            async with self.db.transaction(str(tenant_id)) as session:
                ctx = system_context(str(tenant_id), session, self.base_url, "payments-janitor")
                out = await self._record_refund(ctx, refund_id, result, "janitor")
                if out.get("status") not in REFUND_OPEN:
                    report["resolved"] += 1
        return report

    # --- write-offs ---------------------------------------------------------------------------------------------
    async def write_off(self, ctx: Context, *, billing_account_id: str, amount: Decimal, currency: str, reason: str,
                        reference: str) -> dict[str, Any]:
        """Write off ``amount`` of what a billing account owes: it settles the account's open bills oldest first,
        like a payment (they become ``partiallyPaid`` / ``settled``, shown as written off), and the ledger posts
        bad debt / receivable once. Idempotent per (tenant, ``reference``) — a unique constraint: the same call
        again returns the first write-off (``replayed: true``); the same reference with other values is refused
        (422). Refused (409) when the account owes less than ``amount``; nothing is written on a refusal."""
        if not isinstance(reference, str) or not 1 <= len(reference) <= 100:
            raise InvalidPayment("'reference' must be 1 to 100 characters")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
            raise InvalidPayment("'reason' is mandatory (at most 300 characters)")
        value, unit = _amount({"unit": currency, "value": amount}, "amount")
        if not billing_account_id:
            raise InvalidPayment("'billingAccount.id' is mandatory: the account whose debt is written off")
        session = ctx.session
        wanted = (billing_account_id, value, unit, reason.strip())
        existing = await self._write_off_row(session, reference)
        if existing is not None:
            return self._write_off_replay(ctx, existing, wanted)
        try:
            account = await self.accounts.get_billing_account(ctx, billing_account_id)
        except NotFound as exc:
            raise InvalidPayment(f"billing account '{billing_account_id}' does not exist") from exc
        if account.get("currency") and account["currency"] != unit:
            raise InvalidPayment(f"'amount.unit' {unit} is not the account's currency {account['currency']}")
        write_off_id = str(uuid.uuid4())
        async with session.begin_nested():
            claimed = (await session.execute(pg_insert(WriteOff).values(
                reference=reference, id=write_off_id, billing_account_id=billing_account_id, amount=value,
                currency=unit, reason=reason.strip(), created_by=ctx.principal.subject[:200], settled=[])
                .on_conflict_do_nothing().returning(WriteOff.id))).scalar()
        if claimed is None:  # a concurrent call with the same reference committed first (we waited for it)
            row = await self._write_off_row(session, reference)
            assert row is not None
            return self._write_off_replay(ctx, row, wanted)
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                              {"k": _lock_key(ctx.principal.tenant_id, billing_account_id)})
        paid = func.coalesce(select(func.sum(Allocation.amount)).where(Allocation.bill_id == Receivable.bill_id)
                             .correlate(Receivable).scalar_subquery(), 0)
        owed = Decimal(await session.scalar(select(func.coalesce(func.sum(Receivable.amount - paid), 0)).where(
            Receivable.billing_account_id == billing_account_id, Receivable.currency == unit,
            Receivable.amount - paid > 0)) or 0)
        if value > owed:
            raise WriteOffRefused(f"billing account '{billing_account_id}' owes {owed} {unit} on open bills: "
                                  f"{value} cannot be written off")
        source = f"{WRITE_OFF}{write_off_id}"
        settled = await self.allocate(ctx, billing_account_id, source, value, [], source="writeOff")
        lines = [{"bill": s["bill"], "amount": str(s["amount"])} for s in settled]
        await session.execute(update(WriteOff).where(WriteOff.reference == reference).values(settled=lines))
        await ledger.post(session, source_type="WriteOff", source_id=write_off_id, event="writtenOff",
                          currency=unit, description=f"write-off {reference}: {reason.strip()}"[:300],
                          postings=ledger.write_off_postings(value),
                          on=await self.local_day(ctx, billing_account_id))
        row = await self._write_off_row(session, reference)
        assert row is not None
        return {**self._write_off_doc(ctx, row), "replayed": False}

    async def _write_off_row(self, session: AsyncSession, reference: str) -> WriteOff | None:
        return (await session.execute(select(WriteOff).where(WriteOff.reference == reference)
                                      .execution_options(populate_existing=True))).scalars().first()

    def _write_off_replay(self, ctx: Context, row: WriteOff, wanted: tuple[str, Decimal, str, str],
                          ) -> dict[str, Any]:
        if (row.billing_account_id, Decimal(row.amount), row.currency, row.reason) != wanted:
            raise IdempotencyMismatch(f"write-off reference '{row.reference}' was used for another write-off "
                                      f"({row.amount} {row.currency} of billing account '{row.billing_account_id}')")
        return {**self._write_off_doc(ctx, row), "replayed": True}

    @staticmethod
    def _write_off_doc(ctx: Context, row: WriteOff) -> dict[str, Any]:
        return {"id": row.id, "reference": row.reference,
                "href": f"{ctx.base_url}/payments/v1/writeOff/{row.reference}",
                "billingAccount": {"id": row.billing_account_id, "@referredType": "BillingAccount"},
                "amount": _money(Decimal(row.amount), row.currency), "reason": row.reason,
                "settled": [{"bill": s["bill"], "amount": _money(Decimal(s["amount"]), row.currency)}
                            for s in row.settled or []],
                "createdBy": row.created_by, "at": format_datetime(row.at) if row.at else None}

    async def get_write_off(self, ctx: Context, reference: str) -> dict[str, Any]:
        row = await self._write_off_row(ctx.session, reference)
        if row is None:
            raise NotFound(f"no write-off with reference '{reference}'", code="NOT_FOUND")
        return self._write_off_doc(ctx, row)

    # --- reading ------------------------------------------------------------------------------------------------
    async def transitions(self, ctx: Context, payment_id: str) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(Transition).where(Transition.payment_id == payment_id)
                                          .order_by(Transition.id))).scalars().all()
        return [{"from": r.from_state, "to": r.to_state, "source": r.source, "reason": r.reason,
                 "at": format_datetime(r.at)} for r in rows]

    async def bill_position(self, ctx: Context, bill_id: str) -> dict[str, Any]:
        """What was paid of a bill and what remains."""
        row = await ctx.session.get(Receivable, (ctx.principal.tenant_id, bill_id))
        if row is None:
            raise NotFound(f"no issued bill '{bill_id}' is known to payments", code="NOT_FOUND")
        paid = Decimal(await ctx.session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
            Allocation.bill_id == bill_id)) or 0)
        written_off = Decimal(await ctx.session.scalar(select(func.coalesce(func.sum(Allocation.amount), 0)).where(
            Allocation.bill_id == bill_id, Allocation.payment_id.like(f"{WRITE_OFF}%"))) or 0)
        state = "settled" if paid >= row.amount else "partiallyPaid" if paid > 0 else "open"
        if written_off and paid >= row.amount:
            state = "writtenOff" if written_off >= row.amount else "settled"
        return {"bill": {"id": bill_id, "billNo": row.number}, "amount": _money(row.amount, row.currency),
                "paid": _money(paid, row.currency), "remaining": _money(row.amount - paid, row.currency),
                "writtenOff": _money(written_off, row.currency), "state": state}

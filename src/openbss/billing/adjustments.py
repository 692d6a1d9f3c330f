"""Manual one-off charges and adjustments (``POST /billing/v1/charge``; collections' late fees).

A charge names its billing account, an amount (negative: an adjustment, a credit) in the account's currency, a
reason code and a ``reference`` that is unique per tenant: sending the same charge again returns the first one,
sending another one under a used reference is refused (409). It is audited, and billed once: the next bill of the
account computed on or after its day carries it as a line ``manual|<charge id>`` (``oneTimeCharge``, or
``productAlteration`` for a credit), like a bill on demand's preview.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.billing.errors import InvalidBilling
from openbss.billing.models import ManualCharge
from openbss.platform import audit
from openbss.platform.db import utcnow
from openbss.platform.errors import Conflict, NotFound
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import MAX_AMOUNT, is_currency, round_money

#: why an agent (or collections) charges or credits an account by hand
REASON_CODES = ("LATE_FEE", "GOODWILL", "SERVICE_CREDIT", "BILLING_CORRECTION", "EQUIPMENT", "OTHER")


class Accounts(Protocol):
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]: ...


def render(row: ManualCharge) -> dict[str, Any]:
    return {"id": row.id, "billingAccount": {"id": row.billing_account_id, "@referredType": "BillingAccount"},
            "amount": {"unit": row.currency, "value": row.amount}, "reasonCode": row.reason_code,
            "description": row.description, "reference": row.reference, "chargeDate": row.charge_date.isoformat(),
            "createdBy": row.created_by}


async def add_charge(ctx: Context, accounts: Accounts, *, billing_account_id: str, amount: Decimal, currency: str,
                     reason_code: str, description: str, reference: str, now: datetime | None = None,
                     ) -> dict[str, Any]:
    """Record a charge for the account's next bill (idempotent per reference), dated ``now`` (billing's clock)."""
    if not reference or len(reference) > 200:
        raise InvalidBilling("'reference' is mandatory (at most 200 characters): what makes the charge unique")
    if reason_code not in REASON_CODES:
        raise InvalidBilling(f"'reasonCode': '{reason_code}' is not one of {', '.join(REASON_CODES)}")
    if not description or len(description) > 200:
        raise InvalidBilling("'description' is mandatory (at most 200 characters): what the bill line says")
    if not is_currency(currency):
        raise InvalidBilling(f"'amount.unit': '{currency}' is not an ISO 4217 currency")
    if amount == 0:
        raise InvalidBilling("'amount.value' must not be zero")
    if abs(amount) >= MAX_AMOUNT:
        raise InvalidBilling(f"'amount.value' {amount} is too large: at most {MAX_AMOUNT - 1} in absolute value")
    if round_money(amount, currency) != amount:
        raise InvalidBilling(f"'amount.value' {amount} has more decimals than {currency} allows")
    try:
        account = await accounts.get_billing_account(ctx, billing_account_id)
    except NotFound as exc:
        raise InvalidBilling(f"'billingAccount.id': billing account '{billing_account_id}' does not exist") from exc
    if (account.get("currency") or "EUR") != currency:
        raise InvalidBilling(f"'amount.unit' {currency} is not the account's currency {account.get('currency')}")
    tz = ZoneInfo(str((account.get("billCycle") or {}).get("timeZone") or "UTC"))
    charge_id = str(uuid.uuid4())
    inserted = (await ctx.session.execute(pg_insert(ManualCharge).values(
        id=charge_id, billing_account_id=billing_account_id, amount=amount, currency=currency,
        reason_code=reason_code, description=description, reference=reference,
        charge_date=(now or utcnow()).astimezone(tz).date(), created_by=ctx.principal.subject)
        .on_conflict_do_nothing(constraint="uq_billing_manual_charge_reference")
        .returning(ManualCharge.id))).scalar()
    row = (await ctx.session.execute(select(ManualCharge).where(ManualCharge.reference == reference))).scalars().one()
    out = render(row)
    if inserted is None:  # the reference was used: the same charge again, or another one
        if (row.billing_account_id, row.amount, row.currency, row.reason_code) != (
                billing_account_id, amount, currency, reason_code):
            raise Conflict(f"reference '{reference}' was used for another charge ('{row.id}')",
                           code="CHARGE_REFERENCE_REUSED")
        return out
    await audit.record(ctx.session, ctx.principal, resource_type="ManualCharge", resource_id=row.id,
                       action="create", changes=audit.diff(None, {**out, "at": format_datetime(utcnow())}))
    return out


async def charges_until(session: AsyncSession, billing_account_id: str, day: date) -> list[ManualCharge]:
    """The account's manual charges dated on or before ``day`` (the bill's date)."""
    return list((await session.execute(select(ManualCharge).where(
        ManualCharge.billing_account_id == billing_account_id, ManualCharge.charge_date <= day)
        .order_by(ManualCharge.charge_date, ManualCharge.created_at))).scalars())

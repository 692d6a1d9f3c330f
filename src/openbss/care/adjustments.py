"""Bill adjustments made by agents, within their limit, and the supervisors' approvals above it.

An agent corrects an issued bill by a credit note (billing's ``credit_note``, through the ``Bills`` protocol). The
amount an agent may credit on their own is a care setting (``care_adjustment_limit``): a limit for one agent
(their user id) wins over the limits of their roles (the highest of them); an agent without any limit may credit
nothing on their own, and ``admin`` is not limited. Above the limit the adjustment becomes an approval request
(``care_approval``, status ``pending``) that a supervisor (``careconfig:write``), not the requester, approves —
the credit note is issued then, with the supervisor as its author — or rejects. Every step is audited
(``CareApproval``, ``BillAdjustment``) and the approval's record names both identities.

The limit is what an agent may credit on their own **in any 24 hours**, bill credits and top-ups together (in the
limit's currency): each credit made on their own authority is recorded (``care_agent_credit``) and one that would
take the last 24 hours' total above the limit becomes an approval request, so that a credit cannot be split into
pieces each below the limit. An agent's credits are counted under a lock on the agent (two at once cannot both
pass on the same headroom).

A prepaid top-up by an agent (``request_top_up``) is a credit too, under the same limit and the same approvals:
within the limit (and in the line's currency) the line is credited at once, above it an approval request of kind
``topUp`` names the line; approving it credits the line then — once: the request is locked and decided in the
transaction that credits.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select, text

from openbss.care.errors import CareNotFound, InvalidAdjustment
from openbss.care.models import AdjustmentLimit, AgentCredit, CareApproval
from openbss.platform import audit
from openbss.platform.auth import WRITE
from openbss.platform.db import utcnow
from openbss.platform.errors import Conflict, Forbidden
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import MINOR_UNITS, round_money

if TYPE_CHECKING:
    from openbss.care.topup import PrepaidTopUp

CONFIG_SCOPE = "careconfig"
MAX_REASON = 500
#: the window an agent's limit applies to (what they credited on their own in it counts)
LIMIT_WINDOW = timedelta(hours=24)


class Bills(Protocol):
    """What care asks billing (``billing.service.BillingService``)."""

    async def get_bill(self, ctx: Context, bill_id: str) -> dict[str, Any]: ...

    async def credit_note(self, ctx: Context, bill_id: str, *, amount: Decimal | None = None, reason: str,
                          ) -> dict[str, Any]: ...


def parse_amount(value: Any) -> Decimal:
    """A positive money amount given as a string or a number (never a float's binary approximation)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidAdjustment("'amount' must be a decimal number such as \"12.50\"")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidAdjustment(f"'amount': '{value}' is not a decimal number") from exc
    if not amount.is_finite() or amount <= 0:
        raise InvalidAdjustment("'amount' must be positive")
    if amount != amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN):
        raise InvalidAdjustment("'amount' has more than 4 decimals")
    return amount


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"value": str(amount), "unit": currency}


def render_limit(row: AdjustmentLimit) -> dict[str, Any]:
    return {"id": row.id, "appliesTo": {"kind": row.kind, "id": row.principal},
            "amount": _money(row.amount, row.currency)}


def render_approval(row: CareApproval, base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "href": f"{base_url}/api/care/v1/approval/{row.id}", "kind": row.kind, "status": row.status,
        "amount": _money(row.amount, row.currency), "reason": row.reason,
        "requestedBy": row.requested_by, "requestedAt": format_datetime(row.requested_at),
        "requesterLimit": _money(row.requester_limit, row.currency) if row.requester_limit is not None else None,
    }
    if row.bill_id:
        out["bill"] = {"id": row.bill_id,
                       "href": f"{base_url}/tmf-api/customerBillManagement/v4/customerBill/{row.bill_id}"}
    if row.subscriber:
        out["subscriber"] = row.subscriber
    if row.customer_id:
        out["customer"] = {"id": row.customer_id}
    if row.decided_by:
        out.update({"decidedBy": row.decided_by, "decidedAt": format_datetime(row.decided_at)
                    if row.decided_at else None, "decisionReason": row.decision_reason})
    if row.credit_note_id:
        out["creditNote"] = {"id": row.credit_note_id,
                             "href": f"{base_url}/tmf-api/customerBillManagement/v4/customerBill/{row.credit_note_id}"}
    return out


class Adjustments:
    """Agents' limits, bill adjustments and supervisors' approvals."""

    def __init__(self, bills: Bills, topups: PrepaidTopUp | None = None) -> None:
        self.bills = bills
        self.topups = topups

    # --- limits ----------------------------------------------------------------------------------------------
    async def limits(self, ctx: Context) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(AdjustmentLimit).order_by(AdjustmentLimit.kind,
                                                                           AdjustmentLimit.principal))).scalars()
        return [render_limit(r) for r in rows]

    async def set_limit(self, ctx: Context, kind: str, principal: str, amount: Any, currency: str,
                        ) -> dict[str, Any]:
        """Set (or replace) the limit of a role or of one agent (supervisors)."""
        if kind not in ("role", "agent"):
            raise InvalidAdjustment("'appliesTo.kind' must be 'role' or 'agent'", code="INVALID_LIMIT")
        if not principal.strip() or len(principal) > 200:
            raise InvalidAdjustment("'appliesTo.id' must be a role name or an agent's user id", code="INVALID_LIMIT")
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise InvalidAdjustment("'amount.unit' must be an ISO 4217 currency code such as EUR",
                                    code="INVALID_LIMIT")
        value = Decimal(0) if amount in (0, "0") else parse_amount(amount)
        row = (await ctx.session.execute(select(AdjustmentLimit).where(
            AdjustmentLimit.kind == kind, AdjustmentLimit.principal == principal).with_for_update())).scalars().first()
        before = render_limit(row) if row is not None else None
        if row is None:
            row = AdjustmentLimit(id=str(uuid.uuid4()), kind=kind, principal=principal, amount=value,
                                  currency=currency)
            ctx.session.add(row)
        else:
            row.amount, row.currency = value, currency
        await ctx.session.flush()
        out = render_limit(row)
        await audit.record(ctx.session, ctx.principal, resource_type="AdjustmentLimit", resource_id=row.id,
                           action="update" if before else "create", changes={"limit": {"old": before, "new": out}})
        return out

    async def limit_of(self, ctx: Context) -> tuple[Decimal, str] | None:
        """The caller's own limit (amount, currency); None: not limited (admin). No limit configured: 0."""
        p = ctx.principal
        if "admin" in p.roles:
            return None
        mine = (await ctx.session.execute(select(AdjustmentLimit).where(
            AdjustmentLimit.kind == "agent", AdjustmentLimit.principal == p.subject))).scalars().first()
        if mine is not None:
            return mine.amount, mine.currency
        rows = list((await ctx.session.execute(select(AdjustmentLimit).where(
            AdjustmentLimit.kind == "role", AdjustmentLimit.principal.in_(list(p.roles))))).scalars())
        if not rows:
            return Decimal(0), ""
        best = max(rows, key=lambda r: r.amount)
        return best.amount, best.currency

    async def used(self, ctx: Context, currency: str, *, lock: bool = False) -> Decimal:
        """What the caller credited on their own authority in the last ``LIMIT_WINDOW``, in ``currency``; with
        ``lock``, under a transaction lock on the caller (held until the credit is recorded)."""
        agent = ctx.principal.subject
        if lock:
            await ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                      {"k": f"care-agent-credit:{ctx.principal.tenant_id}:{agent}"})
        total = await ctx.session.scalar(select(func.coalesce(func.sum(AgentCredit.amount), 0)).where(
            AgentCredit.agent == agent, AgentCredit.currency == currency,
            AgentCredit.created_at > utcnow() - LIMIT_WINDOW))
        return Decimal(total or 0)

    async def _within_limit(self, ctx: Context, limit: tuple[Decimal, str] | None, amount: Decimal,
                            currency: str) -> bool:
        """Whether the caller may credit ``amount`` on their own: within their limit, with what they credited in
        the last 24 hours (counted under the lock on the caller)."""
        if limit is None:
            return True
        if not self._within(limit, amount, currency):
            return False
        return self._within(limit, await self.used(ctx, currency, lock=True) + amount, currency)

    async def _record_credit(self, ctx: Context, kind: str, reference: str, amount: Decimal, currency: str) -> None:
        ctx.session.add(AgentCredit(id=str(uuid.uuid4()), agent=ctx.principal.subject, kind=kind,
                                    reference=reference, amount=amount, currency=currency, created_at=utcnow()))
        await ctx.session.flush()

    async def me(self, ctx: Context) -> dict[str, Any]:
        p = ctx.principal
        limit = await self.limit_of(ctx)
        used = await self.used(ctx, limit[1]) if limit is not None and limit[1] else Decimal(0)
        return {"id": p.subject, "roles": list(p.roles), "tenant": p.tenant_id,
                "adjustmentLimit": None if limit is None else _money(limit[0], limit[1] or "EUR"),
                "adjustmentUsed": None if limit is None else _money(used, limit[1] or "EUR"),
                "canApprove": p.can(CONFIG_SCOPE, WRITE),
                "permissions": sorted(p.permissions)}

    # --- adjustments -----------------------------------------------------------------------------------------
    async def adjust_bill(self, ctx: Context, bill_id: str, amount: Decimal, reason: str,
                          customer_id: str | None) -> tuple[str, dict[str, Any]]:
        """Credit ``amount`` (tax included) on an issued bill: at once within the caller's limit (``applied``, the
        credit note), else an approval request (``pendingApproval``)."""
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidAdjustment(f"'reason' must be given (at most {MAX_REASON} characters)")
        bill = await self.bills.get_bill(ctx, bill_id)
        currency = str((bill.get("taxIncludedAmount") or {}).get("unit") or "")
        if currency in MINOR_UNITS and round_money(amount, currency) != amount:
            # the credit note would round it: the limit checked, approved and audited would not be what is credited
            raise InvalidAdjustment(f"'amount': {amount} has more decimals than {currency} allows")
        limit = await self.limit_of(ctx)
        if await self._within_limit(ctx, limit, amount, currency):
            note = await self.bills.credit_note(ctx, bill_id, amount=amount, reason=reason)
            if limit is not None:
                await self._record_credit(ctx, "billAdjustment", str(note["id"]), amount, currency)
            await audit.record(ctx.session, ctx.principal, resource_type="BillAdjustment", resource_id=note["id"],
                               action="create", changes={"adjustment": {"old": None, "new": {
                                   "bill": bill_id, "amount": str(amount), "currency": currency, "reason": reason,
                                   "agent": ctx.principal.subject, "customer": customer_id}}})
            return "applied", note
        return "pendingApproval", await self._request(ctx, CareApproval(
            kind="billAdjustment", bill_id=bill_id, customer_id=customer_id, amount=amount, currency=currency,
            reason=reason), limit)

    @staticmethod
    def _within(limit: tuple[Decimal, str] | None, amount: Decimal, currency: str) -> bool:
        return limit is None or (limit[0] > 0 and limit[1] == currency and amount <= limit[0])

    async def _request(self, ctx: Context, row: CareApproval, limit: tuple[Decimal, str] | None) -> dict[str, Any]:
        row.id, row.status = str(uuid.uuid4()), "pending"
        row.requested_by, row.requested_at = ctx.principal.subject, utcnow()
        row.requester_limit = None if limit is None else limit[0]
        ctx.session.add(row)
        await ctx.session.flush()
        out = render_approval(row, ctx.base_url)
        await audit.record(ctx.session, ctx.principal, resource_type="CareApproval", resource_id=row.id,
                           action="create", changes={"approval": {"old": None, "new": out}})
        return out

    # --- top-ups ---------------------------------------------------------------------------------------------
    async def request_top_up(self, ctx: Context, subscriber: str, amount: Decimal, reason: str | None,
                             customer_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """Top up a prepaid line: at once within the caller's limit (``applied``, the top-up), else an approval
        request (``pendingApproval``) a supervisor decides."""
        if self.topups is None:
            raise InvalidAdjustment("top-ups are not available", code="TOPUP_UNAVAILABLE")
        reason = (reason or "").strip()
        if len(reason) > MAX_REASON:
            raise InvalidAdjustment(f"'reason' is at most {MAX_REASON} characters")
        account = await self.topups.line(ctx, subscriber, amount)  # refuses a postpaid line, a bad amount
        currency = str(account.get("currency") or "EUR")
        limit = await self.limit_of(ctx)
        if await self._within_limit(ctx, limit, amount, currency):
            done = await self.topups.top_up(ctx, subscriber, amount, reason or None)
            if limit is not None:
                await self._record_credit(ctx, "topUp", subscriber, amount, currency)
            return "applied", done
        return "pendingApproval", await self._request(ctx, CareApproval(
            kind="topUp", subscriber=subscriber, customer_id=customer_id, amount=amount, currency=currency,
            reason=reason or "agent top-up"), limit)

    # --- approvals -------------------------------------------------------------------------------------------
    async def approvals(self, ctx: Context, status: str | None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(CareApproval).order_by(CareApproval.requested_at.desc(), CareApproval.id).limit(limit)
        if status:
            q = q.where(CareApproval.status.in_(status.split(",")))
        if not ctx.principal.can(CONFIG_SCOPE, WRITE):  # an agent sees their own requests
            q = q.where(CareApproval.requested_by == ctx.principal.subject)
        return [render_approval(r, ctx.base_url) for r in (await ctx.session.execute(q)).scalars()]

    async def approval(self, ctx: Context, approval_id: str) -> dict[str, Any]:
        row = await ctx.session.get(CareApproval, approval_id)
        if row is None or (not ctx.principal.can(CONFIG_SCOPE, WRITE)
                           and row.requested_by != ctx.principal.subject):
            raise CareNotFound(f"approval '{approval_id}' not found")
        return render_approval(row, ctx.base_url)

    async def _pending(self, ctx: Context, approval_id: str) -> CareApproval:
        if not ctx.principal.can(CONFIG_SCOPE, WRITE):
            raise Forbidden("only a supervisor (careconfig:write) decides an approval", code="SUPERVISOR_ONLY")
        row = await ctx.session.get(CareApproval, approval_id, with_for_update=True)
        if row is None:
            raise CareNotFound(f"approval '{approval_id}' not found")
        if row.status != "pending":
            raise Conflict(f"approval '{approval_id}' is already {row.status}", code="APPROVAL_DECIDED")
        if row.requested_by == ctx.principal.subject:
            raise Forbidden("an approval is decided by another person than its requester", code="SELF_APPROVAL")
        return row

    async def decide(self, ctx: Context, approval_id: str, approve: bool, reason: str | None,
                     now: datetime | None = None) -> dict[str, Any]:
        row = await self._pending(ctx, approval_id)
        before = render_approval(row, ctx.base_url)
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidAdjustment(f"'reason' is at most {MAX_REASON} characters")
        top_up: dict[str, Any] | None = None
        if approve and row.kind == "topUp":
            if self.topups is None or row.subscriber is None:
                raise InvalidAdjustment("top-ups are not available", code="TOPUP_UNAVAILABLE")
            top_up = await self.topups.top_up(ctx, row.subscriber, row.amount, row.reason,
                                              requested_by=row.requested_by, approval_id=row.id)
        elif approve:
            assert row.bill_id is not None
            note = await self.bills.credit_note(ctx, row.bill_id, amount=row.amount,
                                                reason=f"{row.reason} (approved by {ctx.principal.subject})")
            row.credit_note_id = str(note["id"])
        row.status = "approved" if approve else "rejected"
        row.decided_by, row.decided_at, row.decision_reason = ctx.principal.subject, now or utcnow(), reason
        await ctx.session.flush()
        out = render_approval(row, ctx.base_url)
        await audit.record(ctx.session, ctx.principal, resource_type="CareApproval", resource_id=row.id,
                           action="approve" if approve else "reject",
                           changes={"status": {"old": "pending", "new": row.status},
                                    "requestedBy": {"old": before["requestedBy"], "new": row.requested_by},
                                    "decidedBy": {"old": None, "new": row.decided_by},
                                    "creditNote": {"old": None, "new": row.credit_note_id}})
        if top_up is not None:
            out["topUp"] = top_up
        return out


__all__ = ["Adjustments", "Bills", "parse_amount", "render_approval", "render_limit"]

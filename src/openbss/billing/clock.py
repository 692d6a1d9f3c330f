"""Test clocks: a sandbox tenant's frozen "now" for billing, moved forward by advances that bill what fell due.

Like a payment provider's test clock, a clock lets an operator's team rehearse months of subscriptions, changes and
bills in minutes through the API: ``create`` freezes billing's time for the tenant (``BillingService.now``: changes
effective ``immediate``, manual charges, runs and bills on demand without an "as of" use it), ``advance`` moves it
forward and, in the same transaction, bills every account for each of its cycle dates passed on the way (finalizing
the bills whose grace period is over by the new time). A bill is made once per account and cycle date (the bills'
unique constraints): an advance to a time already reached bills nothing more. Production tenants refuse clocks.

Each change of the clock is announced (``TestClockChangeEvent``, in the same transaction): online charging follows
it — the renewals of allowances and the prepaid lines' periodic fees of every period the clock passed, and from
then on at the clock's time (``charging.clock``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from openbss.billing import events
from openbss.billing.errors import InvalidBilling
from openbss.billing.models import TestClock
from openbss.billing.service import BillingService, RunReport, cycle_of
from openbss.platform.errors import Conflict, DomainError, NotFound
from openbss.platform.tenancy import Tenant
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.cycles import last_cycle_date, next_cycle_date

#: how many cycle dates one advance may pass per account (ten years of monthly bills)
MAX_CYCLES = 120


def parse_time(value: Any, name: str = "frozenTime") -> datetime:
    if not isinstance(value, str):
        raise InvalidBilling(f"'{name}' is mandatory: an instant (e.g. 2027-01-01T00:00:00Z)")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidBilling(f"'{name}': {value!r} is not an instant (e.g. 2027-01-01T00:00:00Z)") from exc
    if moment.tzinfo is None:
        raise InvalidBilling(f"'{name}': {value!r} has no time zone offset (e.g. 2027-01-01T00:00:00Z)")
    return moment


def render(clock: TestClock) -> dict[str, Any]:
    return {"frozenTime": format_datetime(clock.now), "status": "ready"}


async def _sandbox(ctx: Context) -> None:
    tenant = await ctx.session.get(Tenant, ctx.principal.tenant_id)
    if tenant is None or not tenant.sandbox:
        raise DomainError(f"tenant '{ctx.principal.tenant_id}' is a production tenant: test clocks are for sandbox "
                          "tenants only", code="NOT_A_SANDBOX", status=409)


async def get(ctx: Context) -> dict[str, Any]:
    clock = await ctx.session.get(TestClock, ctx.principal.tenant_id)
    if clock is None:
        raise NotFound(f"tenant '{ctx.principal.tenant_id}' has no test clock", code="NOT_FOUND")
    return render(clock)


async def create(ctx: Context, frozen: datetime) -> dict[str, Any]:
    """Freeze billing's time of the (sandbox) tenant at ``frozen``; nothing is billed."""
    await _sandbox(ctx)
    if await ctx.session.get(TestClock, ctx.principal.tenant_id, with_for_update=True) is not None:
        raise Conflict(f"tenant '{ctx.principal.tenant_id}' has a test clock: advance it, or delete it first",
                       code="CLOCK_EXISTS")
    clock = TestClock(tenant_id=ctx.principal.tenant_id, now=frozen)
    ctx.session.add(clock)
    try:
        async with ctx.session.begin_nested():
            await ctx.session.flush()
    except IntegrityError as exc:  # created concurrently
        raise Conflict(f"tenant '{ctx.principal.tenant_id}' has a test clock", code="CLOCK_EXISTS") from exc
    await events.clock_changed(ctx.session, ctx.principal.tenant_id, format_datetime(frozen))
    return render(clock)


async def remove(ctx: Context) -> None:
    """Back to real time (what the clock billed stays)."""
    await _sandbox(ctx)
    done = await ctx.session.execute(delete(TestClock).where(TestClock.tenant_id == ctx.principal.tenant_id))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"tenant '{ctx.principal.tenant_id}' has no test clock", code="NOT_FOUND")
    await events.clock_changed(ctx.session, ctx.principal.tenant_id, None)


async def advance(ctx: Context, billing: BillingService, to: datetime) -> dict[str, Any]:
    """Move the clock forward to ``to`` and bill each account for every cycle date up to it (in its time zone),
    each account in a savepoint (one that fails is parked with its reason, as in a run)."""
    await _sandbox(ctx)
    clock = await ctx.session.get(TestClock, ctx.principal.tenant_id, with_for_update=True)
    if clock is None:
        raise NotFound(f"tenant '{ctx.principal.tenant_id}' has no test clock: create one first", code="NOT_FOUND")
    if to < clock.now:
        raise Conflict(f"a test clock only moves forward: 'frozenTime' {format_datetime(to)} is before the clock's "
                       f"{format_datetime(clock.now)}", code="CLOCK_BACKWARDS")
    before = clock.now
    clock.now = to
    await ctx.session.flush()
    await events.clock_changed(ctx.session, ctx.principal.tenant_id, format_datetime(to))
    settings = await billing.tenant_settings(ctx)
    report = RunReport(None)
    bills: list[dict[str, Any]] = []
    after = ""
    while page := await billing.accounts.billing_account_ids(ctx, after=after):
        after = page[-1]
        for account_id in page:
            report.accounts += 1
            try:
                account = await billing.accounts.get_billing_account(ctx, account_id)
                day, months, tz = cycle_of(account)
                today = to.astimezone(tz).date()
                # from the cycle date a draft of an earlier advance may still wait on (its grace period)
                cd = last_cycle_date(before.astimezone(tz).date() - timedelta(days=settings.grace_days), day, months)
                dates: list[date] = []
                while cd <= today:
                    if len(dates) == MAX_CYCLES:
                        raise InvalidBilling(f"more than {MAX_CYCLES} cycle dates in one advance: advance in steps")
                    dates.append(cd)
                    cd = next_cycle_date(cd, day, months)
                for cd in dates:
                    async with ctx.session.begin_nested():
                        bill = await billing.bill_account(
                            ctx, account_id, cd, finalize=today >= cd + timedelta(days=settings.grace_days))
                    if bill is not None:
                        bills.append(bill)
            except IntegrityError:  # billed concurrently (a run): what it wrote stands
                report.skipped += 1
            except (DomainError, ValueError) as exc:
                report.failed[account_id] = str(exc)
    for bill in bills:
        report.billed += 1
        if bill.get("state") == "validated":
            report.finalized += 1
        amount = bill["taxIncludedAmount"]
        report.totals[amount["unit"]] = report.totals.get(amount["unit"], Decimal(0)) + Decimal(str(amount["value"]))
    return {**render(clock), "previousTime": format_datetime(before), **{
        k: v for k, v in report.as_dict().items() if k != "asOf"},
        "customerBill": [{"id": b["id"], "href": b.get("href"), "billDate": b.get("billDate"),
                          "state": b.get("state")} for b in bills]}

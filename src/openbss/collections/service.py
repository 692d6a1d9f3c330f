"""Collections: the dunning scheduler and the rules of its resources.

**Evaluation** (``evaluate``, one transaction per tenant, set-based: no Python loop over accounts). One query
selects what is overdue (payments' receivables past their due date less their allocations, ``Overdue``) and

1. opens an episode for every overdue account without an open one (``INSERT … SELECT``), with the policy chosen
   by explicit assignment, then the account's category, then its customer's segment, then the tenant's default
   (the policy's current version is frozen on the episode);
2. refreshes the overdue amount of the open episodes;
3. closes the open episodes whose account has nothing overdue any more, and issues the resume orders of what the
   episode suspended (one order, idempotency key ``resume:<episode>``).

**Claim** (``claim``): the due steps — the episode's next step, once its days past due and its minimum amount (per
currency) are reached, the episode not paused by a promise or a plan, the account not excluded, no step of the
episode still claimed — are locked with ``FOR UPDATE SKIP LOCKED`` and their execution rows inserted in the same
statement (``INSERT … ON CONFLICT DO NOTHING`` on ``UNIQUE (episode, step)``): a step is claimed once, whichever
scheduler gets there first. The claim commits before anything is done.

**Action** (``act``): one execution at a time, in its own transaction(s). What stays inside the database (a
reminder queued through the platform messaging, product orders, a charge, an agency file) is written in the same
transaction that marks the execution ``done``. A payment retry (the gateway is a network call) is asked outside
any transaction with the execution id as the Idempotency-Key, then its result is recorded. An execution left
``claimed`` by a scheduler that died is taken again once its lease expired (``resume_stale``), and redone with the
same idempotency keys: each action happens once.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import CursorResult, Select, and_, case, delete, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.charging.service import BARRABLE_SERVICES
from openbss.collections import events
from openbss.collections.errors import CollectionsConflict, InvalidCollections
from openbss.collections.models import (
    DunningPolicy,
    Episode,
    Exclusion,
    PaymentPlan,
    PolicyAssignment,
    PolicyVersion,
    Promise,
    StepExecution,
)
from openbss.platform import messaging
from openbss.platform.auth import Principal
from openbss.platform.db import Database, utcnow
from openbss.platform.errors import DomainError, NotFound
from openbss.platform.events.outbox import emit, flush_events
from openbss.platform.storage import ObjectExists, ObjectStore
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, system_context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import is_currency, round_money, to_decimal
from openbss.settings import Settings

log = logging.getLogger(__name__)

ACTIONS = ("reminder", "paymentRetry", "lateFee", "restrict", "suspend", "terminate", "agencyHandover", "writeOff")
#: gateway decline codes after which retrying the same method is pointless
HARD_DECLINES = frozenset({"card_declined", "do_not_honor", "stolen_card", "lost_card", "expired_card",
                           "invalid_account", "pickup_card", "fraudulent"})
EXCLUSION_REASONS = ("vip", "dispute", "deceased", "regulatory")
LATE_FEE_REASON = "LATE_FEE"
#: what a restrict step bars unless it names its ``barredServices``: outgoing calls and messages, and data (incoming
#: calls and messages kept)
DEFAULT_BARRED = ("outgoingVoice", "outgoingSms", "outgoingMms", "data")
#: the product characteristic of a partial bar (ordering's modify item; the inventory shows it)
BARRING = "barring"


# --- what collections asks other domains (implemented by them, injected by the composition root) --------------
class Overdue(Protocol):
    """Payments' view of what is owed, as SQL (``payments.overdue``)."""

    def overdue_select(self, as_of: date, account_id: str | None = None) -> Select[Any]: ...

    def received_select(self, account_id: str | None = None) -> Select[Any]: ...


class AccountProfiles(Protocol):
    """``(billing_account_id, segment, category)`` of the bound tenant's billing accounts, as SQL."""

    def profile_select(self) -> Select[Any]: ...


class BillingAccounts(Protocol):
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]: ...

    async def get_billing_accounts(self, ctx: Context, account_ids: list[str]) -> dict[str, dict[str, Any]]: ...


class Products(Protocol):
    async def products_billed_to(self, ctx: Context, billing_account_id: str) -> list[dict[str, Any]]: ...


class Orders(Protocol):
    async def place(self, ctx: Context, doc: dict[str, Any], *, idempotency_key: str | None = None
                    ) -> dict[str, Any]: ...


class PaymentOutcome(Protocol):
    resource: dict[str, Any]


class Payments(Protocol):
    async def pay(self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None,
                  *, base_url: str | None = None) -> Any: ...


class Charges(Protocol):
    """Billing's manual one-off charges (a late fee is one, on the next bill)."""

    async def add_charge(self, ctx: Context, *, billing_account_id: str, amount: Decimal, currency: str,
                         reason_code: str, description: str, reference: str) -> dict[str, Any]: ...


class WriteOffs(Protocol):
    """Payments' write-off of a debt (posted to the ledger), idempotent per reference."""

    async def write_off(self, ctx: Context, *, billing_account_id: str, amount: Decimal, currency: str, reason: str,
                        reference: str) -> dict[str, Any]: ...


@dataclass
class Claimed:
    execution_id: str
    tenant_id: str
    episode_id: str
    billing_account_id: str
    step: int
    action: str
    definition: dict[str, Any]
    amount: Decimal
    currency: str
    days_past_due: int
    #: the day the step was claimed for (the scheduler's business date)
    as_of: date | None = None


@dataclass
class Report:
    opened: int = 0
    refreshed: int = 0
    closed: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    by_action: dict[str, int] = field(default_factory=dict)

    def add(self, other: Report) -> None:
        for k, v in vars(other).items():
            if isinstance(v, int):
                setattr(self, k, getattr(self, k) + v)
        for a, n in other.by_action.items():
            self.by_action[a] = self.by_action.get(a, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _barred(product: dict[str, Any]) -> bool:
    """Whether a product carries a partial bar (a non-empty ``barring`` characteristic)."""
    return any(c.get("name") == BARRING and c.get("value") for c in product.get("productCharacteristic") or [])


def _money(value: Decimal, unit: str) -> dict[str, Any]:
    return {"unit": unit, "value": value}


def _ref(doc: dict[str, Any] | None) -> str | None:
    return str(doc["id"]) if isinstance(doc, dict) and doc.get("id") else None


def _hhmm(value: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidCollections(f"'{where}': '{value}' is not a time (HH:MM)") from exc


def in_quiet_hours(quiet: dict[str, Any] | None, now: datetime, default_tz: str | None) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC), or None outside them."""
    if not quiet:
        return None
    try:
        tz = ZoneInfo(str(quiet.get("timeZone") or default_tz or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    start, end = time.fromisoformat(quiet["start"]), time.fromisoformat(quiet["end"])
    t = local.time()
    inside = (start <= t < end) if start <= end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if (start <= end or t < end) else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def validate_steps(steps: list[dict[str, Any]], *, write_off: bool, late_fee: bool = True) -> None:
    """The rules of a policy's steps the specification cannot say."""
    if not steps:
        raise InvalidCollections("'dunningStep' must hold at least one step")
    last_days = -1
    for i, s in enumerate(steps):
        where = f"dunningStep[{i}]"
        action = s.get("action")
        days = s.get("daysPastDue", 0)
        if not isinstance(days, int) or days < 0:
            raise InvalidCollections(f"'{where}.daysPastDue' must be a whole number of days ≥ 0")
        if days < last_days:
            raise InvalidCollections(f"'{where}.daysPastDue' ({days}) is before the previous step's ({last_days}): "
                                     "steps are in order")
        last_days = days
        for j, m in enumerate(s.get("minimumAmount") or []):
            _check_money(m, f"{where}.minimumAmount[{j}]", allow_zero=True)
        if action == "reminder":
            channels = s.get("channel") or []
            if not channels:
                raise InvalidCollections(f"'{where}.channel': a reminder names sms and/or email")
            template = s.get("template") or {}
            if not template or not all(isinstance(v, str) and v.strip() for v in template.values()):
                raise InvalidCollections(f"'{where}.template': a reminder has a text per language "
                                         "({\"en\": \"...\"})")
            for v in template.values():
                try:
                    v.format(amount="", currency="", daysPastDue="", account="")
                except (KeyError, IndexError, ValueError) as exc:
                    raise InvalidCollections(f"'{where}.template': unknown placeholder {exc} (known: {{amount}}, "
                                             "{currency}, {daysPastDue}, {account})") from exc
        elif s.get("channel") or s.get("template"):
            raise InvalidCollections(f"'{where}': only a reminder has a channel and a template")
        if s.get("quietHours") is not None:
            q = s["quietHours"]
            _hhmm(q.get("start"), f"{where}.quietHours.start")
            _hhmm(q.get("end"), f"{where}.quietHours.end")
            if q.get("timeZone"):
                try:
                    ZoneInfo(str(q["timeZone"]))
                except (ZoneInfoNotFoundError, ValueError) as exc:
                    raise InvalidCollections(f"'{where}.quietHours.timeZone': '{q['timeZone']}' is not a time "
                                             "zone") from exc
        if action == "lateFee":
            if not late_fee:
                raise InvalidCollections(f"'{where}': late fees are not available in this installation (billing "
                                         "has no manual charges)")
            if not s.get("fee"):
                raise InvalidCollections(f"'{where}.fee': a late fee step names its amount ({{unit, value}})")
            _check_money(s["fee"], f"{where}.fee")
        elif s.get("fee") is not None:
            raise InvalidCollections(f"'{where}.fee': only a lateFee step has a fee")
        if s.get("barredServices") is not None:
            barred = s["barredServices"]
            if action != "restrict":
                raise InvalidCollections(f"'{where}.barredServices': only a restrict step bars services")
            if not isinstance(barred, list) or not barred:
                raise InvalidCollections(f"'{where}.barredServices': the services to bar (at least one)")
            unknown = sorted(set(barred) - set(BARRABLE_SERVICES))
            if unknown:
                raise InvalidCollections(f"'{where}.barredServices': unknown service(s) {', '.join(unknown)} "
                                         f"(known: {', '.join(BARRABLE_SERVICES)})")
        if action == "writeOff" and not write_off:
            raise InvalidCollections(f"'{where}': write-off is not available in this installation (payments has "
                                     "no write-off)")


def _check_money(m: Any, where: str, *, allow_zero: bool = False) -> tuple[Decimal, str]:
    if not isinstance(m, dict) or not is_currency(m.get("unit")):
        raise InvalidCollections(f"'{where}.unit' must be an ISO 4217 currency")
    try:
        value = to_decimal(m.get("value"))
    except ValueError as exc:
        raise InvalidCollections(f"'{where}.value': {exc}") from exc
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidCollections(f"'{where}.value' must be positive, got {value}")
    if round_money(value, str(m["unit"])) != value:
        raise InvalidCollections(f"'{where}.value' {value} has more decimals than {m['unit']} allows")
    return value, str(m["unit"])


# --- resources --------------------------------------------------------------------------------------------------
class PolicyService(ResourceService):
    """``dunningPolicy``: create and change write a new version of the steps; running episodes keep theirs."""

    write_off_available: bool = False
    late_fee_available: bool = False
    accounts: BillingAccounts | None = None

    async def _columns(self, ctx: Context, doc: dict[str, Any], policy_id: str) -> dict[str, Any]:
        validate_steps(doc.get("dunningStep") or [], write_off=self.write_off_available,
                       late_fee=self.late_fee_available)
        if doc.get("isDefault") and (doc.get("segment") or doc.get("customerCategory")):
            raise InvalidCollections("a default policy applies to every account: no 'segment' or "
                                     "'customerCategory'")
        for i, ba in enumerate(doc.get("billingAccount") or []):
            assert self.accounts is not None
            try:
                await self.accounts.get_billing_account(ctx, str(ba["id"]))
            except NotFound as exc:
                raise InvalidCollections(f"'billingAccount[{i}].id': billing account '{ba['id']}' does not "
                                         "exist") from exc
        return {"segment": doc.get("segment"), "category": doc.get("customerCategory"),
                "is_default": bool(doc.get("isDefault")), "active": doc.get("lifecycleStatus", "active") == "active"}

    async def _assign(self, ctx: Context, policy_id: str, doc: dict[str, Any]) -> None:
        await ctx.session.execute(delete(PolicyAssignment).where(
            PolicyAssignment.policy_id == policy_id))
        for ba in doc.get("billingAccount") or []:
            await ctx.session.execute(pg_insert(PolicyAssignment).values(
                billing_account_id=str(ba["id"]), policy_id=policy_id).on_conflict_do_update(
                index_elements=["tenant_id", "billing_account_id"], set_={"policy_id": policy_id}))

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        policy_id = str(uuid.uuid4())
        columns = await self._columns(ctx, doc, policy_id)
        doc.update({"id": policy_id, "@type": "DunningPolicy", "version": 1,
                    "lifecycleStatus": doc.get("lifecycleStatus") or "active",
                    "lastUpdate": format_datetime(utcnow())})
        if columns["is_default"]:
            await self._single_default(ctx, policy_id)
        rendered = await self.record(ctx, doc, columns=columns)
        ctx.session.add(PolicyVersion(policy_id=policy_id, version=1, steps=doc["dunningStep"]))
        await self._assign(ctx, policy_id, doc)
        await ctx.session.flush()
        return rendered

    async def _single_default(self, ctx: Context, policy_id: str) -> None:
        other = await ctx.session.scalar(select(DunningPolicy.id).where(
            DunningPolicy.is_default, DunningPolicy.active, DunningPolicy.id != policy_id))
        if other:
            raise CollectionsConflict(f"policy '{other}' is already the default: change it first")

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if "version" in changes:
            raise InvalidCollections("'version' is set by the server (every change of the steps raises it)")
        before = await self.get(ctx, resource_id)
        new_version = int(before.get("version") or 1) + (1 if "dunningStep" in changes else 0)
        rendered = await super().patch(ctx, resource_id, changes)
        columns = await self._columns(ctx, rendered, resource_id)
        if columns["is_default"]:
            await self._single_default(ctx, resource_id)
        await ctx.session.execute(update(DunningPolicy).where(DunningPolicy.id == resource_id).values(
            version=new_version, **columns))
        if new_version != before.get("version"):
            ctx.session.add(PolicyVersion(policy_id=resource_id, version=new_version, steps=rendered["dunningStep"]))
        if "billingAccount" in changes:
            await self._assign(ctx, resource_id, rendered)
        await ctx.session.flush()
        return rendered


class PolicyRules(ResourceHooks):
    """The server sets ``version`` (raised by a change of the steps) and ``lastUpdate``."""

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        merged["version"] = int(current.get("version") or 1) + (1 if "dunningStep" in changes else 0)
        merged["lastUpdate"] = format_datetime(utcnow())


class EpisodeService(ResourceService):
    """``dunningEpisode`` (read only): the document with its steps taken (the executions) and planned (the
    version's steps not taken yet)."""

    async def _augment(self, ctx: Context, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [d["id"] for d in docs]
        if not ids:
            return docs
        rows = (await ctx.session.execute(
            select(Episode.id, Episode.state, Episode.overdue_amount, Episode.currency, Episode.next_step,
                   Episode.paused_until, Episode.closed_at, Episode.close_reason, PolicyVersion.steps)
            .join(PolicyVersion, and_(PolicyVersion.policy_id == Episode.policy_id,
                                      PolicyVersion.version == Episode.policy_version))
            .where(Episode.id.in_(ids)))).all()
        execs: dict[str, list[StepExecution]] = {}
        for ex in (await ctx.session.execute(select(StepExecution).where(StepExecution.episode_id.in_(ids))
                                             .order_by(StepExecution.step))).scalars():
            execs.setdefault(ex.episode_id, []).append(ex)
        by_id = {r[0]: r for r in rows}
        for d in docs:
            r = by_id.get(d["id"])
            if r is None:
                continue
            _, state, amount, currency, next_step, paused, closed_at, reason, steps = r
            taken = []
            for ex in execs.get(d["id"], []):
                item: dict[str, Any] = {"step": ex.step, "name": (steps[ex.step] if ex.step < len(steps) else {})
                                        .get("name"), "action": ex.action, "state": ex.state,
                                        "executionDate": format_datetime(ex.finished_at or ex.claimed_at)}
                if ex.reason:
                    item["reason"] = ex.reason
                if ex.outcome:
                    item["outcome"] = ex.outcome
                taken.append({k: v for k, v in item.items() if v is not None})
            d["stepTaken"] = taken
            d["stepPlanned"] = list(steps[next_step:]) if state == "open" else []
            d["state"] = state
            d["overdueAmount"] = _money(round_money(amount, currency), currency)
            if paused:
                d["pausedUntil"] = paused.isoformat()
            if closed_at:
                d["closeDate"] = format_datetime(closed_at)
                d["closeReason"] = reason
        return docs

    async def get(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        return (await self._augment(ctx, [await super().get(ctx, resource_id)]))[0]

    async def list(self, ctx: Context, q: Any) -> tuple[list[dict[str, Any]], int]:
        items, total = await super().list(ctx, q)
        if q.fields and "stepTaken" not in q.fields and "stepPlanned" not in q.fields:
            return items, total
        return await self._augment(ctx, items), total


class AccountScoped(ResourceService):
    """Promises, plans and exclusions name a billing account that exists."""

    accounts: BillingAccounts | None = None
    overdue: Overdue | None = None

    async def account(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        """The billing account the document names, read as the caller: a customer finds only its own (another
        customer's is 404, as if it did not exist)."""
        account_id = _ref(doc.get("billingAccount"))
        if not account_id:
            raise InvalidCollections("'billingAccount.id' is mandatory")
        assert self.accounts is not None
        try:
            return await self.accounts.get_billing_account(ctx, account_id)
        except NotFound as exc:
            if ctx.principal.is_customer:
                raise NotFound(f"billing account '{account_id}' not found among yours") from exc
            raise InvalidCollections(f"'billingAccount.id': billing account '{account_id}' does not exist") from exc

    async def received(self, ctx: Context, account_id: str) -> Decimal:
        assert self.overdue is not None
        sub = self.overdue.received_select(account_id).subquery()
        value = await ctx.session.scalar(select(sub.c.received))
        return Decimal(value or 0)

    async def open_episode(self, ctx: Context, account_id: str) -> Episode | None:
        return (await ctx.session.execute(select(Episode).where(
            Episode.billing_account_id == account_id, Episode.state == "open").with_for_update())).scalars().first()


class PromiseService(AccountScoped):
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        account = await self.account(ctx, doc)
        amount, unit = _check_money(doc.get("amount"), "amount")
        if account.get("currency") and account["currency"] != unit:
            raise InvalidCollections(f"'amount.unit' {unit} is not the account's currency {account['currency']}")
        try:
            promised = date.fromisoformat(str(doc.get("promisedDate"))[:10])
        except ValueError as exc:
            raise InvalidCollections(f"'promisedDate': '{doc.get('promisedDate')}' is not a date") from exc
        today = utcnow().date()
        if promised < today:
            raise InvalidCollections(f"'promisedDate' {promised} is in the past")
        if promised > today + timedelta(days=90):
            raise InvalidCollections(f"'promisedDate' {promised} is more than 90 days ahead")
        account_id = account["id"]
        pending = await ctx.session.scalar(select(Promise.id).where(
            Promise.billing_account_id == account_id, Promise.state == "pending"))
        if pending:
            raise CollectionsConflict(f"billing account '{account_id}' already has a pending promise "
                                      f"('{pending}')")
        episode = await self.open_episode(ctx, account_id)
        if ctx.principal.is_customer and doc.get("relatedParty"):
            raise InvalidCollections("'relatedParty' is set by the server (the account's customer)")
        doc.update({"@type": "PromiseToPay", "state": "pending", "creationDate": format_datetime(utcnow()),
                    "promisedDate": promised.isoformat(),
                    "channel": "selfcare" if ctx.principal.is_customer else doc.get("channel") or "agent",
                    # who the promise is the customer's (a customer sees its own promises by it)
                    "relatedParty": [{"id": rp["id"], "@referredType": rp.get("@referredType") or "Customer"}
                                     for rp in account.get("relatedParty") or [] if rp.get("id")]})
        if episode is not None:
            doc["dunningEpisode"] = {"id": episode.id, "@referredType": "DunningEpisode"}
            episode.paused_until = max(promised, episode.paused_until or promised)
        rendered = await self.record(ctx, doc, columns={
            "billing_account_id": account_id, "episode_id": episode.id if episode else None, "state": "pending",
            "promised_date": promised, "amount": amount, "received_before": await self.received(ctx, account_id)})
        await ctx.session.flush()
        return rendered

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if changes.get("state") not in (None, "cancelled"):
            raise InvalidCollections("a promise's state is set by collections; only 'cancelled' can be asked")
        rendered = await super().patch(ctx, resource_id, changes)
        if changes.get("state") == "cancelled":
            row = await ctx.session.get(Promise, resource_id)
            assert row is not None
            row.state = "cancelled"
            if row.episode_id:
                await ctx.session.execute(update(Episode).where(Episode.id == row.episode_id).values(
                    paused_until=None, next_check=utcnow()))
            await ctx.session.flush()
        return rendered


class PromiseRules(ResourceHooks):
    transitions = {"pending": {"kept", "broken", "cancelled"}, "kept": set(), "broken": set(), "cancelled": set()}


class PlanService(AccountScoped):
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        account = await self.account(ctx, doc)
        account_id = account["id"]
        instalments = doc.get("instalment") or []
        if len(instalments) < 2:
            raise InvalidCollections("'instalment': a payment plan has at least two instalments")
        total = Decimal(0)
        unit = None
        last: date | None = None
        today = utcnow().date()
        for i, ins in enumerate(instalments):
            value, u = _check_money(ins.get("amount"), f"instalment[{i}].amount")
            if unit and u != unit:
                raise InvalidCollections(f"'instalment[{i}].amount.unit': every instalment is in {unit}")
            unit = u
            try:
                due = date.fromisoformat(str(ins.get("dueDate"))[:10])
            except ValueError as exc:
                raise InvalidCollections(f"'instalment[{i}].dueDate' is not a date") from exc
            if due < today or (last is not None and due <= last):
                raise InvalidCollections(f"'instalment[{i}].dueDate' {due} must be later than the previous "
                                         "instalment's and not in the past")
            last = due
            ins["dueDate"], ins["state"] = due.isoformat(), "due"
            total += value
        assert unit is not None and last is not None
        if account.get("currency") and account["currency"] != unit:
            raise InvalidCollections(f"instalments are in {unit}, not the account's currency {account['currency']}")
        active = await ctx.session.scalar(select(PaymentPlan.id).where(
            PaymentPlan.billing_account_id == account_id, PaymentPlan.state == "active"))
        if active:
            raise CollectionsConflict(f"billing account '{account_id}' already has an active plan ('{active}')")
        episode = await self.open_episode(ctx, account_id)
        doc.update({"@type": "PaymentPlan", "state": "active", "creationDate": format_datetime(utcnow()),
                    "totalAmount": _money(total, unit), "instalment": instalments})
        if episode is not None:
            doc["dunningEpisode"] = {"id": episode.id, "@referredType": "DunningEpisode"}
            episode.paused_until = max(last, episode.paused_until or last)
        rendered = await self.record(ctx, doc, columns={
            "billing_account_id": account_id, "episode_id": episode.id if episode else None, "state": "active",
            "received_before": await self.received(ctx, account_id),
            "next_due_date": date.fromisoformat(instalments[0]["dueDate"])})
        await ctx.session.flush()
        return rendered

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if changes.get("state") not in (None, "cancelled"):
            raise InvalidCollections("a plan's state is set by collections; only 'cancelled' can be asked")
        rendered = await super().patch(ctx, resource_id, changes)
        if changes.get("state") == "cancelled":
            row = await ctx.session.get(PaymentPlan, resource_id)
            assert row is not None
            row.state = "cancelled"
            if row.episode_id:
                await ctx.session.execute(update(Episode).where(Episode.id == row.episode_id).values(
                    paused_until=None, next_check=utcnow()))
            await ctx.session.flush()
        return rendered


class PlanRules(ResourceHooks):
    transitions = {"active": {"completed", "broken", "cancelled"}, "completed": set(), "broken": set(),
                   "cancelled": set()}


class ExclusionService(AccountScoped):
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        account = await self.account(ctx, doc)
        until = self._until(doc)
        doc.update({"@type": "DunningExclusion", "creationDate": format_datetime(utcnow())})
        return await self.record(ctx, doc, columns={"billing_account_id": account["id"], "reason": doc["reason"],
                                                    "valid_until": until})

    @staticmethod
    def _until(doc: dict[str, Any]) -> date | None:
        if doc.get("validUntil") is None:
            return None
        try:
            return date.fromisoformat(str(doc["validUntil"])[:10])
        except ValueError as exc:
            raise InvalidCollections(f"'validUntil': '{doc['validUntil']}' is not a date") from exc

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        rendered = await super().patch(ctx, resource_id, changes)
        await ctx.session.execute(update(Exclusion).where(Exclusion.id == resource_id).values(
            reason=rendered["reason"], valid_until=self._until(rendered)))
        return rendered


# --- the scheduler ----------------------------------------------------------------------------------------------
class CollectionsService:
    def __init__(self, db: Database, settings: Settings, *, overdue: Overdue, profiles: AccountProfiles,
                 accounts: BillingAccounts, products: Products, orders: Orders, payments: Payments,
                 charges: Charges | None, write_offs: WriteOffs | None, store: ObjectStore,
                 episodes: ResourceService, promises: ResourceService, plans: ResourceService) -> None:
        self.db = db
        self.settings = settings
        self.base_url = settings.public_url.rstrip("/")
        self.overdue = overdue
        self.profiles = profiles
        self.accounts = accounts
        self.products = products
        self.orders = orders
        self.payments = payments
        self.charges = charges
        self.write_offs = write_offs
        self.store = store
        self.episodes = episodes
        self.promises = promises
        self.plans = plans
        self.lease = timedelta(seconds=settings.collections_lease_seconds)

    # --- the customer 360's dunning section -------------------------------------------------------------------
    async def dunning_state(self, ctx: Context, accounts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each billing account's dunning state: its open episode (else its latest closed one, else ``none``) with
        the last step taken and the next one planned."""
        ids = [str(a["id"]) for a in accounts if a.get("id")]
        if not ids:
            return []
        rows = (await ctx.session.execute(
            select(Episode, PolicyVersion.steps).join(PolicyVersion, and_(
                PolicyVersion.policy_id == Episode.policy_id, PolicyVersion.version == Episode.policy_version))
            .where(Episode.billing_account_id.in_(ids))
            .order_by(Episode.billing_account_id, (Episode.state == "open").desc(), Episode.opened_at.desc()))).all()
        latest: dict[str, tuple[Episode, list[dict[str, Any]]]] = {}
        for episode, steps in rows:
            latest.setdefault(episode.billing_account_id, (episode, list(steps or [])))
        taken: dict[str, StepExecution] = {}
        if latest:
            for ex in (await ctx.session.execute(select(StepExecution).where(
                    StepExecution.episode_id.in_([e.id for e, _ in latest.values()]))
                    .order_by(StepExecution.episode_id, StepExecution.step))).scalars():
                taken[ex.episode_id] = ex  # the last one by position
        out = []
        for a in accounts:
            ref = {"id": a.get("id"), "name": a.get("name")}
            found = latest.get(str(a.get("id")))
            if found is None:
                out.append({"billingAccount": ref, "state": "none"})
                continue
            e, steps = found
            item: dict[str, Any] = {
                "billingAccount": ref, "state": e.state,
                "episode": {"id": e.id, "href": f"{ctx.base_url}{self.episodes.api.base_path}/dunningEpisode/{e.id}"},
                "overdueAmount": _money(round_money(e.overdue_amount, e.currency), e.currency),
                "oldestDueDate": e.oldest_due_date.isoformat(), "startDate": format_datetime(e.opened_at)}
            last = taken.get(e.id)
            if last is not None:
                item["currentStep"] = {"sequence": last.step + 1, "name": (steps[last.step] if last.step < len(steps)
                                                                           else {}).get("name"),
                                       "action": last.action, "state": last.state,
                                       "executionDate": format_datetime(last.finished_at or last.claimed_at)}
            if e.state == "open" and e.next_step < len(steps):
                nxt = steps[e.next_step]
                item["nextStep"] = {"sequence": e.next_step + 1, "name": nxt.get("name"),
                                    "action": nxt.get("action")}
            if e.paused_until:
                item["pausedUntil"] = e.paused_until.isoformat()
            if e.closed_at:
                item.update(closeDate=format_datetime(e.closed_at), closeReason=e.close_reason)
            out.append(item)
        return out

    # --- tenants ------------------------------------------------------------------------------------------------
    async def tenants(self) -> list[str]:
        """The tenants with an active dunning policy (the policy table admits the system scope)."""
        async with self.db.transaction(None, system=True) as session:
            rows = await session.execute(select(DunningPolicy.tenant_id).where(DunningPolicy.active).distinct())
            return [str(r[0]) for r in rows]

    # --- evaluation -------------------------------------------------------------------------------------------
    async def evaluate(self, ctx: Context, as_of: date, account_id: str | None = None) -> Report:
        """Open, refresh and close the tenant's episodes from what is overdue on ``as_of`` (one account's only,
        when named: what the event consumers do)."""
        report = Report()
        s = ctx.session
        ov = self.overdue.overdue_select(as_of, account_id).subquery()
        prof = self.profiles.profile_select().subquery()
        assigned = select(PolicyAssignment.billing_account_id, PolicyAssignment.policy_id).subquery()
        rank = case((DunningPolicy.id == assigned.c.policy_id, 0),
                    (and_(DunningPolicy.category.is_not(None), DunningPolicy.category == prof.c.category), 1),
                    (and_(DunningPolicy.segment.is_not(None), DunningPolicy.segment == prof.c.segment), 2),
                    else_=3)
        chosen = (select(DunningPolicy.id.label("policy_id"), DunningPolicy.version.label("version"))
                  .where(DunningPolicy.active, or_(DunningPolicy.id == assigned.c.policy_id,
                                                   and_(DunningPolicy.category.is_not(None),
                                                        DunningPolicy.category == prof.c.category),
                                                   and_(DunningPolicy.segment.is_not(None),
                                                        DunningPolicy.segment == prof.c.segment),
                                                   DunningPolicy.is_default))
                  .order_by(rank).limit(1).lateral("chosen"))
        episode_id = func.gen_random_uuid().cast(Episode.id.type)
        now = utcnow()
        # 1. open
        src = (select(ov.c.billing_account_id, ov.c.currency, ov.c.overdue, ov.c.oldest_due_date,
                      chosen.c.policy_id, chosen.c.version, prof.c.segment)
               .select_from(ov)
               .outerjoin(prof, prof.c.billing_account_id == ov.c.billing_account_id)
               .outerjoin(assigned, assigned.c.billing_account_id == ov.c.billing_account_id)
               .join(chosen, literal(True))
               # NOT IN (hashed once), not a correlated NOT EXISTS: not index-assisted under row-level security
               .where(ov.c.billing_account_id.not_in(select(Episode.billing_account_id)
                                                     .where(Episode.state == "open")))).subquery()
        new_id = episode_id.label("id")
        body = func.jsonb_build_object(
            "@type", "DunningEpisode", "state", "open",
            "billingAccount", func.jsonb_build_object("id", src.c.billing_account_id,
                                                      "@referredType", "BillingAccount"),
            "dunningPolicy", func.jsonb_build_object("id", src.c.policy_id, "@referredType", "DunningPolicy"),
            "policyVersion", src.c.version,
            "overdueAmount", func.jsonb_build_object("unit", src.c.currency, "value", src.c.overdue),
            "oldestDueDate", func.to_char(src.c.oldest_due_date, "YYYY-MM-DD"),
            "openDate", format_datetime(now))
        ins = pg_insert(Episode).from_select(
            ["id", "body", "billing_account_id", "policy_id", "policy_version", "state", "currency",
             "overdue_amount", "peak_amount", "oldest_due_date", "segment", "next_check"],
            select(new_id, body, src.c.billing_account_id, src.c.policy_id, src.c.version, literal("open"),
                   src.c.currency, src.c.overdue, src.c.overdue, src.c.oldest_due_date, src.c.segment,
                   literal(now)))
        ins = ins.on_conflict_do_nothing(index_elements=["tenant_id", "billing_account_id"],
                                         index_where=text("state = 'open'"))
        report.opened = cast(CursorResult[Any], await s.execute(ins)).rowcount or 0
        # 2. refresh
        upd = (update(Episode).where(Episode.state == "open", Episode.billing_account_id == ov.c.billing_account_id,
                                     Episode.overdue_amount != ov.c.overdue)
               .values(overdue_amount=ov.c.overdue, peak_amount=func.greatest(Episode.peak_amount, ov.c.overdue),
                       oldest_due_date=ov.c.oldest_due_date, next_check=now))
        report.refreshed = cast(CursorResult[Any], await s.execute(upd)).rowcount or 0
        # 3. close what is paid
        gone = Episode.billing_account_id.not_in(select(ov.c.billing_account_id))
        closing = select(Episode.id).where(Episode.state == "open", gone)
        if account_id is not None:
            closing = closing.where(Episode.billing_account_id == account_id)
        for (eid,) in (await s.execute(closing.with_for_update(skip_locked=True))).all():
            await self.close(ctx, eid, "paid")
            report.closed += 1
        kept, broken = await self._promises(ctx, as_of, account_id)
        report.promises_kept, report.promises_broken = kept, broken
        await self._plans(ctx, as_of, account_id)
        return report

    async def _promises(self, ctx: Context, as_of: date, account_id: str | None) -> tuple[int, int]:
        """Pending promises paid (kept), or past their date unpaid (broken: the episode goes on at its next
        step). One small query per pending promise: promises are few next to the accounts."""
        s = ctx.session
        stmt = select(Promise).where(Promise.state == "pending")
        if account_id is not None:
            stmt = stmt.where(Promise.billing_account_id == account_id)
        kept = broken = 0
        for promise in (await s.execute(stmt.with_for_update(skip_locked=True))).scalars().all():
            sub = self.overdue.received_select(promise.billing_account_id).subquery()
            received = Decimal(await s.scalar(select(sub.c.received)) or 0)
            if received >= promise.received_before + promise.amount:
                await self._promise_state(ctx, promise.id, "kept")
                kept += 1
            elif promise.promised_date < as_of:
                await self._promise_state(ctx, promise.id, "broken")
                broken += 1
                if promise.episode_id:
                    await s.execute(update(Episode).where(Episode.id == promise.episode_id,
                                                          Episode.state == "open").values(
                        paused_until=None, next_check=utcnow()))
        return kept, broken

    async def _promise_state(self, ctx: Context, promise_id: str, state: str) -> None:
        promises = self.promises
        await ctx.session.execute(update(Promise).where(Promise.id == promise_id).values(state=state))

        def move(doc: dict[str, Any]) -> None:
            doc["state"] = state

        await promises.change(ctx, promise_id, move, action=state)

    async def _plans(self, ctx: Context, as_of: date, account_id: str | None) -> None:
        s = ctx.session
        stmt = select(PaymentPlan).where(PaymentPlan.state == "active")
        if account_id is not None:
            stmt = stmt.where(PaymentPlan.billing_account_id == account_id)
        for plan in (await s.execute(stmt.with_for_update(skip_locked=True))).scalars().all():
            sub = self.overdue.received_select(plan.billing_account_id).subquery()
            received = Decimal(await s.scalar(select(sub.c.received)) or 0) - plan.received_before
            # a copy of the instalments (not the row's own): changed in place, the change would go unseen
            doc = copy.deepcopy(plan.body)
            due_so_far = Decimal(0)
            state = "active"
            total = Decimal(0)
            next_due: date | None = None
            for ins in doc.get("instalment") or []:
                amount = to_decimal(ins["amount"]["value"])
                total += amount
                due = date.fromisoformat(ins["dueDate"])
                if due < as_of:
                    due_so_far += amount
                    if received < due_so_far:
                        state = "broken"
                if received >= total:
                    ins["state"] = "paid"
                elif due < as_of:
                    ins["state"] = "missed"
                elif next_due is None:
                    next_due = due
            if received >= total:
                state = "completed"
            if state == "active" and next_due == plan.next_due_date:
                continue
            plan.next_due_date = next_due
            plan.state = state

            def mutate(d: dict[str, Any], state: str = state, items: Any = doc.get("instalment")) -> None:
                d["state"] = state
                d["instalment"] = items

            await self.plans.change(ctx, plan.id, mutate, action="evaluate")
            if state == "broken" and plan.episode_id:
                await s.execute(update(Episode).where(Episode.id == plan.episode_id, Episode.state == "open").values(
                    paused_until=None, next_check=utcnow()))

    # --- closing ----------------------------------------------------------------------------------------------
    async def close(self, ctx: Context, episode_id: str, reason: str) -> None:
        """Close an episode (in the caller's transaction): resume what it suspended, announce it."""
        s = ctx.session
        episode = (await s.execute(select(Episode).where(Episode.id == episode_id).with_for_update())).scalars().one()
        if episode.state != "open":
            return
        now = utcnow()
        episode.state, episode.closed_at, episode.close_reason = "closed", now, reason
        resumed: list[str] = []
        if reason == "paid":
            resumed = await self._resume(ctx, episode)
        doc = dict(episode.body)
        doc.update({"state": "closed", "closeDate": format_datetime(now), "closeReason": reason})
        if resumed:
            doc["resumeOrder"] = resumed
        episode.body = doc
        await s.execute(update(Promise).where(Promise.episode_id == episode_id, Promise.state == "pending").values(
            state="kept" if reason == "paid" else "cancelled"))
        await s.flush()
        rendered = self.episodes.store.shape(ctx.base_url, episode_id, doc)
        await emit(s, api=events.API, event_type=events.EPISODE_CLOSED, resource_key="dunningEpisode",
                   resource=rendered, resource_type="DunningEpisode")

    async def _resume(self, ctx: Context, episode: Episode) -> list[str]:
        """One order undoing what the episode did to the account's lines and still holds: a suspended product
        resumed, a barred one's bar lifted (both by one item when it is both)."""
        touched: list[str] = []
        for out in (await ctx.session.execute(select(StepExecution.outcome).where(
                StepExecution.episode_id == episode.id, StepExecution.action.in_(("restrict", "suspend")),
                StepExecution.state == "done"))).scalars():
            touched += list((out or {}).get("product") or [])
        if not touched:
            return []
        products = {p["id"]: p for p in await self.products.products_billed_to(ctx, episode.billing_account_id)}
        live = [products[p] for p in dict.fromkeys(touched)
                if products.get(p, {}).get("status") == "suspended" or _barred(products.get(p, {}))]
        if not live:
            return []
        order = await self.orders.place(ctx, self._order(live, "modify", None, resume=True),
                                        idempotency_key=f"collections:resume:{episode.id}")
        return [str(order["id"])]

    @staticmethod
    def _order(products: list[dict[str, Any]], action: str, status: str | None, *,
               barring: list[str] | None = None, resume: bool = False) -> dict[str, Any]:
        """A collections order on the account's products: ``status`` for each; ``barring`` the services barred
        (the ``barring`` product characteristic); ``resume``: each product suspended made active, each barred
        one's bar lifted."""
        customer = next((rp for p in products for rp in p.get("relatedParty") or []
                         if rp.get("@referredType") == "Customer" or rp.get("role") == "customer"), None)
        if customer is None:
            raise InvalidCollections(f"product '{products[0]['id']}' names no customer: no order can be placed")
        items = []
        for i, p in enumerate(products):
            product: dict[str, Any] = {"id": p["id"]}
            if status:
                product["status"] = status
            if barring is not None:
                product["productCharacteristic"] = [{"name": BARRING, "value": barring, "valueType": "array"}]
            if resume:
                if p.get("status") == "suspended":
                    product["status"] = "active"
                if _barred(p):
                    product["productCharacteristic"] = [{"name": BARRING, "value": [], "valueType": "array"}]
            items.append({"id": str(i + 1), "action": action, "product": product})
        what = "resume" if resume else "restrict" if barring is not None else status or ""
        return {"category": "collections", "description": f"Collections: {action} {what}".strip(),
                "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer"}],
                "productOrderItem": items}

    # --- claiming ---------------------------------------------------------------------------------------------
    async def claim(self, session: AsyncSession, tenant_id: str, as_of: date, worker: str, limit: int = 500,
                    ) -> list[Claimed]:
        """Claim the due steps of up to ``limit`` episodes (in the caller's transaction, which must commit
        before the steps are acted on)."""
        rows = (await session.execute(text(CLAIM_SQL), {
            "today": as_of, "worker": worker, "limit": limit, "lease": utcnow() + self.lease,
            "tenant": tenant_id})).mappings().all()
        return [self._claimed(tenant_id, r, as_of) for r in rows]

    @staticmethod
    def _claimed(tenant_id: str, r: Any, as_of: date | None = None) -> Claimed:
        return Claimed(execution_id=r["id"], tenant_id=tenant_id, episode_id=r["episode_id"],
                       billing_account_id=r["billing_account_id"], step=r["step"], action=r["action"],
                       definition=dict(r["definition"] or {}), amount=Decimal(r["amount"]),
                       currency=r["currency"], days_past_due=int(r["days_past_due"]), as_of=as_of)

    async def stale(self, tenant_id: str, worker: str, limit: int = 100) -> list[Claimed]:
        """Executions left claimed past their lease (their scheduler died, or quiet hours deferred them),
        taken over by ``worker``."""
        async with self.db.transaction(tenant_id) as session:
            rows = (await session.execute(text(STALE_SQL), {
                "worker": worker, "limit": limit, "lease": utcnow() + self.lease, "now": utcnow(),
                "today": utcnow().date()})).mappings().all()
            return [self._claimed(tenant_id, r, utcnow().date()) for r in rows]

    # --- acting -----------------------------------------------------------------------------------------------
    async def act(self, c: Claimed) -> str:
        """Carry out one claimed step; returns its final state (``claimed`` when deferred)."""
        try:
            if c.action == "paymentRetry":
                return await self._payment_retry(c)
            async with self.db.transaction(c.tenant_id) as session:
                ctx = system_context(c.tenant_id, session, self.base_url, subject="collections")
                if not await self._still_claimed(ctx, c):
                    return "done"
                if c.action == "reminder":
                    deferred = await self._reminder(ctx, c)
                    if deferred is not None:
                        await session.execute(update(StepExecution).where(StepExecution.id == c.execution_id)
                                              .values(lease_until=deferred))
                        return "claimed"
                    outcome: dict[str, Any] = {}
                elif c.action in ("restrict", "suspend"):
                    outcome = await self._suspend(ctx, c)
                elif c.action == "terminate":
                    outcome = await self._terminate(ctx, c)
                elif c.action == "lateFee":
                    outcome = await self._late_fee(ctx, c)
                elif c.action == "agencyHandover":
                    outcome = await self._handover(ctx, c)
                elif c.action == "writeOff":
                    outcome = await self._write_off(ctx, c)
                else:
                    raise InvalidCollections(f"unknown action '{c.action}'")
                await self._finish(ctx, c, "done", outcome)
                if c.action == "writeOff":
                    await self.close(ctx, c.episode_id, "writtenOff")
            return "done"
        except DomainError as exc:
            return await self._fail(c, exc.message)
        except Exception as exc:  # left claimed: taken again after its lease
            log.exception("collections step %s (%s) failed; it is taken again after its lease", c.execution_id,
                          c.action)
            raise exc

    async def act_reminders(self, batch: list[Claimed]) -> list[str]:
        """Carry out claimed reminders of one tenant together, in one transaction: each one's message, execution
        state and event are written in it, so each reminder still happens exactly once (a scheduler killed before
        the commit leaves them all claimed, taken again after their lease; after it, all done). The accounts are
        read in one query, the messages, executions and events written together. A reminder that cannot be sent
        (no contact: found before anything is written for it) is marked failed, the others go on; should the batch
        itself fail, its reminders are taken one by one. Returns each one's final state (``claimed`` when deferred
        by quiet hours)."""
        if not batch:
            return []
        tenant = batch[0].tenant_id
        try:
            async with self.db.transaction(tenant) as session:
                ctx = system_context(tenant, session, self.base_url, subject="collections")
                takeable = await self._still_claimed_many(ctx, batch)
                todo = [c for c in batch if takeable.get(c.execution_id)]
                accounts = await self.accounts.get_billing_accounts(ctx, sorted({c.billing_account_id
                                                                                 for c in todo}))
                states: dict[str, str] = {}
                finished: list[tuple[Claimed, str, dict[str, Any] | None, str | None]] = []
                deferred: dict[str, datetime] = {}
                for c in todo:
                    try:
                        account = accounts.get(c.billing_account_id)
                        if account is None:
                            raise NotFound(f"billing account '{c.billing_account_id}' not found")
                        until = await self._reminder(ctx, c, account, flush=False)
                    except DomainError as exc:  # raised before anything is written for this reminder
                        finished.append((c, "failed", None, exc.message))
                        states[c.execution_id] = "failed"
                        continue
                    if until is not None:
                        deferred[c.execution_id] = until
                        states[c.execution_id] = "claimed"
                        continue
                    finished.append((c, "done", {}, None))
                    states[c.execution_id] = "done"
                for execution_id, until in deferred.items():
                    await session.execute(update(StepExecution).where(StepExecution.id == execution_id)
                                          .values(lease_until=until))
                await self._finish_many(ctx, finished)
            return [states.get(c.execution_id) or ("skipped" if c.execution_id in takeable else "done")
                    for c in batch]
        except Exception:
            log.exception("a batch of %d reminders failed; taking them one by one", len(batch))
        out = []
        for c in batch:
            try:
                out.append(await self.act(c))
            except Exception:  # logged by act; left claimed, taken again after its lease
                out.append("claimed")
        return out

    async def _still_claimed_many(self, ctx: Context, batch: list[Claimed]) -> dict[str, bool]:
        """``_still_claimed`` for a batch: the episodes' and executions' rows locked (in id order: two schedulers'
        batches cannot deadlock); execution id → True (to take), False (skipped now: its episode closed); the
        executions no longer claimed are absent."""
        s = ctx.session
        episodes = dict((await s.execute(select(Episode.id, Episode.state).where(
            Episode.id.in_({c.episode_id for c in batch})).order_by(Episode.id).with_for_update())).tuples().all())
        claimed = set((await s.execute(select(StepExecution.id).where(
            StepExecution.id.in_([c.execution_id for c in batch]), StepExecution.state == "claimed")
            .order_by(StepExecution.id).with_for_update())).scalars().all())
        out: dict[str, bool] = {}
        skipped: list[tuple[Claimed, str, dict[str, Any] | None, str | None]] = []
        for c in batch:
            if c.execution_id not in claimed:
                continue
            out[c.execution_id] = episodes.get(c.episode_id) == "open"
            if not out[c.execution_id]:
                skipped.append((c, "skipped", None, "the episode was closed before the step was taken"))
        await self._finish_many(ctx, skipped)
        return out

    async def _still_claimed(self, ctx: Context, c: Claimed) -> bool:
        """Whether the step is still to be done: claimed, and its episode still open (the episode's row is locked
        until the end of the transaction, so a payment closing it waits, and a step of an episode closed meanwhile
        — the customer paid — is skipped). ``_still_claimed_many`` of one."""
        return (await self._still_claimed_many(ctx, [c])).get(c.execution_id, False)

    async def _finish(self, ctx: Context, c: Claimed, state: str, outcome: dict[str, Any] | None,
                      reason: str | None = None) -> None:
        await self._finish_many(ctx, [(c, state, outcome, reason)])

    async def _finish_many(self, ctx: Context,
                           items: list[tuple[Claimed, str, dict[str, Any] | None, str | None]]) -> None:
        """Mark executions done, failed or skipped, and announce each (``DunningStepExecutedEvent``): the
        executions without an outcome or a reason in one statement per state, the events written together."""
        if not items:
            return
        s = ctx.session
        now = utcnow()
        plain: dict[str, list[str]] = {}
        for c, state, outcome, reason in items:
            if outcome or reason:
                await s.execute(update(StepExecution).where(StepExecution.id == c.execution_id).values(
                    state=state, finished_at=now, outcome=outcome or None, reason=reason))
            else:
                plain.setdefault(state, []).append(c.execution_id)
        for state, ids in plain.items():
            await s.execute(update(StepExecution).where(StepExecution.id.in_(ids)).values(
                state=state, finished_at=now, outcome=None, reason=None))
        await s.execute(update(Episode).where(Episode.id.in_({c.episode_id for c, *_ in items})).values(
            next_check=now))
        for c, state, outcome, reason in items:
            episode_ref = self.episodes.store.shape(ctx.base_url, c.episode_id, {})
            await emit(s, api=events.API, event_type=events.STEP_EXECUTED, resource_key="dunningStepExecution",
                       resource={
                           "id": c.execution_id, "dunningEpisode": {"id": c.episode_id, "href": episode_ref["href"]},
                           "billingAccount": {"id": c.billing_account_id}, "step": c.step, "action": c.action,
                           "name": c.definition.get("name"), "state": state, "reason": reason,
                           "outcome": outcome or {}, "overdueAmount": _money(c.amount, c.currency),
                           "executionDate": format_datetime(now)},
                       resource_type="DunningStepExecution", flush=False)
        await flush_events(s)

    async def _fail(self, c: Claimed, reason: str) -> str:
        async with self.db.transaction(c.tenant_id) as session:
            ctx = system_context(c.tenant_id, session, self.base_url, subject="collections")
            if not await self._still_claimed(ctx, c):
                return "done"
            await self._finish(ctx, c, "failed", None, reason)
        return "failed"

    async def _reminder(self, ctx: Context, c: Claimed, account: dict[str, Any] | None = None, *,
                        flush: bool = True) -> datetime | None:
        """Queue the reminder (nothing written when it cannot be sent: no contact), or say until when quiet hours
        defer it."""
        if account is None:
            account = await self.accounts.get_billing_account(ctx, c.billing_account_id)
        tz = (account.get("billCycle") or {}).get("timeZone")
        until = in_quiet_hours(c.definition.get("quietHours"), utcnow(), tz)
        if until is not None:
            return until
        template: dict[str, str] = c.definition.get("template") or {}
        language = str(account.get("language") or account.get("preferredLanguage") or "en")[:2]
        text_ = template.get(language) or template.get("en") or next(iter(template.values()))
        body = text_.format(amount=round_money(c.amount, c.currency), currency=c.currency,
                            daysPastDue=c.days_past_due, account=account.get("name") or account["id"])
        emails, phones = [], []
        for contact in account.get("contact") or []:
            for medium in contact.get("contactMedium") or []:
                ch = medium.get("characteristic") or {}
                if ch.get("emailAddress"):
                    emails.append(str(ch["emailAddress"]))
                if ch.get("phoneNumber"):
                    phones.append(str(ch["phoneNumber"]))
        to_send = [(channel, to) for channel in c.definition.get("channel") or []
                   for to in (emails if channel == "email" else phones)[:1]]
        if not to_send:
            raise InvalidCollections(f"billing account '{c.billing_account_id}' has no contact for "
                                     f"{', '.join(c.definition.get('channel') or [])}")
        for channel, to in to_send:
            await messaging.send(ctx.session, channel, to, body, purpose="dunning",
                                 subject="Payment overdue" if channel == "email" else None,
                                 settings=self.settings, flush=flush)
        return None

    async def _suspend(self, ctx: Context, c: Claimed) -> dict[str, Any]:
        products = [p for p in await self.products.products_billed_to(ctx, c.billing_account_id)
                    if p.get("status") == "active"]
        if not products:
            return {"product": []}
        if c.action == "restrict":  # a partial bar: a modify order naming the barred services
            barred = list(c.definition.get("barredServices") or DEFAULT_BARRED)
            order = await self.orders.place(ctx, self._order(products, "modify", None, barring=barred),
                                            idempotency_key=f"collections:{c.execution_id}")
            return {"productOrder": [str(order["id"])], "product": [p["id"] for p in products],
                    "mode": "restrict", "barredServices": barred}
        order = await self.orders.place(ctx, self._order(products, "modify", "suspended"),
                                        idempotency_key=f"collections:{c.execution_id}")
        return {"productOrder": [str(order["id"])], "product": [p["id"] for p in products],
                "mode": c.action}

    async def _terminate(self, ctx: Context, c: Claimed) -> dict[str, Any]:
        products = [p for p in await self.products.products_billed_to(ctx, c.billing_account_id)
                    if p.get("status") in ("active", "suspended")]
        if not products:
            return {"product": []}
        order = await self.orders.place(ctx, self._order(products, "delete", None),
                                        idempotency_key=f"collections:{c.execution_id}")
        return {"productOrder": [str(order["id"])], "product": [p["id"] for p in products]}

    async def _late_fee(self, ctx: Context, c: Claimed) -> dict[str, Any]:
        if self.charges is None:
            raise InvalidCollections("late fees need billing's manual charges, not available here")
        fee = c.definition["fee"]
        charge = await self.charges.add_charge(
            ctx, billing_account_id=c.billing_account_id, amount=to_decimal(fee["value"]), currency=fee["unit"],
            reason_code=LATE_FEE_REASON, description=c.definition.get("name") or "Late payment fee",
            reference=f"collections:{c.execution_id}")
        return {"charge": charge.get("id")}

    async def _handover(self, ctx: Context, c: Claimed) -> dict[str, Any]:
        account = await self.accounts.get_billing_account(ctx, c.billing_account_id)
        episode = await ctx.session.get(Episode, c.episode_id)
        assert episode is not None
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["billingAccount", "name", "currency", "overdue", "oldestDueDate", "daysPastDue", "episode"])
        w.writerow([account["id"], account.get("name") or "", c.currency, round_money(c.amount, c.currency),
                    episode.oldest_due_date.isoformat(), c.days_past_due, c.episode_id])
        key = f"collections/{c.tenant_id}/agency/{c.execution_id}.csv"
        try:
            await self.store.put(key, buf.getvalue().encode(), content_type="text/csv",
                                 metadata={"episode": c.episode_id})
        except ObjectExists:  # written before the scheduler died: the file stands
            pass
        return {"file": key}

    async def _overdue_now(self, ctx: Context, c: Claimed) -> Decimal:
        """What the step's account has overdue now (on the day the step was claimed for), in its currency: the
        amount of the claim less what was received since."""
        still = self.overdue.overdue_select(c.as_of or utcnow().date(), c.billing_account_id).subquery()
        return Decimal(await ctx.session.scalar(select(func.coalesce(func.sum(still.c.overdue), 0)).where(
            still.c.currency == c.currency)) or 0)

    async def _write_off(self, ctx: Context, c: Claimed) -> dict[str, Any]:
        if self.write_offs is None:
            raise InvalidCollections("write-off is not available (payments has no write-off)")
        # what is overdue now (at most the claim's amount): a payment received since would otherwise leave the
        # write-off to settle bills that are not overdue (payments settles the oldest open bills)
        amount = min(c.amount, await self._overdue_now(ctx, c))
        if amount <= 0:
            raise InvalidCollections("nothing is overdue any more: nothing to write off")
        out = await self.write_offs.write_off(ctx, billing_account_id=c.billing_account_id, amount=amount,
                                              currency=c.currency, reason="collections write-off",
                                              reference=f"collections:{c.execution_id}")
        return {"writeOff": out.get("id")}

    async def _payment_retry(self, c: Claimed) -> str:
        async with self.db.transaction(c.tenant_id) as session:
            ctx = system_context(c.tenant_id, session, self.base_url, subject="collections")
            if not await self._still_claimed(ctx, c):
                return "done"
            hard = await session.scalar(select(func.count()).select_from(StepExecution).where(
                StepExecution.episode_id == c.episode_id, StepExecution.action == "paymentRetry",
                StepExecution.outcome["hardDecline"].astext == "true"))
            if hard:
                await self._finish(ctx, c, "skipped", None, "an earlier retry was declined for good (hard decline)")
                return "skipped"
            # what is overdue now, not at the claim: a payment received since (its event not heard of yet, or
            # a step taken again after its lease) is not charged a second time
            owed = await self._overdue_now(ctx, c)
            if owed <= 0:
                await self._finish(ctx, c, "skipped", None, "nothing is overdue any more")
                return "skipped"
            amount = min(c.amount, owed)
            principal = ctx.principal
        body = {"account": {"id": c.billing_account_id}, "totalAmount": _money(amount, c.currency),
                "description": "Collections: payment retry", "channel": {"name": "collections"}}
        try:  # outside any transaction: the gateway is a network call; the key makes a repeat the same payment
            outcome = await self.payments.pay(principal, body, f"collections:{c.execution_id}",
                                              base_url=self.base_url)
        except DomainError as exc:
            return await self._fail(c, exc.message)
        payment = outcome.resource
        status = payment.get("status")
        decline = payment.get("statusReason")
        result = {"payment": payment.get("id"), "status": status}
        state = "done"
        reason = None
        if status == "failed":
            state, reason = "failed", f"payment declined ({decline})"
            result["hardDecline"] = decline in HARD_DECLINES
        async with self.db.transaction(c.tenant_id) as session:
            ctx = system_context(c.tenant_id, session, self.base_url, subject="collections")
            if not await self._still_claimed(ctx, c):
                return "done"
            await self._finish(ctx, c, state, result, reason)
        return state

    # --- one round ----------------------------------------------------------------------------------------------
    async def run_tenant(self, tenant_id: str, as_of: date | None = None, *, worker: str = "scheduler",
                         batch: int = 500) -> Report:
        """Evaluate a tenant, then claim and act until nothing is due; then finish what died claimed."""
        today = as_of or utcnow().date()
        async with self.db.transaction(tenant_id) as session:
            report = await self.evaluate(system_context(tenant_id, session, self.base_url, "collections"), today)
        for _ in range(1000):
            async with self.db.transaction(tenant_id) as session:
                claimed = await self.claim(session, tenant_id, today, worker, batch)
            claimed += await self.stale(tenant_id, worker)
            if not claimed:
                break
            report.claimed += len(claimed)
            reminders = [c for c in claimed if c.action == "reminder"]
            size = self.settings.collections_reminder_batch
            for i in range(0, len(reminders), size):  # a few hundred per transaction
                chunk = reminders[i:i + size]
                for c, state in zip(chunk, await self.act_reminders(chunk), strict=True):
                    self._count(report, c, state)
            for c in claimed:
                if c.action == "reminder":
                    continue
                try:
                    state = await self.act(c)
                except Exception:  # logged by act; left claimed, taken again after its lease
                    state = "claimed"
                self._count(report, c, state)
        return report

    @staticmethod
    def _count(report: Report, c: Claimed, state: str) -> None:
        if state == "claimed":
            report.deferred += 1
        else:
            setattr(report, state, getattr(report, state) + 1)
            report.by_action[c.action] = report.by_action.get(c.action, 0) + 1

    async def run(self, as_of: date | None = None, *, worker: str = "scheduler") -> Report:
        report = Report()
        for tenant in await self.tenants():
            try:
                report.add(await self.run_tenant(tenant, as_of, worker=worker))
            except Exception:
                log.exception("collections round of tenant %s failed", tenant)
        return report

    async def account_changed(self, ctx: Context, account_id: str) -> None:
        """A payment, a bill or a credit note of the account: re-evaluate it at once (in the event's
        transaction)."""
        await self.evaluate(ctx, utcnow().date(), account_id)


CLAIM_SQL = """
WITH due AS (
    SELECT e.id, e.billing_account_id, e.next_step, e.overdue_amount, e.currency, e.oldest_due_date,
           v.steps -> e.next_step AS definition
    FROM collections_episode e
    JOIN collections_policy_version v ON v.policy_id = e.policy_id AND v.version = e.policy_version
    WHERE e.state = 'open' AND e.next_check <= now()
      AND (e.paused_until IS NULL OR e.paused_until < :today)
      AND e.next_step < jsonb_array_length(v.steps)
      AND :today - e.oldest_due_date >= COALESCE((v.steps -> e.next_step ->> 'daysPastDue')::int, 0)
      AND e.overdue_amount >= COALESCE((
            SELECT (m ->> 'value')::numeric FROM jsonb_array_elements(
                COALESCE(v.steps -> e.next_step -> 'minimumAmount', '[]'::jsonb)) m
            WHERE m ->> 'unit' = e.currency LIMIT 1), 0)
      -- NOT IN over small sets (hashed once), not a correlated NOT EXISTS: under row-level security the
      -- latter is not index-assisted and turns quadratic
      AND e.billing_account_id NOT IN (SELECT x.billing_account_id FROM collections_exclusion x
                                       WHERE x.valid_until IS NULL OR x.valid_until >= :today)
      AND e.id NOT IN (SELECT s.episode_id FROM collections_step_execution s WHERE s.state = 'claimed')
    ORDER BY e.next_check
    LIMIT :limit
    FOR UPDATE OF e SKIP LOCKED
), claimed AS (
    INSERT INTO collections_step_execution (id, tenant_id, episode_id, step, action, state, worker, amount,
                                            lease_until)
    SELECT gen_random_uuid()::text, :tenant, d.id, d.next_step, d.definition ->> 'action', 'claimed', :worker,
           d.overdue_amount, :lease
    FROM due d
    ON CONFLICT ON CONSTRAINT uq_collections_step_once DO NOTHING
    RETURNING id, episode_id, step, action, amount
), advanced AS (
    UPDATE collections_episode e SET next_step = c.step + 1
    FROM claimed c, collections_policy_version v
    WHERE e.id = c.episode_id AND v.policy_id = e.policy_id AND v.version = e.policy_version
    RETURNING c.id, c.episode_id, c.step, c.action, e.billing_account_id, v.steps -> c.step AS definition,
              c.amount, e.currency, (CAST(:today AS date) - e.oldest_due_date) AS days_past_due
)
SELECT * FROM advanced
"""

STALE_SQL = """
WITH stale AS (
    SELECT s.id FROM collections_step_execution s
    WHERE s.state = 'claimed' AND s.lease_until < :now
    ORDER BY s.lease_until LIMIT :limit
    FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE collections_step_execution s SET worker = :worker, lease_until = :lease, attempts = s.attempts + 1
    FROM stale WHERE s.id = stale.id
    RETURNING s.id, s.episode_id, s.step, s.action, s.amount
)
SELECT t.id, t.episode_id, t.step, t.action, e.billing_account_id, v.steps -> t.step AS definition,
       t.amount, e.currency, (:today - e.oldest_due_date) AS days_past_due
FROM taken t JOIN collections_episode e ON e.id = t.episode_id
JOIN collections_policy_version v ON v.policy_id = e.policy_id AND v.version = e.policy_version
"""

"""Service level agreements: definitions attached to a product offering, evaluated per period for every product of
the offering from its outages (the TMF656 service problems that affected it) and its KPIs; a violated period emits
``SlaViolationEvent`` and credits the product's billing account through billing — exactly once per SLA, period and
product (a unique constraint on the evaluation; billing's charge reference is unique too).

Objectives (any subset): ``availabilityPercent`` (the share of the period's counted time without outage),
``mttrMinutes`` (the mean time to restore of the outages resolved in the period), ``latency``
(``{"indicator", "max"}``: the period's average of the KPI over the product's services must not exceed it) and
``throughput`` (``{"indicator", "min"}``: the average must reach it). ``businessHours``
(``{"timeZone", "days": [1..7], "start": "08:00", "end": "18:00"}``) restricts the counted time to those hours;
``plannedOutages`` (``[{"start", "end"}]``) are excluded from both the outages and the counted time.

Versions: a definition is changed (``PATCH``, a JSON merge patch) into a new version valid from ``validFrom`` (now by
default; a later instant may be given, never an earlier one: evaluated periods are not rewritten). The product
offering and the period kind do not change (another SLA is created for those). **A period is evaluated against the
version valid at the period's start** (the latest version whose ``validFrom`` is at or before it; a period that
started before the first version uses the first): a change in the middle of a period applies from the next period
on. The evaluation names the version it used; a period already evaluated keeps its result (and its credit, once).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openbss.assurance import models
from openbss.assurance.errors import InvalidSla
from openbss.assurance.events import SLA_API, SLA_VIOLATION, SLA_VIOLATION_KEY
from openbss.assurance.problems import ManagedObjects
from openbss.platform import audit
from openbss.platform.db import utcnow
from openbss.platform.errors import DomainError, NotFound
from openbss.platform.events.outbox import emit
from openbss.platform.tmf.query import parse_list_query
from openbss.platform.tmf.resource import Context, merge_patch
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import MAX_AMOUNT, is_currency, round_money

PERIODS = ("day", "week", "month")
OBJECTIVES = ("availabilityPercent", "mttrMinutes", "latency", "throughput")


class Credits(Protocol):
    """Billing: a one-off charge (negative: a credit) on a billing account's next bill, idempotent by reference."""

    async def add_charge(self, ctx: Context, *, billing_account_id: str, amount: Decimal, currency: str,
                         reason_code: str, description: str, reference: str) -> dict[str, Any]: ...


def _time(value: Any, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidSla(f"'{what}' is not a date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidSla(f"'{what}' needs a time zone")
    return parsed.astimezone(UTC)


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidSla(f"'{what}' must be a number")
    try:
        out = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidSla(f"'{what}' must be a number, not {value!r}") from exc
    if not out.is_finite():
        raise InvalidSla(f"'{what}' must be a number")
    return out


def period_end(start: datetime, period: str) -> datetime:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=1) + timedelta(days=32)).replace(day=1)


def last_closed_period(period: str, now: datetime) -> datetime:
    """The start of the latest period of this kind that is over at ``now``."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return today - timedelta(days=1)
    if period == "week":
        return today - timedelta(days=today.isoweekday() - 1 + 7)
    this_month = today.replace(day=1)
    return (this_month - timedelta(days=1)).replace(day=1)


def check_period_start(start: datetime, period: str) -> None:
    if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0) \
            or (period == "week" and start.isoweekday() != 1) or (period == "month" and start.day != 1):
        raise InvalidSla(f"a {period} period starts at 00:00 UTC of "
                         + {"day": "a day", "week": "a Monday", "month": "the first of a month"}[period])


def validate(doc: dict[str, Any]) -> dict[str, Any]:
    """A definition as given, checked; returns its normalized form."""
    if not isinstance(doc, dict):
        raise InvalidSla("the body is an SLA definition object")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidSla("'name' is mandatory (at most 200 characters)")
    offering = (doc.get("productOffering") or {}).get("id") if isinstance(doc.get("productOffering"), dict) else None
    if not isinstance(offering, str) or not offering:
        raise InvalidSla("'productOffering.id' names the product offering the SLA is attached to")
    period = doc.get("period", "month")
    if period not in PERIODS:
        raise InvalidSla(f"'period' is one of {', '.join(PERIODS)}, not {period!r}")
    objectives = doc.get("objectives")
    if not isinstance(objectives, dict) or not objectives or set(objectives) - set(OBJECTIVES):
        raise InvalidSla(f"'objectives' has one or more of {', '.join(OBJECTIVES)}")
    if "availabilityPercent" in objectives:
        a = _decimal(objectives["availabilityPercent"], "objectives.availabilityPercent")
        if not 0 < a <= 100:
            raise InvalidSla("'objectives.availabilityPercent' is above 0 and at most 100")
    if "mttrMinutes" in objectives and _decimal(objectives["mttrMinutes"], "objectives.mttrMinutes") <= 0:
        raise InvalidSla("'objectives.mttrMinutes' is above 0")
    for key, bound in (("latency", "max"), ("throughput", "min")):
        if key in objectives:
            o = objectives[key]
            if not isinstance(o, dict) or not isinstance(o.get("indicator"), str) or bound not in o:
                raise InvalidSla(f"'objectives.{key}' is {{\"indicator\": <KPI name>, \"{bound}\": <number>}}")
            _decimal(o[bound], f"objectives.{key}.{bound}")
    credit = doc.get("credit")
    if not isinstance(credit, dict) or "amount" not in credit or "currency" not in credit:
        raise InvalidSla("'credit' is {\"amount\": <credited per violated period>, \"currency\": <ISO 4217>}")
    amount = _decimal(credit["amount"], "credit.amount")
    if amount <= 0:
        raise InvalidSla("'credit.amount' is the (positive) amount credited for a violated period")
    if not is_currency(credit["currency"]):
        raise InvalidSla(f"'credit.currency': {credit['currency']!r} is not an ISO 4217 currency")
    if amount >= MAX_AMOUNT:
        raise InvalidSla(f"'credit.amount' {amount} is too large: at most {MAX_AMOUNT - 1}")
    if round_money(amount, credit["currency"]) != amount:
        raise InvalidSla(f"'credit.amount' {amount} has more decimals than {credit['currency']} allows")
    hours = doc.get("businessHours")
    if hours is not None:
        try:
            ZoneInfo(str(hours.get("timeZone", "UTC")))
            start, end = time.fromisoformat(hours["start"]), time.fromisoformat(hours["end"])
        except (ZoneInfoNotFoundError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidSla("'businessHours' is {\"timeZone\", \"days\": [1-7], \"start\": \"HH:MM\", "
                             "\"end\": \"HH:MM\"}") from exc
        days = hours.get("days", [1, 2, 3, 4, 5])
        if start >= end or not days or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
            raise InvalidSla("'businessHours': start before end, days from 1 (Monday) to 7 (Sunday)")
    for n, outage in enumerate(doc.get("plannedOutages") or []):
        if _time(outage.get("end"), f"plannedOutages[{n}].end") <= _time(outage.get("start"),
                                                                        f"plannedOutages[{n}].start"):
            raise InvalidSla(f"'plannedOutages[{n}]' ends after it starts")
    return {k: doc[k] for k in ("name", "description", "productOffering", "objectives", "credit", "businessHours",
                                "plannedOutages") if k in doc} | {"period": period}


Interval = tuple[datetime, datetime]
#: what a version of a definition holds
DEFINITION_KEYS = ("name", "description", "productOffering", "objectives", "credit", "businessHours",
                   "plannedOutages", "period")


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif s < e:
            out.append((s, e))
    return out


def _subtract(intervals: Sequence[Interval], cuts: Sequence[Interval]) -> list[Interval]:
    out = list(_merge(intervals))
    for cs, ce in _merge(cuts):
        nxt: list[Interval] = []
        for s, e in out:
            if ce <= s or cs >= e:
                nxt.append((s, e))
                continue
            if s < cs:
                nxt.append((s, cs))
            if ce < e:
                nxt.append((ce, e))
        out = nxt
    return out


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out = []
    for s1, e1 in _merge(a):
        for s2, e2 in _merge(b):
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return _merge(out)


def counted_time(sla: dict[str, Any], start: datetime, end: datetime) -> list[Interval]:
    """The period's time the SLA counts: its business hours (all of it without), less its planned outages."""
    hours = sla.get("businessHours")
    if hours:
        tz = ZoneInfo(str(hours.get("timeZone", "UTC")))
        h0, h1 = time.fromisoformat(hours["start"]), time.fromisoformat(hours["end"])
        days = set(hours.get("days", [1, 2, 3, 4, 5]))
        spans = []
        day = start.astimezone(tz).date() - timedelta(days=1)
        while day <= end.astimezone(tz).date():
            if day.isoweekday() in days:
                spans.append((datetime.combine(day, h0, tz).astimezone(UTC),
                              datetime.combine(day, h1, tz).astimezone(UTC)))
            day += timedelta(days=1)
        base = _intersect(spans, [(start, end)])
    else:
        base = [(start, end)]
    planned = [(_time(o["start"], "start"), _time(o["end"], "end")) for o in sla.get("plannedOutages") or []]
    return _subtract(base, planned)


def _seconds(intervals: Sequence[Interval]) -> Decimal:
    return Decimal(sum(int((e - s).total_seconds()) for s, e in intervals))


@dataclass
class Evaluation:
    product: dict[str, Any]
    measured: dict[str, Any]
    violated: list[str]


class SlaService:
    """SLA definitions, their evaluation per period, and the report per customer."""

    def __init__(self, objects: ManagedObjects, credits: Credits | None = None) -> None:
        self.objects = objects
        self.credits = credits

    # --- definitions ---------------------------------------------------------------------------------------------
    def _render(self, row: models.Sla) -> dict[str, Any]:
        body = {"version": 1, "validFrom": format_datetime(row.created_at), **row.body}
        return {"id": row.id, **body, "createdAt": format_datetime(row.created_at)}

    async def change(self, ctx: Context, sla_id: str, changes: Any, now: datetime | None = None) -> dict[str, Any]:
        """A new version of a definition: ``changes`` merged (RFC 7386) into the current one, valid from
        ``changes["validFrom"]`` (default now; not before now, nor before the current version)."""
        if not isinstance(changes, dict) or not changes:
            raise InvalidSla("the body is a JSON merge patch of the SLA definition (e.g. {\"objectives\": "
                             "{\"availabilityPercent\": 99.9}})")
        now = now or utcnow()
        row = (await ctx.session.execute(select(models.Sla).where(models.Sla.id == sla_id).with_for_update())
               ).scalars().one_or_none()
        if row is None:
            raise NotFound(f"SLA '{sla_id}' not found", code="NOT_FOUND")
        current = self._render(row)
        for key in ("id", "createdAt", "version", "previousVersions"):
            if key in changes:
                raise InvalidSla(f"'{key}' is kept by the server")
        for key in ("productOffering", "period"):
            if key in changes and changes[key] != current.get(key):
                raise InvalidSla(f"'{key}' of an SLA does not change: create another SLA for another "
                                 f"{'offering' if key == 'productOffering' else 'period'}")
        valid_from = _time(changes["validFrom"], "validFrom") if "validFrom" in changes else now
        if valid_from < now - timedelta(seconds=5) or valid_from < _time(current["validFrom"], "validFrom"):
            raise InvalidSla("'validFrom' is now or later (and not before the current version's): a change does "
                             "not apply to past periods")
        patch = {k: v for k, v in changes.items() if k != "validFrom"}
        merged = merge_patch({k: current[k] for k in DEFINITION_KEYS if k in current}, patch)
        definition = validate(merged)
        if definition == {k: current[k] for k in DEFINITION_KEYS if k in current}:
            return current  # nothing changes: no new version
        previous = [*row.body.get("previousVersions", []),
                    {k: current[k] for k in (*DEFINITION_KEYS, "version", "validFrom") if k in current}]
        row.body = {**definition, "version": int(current["version"]) + 1, "validFrom": format_datetime(valid_from),
                    "previousVersions": previous}
        await ctx.session.flush()
        out = self._render(row)
        await audit.record(ctx.session, ctx.principal, resource_type="Sla", resource_id=row.id, action="update",
                           changes=audit.diff(current, out))
        return out

    @staticmethod
    def version_at(sla: dict[str, Any], start: datetime) -> dict[str, Any]:
        """The version of a definition valid at ``start`` (a period's first instant): the latest whose
        ``validFrom`` is at or before it; the first version for a period that began before it."""
        versions = [*sla.get("previousVersions", []), sla]
        chosen = versions[0]
        for v in versions:
            if _time(v["validFrom"], "validFrom") <= start:
                chosen = v
        return {**chosen, "id": sla["id"]}

    async def create(self, ctx: Context, body: Any) -> dict[str, Any]:
        doc = validate(body)
        row = models.Sla(id=str(uuid.uuid4()), offering_id=doc["productOffering"]["id"], body=doc,
                         created_at=utcnow())
        ctx.session.add(row)
        await ctx.session.flush()
        out = self._render(row)
        await audit.record(ctx.session, ctx.principal, resource_type="Sla", resource_id=row.id, action="create",
                           changes=audit.diff(None, out))
        return out

    async def all(self, ctx: Context) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(models.Sla).order_by(models.Sla.created_at))).scalars().all()
        return [self._render(r) for r in rows]

    async def get(self, ctx: Context, sla_id: str) -> dict[str, Any]:
        row = await ctx.session.get(models.Sla, sla_id)
        if row is None:
            raise NotFound(f"SLA '{sla_id}' not found", code="NOT_FOUND")
        return self._render(row)

    # --- evaluation ----------------------------------------------------------------------------------------------
    async def evaluate(self, ctx: Context, sla_id: str, period_start: datetime,
                       now: datetime | None = None) -> list[dict[str, Any]]:
        """Evaluate a closed period of the SLA for every product of its offering; a product's period is evaluated
        once (a second evaluation returns the first one's result): a violation credits once."""
        current = await self.get(ctx, sla_id)
        period = current["period"]
        start = period_start.astimezone(UTC)
        check_period_start(start, period)
        sla = self.version_at(current, start)
        end = period_end(start, period)
        if end > (now or utcnow()):
            raise InvalidSla(f"the {period} starting {format_datetime(start)} is not over (it ends "
                             f"{format_datetime(end)})")
        products, _ = await self.objects.products.list(ctx, parse_list_query(
            f"productOffering.id={sla['productOffering']['id']}&limit=1000", self.objects.products.api.spec,
            "Product"))
        out = []
        for product in products:
            evaluation = await self._measure(ctx, sla, product, start, end)
            out.append(await self._record(ctx, sla, evaluation, start, end))
        return out

    async def _measure(self, ctx: Context, sla: dict[str, Any], product: dict[str, Any], start: datetime,
                       end: datetime) -> Evaluation:
        counted = counted_time(sla, start, end)
        rows = (await ctx.session.execute(
            select(models.ServiceProblem.body).where(models.ServiceProblem.body.contains(
                {"relatedEntity": [{"id": product["id"], "role": "affectedProduct"}]})))).scalars().all()
        outages: list[Interval] = []
        restore: list[Decimal] = []
        for problem in rows:
            if problem.get("status") in ("cancelled", "rejected"):
                continue
            began = _time(problem.get("creationDate") or problem.get("lastUpdate"), "creationDate")
            resolved = problem.get("resolutionDate")
            ended = _time(resolved, "resolutionDate") if resolved else end
            if ended > start and began < end:
                outages.append((max(began, start), min(ended, end)))
            if resolved and start <= ended < end:
                restore.append(Decimal(int((ended - began).total_seconds())) / 60)
        down = _intersect(outages, counted)
        total = _seconds(counted)
        objectives = sla["objectives"]
        measured: dict[str, Any] = {"countedMinutes": (total / 60).quantize(Decimal("0.01")),
                                    "outageMinutes": (_seconds(down) / 60).quantize(Decimal("0.01")),
                                    "outages": len(outages)}
        violated = []
        if "availabilityPercent" in objectives:
            availability = Decimal(100) if total == 0 else (100 * (total - _seconds(down)) / total)
            measured["availabilityPercent"] = availability.quantize(Decimal("0.001"))
            if availability < Decimal(str(objectives["availabilityPercent"])):
                violated.append("availabilityPercent")
        if "mttrMinutes" in objectives:
            mttr = sum(restore, Decimal(0)) / len(restore) if restore else None
            measured["mttrMinutes"] = mttr.quantize(Decimal("0.01")) if mttr is not None else None
            if mttr is not None and mttr > Decimal(str(objectives["mttrMinutes"])):
                violated.append("mttrMinutes")
        services = [s["id"] for s in product.get("realizingService") or [] if s.get("id")]
        for key, bound, worse in (("latency", "max", lambda v, b: v > b), ("throughput", "min", lambda v, b: v < b)):
            if key not in objectives:
                continue
            average = await self._average(ctx, objectives[key]["indicator"], services, start, end)
            measured[key] = average
            if average is not None and worse(average, Decimal(str(objectives[key][bound]))):
                violated.append(key)
        return Evaluation(product, measured, violated)

    @staticmethod
    async def _average(ctx: Context, indicator: str, objects: Sequence[str], start: datetime, end: datetime,
                       ) -> Decimal | None:
        if not objects:
            return None
        row = (await ctx.session.execute(text(
            "SELECT sum(total), sum(samples) FROM kpi_rollup WHERE granularity = '5min' AND indicator = :i "
            "AND object_id = ANY(CAST(:o AS text[])) AND bucket >= :s AND bucket < :e"),
            {"i": indicator, "o": list(objects), "s": start, "e": end})).one()
        return (row[0] / row[1]).quantize(Decimal("0.001")) if row[1] else None

    async def _record(self, ctx: Context, sla: dict[str, Any], ev: Evaluation, start: datetime, end: datetime,
                      ) -> dict[str, Any]:
        product = ev.product
        customer = next((p.get("id") for p in product.get("relatedParty") or []
                         if p.get("role") in ("customer", "Customer")), None)
        account = (product.get("billingAccount") or {}).get("id")
        result = {"sla": {"id": sla["id"], "name": sla["name"], "version": sla.get("version", 1)},
                  "product": {"id": product["id"]},
                  "customer": {"id": customer} if customer else None,
                  "period": {"startDateTime": format_datetime(start), "endDateTime": format_datetime(end)},
                  "measured": ev.measured, "objectives": sla["objectives"], "violated": ev.violated,
                  "evaluatedAt": format_datetime(utcnow())}
        evaluation_id = str(uuid.uuid4())
        inserted = (await ctx.session.execute(pg_insert(models.SlaEvaluation).values(
            id=evaluation_id, sla_id=sla["id"], product_id=product["id"], period_start=start,
            customer_id=customer, violated=bool(ev.violated), body=result)
            .on_conflict_do_nothing(constraint="uq_sla_evaluation_period").returning(models.SlaEvaluation.id))
        ).scalar()
        row = (await ctx.session.execute(select(models.SlaEvaluation).where(
            models.SlaEvaluation.sla_id == sla["id"], models.SlaEvaluation.product_id == product["id"],
            models.SlaEvaluation.period_start == start))).scalars().one()
        if inserted is None:  # evaluated before (or concurrently): its result stands, credited at most once
            return {"id": row.id, **row.body}
        if ev.violated:
            credit = None
            result["credit"] = None  # no billing account on the product: reported, not credited
            if self.credits is not None and account:
                try:
                    async with ctx.session.begin_nested():
                        credit = await self.credits.add_charge(
                            ctx, billing_account_id=account, amount=-Decimal(str(sla["credit"]["amount"])),
                            currency=str(sla["credit"]["currency"]), reason_code="SERVICE_CREDIT",
                            description=f"SLA credit: {sla['name']} ({start:%Y-%m-%d})"[:200],
                            reference=f"sla:{sla['id']}:{product['id']}:{start:%Y%m%d}")
                except DomainError as exc:
                    # billing refuses the credit (an account closed, another currency): the violation stands,
                    # announced with the reason for an operator to credit by hand; nothing else is blocked
                    result["creditRefused"] = exc.message
                else:
                    result["credit"] = {"id": credit["id"], "amount": sla["credit"]}
            row.body = result
            await emit(ctx.session, api=SLA_API, event_type=SLA_VIOLATION, resource_key=SLA_VIOLATION_KEY,
                       resource={"id": row.id, **result}, resource_type="SlaViolation")
        await audit.record(ctx.session, ctx.principal, resource_type="SlaEvaluation", resource_id=row.id,
                           action="create", changes=audit.diff(None, {"violated": ev.violated,
                                                                      "product": product["id"]}))
        await ctx.session.flush()
        return {"id": row.id, **result}

    async def evaluate_closed(self, ctx: Context, now: datetime | None = None) -> int:
        """Evaluate the last closed period of every SLA not evaluated yet (the worker, after each period end).
        Returns the number of SLAs evaluated."""
        now = now or utcnow()
        done = 0
        for sla in await self.all(ctx):
            start = last_closed_period(sla["period"], now)
            seen = await ctx.session.scalar(select(models.SlaEvaluation.id).where(
                models.SlaEvaluation.sla_id == sla["id"], models.SlaEvaluation.period_start == start).limit(1))
            if seen is None:
                await self.evaluate(ctx, sla["id"], start, now)
                done += 1
        return done

    async def evaluations(self, ctx: Context, *, sla_id: str | None = None, period_start: datetime | None = None,
                          violated: bool | None = None, offset: int = 0, limit: int = 100,
                          ) -> tuple[list[dict[str, Any]], int]:
        """The stored evaluations (newest period first, then by SLA and product), filtered by SLA, period (its
        first instant) and outcome; returns a page and the total."""
        where = []
        if sla_id is not None:
            where.append(models.SlaEvaluation.sla_id == sla_id)
        if period_start is not None:
            where.append(models.SlaEvaluation.period_start == period_start.astimezone(UTC))
        if violated is not None:
            where.append(models.SlaEvaluation.violated.is_(violated))
        total = await ctx.session.scalar(select(func.count()).select_from(models.SlaEvaluation).where(*where))
        rows = (await ctx.session.execute(select(models.SlaEvaluation).where(*where).order_by(
            models.SlaEvaluation.period_start.desc(), models.SlaEvaluation.sla_id, models.SlaEvaluation.product_id)
            .offset(offset).limit(limit))).scalars().all()
        return [{"id": r.id, **r.body} for r in rows], int(total or 0)

    async def report(self, ctx: Context, customer_id: str, limit: int = 100) -> dict[str, Any]:
        """A customer's SLA evaluations, newest period first, with the totals of violations and credits."""
        rows = (await ctx.session.execute(select(models.SlaEvaluation).where(
            models.SlaEvaluation.customer_id == customer_id).order_by(
            models.SlaEvaluation.period_start.desc(), models.SlaEvaluation.id).limit(limit))).scalars().all()
        evaluations = [{"id": r.id, **r.body} for r in rows]
        credits: dict[str, Decimal] = {}
        for e in evaluations:
            if e.get("credit"):
                amount = e["credit"]["amount"]
                credits[amount["currency"]] = credits.get(amount["currency"], Decimal(0)) + Decimal(
                    str(amount["amount"]))
        return {"customer": {"id": customer_id}, "evaluations": evaluations,
                "violations": sum(1 for e in evaluations if e["violated"]),
                "credited": [{"amount": v, "currency": c} for c, v in sorted(credits.items())]}


__all__ = ["Credits", "SlaService", "counted_time", "validate"]

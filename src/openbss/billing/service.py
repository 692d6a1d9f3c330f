"""Billing: what each billing account owes for what it was sold, as TMF678 customer bills.

A bill of a billing account is dated on a **cycle date** of the account (``billCycle``: day 1–31 clamped to the
month's last day, frequency, time zone — every billing date is a local date there) and covers the cycle period
that ends on it. It holds, for every product charged to the account (TMF637, with the prices it was sold at), the
pieces of charge periods not billed yet:

* recurring prices **in advance**: every piece starting on or before the bill date (the next period included);
  **in arrears**: every piece ending on or before it; a partial piece is prorated (``pricing.proration``);
* one-time prices: once, on the first bill dated on or after the product's start;
* a credit for the unused part of a piece billed in advance when the product ended within it;
* usage: the rated usage (TMF635, from charging) of the account's postpaid lines before the bill date not yet
  billed, one line per product and usage type.

A prepaid line's monthly fees are not billed: online charging takes them from the line's money at each renewal of
its allowances (``charging.service.renew_allowances``); its recurring prices of other periods are billed
(``pricing.cycles.monthly_price`` tells them apart for both).

The same computation serves the bill run (writes), the draft's recomputation and the bill on demand (writes
nothing). What may be written is guarded by the database: one line per charge and period, one usage record per
line, one on-cycle bill per account and cycle date, a gapless number per series, no change to an issued bill.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from openbss.billing import adjustments, document
from openbss.billing.errors import BillIssued, InvalidBilling
from openbss.billing.models import (
    AppliedRate,
    BillingSettings,
    CustomerBill,
    NumberCounter,
    ProductChange,
    TaxRateRow,
    TestClock,
    UsageItem,
)
from openbss.charging.service import RatedUsage
from openbss.party.service import list_all
from openbss.platform.audit import AuditRecord
from openbss.platform.db import insert_rows, utcnow
from openbss.platform.errors import DomainError, NotFound
from openbss.platform.storage import ObjectExists, ObjectStore, StoredObject
from openbss.platform.tenancy import Tenant
from openbss.platform.tmf.resource import Context, ResourceService, system_context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing import changes, charge_models, phases, proration
from openbss.pricing.allocation import allocate
from openbss.pricing.cycles import MONTHS, monthly_price, next_cycle_date, pieces, previous_cycle_date
from openbss.pricing.cycles import last_cycle_date as cycle_date_on
from openbss.pricing.money import MINOR_UNITS, round_money, to_decimal
from openbss.pricing.taxes import (
    TableTaxEngine,
    Tax,
    TaxableLine,
    TaxedLine,
    TaxEngine,
    TaxRate,
    TaxRequest,
)
from openbss.pricing.units import UnitError, convert
from openbss.pricing.usage import BASE_UNIT

log = logging.getLogger(__name__)

DRAFT_STATES = ("new", "onHold")
ISSUED_STATES = ("validated", "sent", "partiallyPaid", "settled")
#: the internal series ordering every issued bill of a tenant (balances follow it)
ISSUE_SERIES = "#issue"
EXTENSION_TYPE = "OpenBSSCustomerBill"
#: the key from a line to its bill (deferrable: ``BillingService._write_and_issue``)
LINE_BILL_KEY = "fk_billing_applied_rate_bill_id_billing_customer_bill"
#: how far before a bill's period usage arriving late is still looked for
USAGE_LOOKBACK = timedelta(days=62)


class BillingAccounts(Protocol):
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]: ...

    async def billing_account_ids(self, ctx: Context, *, after: str = "", limit: int = 1000) -> list[str]: ...

    async def get_billing_accounts(self, ctx: Context, account_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...


class SoldProducts(Protocol):
    async def products_billed_to(self, ctx: Context, billing_account_id: str) -> list[dict[str, Any]]: ...

    async def get_product(self, ctx: Context, product_id: str) -> dict[str, Any]: ...

    async def products_billed_to_many(self, ctx: Context, billing_account_ids: Sequence[str],
                                      ) -> dict[str, list[dict[str, Any]]]: ...


class CatalogPrices(Protocol):
    async def get_price(self, ctx: Context, price_id: str) -> dict[str, Any]: ...


class RatedUsageSource(Protocol):
    async def postpaid_usage(self, ctx: Context, billing_account_id: str, since: datetime, before: datetime,
                             ) -> list[RatedUsage]: ...

    async def postpaid_usage_of(self, ctx: Context, billing_account_ids: list[str], since: datetime,
                                before: datetime) -> dict[str, list[RatedUsage]]: ...

    async def prepaid_products(self, ctx: Context, product_ids: list[str]) -> set[str]:
        """The products that are prepaid lines: online charging takes their periodic fees from their money."""
        ...

    async def itemized_usage(self, ctx: Context, usage_ids: list[str]) -> list[dict[str, Any]]:
        """The records ``usage_ids`` as an itemized bill lists them (plain dicts with ``id``, in time order)."""
        ...


@dataclass(frozen=True)
class TenantBilling:
    conventions: proration.Conventions
    number_series: str = "INV"
    number_format: str = "{series}-{year}-{seq:06d}"
    grace_days: int = 0
    tax_inclusive: bool = False
    tax_country: str | None = None
    credit_note_series: str = "CN"
    #: how many days before today a change may take effect (None: no limit)
    backdate_days: int | None = None
    #: the default alignment of recurring prices: ``calendar`` (the account's cycle) or ``anniversary``
    alignment: str = "calendar"
    #: a product suspended by collections (non-payment): ``stopsCharges`` like any suspension, or ``keepsCharges``
    dunning_suspension: str = "stopsCharges"


ALIGNMENTS = ("calendar", "anniversary")
#: the category of the product orders collections places (a suspension for non-payment)
DUNNING_CATEGORY = "collections"
DUNNING_SUSPENSIONS = ("stopsCharges", "keepsCharges")


def alignment_of(price: dict[str, Any], settings: TenantBilling, start: date) -> date | None:
    """The day a recurring price's month-based periods are anchored on: the product's start with anniversary
    alignment (the price's ``billingAlignment``, else the tenant's default), None on the account's cycle."""
    return start if (price.get("billingAlignment") or settings.alignment) == "anniversary" else None


@dataclass
class Line:
    key: str
    kind: str  # recurringCharge | oneTimeCharge | usageCharge | productAlteration (a credit)
    name: str
    period_start: date
    period_end: date
    amount: Decimal
    tax_rate: Decimal  # the rate the price was sold with (used when the tenant has no tax table)
    product: dict[str, Any] | None
    characteristics: dict[str, Any] = field(default_factory=dict)
    usage_ids: list[str] = field(default_factory=list)
    tax_category: str = "standard"
    #: ``amount`` includes tax (inclusive prices) until the taxes are applied; then it is the net amount
    inclusive: bool = False
    taxes: list[Tax] = field(default_factory=list)


@dataclass(frozen=True)
class Modelled:
    """A usage price of a product that billing prices per period with its catalog charge model."""

    model: charge_models.ChargeModel
    pop_id: str
    product: dict[str, Any]
    name: str
    per_unit: Decimal  # base units (bytes, seconds, events) per unit of the model's quantities
    start: date
    end: date | None
    tax_category: str


def per_unit(price: dict[str, Any], usage_type: str) -> Decimal:
    """Base units of the usage per ``unitOfMeasure`` of the price (1 MB: 1 048 576 bytes; 1 minute: 60 s)."""
    uom = price.get("unitOfMeasure") or {}
    if not uom.get("units"):
        return Decimal(1)
    base = BASE_UNIT.get(usage_type, "event")
    try:
        return convert(_decimal(uom.get("amount") or 1), str(uom["units"]), base)
    except UnitError as exc:
        raise InvalidBilling(f"price '{price.get('id')}': {exc}") from exc


@dataclass(frozen=True)
class Billed:
    """A line already on a bill other than the draft being computed."""

    key: str
    period_start: date
    period_end: date
    amount: Decimal
    gross: Decimal
    #: a discount line: the key of the charge it reduces (same period start)
    discount_of: str | None = None


def _paid(billed: Mapping[tuple[str, date], Billed], key: str, was: Billed, inclusive: bool) -> Decimal:
    """What was billed for the piece ``was`` of the charge ``key``, net of the discounts (coupons) that reduced it:
    the most its unused part can credit (a credit never gives back a discount)."""
    paid = (was.gross if inclusive else was.amount) + sum(
        (b.gross if inclusive else b.amount for b in billed.values()
         if b.discount_of == key and b.period_start == was.period_start), Decimal(0))
    return max(paid, Decimal(0))


#: the charge a discount line reduces (its ``discountOf`` characteristic), as text; NULL for other lines
DISCOUNT_OF = func.jsonb_path_query_first(
    AppliedRate.body, literal_column("""'$.characteristic[*] ? (@.name == "discountOf").value'""")
).op("#>>")(literal_column("'{}'"))


@dataclass
class _Due:
    """A bill to issue: a draft already written (``row``), or a new bill (``draft``: its document as recorded, and
    its row's columns), written issued."""

    bill_id: str
    account_id: str
    bill_date: date
    currency: str
    total: Decimal
    row: CustomerBill | None = None
    draft: tuple[dict[str, Any], Mapping[str, Any]] | None = None


@dataclass
class RunReport:
    as_of: date | None
    accounts: int = 0
    billed: int = 0
    finalized: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    totals: dict[str, Decimal] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"asOf": self.as_of.isoformat() if self.as_of else None, "accounts": self.accounts,
                "billed": self.billed, "finalized": self.finalized, "skipped": self.skipped,
                "failed": [{"billingAccount": k, "reason": v} for k, v in self.failed.items()],
                "totals": [{"unit": k, "value": v} for k, v in sorted(self.totals.items())]}


def _money(value: Decimal, unit: str) -> dict[str, Any]:
    return {"unit": unit, "value": value}


def _decimal(value: Any) -> Decimal:
    return to_decimal(value) if value is not None else Decimal(0)


def _gaps(start: date, end: date, used: Sequence[tuple[date, date, Any]]) -> list[tuple[date, date]]:
    """The parts of ``[start, end)`` not in ``used``."""
    out, at = [], start
    for s, e, _ in sorted(used, key=lambda u: u[0]):
        if s > at:
            out.append((at, s))
        at = max(at, e)
    if at < end:
        out.append((at, end))
    return out


def local_date(value: str | None, tz: ZoneInfo) -> date | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).date()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local date starts (DST-safe: ``zoneinfo`` resolves the offset of that day)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@functools.lru_cache(maxsize=8192)
def midnight_text(day: date, tz: ZoneInfo) -> str:
    """``local_midnight`` as documents render it (``format_datetime``): the few dates of a run, formatted once."""
    return format_datetime(local_midnight(day, tz))


def cycle_of(account: dict[str, Any]) -> tuple[int, int, ZoneInfo]:
    cycle = account.get("billCycle") or {}
    try:
        return int(cycle.get("billingDay", 1)), MONTHS[cycle.get("frequency") or "monthly"], \
            ZoneInfo(cycle.get("timeZone") or "UTC")
    except (KeyError, ValueError) as exc:
        raise InvalidBilling(f"billing account '{account.get('id')}' has an unusable billCycle: {exc}") from exc


def _advisory_key(tenant: str, account_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"billing|{tenant}|{account_id}".encode()).digest()[:8], "big",
                          signed=True)


class Reads:
    """What computing an account's bill reads, one account at a time (a bill on demand, a draft recomputed, an
    account billed alone): a few queries per account. ``PartitionReads`` answers the same questions for a bill
    run's partition from one query each; ``BillingService.compute`` is the same code with either."""

    def __init__(self, service: BillingService, ctx: Context) -> None:
        self.service = service
        self.ctx = ctx
        self._prices: dict[str, dict[str, Any]] = {}
        self._table: list[TaxRate] | None = None

    async def tax_table(self) -> list[TaxRate]:
        if self._table is None:
            self._table = await self.service.tax_table(self.ctx)
        return self._table

    async def price(self, pop_id: str) -> dict[str, Any]:
        """The catalog's price (empty when the catalog does not know it)."""
        if pop_id not in self._prices:
            try:
                self._prices[pop_id] = await self.service.catalog.get_price(self.ctx, pop_id)
            except NotFound:
                self._prices[pop_id] = {}
        return self._prices[pop_id]

    async def products(self, account_id: str) -> list[dict[str, Any]]:
        return await self.service.products.products_billed_to(self.ctx, account_id)

    async def billed(self, account_id: str, draft_id: str | None) -> dict[tuple[str, date], Billed]:
        return await self.service._billed(self.ctx, account_id, draft_id)

    async def changes(self, account_id: str) -> dict[str, list[ProductChange]]:
        return await self.service.product_changes(self.ctx, account_id)

    async def prepaid(self, product_ids: list[str]) -> set[str]:
        return await self.service.usage.prepaid_products(self.ctx, product_ids)

    async def usage(self, account_id: str, since: datetime, before: datetime) -> list[RatedUsage]:
        return await self.service.usage.postpaid_usage(self.ctx, account_id, since, before)

    async def billed_usage(self, usage_ids: Sequence[str], draft_id: str | None) -> set[str]:
        return await self.service._billed_usage(self.ctx, usage_ids, draft_id)

    async def manual_charges(self, account_id: str, day: date) -> list[adjustments.ManualCharge]:
        return await adjustments.charges_until(self.ctx.session, account_id, day)


class PartitionReads(Reads):
    """``Reads`` of a bill run's partition: each question asked of the database once for all its accounts (their
    products, lines already billed, product changes, postpaid usage and the usage already billed, manual
    charges, prepaid lines), the tax table and the catalog's prices once. Only for accounts without a draft of
    the bill date computed (``draft_id`` None): a draft being recomputed is read by ``Reads``."""

    def __init__(self, service: BillingService, ctx: Context) -> None:
        super().__init__(service, ctx)
        self._products: dict[str, list[dict[str, Any]]] = {}
        self._billed: dict[str, dict[tuple[str, date], Billed]] = {}
        self._changes: dict[str, dict[str, list[ProductChange]]] = {}
        self._prepaid: set[str] = set()
        self._usage: dict[str, list[RatedUsage]] = {}
        self._billed_usage: set[str] = set()
        self._manual: dict[str, list[adjustments.ManualCharge]] = {}

    async def load(self, dates: dict[str, tuple[date, ZoneInfo, int, int]]) -> None:
        """Read what the accounts of ``dates`` (account id: bill date, time zone, cycle day and months) need."""
        ctx, ids = self.ctx, sorted(dates)
        if not ids:
            return
        self._products = await self.service.products.products_billed_to_many(ctx, ids)
        gross = AppliedRate.body["taxIncludedAmount"]["value"].astext
        for acc, k, s, e, a, g, d in await ctx.session.execute(
                select(AppliedRate.billing_account_id, AppliedRate.charge_key, AppliedRate.period_start,
                       AppliedRate.period_end, AppliedRate.amount, gross, DISCOUNT_OF)
                .where(AppliedRate.billing_account_id.in_(ids))):
            self._billed.setdefault(acc, {})[(k, s)] = Billed(k, s, e, a, Decimal(g if g is not None else a), d)
        touched = select(ProductChange.product_id).where(
            ProductChange.billing_account_id.in_(ids) | ProductChange.to_account_id.in_(ids))
        rows = (await ctx.session.execute(select(ProductChange).where(ProductChange.product_id.in_(touched))
                                          .order_by(ProductChange.id))).scalars().all()
        if rows:
            of_product: dict[str, list[ProductChange]] = {}
            for r in rows:
                of_product.setdefault(r.product_id, []).append(r)
            wanted = set(ids)
            for pid, changes_ in of_product.items():
                for acc in {a for r in changes_ for a in (r.billing_account_id, r.to_account_id) if a in wanted}:
                    self._changes.setdefault(acc, {})[pid] = changes_
        product_ids = sorted({p["id"] for ps in self._products.values() for p in ps if p.get("id")}
                             | {pid for ch in self._changes.values() for pid in ch})
        self._prepaid = await self.service.usage.prepaid_products(ctx, product_ids)
        windows = {acc: (local_midnight(previous_cycle_date(d, day, months), tz) - USAGE_LOOKBACK,
                         local_midnight(d, tz)) for acc, (d, tz, day, months) in dates.items()}
        found = await self.service.usage.postpaid_usage_of(ctx, ids, min(w[0] for w in windows.values()),
                                                           max(w[1] for w in windows.values()))
        for acc, records in found.items():
            since, before = windows[acc]
            self._usage[acc] = [r for r in records if since <= r.usage_date < before]
        usage_ids = [r.id for rs in self._usage.values() for r in rs]
        for start in range(0, len(usage_ids), 10000):
            self._billed_usage |= await self.service._billed_usage(ctx, usage_ids[start:start + 10000], None)
        latest = max(d for d, *_ in dates.values())
        for mc in (await ctx.session.execute(select(adjustments.ManualCharge).where(
                adjustments.ManualCharge.billing_account_id.in_(ids), adjustments.ManualCharge.charge_date <= latest)
                .order_by(adjustments.ManualCharge.charge_date, adjustments.ManualCharge.created_at))).scalars():
            self._manual.setdefault(mc.billing_account_id, []).append(mc)

    async def products(self, account_id: str) -> list[dict[str, Any]]:
        return self._products.get(account_id, [])

    async def billed(self, account_id: str, draft_id: str | None) -> dict[tuple[str, date], Billed]:
        assert draft_id is None, "a draft being recomputed is read by Reads"
        return dict(self._billed.get(account_id, {}))

    async def changes(self, account_id: str) -> dict[str, list[ProductChange]]:
        return self._changes.get(account_id, {})

    async def prepaid(self, product_ids: list[str]) -> set[str]:
        return self._prepaid & set(product_ids)

    async def usage(self, account_id: str, since: datetime, before: datetime) -> list[RatedUsage]:
        return [r for r in self._usage.get(account_id, []) if since <= r.usage_date < before]

    async def billed_usage(self, usage_ids: Sequence[str], draft_id: str | None) -> set[str]:
        assert draft_id is None, "a draft being recomputed is read by Reads"
        return self._billed_usage & set(usage_ids)

    async def manual_charges(self, account_id: str, day: date) -> list[adjustments.ManualCharge]:
        return [mc for mc in self._manual.get(account_id, []) if mc.charge_date <= day]


def _same_currency(product: dict[str, Any], currency: str) -> None:
    """A product's prices are in its billing account's currency: a line takes a price's amount as the account's
    money, so a price in another currency (USD 10.00 on a EUR account) would be billed as EUR 10.00. The account
    is not billed (a run parks it with this reason) until the product or the account is corrected."""
    for pp in product.get("productPrice") or []:
        amounts = [(pp.get("price") or {}).get("dutyFreeAmount") or {}]
        amounts += [((alt.get("price") or {}).get("dutyFreeAmount") or {})
                    for alt in pp.get("productPriceAlteration") or []]
        for amount in amounts:
            unit = amount.get("unit")
            if unit and unit != currency:
                raise InvalidBilling(f"product '{product.get('id')}', price '{pp.get('name') or 'price'}': priced in "
                                     f"{unit}, the billing account is billed in {currency}")


class BillingService:
    def __init__(self, accounts: BillingAccounts, products: SoldProducts, catalog: CatalogPrices,
                 usage: RatedUsageSource, balances: Balances, bills: ResourceService, lines: ResourceService,
                 ) -> None:
        self.balances = balances
        self.accounts = accounts
        self.products = products
        self.catalog = catalog
        self.usage = usage
        self.bills = bills
        self.lines = lines

    # --- settings ---------------------------------------------------------------------------------------------
    async def tenant_settings(self, ctx: Context) -> TenantBilling:
        row = await ctx.session.get(BillingSettings, ctx.principal.tenant_id)
        if row is None:
            return TenantBilling(proration.Conventions())
        return TenantBilling(
            proration.Conventions(day_count=row.day_count, period_end=row.period_end,
                                  factor_places=row.factor_places, factor_rounding=row.factor_rounding,
                                  rounding=row.rounding),
            number_series=row.number_series, number_format=row.number_format, grace_days=row.grace_days,
            tax_inclusive=row.tax_inclusive, tax_country=row.tax_country, credit_note_series=row.credit_note_series,
            backdate_days=row.backdate_days, alignment=row.alignment, dunning_suspension=row.dunning_suspension)

    async def set_tenant_settings(self, ctx: Context, changes: dict[str, Any]) -> dict[str, Any]:
        current = await self.tenant_settings(ctx)
        conv = current.conventions
        known = {"dayCount", "periodEnd", "factorPlaces", "factorRounding", "rounding", "numberSeries",
                 "numberFormat", "graceDays", "taxInclusive", "taxCountry", "creditNoteSeries", "backdateDays",
                 "alignment", "dunningSuspension"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidBilling(f"unknown billing settings {unknown} (known: {', '.join(sorted(known))})")
        try:
            new_conv = proration.Conventions(
                day_count=changes.get("dayCount", conv.day_count),
                period_end=changes.get("periodEnd", conv.period_end),
                factor_places=changes.get("factorPlaces", conv.factor_places),
                factor_rounding=changes.get("factorRounding", conv.factor_rounding),
                rounding=changes.get("rounding", conv.rounding))
        except (ValueError, TypeError) as exc:
            raise InvalidBilling(str(exc)) from exc
        series = changes.get("numberSeries", current.number_series)
        notes = changes.get("creditNoteSeries", current.credit_note_series)
        if not isinstance(notes, str) or not 1 <= len(notes) <= 50 or notes == series:
            raise InvalidBilling("'creditNoteSeries' must be 1 to 50 characters, not the bills' series")
        fmt = changes.get("numberFormat", current.number_format)
        grace = changes.get("graceDays", current.grace_days)
        if not isinstance(series, str) or not 1 <= len(series) <= 50:
            raise InvalidBilling("'numberSeries' must be 1 to 50 characters")
        try:
            sample = fmt.format(series=series, year=2027, month=1, seq=1)
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise InvalidBilling(f"'numberFormat' {fmt!r} is not usable (fields: series, year, month, seq)") from exc
        if "{seq" not in fmt or len(sample) > 64:
            raise InvalidBilling("'numberFormat' must hold {seq} and make numbers of at most 64 characters")
        if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= 60:
            raise InvalidBilling("'graceDays' must be a whole number of days between 0 and 60")
        inclusive = changes.get("taxInclusive", current.tax_inclusive)
        if not isinstance(inclusive, bool):
            raise InvalidBilling("'taxInclusive' must be true or false")
        country = changes.get("taxCountry", current.tax_country)
        if country is not None and (not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country)):
            raise InvalidBilling(f"'taxCountry': {country!r} is not an ISO 3166-1 alpha-2 code (e.g. FR)")
        backdate = changes.get("backdateDays", current.backdate_days)
        if backdate is not None and (not isinstance(backdate, int) or isinstance(backdate, bool)
                                     or not 0 <= backdate <= 3660):
            raise InvalidBilling("'backdateDays' must be null (no limit) or a whole number of days between 0 and 3660")
        alignment = changes.get("alignment", current.alignment)
        if alignment not in ALIGNMENTS:
            raise InvalidBilling(f"'alignment': {alignment!r} is not one of {', '.join(ALIGNMENTS)}")
        if alignment != current.alignment and await ctx.session.scalar(
                select(AppliedRate.id).where(AppliedRate.charge_key.startswith("recurring|")).limit(1)):
            # the products billed so far would be cut into other periods: billed twice or not at all
            raise DomainError(f"'alignment' cannot change from {current.alignment} to {alignment}: recurring charges "
                              "were billed with it; give new offering prices a billingAlignment instead",
                              code="ALIGNMENT_IN_USE", status=409)
        dunning = changes.get("dunningSuspension", current.dunning_suspension)
        if dunning not in DUNNING_SUSPENSIONS:
            raise InvalidBilling(f"'dunningSuspension': {dunning!r} is not one of {', '.join(DUNNING_SUSPENSIONS)}")
        values = {"backdate_days": backdate, "alignment": alignment, "credit_note_series": notes,
                  "dunning_suspension": dunning,
                  "tax_inclusive": inclusive, "tax_country": country,
                  "day_count": new_conv.day_count, "period_end": new_conv.period_end,
                  "factor_places": new_conv.factor_places, "factor_rounding": new_conv.factor_rounding,
                  "rounding": new_conv.rounding, "number_series": series, "number_format": fmt,
                  "grace_days": grace}
        stmt = pg_insert(BillingSettings).values(**values)
        await ctx.session.execute(stmt.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
        return self.render_settings(await self.tenant_settings(ctx))

    @staticmethod
    def render_settings(s: TenantBilling) -> dict[str, Any]:
        c = s.conventions
        return {"dayCount": c.day_count, "periodEnd": c.period_end, "factorPlaces": c.factor_places,
                "factorRounding": c.factor_rounding, "rounding": c.rounding, "numberSeries": s.number_series,
                "numberFormat": s.number_format, "graceDays": s.grace_days, "taxInclusive": s.tax_inclusive,
                "taxCountry": s.tax_country, "creditNoteSeries": s.credit_note_series,
                "backdateDays": s.backdate_days, "alignment": s.alignment, "dunningSuspension": s.dunning_suspension}

    # --- time ----------------------------------------------------------------------------------------------
    async def now(self, ctx: Context) -> datetime:
        """Billing's "now": the tenant's test clock when it has one (a sandbox tenant), else the real time. It
        dates changes effective immediately, manual charges, runs and bills on demand without an "as of"."""
        clock = await ctx.session.get(TestClock, ctx.principal.tenant_id)
        return clock.now if clock is not None else utcnow()

    async def check_effective(self, ctx: Context, when: datetime, *, what: str = "'effective'") -> None:
        """Refuse (400 naming the limit) a change effective more than the tenant's back-dating limit
        (``backdateDays``) before now: ordering asks it of an order's ``requestedStartDate``."""
        limit = (await self.tenant_settings(ctx)).backdate_days
        if limit is None:
            return
        now = await self.now(ctx)
        if when < now - timedelta(days=limit):
            raise InvalidBilling(f"{what}: {format_datetime(when)} is more than {limit} days in the past: beyond "
                                 f"the back-dating limit (billing setting backdateDays = {limit})",
                                 code="BACKDATING_LIMIT")

    # --- what an account should be billed ------------------------------------------------------------------
    async def _billed(self, ctx: Context, account_id: str, draft_id: str | None) -> dict[tuple[str, date], Billed]:
        gross = AppliedRate.body["taxIncludedAmount"]["value"].astext
        stmt = select(AppliedRate.charge_key, AppliedRate.period_start, AppliedRate.period_end, AppliedRate.amount,
                      gross, DISCOUNT_OF).where(AppliedRate.billing_account_id == account_id)
        if draft_id:
            stmt = stmt.where(AppliedRate.bill_id != draft_id)
        return {(k, s): Billed(k, s, e, a, Decimal(g if g is not None else a), d)
                for k, s, e, a, g, d in await ctx.session.execute(stmt)}

    async def _billed_usage(self, ctx: Context, usage_ids: Sequence[str], draft_id: str | None) -> set[str]:
        if not usage_ids:
            return set()
        stmt = select(UsageItem.usage_id).join(AppliedRate, AppliedRate.id == UsageItem.line_id).where(
            UsageItem.usage_id.in_(list(usage_ids)))
        if draft_id:
            stmt = stmt.where(AppliedRate.bill_id != draft_id)
        return {r[0] for r in await ctx.session.execute(stmt)}

    async def compute(self, ctx: Context, account: dict[str, Any], bill_date: date, settings: TenantBilling,
                      draft_id: str | None = None, products: list[dict[str, Any]] | None = None,
                      tax_engine: TaxEngine | None = None, reads: Reads | None = None) -> list[Line]:
        """The lines the bill of ``account`` dated ``bill_date`` gets: what should have been billed up to it,
        minus what other bills hold. ``reads``: where the account's data is read (a run's partition reads it once
        for all its accounts), by default one query at a time."""
        reads = reads or Reads(self, ctx)
        day, months, tz = cycle_of(account)
        currency = account.get("currency") or "EUR"
        conv = settings.conventions
        following = next_cycle_date(bill_date, day, months)
        billed = await reads.billed(account["id"], draft_id)
        table = await reads.tax_table()
        inclusive = settings.tax_inclusive and bool(table)
        lines: list[Line] = []
        prices: dict[str, dict[str, Any]] = {}
        modelled: dict[tuple[str, str], Modelled] = {}
        discounts: list[tuple[dict[str, Any], str, Decimal, str, date | None]] = []
        if products is None:
            products = await reads.products(account["id"])
        changed = await reads.changes(account["id"])
        if changed:
            known = {p["id"] for p in products}
            products = [*products, *(rows[0].body["product"] for pid, rows in changed.items() if pid not in known)]
        prepaid = await reads.prepaid([p["id"] for p in products if p.get("id")])
        for product in products:
            start = local_date(product.get("startDate"), tz)
            if start is None:
                continue
            _same_currency(product, currency)
            end = local_date(product.get("terminationDate"), tz)
            if end is not None and conv.period_end == "inclusive":
                end += timedelta(days=1)
            ref = {"id": product["id"], "href": product.get("href"), "name": product.get("name")}
            if product["id"] in changed:
                lines.extend(await self._changed_product(
                    ctx, account["id"], product, changed[product["id"]], ref, start, end, bill_date, following,
                    day, conv, billed, currency, inclusive, prices, settings, prepaid=product["id"] in prepaid))
                continue
            for pp in product.get("productPrice") or []:
                pop_id = (pp.get("productOfferingPrice") or {}).get("id") or pp.get("name") or "price"
                if pop_id not in prices:
                    prices[pop_id] = await reads.price(pop_id)
                price = prices[pop_id]
                amounts = pp.get("price") or {}
                rate = _decimal(amounts.get("taxRate"))
                category = str(((price.get("tax") or [{}])[0] or {}).get("taxCategory") or "standard")
                name = pp.get("name") or price.get("name") or "charge"
                # the alterations sold for a time end; the others last (the evergreen price)
                evergreen = self._price_amount(pp, lasting=True)
                promotions = self._promotions(product, pp, start, name)
                amount = phases.altered(evergreen, start, promotions)  # what applies at the product's start
                if pp.get("priceType") == "discount" and (pp.get("price") or {}).get("dutyFreeAmount") and \
                        price.get("percentage") is None:
                    duration = price.get("applicationDuration") or {}
                    until = phases.add(start, int(duration["amount"]), str(duration.get("units") or "month")) \
                        if duration.get("amount") else None
                    discounts.append((ref, pop_id, abs(amount), name, until))
                elif pp.get("priceType") == "oneTime":
                    key = f"oneTime|{product['id']}|{pop_id}"
                    if start <= bill_date and (key, start) not in billed:
                        lines.append(Line(key, "oneTimeCharge", name, start, start, round_money(amount, currency),
                                          rate, ref, tax_category=category, inclusive=inclusive))
                elif (pp.get("priceType") or price.get("priceType")) == "usage" and price.get("chargeModel"):
                    usage_type = str(price.get("usageType") or "data")
                    try:
                        model = charge_models.parse(price["chargeModel"])
                    except charge_models.ChargeModelError as exc:
                        raise InvalidBilling(f"product '{product['id']}', price '{pop_id}': {exc}") from exc
                    modelled[(product["id"], usage_type)] = Modelled(
                        model, pop_id, ref, name, per_unit(price, usage_type), start, end, category)
                elif pp.get("priceType") == "recurring" and not (product["id"] in prepaid and monthly_price(price)):
                    # (a prepaid line's monthly fee is taken from its money by online charging at renewal)
                    for ln in self._recurring(product, ref, pop_id, pp, price, evergreen, rate, name, currency,
                                              start, end, bill_date, following, day, conv, billed, inclusive,
                                              alignment_of(price, settings, start), promotions):
                        ln.tax_category = category
                        lines.append(ln)
        for ln in await self._usage(reads, account, bill_date, day, months, tz, currency, draft_id, modelled, billed,
                                    conv):
            ln.inclusive = inclusive
            lines.append(ln)
        for mc in await reads.manual_charges(account["id"], bill_date):  # manual charges
            if mc.currency == currency and (f"manual|{mc.id}", mc.charge_date) not in billed:
                lines.append(Line(f"manual|{mc.id}", "oneTimeCharge" if mc.amount > 0 else "productAlteration",
                                  mc.description, mc.charge_date, mc.charge_date, mc.amount, Decimal(0), None,
                                  {"reasonCode": mc.reason_code}))
        if discounts:
            lines.extend(self._discounts(discounts, lines, bill_date, previous_cycle_date(bill_date, day, months),
                                         billed, currency, inclusive))
        self.apply_taxes(account, bill_date, settings, table, lines, currency, tax_engine)
        return lines

    async def add_charge(self, ctx: Context, *, billing_account_id: str, amount: Decimal, currency: str,
                         reason_code: str, description: str, reference: str) -> dict[str, Any]:
        """A manual one-off charge (negative: an adjustment) on the account's next bill (``billing.adjustments``)."""
        return await adjustments.add_charge(ctx, self.accounts, billing_account_id=billing_account_id, amount=amount,
                                            currency=currency, reason_code=reason_code, description=description,
                                            reference=reference, now=await self.now(ctx))

    @staticmethod
    def _discounts(discounts: list[tuple[dict[str, Any], str, Decimal, str, date | None]], lines: list[Line],
                   bill_date: date, period_start: date, billed: dict[tuple[str, date], Billed], currency: str,
                   inclusive: bool) -> list[Line]:
        """Fixed-amount discounts (a coupon) of a product, once per bill while they apply: allocated across the
        product's charges on this bill pro rata, **before tax** (largest remainder: the pieces add up exactly),
        one discount line per charge, in its tax category."""
        out: list[Line] = []
        for ref, pop_id, amount, name, until in discounts:
            prefix = f"discount|{ref['id']}|{pop_id}|{bill_date.isoformat()}|"
            if any(k.startswith(prefix) for k, _ in billed):
                continue
            targets = [ln for ln in lines if ln.product and ln.product.get("id") == ref["id"] and ln.amount > 0
                       and ln.kind in ("recurringCharge", "oneTimeCharge", "usageCharge")
                       and (until is None or ln.period_start < until)]
            pieces_ = allocate(amount, [ln.amount for ln in targets], currency)
            for i, (ln, piece) in enumerate(zip(targets, pieces_, strict=True)):
                if piece:
                    out.append(Line(f"{prefix}{i}", "productAlteration", f"{name} ({ln.name})", ln.period_start,
                                    ln.period_end, -piece, ln.tax_rate, ref,
                                    {"discountOf": ln.key, "discountAmount": str(amount)},
                                    tax_category=ln.tax_category, inclusive=inclusive))
        return out

    # --- revenue assurance -----------------------------------------------------------------------------------
    async def revenue_assurance(self, ctx: Context, start: date, end: date, *, limit: int = 1000,
                                ) -> dict[str, Any]:
        """Reconcile a period ``[start, end)`` (UTC dates of the usage): the postpaid usage charging rated against
        what bills hold (counts and amounts, per usage type and currency), the usage not billed yet, and the
        products sold at a price that no bill ever charged."""
        if end <= start:
            raise InvalidBilling(f"'to' ({end}) must be after 'from' ({start})")
        if (end - start).days > 366:
            raise InvalidBilling("a revenue assurance period is at most 366 days")
        since, before = datetime.combine(start, time(0), tzinfo=UTC), datetime.combine(end, time(0), tzinfo=UTC)
        ids: list[str] = []
        after = ""
        while page := await self.accounts.billing_account_ids(ctx, after=after):
            ids += page
            after = page[-1]
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        unbilled: list[dict[str, Any]] = []
        unbilled_total = 0
        never: list[dict[str, Any]] = []
        charged = {r[0] for r in await ctx.session.execute(
            select(func.split_part(AppliedRate.charge_key, "|", 2)).distinct())}
        for account_id in ids:
            records = await self.usage.postpaid_usage(ctx, account_id, since, before)
            billed = await self._billed_usage(ctx, [r.id for r in records], None)
            for r in records:
                row = rows.setdefault((r.usage_type, r.currency), {
                    "usageType": r.usage_type, "currency": r.currency, "ratedCount": 0, "ratedAmount": Decimal(0),
                    "billedCount": 0, "billedAmount": Decimal(0), "unbilledCount": 0, "unbilledAmount": Decimal(0)})
                row["ratedCount"] += 1
                row["ratedAmount"] += r.amount
                if r.id in billed:
                    row["billedCount"] += 1
                    row["billedAmount"] += r.amount
                else:
                    row["unbilledCount"] += 1
                    row["unbilledAmount"] += r.amount
                    unbilled_total += 1
                    if len(unbilled) < limit:
                        unbilled.append({"id": r.id, "billingAccount": {"id": account_id},
                                         "product": {"id": r.product_id} if r.product_id else None,
                                         "usageType": r.usage_type, "usageDate": format_datetime(r.usage_date),
                                         "amount": _money(r.amount, r.currency)})
            for product in await self.products.products_billed_to(ctx, account_id):
                started = local_date(product.get("startDate"), ZoneInfo("UTC"))
                if started is None or started >= end or product["id"] in charged:
                    continue
                priced = [pp for pp in product.get("productPrice") or []
                          if pp.get("priceType") in ("recurring", "oneTime") and self._price_amount(pp) > 0]
                if priced and len(never) < limit:
                    never.append({"id": product["id"], "name": product.get("name"),
                                  "status": product.get("status"), "startDate": product.get("startDate"),
                                  "billingAccount": {"id": account_id},
                                  "productPrice": [pp.get("name") for pp in priced]})
        unit = AppliedRate.body["taxExcludedAmount"]["unit"].astext
        lines = select(unit, func.count(), func.coalesce(func.sum(AppliedRate.amount), 0)).where(
            AppliedRate.charge_key.like("usage%"), AppliedRate.period_start >= start,
            AppliedRate.period_start < end).group_by(unit)
        usage_lines = [{"currency": c, "lines": int(n), "amount": Decimal(a)}
                       for c, n, a in await ctx.session.execute(lines)]
        return {"from": start.isoformat(), "to": end.isoformat(), "accounts": len(ids),
                "usage": sorted(rows.values(), key=lambda r: (r["usageType"], r["currency"])),
                "usageLinesBilled": usage_lines, "unbilledUsage": unbilled, "unbilledUsageCount": unbilled_total,
                "productsNeverCharged": never}

    # --- product changes -----------------------------------------------------------------------------------
    async def product_changes(self, ctx: Context, account_id: str) -> dict[str, list[ProductChange]]:
        """The changes of every product that was ever charged to the account, per product, in order."""
        ids = select(ProductChange.product_id).where(
            (ProductChange.billing_account_id == account_id) | (ProductChange.to_account_id == account_id))
        rows = (await ctx.session.execute(select(ProductChange).where(ProductChange.product_id.in_(ids))
                                          .order_by(ProductChange.id))).scalars().all()
        out: dict[str, list[ProductChange]] = {}
        for r in rows:
            out.setdefault(r.product_id, []).append(r)
        return out

    async def record_change(self, ctx: Context, body: dict[str, Any], *, at: str | None = None,
                            order_item: str | None = None, sold_prices: list[dict[str, Any]] | None = None,
                            sold_account: str | None = None) -> dict[str, Any]:
        """Record a change of a sold product as billing prorates it: ``{product: {id}, kind, effective:
        immediate | endOfTerm | YYYY-MM-DD, productPrice (upgrade, downgrade), toBillingAccount: {id}
        (transfer)}``. Changes of a product take effect in order: one cannot be effective before the last.

        A change a product order made (``record_order_item``) is effective at the instant ``at`` (on the account's
        local date), is marked with its ``order_item`` (``<order id>/<item id>``), and gives the prices the
        product was sold at before the order replaced them in the inventory (``sold_prices``), or the account it was
        charged to before the order transferred it (``sold_account``)."""
        known = {"product", "kind", "effective", "productPrice", "toBillingAccount"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidBilling(f"unknown attributes {unknown} (known: {', '.join(sorted(known))})")
        kind = body.get("kind")
        if kind not in changes.KINDS:
            raise InvalidBilling(f"'kind': {kind!r} is not one of {', '.join(changes.KINDS)}")
        ref = body.get("product")
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
            raise InvalidBilling("'product.id' is mandatory: the product that changes")
        try:
            product = await self.products.get_product(ctx, ref["id"])
        except NotFound as exc:
            raise InvalidBilling(f"'product.id': product '{ref['id']}' not found") from exc
        previous = (await ctx.session.execute(select(ProductChange).where(ProductChange.product_id == product["id"])
                                              .order_by(ProductChange.id))).scalars().all()
        if sold_account is not None and not previous:
            product = {**product, "billingAccount": {"id": sold_account}}
        first_account = (product.get("billingAccount") or {}).get("id")
        if not first_account:
            raise InvalidBilling(f"'product.id': product '{product['id']}' is not charged to a billing account")
        initial = previous[0].body["product"] if previous else (
            product if sold_prices is None else {**product, "productPrice": sold_prices})
        current = first_account if not previous else (previous[-1].to_account_id or previous[-1].billing_account_id)
        account = await self.accounts.get_billing_account(ctx, current)
        day, months, tz = cycle_of(account)
        start = local_date(product.get("startDate"), tz)
        if start is None:
            raise InvalidBilling(f"product '{product['id']}' has no startDate: it was never charged")
        settings = await self.tenant_settings(ctx)
        today = (await self.now(ctx)).astimezone(tz).date()
        effective = body.get("effective", "immediate") if at is None else at
        if at is not None:
            when = local_date(at, tz) or today
        elif effective == "immediate":
            when = today
        elif effective == "endOfTerm":
            when = next_cycle_date(today, day, months)
            for pp in (previous[-1].body.get("productPrice") if previous and previous[-1].body.get("productPrice")
                       else initial.get("productPrice")) or []:
                if pp.get("priceType") == "recurring":
                    pop_id = (pp.get("productOfferingPrice") or {}).get("id") or ""
                    price = await self._price(ctx, pop_id)
                    period = pp.get("recurringChargePeriod") or price.get("recurringChargePeriodType") or "month"
                    length = int(price.get("recurringChargePeriodLength") or 1)
                    cut = pieces(start, None, today + timedelta(days=1), day, period, length,
                                 alignment_of(price, settings, start))
                    if cut:
                        when = cut[-1].period_end
                    break
        else:
            try:
                when = date.fromisoformat(str(effective))
            except ValueError as exc:
                raise InvalidBilling(f"'effective': {effective!r} is not immediate, endOfTerm or a date "
                                     "(YYYY-MM-DD)") from exc
        if at is None and settings.backdate_days is not None and when < today - timedelta(days=settings.backdate_days):
            raise InvalidBilling(f"'effective': {when} is {(today - when).days} days in the past: beyond the "
                                 f"back-dating limit of {settings.backdate_days} days (billing setting backdateDays)",
                                 code="BACKDATING_LIMIT")
        if when < start:
            raise InvalidBilling(f"'effective': {when} is before the product's start ({start})")
        if previous and when < previous[-1].effective_date:
            raise InvalidBilling(f"'effective': {when} is before the product's last change "
                                 f"({previous[-1].kind} on {previous[-1].effective_date})")
        state = changes.timeline(start, "", [], [self._change(r) for r in previous])[-1]
        if previous and previous[-1].kind == "cancel":
            raise DomainError(f"product '{product['id']}' was cancelled on {previous[-1].effective_date}",
                              code="PRODUCT_CANCELLED", status=409)
        if kind == "suspend" and state.suspended:
            raise DomainError(f"product '{product['id']}' is already suspended", code="ALREADY_SUSPENDED",
                              status=409)
        if kind == "resume" and not state.suspended:
            raise DomainError(f"product '{product['id']}' is not suspended", code="NOT_SUSPENDED", status=409)
        record: dict[str, Any] = {"product": {k: v for k, v in initial.items() if not k.startswith("_")},
                                  "effective": str(effective), **({"orderItem": order_item} if order_item else {})}
        to_account = None
        if kind in ("upgrade", "downgrade"):
            prices = body.get("productPrice")
            if not isinstance(prices, list) or not prices or not all(isinstance(p, dict) for p in prices):
                raise InvalidBilling(f"'productPrice': a {kind} lists the product's new prices")
            for i, pp in enumerate(prices):
                if not (pp.get("productOfferingPrice") or {}).get("id"):
                    raise InvalidBilling(f"'productPrice[{i}].productOfferingPrice.id' is mandatory")
                try:
                    _decimal(((pp.get("price") or {}).get("dutyFreeAmount") or {}).get("value"))
                except ValueError as exc:
                    raise InvalidBilling(f"'productPrice[{i}].price.dutyFreeAmount.value': {exc}") from exc
            record["productPrice"] = prices
        elif body.get("productPrice") is not None:
            raise InvalidBilling(f"'productPrice' applies to an upgrade or a downgrade, not a {kind}")
        if kind == "transfer":
            target = body.get("toBillingAccount")
            if not isinstance(target, dict) or not isinstance(target.get("id"), str):
                raise InvalidBilling("'toBillingAccount.id' is mandatory for a transfer")
            if target["id"] == current:
                raise InvalidBilling(f"'toBillingAccount.id': the product is already charged to '{current}'")
            try:
                other = await self.accounts.get_billing_account(ctx, target["id"])
            except NotFound as exc:
                raise InvalidBilling(f"'toBillingAccount.id': billing account '{target['id']}' not found") from exc
            if (other.get("currency") or "EUR") != (account.get("currency") or "EUR"):
                raise InvalidBilling(f"'toBillingAccount.id': account '{target['id']}' bills in "
                                     f"{other.get('currency')}, the product in {account.get('currency')}")
            to_account = target["id"]
        elif body.get("toBillingAccount") is not None:
            raise InvalidBilling(f"'toBillingAccount' applies to a transfer, not a {kind}")
        row = ProductChange(product_id=product["id"], billing_account_id=current, to_account_id=to_account,
                            kind=kind, effective_date=when, body=record)
        ctx.session.add(row)
        await ctx.session.flush()
        return self.render_change(row)

    async def record_order_item(self, ctx: Context, order: dict[str, Any], item: dict[str, Any]
                                ) -> dict[str, Any] | None:
        """The change a completed item of a product order made to a sold product, recorded as ``record_change``
        records it (``None`` when the item changed nothing billing prorates, or was already recorded):

        * ``delete`` — cancel; ``modify`` with ``product.status`` suspended — suspend; with ``product.status``
          active on a product billing holds suspended — resume;
        * ``modify`` with a new offering (the item's ``itemPrice``) — upgrade, or downgrade when its recurring
          prices add up to less than the product's; the product's prices before the change are the item's
          ``previousProductPrice`` (the order records them), or for an event of an order made before orders
          recorded them, those the inventory's audit trail shows the change replaced;
        * ``modify`` with the item's ``billingAccount`` naming another account than the one billing charges the
          product to — transfer (the account before is the last change's, else the one the audit trail shows the
          order replaced). An item changing both the account and the offering records the transfer, then the
          offering change (marked ``<order id>/<item id>#offering``).

        Effective at the order's ``requestedStartDate`` when it names one, else at its ``completionDate``. Once per
        ``(order id, item id)``: a redelivered or replayed event records nothing more."""
        product_id = str((item.get("product") or {}).get("id") or "")
        action, status = item.get("action"), (item.get("product") or {}).get("status")
        if not product_id or action not in ("modify", "delete"):
            return None
        key = f"{order.get('id')}/{item.get('id')}"
        # one change of a product at a time (its changes are ordered), and once per order item
        await ctx.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"billing-change|{product_id}"))))
        if await ctx.session.scalar(select(ProductChange.id).where(ProductChange.product_id == product_id,
                                                                   ProductChange.body["orderItem"].astext == key)):
            return None
        previous = (await ctx.session.execute(select(ProductChange).where(ProductChange.product_id == product_id)
                                              .order_by(ProductChange.id))).scalars().all()
        at = str(order.get("requestedStartDate") or order.get("completionDate")
                 or format_datetime(await self.now(ctx)))
        to_account = str((item.get("billingAccount") or {}).get("id") or "")
        if action == "modify" and to_account:
            if previous:
                current: str | None = previous[-1].to_account_id or previous[-1].billing_account_id
                sold_account = None
            else:
                current = sold_account = await self._before(ctx, product_id, "billingAccount", to_account)
            if current is None:
                log.warning("order item %s: no record of the account product %s was charged to before; not "
                            "prorated", key, product_id)
            elif current != to_account:
                try:
                    moved = await self.record_change(
                        ctx, {"product": {"id": product_id}, "kind": "transfer",
                              "toBillingAccount": {"id": to_account}},
                        at=at, order_item=key, sold_account=sold_account)
                except DomainError as exc:
                    log.warning("order item %s: transfer %s not recorded: %s", key, product_id, exc)
                    return None
                if not item.get("itemPrice"):
                    return moved
                key = f"{key}#offering"
                previous = (await ctx.session.execute(select(ProductChange).where(
                    ProductChange.product_id == product_id).order_by(ProductChange.id))).scalars().all()
        body: dict[str, Any] = {"product": {"id": product_id}}
        sold: list[dict[str, Any]] | None = None
        suspended = bool(previous) and changes.timeline(
            date.min, "", [], [self._change(r) for r in previous])[-1].suspended
        if action == "delete":
            body["kind"] = "cancel"
        elif status == "suspended":
            if order.get("category") == DUNNING_CATEGORY and \
                    (await self.tenant_settings(ctx)).dunning_suspension == "keepsCharges":
                return None  # barred for debt, still charged (billing setting dunningSuspension)
            body["kind"] = "suspend"
        elif status == "active" and suspended:
            body["kind"] = "resume"
        elif item.get("itemPrice"):
            # the item's prices as the product keeps them: its discounts too (an upgrade sold at 50 % for 3 months)
            new = [{**{k: p[k] for k in ("name", "priceType", "recurringChargePeriod", "price", "productOfferingPrice")
                       if k in p},
                    **({"productPriceAlteration": p["priceAlteration"]} if p.get("priceAlteration") else {})}
                   for p in item["itemPrice"]]
            if previous:
                old = (next((r.body["productPrice"] for r in reversed(previous) if r.body.get("productPrice")),
                            None) or previous[0].body["product"].get("productPrice") or [])
            elif isinstance(item.get("previousProductPrice"), list):  # the order says what the product had
                sold = old = [p for p in item["previousProductPrice"] if isinstance(p, dict)]
            else:  # an order's event from before orders said it: the inventory's audit trail
                sold = old = await self._prices_before(ctx, product_id, new)
                if sold is None:
                    log.warning("order item %s: no record of the prices product %s had before; not prorated",
                                key, product_id)
                    return None

            def recurring(prices: list[dict[str, Any]]) -> Decimal:  # (a discount for a time does not decide)
                return sum((self._price_amount(p, lasting=True) for p in prices if p.get("priceType") == "recurring"),
                           Decimal(0))

            body["kind"] = "downgrade" if recurring(new) < recurring(old) else "upgrade"
            body["productPrice"] = new
        else:
            return None
        try:
            return await self.record_change(ctx, body, at=at, order_item=key, sold_prices=sold)
        except DomainError as exc:  # (InvalidBilling too) a change billing cannot take: said, not retried
            log.warning("order item %s: %s %s not recorded: %s", key, body["kind"], product_id, exc)
            return None

    @staticmethod
    async def _before(ctx: Context, product_id: str, attribute: str, new_id: str) -> str | None:
        """The id the product's reference ``attribute`` (``billingAccount``) had before the (latest) change of the
        inventory that set it to ``new_id``, from the audit trail."""
        rows = (await ctx.session.execute(
            select(AuditRecord.changes).where(AuditRecord.resource_type == "Product",
                                              AuditRecord.resource_id == product_id,
                                              AuditRecord.changes.has_key(attribute))
            .order_by(AuditRecord.id.desc()).limit(50))).scalars().all()
        for changed in rows:
            diff = changed.get(attribute)
            if isinstance(diff, dict) and (diff.get("new") or {}).get("id") == new_id \
                    and (diff.get("old") or {}).get("id"):
                return str(diff["old"]["id"])
        return None

    @staticmethod
    async def _prices_before(ctx: Context, product_id: str, new: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The product's prices before the (latest) change of the inventory that set them to ``new``."""
        rows = (await ctx.session.execute(
            select(AuditRecord.changes).where(AuditRecord.resource_type == "Product",
                                              AuditRecord.resource_id == product_id,
                                              AuditRecord.changes.has_key("productPrice"))
            .order_by(AuditRecord.id.desc()).limit(50))).scalars().all()
        def ids(prices: Any) -> list[str]:
            return sorted(str((p.get("productOfferingPrice") or {}).get("id")) for p in prices or []
                          if isinstance(p, dict))

        for changed in rows:
            if isinstance(changed.get("productPrice"), dict) and ids(changed["productPrice"].get("new")) == ids(new):
                return list(changed["productPrice"].get("old") or [])
        return None

    @staticmethod
    def render_change(r: ProductChange) -> dict[str, Any]:
        return {"id": str(r.id), "product": {"id": r.product_id}, "kind": r.kind,
                **({"productOrderItem": r.body["orderItem"]} if r.body.get("orderItem") else {}),
                "effectiveDate": r.effective_date.isoformat(), "billingAccount": {"id": r.billing_account_id},
                **({"toBillingAccount": {"id": r.to_account_id}} if r.to_account_id else {}),
                **({"productPrice": r.body["productPrice"]} if r.body.get("productPrice") else {})}

    async def list_changes(self, ctx: Context, product_id: str | None) -> list[dict[str, Any]]:
        stmt = select(ProductChange).order_by(ProductChange.id)
        if product_id:
            stmt = stmt.where(ProductChange.product_id == product_id)
        return [self.render_change(r) for r in (await ctx.session.execute(stmt.limit(1000))).scalars().all()]

    @staticmethod
    def _price_amount(pp: dict[str, Any], *, lasting: bool = False) -> Decimal:
        """A product price's amount with its alterations (discounts) — ``lasting``: only those sold without an
        ``applicationDuration`` (the others are ``_promotions``)."""
        amounts = pp.get("price") or {}
        amount = _decimal((amounts.get("dutyFreeAmount") or {}).get("value"))
        for alt in pp.get("productPriceAlteration") or []:
            if lasting and alt.get("applicationDuration") is not None:
                continue
            amount += _decimal(((alt.get("price") or {}).get("dutyFreeAmount") or {}).get("value"))
        return amount

    @staticmethod
    def _promotions(product: dict[str, Any], pp: dict[str, Any], start: date, name: str,
                    ) -> tuple[phases.Promotion, ...]:
        """The alterations of a product price sold for a time (an order item's discount with an
        ``applicationDuration`` in ``unitOfMeasure``), counted from the product's start: they alter the recurring
        charge until they end, and a charge period they end in is cut there (``phases.split``)."""
        out = []
        for alt in pp.get("productPriceAlteration") or []:
            if alt.get("applicationDuration") is None:
                continue
            delta = _decimal(((alt.get("price") or {}).get("dutyFreeAmount") or {}).get("value"))
            try:
                out.append(phases.promotion(start, delta, alt["applicationDuration"],
                                            alt.get("unitOfMeasure") or "month"))
            except ValueError as exc:
                raise InvalidBilling(f"product '{product.get('id')}', price '{name}', alteration "
                                     f"'{alt.get('name') or 'discount'}': {exc}") from exc
        return tuple(out)

    @classmethod
    def _change(cls, r: ProductChange) -> changes.Change:
        prices = tuple(((pp.get("productOfferingPrice") or {}).get("id") or pp.get("name") or "price",
                        cls._price_amount(pp, lasting=True)) for pp in r.body.get("productPrice") or []
                       if pp.get("priceType") == "recurring")
        return changes.Change(r.effective_date, r.kind, prices, r.to_account_id)

    async def _price(self, ctx: Context, pop_id: str) -> dict[str, Any]:
        try:
            return await self.catalog.get_price(ctx, pop_id)
        except NotFound:
            return {}

    async def _changed_product(self, ctx: Context, account_id: str, product: dict[str, Any],
                               rows: list[ProductChange], ref: dict[str, Any], start: date, end: date | None,
                               bill_date: date, following: date, day: int, conv: proration.Conventions,
                               billed: dict[tuple[str, date], Billed], currency: str, inclusive: bool,
                               prices: dict[str, dict[str, Any]], settings: TenantBilling | None = None,
                               prepaid: bool = False) -> list[Line]:
        """The recurring charges (and credits) of a product that changed: each price on the account of each
        segment of its timeline, not while suspended; what was billed in advance and is no longer used is
        credited, capped by what was billed for the piece. One-time charges stay with the account it was sold to."""
        initial = rows[0].body["product"]
        first_account = rows[0].billing_account_id
        pps: dict[str, dict[str, Any]] = {}
        sold_on: dict[str, date] = {}  # when each price was sold: its discounts for a time count from then
        for on, sold in [(start, initial.get("productPrice") or []),
                         *((r.effective_date, r.body.get("productPrice") or []) for r in rows)]:
            for pp in sold:
                pid = (pp.get("productOfferingPrice") or {}).get("id") or pp.get("name") or "price"
                pps.setdefault(pid, pp)
                sold_on.setdefault(pid, on)
        initial_prices = [(pid, self._price_amount(pp, lasting=True)) for pid, pp in pps.items()
                          if pp in (initial.get("productPrice") or []) and pp.get("priceType") == "recurring"]
        segments = changes.timeline(start, first_account, initial_prices, [self._change(r) for r in rows])
        last = segments[-1].end
        if last is not None:
            end = last if end is None else min(end, last)
        suffix = "" if account_id == first_account else f"|{account_id}"
        out: list[Line] = []
        for pop_id, pp in pps.items():
            if pop_id not in prices:
                prices[pop_id] = await self._price(ctx, pop_id)
            price = prices[pop_id]
            rate = _decimal((pp.get("price") or {}).get("taxRate"))
            category = str(((price.get("tax") or [{}])[0] or {}).get("taxCategory") or "standard")
            name = pp.get("name") or price.get("name") or "charge"
            if pp.get("priceType") == "oneTime":
                # once: sold with the product (on its first account), or with a change (on the account of the
                # segment it takes effect in), on the first bill dated on or after that day
                key = f"oneTime|{product['id']}|{pop_id}"
                when: list[date] = []
                if pp in (initial.get("productPrice") or []) and account_id == first_account:
                    when.append(start)
                for r in rows:
                    if pp in (r.body.get("productPrice") or []) and any(
                            seg.start <= r.effective_date and (seg.end is None or r.effective_date < seg.end)
                            and seg.account == account_id for seg in segments):
                        when.append(r.effective_date)
                for day_ in when:
                    if day_ <= bill_date and (key, day_) not in billed:
                        out.append(Line(key, "oneTimeCharge", name, day_, day_,
                                        round_money(self._price_amount(pp), currency), rate, ref,
                                        tax_category=category, inclusive=inclusive))
                continue
            if pp.get("priceType") != "recurring" or (prepaid and monthly_price(price)):
                continue  # (a prepaid line's monthly fee is taken from its money by online charging at renewal)
            timing = price.get("billingTiming") or "inAdvance"
            policy = price.get("prorationPolicy") or "daily"
            period_type = pp.get("recurringChargePeriod") or price.get("recurringChargePeriodType") or "month"
            length = int(price.get("recurringChargePeriodLength") or 1)
            align = alignment_of(price, settings or TenantBilling(conv), start)
            key = f"recurring|{product['id']}|{pop_id}{suffix}"
            credit_key = f"credit|{product['id']}|{pop_id}{suffix}"
            horizon = following if timing == "inAdvance" else bill_date
            price_end = end
            try:
                steps = phases.parse(price["pricePhase"]) if price.get("pricePhase") else ()
                if price.get("fixedTermPeriods") is not None:
                    term = phases.term_end(start, phases.check_fixed_term(price["fixedTermPeriods"]), period_type,
                                           length)
                    price_end = term if price_end is None else min(price_end, term)
            except ValueError as exc:
                raise InvalidBilling(f"product '{product['id']}', price '{pop_id}': {exc}") from exc
            promotions = self._promotions(product, pp, sold_on.get(pop_id, start), name)
            mine = [(k, b) for (k, _), b in billed.items() if k == key]
            for s_seg, e_seg, amount in changes.charged_parts(start, price_end or date.max, segments, account_id,
                                                              pop_id):
                try:
                    cut = pieces(s_seg, None if e_seg == date.max else e_seg, horizon, day, period_type, length,
                                 align)
                except ValueError as exc:
                    raise InvalidBilling(f"product '{product['id']}', price '{pop_id}': {exc}") from exc
                for piece in cut:
                    if timing == "inAdvance" and piece.start > bill_date:
                        continue
                    if timing == "inArrears" and piece.end > bill_date:
                        continue
                    for s, e, phase_amount, phase in phases.split(piece.start, piece.end, start, steps, amount,
                                                                  promotions):
                        if (key, s) in billed or any(b.period_start <= s and e <= b.period_end for _, b in mine):
                            continue  # billed already (a piece billed in advance covers a resumed part)
                        value = proration.charge(phase_amount, currency, s, e, piece.period_start,
                                                 piece.period_end, conv, policy)
                        chars: dict[str, Any] = {"prorationFactor": str(proration.factor(
                            s, e, piece.period_start, piece.period_end, conv))}
                        if phase is not None:
                            chars["pricePhase"] = phase
                        out.append(Line(key, "recurringCharge", f"{name} ({phase})" if phase else name, s, e, value,
                                        rate, ref, chars, tax_category=category, inclusive=inclusive))
            if timing != "inAdvance":
                continue
            for _, was in mine:
                full = pieces(was.period_start, None, was.period_start + timedelta(days=1), day, period_type,
                              length, align)[0]
                used = [(s, e, phases.price_on(s, start, steps, a, promotions)) for s, e, a in changes.charged_parts(
                    was.period_start, min(was.period_end, price_end or date.max), segments, account_id, pop_id)]
                due = changes.unused_credit(_paid(billed, key, was, inclusive), used, currency, full.period_start,
                                            full.period_end, conv, policy)
                given = -sum((b.gross if inclusive else b.amount for (k, st), b in billed.items()
                              if st == was.period_start and (k == credit_key or k.startswith(credit_key + "|"))),
                             Decimal(0))
                if due - given > 0:
                    out.append(Line(f"{credit_key}|{bill_date.isoformat()}", "productAlteration", f"Credit: {name}",
                                    was.period_start, was.period_end, -(due - given), rate, ref,
                                    {"unusedFrom": ", ".join(f"{a}/{b}" for a, b in _gaps(
                                        was.period_start, was.period_end, used))},
                                    tax_category=category, inclusive=inclusive))
        return out

    async def tax_table(self, ctx: Context) -> list[TaxRate]:
        rows = (await ctx.session.execute(select(TaxRateRow).order_by(TaxRateRow.id))).scalars().all()
        return [TaxRate(r.jurisdiction, r.category, r.name, r.rate, r.valid_from, r.valid_to) for r in rows]

    async def add_tax_rate(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        """A rate of the built-in tax engine: ``{jurisdiction, category, name, rate, validFrom, validTo?}``."""
        known = {"jurisdiction", "category", "name", "rate", "validFrom", "validTo"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidBilling(f"unknown attributes {unknown} (known: {', '.join(sorted(known))})")
        jurisdiction = body.get("jurisdiction")
        if not isinstance(jurisdiction, str) or not re.fullmatch(r"[A-Z]{2}(-[A-Z0-9]{1,3})?", jurisdiction):
            raise InvalidBilling(f"'jurisdiction': {jurisdiction!r} is not a country (FR) or a country-region (US-CA)")
        for attr in ("category", "name"):
            if not isinstance(body.get(attr), str) or not 1 <= len(body[attr]) <= 50:
                raise InvalidBilling(f"'{attr}' must be 1 to 50 characters")
        try:
            rate = to_decimal(body.get("rate"))
        except ValueError as exc:
            raise InvalidBilling(f"'rate': {exc}") from exc
        if not Decimal(0) <= rate <= Decimal(100) or rate != rate.quantize(Decimal("0.0001")):
            raise InvalidBilling("'rate' is a percentage between 0 and 100 with at most 4 decimals")
        try:
            valid_from = date.fromisoformat(str(body.get("validFrom")))
            valid_to = date.fromisoformat(str(body["validTo"])) if body.get("validTo") is not None else None
        except ValueError as exc:
            raise InvalidBilling("'validFrom' and 'validTo' are dates (YYYY-MM-DD)") from exc
        if valid_to is not None and valid_to <= valid_from:
            raise InvalidBilling("'validTo' must be after 'validFrom'")
        row = TaxRateRow(jurisdiction=jurisdiction, category=body["category"], name=body["name"], rate=rate,
                         valid_from=valid_from, valid_to=valid_to)
        ctx.session.add(row)
        await ctx.session.flush()
        return self.render_tax_rate(row)

    @staticmethod
    def render_tax_rate(r: TaxRateRow) -> dict[str, Any]:
        return {"id": str(r.id), "jurisdiction": r.jurisdiction, "category": r.category, "name": r.name,
                "rate": r.rate, "validFrom": r.valid_from.isoformat(),
                "validTo": r.valid_to.isoformat() if r.valid_to else None}

    async def tax_rates(self, ctx: Context) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(TaxRateRow).order_by(TaxRateRow.id))).scalars().all()
        return [self.render_tax_rate(r) for r in rows]

    @staticmethod
    def tax_place(account: dict[str, Any], settings: TenantBilling) -> tuple[str | None, str | None]:
        """The country and region taxes are due in: the account's postal address, else the tenant's country."""
        for contact in account.get("contact") or []:
            for medium in contact.get("contactMedium") or []:
                ch = medium.get("characteristic") or {}
                if ch.get("country"):
                    return str(ch["country"]), ch.get("stateOrProvince")
        return settings.tax_country, None

    @staticmethod
    def exemption(account: dict[str, Any], on: date) -> str | None:
        """The certificate of a TMF666 ``taxExemption`` of the account valid on ``on`` (a local date of the
        account: its validity's instants are read as local dates in the account's time zone too)."""
        tz = cycle_of(account)[2]
        for ex in account.get("taxExemption") or []:
            valid = ex.get("validFor") or {}
            start, end = local_date(valid.get("startDateTime"), tz), local_date(valid.get("endDateTime"), tz)
            if (start is None or start <= on) and (end is None or on < end):
                return str(ex.get("certificateNumber") or ex.get("issuingJurisdiction") or "exempt")
        return None

    def tax_request(self, account: dict[str, Any], on: date, settings: TenantBilling, lines: list[Line],
                    currency: str) -> TaxRequest:
        """What the tax engine is asked for a bill's lines (``pricing.taxes.TaxRequest``)."""
        country, region = self.tax_place(account, settings)
        return TaxRequest(country, region, on, currency,
                          tuple(TaxableLine(f"{ln.key}@{ln.period_start.isoformat()}", ln.amount, ln.tax_category,
                                            ln.inclusive, ln.tax_rate) for ln in lines),
                          self.exemption(account, on), settings.conventions.rounding)

    async def tax_request_for(self, ctx: Context, account_id: str, as_of: date | None = None) -> TaxRequest:
        """What an external tax provider must quote for the account's bill as of ``as_of``: computed like a run,
        nothing written. Ask it in a read-only transaction, call the provider **after** it, and bill with
        ``QuotedTaxEngine(request, quote)`` in the write transaction."""
        account, bill_date, _ = await self._cycle(ctx, account_id, as_of)
        settings = await self.tenant_settings(ctx)
        row = await self._bill_row(ctx, account_id, bill_date, lock=False)
        asked: list[TaxRequest] = []

        class Capture:
            def taxes(self, request: TaxRequest) -> list[TaxedLine]:
                asked.append(request)
                return TableTaxEngine([]).taxes(request)

        await self.compute(ctx, account, bill_date, settings, row.id if row else None, tax_engine=Capture())
        return asked[0]

    def apply_taxes(self, account: dict[str, Any], on: date, settings: TenantBilling, table: list[TaxRate],
                    lines: list[Line], currency: str, engine: TaxEngine | None = None) -> None:
        """Each line's taxes, computed per line by the tax engine: the built-in one (the tenant's tax table: the
        rates of the line's category in force on the bill date where the account is, else the rate its price was
        sold with), or ``engine`` (an external provider's quote fetched before the transaction)."""
        request = self.tax_request(account, on, settings, lines, currency)
        taxed = (engine or TableTaxEngine(table)).taxes(request)
        for ln, t in zip(lines, taxed, strict=True):
            if request.exemption is not None:
                ln.characteristics["taxExemption"] = request.exemption
            ln.amount, ln.taxes = t.net, list(t.taxes)
            ln.inclusive = False

    def _recurring(self, product: dict[str, Any], ref: dict[str, Any], pop_id: str, pp: dict[str, Any],
                   price: dict[str, Any], amount: Decimal, rate: Decimal, name: str, currency: str, start: date,
                   end: date | None, bill_date: date, following: date, day: int, conv: proration.Conventions,
                   billed: dict[tuple[str, date], Billed], inclusive: bool = False, align: date | None = None,
                   promotions: tuple[phases.Promotion, ...] = ()) -> list[Line]:
        out: list[Line] = []
        timing = price.get("billingTiming") or "inAdvance"
        policy = price.get("prorationPolicy") or "daily"
        period_type = pp.get("recurringChargePeriod") or price.get("recurringChargePeriodType") or "month"
        length = int(price.get("recurringChargePeriodLength") or 1)
        key = f"recurring|{product['id']}|{pop_id}"
        horizon = following if timing == "inAdvance" else bill_date
        try:
            steps = phases.parse(price["pricePhase"]) if price.get("pricePhase") else ()
            if price.get("fixedTermPeriods") is not None:  # the charge stops after N periods
                term = phases.term_end(start, phases.check_fixed_term(price["fixedTermPeriods"]), period_type,
                                       length)
                end = term if end is None else min(end, term)
        except ValueError as exc:
            raise InvalidBilling(f"product '{product['id']}', price '{pop_id}': {exc}") from exc
        try:
            cut = pieces(start, end, horizon, day, period_type, length, align)
        except ValueError as exc:
            raise InvalidBilling(f"product '{product['id']}', price '{pop_id}': {exc}") from exc
        for piece in cut:
            if timing == "inAdvance" and piece.start > bill_date:
                continue
            if timing == "inArrears" and piece.end > bill_date:
                continue
            # a phase boundary within the piece cuts it: each part at its phase's price, against the full period
            for s, e, phase_amount, phase in phases.split(piece.start, piece.end, start, steps, amount, promotions):
                if (key, s) in billed:
                    continue
                value = proration.charge(phase_amount, currency, s, e, piece.period_start, piece.period_end, conv,
                                         policy)
                chars: dict[str, Any] = {"prorationFactor": str(proration.factor(s, e, piece.period_start,
                                                                                 piece.period_end, conv))}
                if phase is not None:
                    chars["pricePhase"] = phase
                out.append(Line(key, "recurringCharge", f"{name} ({phase})" if phase else name, s, e, value, rate,
                                ref, chars, inclusive=inclusive))
        if end is not None and timing == "inAdvance":
            credit_key = f"credit|{product['id']}|{pop_id}"
            for (k, start_billed), was in billed.items():
                if k != key or was.period_end <= end or (credit_key, start_billed) in billed:
                    continue
                # the full period the billed piece belongs to: the charge period holding its start
                full = pieces(start_billed, None, start_billed + timedelta(days=1), day, period_type, length,
                              align)[0]
                # with inclusive prices the credit is computed on what was charged tax included, then split
                in_force = phases.price_on(start_billed, start, steps, amount, promotions)
                value = proration.credit(_paid(billed, key, was, inclusive), in_force, currency, start_billed, end,
                                         was.period_end, full.period_start, full.period_end, conv, policy)
                if value > 0:  # keyed on the billed piece's start: a piece is credited once
                    out.append(Line(credit_key, "productAlteration", f"Credit: {name}", start_billed,
                                    was.period_end, -value, rate, ref,
                                    {"unusedFrom": max(end, start_billed).isoformat()}, inclusive=inclusive))
        return out

    async def _usage(self, reads: Reads, account: dict[str, Any], bill_date: date, day: int, months: int,
                     tz: ZoneInfo, currency: str, draft_id: str | None,
                     modelled: dict[tuple[str, str], Modelled] | None = None,
                     billed: dict[tuple[str, date], Billed] | None = None,
                     conv: proration.Conventions | None = None) -> list[Line]:
        period_start = previous_cycle_date(bill_date, day, months)
        before = local_midnight(bill_date, tz)
        records = await reads.usage(account["id"], local_midnight(period_start, tz) - USAGE_LOOKBACK, before)
        done = await reads.billed_usage([r.id for r in records], draft_id)
        groups: dict[tuple[str, str], Line] = {}
        modelled = modelled or {}
        by_period: dict[tuple[str, str, date], list[RatedUsage]] = {}
        for r in records:
            if r.currency != currency:
                continue
            if r.product_id is not None and (r.product_id, r.usage_type) in modelled:
                local = r.usage_date.astimezone(tz).date()
                by_period.setdefault((r.product_id, r.usage_type, cycle_date_on(local, day, months)), []).append(r)
                continue
            if r.id in done:
                continue
            product = r.product_id or "line"
            key = (product, r.usage_type)
            line = groups.get(key)
            if line is None:
                line = groups[key] = Line(f"usage|{product}|{r.usage_type}", "usageCharge", f"Usage: {r.usage_type}",
                                          period_start, bill_date, Decimal(0), Decimal(0),
                                          {"id": product} if r.product_id else None,
                                          {"usageType": r.usage_type, "units": 0, "records": 0})
            line.amount += r.amount
            line.characteristics["units"] += r.units
            line.characteristics["records"] += 1
            line.usage_ids.append(r.id)
        out = list(groups.values())
        if modelled:
            # the bill's own period is priced even without usage (a minimum spend applies to it)
            for (product_id, usage_type), m in modelled.items():
                if m.start < bill_date and (m.end is None or m.end > period_start):
                    by_period.setdefault((product_id, usage_type, period_start), [])
            earliest = (local_midnight(period_start, tz) - USAGE_LOOKBACK).astimezone(tz).date()
            for (product_id, usage_type, p_start), recs in sorted(by_period.items(), key=lambda kv: kv[0][2]):
                if p_start < earliest:  # its usage may not all have been read: left to revenue assurance
                    continue
                out.extend(self._modelled_usage(modelled[(product_id, usage_type)], usage_type, p_start,
                                                next_cycle_date(p_start, day, months), recs, done, bill_date,
                                                currency, billed or {}, conv or proration.Conventions()))
        return out

    @staticmethod
    def _modelled_usage(m: Modelled, usage_type: str, p_start: date, p_end: date, records: list[RatedUsage],
                        done: set[str], bill_date: date, currency: str, billed: dict[tuple[str, date], Billed],
                        conv: proration.Conventions) -> list[Line]:
        """A period's usage priced with the catalog's charge model: the charge of all its usage known now (and the
        minimum-spend true-up) minus what earlier bills charged for the period. The line's key names the period
        and the bill date, so a period corrected by a later bill gets a line of its own."""
        key_usage = f"usageModel|{m.product['id']}|{usage_type}|{p_start.isoformat()}|"
        key_min = f"minimumSpend|{m.product['id']}|{usage_type}|{p_start.isoformat()}|"
        billed_usage = sum((b.amount for (k, _), b in billed.items() if k.startswith(key_usage)), Decimal(0))
        billed_min = sum((b.amount for (k, _), b in billed.items() if k.startswith(key_min)), Decimal(0))
        ordered = sorted(records, key=lambda r: (r.usage_date, r.id))
        units = sum((r.units for r in ordered), 0)
        quantity = Decimal(units) / m.per_unit
        exponent = MINOR_UNITS[currency]
        transactions = [Decimal(r.units).scaleb(-exponent) for r in ordered]
        active_start, active_end = max(m.start, p_start), min(m.end or p_end, p_end)
        factor = proration.factor(active_start, max(active_start, active_end), p_start, p_end, conv) \
            if active_start < p_end else Fraction(0)
        du, dt = charge_models.bill_period(m.model, quantity, currency, transactions, billed_usage, billed_min,
                                           factor, conv.rounding)
        new_ids = [r.id for r in ordered if r.id not in done]
        out: list[Line] = []
        chars: dict[str, Any] = {"usageType": usage_type, "units": units, "records": len(ordered),
                                 "chargeModel": m.model.model, "usagePeriod": f"{p_start}/{p_end}"}
        if du or new_ids or (not billed_usage and not billed_min and ordered):
            out.append(Line(key_usage + bill_date.isoformat(), "usageCharge", f"Usage: {usage_type} ({m.name})",
                            p_start, p_end, du, Decimal(0), m.product, chars, usage_ids=new_ids,
                            tax_category=m.tax_category))
        if dt:
            out.append(Line(key_min + bill_date.isoformat(), "usageCharge", f"Minimum spend true-up ({m.name})",
                            p_start, p_end, dt, Decimal(0), m.product,
                            {"usageType": usage_type, "minimumSpend": str(m.model.minimum_spend),
                             "usagePeriod": f"{p_start}/{p_end}"}, tax_category=m.tax_category))
        return out

    # --- documents ---------------------------------------------------------------------------------------------
    @staticmethod
    def _totals(lines: list[Line], currency: str) -> tuple[Decimal, Decimal, list[dict[str, Any]]]:
        """Tax excluded and included totals, and the taxes summed per tax, category and rate (``taxItem``)."""
        excluded = sum((ln.amount for ln in lines), Decimal(0))
        per_rate: dict[tuple[str, str, Decimal], Decimal] = {}
        for ln in lines:
            for t in ln.taxes:
                per_rate[(t.name, t.category, t.rate)] = per_rate.get((t.name, t.category, t.rate), Decimal(0)) \
                    + t.amount
        tax = sum(per_rate.values(), Decimal(0))
        items = [{"@type": "TaxItem", "taxCategory": f"{n}/{c}", "taxRate": r, "taxAmount": _money(v, currency)}
                 for (n, c, r), v in sorted(per_rate.items()) if r != 0 or v != 0]
        return round_money(excluded, currency), round_money(excluded + tax, currency), items

    @staticmethod
    def parties(account: dict[str, Any], products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Who the bill concerns: the account's related parties and the owners of its products (references only:
        no personal data is copied onto a bill)."""
        out: dict[str, dict[str, Any]] = {}
        for p in [*(account.get("relatedParty") or []),
                  *(r for prod in products for r in prod.get("relatedParty") or [] if r.get("role") == "owner")]:
            if p.get("id") and p["id"] not in out:
                out[p["id"]] = {k: p[k] for k in ("id", "role", "@referredType") if k in p}
        return list(out.values())

    def bill_document(self, ctx: Context, account: dict[str, Any], bill_date: date, lines: list[Line],
                      settings: TenantBilling, parties: list[dict[str, Any]]) -> dict[str, Any]:
        day, months, tz = cycle_of(account)
        currency = account.get("currency") or "EUR"
        excluded, included, items = self._totals(lines, currency)
        start = previous_cycle_date(bill_date, day, months)
        terms = int(account.get("paymentTermsDays") or 0)
        zero = _money(round_money(Decimal(0), currency), currency)
        return {
            "@type": EXTENSION_TYPE, "@baseType": "CustomerBill",
            "@schemaLocation": f"{ctx.base_url}/billing/v1/schema/{EXTENSION_TYPE}.json",
            "billDate": midnight_text(bill_date, tz),
            "category": "normal", "runType": "onCycle", "state": "new",
            "billingAccount": {"id": account["id"], "href": account.get("href"), "name": account.get("name"),
                               "@referredType": "BillingAccount"},
            "billingPeriod": {"startDateTime": midnight_text(start, tz),
                              "endDateTime": midnight_text(bill_date, tz)},
            "nextBillDate": midnight_text(next_cycle_date(bill_date, day, months), tz),
            "paymentDueDate": midnight_text(bill_date + timedelta(days=terms), tz),
            "relatedParty": parties,
            "taxExcludedAmount": _money(excluded, currency),
            "taxIncludedAmount": _money(included, currency),
            "taxItem": items,
            "previousBalance": zero, "creditApplied": zero,
            "amountDue": _money(max(included, Decimal(0)), currency),
            "remainingAmount": _money(max(included, Decimal(0)), currency),
        }

    def line_document(self, ctx: Context, line_id: str, bill: dict[str, Any], line: Line, currency: str,
                      tz: ZoneInfo, rounding: str) -> dict[str, Any]:
        tax = sum((t.amount for t in line.taxes), Decimal(0))
        doc: dict[str, Any] = {
            "@type": "AppliedCustomerBillingRate", "id": line_id, "date": bill["billDate"],
            "name": line.name, "isBilled": True,
            "type": "appliedBillingCredit" if line.amount < 0 else "appliedBillingCharge",
            "bill": {"id": bill["id"], "href": bill.get("href")} if bill.get("id") else {"id": "onDemand"},
            "billingAccount": bill["billingAccount"],
            "periodCoverage": {"startDateTime": midnight_text(line.period_start, tz),
                               "endDateTime": midnight_text(line.period_end, tz)},
            "taxExcludedAmount": _money(line.amount, currency),
            "taxIncludedAmount": _money(line.amount + tax, currency),
            "appliedTax": [{"taxCategory": f"{t.name}/{t.category}", "taxRate": t.rate,
                            "taxAmount": _money(t.amount, currency)} for t in line.taxes if t.rate],
            "characteristic": [{"name": "chargeType", "value": line.kind, "valueType": "string"}]
            + [{"name": k, "value": v, "valueType": "number" if isinstance(v, int) else "string"}
               for k, v in line.characteristics.items()],
        }
        if line.product:
            doc["product"] = {k: v for k, v in line.product.items() if v is not None}
        if line.kind == "oneTimeCharge":
            doc["description"] = "One-time charge"
        return doc

    # --- one account ------------------------------------------------------------------------------------------
    async def _cycle(self, ctx: Context, account_id: str, as_of: date | None, upcoming: bool = False,
                     ) -> tuple[dict[str, Any], date, ZoneInfo]:
        account = await self.accounts.get_billing_account(ctx, account_id)
        day, months, tz = cycle_of(account)
        today = as_of or (await self.now(ctx)).astimezone(tz).date()
        bill_date = next_cycle_date(today, day, months) if upcoming else cycle_date_on(today, day, months)
        return account, bill_date, tz

    async def preview(self, ctx: Context, account_id: str, as_of: date | None = None) -> dict[str, Any]:
        """The account's next bill as it stands (bill on demand): the same computation as a run, nothing written."""
        account, bill_date, tz = await self._cycle(ctx, account_id, as_of, upcoming=True)
        day, months, _ = cycle_of(account)
        settings = await self.tenant_settings(ctx)
        draft = await self._bill_row(ctx, account_id, bill_date, lock=False)
        while draft is not None and draft.state not in DRAFT_STATES:  # billed ahead: the first cycle date not
            bill_date = next_cycle_date(bill_date, day, months)        # issued yet
            draft = await self._bill_row(ctx, account_id, bill_date, lock=False)
        products = await self.products.products_billed_to(ctx, account_id)
        lines = await self.compute(ctx, account, bill_date, settings, draft.id if draft else None, products)
        doc = self.bill_document(ctx, account, bill_date, lines, settings, self.parties(account, products))
        currency = account.get("currency") or "EUR"
        doc["appliedCustomerBillingRate"] = [
            self.line_document(ctx, f"preview-{i + 1}", doc, ln, currency, tz, settings.conventions.rounding)
            for i, ln in enumerate(lines)]
        return doc

    async def _bill_row(self, ctx: Context, account_id: str, bill_date: date, *, lock: bool = True,
                        ) -> CustomerBill | None:
        stmt = select(CustomerBill).where(CustomerBill.billing_account_id == account_id,
                                          CustomerBill.bill_date == bill_date, CustomerBill.run_type == "onCycle")
        return (await ctx.session.execute(stmt.with_for_update() if lock else stmt)).scalars().first()

    async def bill_account(self, ctx: Context, account_id: str, as_of: date | None = None, *,
                           finalize: bool | None = None, tax_engine: TaxEngine | None = None,
                           ) -> dict[str, Any] | None:
        """Bill one account for its cycle date on or before ``as_of`` (today in its time zone): write the draft
        (or recompute it), finalize it when its grace period is over (or when ``finalize`` says so). Returns the
        bill, or None when there is nothing to bill or the bill is already issued."""
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                  {"k": _advisory_key(ctx.principal.tenant_id, account_id)})
        account, bill_date, tz = await self._cycle(ctx, account_id, as_of)
        settings = await self.tenant_settings(ctx)
        row = await self._bill_row(ctx, account_id, bill_date)
        if row is not None and row.state not in DRAFT_STATES:
            return None
        products = await self.products.products_billed_to(ctx, account_id)
        lines = await self.compute(ctx, account, bill_date, settings, row.id if row else None, products,
                                   tax_engine)
        if not lines and row is None:
            return None
        if row is None:
            rendered = (await self._write_new(ctx, settings, [(account, bill_date, lines, products)]))[0]
            bill_id = str(rendered["id"])
        else:
            doc = self.bill_document(ctx, account, bill_date, lines, settings, self.parties(account, products))
            excluded_total = _decimal(doc["taxIncludedAmount"]["value"])
            bill_id = row.id
            await ctx.session.execute(delete(AppliedRate).where(AppliedRate.bill_id == bill_id))
            state = row.state

            def recompute(current: dict[str, Any]) -> None:
                current.update({k: v for k, v in doc.items() if k != "state"})
                current["state"] = state

            rendered = await self.bills.change(ctx, bill_id, recompute, action="recompute")
            await ctx.session.execute(update(CustomerBill).where(CustomerBill.id == bill_id).values(
                total=excluded_total))
            await self._write_lines(ctx, settings, [(account, rendered, lines)])
        today = as_of or (await self.now(ctx)).astimezone(tz).date()
        due = today >= bill_date + timedelta(days=settings.grace_days)
        if finalize if finalize is not None else due:
            return await self.finalize(ctx, bill_id)
        return rendered

    async def _write_new(self, ctx: Context, settings: TenantBilling,
                         items: Sequence[tuple[dict[str, Any], date, list[Line], list[dict[str, Any]]]],
                         ) -> list[dict[str, Any]]:
        """Write new draft bills (``(account, bill date, lines, products)`` each) with their lines: the bills with
        their audit records and ``CustomerBillCreateEvent``s in multi-row inserts, then the lines. Returns the
        bills' representations, in order. The unique constraints refuse a charge or a cycle billed twice."""
        bills: list[tuple[dict[str, Any], Mapping[str, Any] | None]] = []
        for account, bill_date, lines, products in items:
            doc = self.bill_document(ctx, account, bill_date, lines, settings, self.parties(account, products))
            doc["id"] = str(uuid.uuid4())
            bills.append((doc, {
                "billing_account_id": account["id"], "bill_date": bill_date,
                "period_start": previous_cycle_date(bill_date, *cycle_of(account)[:2]), "period_end": bill_date,
                "run_type": "onCycle", "state": "new", "currency": account.get("currency") or "EUR",
                "total": _decimal(doc["taxIncludedAmount"]["value"])}))
        rendered = await self.bills.record_many(ctx, bills)
        await self._write_lines(ctx, settings, [(account, bill, lines) for (account, _, lines, _), bill
                                                in zip(items, rendered, strict=True)])
        return rendered

    async def _write_and_issue(self, ctx: Context, settings: TenantBilling,
                               items: Sequence[tuple[dict[str, Any], date, list[Line], list[dict[str, Any]]]],
                               due: Sequence[bool], drafts: Sequence[_Due], order: Callable[[_Due], Any],
                               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Write new bills (``(account, bill date, lines, products)`` each) and issue those ``due`` with the
        ``drafts`` due, numbered in ``order``: the same rows, numbers, audit records and events as ``_write_new``
        then ``finalize_many``, but a new bill due is written once, issued. As a line may not be added to an
        issued bill (a trigger refuses it), the lines are written first, their key to the bill deferred until the
        bills are (then checked); the number counters are taken after the lines, so that they stay locked (until
        the commit) only while the bills are written. Returns the new bills' representations (in order) and the
        issued bills by id."""
        prepared: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for account, bill_date, lines, products in items:
            doc = self.bill_document(ctx, account, bill_date, lines, settings, self.parties(account, products))
            doc["id"] = str(uuid.uuid4())
            prepared.append((self.bills.prepare(doc), {
                "billing_account_id": account["id"], "bill_date": bill_date,
                "period_start": previous_cycle_date(bill_date, *cycle_of(account)[:2]), "period_end": bill_date,
                "run_type": "onCycle", "state": "new", "currency": account.get("currency") or "EUR",
                "total": _decimal(doc["taxIncludedAmount"]["value"])}))
        if items:
            await ctx.session.execute(text(f"SET CONSTRAINTS {LINE_BILL_KEY} DEFERRED"))
            await self._write_lines(ctx, settings, [
                (account, self.bills.store.shape(ctx.base_url, doc["id"], doc), lines)
                for (account, _, lines, _), (doc, _) in zip(items, prepared, strict=True)])
        kept = await self.bills.record_many(ctx, [(doc, columns) for (doc, columns), d in zip(prepared, due,
                                                                                           strict=True) if not d])
        dues = list(drafts) + [_Due(doc["id"], columns["billing_account_id"], columns["bill_date"],
                                    columns["currency"], columns["total"], draft=(doc, columns))
                               for (doc, columns), d in zip(prepared, due, strict=True) if d]
        issued = await self._issue(ctx, sorted(dues, key=order))
        if items:
            await ctx.session.execute(text(f"SET CONSTRAINTS {LINE_BILL_KEY} IMMEDIATE"))
        drafted = iter(kept)
        return [issued[doc["id"]] if d else next(drafted) for (doc, _), d in zip(prepared, due, strict=True)], issued

    async def _write_lines(self, ctx: Context, settings: TenantBilling,
                           items: Sequence[tuple[dict[str, Any], dict[str, Any], list[Line]]]) -> None:
        """The lines of bills (``(account, bill, lines)`` each) and the usage records they bill, in multi-row
        inserts."""
        rows: list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        usage: list[dict[str, Any]] = []
        for account, bill, lines in items:
            tz = cycle_of(account)[2]
            currency = account.get("currency") or "EUR"
            for ln in lines:
                line_id = str(uuid.uuid4())
                body = self.line_document(ctx, line_id, bill, ln, currency, tz, settings.conventions.rounding)
                rows.append((line_id, body, {"bill_id": bill["id"], "billing_account_id": account["id"],
                                             "charge_key": ln.key, "period_start": ln.period_start,
                                             "period_end": ln.period_end, "amount": ln.amount}))
                usage += [{"usage_id": u, "line_id": line_id} for u in ln.usage_ids]
        if rows:
            await self.lines.store.insert_many(ctx, rows)
        await insert_rows(ctx.session, UsageItem, usage)

    async def _next_number(self, ctx: Context, series: str) -> int:
        return await self._next_numbers(ctx, series, 1)

    async def _next_numbers(self, ctx: Context, series: str, count: int) -> int:
        """Take ``count`` consecutive numbers of a series (its counter row-locked until the transaction ends:
        gapless); returns the first."""
        stmt = pg_insert(NumberCounter).values(series=series, last_value=count)
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "series"],
                                          set_={"last_value": NumberCounter.last_value + count})
        return int((await ctx.session.execute(stmt.returning(NumberCounter.last_value))).scalar_one()) - count + 1

    async def finalize(self, ctx: Context, bill_id: str, *, series_name: str | None = None) -> dict[str, Any]:
        """Issue a draft: previous balance, credit applied, amount due; the next number of its series (gapless:
        taken in this transaction, row-locked); state ``validated``. Emits ``CustomerBillStateChangeEvent``."""
        return (await self.finalize_many(ctx, [bill_id], series_name=series_name))[bill_id]

    async def finalize_many(self, ctx: Context, bill_ids: Sequence[str], *, series_name: str | None = None,
                            ) -> dict[str, dict[str, Any]]:
        """``finalize`` for many drafts in one transaction, numbered in the order given: each series' counter is
        taken once for all of them (row-locked until the commit: numbers stay gapless), the previous balances read
        in one query (an account with several drafts: each issued on the balance the one before left), the bills
        changed, audited and announced in bulk. Returns the issued bills by id."""
        return await self._issue(ctx, await self._drafts(ctx, bill_ids), series_name=series_name)

    async def _drafts(self, ctx: Context, bill_ids: Sequence[str]) -> list[_Due]:
        """Drafts to issue, locked (in id order), in the order given; refused if one is missing or issued."""
        ids = list(dict.fromkeys(bill_ids))
        if not ids:
            return []
        rows = {r.id: r for r in (await ctx.session.execute(
            select(CustomerBill).where(CustomerBill.id.in_(ids)).order_by(CustomerBill.id).with_for_update()
            .execution_options(populate_existing=True))).scalars()}
        for bill_id in ids:
            row = rows.get(bill_id)
            if row is None:
                raise NotFound(f"CustomerBill '{bill_id}' not found", code="NOT_FOUND")
            if row.state not in DRAFT_STATES:
                raise BillIssued(f"CustomerBill '{bill_id}' is already issued as {row.number}")
        return [_Due(bill_id, rows[bill_id].billing_account_id, rows[bill_id].bill_date, rows[bill_id].currency,
                     rows[bill_id].total, rows[bill_id]) for bill_id in ids]

    async def _issue(self, ctx: Context, dues: Sequence[_Due], *, series_name: str | None = None,
                     ) -> dict[str, dict[str, Any]]:
        """Issue bills, numbered in the order given: drafts already written (``row``: the document changed, as
        ``finalize`` does) and new bills (``draft``: the document recorded and changed at once, written once issued,
        with the audit records and events of a draft written then finalized). Returns the issued bills by id."""
        if not dues:
            return {}
        settings = await self.tenant_settings(ctx)
        balances = await self.balances.open_balances(ctx, sorted({d.account_id for d in dues}))
        fmt = settings.number_format
        name = series_name or settings.number_series

        def series_of(d: _Due) -> str:
            year, month = d.bill_date.year, d.bill_date.month
            return name + ("/" + str(year) if "{year" in fmt else "") + (f"-{month:02d}" if "{month" in fmt else "")

        wanted: dict[str, int] = {}
        for d in dues:
            wanted[series_of(d)] = wanted.get(series_of(d), 0) + 1
        # the series' counters first, then the issue order's (as one bill's finalization takes them: no deadlock)
        seqs = {series: await self._next_numbers(ctx, series, n) for series, n in sorted(wanted.items())}
        issue = await self._next_numbers(ctx, ISSUE_SERIES, len(dues))
        mutations: dict[str, Callable[[dict[str, Any]], None]] = {}
        columns: dict[str, tuple[str, Decimal, int]] = {}
        fresh: list[tuple[dict[str, Any], dict[str, Any], Mapping[str, Any]]] = []
        for i, d in enumerate(dues):
            previous = balances.get(d.account_id, Decimal(0))
            currency, total = d.currency, d.total
            balance = previous + total
            balances[d.account_id] = balance
            credit_applied = min(max(-previous, Decimal(0)), max(total, Decimal(0)))
            due = max(balance, Decimal(0))
            series = series_of(d)
            number = fmt.format(series=name, year=d.bill_date.year, month=d.bill_date.month, seq=seqs[series])
            seqs[series] += 1
            columns[d.bill_id] = (number, balance, issue + i)
            document = {"id": f"{d.bill_id}.pdf", "@type": "AttachmentRefOrValue", "attachmentType": "bill",
                        "mimeType": "application/pdf", "name": f"{number}.pdf",
                        "url": f"{ctx.base_url}/billing/v1/customerBill/{d.bill_id}/document.pdf"}
            values = {"state": "validated", "billNo": number, "billDocument": [document],
                      "previousBalance": _money(previous, currency),
                      "creditApplied": _money(credit_applied, currency),
                      "amountDue": _money(due, currency), "remainingAmount": _money(due, currency)}
            if d.draft is not None:
                draft, row_columns = d.draft
                fresh.append((draft, {**draft, **values}, {**row_columns, "state": "validated", "number": number,
                                                           "balance_after": balance, "issue_seq": issue + i}))
                continue

            def issue_it(doc: dict[str, Any], values: dict[str, Any] = values) -> None:
                doc.update(values)

            mutations[d.bill_id] = issue_it
        rendered = await self.bills.change_many(ctx, mutations, action="finalize")
        if mutations:
            for d in dues:
                if d.row is not None:
                    number, balance, seq = columns[d.bill_id]
                    d.row.state, d.row.number, d.row.balance_after, d.row.issue_seq = ("validated", number, balance,
                                                                                       seq)
            await ctx.session.flush()
        if fresh:
            for out in await self.bills.record_changed_many(ctx, fresh, action="finalize"):
                rendered[str(out["id"])] = out
        return {d.bill_id: rendered[d.bill_id] for d in dues}

    async def credit_note(self, ctx: Context, bill_id: str, *, amount: Decimal | None = None, reason: str,
                          ) -> dict[str, Any]:
        """Correct an issued bill by a credit note: a numbered document of its own (series ``creditNoteSeries``)
        crediting the account's balance with ``amount`` tax included (default: all that is still creditable), the
        taxes credited in the proportions of the bill's. The bill itself never changes; the credit notes of a bill
        never credit more than it charged."""
        orig = (await ctx.session.execute(select(CustomerBill).where(CustomerBill.id == bill_id)
                                          .with_for_update())).scalars().first()
        if orig is None:
            raise NotFound(f"CustomerBill '{bill_id}' not found", code="NOT_FOUND")
        if orig.state in DRAFT_STATES or orig.corrects_bill_id is not None:
            raise InvalidBilling(f"CustomerBill '{bill_id}' is not an issued bill: a draft is recomputed, not "
                                 "credited, and a credit note is not credited")
        if not reason.strip() or len(reason) > 500:
            raise InvalidBilling("'reason' must be given (at most 500 characters)")
        credited = -(await ctx.session.scalar(select(func.coalesce(func.sum(CustomerBill.total), 0)).where(
            CustomerBill.corrects_bill_id == bill_id)) or Decimal(0))
        creditable = orig.total - credited
        currency = orig.currency
        if amount is not None and round_money(amount, currency) != amount:
            raise InvalidBilling(f"'amount' {amount} has more decimals than {currency} allows")
        amount = round_money(creditable if amount is None else amount, currency)
        if amount <= 0 or amount > creditable:
            raise DomainError(f"a credit note of {amount} {currency}: bill {orig.number} can still be credited "
                              f"{max(creditable, Decimal(0))} {currency}", code="CREDIT_EXCEEDS_BILL", status=409)
        original = (await self.bills.get(ctx, bill_id))
        tz = cycle_of(await self.accounts.get_billing_account(ctx, orig.billing_account_id))[2]
        today = (await self.now(ctx)).astimezone(tz).date()
        gross = _decimal(original["taxIncludedAmount"]["value"])
        # each tax is credited in proportion to all that the bill's notes credit with this one, less what the
        # earlier notes credited of it: however the bill is credited in pieces, its notes together credit exactly
        # its taxes (each piece rounded on its own would not add up to them)
        before: dict[tuple[str, Decimal], Decimal] = {}
        for (body,) in (await ctx.session.execute(select(CustomerBill.body).where(
                CustomerBill.corrects_bill_id == bill_id))).all():
            for item in (body or {}).get("taxItem") or []:
                key = (str(item.get("taxCategory")), _decimal(item.get("taxRate")))
                before[key] = before.get(key, Decimal(0)) - _decimal(item["taxAmount"]["value"])
        taxes = []
        for item in original.get("taxItem") or []:
            name, _, category = str(item.get("taxCategory", "VAT/standard")).partition("/")
            rate = _decimal(item.get("taxRate"))
            so_far = before.get((f"{name}/{category or 'standard'}", rate), Decimal(0))
            share = round_money((credited + amount) * _decimal(item["taxAmount"]["value"]) / gross, currency) \
                - so_far if gross else Decimal(0)
            taxes.append(Tax(name, category or "standard", rate, -share))
        net = amount + sum((t.amount for t in taxes), Decimal(0))
        line = Line(f"creditNote|{bill_id}", "creditNote", f"Credit note: {reason}", today, today, -net, Decimal(0),
                    None, {"correctedBill": orig.number or bill_id}, taxes=taxes)
        excluded, included, items = self._totals([line], currency)
        note_id = str(uuid.uuid4())
        kept: dict[str, Any] = {k: original[k] for k in ("billingAccount", "billingPeriod", "relatedParty")
                                if k in original}
        doc: dict[str, Any] = {**kept, "id": note_id, "@type": EXTENSION_TYPE, "@baseType": "CustomerBill",
                               "@schemaLocation": original.get("@schemaLocation"),
                               "billDate": midnight_text(today, tz), "category": "creditNote",
                               "runType": "offCycle", "state": "new", "reason": reason,
                               "correctedBill": {"id": bill_id, "href": original.get("href"), "billNo": orig.number},
                               "taxExcludedAmount": _money(excluded, currency),
                               "taxIncludedAmount": _money(included, currency), "taxItem": items}
        rendered = await self.bills.record(ctx, doc, columns={
            "billing_account_id": orig.billing_account_id, "bill_date": today, "period_start": orig.period_start,
            "period_end": orig.period_end, "run_type": "offCycle", "state": "new", "currency": currency,
            "total": included, "corrects_bill_id": bill_id})
        line_id = str(uuid.uuid4())
        await self.lines.store.insert(
            ctx, line_id, self.line_document(ctx, line_id, rendered, line, currency, tz, ""),
            bill_id=note_id, billing_account_id=orig.billing_account_id, charge_key=f"{line.key}|{note_id}",
            period_start=today, period_end=today, amount=line.amount)
        settings = await self.tenant_settings(ctx)
        return await self.finalize(ctx, note_id, series_name=settings.credit_note_series)

    async def customer_bills(self, ctx: Context, customer: dict[str, Any]) -> list[dict[str, Any]]:
        """The customer 360 section: the bills and credit notes of the customer or its party, newest first."""
        ids = [i for i in (customer.get("id"), (customer.get("engagedParty") or {}).get("id")) if i]
        bills = await list_all(ctx, self.bills, {"relatedParty.id": ids})
        keep = ("id", "href", "billNo", "category", "billDate", "state", "billingAccount", "taxIncludedAmount",
                "amountDue", "paymentDueDate", "billDocument")
        return [{k: b[k] for k in keep if k in b} for b in bills]

    async def set_state(self, ctx: Context, bill_id: str, state: str) -> dict[str, Any]:
        """A state change asked through the API: finalization to ``validated``, else the state alone."""
        row = await ctx.session.get(CustomerBill, bill_id)
        if row is None:
            raise NotFound(f"CustomerBill '{bill_id}' not found", code="NOT_FOUND")
        if state == row.state:
            return await self.bills.get(ctx, bill_id)
        if state in ("partiallyPaid", "settled"):
            raise DomainError(f"a bill becomes '{state}' when payments are allocated to it, not by a request",
                              code="STATE_SET_BY_PAYMENTS", status=409)
        if state == "validated" and row.state in DRAFT_STATES:
            return await self.finalize(ctx, bill_id)

        def move(doc: dict[str, Any]) -> None:
            doc["state"] = state

        rendered = await self.bills.change(ctx, bill_id, move)
        await ctx.session.execute(update(CustomerBill).where(CustomerBill.id == bill_id).values(state=state))
        return rendered

    async def get_bill(self, ctx: Context, bill_id: str) -> dict[str, Any]:
        return await self.bills.get(ctx, bill_id)

    async def bill_lines(self, ctx: Context, bill_id: str) -> list[dict[str, Any]]:
        """The lines of a bill (TMF678 AppliedCustomerBillingRate documents): what payments posts per account."""
        rows = await ctx.session.execute(select(AppliedRate.body).where(AppliedRate.bill_id == bill_id)
                                         .order_by(AppliedRate.id))
        return [dict(r[0]) for r in rows]

    async def record_payment_state(self, ctx: Context, bill_id: str, state: str) -> None:
        """Payments settled part (``partiallyPaid``) or all (``settled``) of an issued bill: its state follows."""
        row = (await ctx.session.execute(select(CustomerBill).where(CustomerBill.id == bill_id).with_for_update()
                                         .execution_options(populate_existing=True))).scalars().first()
        if row is None:
            raise NotFound(f"CustomerBill '{bill_id}' not found", code="NOT_FOUND")
        if row.state == state or row.state in DRAFT_STATES:
            return

        def move(doc: dict[str, Any]) -> None:
            doc["state"] = state

        await self.bills.change(ctx, bill_id, move, action="payment")
        await ctx.session.execute(update(CustomerBill).where(CustomerBill.id == bill_id).values(state=state))

    async def record_payment_states(self, ctx: Context, states: dict[str, str]) -> None:
        """``record_payment_state`` for many bills at once (``{bill id: state}``): the bills locked in one query (in
        id order), the documents changed, audited and announced in bulk, the state columns set in one statement
        per state."""
        rows = (await ctx.session.execute(select(CustomerBill.id, CustomerBill.state)
                                          .where(CustomerBill.id.in_(list(states))).order_by(CustomerBill.id)
                                          .with_for_update())).all()
        found = dict((str(i), str(st)) for i, st in rows)
        missing = sorted(set(states) - set(found))
        if missing:
            raise NotFound(f"CustomerBill '{missing[0]}' not found", code="NOT_FOUND")
        moves = {b: st for b, st in states.items() if found[b] != st and found[b] not in DRAFT_STATES}
        if not moves:
            return

        def move(state: str) -> Callable[[dict[str, Any]], None]:
            def apply(doc: dict[str, Any]) -> None:
                doc["state"] = state
            return apply

        await self.bills.change_many(ctx, {b: move(st) for b, st in moves.items()}, action="payment")
        for state in sorted(set(moves.values())):
            await ctx.session.execute(update(CustomerBill).where(
                CustomerBill.id.in_([b for b, st in moves.items() if st == state])).values(state=state))

    # --- the run ----------------------------------------------------------------------------------------------
    async def run(self, ctx: Context, as_of: date | None = None, *, finalize: bool | None = None,
                  account_ids: Sequence[str] | None = None,
                  after_account: Callable[[str], Awaitable[None]] | None = None) -> RunReport:
        """Bill every account of the tenant (or ``account_ids``), a page of accounts at a time
        (``bill_accounts``): an account that fails is parked with its reason and the run goes on; one billed
        concurrently is counted as skipped."""
        report = RunReport(as_of)
        if account_ids is not None:
            await self.bill_accounts(ctx, account_ids, as_of, finalize=finalize, report=report,
                                     after_account=after_account)
            return report
        after = ""
        while page := await self.accounts.billing_account_ids(ctx, after=after):
            await self.bill_accounts(ctx, page, as_of, finalize=finalize, report=report, after_account=after_account)
            after = page[-1]
        return report

    async def bill_accounts(self, ctx: Context, account_ids: Sequence[str], as_of: date | None, *,
                            finalize: bool | None, report: RunReport,
                            after_account: Callable[[str], Awaitable[None]] | None = None,
                            partition: bool = False) -> list[str]:
        """Bill many accounts as ``bill_account`` bills each (the same computation, the same bills, lines, numbers,
        balances, audit records and events), set-based: their data read in one query per kind
        (``PartitionReads``); an account with a draft of the bill date already recomputed alone; then the new bills
        and their lines written in multi-row inserts, and the bills due issued together, numbered in one go. A new
        bill due is written once, issued (``_write_and_issue``: its lines first, then its number, then the bill),
        with the audit records and events of a draft written then finalized. If the bulk write meets a unique
        constraint (an account billed concurrently), its accounts are billed one at a time, each in a savepoint,
        and their drafts due issued after (``finalize_many``).

        Which bills are issued, in which order: the accounts' bills due (``finalize``, else their grace period
        over), in the order of ``account_ids``; with ``partition`` (a bill run's partition, ``runs.work_run``),
        every draft ``new`` of the accounts dated on or before ``as_of`` and due (any draft locked by another
        transaction is left), in the order of their bill date, account and id. Returns the ids of the bills
        issued."""
        ids = list(dict.fromkeys(account_ids))
        report.accounts += len(ids)
        if not ids:
            return []
        tenant = ctx.principal.tenant_id
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
                                  {"keys": sorted({_advisory_key(tenant, a) for a in ids})})
        settings = await self.tenant_settings(ctx)
        accounts = await self.accounts.get_billing_accounts(ctx, ids)
        now = await self.now(ctx) if as_of is None else None
        plan: dict[str, tuple[dict[str, Any], date, date, ZoneInfo, int, int]] = {}
        for account_id in ids:
            account = accounts.get(account_id)
            try:
                if account is None:
                    raise NotFound(f"BillingAccount '{account_id}' not found", code="NOT_FOUND")
                day, months, tz = cycle_of(account)
            except (DomainError, ValueError) as exc:
                report.failed[account_id] = str(exc)
                continue
            today = as_of or (now or utcnow()).astimezone(tz).date()
            plan[account_id] = (account, cycle_date_on(today, day, months), today, tz, day, months)
        rows: dict[str, CustomerBill] = {}
        if plan:
            for r in (await ctx.session.execute(select(CustomerBill).where(
                    CustomerBill.billing_account_id.in_(list(plan)), CustomerBill.run_type == "onCycle",
                    CustomerBill.bill_date.in_(sorted({p[1] for p in plan.values()}))).with_for_update())).scalars():
                if plan[r.billing_account_id][1] == r.bill_date:
                    rows[r.billing_account_id] = r
        fresh = {a: p for a, p in plan.items() if a not in rows}
        reads = PartitionReads(self, ctx)
        await reads.load({a: (p[1], p[3], p[4], p[5]) for a, p in fresh.items()})
        new: list[tuple[dict[str, Any], date, list[Line], list[dict[str, Any]]]] = []
        alone: list[str] = []
        for account_id in ids:
            try:
                if account_id not in plan:
                    continue
                if account_id in rows:
                    if rows[account_id].state in DRAFT_STATES:
                        alone.append(account_id)
                    else:
                        report.skipped += 1  # issued already
                    continue
                account, bill_date = plan[account_id][:2]
                products = await reads.products(account_id)
                try:
                    lines = await self.compute(ctx, account, bill_date, settings, None, products, reads=reads)
                except (DomainError, ValueError) as exc:
                    report.failed[account_id] = str(exc)
                    continue
                if lines:
                    new.append((account, bill_date, lines, products))
                else:
                    report.skipped += 1
            finally:
                if after_account is not None:
                    await after_account(account_id)
        position = {a: i for i, a in enumerate(ids)}
        grace = timedelta(days=settings.grace_days)

        def is_due(account_id: str) -> bool:
            today, bill_date = plan[account_id][2], plan[account_id][1]
            return finalize if finalize is not None else today >= bill_date + grace

        async def drafts_due() -> list[_Due]:
            """A partition's drafts due, locked, in the order they are numbered."""
            assert as_of is not None, "a partition is billed as of a date"
            if finalize is False:
                return []
            rows = (await ctx.session.execute(
                select(CustomerBill).where(CustomerBill.billing_account_id.in_(ids), CustomerBill.state == "new",
                                           CustomerBill.bill_date <= as_of)
                .order_by(CustomerBill.bill_date, CustomerBill.billing_account_id, CustomerBill.id)
                .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalars().all()
            return [_Due(r.id, r.billing_account_id, r.bill_date, r.currency, r.total, r) for r in rows
                    if finalize or as_of >= r.bill_date + grace]

        def order(d: _Due) -> Any:
            return (d.bill_date, d.account_id, d.bill_id) if partition else position[d.account_id]

        billed: list[tuple[str, dict[str, Any]]] = []

        async def one_by_one(account_ids: list[str]) -> None:
            for account_id in sorted(account_ids, key=position.__getitem__):
                try:
                    async with ctx.session.begin_nested():
                        bill = await self.bill_account(ctx, account_id, as_of, finalize=False)
                except IntegrityError:
                    report.skipped += 1
                    continue
                except (DomainError, ValueError) as exc:
                    report.failed[account_id] = str(exc)
                    continue
                if bill is None:
                    report.skipped += 1
                else:
                    billed.append((account_id, bill))

        await one_by_one(alone)  # drafts of the bill date already: recomputed (and issued below, when due)
        if partition:
            existing = await drafts_due()
        else:
            existing = await self._drafts(ctx, [str(bill["id"]) for account_id, bill in billed if is_due(account_id)])
        try:
            async with ctx.session.begin_nested():
                written, issued = await self._write_and_issue(ctx, settings, new,
                                                              [is_due(account["id"]) for account, *_ in new],
                                                              existing, order)
            billed += [(account["id"], bill) for (account, *_), bill in zip(new, written, strict=True)]
        except IntegrityError:
            await one_by_one([account["id"] for account, *_ in new])
            if partition:
                dues = await drafts_due()
            else:
                dues = await self._drafts(ctx, [str(bill["id"]) for account_id, bill in billed
                                                if is_due(account_id)])
            issued = await self._issue(ctx, sorted(dues, key=order))
        billed.sort(key=lambda b: position[b[0]])
        for _, bill in billed:
            bill = issued.get(str(bill["id"]), bill)
            report.billed += 1
            if not partition and bill.get("state") == "validated":
                report.finalized += 1
            amount = bill["taxIncludedAmount"]
            report.totals[amount["unit"]] = report.totals.get(amount["unit"], Decimal(0)) + _decimal(amount["value"])
        if partition:
            report.finalized += len(issued)
        return list(issued)


#: the most usage records one document itemizes (a bill that billed more lists these and says how many in all)
MAX_ITEMIZED = 5000


async def itemized_usage(ctx: Context, usage: RatedUsageSource | None, bill_ids: Sequence[str],
                         ) -> dict[str, document.Itemized]:
    """Per bill among ``bill_ids``: the usage records its postpaid lines billed (``billing_usage_item``), the first
    ``MAX_ITEMIZED`` in time order, and their number — what the document itemizes. Credit notes and bills of no
    usage have none."""
    if usage is None or not bill_ids:
        return {}
    per_bill: dict[str, list[str]] = {}
    for bill_id, usage_id in await ctx.session.execute(
            select(AppliedRate.bill_id, UsageItem.usage_id).join(AppliedRate, AppliedRate.id == UsageItem.line_id)
            .where(AppliedRate.bill_id.in_(list(bill_ids)))):
        per_bill.setdefault(str(bill_id), []).append(str(usage_id))
    if not per_bill:
        return {}
    records = await usage.itemized_usage(ctx, [u for ids in per_bill.values() for u in ids])
    owner = {u: b for b, ids in per_bill.items() for u in ids}
    listed: dict[str, list[dict[str, Any]]] = {}
    for r in records:  # in time order
        listed.setdefault(owner[r["id"]], []).append(r)
    return {b: document.Itemized(listed.get(b, [])[:MAX_ITEMIZED], len(ids)) for b, ids in per_bill.items()}


async def bill_pdf(ctx: Context, bills: ResourceService, store: ObjectStore, bill_id: str,
                   accounts: BillingAccounts | None = None, usage: RatedUsageSource | None = None,
                   ) -> tuple[bytes, StoredObject]:
    """The PDF of an issued bill or credit note, rendered once and kept write-once in the object store (key
    ``billing/<tenant>/<bill id>.pdf``, with its SHA-256): every later request gets the same bytes."""
    row = await ctx.session.get(CustomerBill, bill_id)
    if row is None:
        raise NotFound(f"CustomerBill '{bill_id}' not found", code="NOT_FOUND")
    bill = await bills.get(ctx, bill_id)  # customers: only their own bills
    if row.state in DRAFT_STATES:
        raise DomainError(f"CustomerBill '{bill_id}' is a draft: it has no document until it is issued",
                          code="BILL_NOT_ISSUED", status=409)
    key = f"billing/{ctx.principal.tenant_id}/{bill_id}.pdf"
    found = await store.head(key)
    if found is not None:
        return await store.get(key), found
    lines = [r[0] for r in await ctx.session.execute(select(AppliedRate.body).where(AppliedRate.bill_id == bill_id)
                                                     .order_by(AppliedRate.id))]
    tenant = await ctx.session.get(Tenant, ctx.principal.tenant_id)
    tz = None
    if accounts is not None:  # dates on the document: local dates of the account, whoever asks first
        system = system_context(ctx.principal.tenant_id, ctx.session, ctx.base_url, "billing")
        try:
            tz = cycle_of(await accounts.get_billing_account(system, row.billing_account_id))[2]
        except DomainError:
            tz = None
    itemized = (await itemized_usage(ctx, usage, [bill_id])).get(bill_id)
    data = document.render(bill, lines, operator=tenant.name if tenant else ctx.principal.tenant_id, tz=tz,
                           itemized=itemized)
    try:
        stored = await store.put(key, data, content_type="application/pdf",
                                 metadata={"bill-no": str(row.number or ""), "tenant": ctx.principal.tenant_id})
    except ObjectExists:  # rendered at the same time by another request: the first copy stands
        return await store.get(key), await store.head(key) or stored_placeholder(key)
    return data, stored


def stored_placeholder(key: str) -> StoredObject:
    return StoredObject(key=key, sha256="", size=0, content_type="application/pdf")


class Balances:
    """What a billing account owes (``account.service.OpenBalances``), from billing's own tables only: the root
    builds it before the account domain, which asks it."""

    def __init__(self) -> None:
        self._quantize: dict[str, Decimal] = {k: Decimal(1).scaleb(-v) for k, v in MINOR_UNITS.items()}

    async def open_balance(self, ctx: Context, billing_account_id: str) -> Decimal:
        row = (await ctx.session.execute(
            select(CustomerBill.balance_after, CustomerBill.currency).where(
                CustomerBill.billing_account_id == billing_account_id, CustomerBill.balance_after.is_not(None))
            .order_by(CustomerBill.issue_seq.desc()).limit(1))).first()
        if row is None or row[0] is None:
            return Decimal(0)
        return row[0].quantize(self._quantize.get(row[1], Decimal("0.01")))

    async def open_balances(self, ctx: Context, billing_account_ids: Sequence[str]) -> dict[str, Decimal]:
        """``open_balance`` of many accounts in one query (those without an issued bill: 0)."""
        rows = await ctx.session.execute(
            select(CustomerBill.billing_account_id, CustomerBill.balance_after, CustomerBill.currency)
            .where(CustomerBill.billing_account_id.in_(list(billing_account_ids)),
                   CustomerBill.balance_after.is_not(None))
            .order_by(CustomerBill.billing_account_id, CustomerBill.issue_seq.desc())
            .distinct(CustomerBill.billing_account_id))
        out = dict.fromkeys(billing_account_ids, Decimal(0))
        for account_id, balance, currency in rows:
            if balance is not None:
                out[account_id] = balance.quantize(self._quantize.get(currency, Decimal("0.01")))
        return out

    async def billed_totals(self, ctx: Context, billing_account_ids: Sequence[str]) -> dict[str, Decimal]:
        """``billed_total`` of many accounts in one query."""
        rows = await ctx.session.execute(
            select(CustomerBill.billing_account_id, func.sum(CustomerBill.total))
            .where(CustomerBill.billing_account_id.in_(list(billing_account_ids)),
                   CustomerBill.balance_after.is_not(None)).group_by(CustomerBill.billing_account_id))
        out = dict.fromkeys(billing_account_ids, Decimal(0))
        for account_id, total in rows:
            out[account_id] = Decimal(total or 0)
        return out

    async def billed_total(self, ctx: Context, billing_account_id: str) -> Decimal:
        """What the account's issued bills total (tax included), whatever was paid."""
        total = await ctx.session.scalar(select(func.coalesce(func.sum(CustomerBill.total), 0)).where(
            CustomerBill.billing_account_id == billing_account_id, CustomerBill.balance_after.is_not(None)))
        return Decimal(total or 0)

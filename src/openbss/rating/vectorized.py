"""The vectorized rating core (Polars): the same figures as the scalar path (``rater.rate_record``, itself online
charging's) for whole columns of guided records at once — destination zone by longest prefix, rating blocks applied
once to the quantity, allowances consumed per counter in event-time order, the money-paid units priced as
``pricing.usage.money_minor`` prices them (rounded up to the currency's minor unit, no more than the maximum charge),
the setup charge with the first money-paid unit (or apart, rounded up, when it comes even with an allowance).

Exact: money is integer arithmetic on the exact fractions of the rate's price, unit and setup charge
(``amount_minor = ceil((setup + m / per * price) * 10^minor)`` of ``m`` money-paid units, as
``(A + m·B + D - 1) // D``), never floating point. Rates with tiers or with blocks rounded on their own
(``decimals``), and quantities so large that the integers could overflow 63 bits, are left to the scalar path
(``VectorizedRateError``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import polars as pl

from openbss.catalog.service import CompiledTariff
from openbss.pricing.bands import band_split
from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.usage import RatingError, UnitRate, allowance_blocks, money_minor, setup_minor, unit_rate
from openbss.rating.layouts import UsageRecord
from openbss.rating.rater import (
    Consumption,
    Line,
    Rated,
    Unratable,
    allowance_quantity,
    period_of,
    rate_record,
    resolve_rate,
)

LIMIT = 2**62


class VectorizedRateError(ValueError):
    """A rate or a batch the vectorized path does not take (tiers, a risk of integer overflow)."""


@dataclass(frozen=True)
class RateConstants:
    """A flat rate as integers: amount·10^minor of ``m`` money-paid units = (A + m·B) / D; increments; the setup
    charge apart in minor units (0 unless it comes even with an allowance); the maximum charge in minor units."""

    a: int
    b: int
    d: int
    initial: int
    subsequent: int
    setup_apart: int = 0
    cap: int = LIMIT


def constants(rate: UnitRate) -> RateConstants:
    if rate.tiers:
        raise VectorizedRateError("tiered rates are rated by the scalar path")
    if rate.decimals is not None:
        raise VectorizedRateError("rates rounded per block are rated by the scalar path")
    if rate.increment_tiers:
        raise VectorizedRateError("tiers with their own increments are rated by the scalar path")
    scale = 10 ** MINOR_UNITS[rate.currency]
    pn, pd = Decimal(rate.price).as_integer_ratio()
    qn, qd = Decimal(rate.per).as_integer_ratio()
    sn, sd = Decimal(0 if rate.setup_always else rate.setup).as_integer_ratio()
    a, b, d = sn * pd * qn * scale, pn * qd * sd * scale, sd * pd * qn
    g = math.gcd(math.gcd(a, b), d)
    # the maximum charge in minor units, as money_minor caps it (the price of one unit at the maximum charge)
    cap = LIMIT if rate.max_charge is None else money_minor(1, replace(rate, price=rate.max_charge, per=Decimal(1),
                                                                       setup=Decimal(0), max_charge=None))
    return RateConstants(a // g, b // g, d // g, rate.initial, rate.subsequent, setup_minor(rate), cap)


def longest_prefix(numbers: pl.Expr, prefixes: Mapping[str, str]) -> tuple[pl.Expr, pl.Expr]:
    """(matched prefix, zone) of each number: one hash lookup per prefix length, the longest match wins."""
    by_length: dict[int, dict[str, str]] = {}
    for digits, name in prefixes.items():
        by_length.setdefault(len(digits), {})[digits] = name
    lengths = sorted(by_length, reverse=True)
    heads = [numbers.str.slice(0, n) for n in lengths]
    zone = pl.coalesce([h.replace_strict(by_length[n], default=None, return_dtype=pl.String)
                        for h, n in zip(heads, lengths, strict=True)])
    prefix = pl.coalesce([pl.when(h.is_in(list(by_length[n]))).then(h)
                          for h, n in zip(heads, lengths, strict=True)])
    return prefix, zone


class PrefixIntervals:
    """A destination table as sorted intervals, for a binary search per number.

    A prefix ``P`` of length ``L`` covers the numbers whose first ``W`` digits (``W`` the longest prefix, the
    number right-padded with zeros) lie in ``[P·10^(W-L), (P+1)·10^(W-L))``; prefixes nest, and the longest prefix
    of a number is the innermost interval holding it. The table is cut, once, into elementary segments, each
    labelled with its innermost prefix; a number's zone is then one ``search_sorted``.
    A number shorter than the prefix its segment names is looked up again, by prefix length (rare)."""

    def __init__(self, prefixes: Mapping[str, str], zones: Mapping[str, int]) -> None:
        self.prefixes, self.zones = dict(prefixes), dict(zones)
        self.width = max(len(p) for p in prefixes)
        lengths = sorted({len(p) for p in prefixes}, reverse=True)

        def match(digits: str) -> tuple[str, str] | None:  # PrefixTable.match, on digits already normalized
            for n in lengths:
                zone = self.prefixes.get(digits[:n])
                if zone is not None:
                    return digits[:n], zone
            return None

        points = sorted({b for p in prefixes for b in (int(p) * 10 ** (self.width - len(p)),
                                                       (int(p) + 1) * 10 ** (self.width - len(p)))} | {0})
        zone_of: list[int | None] = []
        length_of: list[int] = []
        for point in points:
            found = match(str(point).zfill(self.width)) if point < 10**self.width else None
            zone_of.append(self.zones[found[1]] if found else None)
            length_of.append(len(found[0]) if found else 0)
        self.starts = pl.Series(points, dtype=pl.Int64)
        self.zone = pl.Series(zone_of, dtype=pl.Int32)
        self.length = pl.Series(length_of, dtype=pl.Int64)

    def lookup(self, numbers: pl.Series) -> pl.Series:
        """The zone index of each number's longest prefix (null: no prefix matches)."""
        w = self.width
        # the first w digits as an integer, right-padded with zeros: from the whole number read as an integer
        # (digits only, up to 18), scaled by a power of ten — no string slicing or padding per number
        tens = pl.lit(pl.Series([10**k for k in range(19)], dtype=pl.Int64))
        length = pl.col("n").str.len_bytes().cast(pl.Int64)
        whole = pl.col("n").cast(pl.Int64, strict=False)
        scaled = (pl.when(length >= w).then(whole // tens.gather((length - w).clip(0, 18)))
                  .otherwise(whole * tens.gather((w - length).clip(0, 18))))
        frame = pl.DataFrame({"n": numbers}).with_columns(
            pl.min_horizontal(length, pl.lit(w, dtype=pl.Int64)).alias("size"),
            pl.when(length <= 18).then(scaled).alias("v"))
        frame = frame.with_columns(
            (pl.lit(self.starts).search_sorted(pl.col("v"), side="right") - 1).cast(pl.Int64).alias("seg"))
        frame = frame.with_columns(pl.lit(self.zone).gather(pl.col("seg")).alias("zone"),
                                   pl.lit(self.length).gather(pl.col("seg")).alias("plen"))
        short = frame.select((pl.col("plen") > pl.col("size")).arg_true()).to_series()
        zone = frame["zone"]
        if len(short):
            again = pl.DataFrame({"n": numbers.gather(short)}).select(
                _zone_by_length(pl.col("n"), self.prefixes, self.zones)).to_series()
            zone = zone.scatter(short, again)
        return zone


def _zone_by_length(numbers: pl.Expr, prefixes: Mapping[str, str], zones: Mapping[str, int]) -> pl.Expr:
    by_length: dict[int, dict[str, int]] = {}
    for digits, name in prefixes.items():
        by_length.setdefault(len(digits), {})[digits] = zones[name]
    return pl.coalesce([numbers.str.slice(0, n).replace_strict(by_length[n], default=None, return_dtype=pl.Int32)
                        for n in sorted(by_length, reverse=True)])


def rate_frame(frame: pl.DataFrame, rates: Sequence[UnitRate]) -> pl.DataFrame:
    """Rate guided records. Columns in: ``rate`` (index into ``rates``), ``quantity`` (base units), ``counter``
    (the allowance counter the record draws on: account, period and allowance; null for none), ``allowance``
    (what the counter had left before this batch; null for none), ``event_time`` and ``key`` (the event-time
    order, ties by key). Columns added: ``billable``, ``allowance_units``, ``amount_minor``."""
    consts = [constants(r) for r in rates]
    top = frame["quantity"].max()
    max_quantity = int(top) if isinstance(top, int) else 0
    for c in consts:
        billable_max = max_quantity + 2 * (c.initial + c.subsequent)
        if 2 * (c.a + billable_max * c.b) + c.d >= LIMIT:
            raise VectorizedRateError("quantities too large for 63-bit integers: use the scalar path")
    ini, sub = pl.col("_initial"), pl.col("_subsequent")

    def increments(q: pl.Expr) -> pl.Expr:  # pricing.usage.billable
        return pl.when(q == 0).then(0).when(q <= ini).then(ini).otherwise(ini + ((q - ini + sub - 1) // sub) * sub)

    def per_rate(values: list[int]) -> pl.Expr:
        return pl.lit(pl.Series(values, dtype=pl.Int64)).gather(pl.col("rate"))

    # the billable units of every record (in the input order)
    narrow = (frame.select("rate", "quantity", "counter", "allowance", "event_time", "key")
              .with_columns(per_rate([c.initial for c in consts]).alias("_initial"),
                            per_rate([c.subsequent for c in consts]).alias("_subsequent"))
              .with_columns(increments(pl.col("quantity")).cast(pl.Int64).alias("billable")))
    # only the records that draw on an allowance are put in the allowance order (counter, event time, key) — the
    # others take nothing whatever their order —, and their allowance units go back to their rows by index
    drawing = pl.col("counter").is_not_null() & pl.col("allowance").is_not_null()
    ordered = (narrow.select("counter", "allowance", "event_time", "key", "billable").with_row_index("_row")
               .filter(drawing).sort(["counter", "event_time", "key"]))
    # running total per counter on the sorted frame: the global running total less the total before the
    # counter's first row (a window over a million counters is several times slower)
    total = pl.col("billable").cum_sum()
    first = pl.col("counter").ne_missing(pl.col("counter").shift(1))
    start = pl.when(first).then(total - pl.col("billable")).forward_fill()
    before = total - pl.col("billable") - start
    taken = pl.min_horizontal(pl.max_horizontal(pl.col("allowance") - before, 0), pl.col("billable"))
    ordered = ordered.select("_row", taken.cast(pl.Int64).alias("allowance_units"))
    units = pl.zeros(frame.height, dtype=pl.Int64, eager=True).scatter(ordered["_row"], ordered["allowance_units"])
    # what allowances leave is priced as online charging prices it: money_minor(money-paid units) — the blocks
    # were applied once, to the quantity — plus the setup charge apart
    rest = pl.col("billable") - pl.col("allowance_units")
    money = pl.min_horizontal((pl.col("_a") + rest * pl.col("_b") + pl.col("_d") - 1) // pl.col("_d"), pl.col("_cap"))
    amount = (pl.when(rest == 0).then(0).otherwise(money)
              + pl.when(pl.col("quantity") == 0).then(0).otherwise(pl.col("_setup")))
    results = (narrow.select("rate", "quantity", "billable").with_columns(units.alias("allowance_units"))
               .with_columns(per_rate([c.a for c in consts]).alias("_a"), per_rate([c.b for c in consts]).alias("_b"),
                             per_rate([c.d for c in consts]).alias("_d"),
                             per_rate([c.setup_apart for c in consts]).alias("_setup"),
                             per_rate([c.cap for c in consts]).alias("_cap"))
               .select("billable", "allowance_units", amount.cast(pl.Int64).alias("amount_minor")))
    return frame.hstack(results)


# --- the batch rater: the vectorized core wired to guided records -------------------------------------------------
@dataclass
class _Prepared:
    unit: UnitRate
    index: int  # into the batch's list of distinct rates


def rate_batch(guided: Sequence[tuple[UsageRecord, Line]], tariffs: Mapping[str, CompiledTariff], band_change: str,
               consumed: Consumption, *, vectorize: bool = True,
               ) -> tuple[list[Rated], list[tuple[UsageRecord, str]]]:
    """Rate guided records (in event-time order per account, as ``rater.in_event_order`` gives them): the accounts
    whose records all have flat rates and at most one allowance each are rated at once by ``rate_frame``, the
    others record by record by ``rater.rate_record`` — the same figures (tests/rating/test_vectorized.py). Returns
    the rated records in the order given, and those that cannot be rated with the reason; ``consumed`` is
    updated in place."""
    rates: list[dict[str, Any]] = []
    # a plan entry without tariff: one rate per account, type and direction (a received SMS is free)
    cache: dict[tuple[str, str, str], dict[str, Any]] = {}
    chosen: list[dict[str, Any] | None] = []
    failed: list[tuple[UsageRecord, str]] = []
    for record, line in guided:
        entry = line.plan.get(record.usage_type)
        flat = entry is not None and not entry.get("tariffId")
        key = (line.account_id, record.usage_type, record.direction)
        rate = cache.get(key) if flat else None
        if rate is None:
            try:
                rate = resolve_rate(record, line, tariffs, band_change)
            except Unratable as exc:
                failed.append((record, str(exc)))
                chosen.append(None)
                continue
            if flat:
                cache[key] = rate
        chosen.append(rate)
    # which accounts the vectorized core takes: every record's rate flat (constants), the allowances in the rate's
    # blocks and at most one applicable allowance per record
    prepared: dict[int, _Prepared | None] = {}
    scalar_accounts: set[str] = set()
    counters: list[str | None] = []
    remaining: list[int | None] = []
    periods: list[str] = []
    by_json: dict[str, int] = {}
    for (record, line), rate in zip(guided, chosen, strict=True):
        counter, left, period = None, None, ""
        if rate is not None and vectorize and line.account_id not in scalar_accounts:
            prep = prepared.get(id(rate), ...)
            if prep is ...:
                prep = _prepare(rate, rates, by_json)
                prepared[id(rate)] = prep
            try:
                applicable = _applicable(record, line, rate)
            except Unratable:  # the scalar path says why
                applicable = [("", 0), ("", 0)]
            if prep is None or len(applicable) > 1:
                scalar_accounts.add(line.account_id)
            else:
                period = period_of(record.event_time, line.time_zone)
                if applicable:
                    slot, total = applicable[0]
                    counter = f"{line.account_id}\x1f{period}\x1f{slot}"
                    left = total - consumed.get((line.account_id, period, slot), 0)
        counters.append(counter)
        remaining.append(left)
        periods.append(period)
    if not vectorize:
        scalar_accounts = {line.account_id for _, line in guided}
    results: list[Rated | None] = [None] * len(guided)
    rows = [i for i, ((_, line), rate) in enumerate(zip(guided, chosen, strict=True))
            if rate is not None and line.account_id not in scalar_accounts]
    if rows:
        frame = pl.DataFrame({
            "rate": [prepared[id(chosen[i])].index for i in rows],  # type: ignore[union-attr]
            "quantity": [guided[i][0].quantity for i in rows],
            "counter": [counters[i] for i in rows], "allowance": [remaining[i] for i in rows],
            "event_time": [guided[i][0].event_time for i in rows], "key": [guided[i][0].key for i in rows],
        }, schema_overrides={"rate": pl.Int32, "quantity": pl.Int64, "allowance": pl.Int64, "counter": pl.String})
        units = [unit_rate(r) for r in rates]
        try:
            out = rate_frame(frame, units)
        except VectorizedRateError:
            scalar_accounts |= {guided[i][1].account_id for i in rows}
            rows = []
        else:
            billable_col = out["billable"].to_list()
            allowance_col = out["allowance_units"].to_list()
            amount_col = out["amount_minor"].to_list()
            for j, i in enumerate(rows):
                record, line = guided[i]
                rate = chosen[i]
                assert rate is not None
                if allowance_col[j]:
                    parts = (counters[i] or "").split("\x1f")
                    taken_slot = (line.account_id, parts[1], parts[2])
                    consumed[taken_slot] = consumed.get(taken_slot, 0) + allowance_col[j]
                results[i] = Rated(record, line, rate, billable_col[j], allowance_col[j], amount_col[j],
                                   units[prepared[id(rate)].index].currency, periods[i])  # type: ignore[union-attr]
    for i, ((record, line), rate) in enumerate(zip(guided, chosen, strict=True)):
        if rate is None or line.account_id not in scalar_accounts:
            continue
        try:
            results[i] = rate_record(record, line, rate, consumed)
        except Unratable as exc:
            failed.append((record, str(exc)))
    return [r for r in results if r is not None], failed


def _prepare(rate: dict[str, Any], rates: list[dict[str, Any]], by_json: dict[str, int]) -> _Prepared | None:
    """The rate as an index into ``rates`` when the vectorized core takes it, else None."""
    if band_split(rate) is not None:
        return None
    try:
        unit = unit_rate(rate)
        if allowance_blocks(rate, unit) is not None:
            return None
        constants(unit)
    except (VectorizedRateError, RatingError, ArithmeticError, KeyError, ValueError):
        return None
    key = json.dumps(rate, sort_keys=True, default=str)
    if key not in by_json:
        by_json[key] = len(rates)
        rates.append(rate)
    return _Prepared(unit, by_json[key])


def _applicable(record: UsageRecord, line: Line, rate: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The allowances of the plan entry that may pay for the record (as ``rater.rate_record`` filters them)."""
    entry = line.plan.get(record.usage_type) or {}
    out = []
    for i, allowance in enumerate([] if rate.get("free") else entry.get("allowances") or []):
        zones = allowance.get("destinationZone") or None
        if zones is not None and (rate.get("zone") not in zones or rate.get("roaming")):
            continue
        bands = allowance.get("timeBand") or None
        if bands is not None and rate.get("band") not in bands:
            continue
        out.append((f"{entry.get('priceId')}:{i}", allowance_quantity(allowance, record.usage_type)))
    return out

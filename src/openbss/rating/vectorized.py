"""The vectorized rating core (Polars): the same figures as the scalar path (``rater.rate_record``) for whole
columns of guided records at once — destination zone by longest prefix, rating increments, setup charge,
allowances consumed per counter in event-time order, money rounded half-up to the currency's minor unit.

Exact: money is integer arithmetic on the exact fractions of the rate's price, unit and setup charge
(``amount_minor = round_half_up((setup + billable / per * price) * 10^minor)`` as ``(2·(A + b·B) + D) // (2·D)``),
never floating point. Rates with tiers, and quantities so large that the integers could overflow 63 bits, are left
to the scalar path (``VectorizedRateError``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.usage import UnitRate

LIMIT = 2**62


class VectorizedRateError(ValueError):
    """A rate or a batch the vectorized path does not take (tiers, a risk of integer overflow)."""


@dataclass(frozen=True)
class RateConstants:
    """A flat rate as integers: amount·10^minor of ``b`` billable units = (A + b·B) / D; increments."""

    a: int
    b: int
    d: int
    initial: int
    subsequent: int


def constants(rate: UnitRate) -> RateConstants:
    if rate.tiers:
        raise VectorizedRateError("tiered rates are rated by the scalar path")
    if rate.rounding != "halfUp":
        raise VectorizedRateError("only half-up rounding is vectorized")
    scale = 10 ** MINOR_UNITS[rate.currency]
    pn, pd = Decimal(rate.price).as_integer_ratio()
    qn, qd = Decimal(rate.per).as_integer_ratio()
    sn, sd = Decimal(rate.setup).as_integer_ratio()
    a, b, d = sn * pd * qn * scale, pn * qd * sd * scale, sd * pd * qn
    g = math.gcd(math.gcd(a, b), d)
    return RateConstants(a // g, b // g, d // g, rate.initial, rate.subsequent)


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
    table = pl.DataFrame({"rate": list(range(len(consts))), "_a": [c.a for c in consts],
                          "_b": [c.b for c in consts], "_d": [c.d for c in consts],
                          "_initial": [c.initial for c in consts], "_subsequent": [c.subsequent for c in consts]},
                         schema={"rate": frame.schema["rate"], "_a": pl.Int64, "_b": pl.Int64, "_d": pl.Int64,
                                 "_initial": pl.Int64, "_subsequent": pl.Int64})
    ini, sub = pl.col("_initial"), pl.col("_subsequent")

    def increments(q: pl.Expr) -> pl.Expr:  # pricing.usage.billable
        return pl.when(q == 0).then(0).when(q <= ini).then(ini).otherwise(ini + ((q - ini + sub - 1) // sub) * sub)

    billable = increments(pl.col("quantity"))
    out = (frame.with_row_index("_row").join(table, on="rate", how="left")
           .with_columns(billable.cast(pl.Int64).alias("billable"))
           .sort(["counter", "event_time", "key"], nulls_last=True))
    before = pl.col("billable").cum_sum().over("counter") - pl.col("billable")
    taken = (pl.when(pl.col("allowance").is_null() | pl.col("counter").is_null()).then(0)
             .otherwise(pl.min_horizontal(pl.max_horizontal(pl.col("allowance") - before, 0), pl.col("billable"))))
    out = out.with_columns(taken.cast(pl.Int64).alias("allowance_units"))
    # what allowances leave is priced as online charging prices it: cumulative_minor(rest), increments included
    rest = increments(pl.col("billable") - pl.col("allowance_units"))
    amount = pl.when(rest == 0).then(0).otherwise(
        (2 * (pl.col("_a") + rest * pl.col("_b")) + pl.col("_d")) // (2 * pl.col("_d")))
    return (out.with_columns(amount.cast(pl.Int64).alias("amount_minor")).sort("_row")
            .drop("_row", "_a", "_b", "_d", "_initial", "_subsequent"))

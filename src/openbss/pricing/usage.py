"""Rating of usage quantities, shared by online charging (OCS) and batch rating: pure, exact, no I/O.

Units are integers in the base unit of the usage: bytes for data, seconds for voice and video, a count for SMS and
events. Money is a ``Decimal`` before rounding and an ``int`` of the currency's minor units after it.

The model (what makes real-time and batch give the same figure, and every split of a session the same charge):

* A :class:`UnitRate` is the price of one kind of usage once the tariff has been resolved for an event
  (destination zone by longest prefix, time band in the subscriber's time zone, roaming zone: see
  ``openbss.pricing.rating`` and ``catalog.tariff``): a price per ``per`` base units, rating blocks
  (``initial``/``subsequent``, e.g. 60/1 seconds, 1 MB), an optional setup charge, optional graduated tiers, and how
  the price of one block is rounded (``rounding``, ``decimals``).
* The blocks apply once, to the usage of a session (:func:`billable`): any started block is charged whole. The
  billable units are then paid by allowances first (:func:`allocate`, in bucket priority order), the rest with money.
* Money is priced on the **cumulative** billable units a session paid with money: ``money_minor(m)`` is the charge
  of the first ``m`` of them, rounded **up** to the currency's minor unit (usage is never charged zero), and a step
  from ``m0`` to ``m1`` costs ``money_minor(m1) - money_minor(m0)``. Summing the steps telescopes: the money of a
  session is the same however the network splits its reports, a step is never negative.
* A grant (:func:`quota`) is whole blocks that the free allowance plus the affordable money cover; nothing when not
  even one block is affordable.
* Volume tiers (the whole quantity at the tier the total reaches) are not monotone; in real time they are rated as
  graduated tiers, and batch rating at the end of the period applies the volume price (:func:`volume_amount`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import Any

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.tiers import Tier, price_volume

BASE_UNIT = {"data": "B", "voice": "second", "video": "second", "sms": "SMS", "mms": "MMS", "event": "event"}


class RatingError(ValueError):
    """A quantity or rate that cannot be rated (negative quantity, non-positive increment...)."""


ROUNDINGS = ("up", "down", "halfUp", "halfEven")


@dataclass(frozen=True)
class UnitRate:
    currency: str
    price: Decimal  # per ``per`` base units
    per: Decimal = Decimal(1)  # base units the price is for (60 for "per minute", 1048576 for "per MB")
    initial: int = 1  # first rating increment (block), in base units
    subsequent: int = 1  # next increments (blocks)
    setup: Decimal = Decimal(0)  # charged once, with the first unit paid with money
    tiers: tuple[Tier, ...] = field(default=())  # graduated; quantities in ``per`` units; overrides ``price``
    rounding: str = "halfUp"  # how the price of one block is rounded to ``decimals`` (up, down, halfUp, halfEven)
    decimals: int | None = None  # precision of the price of one block; None: exact (no rounding per block)
    #: the setup charge comes with the first billable unit of a session even when an allowance pays it (default:
    #: with the first unit paid with money)
    setup_always: bool = False
    max_charge: Decimal | None = None  # the most a session costs in money (a maximum cost per call)
    #: tiers with their own increments ``(start, end, block)`` in base units (first 300 s in 60 s blocks, then 1 s
    #: blocks): they replace ``initial``/``subsequent`` for the billable units; the first starts at 0, each next
    #: where the previous ends, the last is open (``end`` None), and each tier is a whole number of its blocks
    increment_tiers: tuple[tuple[int, int | None, int], ...] = ()

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.subsequent <= 0:
            raise RatingError("rating increments must be positive")
        if self.per <= 0:
            raise RatingError("the unit of measure of a price must be positive")
        if self.price < 0 or self.setup < 0:
            raise RatingError("prices must not be negative")
        if self.currency not in MINOR_UNITS:
            raise RatingError(f"unknown currency '{self.currency}'")
        if self.rounding not in ROUNDINGS:
            raise RatingError(f"unknown rounding '{self.rounding}' (use {', '.join(ROUNDINGS)})")
        if self.decimals is not None and not 0 <= self.decimals <= 9:
            raise RatingError(f"decimals must be between 0 and 9, not {self.decimals}")
        check_increment_tiers(self.increment_tiers)

    @property
    def is_free(self) -> bool:
        return self.price == 0 and self.setup == 0 and all(t.unit_price == 0 and t.flat_fee == 0
                                                          for t in self.tiers)


def check_increment_tiers(tiers: Sequence[tuple[int, int | None, int]]) -> None:
    """Tiers with their own increments cover every quantity once, each a whole number of its blocks (the message
    names the tier)."""
    expected = 0
    for i, (start, end, block) in enumerate(tiers):
        if block <= 0:
            raise RatingError(f"increment tier {i}: the increment must be positive")
        if start != expected:
            raise RatingError(f"increment tier {i} starts at {start}, not where the previous one ends ({expected})")
        if end is None:
            if i != len(tiers) - 1:
                raise RatingError(f"increment tier {i} is open-ended but tiers follow it")
            return
        if end <= start:
            raise RatingError(f"increment tier {i}: end {end} must be greater than start {start}")
        if (end - start) % block:
            raise RatingError(f"increment tier {i}: its length {end - start} is not a whole number of its "
                              f"increment {block}")
        expected = end
    if tiers:
        raise RatingError(f"the last increment tier (tier {len(tiers) - 1}) must be open-ended")


def default_block(per: Decimal) -> int:
    """The rated unit of a price that sets no increments: its unit of measure (0.30 EUR per 5,000,000 bytes is rated
    per started 5,000,000 bytes), or one base unit when the unit of measure is not a whole number of them."""
    return int(per) if per >= 1 and per == per.to_integral_value() else 1

_RATE_FIELDS = ("currency", "price", "per", "initial", "subsequent", "setup", "rounding", "decimals", "setupAlways",
                "maxCharge")
_PLAIN = (str, int, type(None))  # values whose type and value say everything (bool is an int)
_RATES: dict[tuple[Any, ...], UnitRate] = {}
_RATES_SIZE = 4096


def _rate_key(doc: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What ``unit_rate`` reads of a document, when it is plain values (strings, integers): the key of its reading."""
    key: list[Any] = []
    for name in _RATE_FIELDS:
        v = doc.get(name)
        if not isinstance(v, _PLAIN):
            return None
        key += (type(v), v)
    for name in ("tiers", "incrementTiers"):
        for item in doc.get(name) or ():
            pairs = tuple(item.items()) if isinstance(item, Mapping) else tuple(enumerate(item))
            if not all(isinstance(v, _PLAIN) for _, v in pairs):
                return None
            key.append((name, tuple((k, type(v), v) for k, v in pairs)))
    return tuple(key)


def unit_rate(doc: Mapping[str, Any]) -> UnitRate:
    """A rate document (strings for decimals, as online charging stores it with a reservation and batch rating
    resolves it) -> ``UnitRate``: one reading for both paths. A rate that sets no rating increments is rated per its
    unit of measure (``per``). Readings of plain documents are kept (a rate is immutable): the same rate is read once
    and its integer form (:func:`fixed_rate`) compiled once."""
    key = _rate_key(doc)
    if key is None:
        return read_unit_rate(doc)
    rate = _RATES.get(key)
    if rate is None:
        rate = read_unit_rate(doc)
        if len(_RATES) >= _RATES_SIZE:
            _RATES.clear()
        _RATES[key] = rate
    return rate


def read_unit_rate(doc: Mapping[str, Any]) -> UnitRate:
    """:func:`unit_rate` without the kept readings."""
    tiers = tuple(Tier(Decimal(t["start"]), Decimal(t["end"]) if t.get("end") is not None else None,
                       Decimal(t["price"]), Decimal(t.get("fee", "0"))) for t in doc.get("tiers") or ())
    per = Decimal(doc.get("per", "1"))
    block = default_block(per)
    decimals = doc.get("decimals")
    steps = tuple((int(a), int(b) if b is not None else None, int(c)) for a, b, c in doc.get("incrementTiers") or ())
    if steps:  # the first tier's increment is the block the price of one block is rounded for
        block = steps[0][2]
    return UnitRate(currency=doc["currency"], price=Decimal(doc["price"]), per=per,
                    initial=int(doc.get("initial") or block), subsequent=int(doc.get("subsequent") or block),
                    setup=Decimal(doc.get("setup", "0")), tiers=tiers, rounding=doc.get("rounding") or "halfUp",
                    decimals=int(decimals) if decimals is not None else None,
                    setup_always=bool(doc.get("setupAlways")),
                    max_charge=Decimal(doc["maxCharge"]) if doc.get("maxCharge") is not None else None,
                    increment_tiers=steps)


def allowance_blocks(doc: Mapping[str, Any], rate: UnitRate) -> UnitRate | None:
    """The blocks allowances count in when the price gives them their own (a bundle minute counted per second while
    money counts per minute); None: allowances pay the usage's billable units."""
    if not doc.get("allowanceInitial"):
        return None
    initial = int(doc["allowanceInitial"])
    return replace(rate, initial=initial, subsequent=int(doc.get("allowanceSubsequent") or initial),
                   increment_tiers=())



def _check(units: int) -> None:
    if units < 0:
        raise RatingError("a quantity must not be negative")


def billable(units: int, rate: UnitRate) -> int:
    """Units charged for ``units`` used: 0 is free, any started increment is charged whole."""
    _check(units)
    if units == 0:
        return 0
    if rate.increment_tiers:
        for start, end, block in rate.increment_tiers:
            if end is None or units <= end:
                return start + math.ceil((units - start) / block) * block
    if units <= rate.initial:
        return rate.initial
    return rate.initial + math.ceil((units - rate.initial) / rate.subsequent) * rate.subsequent


def _tiered(quantity: Fraction, tiers: Sequence[Tier]) -> Fraction:
    total = Fraction(0)
    for tier in tiers:
        upper = quantity if tier.end is None else min(quantity, Fraction(tier.end))
        slice_ = upper - Fraction(tier.start)
        if slice_ <= 0:
            break
        total += slice_ * Fraction(tier.unit_price) + Fraction(tier.flat_fee)
    return total


def _exact(units: Fraction | int, rate: UnitRate) -> Fraction:
    """The unrounded price of the first ``units`` paid units (no setup)."""
    quantity = Fraction(units) / Fraction(rate.per)
    if rate.tiers:
        return _tiered(quantity, rate.tiers)
    return quantity * Fraction(rate.price)


def _round(value: Fraction, decimals: int, method: str) -> Fraction:
    """``value`` (>= 0) at ``decimals`` by ``method``; a positive price never rounds to zero."""
    scale = 10**decimals
    scaled = value * scale
    if method == "up":
        n = math.ceil(scaled)
    elif method == "down":
        n = math.floor(scaled)
    elif method == "halfUp":
        n = math.floor(scaled + Fraction(1, 2))
    else:
        n = round(scaled)
    if n == 0 and value > 0:
        n = 1
    return Fraction(n, scale)


def block_price(start: int, size: int, rate: UnitRate) -> Fraction:
    """The price of the block of paid units ``[start, start + size)``, rounded as the rate says."""
    value = _exact(start + size, rate) - _exact(start, rate)
    return value if rate.decimals is None else _round(value, rate.decimals, rate.rounding)


def _run(start: int, count: int, size: int, rate: UnitRate) -> Fraction:
    """The price of ``count`` whole blocks of ``size`` from ``start`` (a closed form per tier, not a loop per
    block)."""
    total = Fraction(0)
    per = Fraction(rate.per)
    while count > 0:
        if not rate.tiers:
            return total + count * block_price(start, size, rate)
        position = Fraction(start) / per
        tier = next(t for t in rate.tiers if t.end is None or position < Fraction(t.end))
        inside = count if tier.end is None else min(count, math.floor((Fraction(tier.end) * per - start) / size))
        if inside <= 0:  # a block across a tier boundary
            total += block_price(start, size, rate)
            start, count = start + size, count - 1
            continue
        total += block_price(start, size, rate)  # may carry the tier's flat fee
        if inside > 1:
            total += (inside - 1) * block_price(start + size, size, rate)
        start, count = start + inside * size, count - inside
    return total


def money_amount(units: int, rate: UnitRate) -> Fraction:
    """The exact price of ``units`` billable units paid with money (the call's increments are already applied: they
    are not applied again to the part a funding source pays). Without ``decimals`` this is ``units`` at the price
    (graduated through the tiers); with ``decimals`` each block's price is rounded first and a block paid in part
    costs its share of the rounded block price. The setup charge comes with the first unit."""
    _check(units)
    if units == 0:
        return Fraction(0)
    setup = Fraction(0) if rate.setup_always else Fraction(rate.setup)
    if rate.decimals is None:
        return setup + _exact(units, rate)
    first = min(units, rate.initial)
    total = setup + block_price(0, rate.initial, rate) * Fraction(first, rate.initial)
    rest = units - first
    if rest:
        whole, part = divmod(rest, rate.subsequent)
        total += _run(rate.initial, whole, rate.subsequent, rate)
        if part:
            start = rate.initial + whole * rate.subsequent
            total += block_price(start, rate.subsequent, rate) * Fraction(part, rate.subsequent)
    return total


def money_minor(units: int, rate: UnitRate) -> int:
    """``money_amount`` in minor units of the currency, rounded up: usage paid with money is never charged zero; no
    more than the rate's maximum charge per session. Computed in integers (:class:`FixedRate`) when the rate allows
    it, with the same result as the exact path (:func:`exact_money_minor`)."""
    fixed = fixed_rate(rate)
    if fixed is not None:
        _check(units)
        return fixed.minor(units)
    return exact_money_minor(units, rate)


def exact_money_minor(units: int, rate: UnitRate) -> int:
    """:func:`money_minor` in exact fractions (the reference the integer path is proven against)."""
    scale = 10 ** MINOR_UNITS[rate.currency]
    minor = math.ceil(money_amount(units, rate) * scale)
    if rate.max_charge is not None:
        return min(minor, math.ceil(Fraction(rate.max_charge) * scale))
    return minor


def setup_minor(rate: UnitRate) -> int:
    """The setup charge in minor units (rounded up) when it is charged apart from the money-paid units
    (``setup_always``); 0 otherwise (it is then part of ``money_amount``)."""
    fixed = fixed_rate(rate)
    if fixed is not None:
        return fixed.setup_apart
    return exact_setup_minor(rate)


def exact_setup_minor(rate: UnitRate) -> int:
    return math.ceil(Fraction(rate.setup) * 10 ** MINOR_UNITS[rate.currency]) if rate.setup_always else 0


# --- the integer path -----------------------------------------------------------------------------------------
#: the integer path is used (False: every figure in exact fractions; the property tests compare the two)
FIXED_POINT = True
#: the largest common denominator the integer path takes (bits); a rate beyond it is priced in fractions
MAX_DENOMINATOR_BITS = 256
_FIXED_CACHE: dict[UnitRate, FixedRate | None] = {}
_FIXED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class FixedRate:
    """``money_minor`` of one rate in integers: every amount of money is an integer numerator over the rate's common
    denominator ``den`` (the least common multiple of the denominators of its prices, unit of measure, rounded block
    prices and blocks), so that a price is a few integer multiplications and one floor division, exactly the value
    of the fraction arithmetic.

    * no tiers: ``money_amount(u) = setup + u * per_unit`` (no ``decimals``), or the rounded price of the first block
      for its share ``first / initial`` plus whole and partial next blocks at their rounded price (``decimals``: a
      block's rounded price does not depend on where it starts without tiers);
    * graduated tiers without ``decimals``: ``setup + base_k + u * slope_k`` in the tier ``k`` that ``u`` reaches,
      tiers found by integer thresholds in base units;
    * graduated tiers with ``decimals`` (the rounded price of a block depends on its position): not here, the exact
      path prices them.
    """

    den: int
    scale: int  # 10 ** minor units of the currency
    setup: int  # numerator of the setup charged with the first money-paid unit (0: none, or charged apart)
    cap: int | None  # the maximum charge in minor units
    setup_apart: int  # ``setup_minor``
    per_unit: int  # no tiers, no decimals: numerator of the price of one base unit
    initial: int
    subsequent: int
    first_block: int  # decimals: numerator of the rounded price of the first block, per base unit of it
    next_block: int  # decimals: numerator of the rounded price of a next block
    next_unit: int  # decimals: numerator of the rounded price of a next block per base unit of it
    #: tiers: (threshold, floor of the tier's start, the tiers below it whole, base, slope): ``u < threshold`` is
    #: in the tier (None: open), ``u > floor`` past its start
    tiers: tuple[tuple[int | None, int, int, int, int], ...]
    decimals: bool

    def amount(self, units: int) -> int:
        """The numerator of ``money_amount(units)`` over ``den``."""
        if units == 0:
            return 0
        if self.tiers:
            for threshold, floor, below, base, slope in self.tiers:
                if threshold is None or units < threshold:
                    return self.setup + (base + units * slope if units > floor else below)
            raise RatingError("tiers must end with an open tier")  # pragma: no cover (checked when compiled)
        if not self.decimals:
            return self.setup + units * self.per_unit
        first = min(units, self.initial)
        whole, part = divmod(units - first, self.subsequent)
        return self.setup + first * self.first_block + whole * self.next_block + part * self.next_unit

    def minor(self, units: int) -> int:
        minor = -((-self.amount(units) * self.scale) // self.den)
        return minor if self.cap is None else min(minor, self.cap)


def fixed_rate(rate: UnitRate) -> FixedRate | None:
    """The integer form of a rate (cached), or None when the exact path prices it."""
    if not FIXED_POINT:
        return None
    cached = rate.__dict__.get("_fixed", _MISSING)
    if cached is not _MISSING:
        return cached
    fixed = _FIXED_CACHE.get(rate, _MISSING)
    if fixed is _MISSING:
        fixed = _compile_fixed(rate)
        if len(_FIXED_CACHE) >= _FIXED_CACHE_SIZE:
            _FIXED_CACHE.clear()
        _FIXED_CACHE[rate] = fixed
    rate.__dict__["_fixed"] = fixed  # the frozen rate keeps its integer form (not a field: equality unchanged)
    return fixed


_MISSING: Any = object()


def _tiers_contiguous(tiers: Sequence[Tier]) -> bool:
    expected = Decimal(0)
    for i, tier in enumerate(tiers):
        if tier.start != expected or tier.unit_price < 0 or tier.flat_fee < 0:
            return False
        if tier.end is None:
            return i == len(tiers) - 1
        if tier.end <= tier.start:
            return False
        expected = tier.end
    return False


def _compile_fixed(rate: UnitRate) -> FixedRate | None:
    if rate.tiers and (rate.decimals is not None or not _tiers_contiguous(rate.tiers)):
        return None
    per = Fraction(rate.per)
    setup = Fraction(0) if rate.setup_always else Fraction(rate.setup)
    parts: list[Fraction] = [setup]
    per_unit = first_unit = next_block = next_unit = Fraction(0)
    tiers: list[tuple[int | None, int, Fraction, Fraction, Fraction]] = []
    if rate.tiers:
        before = Fraction(0)  # the price of the tiers below this one, whole
        for tier in rate.tiers:
            start, price = Fraction(tier.start) * per, Fraction(tier.unit_price) / per
            # inside the tier (start < u < end, in base units): the tiers below whole, then (u - start) at its price
            base = before - start * price + Fraction(tier.flat_fee)
            threshold = None if tier.end is None else math.ceil(Fraction(tier.end) * per)
            tiers.append((threshold, math.floor(start), before, base, price))
            parts += [before, base, price]
            if tier.end is not None:
                before += (Fraction(tier.end) - Fraction(tier.start)) * Fraction(tier.unit_price) \
                    + Fraction(tier.flat_fee)
    elif rate.decimals is None:
        per_unit = Fraction(rate.price) / per
        parts.append(per_unit)
    else:
        first_unit = block_price(0, rate.initial, rate) / rate.initial
        next_block = block_price(rate.initial, rate.subsequent, rate)
        next_unit = next_block / rate.subsequent
        parts += [first_unit, next_block, next_unit]
    den = math.lcm(*(f.denominator for f in parts))
    if den.bit_length() > MAX_DENOMINATOR_BITS:
        return None
    scale = 10 ** MINOR_UNITS[rate.currency]

    def num(f: Fraction) -> int:
        return f.numerator * (den // f.denominator)

    cap = math.ceil(Fraction(rate.max_charge) * scale) if rate.max_charge is not None else None
    fixed_tiers = tuple((t, f, num(w), num(b), num(p)) for t, f, w, b, p in tiers)
    return FixedRate(den=den, scale=scale, setup=num(setup), cap=cap, setup_apart=exact_setup_minor(rate),
                     per_unit=num(per_unit), initial=rate.initial, subsequent=rate.subsequent,
                     first_block=num(first_unit), next_block=num(next_block), next_unit=num(next_unit),
                     tiers=fixed_tiers, decimals=rate.decimals is not None)


def money_step(before: int, after: int, rate: UnitRate) -> int:
    """Money (minor units) for going from ``before`` to ``after`` cumulative money-paid units; never negative."""
    _check(before)
    if after < before:
        raise RatingError("cumulative usage cannot decrease")
    return money_minor(after, rate) - money_minor(before, rate)


def cumulative_amount(units: int, rate: UnitRate) -> Decimal:
    """The exact price of the first ``units`` used units, all paid with money (increments applied), as a Decimal
    (exact when the currency allows it)."""
    value = money_amount(billable(units, rate), rate)
    return Decimal(value.numerator) / Decimal(value.denominator)


def cumulative_minor(units: int, rate: UnitRate) -> int:
    """The charge in minor units of the first ``units`` used units, all paid with money."""
    return money_minor(billable(units, rate), rate)


def step_minor(before: int, after: int, rate: UnitRate) -> int:
    """Money (minor units) for going from ``before`` to ``after`` cumulative used units; never negative."""
    _check(before)
    if after < before:
        raise RatingError("cumulative usage cannot decrease")
    return cumulative_minor(after, rate) - cumulative_minor(before, rate)


def boundary(base: int, k: int, rate: UnitRate) -> int:
    """The ``k``-th block boundary after ``base`` (itself a boundary: 0 or ``billable`` of something)."""
    if k == 0:
        return base
    if rate.increment_tiers:
        for _, end, block in rate.increment_tiers:
            if end is not None and base >= end:
                continue
            room = (end - base) // block if end is not None else k
            if k <= room:
                return base + k * block
            base, k = end, k - room  # type: ignore[assignment]  # (an open tier always has room)
        raise RatingError("increment tiers must end with an open tier")
    if base == 0:
        return rate.initial + (k - 1) * rate.subsequent
    return base + k * rate.subsequent


def blocks_between(base: int, target: int, rate: UnitRate) -> int:
    """How many blocks from the boundary ``base`` to the boundary ``target`` (with increment tiers)."""
    n = 0
    for start, end, block in rate.increment_tiers:
        lo, hi = max(base, start), target if end is None else min(target, end)
        if hi > lo:
            n += (hi - lo) // block
    return n


def allowance_reach(paid: int, free: int, blocks: UnitRate) -> int:
    """With allowances counted in their own blocks: the most used units of a session they may cover in total, when
    they already covered the first ``paid`` and have ``free`` units left (the last block boundary within reach)."""
    _check(paid)
    limit = billable(paid, blocks) + max(0, free)
    if limit < blocks.initial:
        return 0
    return blocks.initial + (limit - blocks.initial) // blocks.subsequent * blocks.subsequent


@dataclass(frozen=True)
class Quota:
    units: int  # used units granted (to add to what was used)
    final: bool  # less than requested: the credit ran out
    allowance: int  # billable units held from allowances
    money_units: int  # billable units held in money
    money_minor: int  # money held


def quota(used: int, want: int, rate: UnitRate, *, money_units: int, allowance_free: int,
          budget_minor: int) -> Quota:
    """The grant for ``want`` more units after ``used``: whole blocks (the request rounded up to a block boundary),
    as many as the free allowance units plus ``budget_minor`` of money cover, money priced after the
    ``money_units`` already paid. The part of a block already charged is granted at no cost."""
    _check(used)
    _check(want)
    if want == 0:
        return Quota(0, False, 0, 0, 0)
    base = billable(used, rate)
    target = billable(used + want, rate)
    if target == base:
        top = 0
    elif rate.increment_tiers:
        top = blocks_between(base, target, rate)
    elif base == 0:
        top = 1 + (target - rate.initial) // rate.subsequent
    else:
        top = (target - base) // rate.subsequent
    free = max(0, allowance_free)

    def cost(k: int) -> tuple[int, int, int]:
        need = boundary(base, k, rate) - base
        allowance = min(need, free)
        money = need - allowance
        minor = money_step(money_units, money_units + money, rate) if money else 0
        if base == 0 and k > 0:
            minor += setup_minor(rate)
        return allowance, money, minor

    k = top
    if cost(top)[2] > budget_minor:
        lo, hi = 0, top  # cost(lo) affordable (0 costs nothing), cost(hi) not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if cost(mid)[2] <= budget_minor:
                lo = mid
            else:
                hi = mid
        k = lo
    allowance, money, minor = cost(k)
    return Quota(boundary(base, k, rate) - used, k < top, allowance, money, minor)


def allocate(units: int, available: Sequence[tuple[str, int]]) -> tuple[list[tuple[str, int]], int]:
    """Consume ``units`` from allowance buckets in the given (priority) order: ([(bucket, units)], remainder)."""
    _check(units)
    out: list[tuple[str, int]] = []
    left = units
    for bucket_id, free in available:
        if left == 0:
            break
        take = min(left, max(0, free))
        if take:
            out.append((bucket_id, take))
            left -= take
    return out, left


def volume_amount(units: int, rate: UnitRate) -> Decimal:
    """Batch (end of period) price of ``units`` with volume tiers: all units at the tier the total reaches."""
    b = billable(units, rate)
    if not rate.tiers:
        return cumulative_amount(units, rate)
    return (rate.setup if b else Decimal(0)) + price_volume(Decimal(b) / rate.per, rate.tiers)


# --- money ------------------------------------------------------------------------------------------------------
def to_minor(amount: Decimal, currency: str) -> int:
    """An amount already rounded to the currency's precision, in minor units (refuses sub-minor amounts)."""
    scaled = amount.scaleb(MINOR_UNITS[currency])
    if scaled != scaled.to_integral_value():
        raise RatingError(f"{amount} {currency} has more decimals than the currency allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-MINOR_UNITS[currency])


def ceil_to_minor(amount: Decimal, currency: str) -> int:
    """An amount in minor units, rounded up (what a reservation must hold to cover it)."""
    return int(amount.scaleb(MINOR_UNITS[currency]).to_integral_value(rounding=ROUND_CEILING))

"""Charge models of usage billed per period: pure, exact (``Decimal``), no I/O.

A usage price of the catalog may carry a ``chargeModel``: billing then prices the usage of a whole charge period
(the bill cycle period the usage falls in) from the period's quantity, not record by record:

* ``perUnit``: ``unitPrice`` per unit, after ``freeUnits``;
* ``graduated``: each slice of the quantity at its own tier's price, plus the tier's ``flatFee`` once the quantity
  enters the tier (``tiers``: the catalog's ``priceTier`` shape, from 0, no gap, last one open);
* ``volume``: the whole quantity at the price of the tier the total falls in (plus that tier's flat fee);
* ``package``: ``packagePrice`` per **started** block of ``packageSize`` units, after ``freeUnits``;
* ``percentage``: ``percentage`` % of each transaction's amount plus ``fixedFee`` per transaction, the first
  ``freeTransactions`` of the period free;

and, with any model, ``minimumSpend``: a period that costs less is charged the difference (a true-up line).

Usage that arrives after a period was billed is billed by **difference**: a bill carries
``period_charge(all usage of the period) - what earlier bills charged for it``. Each side is rounded once to the
currency's minor unit, so the deltas telescope: a period billed in several runs totals exactly what one run at the
period's end bills (property-tested).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from openbss.pricing.money import MINOR_UNITS, to_decimal
from openbss.pricing.proration import round_fraction
from openbss.pricing.tiers import Tier, TierError, price_tiered, price_volume, validate_tiers

MODELS = ("perUnit", "graduated", "volume", "package", "percentage")
#: the attributes each model takes (besides ``model`` and ``minimumSpend``)
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "perUnit": ("unitPrice", "freeUnits"),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "package": ("packageSize", "packagePrice", "freeUnits"),
    "percentage": ("percentage", "fixedFee", "freeTransactions"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "perUnit": ("unitPrice",), "graduated": ("tiers",), "volume": ("tiers",),
    "package": ("packageSize", "packagePrice"), "percentage": ("percentage",),
}


class ChargeModelError(ValueError):
    """A charge model that cannot price: ``attribute`` names the offending attribute (``tiers[1]``, ...)."""

    def __init__(self, message: str, attribute: str) -> None:
        super().__init__(f"'{attribute}': {message}")
        self.attribute = attribute


@dataclass(frozen=True)
class ChargeModel:
    model: str
    unit_price: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = field(default=())
    package_size: Decimal = Decimal(1)
    package_price: Decimal = Decimal(0)
    free_units: Decimal = Decimal(0)
    percentage: Decimal = Decimal(0)
    fixed_fee: Decimal = Decimal(0)
    free_transactions: int = 0
    minimum_spend: Decimal | None = None


def _number(doc: Mapping[str, Any], attr: str, where: str, *, positive: bool = False) -> Decimal:
    try:
        value = to_decimal(doc[attr])
    except ValueError as exc:
        raise ChargeModelError(str(exc), f"{where}{attr}") from exc
    if value < 0 or (positive and value == 0):
        raise ChargeModelError(f"{value} must be {'more than 0' if positive else 'zero or more'}", f"{where}{attr}")
    return value


def parse(doc: Any, where: str = "chargeModel.") -> ChargeModel:
    """A catalog ``chargeModel`` as a :class:`ChargeModel`; raises :class:`ChargeModelError` naming the bad
    attribute (an unknown model, an attribute of another model, a missing or negative value, tiers with a gap)."""
    if not isinstance(doc, Mapping):
        raise ChargeModelError("a charge model is an object with a 'model'", where.rstrip("."))
    model = doc.get("model")
    if model not in MODELS:
        raise ChargeModelError(f"{model!r} is not one of {', '.join(MODELS)}", f"{where}model")
    allowed = {"model", "minimumSpend", *ATTRIBUTES[model]}
    for attr in doc:
        if attr not in allowed and doc[attr] is not None:
            raise ChargeModelError(f"does not apply to the {model} model (it takes "
                                   f"{', '.join(ATTRIBUTES[model])}, minimumSpend)", f"{where}{attr}")
    for attr in REQUIRED[model]:
        if doc.get(attr) is None:
            raise ChargeModelError(f"the {model} model needs it", f"{where}{attr}")
    values: dict[str, Any] = {"model": model}
    if doc.get("minimumSpend") is not None:
        values["minimum_spend"] = _number(doc, "minimumSpend", where)
    for attr, name in (("unitPrice", "unit_price"), ("packagePrice", "package_price"), ("freeUnits", "free_units"),
                       ("fixedFee", "fixed_fee")):
        if doc.get(attr) is not None:
            values[name] = _number(doc, attr, where)
    if doc.get("packageSize") is not None:
        values["package_size"] = _number(doc, "packageSize", where, positive=True)
    if doc.get("percentage") is not None:
        pct = _number(doc, "percentage", where)
        if pct > 100:
            raise ChargeModelError(f"{pct} is more than 100", f"{where}percentage")
        values["percentage"] = pct
    if doc.get("freeTransactions") is not None:
        free = doc["freeTransactions"]
        if not isinstance(free, int) or isinstance(free, bool) or free < 0:
            raise ChargeModelError(f"{free!r} is not a whole number of transactions (0 or more)",
                                   f"{where}freeTransactions")
        values["free_transactions"] = free
    if model in ("graduated", "volume"):
        raw = doc["tiers"]
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise ChargeModelError("a list of {fromQuantity, toQuantity, unitPrice, flatFee}", f"{where}tiers")
        tiers = []
        for i, t in enumerate(raw):
            w = f"{where}tiers[{i}]."
            if not isinstance(t, Mapping):
                raise ChargeModelError("a tier is an object", f"{where}tiers[{i}]")
            for attr in ("fromQuantity", "unitPrice"):
                if t.get(attr) is None:
                    raise ChargeModelError("is required", f"{w}{attr}")
            tiers.append(Tier(_number(t, "fromQuantity", w),
                              _number(t, "toQuantity", w) if t.get("toQuantity") is not None else None,
                              _number(t, "unitPrice", w),
                              _number(t, "flatFee", w) if t.get("flatFee") is not None else Decimal(0)))
        try:
            validate_tiers(tiers)
        except TierError as exc:
            at = f"[{exc.index}]" if exc.index is not None else ""
            raise ChargeModelError(str(exc), f"{where}tiers{at}") from exc
        values["tiers"] = tuple(tiers)
    return ChargeModel(**values)


def packages(quantity: Decimal, size: Decimal, free: Decimal = Decimal(0)) -> int:
    """Started blocks of ``size`` in the quantity beyond ``free`` (a partial block counts whole)."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    chargeable = max(Decimal(0), quantity - free)
    return math.ceil(Fraction(chargeable) / Fraction(size))


def usage_amount(model: ChargeModel, quantity: Decimal, transactions: Sequence[Decimal] = ()) -> Decimal:
    """What the usage of one period costs under ``model``, exact (not rounded): ``quantity`` in the price's unit
    of measure; ``transactions`` (the amounts of the period's transactions, in order) for ``percentage``."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    if model.model == "perUnit":
        return max(Decimal(0), quantity - model.free_units) * model.unit_price
    if model.model == "graduated":
        return price_tiered(quantity, model.tiers)
    if model.model == "volume":
        return price_volume(quantity, model.tiers)
    if model.model == "package":
        return packages(quantity, model.package_size, model.free_units) * model.package_price
    if model.model == "percentage":
        charged = transactions[model.free_transactions:]
        return sum((t * model.percentage / 100 + model.fixed_fee for t in charged), Decimal(0))
    raise ValueError(f"unknown charge model '{model.model}'")


def period_charge(model: ChargeModel, quantity: Decimal, currency: str, transactions: Sequence[Decimal] = (),
                  rounding: str = "halfUp") -> Decimal:
    """The usage charge of a period rounded once to the currency's minor unit."""
    return round_fraction(Fraction(usage_amount(model, quantity, transactions)), MINOR_UNITS[currency], rounding)


def true_up(charged: Decimal, minimum: Decimal | None, currency: str, factor: Fraction = Fraction(1),
            rounding: str = "halfUp") -> Decimal:
    """The minimum-spend true-up of a period whose usage cost ``charged``: what lacks to the minimum (prorated by
    ``factor`` for a partial period), never negative."""
    if minimum is None:
        return Decimal(0)
    floor = round_fraction(Fraction(minimum) * factor, MINOR_UNITS[currency], rounding)
    return max(Decimal(0), floor - charged)


def bill_period(model: ChargeModel, quantity: Decimal, currency: str, transactions: Sequence[Decimal] = (),
                billed_usage: Decimal = Decimal(0), billed_true_up: Decimal = Decimal(0),
                minimum_factor: Fraction = Fraction(1), rounding: str = "halfUp") -> tuple[Decimal, Decimal]:
    """What a bill adds for one period, given all its usage known so far and what earlier bills charged for it
    (usage, true-up): the differences. Zero when nothing changed."""
    used = period_charge(model, quantity, currency, transactions, rounding)
    floor = true_up(used, model.minimum_spend, currency, minimum_factor, rounding)
    return used - billed_usage, floor - billed_true_up

"""Tiered and volume usage prices.

A tier covers the quantities ``[start, end)``; the first starts at 0, each next one starts where the previous
one ends (no gap, no overlap) and the last is open-ended (``end`` is None), so every quantity has exactly one
price.

* **tiered** (graduated): each part of the quantity is priced at the tier it falls in
  (first 1 000 MB at 0.02, the next ones at 0.01, ...).
* **volume**: the whole quantity is priced at the tier the total falls in.

A tier may add a flat fee (charged once when the quantity reaches the tier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


class TierError(ValueError):
    """A tier table that cannot price every quantity exactly once. ``index`` names the offending tier."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Tier:
    start: Decimal
    end: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = Decimal(0)


def validate_tiers(tiers: Sequence[Tier]) -> None:
    if not tiers:
        raise TierError("at least one tier is needed")
    expected = Decimal(0)
    for i, tier in enumerate(tiers):
        if tier.unit_price < 0 or tier.flat_fee < 0:
            raise TierError(f"tier {i}: prices must not be negative", i)
        if tier.start != expected:
            if i == 0:
                raise TierError(f"tier 0 must start at 0, not {tier.start}", 0)
            kind = "gap" if tier.start > expected else "overlap"
            raise TierError(
                f"tier {i} starts at {tier.start} but tier {i - 1} ends at {expected} ({kind})", i)
        if tier.end is None:
            if i != len(tiers) - 1:
                raise TierError(f"tier {i} is open-ended but tiers follow it", i)
            return
        if tier.end <= tier.start:
            raise TierError(f"tier {i}: end {tier.end} must be greater than start {tier.start}", i)
        expected = tier.end
    raise TierError(f"the last tier (tier {len(tiers) - 1}) must be open-ended (no end)", len(tiers) - 1)


def price_tiered(quantity: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Graduated: each slice of the quantity at its own tier's price."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    total = Decimal(0)
    for tier in tiers:
        upper = quantity if tier.end is None else min(quantity, tier.end)
        slice_ = upper - tier.start
        if slice_ <= 0:
            break
        total += slice_ * tier.unit_price + tier.flat_fee
    return total


def tier_for(quantity: Decimal, tiers: Sequence[Tier]) -> Tier:
    for tier in tiers:
        if quantity >= tier.start and (tier.end is None or quantity < tier.end):
            return tier
    raise ValueError(f"no tier for quantity {quantity}")


def price_volume(quantity: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Volume: the whole quantity at the price of the tier the total falls in."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    if quantity == 0:
        return Decimal(0)
    tier = tier_for(quantity, tiers)
    return quantity * tier.unit_price + tier.flat_fee

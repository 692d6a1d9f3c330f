"""Allocation of a fixed amount (a discount, a coupon) across lines pro rata, exact to the minor unit.

Largest remainder: each line gets the floor of its exact share in minor units; the minor units left over go one
each to the lines with the largest remainders (ties: the earlier line). The pieces add up to the amount exactly,
each is within one minor unit of its exact share, and none exceeds its line (the amount is capped at the lines'
total first).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from openbss.pricing.money import MINOR_UNITS


def allocate(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """``amount`` (capped at the sum of ``weights``) split across ``weights`` (non-negative line amounts)."""
    if amount < 0 or any(w < 0 for w in weights):
        raise ValueError("an allocation splits a non-negative amount across non-negative lines")
    exponent = MINOR_UNITS[currency]
    scale = 10 ** exponent
    total_w = sum(weights, Decimal(0))
    if not weights or total_w == 0:
        return [Decimal(0).scaleb(-exponent) for _ in weights]
    minor_total = int(min(amount, total_w) * scale)  # whole minor units (the amount is money already)
    exact = [Fraction(minor_total) * Fraction(w) / Fraction(total_w) for w in weights]
    floors = [int(e) for e in exact]  # non-negative: int() is the floor
    left = minor_total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f).scaleb(-exponent) for f in floors]

"""Included allowances (e.g. 10 GB, 500 minutes, unlimited SMS per month), with rollover."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Allowance:
    quantity: Decimal | None  # None: unlimited
    rollover_periods: int = 0  # how many following periods an unused remainder survives
    rollover_max: Decimal | None = None  # cap of what rolls over


def split_usage(used_before: Decimal, quantity: Decimal, allowance: Allowance,
                carried_over: Decimal = Decimal(0)) -> tuple[Decimal, Decimal]:
    """(covered by the allowance, overage) of ``quantity`` when ``used_before`` was already consumed."""
    if allowance.quantity is None:
        return quantity, Decimal(0)
    available = max(Decimal(0), allowance.quantity + carried_over - used_before)
    covered = min(quantity, available)
    return covered, quantity - covered


def rollover(allowance: Allowance, unused: Decimal) -> Decimal:
    """What carries into the next period from an unused remainder."""
    if allowance.quantity is None or allowance.rollover_periods <= 0 or unused <= 0:
        return Decimal(0)
    return min(unused, allowance.rollover_max) if allowance.rollover_max is not None else unused

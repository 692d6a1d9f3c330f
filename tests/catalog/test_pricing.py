"""Pure pricing functions: tiers, volume, proration, allowances, money."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openbss.pricing.allowance import Allowance, rollover, split_usage
from openbss.pricing.money import round_money, to_decimal
from openbss.pricing.proration import charge
from openbss.pricing.tiers import Tier, TierError, price_tiered, price_volume, validate_tiers
from openbss.pricing.units import convert

TIERS = [Tier(Decimal(0), Decimal(1024), Decimal("0.02")), Tier(Decimal(1024), Decimal(10240), Decimal("0.01")),
         Tier(Decimal(10240), None, Decimal("0.005"))]


def test_tier_examples() -> None:
    validate_tiers(TIERS)
    assert price_tiered(Decimal(2048), TIERS) == Decimal("20.48") + Decimal("10.24")
    assert price_volume(Decimal(2048), TIERS) == Decimal("20.48")
    assert price_tiered(Decimal(0), TIERS) == 0 and price_volume(Decimal(0), TIERS) == 0


@given(st.decimals(min_value=0, max_value=10**7, places=3), st.decimals(min_value=0, max_value=10**7, places=3))
def test_tiered_is_monotonic_and_volume_bounded(a: Decimal, b: Decimal) -> None:
    lo, hi = sorted((a, b))
    assert price_tiered(lo, TIERS) <= price_tiered(hi, TIERS)
    # with decreasing unit prices, pricing everything at the reached tier is never dearer than graduated
    assert price_volume(hi, TIERS) <= price_tiered(hi, TIERS)


@given(st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=6))
def test_contiguous_tiers_are_valid_and_cover(widths: list[int]) -> None:
    bounds = [0]
    for w in widths:
        bounds.append(bounds[-1] + w)
    tiers = [Tier(Decimal(s), Decimal(e), Decimal(1)) for s, e in itertools.pairwise(bounds)]
    tiers[-1] = Tier(tiers[-1].start, None, Decimal(1))
    validate_tiers(tiers)
    q = Decimal(bounds[-1] + 5)
    assert price_tiered(q, tiers) == q  # unit price 1 everywhere


def test_tier_errors() -> None:
    with pytest.raises(TierError, match="gap"):
        validate_tiers([Tier(Decimal(0), Decimal(10), Decimal(1)), Tier(Decimal(11), None, Decimal(1))])
    with pytest.raises(TierError, match="overlap"):
        validate_tiers([Tier(Decimal(0), Decimal(10), Decimal(1)), Tier(Decimal(9), None, Decimal(1))])
    with pytest.raises(TierError, match="open-ended but tiers follow"):
        validate_tiers([Tier(Decimal(0), None, Decimal(1)), Tier(Decimal(9), None, Decimal(1))])


def test_proration() -> None:
    amount = Decimal("30.00")
    april = (date(2026, 4, 1), date(2026, 5, 1))
    assert charge(amount, "EUR", date(2026, 4, 16), date(2026, 5, 1), *april) == Decimal("15.00")
    assert charge(amount, "EUR", date(2026, 4, 16), date(2026, 5, 1), *april, policy="fullPeriod") == amount
    assert charge(amount, "EUR", date(2026, 4, 16), date(2026, 5, 1), *april, policy="noCharge") == 0
    assert charge(amount, "EUR", *april, *april, policy="noCharge") == amount
    assert charge(Decimal("24.99"), "EUR", date(2026, 4, 11), date(2026, 5, 1), *april) == Decimal("16.66")
    assert round_money(Decimal("1.005"), "JPY") == Decimal("1") and round_money(Decimal("1.0005"), "KWD") == Decimal(
        "1.001")


def test_allowance_and_units() -> None:
    ten_gb = Allowance(convert(Decimal(10), "GB", "MB"), rollover_periods=1, rollover_max=Decimal(5120))
    assert split_usage(Decimal(10000), Decimal(500), ten_gb) == (Decimal(240), Decimal(260))
    assert split_usage(Decimal(0), Decimal(99999), Allowance(None)) == (Decimal(99999), Decimal(0))
    assert rollover(ten_gb, Decimal(8000)) == Decimal(5120)
    assert convert(Decimal(90), "second", "minute") == Decimal("1.5")
    with pytest.raises(ValueError, match="cannot convert"):
        convert(Decimal(1), "MB", "minute")
    assert to_decimal(0.1) == Decimal("0.1")

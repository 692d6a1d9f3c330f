"""Charge models of usage billed per period (pricing/charge_models.py): worked figures and properties."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.charge_models import (
    ChargeModel,
    ChargeModelError,
    bill_period,
    packages,
    parse,
    period_charge,
    true_up,
    usage_amount,
)
from openbss.pricing.money import round_money
from openbss.pricing.tiers import Tier

D = Decimal
GRADUATED = parse({"model": "graduated", "tiers": [
    {"fromQuantity": 0, "toQuantity": 100, "unitPrice": "0.10"},
    {"fromQuantity": 100, "toQuantity": 1000, "unitPrice": "0.05", "flatFee": "2.00"},
    {"fromQuantity": 1000, "unitPrice": "0.01"}]})
VOLUME = parse({"model": "volume", "tiers": [
    {"fromQuantity": 0, "toQuantity": 100, "unitPrice": "0.10"},
    {"fromQuantity": 100, "toQuantity": 1000, "unitPrice": "0.05"},
    {"fromQuantity": 1000, "unitPrice": "0.01"}]})


def test_worked_figures_of_each_model() -> None:
    # graduated: 100 × 0.10 + (2.00 + 900 × 0.05) + 200 × 0.01 = 10 + 47 + 2
    assert period_charge(GRADUATED, D(1200), "EUR") == D("59.00")
    # volume: 1200 units fall in the third tier: all at 0.01
    assert period_charge(VOLUME, D(1200), "EUR") == D("12.00")
    assert period_charge(VOLUME, D(999), "EUR") == D("49.95")
    # package: 10.00 per started 500 MB, 200 MB free: 1201 MB → 1001 chargeable → 3 blocks
    pkg = parse({"model": "package", "packageSize": 500, "packagePrice": "10.00", "freeUnits": 200})
    assert period_charge(pkg, D(1201), "EUR") == D("30.00")
    assert period_charge(pkg, D(200), "EUR") == D("0.00")
    # percentage: 1.4 % + 0.25 per transaction, the first 2 free
    pct = parse({"model": "percentage", "percentage": "1.4", "fixedFee": "0.25", "freeTransactions": 2})
    assert period_charge(pct, D(0), "EUR", [D(100), D(50), D("10.00"), D("99.99")]) == D("2.04")  # 0.39 + 1.64986
    # per unit after free units, in a 3-decimal currency
    per = parse({"model": "perUnit", "unitPrice": "0.0125", "freeUnits": 100})
    assert period_charge(per, D(341), "BHD") == D("3.013")  # 241 × 0.0125 = 3.0125 → half up
    # minimum spend: 20.00 a month, usage of 12.00 → a true-up of 8.00; half a month → 10.00 − 3.00
    assert true_up(D("12.00"), D(20), "EUR") == D("8.00")
    assert true_up(D("3.00"), D(20), "EUR", Fraction(1, 2)) == D("7.00")
    assert true_up(D("25.00"), D(20), "EUR") == D("0")


@pytest.mark.parametrize(("doc", "attribute"), [
    ({"model": "stairs"}, "chargeModel.model"),
    ({"model": "package", "packagePrice": 1}, "chargeModel.packageSize"),
    ({"model": "package", "packageSize": 0, "packagePrice": 1}, "chargeModel.packageSize"),
    ({"model": "perUnit", "unitPrice": -1}, "chargeModel.unitPrice"),
    ({"model": "perUnit", "unitPrice": 1, "percentage": 3}, "chargeModel.percentage"),
    ({"model": "percentage", "percentage": 101}, "chargeModel.percentage"),
    ({"model": "percentage", "percentage": 1, "freeTransactions": 1.5}, "chargeModel.freeTransactions"),
    ({"model": "graduated", "tiers": [{"fromQuantity": 0, "toQuantity": 10, "unitPrice": 1},
                                      {"fromQuantity": 11, "unitPrice": 1}]}, "chargeModel.tiers[1]"),
    ({"model": "volume", "tiers": [{"fromQuantity": 0, "toQuantity": 10}]}, "chargeModel.tiers[0].unitPrice"),
])
def test_a_bad_definition_names_the_attribute(doc: dict[str, object], attribute: str) -> None:
    with pytest.raises(ChargeModelError) as err:
        parse(doc)
    assert err.value.attribute == attribute
    assert f"'{attribute}'" in str(err.value)


quantities = st.decimals(min_value=0, max_value=100_000, places=3)
prices = st.decimals(min_value=0, max_value=10, places=4)


@st.composite
def tier_tables(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 50_000), max_size=4))))
    starts = [0, *bounds]
    return tuple(Tier(D(s), D(starts[i + 1]) if i + 1 < len(starts) else None, draw(prices),
                      draw(st.sampled_from([D(0), D("1.50")]))) for i, s in enumerate(starts))


@settings(max_examples=300, deadline=None)
@given(tier_tables(), quantities, quantities)
def test_graduated_is_monotone_and_the_sum_of_its_tier_pieces(tiers: tuple[Tier, ...], a: Decimal,
                                                               b: Decimal) -> None:
    model = ChargeModel("graduated", tiers=tiers)
    lo, hi = min(a, b), max(a, b)
    assert usage_amount(model, lo) <= usage_amount(model, hi)
    pieces = D(0)
    for t in tiers:  # each tier's piece: the units within it at its price, its flat fee once entered
        inside = max(D(0), min(hi, t.end if t.end is not None else hi) - t.start)
        if inside > 0:
            pieces += inside * t.unit_price + t.flat_fee
    assert usage_amount(model, hi) == pieces


@settings(max_examples=300, deadline=None)
@given(tier_tables(), quantities)
def test_volume_is_the_units_times_the_chosen_tier_price(tiers: tuple[Tier, ...], q: Decimal) -> None:
    model = ChargeModel("volume", tiers=tiers)
    chosen = [t for t in tiers if t.start <= q and (t.end is None or q < t.end)]
    assert len(chosen) == 1
    expected = q * chosen[0].unit_price + chosen[0].flat_fee if q > 0 else D(0)
    assert usage_amount(model, q) == expected


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=0, max_value=10_000, places=2), st.integers(1, 1000), st.integers(0, 500),
       st.decimals(min_value=0, max_value=100, places=2))
def test_a_partial_package_is_never_charged_less_than_a_full_one(q: Decimal, size: int, free: int,
                                                                  price: Decimal) -> None:
    model = ChargeModel("package", package_size=D(size), package_price=price, free_units=D(free))
    n = packages(q, D(size), D(free))
    # the charge of q is the charge of the whole blocks that cover it: rounding q up to the block end costs nothing
    covered = D(free) + n * size
    assert usage_amount(model, q) == usage_amount(model, covered) == n * price
    assert n * size >= q - free  # the blocks cover the chargeable quantity
    if q > free:
        assert usage_amount(model, q) >= price  # a started block is a whole one


models = st.one_of(
    tier_tables().map(lambda t: ChargeModel("graduated", tiers=t)),
    tier_tables().map(lambda t: ChargeModel("volume", tiers=t)),
    st.builds(lambda s, p, f: ChargeModel("package", package_size=D(s), package_price=p, free_units=D(f)),
              st.integers(1, 500), st.decimals(0, 50, places=2), st.integers(0, 100)),
    st.builds(lambda p, f: ChargeModel("perUnit", unit_price=p, free_units=D(f)), prices, st.integers(0, 100)),
    st.builds(lambda p, f, n: ChargeModel("percentage", percentage=p, fixed_fee=f, free_transactions=n),
              st.decimals(0, 100, places=3), st.decimals(0, 1, places=2), st.integers(0, 3)),
)


@settings(max_examples=400, deadline=None)
@given(models, st.lists(st.decimals(min_value=0, max_value=5000, places=2), min_size=1, max_size=12),
       st.lists(st.integers(0, 12), max_size=3), st.sampled_from(["EUR", "JPY", "BHD"]),
       st.decimals(0, 200, places=2) | st.none())
def test_a_period_billed_in_several_runs_totals_one_run_at_its_end(model: ChargeModel, usage: list[Decimal],
                                                                    cuts: list[int], currency: str,
                                                                    minimum: Decimal | None) -> None:
    """Usage of one period spread over several runs (each run sees the records arrived so far): what the runs bill
    (usage and true-up) totals what one run at the period's end bills."""
    model = replace(model, minimum_spend=minimum)
    billed_usage = billed_true_up = D(0)
    for cut in [*sorted(min(c, len(usage)) for c in cuts), len(usage)]:
        seen = usage[:cut]
        du, dt = bill_period(model, sum(seen, D(0)), currency, seen, billed_usage, billed_true_up)
        billed_usage, billed_true_up = billed_usage + du, billed_true_up + dt
        assert billed_true_up >= 0  # the true-up billed never turns into a credit beyond what it charged
    once = bill_period(model, sum(usage, D(0)), currency, usage)
    assert (billed_usage, billed_true_up) == once
    if minimum is not None:  # the period costs at least its minimum (in the currency's minor unit)
        assert billed_usage + billed_true_up == max(billed_usage, round_money(minimum, currency))

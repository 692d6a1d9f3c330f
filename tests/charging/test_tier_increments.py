"""Tiers with their own increments: the first minutes of a call in 60 s steps at one price, the next ones per second
at another (``priceTier[i].ratingBlock``), from the catalog to ``/ocs/v1/creditControl``; the catalog refuses bad
tier definitions with a 400 naming the tier."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.sessions import Ledger
from openbss.pricing.usage import billable, unit_rate
from tests.charging.helpers import account_state, ccr, group
from tests.charging.test_rating_features import account_on, call
from tests.conftest import bearer

POP = "/tmf-api/productCatalogManagement/v4/productOfferingPrice"
ACCOUNT = {"quota_validity_seconds": 300, "low_balance_minor": 0}


def tiered_voice(**extra: Any) -> dict[str, Any]:
    """First 5 minutes at 0.50/min in 60 s steps, then 0.20/min per second."""
    return {"name": "First minutes by the minute", "priceType": "usage", "usageType": "voice", "tierType": "tiered",
            "price": {"unit": "EUR"}, "unitOfMeasure": {"amount": 1, "units": "minute"},
            "priceTier": [{"fromQuantity": 0, "toQuantity": 5, "unitPrice": 0.50,
                           "ratingBlock": {"amount": 60, "units": "second"}},
                          {"fromQuantity": 5, "unitPrice": 0.20, "ratingBlock": {"amount": 1, "units": "second"}}],
            **extra}


# --- properties over the ledger ------------------------------------------------------------------------------
@st.composite
def tiered_rates(draw: st.DrawFn) -> dict[str, Any]:
    first = draw(st.sampled_from([30, 60]))
    edge = first * draw(st.integers(1, 6))
    second = draw(st.sampled_from([1, 6, 10]))
    edge2 = edge + second * draw(st.integers(1, 30))
    prices = [str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(2), places=3))) for _ in range(3)]
    doc: dict[str, Any] = {
        "currency": "EUR", "price": "0", "per": "60", "setup": draw(st.sampled_from(["0", "0.10"])),
        "incrementTiers": [[0, edge, first], [edge, edge2, second], [edge2, None, 1]],
        "tiers": [{"start": "0", "end": str(Decimal(edge) / 60), "price": prices[0]},
                  {"start": str(Decimal(edge) / 60), "end": None, "price": prices[1]}]}
    if draw(st.booleans()):
        doc["maxCharge"] = str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(10), places=2)))
    return doc


def rows(allowance: int, money_minor: int) -> list[dict[str, Any]]:
    out = [{"id": "main", "unit": "money", "remaining": money_minor, "reserved": 0, "initial": money_minor,
            "lower_limit": 0, "valid_from": None, "valid_to": None, "priority": 1000, "zones": None,
            "threshold_level": 0, "source": "main"}]
    if allowance:
        out.append({"id": "minutes", "unit": "voice", "remaining": allowance, "reserved": 0, "initial": allowance,
                    "lower_limit": 0, "valid_from": None, "valid_to": None, "priority": 100, "zones": None,
                    "threshold_level": 0, "source": "allowance"})
    return out


def session(rate: dict[str, Any], buckets: list[dict[str, Any]], reports: list[int]) -> Ledger:
    ledger = Ledger.load(ACCOUNT, buckets, [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    for used in reports:
        ledger.debit(res, used)
    return ledger


@settings(max_examples=300, deadline=None)
@given(tiered_rates(), st.integers(0, 400), st.integers(0, 5000),
       st.lists(st.integers(0, 500), min_size=1, max_size=10))
def test_a_call_is_charged_the_same_in_one_piece_or_many_across_the_tier_boundary(
        rate: dict[str, Any], allowance: int, money_minor: int, reports: list[int]) -> None:
    many = session(rate, rows(allowance, money_minor), reports)
    one = session(rate, rows(allowance, money_minor), [sum(reports)])
    assert {b.id: b.d_remaining for b in many.buckets.values()} == {b.id: b.d_remaining for b in one.buckets.values()}
    assert sum(d.amount_minor for d in many.debits) == sum(d.amount_minor for d in one.debits)
    # each tier rounds up to its own increment, from where the tier starts
    total = sum(reports)
    units = billable(total, unit_rate(rate))
    for start, end, step in rate["incrementTiers"]:
        if total > start and (end is None or total <= end):
            assert units >= total and (units - start) % step == 0 and units - total < step
            assert end is None or units <= end


@settings(max_examples=200, deadline=None)
@given(tiered_rates(), st.integers(0, 3000), st.lists(st.tuples(st.integers(1, 600), st.floats(0, 1)), min_size=1,
                                                         max_size=8))
def test_tiered_grants_are_whole_increments_within_the_balance(rate: dict[str, Any], money_minor: int,
                                                               requests: list[tuple[int, float]]) -> None:
    ledger = Ledger.load(ACCOUNT, rows(0, money_minor), [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    granted = 0
    r = unit_rate(rate)
    for want, share in requests:
        ledger.debit(res, int(granted * share))
        grant = ledger.grant(res, want)
        granted = grant.units
        if granted:  # a grant ends on an increment boundary of the tier it ends in
            assert billable(res.used_units + granted, r) == res.used_units + granted
        assert ledger.buckets["main"].free() >= 0
        if grant.units == 0:
            break
    ledger.debit(res, granted)
    assert ledger.buckets["main"].remaining + ledger.buckets["main"].d_remaining >= 0


# --- through the catalog and credit control -------------------------------------------------------------------
async def test_first_minutes_by_the_minute_then_per_second(client: Any, rt: Any, tenant: str,
                                                           system_headers: dict[str, str]) -> None:
    acc = await account_on(client, rt, tenant, tiered_voice(), balance="5.00")
    # 90 s: two started minutes of the first tier, 1.00
    await call(client, system_headers, ccr("INITIAL_REQUEST", "t1", 0, acc["msisdn"], groups=[group(1, 90)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "t1", 1, groups=[group(1, used=90)]))
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 400
    # 330 s in three reports: 5 minutes (2.50) and 30 s at 0.20/min (0.10)
    await call(client, system_headers, ccr("INITIAL_REQUEST", "t2", 0, acc["msisdn"], groups=[group(1, 200)]))
    await call(client, system_headers, ccr("UPDATE_REQUEST", "t2", 1, groups=[group(1, 200, used=200)]))
    await call(client, system_headers, ccr("UPDATE_REQUEST", "t2", 2, groups=[group(1, 100, used=100)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "t2", 3, groups=[group(1, used=30)]))
    st_ = await account_state(rt, tenant, acc["id"])
    assert st_["money"] == 400 - 260 and st_["usage"]["amount"] == 360
    # 1.40 left asking 10 minutes: 2 whole minutes of the first tier (1.00)... and no more: the third is 0.50
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "t3", 0, acc["msisdn"], groups=[group(1, 600)]))
    m = i["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"] == {"time": 120} and m["finalUnitIndication"] == {"finalUnitAction": "TERMINATE"}


async def test_bad_tier_increments_are_refused(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    base = tiered_voice()

    def variant(**changes: Any) -> dict[str, Any]:
        doc = {**base, "priceTier": [dict(t) for t in base["priceTier"]]}
        doc.update(changes)
        return doc

    no_block = variant()
    del no_block["priceTier"][1]["ratingBlock"]
    uneven = variant()
    uneven["priceTier"][0]["toQuantity"] = 5.5
    uneven["priceTier"][1]["fromQuantity"] = 5.5
    megabytes = variant()
    megabytes["priceTier"][1]["ratingBlock"] = {"amount": 1, "units": "MB"}
    cases = [
        (variant(tierType="volume"), "'priceTier[0].ratingBlock': increments per tier need tierType tiered"),
        (no_block, "'priceTier[1].ratingBlock' is required: when one tier sets its increment, every tier does"),
        (uneven, "'priceTier[0]': from 0 to 5.5 minute (330 second) is not a whole number of its ratingBlock "
                 "(60 second)"),
        (variant(ratingBlock={"initial": {"amount": 1, "units": "second"}}),
         "'ratingBlock': not with increments per tier"),
        (variant(rounding={"method": "up", "decimals": 2}), "'rounding': not with increments per tier"),
        (megabytes, "'priceTier[1].ratingBlock.units': MB cannot measure usage in minute"),
    ]
    for doc, message in cases:
        r = await client.post(POP, json=doc, headers=h)
        assert r.status_code == 400 and message in r.text, (message, r.text)
    r = await client.post(POP, json=base, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["priceTier"][0]["ratingBlock"] == {"amount": 60, "units": "second"}

"""Calls crossing a time-band change rated per band (tenant setting ``bandChange: split``), over the ledger that
decides every request (in memory), checked against a brute-force reading of the band of every second."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.sessions import Ledger
from openbss.pricing.bands import band_split, runs
from openbss.pricing.rating import TimeBand, band_at
from openbss.pricing.usage import billable, unit_rate

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
BANDS = [["peak", WEEKDAYS, "08:00", "20:00"], ["offPeak", WEEKDAYS, "00:00", "08:00"],
         ["offPeak", WEEKDAYS, "20:00", "24:00"], ["offPeak", ["sat", "sun"], "00:00", "24:00"]]
ACCOUNT = {"quota_validity_seconds": 300, "low_balance_minor": 0}
#: Monday 7 December 2026 19:50 in Paris (18:50 UTC): ten minutes before peak ends
MONDAY_EVENING = datetime(2026, 12, 7, 18, 50, tzinfo=UTC).timestamp()


def split_rate(start: float, *, peak: str = "0.60", off: str = "0.30", initial: int = 1, subsequent: int = 1,
               setup: str = "0", holidays: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"currency": "EUR", "price": peak, "per": "60", "initial": initial, "subsequent": subsequent,
            "setup": setup, "tiers": [], "zone": "NAT", "band": "peak", **extra,
            "bandSplit": {"start": start, "timeZone": "Europe/Paris", "holidays": holidays or {},
                          "bands": BANDS, "rates": {"peak": {"price": peak, "per": "60"},
                                                    "offPeak": {"price": off, "per": "60"}}}}


def bucket(bid: str, unit: str, remaining: int, *, priority: int = 100, source: str = "allowance",
           bands: list[str] | None = None) -> dict[str, Any]:
    return {"id": bid, "unit": unit, "remaining": remaining, "reserved": 0, "initial": max(remaining, 0),
            "lower_limit": 0, "valid_from": None, "valid_to": None, "priority": priority, "zones": None,
            "threshold_level": 0, "source": source, "bands": bands}


def session(rows: list[dict[str, Any]], rate: dict[str, Any], reports: list[int]) -> Ledger:
    ledger = Ledger.load(ACCOUNT, rows, [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    for used in reports:
        ledger.debit(res, used)
    return ledger


def movements(ledger: Ledger) -> dict[str, int]:
    return {b.id: b.d_remaining for b in ledger.buckets.values()}


starts = st.integers(-3 * 3600, 3 * 3600).map(lambda s: MONDAY_EVENING + s)


@st.composite
def split_rates(draw: st.DrawFn) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        extra["decimals"], extra["rounding"] = draw(st.integers(0, 4)), draw(st.sampled_from(["up", "down", "halfUp"]))
    if draw(st.booleans()):
        extra["maxCharge"] = str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=2)))
    if draw(st.booleans()):
        extra["setupAlways"] = True
    return split_rate(draw(starts), peak=str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(2), places=3))),
                      off=str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(2), places=3))),
                      initial=draw(st.sampled_from([1, 30, 60])), subsequent=draw(st.sampled_from([1, 6, 60])),
                      setup=draw(st.sampled_from(["0", "0.10"])), **extra)


@st.composite
def accounts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An off-peak allowance, an allowance for any band, a bonus money bucket, the main prepaid balance."""
    rows = []
    if draw(st.booleans()):
        rows.append(bucket("night", "voice", draw(st.integers(0, 1200)), priority=50, bands=["offPeak"]))
    if draw(st.booleans()):
        rows.append(bucket("any", "voice", draw(st.integers(0, 600)), priority=60))
    if draw(st.booleans()):
        rows.append(bucket("bonus", "money", draw(st.integers(0, 300)), priority=10, source="topup"))
    rows.append(bucket("main", "money", draw(st.integers(0, 3000)), priority=1000, source="main"))
    return rows


@settings(max_examples=300, deadline=None)
@given(accounts(), split_rates(), st.lists(st.integers(0, 900), min_size=1, max_size=10))
def test_split_updates_charge_the_same_as_one_terminate_per_funding_source(
        rows: list[dict[str, Any]], rate: dict[str, Any], reports: list[int]) -> None:
    split = session(rows, rate, reports)
    once = session(rows, rate, [sum(reports)])
    assert movements(split) == movements(once)
    assert sum(d.amount_minor for d in split.debits) == sum(d.amount_minor for d in once.debits)
    assert sum(d.allowance_units for d in split.debits) == sum(d.allowance_units for d in once.debits)
    money = -sum(b.d_remaining for b in split.buckets.values() if b.unit == "money")
    assert sum(d.amount_minor for d in split.debits) == money  # every charged cent in exactly one usage record


@settings(max_examples=300, deadline=None)
@given(starts, st.integers(0, 4 * 3600), st.sampled_from([(1, 1), (60, 60), (60, 1), (30, 6)]),
       st.decimals(min_value=Decimal(0), max_value=Decimal(2), places=3),
       st.decimals(min_value=Decimal(0), max_value=Decimal(2), places=3))
def test_the_parts_add_up_to_what_each_band_charges_for_its_share(start: float, seconds: int,
                                                                   increments: tuple[int, int], peak: Decimal,
                                                                   off: Decimal) -> None:
    rate = split_rate(start, peak=str(peak), off=str(off), initial=increments[0], subsequent=increments[1])
    ledger = session([bucket("main", "money", 10**9, source="main")], rate, [seconds])
    # brute force: the band of every billable second, from its own moment
    bands = [TimeBand(n, tuple(d), s, e) for n, d, s, e in BANDS]
    share = {"peak": 0, "offPeak": 0}
    for k in range(billable(seconds, unit_rate(rate))):
        share[band_at(datetime.fromtimestamp(math.floor(start) + k, UTC), bands, "Europe/Paris")] += 1
    expected = sum(math.ceil(Decimal(n) * price / 60 * 100) for n, price in ((share["peak"], peak),
                                                                             (share["offPeak"], off)) if n)
    assert sum(d.amount_minor for d in ledger.debits) == expected


@settings(max_examples=200, deadline=None)
@given(accounts(), split_rates(), st.lists(st.tuples(st.integers(1, 900), st.floats(0, 1)), min_size=1,
                                           max_size=8))
def test_split_grants_keep_prepaid_buckets_above_their_floor(rows: list[dict[str, Any]], rate: dict[str, Any],
                                                             requests: list[tuple[int, float]]) -> None:
    ledger = Ledger.load(ACCOUNT, rows, [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    granted = 0
    for want, share in requests:
        ledger.debit(res, int(granted * share))  # the network uses at most what it was granted
        grant = ledger.grant(res, want)
        granted = grant.units
        for b in ledger.buckets.values():
            assert b.remaining + b.d_remaining - b.reserved - b.d_reserved >= b.lower_limit, b
        if grant.units == 0:
            break
    ledger.debit(res, granted)
    for b in ledger.buckets.values():
        assert b.remaining + b.d_remaining >= b.lower_limit, b


def test_a_call_across_the_end_of_peak() -> None:
    """Monday 19:59 Paris, 120 s at 1/1: 60 s of peak at 0.60/min and 60 s of off-peak at 0.30/min = 0.90; a
    night allowance pays the off-peak minute only."""
    start = datetime(2026, 12, 7, 18, 59, tzinfo=UTC).timestamp()
    rate = split_rate(start)
    assert runs(band_split(rate), 0, 120) == [("peak", 60), ("offPeak", 60)]  # type: ignore[arg-type]
    ledger = session([bucket("main", "money", 500, source="main")], rate, [30, 50, 40])
    assert movements(ledger) == {"main": -90}
    ledger = session([bucket("night", "voice", 600, bands=["offPeak"]), bucket("main", "money", 500, source="main")],
                     rate, [120])
    assert movements(ledger) == {"night": -60, "main": -60}
    # a holiday is rated in its band all day
    holiday = split_rate(start, holidays={"2026-12-07": "offPeak"})
    assert movements(session([bucket("main", "money", 500, source="main")], holiday, [120])) == {"main": -60}


def test_grant_prices_each_second_in_its_band() -> None:
    """0.50 EUR with the call starting at 19:59: the first minute (peak) costs 0.60, more than the balance; started
    at 19:59:30, 30 s of peak (0.30) and then off-peak at 0.30/min: 0.50 buys 30 s + 40 s."""
    at = datetime(2026, 12, 7, 18, 59, 30, tzinfo=UTC).timestamp()
    ledger = Ledger.load(ACCOUNT, [bucket("main", "money", 50, source="main")], [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", split_rate(at))
    grant = ledger.grant(res, 300)
    assert grant.units == 70 and grant.final
    assert ledger.buckets["main"].d_reserved == 50


# --- through the API: the tenant setting and a call across 20:00 -------------------------------------------------
async def test_band_change_setting_and_a_split_call(client: Any, rt: Any, tenant: str,
                                                    system_headers: dict[str, str]) -> None:
    from tests.charging.helpers import account_state, ccr, group
    from tests.charging.test_rating_features import allowance_left, banded_line, call
    from tests.conftest import bearer

    admin = bearer(tenant, "admin")
    r = await client.get("/ocs/v1/settings", headers=admin)
    assert r.status_code == 200 and r.json() == {"bandChange": "start"}
    for body, message in (({"bandChange": "sometimes"}, "'bandChange': 'sometimes' is not one of start, split"),
                          ({"bandChange": "split", "x": 1}, "unknown charging settings ['x']"),
                          (["split"], "the settings are a JSON object")):
        r = await client.patch("/ocs/v1/settings", json=body, headers=admin)
        assert r.status_code == 400 and message in r.text, r.text
    assert (await client.get("/ocs/v1/settings", headers=admin)).json() == {"bandChange": "start"}
    r = await client.patch("/ocs/v1/settings", json={"bandChange": "split"}, headers=bearer(tenant, "billing_ops"))
    assert r.status_code == 200 and r.json() == {"bandChange": "split"}

    # peak (to 20:00 UTC) 0.60/min, off-peak 0.30/min, 0.10 connect fee, 10 night minutes (off-peak only), 1.00 EUR
    acc = await banded_line(client, rt, tenant, fee_with_allowance=False)
    info = {"calledParty": "+33123456789"}
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "x20", 0, acc["msisdn"], groups=[group(1, 120)],
                                               serviceInformation=info, eventTimestamp="2026-12-07T19:59:00Z"))
    assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"time": 120}
    await call(client, system_headers, ccr("UPDATE_REQUEST", "x20", 1, groups=[group(1, 60, used=30)],
                                           eventTimestamp="2026-12-07T19:59:30Z"))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "x20", 2, groups=[group(1, used=90)],
                                           eventTimestamp="2026-12-07T20:01:00Z"))
    st_ = await account_state(rt, tenant, acc["id"])
    # the peak minute at 0.60 and the connect fee with money; the off-peak minute from the night minutes
    assert st_["money"] == 100 - 70 and allowance_left(st_) == 600 - 60
    assert st_["usage"]["amount"] == 70 and st_["usage"]["allowance"] == 60

    # the same call rated at its start band (the default): two peak minutes, the night minutes do not pay
    await client.patch("/ocs/v1/settings", json={"bandChange": "start"}, headers=admin)
    acc = await banded_line(client, rt, tenant, fee_with_allowance=False)
    await call(client, system_headers, ccr("INITIAL_REQUEST", "x20s", 0, acc["msisdn"], groups=[group(1, 120)],
                                           serviceInformation=info, eventTimestamp="2026-12-07T19:59:00Z"))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "x20s", 1, groups=[group(1, used=120)],
                                           eventTimestamp="2026-12-07T20:01:00Z"))
    st_ = await account_state(rt, tenant, acc["id"])
    assert st_["money"] == 100 - 130 and allowance_left(st_) == 600


def test_an_event_is_rated_per_band_from_its_timestamp() -> None:
    """Direct debiting of 120 s from Monday 19:59 Paris: 0.60 + 0.30, or 4012 and nothing moved when short."""
    from openbss.charging import errors as rc

    rate = split_rate(datetime(2026, 12, 7, 18, 59, tzinfo=UTC).timestamp())
    ledger = Ledger.load(ACCOUNT, [bucket("main", "money", 100, source="main")], [], 0.0)
    assert ledger.charge_event(1, "voice", 120, rate) == rc.SUCCESS
    assert movements(ledger) == {"main": -90} and ledger.debits[-1].amount_minor == 90
    short = Ledger.load(ACCOUNT, [bucket("main", "money", 89, source="main")], [], 0.0)
    assert short.charge_event(1, "voice", 120, rate) == rc.CREDIT_LIMIT_REACHED
    assert movements(short) == {"main": 0} and short.debits == []


def test_the_rest_of_a_charged_block_is_granted_at_no_cost() -> None:
    """60/60 increments from 19:59:30: after 10 s the started minute is paid (30 s of peak and 30 s of off-peak:
    0.30 + 0.15); 40 s more fit in it, granted with no money held."""
    rate = split_rate(datetime(2026, 12, 7, 18, 59, 30, tzinfo=UTC).timestamp(), initial=60, subsequent=60)
    ledger = Ledger.load(ACCOUNT, [bucket("main", "money", 60, source="main")], [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    ledger.debit(res, 10)
    assert movements(ledger) == {"main": -45}
    grant = ledger.grant(res, 40)
    assert (grant.units, grant.final) == (50, False) and ledger.buckets["main"].d_reserved == 0

"""One source of truth for the money: for the same usage, batch rating charges exactly what online charging's
real-time path (``charging.sessions.Ledger``: direct debiting, or a session reported in increments) charges —
per record, allowance units included, for any rate (price, unit, increments or none, setup charged with money or
always, graduated tiers, blocks rounded on their own, a maximum charge, allowances in their own blocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.sessions import Ledger
from openbss.rating.layouts import UsageRecord
from openbss.rating.rater import Line, allowance_quantity, rate_record

START = datetime(2026, 11, 2, tzinfo=UTC)


@st.composite
def rates(draw: st.DrawFn) -> dict[str, Any]:
    per = draw(st.sampled_from([1, 60, 1024, 1048576]))
    doc: dict[str, Any] = {
        "currency": draw(st.sampled_from(["EUR", "JPY", "BHD"])),
        "price": str(draw(st.decimals(min_value=0, max_value=5, places=4))),
        "per": str(per), "initial": draw(st.integers(1, 120)), "subsequent": draw(st.integers(1, 60)),
        "setup": str(draw(st.decimals(min_value=0, max_value=1, places=2))), "tiers": [], "priceId": "p",
    }
    if draw(st.booleans()):
        edge = draw(st.integers(1, 50))
        doc["tiers"] = [{"start": "0", "end": str(edge), "price": str(draw(st.decimals(0, 2, places=3)))},
                        {"start": str(edge), "end": None, "price": str(draw(st.decimals(0, 2, places=3)))}]
    if draw(st.booleans()):  # no increments: rated per the unit of measure
        del doc["initial"], doc["subsequent"]
    if draw(st.booleans()):
        doc["rounding"] = draw(st.sampled_from(["up", "down", "halfUp", "halfEven"]))
        doc["decimals"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        doc["setupAlways"] = True
    if draw(st.booleans()):
        doc["maxCharge"] = str(draw(st.decimals(min_value=0, max_value=3, places=2)))
    if draw(st.booleans()):  # allowances counted in their own blocks
        doc["allowanceInitial"] = draw(st.integers(1, 90))
        if draw(st.booleans()):
            doc["allowanceSubsequent"] = draw(st.integers(1, 30))
    return doc


def _ledger(allowance: int | None) -> Ledger:
    buckets = [{"id": "money", "unit": "money", "remaining": 0, "reserved": 0, "initial": 0,
                "lower_limit": -10**18, "valid_from": None, "valid_to": None, "priority": 1000, "zones": None,
                "threshold_level": 0, "source": "main"}]
    if allowance is not None:
        buckets.append({"id": "allowance", "unit": "data", "remaining": allowance, "reserved": 0,
                        "initial": allowance, "lower_limit": 0, "valid_from": None, "valid_to": None,
                        "priority": 100, "zones": None, "threshold_level": 0, "source": "allowance"})
    account = {"quota_validity_seconds": 300, "low_balance_minor": 0}
    return Ledger.load(account, buckets, [], START.timestamp())


@settings(max_examples=300, deadline=None)
@given(rate=rates(), allowance=st.one_of(st.none(), st.integers(0, 5000)),
       usage=st.lists(st.tuples(st.integers(0, 4000), st.lists(st.integers(0, 1500), max_size=4)),
                      min_size=1, max_size=8))
def test_batch_and_real_time_charge_the_same(rate: dict[str, Any], allowance: int | None,
                                             usage: list[tuple[int, list[int]]]) -> None:
    plan_entry = {"priceId": "p", "currency": rate["currency"], "price": rate["price"], "per": rate["per"],
                  "allowances": [] if allowance is None else [{"quantity": {"amount": allowance, "units": "B"}}]}
    line = Line(account_id="acc", msisdn="33600000000", product_id=None, offering_id=None,
                billing_account_id=None, party_id=None, party_type="Individual", currency=rate["currency"],
                time_zone="UTC", plan={"data": plan_entry})
    ledger = _ledger(allowance)
    consumed: dict[tuple[str, str, str], int] = {}
    batch_total = 0
    for i, (first, more) in enumerate(usage):
        quantity = first + sum(more)
        record = UsageRecord(key=str(i), record_id=str(i), origin="t", msisdn=line.msisdn,
                             event_time=START + timedelta(minutes=i), usage_type="data", quantity=quantity)
        batch = rate_record(record, line, rate, consumed)
        if not more and "allowanceInitial" not in rate:  # an event, debited directly
            n = len(ledger.debits)
            ledger.charge_event(1, "data", quantity, rate)
            online_amount = sum(d.amount_minor for d in ledger.debits[n:])
            online_allowance = sum(d.allowance_units for d in ledger.debits[n:])
        else:  # a session reported in increments (UPDATE, UPDATE, ..., TERMINATE)
            res = ledger.open_reservation(i, 1, "data", rate)
            steps = [ledger.debit(res, step) for step in [first, *more]]
            online_amount = sum(d.amount_minor for d in steps)
            online_allowance = sum(d.allowance_units for d in steps)
        assert (batch.amount_minor, batch.allowance_units) == (online_amount, online_allowance)
        batch_total += batch.amount_minor
    assert -ledger.buckets["money"].d_remaining == batch_total  # the balance moved by what batch rating charged
    assert sum(consumed.values()) == (0 if allowance is None else
                                      allowance - (ledger.buckets["allowance"].remaining
                                                   + ledger.buckets["allowance"].d_remaining))


def test_a_known_case() -> None:
    """0.60 EUR per minute, 60/1 increments, 100 s of which 30 from an allowance: 70 s... the increments apply to
    the whole call (billable 100 s), the allowance covers 30 s, 70 s are charged: 0.70 EUR."""
    rate = {"currency": "EUR", "price": "0.60", "per": "60", "initial": 60, "subsequent": 1, "tiers": [],
            "priceId": "v"}
    line = Line(account_id="a", msisdn="1", product_id=None, offering_id=None, billing_account_id=None,
                party_id=None, party_type="Individual", currency="EUR", time_zone="UTC",
                plan={"voice": {"priceId": "v", "allowances": [{"quantity": {"amount": 30, "units": "second"}}]}})
    record = UsageRecord(key="k", record_id="k", origin="t", msisdn="1", event_time=START, usage_type="voice",
                         quantity=100, called_number="33142000000")
    rated = rate_record(record, line, rate, {})
    assert (rated.billable_units, rated.allowance_units, rated.amount_minor) == (100, 30, 70)
    assert Decimal(rated.amount_minor) / 100 == Decimal("0.70")


def test_allowances_count_in_online_charging_bucket_units() -> None:
    """An MMS allowance counts MMS (as online charging's MMS bucket), minutes count seconds, GB count bytes."""
    assert allowance_quantity({"quantity": {"amount": 5, "units": "MMS"}}, "mms") == 5
    assert allowance_quantity({"quantity": {"amount": 2, "units": "minute"}}, "voice") == 120
    assert allowance_quantity({"quantity": {"amount": 1, "units": "GB"}}, "data") == 1024**3
    assert allowance_quantity({"quantity": {"amount": 3, "units": "SMS"}}, "sms") == 3


# --- calls crossing a time-band change, rated per band (bandChange: split) --------------------------------------
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
BANDED_TARIFF = {
    "id": "t-banded", "name": "Peak and off-peak", "usageType": "voice", "timeZone": "Europe/Paris",
    "defaultRatingIncrement": {"initial": 60, "subsequent": 1},
    "timeBand": [{"name": "peak", "dayOfWeek": WEEKDAYS, "startTime": "08:00", "endTime": "20:00"},
                 {"name": "offPeak", "dayOfWeek": WEEKDAYS, "startTime": "00:00", "endTime": "08:00"},
                 {"name": "offPeak", "dayOfWeek": WEEKDAYS, "startTime": "20:00", "endTime": "24:00"},
                 {"name": "offPeak", "dayOfWeek": ["sat", "sun"]}],
    "destinationZone": [{"id": "NAT", "prefix": ["33"]}],
    "rate": [{"destinationZone": "NAT", "timeBand": "peak", "price": {"value": 0.60, "unit": "EUR"},
              "setupCharge": {"value": 0.05, "unit": "EUR"}},
             {"destinationZone": "NAT", "timeBand": "offPeak", "price": {"value": 0.24, "unit": "EUR"},
              "setupCharge": {"value": 0.05, "unit": "EUR"}}]}


@settings(max_examples=150, deadline=None)
@given(start=st.integers(-2 * 3600, 2 * 3600), night=st.one_of(st.none(), st.integers(0, 900)),
       calls=st.lists(st.tuples(st.integers(0, 3000), st.lists(st.integers(0, 900), max_size=4)), min_size=1,
                      max_size=5))
def test_split_calls_batch_and_real_time_charge_the_same(start: int, night: int | None,
                                                         calls: list[tuple[int, list[int]]]) -> None:
    """The same rate choice (``pricing.choice.choose_rate``) and the same per-band charge for a CDR (start time +
    duration) and an online session crossing the end of peak (Monday 20:00 Paris), a night allowance paying
    off-peak seconds only."""
    from openbss.catalog.tariff import compile_tariff
    from openbss.rating.rater import resolve_rate

    tariff = compile_tariff(BANDED_TARIFF)
    entry = {"priceId": "v", "currency": "EUR", "price": "0", "per": "60", "tariffId": "t-banded", "tiers": [],
             "allowances": [] if night is None else [{"quantity": {"amount": night, "units": "second"},
                                                      "timeBand": ["offPeak"]}]}
    line = Line(account_id="a", msisdn="1", product_id=None, offering_id=None, billing_account_id=None,
                party_id=None, party_type="Individual", currency="EUR", time_zone="Europe/Paris",
                plan={"voice": entry})
    buckets = [{"id": "money", "unit": "money", "remaining": 0, "reserved": 0, "initial": 0, "lower_limit": -10**18,
                "valid_from": None, "valid_to": None, "priority": 1000, "zones": None, "threshold_level": 0,
                "source": "main"}]
    if night is not None:
        buckets.append({"id": "night", "unit": "voice", "remaining": night, "reserved": 0, "initial": night,
                        "lower_limit": 0, "valid_from": None, "valid_to": None, "priority": 100, "zones": None,
                        "threshold_level": 0, "source": "allowance", "bands": ["offPeak"]})
    ledger = Ledger.load({"quota_validity_seconds": 300, "low_balance_minor": 0}, buckets, [], 0.0)
    consumed: dict[tuple[str, str, str], int] = {}
    monday_20h = datetime(2026, 12, 7, 19, 0, tzinfo=UTC)
    for i, (first, more) in enumerate(calls):
        record = UsageRecord(key=str(i), record_id=str(i), origin="t", msisdn="1",
                             event_time=monday_20h + timedelta(seconds=start + 7 * i), usage_type="voice",
                             quantity=first + sum(more), called_number="33142000000")
        rate = resolve_rate(record, line, {"t-banded": tariff}, "split")
        assert "bandSplit" in rate
        batch = rate_record(record, line, rate, consumed)
        res = ledger.open_reservation(i, 1, "voice", rate)
        steps = [ledger.debit(res, step) for step in [first, *more]]
        assert (batch.amount_minor, batch.allowance_units) == (sum(d.amount_minor for d in steps),
                                                               sum(d.allowance_units for d in steps))
    assert sum(consumed.values()) == (0 if night is None else -ledger.buckets["night"].d_remaining)


def test_split_known_case() -> None:
    """A 10-minute call from Monday 19:55 Paris, 60/1 increments: 5 min of peak at 0.60 and 5 min of off-peak at
    0.24 plus the 0.05 connect fee = 3.00 + 1.20 + 0.05 = 4.25 EUR; rated at its start band: 6.05."""
    from openbss.catalog.tariff import compile_tariff
    from openbss.rating.rater import resolve_rate

    tariff = compile_tariff(BANDED_TARIFF)
    entry = {"priceId": "v", "currency": "EUR", "price": "0", "per": "60", "tariffId": "t-banded", "tiers": [],
             "allowances": []}
    line = Line(account_id="a", msisdn="1", product_id=None, offering_id=None, billing_account_id=None,
                party_id=None, party_type="Individual", currency="EUR", time_zone="Europe/Paris",
                plan={"voice": entry})
    record = UsageRecord(key="k", record_id="k", origin="t", msisdn="1",
                         event_time=datetime(2026, 12, 7, 18, 55, tzinfo=UTC), usage_type="voice", quantity=600,
                         called_number="33142000000")
    split = rate_record(record, line, resolve_rate(record, line, {"t-banded": tariff}, "split"), {})
    assert split.amount_minor == 425 and split.rate["lanes"] == {"peak": 300, "offPeak": 300}
    start = rate_record(record, line, resolve_rate(record, line, {"t-banded": tariff}, "start"), {})
    assert start.amount_minor == 605


def test_a_time_band_allowance_pays_only_in_its_band_in_batch_too() -> None:
    """As online charging: night minutes (off-peak only) do not pay a peak call rated at its start band."""
    from openbss.catalog.tariff import compile_tariff
    from openbss.rating.rater import resolve_rate

    tariff = compile_tariff(BANDED_TARIFF)
    entry = {"priceId": "v", "currency": "EUR", "price": "0", "per": "60", "tariffId": "t-banded", "tiers": [],
             "allowances": [{"quantity": {"amount": 10, "units": "minute"}, "timeBand": ["offPeak"]}]}
    line = Line(account_id="a", msisdn="1", product_id=None, offering_id=None, billing_account_id=None,
                party_id=None, party_type="Individual", currency="EUR", time_zone="Europe/Paris",
                plan={"voice": entry})

    def cdr(hour: int) -> UsageRecord:
        return UsageRecord(key=str(hour), record_id=str(hour), origin="t", msisdn="1",
                           event_time=datetime(2026, 12, 7, hour, 0, tzinfo=UTC), usage_type="voice", quantity=60,
                           called_number="33142000000")

    consumed: dict[tuple[str, str, str], int] = {}
    peak = rate_record(cdr(10), line, resolve_rate(cdr(10), line, {"t-banded": tariff}), consumed)
    night = rate_record(cdr(22), line, resolve_rate(cdr(22), line, {"t-banded": tariff}), consumed)
    assert (peak.allowance_units, peak.amount_minor) == (0, 65)
    assert (night.allowance_units, night.amount_minor) == (60, 0)  # (no connect fee when an allowance pays)


@settings(max_examples=100, deadline=None)
@given(price=st.decimals(min_value=0, max_value=1, places=3), allowance=st.one_of(st.none(), st.integers(0, 6)),
       received=st.lists(st.booleans(), min_size=1, max_size=10))
def test_received_sms_batch_vectorized_and_real_time_charge_the_same(price: Decimal, allowance: int | None,
                                                                    received: list[bool]) -> None:
    """SMS sent and received under a flat SMS price (no tariff): a received SMS is free and takes no allowance —
    the same on the scalar batch path, the vectorized one and online charging (``pricing.choice`` chooses the rate
    for all three)."""
    from openbss.pricing.choice import choose_rate
    from openbss.rating.vectorized import rate_batch

    entry = {"priceId": "p", "currency": "EUR", "price": str(price), "per": "1",
             "allowances": [] if allowance is None else [{"quantity": {"amount": allowance, "units": "SMS"}}]}
    line = Line(account_id="acc", msisdn="33600000000", product_id=None, offering_id=None,
                billing_account_id=None, party_id=None, party_type="Individual", currency="EUR",
                time_zone="UTC", plan={"sms": entry})
    buckets = [{"id": "money", "unit": "money", "remaining": 0, "reserved": 0, "initial": 0,
                "lower_limit": -10**18, "valid_from": None, "valid_to": None, "priority": 1000, "zones": None,
                "threshold_level": 0, "source": "main"}]
    if allowance is not None:
        buckets.append({"id": "allowance", "unit": "sms", "remaining": allowance, "reserved": 0,
                        "initial": allowance, "lower_limit": 0, "valid_from": None, "valid_to": None,
                        "priority": 100, "zones": None, "threshold_level": 0, "source": "allowance"})
    ledger = Ledger.load({"quota_validity_seconds": 300, "low_balance_minor": 0}, buckets, [], START.timestamp())
    records = [UsageRecord(key=str(i), record_id=str(i), origin="t", msisdn=line.msisdn,
                           event_time=START + timedelta(minutes=i), usage_type="sms", quantity=1,
                           direction="terminating" if r else "originating",
                           called_number=None if r else "33612345678") for i, r in enumerate(received)]
    consumed: dict[tuple[str, str, str], int] = {}
    vector_consumed: dict[tuple[str, str, str], int] = {}
    vectorized, failed = rate_batch([(r, line) for r in records], {}, "start", vector_consumed)
    assert not failed and len(vectorized) == len(records)
    for record, vec in zip(records, vectorized, strict=True):
        rate = choose_rate(entry, usage_type="sms", product_id=None, tariff=None, destination=record.called_number,
                           direction=record.direction, visited_country=None, visited_network=None,
                           moment=record.event_time, time_zone="UTC")
        batch = rate_record(record, line, rate, consumed)
        n = len(ledger.debits)
        ledger.charge_event(1, "sms", 1, rate)
        online = (sum(d.amount_minor for d in ledger.debits[n:]), sum(d.allowance_units for d in ledger.debits[n:]))
        assert (batch.amount_minor, batch.allowance_units) == online == (vec.amount_minor, vec.allowance_units)
        if record.direction == "terminating":
            assert online == (0, 0)
    assert consumed == vector_consumed

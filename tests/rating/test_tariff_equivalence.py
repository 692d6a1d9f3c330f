"""Batch and real-time rating agree end to end on a tariff: destination zone by longest prefix, time band in the
account's time zone (not the tariff's), rating increments — the same voice usage charged through credit control
(INITIAL + TERMINATE) and through a usage file costs the same, call by call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from tests.catalog.helpers import EXT, create
from tests.charging.helpers import OCS, ccr, group, msisdn
from tests.conftest import bearer, session_services
from tests.rating.helpers import csv_file, ingest, rec, usage_of

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
TARIFF = {
    "name": "Voice national", "usageType": "voice", "timeZone": "Europe/Paris", "lifecycleStatus": "Active",
    "destinationZone": [{"id": "FR", "prefix": ["33"]}, {"id": "FRM", "prefix": ["336", "337"]}],
    "timeBand": [{"name": "peak", "dayOfWeek": WEEKDAYS, "startTime": "08:00", "endTime": "20:00"},
                 {"name": "off", "dayOfWeek": WEEKDAYS, "startTime": "00:00", "endTime": "08:00"},
                 {"name": "off", "dayOfWeek": WEEKDAYS, "startTime": "20:00", "endTime": "24:00"},
                 {"name": "off", "dayOfWeek": ["sat", "sun"]}],
    "rate": [{"destinationZone": "FR", "timeBand": "peak", "price": {"unit": "EUR", "value": 0.05}},
             {"destinationZone": "FR", "timeBand": "off", "price": {"unit": "EUR", "value": 0.02}},
             {"destinationZone": "FRM", "timeBand": "peak", "price": {"unit": "EUR", "value": 0.13},
              "ratingIncrement": {"initial": 30, "subsequent": 1}},
             {"destinationZone": "FRM", "timeBand": "off", "price": {"unit": "EUR", "value": 0.04},
              "setupCharge": {"unit": "EUR", "value": 0.015}}],
}
CALLS = [  # called number, event time (UTC), seconds
    ("+33142000000", datetime(2026, 11, 4, 13, 0, tzinfo=UTC), 61),  # 08:00 in New York: peak
    ("+33142000000", datetime(2026, 11, 4, 12, 59, tzinfo=UTC), 61),  # 07:59 in New York: off (peak in Paris)
    ("+33612345678", datetime(2026, 11, 4, 15, 0, tzinfo=UTC), 7),  # mobile, 30/1 increments
    ("+33712345678", datetime(2026, 11, 7, 15, 0, tzinfo=UTC), 95),  # Saturday, setup charge
    ("+33612345678", datetime(2026, 11, 5, 2, 0, tzinfo=UTC), 0),  # a call of 0 s is free
]


async def _account(rt: Any, tenant: str, tariff_id: str) -> dict[str, Any]:
    from openbss.charging import service

    plan = {"voice": {"priceId": "pv", "name": "Voice", "currency": "EUR", "price": "0", "per": "60", "tiers": [],
                      "allowances": [], "tariffId": tariff_id}}
    number = msisdn()
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        acc = await session_services().charging.service.open_account(
            ctx, subscriber=number, payment_type="postpaid", currency="EUR", plan=plan,
            credit_limit=Decimal(1000), time_zone="America/New_York", party_id=f"party-{number[1:]}")
    acc["msisdn"] = number
    return acc


async def test_voice_on_a_tariff_costs_the_same_online_and_in_batch(client: Any, rt: Any, tenant: str) -> None:
    tariff = await create(client, bearer(tenant, "catalog_manager"), f"{EXT}/tariff", TARIFF)
    online, batch = await _account(rt, tenant, tariff["id"]), await _account(rt, tenant, tariff["id"])
    system = bearer(tenant, "system")
    for called, when, seconds in CALLS:
        sid = f"msc;{uuid.uuid4().hex}"
        info = {"serviceInformation": {"calledParty": called}, "eventTimestamp": when.isoformat()}
        r = await client.post(OCS, headers=system, json=ccr("INITIAL_REQUEST", sid, 0, online["msisdn"],
                                                           groups=[group(1, requested=300)], **info))
        assert r.json()["resultCode"] == 2001, r.text
        r = await client.post(OCS, headers=system, json=ccr("TERMINATION_REQUEST", sid, 1,
                                                           groups=[group(1, used=seconds)], **info))
        assert r.json()["resultCode"] == 2001, r.text
    report = await ingest(rt, tenant, "voice.csv", csv_file(
        rec(f"c{i}", batch["msisdn"], when, "voice", seconds, calledNumber=called)
        for i, (called, when, seconds) in enumerate(CALLS)))
    assert report["rated"] == len(CALLS), report
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(text(
            "SELECT usage_date, amount_minor FROM charging_usage WHERE account_id = :a ORDER BY usage_date"),
            {"a": online["id"]})).all()
    online_amounts = {row.usage_date: row.amount_minor for row in rows}
    batch_amounts = {datetime.fromisoformat(u["usageDate"].replace("Z", "+00:00")): u["_minor"]
                     for u in await usage_of(rt, tenant, batch["id"])}
    assert len(online_amounts) >= len(CALLS) - 1
    # calls of 0 s write no online usage record (nothing was used); batch rates them at 0
    assert {k: v for k, v in batch_amounts.items() if k in online_amounts} == online_amounts
    assert all(v == 0 for k, v in batch_amounts.items() if k not in online_amounts)
    # and the figures are the tariff's, each call's charge rounded up to the cent (usage is never undercharged):
    # 61 s peak FR = 0.0508 -> 0.06; off = 0.0203 -> 0.03; 30 s of FRM peak = 0.065 -> 0.07; 95 s of FRM off with
    # its setup charge = 0.0783 -> 0.08; 0 s is free
    by_time = {when: batch_amounts[when] for _, when, _ in CALLS}
    assert [by_time[w] for _, w, _ in CALLS] == [6, 3, 7, 8, 0]

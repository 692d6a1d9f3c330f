"""Usage files in, rated TMF635 usage out: counts reconcile per file, files and records are taken once, guiding by
event time, suspense and re-processing, allowances consumed in event-time order per billing period."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charging.helpers import open_account
from tests.rating.helpers import MB, at, call, csv_file, ingest, jsonl_file, rec, reconciles, usage_of


async def test_counts_reconcile_and_records_are_rated_once(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    n = acc["msisdn"]
    records = [rec(f"r{i}", n, at(3, 10 + i), quantity=2 * MB) for i in range(4)]
    records.append(rec("v1", n, at(3, 9), "voice", 90))
    records.append(rec("r0", n, at(3, 10), quantity=2 * MB))  # the same record twice in one file
    records.append(rec("bad", n, at(3, 9), quantity=-5))  # fails validation
    records.append(rec("lost", "+33699999999", at(3, 9)))  # nobody uses the number
    report = await ingest(rt, tenant, "msc1-0001.csv", csv_file(records))
    assert (report["received"], report["rated"], report["duplicate"], report["rejected"], report["suspended"]) == \
        (8, 5, 1, 1, 1)
    assert reconciles(report) and report["duplicateFile"] is False
    # data 0.01 EUR/MB: 4 x 2 MB = 0.08; voice 0.60/min per second: 90 s = 0.90
    assert report["amounts"] == {"EUR": "0.98"}
    usage = await usage_of(rt, tenant, acc["id"])
    assert len(usage) == 5 and sum(u["_minor"] for u in usage) == 98
    assert {u["usageSpecification"]["name"] for u in usage} == {"data", "voice"}

    # the same file again: a duplicate, nothing changes
    again = await ingest(rt, tenant, "msc1-0001.csv", csv_file(records))
    assert again["duplicateFile"] is True and again["id"] == report["id"]
    assert len(await usage_of(rt, tenant, acc["id"])) == 5
    # the records re-delivered in another file (another layout): every one a duplicate
    redelivered = await ingest(rt, tenant, "msc1-0001-resent.jsonl", jsonl_file(records[:5]))
    assert (redelivered["received"], redelivered["duplicate"], redelivered["rated"]) == (5, 5, 0)
    assert len(await usage_of(rt, tenant, acc["id"])) == 5
    # the same record id from another origin is another record
    other = await ingest(rt, tenant, "msc2-0001.csv", csv_file([{**records[0], "origin": "msc2"}]))
    assert other["rated"] == 1

    pending = await call(rt, tenant, "suspense")
    reasons = {p["category"]: p["reason"] for p in pending}
    assert "'quantity' -5 must be a non-negative number" in reasons["rejected"]
    assert "unknown number 33699999999" in reasons["suspended"]


async def test_unreadable_file_is_refused_and_nothing_is_written(rt: Any, tenant: str) -> None:
    from openbss.rating.errors import UnreadableUsageFile

    with pytest.raises(UnreadableUsageFile, match="header lacks msisdn"):
        await ingest(rt, tenant, "x.csv", b"recordId,eventTime,usageType,quantity\n1,2026-11-01T00:00:00Z,data,1\n")
    assert (await call(rt, tenant, "files")) == []


async def test_guiding_by_event_time_bills_the_owner_at_that_moment(rt: Any, tenant: str) -> None:
    first = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    second = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    number = first["msisdn"]
    await call(rt, tenant, "assign_number", number, first["id"], at(1))
    await call(rt, tenant, "assign_number", number, second["id"], at(10, 0))  # the number changed owners
    report = await ingest(rt, tenant, "f.csv", csv_file([
        rec("a", number, at(9, 23, minute=59)), rec("b", number, at(10, 0)), rec("c", number, at(20)),
        rec("early", number, at(1, 0, month=10)),
    ]))
    assert (report["rated"], report["suspended"]) == (3, 1)
    assert [u["usageCharacteristic"][0]["value"] for u in await usage_of(rt, tenant, first["id"])] == ["a"]
    assert [u["usageCharacteristic"][0]["value"] for u in await usage_of(rt, tenant, second["id"])] == ["b", "c"]
    [held] = await call(rt, tenant, "suspense")
    assert held["reason"] == (f"number {number.lstrip('+')} was not assigned to a subscription at "
                              "2026-10-01T00:00:00.000Z")


async def test_guiding_by_imsi_follows_the_sim_at_the_event_time(rt: Any, tenant: str) -> None:
    from openbss.rating.errors import InvalidNumberAssignment

    first = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    second = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    sim = "208011234567890"
    await call(rt, tenant, "assign_imsi", sim, first["id"], at(1))
    await call(rt, tenant, "assign_imsi", sim, second["id"], at(10, 0))  # the SIM moved to another subscription
    # the records name the first line's number; the IMSI's history decides who used it then
    report = await ingest(rt, tenant, "pgw.jsonl", jsonl_file([
        rec("a", first["msisdn"], at(9, 23, minute=59), imsi=sim), rec("b", first["msisdn"], at(10, 0), imsi=sim),
        rec("early", first["msisdn"], at(1, 0, month=10), imsi=sim),
        rec("no-history", first["msisdn"], at(12), imsi="208019999999999"),  # guided by the number
    ]))
    assert (report["rated"], report["suspended"]) == (3, 1) and reconciles(report)
    assert sorted(u["usageCharacteristic"][0]["value"] for u in await usage_of(rt, tenant, first["id"])) == \
        ["a", "no-history"]
    assert [u["usageCharacteristic"][0]["value"] for u in await usage_of(rt, tenant, second["id"])] == ["b"]
    [held] = await call(rt, tenant, "suspense")
    assert held["reason"] == f"IMSI {sim} was not assigned to a subscription at 2026-10-01T00:00:00.000Z"
    with pytest.raises(InvalidNumberAssignment, match="not 6 to 15 digits"):
        await call(rt, tenant, "assign_imsi", "20801-ABC", first["id"], at(12))
    with pytest.raises(InvalidNumberAssignment, match="already has an assignment"):
        await call(rt, tenant, "assign_imsi", sim, first["id"], at(5))
    with pytest.raises(InvalidNumberAssignment, match="not found"):
        await call(rt, tenant, "assign_imsi", "208010000000001", "no-such-account", at(5))


async def test_suspended_records_are_corrected_or_re_guided_and_reprocessed(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    report = await ingest(rt, tenant, "f.csv", csv_file([
        rec("x1", "+33600000001", at(5)), rec("x2", acc["msisdn"], at(5), eventTime="yesterday"),
    ]))
    assert (report["suspended"], report["rejected"]) == (1, 1)
    pending = {p["category"]: p for p in await call(rt, tenant, "suspense")}
    # nothing is known yet: both stay pending, with their reasons
    assert await call(rt, tenant, "reprocess") == {"rated": 0, "duplicate": 0, "pending": 2}
    # the number's owner becomes known, the bad field is corrected
    await call(rt, tenant, "assign_number", "+33600000001", acc["id"], at(1))
    result = await call(rt, tenant, "reprocess",
                        corrections={pending["rejected"]["id"]: {"eventTime": at(6).isoformat()}})
    assert result == {"rated": 2, "duplicate": 0, "pending": 0}
    assert await call(rt, tenant, "suspense") == []
    assert len(await usage_of(rt, tenant, acc["id"])) == 2
    # re-processing again, or the file's records re-delivered, changes nothing
    assert await call(rt, tenant, "reprocess") == {"rated": 0, "duplicate": 0, "pending": 0}
    again = await ingest(rt, tenant, "f2.csv", csv_file([rec("x1", "+33600000001", at(5))]))
    assert again["duplicate"] == 1
    rep = await call(rt, tenant, "report")
    assert all(reconciles(f) for f in rep["files"])
    assert rep["suspense"]["under1Day"] == 0


async def test_allowances_are_consumed_in_event_time_order_per_period(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    n = acc["msisdn"]
    # the file lists the later session first: the earlier one takes the allowance
    report = await ingest(rt, tenant, "f.csv", csv_file([
        rec("late", n, at(20), quantity=6 * MB), rec("early", n, at(2), quantity=6 * MB),
        rec("next-month", n, at(1, 0, month=12), quantity=6 * MB),
    ]))
    assert report["rated"] == 3
    usage = {u["usageCharacteristic"][0]["value"]: u for u in await usage_of(rt, tenant, acc["id"])}
    assert (usage["early"]["_allowance"], usage["early"]["_minor"]) == (6 * MB, 0)
    assert (usage["late"]["_allowance"], usage["late"]["_minor"]) == (4 * MB, 2)  # 2 MB at 0.01
    assert (usage["next-month"]["_allowance"], usage["next-month"]["_minor"]) == (6 * MB, 0)  # a new period
    assert usage["early"]["ratedProductUsage"][0]["usageRatingTag"] == "included usage"
    assert usage["late"]["ratedProductUsage"][0]["usageRatingTag"] == "non included usage"
    # a later file continues the period's consumption: the allowance is spent
    more = await ingest(rt, tenant, "g.csv", csv_file([rec("more", n, at(25), quantity=MB)]))
    assert more["amounts"] == {"EUR": "0.01"}


async def test_usage_stored_in_overlapping_chunks_is_all_there_once(rt: Any, tenant: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from openbss.rating import service

    monkeypatch.setattr(service, "STORE_CHUNK", 3)
    monkeypatch.setattr(service, "COLUMN_STORE_CHUNK", 3)  # CSV files: the columnar pipeline
    monkeypatch.setattr(service, "YIELD_EVERY", 1)
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    records = [rec(f"c{i}", acc["msisdn"], at(3, 1 + i), quantity=(i + 1) * MB) for i in range(8)]
    report = await ingest(rt, tenant, "chunks.csv", csv_file(records))
    assert (report["rated"], report["amounts"]) == (8, {"EUR": "0.36"}) and reconciles(report)  # 1+...+8 MB
    usage = await usage_of(rt, tenant, acc["id"])
    assert sorted(u["usageCharacteristic"][0]["value"] for u in usage) == sorted(f"c{i}" for i in range(8))
    assert len({u["id"] for u in usage}) == 8


async def test_a_price_in_another_currency_than_the_line_is_not_rated(client: Any, rt: Any, tenant: str) -> None:
    """A price (plan entry or tariff rate) in another currency than the line's is not rated — its minor units are
    not the line's money —: the record waits in suspense with the reason, nothing stored, no allowance taken; the
    line's usage priced in its own currency is rated as usual. CSV (columns), JSON lines (record by record) and a
    single record alike."""
    from sqlalchemy import text

    from tests.catalog.helpers import EXT, create
    from tests.charging.helpers import entry
    from tests.conftest import bearer
    from tests.rating.test_ber import VOICE_TARIFF

    usd = entry("data", "0.01", MB, currency="USD",
                allowances=[{"name": "1 MB", "quantity": {"amount": 1, "units": "MB"}}])
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", rating=usd)
    n = acc["msisdn"]
    by_columns = await ingest(rt, tenant, "usd.csv", csv_file([rec("c1", n, at(5), quantity=2 * MB),
                                                               rec("c2", n, at(5, 13), "voice", 60)]))
    by_record = await ingest(rt, tenant, "usd.jsonl", jsonl_file([rec("j1", n, at(6), quantity=2 * MB)]))
    for report in (by_columns, by_record):
        assert report["suspended"] == 1 and reconciles(report)
    assert (by_columns["rated"], by_columns["amounts"]) == (1, {"EUR": "0.60"})  # the call, in EUR
    assert (by_record["rated"], by_record["amounts"]) == (0, {})
    usage = await usage_of(rt, tenant, acc["id"])
    assert [(u["usageType"], u["ratedProductUsage"][0]["taxExcludedRatingAmount"]["unit"]) for u in usage] == \
        [("voice", "EUR")]
    reasons = [s["reason"] for s in await call(rt, tenant, "suspense")]
    assert reasons == ["price 'price-data' is in USD, not in the line's currency EUR"] * 2
    with pytest.raises(Exception, match="is in USD, not in the line's currency EUR") as refused:
        await call(rt, tenant, "rate_one", rec("one", n, at(7), quantity=MB))
    assert getattr(refused.value, "status", None) == 422
    async with rt.db.transaction(tenant) as session:
        taken = (await session.execute(text("SELECT count(*) FROM rating_allowance WHERE account_id = :a"),
                                       {"a": acc["id"]})).scalar()
    assert taken == 0 and len(await usage_of(rt, tenant, acc["id"])) == 1

    # a tariff whose rate is in another currency: the same
    tariff = await create(client, bearer(tenant, "catalog_manager"), f"{EXT}/tariff", {
        **VOICE_TARIFF, "name": "Voice in dollars",
        "rate": [{**r, "price": {**r["price"], "unit": "USD"}} for r in VOICE_TARIFF["rate"]]})
    dollars = await open_account(rt, tenant, payment_type="postpaid", balance="0",
                                 rating=entry("voice", "0", 60, tariffId=tariff["id"]))
    report = await ingest(rt, tenant, "usd-tariff.csv", csv_file([rec("t1", dollars["msisdn"], at(5), "voice", 60)]))
    assert (report["rated"], report["suspended"]) == (0, 1)
    assert await usage_of(rt, tenant, dollars["id"]) == []
    assert "is in USD, not in the line's currency EUR" in (await call(rt, tenant, "suspense"))[-1]["reason"]


@pytest.mark.parametrize("layout", ["csv", "jsonl"])
async def test_a_prepaid_lines_records_are_suspended_not_rated_as_money_nobody_paid(
        rt: Any, tenant: str, layout: str) -> None:
    """A prepaid line is charged online, from its balance, as it uses the network: its records in a file are not
    rated again (they would be stored with an amount no balance paid, and counted as prepaid revenue)."""
    from datetime import timedelta
    from uuid import uuid4

    from tests.charging.helpers import account_state
    from tests.conftest import session_services
    from tests.rating.helpers import ctx_of

    prepaid = await open_account(rt, tenant, payment_type="prepaid", balance="10.00")
    postpaid = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    records = [rec("p1", prepaid["msisdn"], at(3, 10), quantity=3 * MB),
               rec("p2", prepaid["msisdn"], at(3, 11), "voice", 60),
               rec("q1", postpaid["msisdn"], at(3, 10), quantity=2 * MB)]
    data = csv_file(records) if layout == "csv" else jsonl_file(records)
    report = await ingest(rt, tenant, f"mix.{layout}", data)
    assert (report["received"], report["rated"], report["suspended"]) == (3, 1, 2) and reconciles(report)
    assert report["amounts"] == {"EUR": "0.02"}  # the postpaid line's 2 MB only
    assert await usage_of(rt, tenant, prepaid["id"]) == []
    assert len(await usage_of(rt, tenant, postpaid["id"])) == 1
    state = await account_state(rt, tenant, prepaid["id"])
    assert state["money"] == 1000  # untouched: 10.00 EUR
    reasons = [p["reason"] for p in await call(rt, tenant, "suspense")]
    assert reasons == [f"number {prepaid['msisdn'].lstrip('+')} is a prepaid line (charging account "
                       f"'{prepaid['id']}'): its usage is charged online, not rated from files"] * 2
    # the same file delivered again under another name: the records wait in suspense, they are duplicates
    again = await ingest(rt, tenant, f"mix-again.{layout}", data)
    assert (again["rated"], again["duplicate"], again["suspended"]) == (0, 3, 0)

    # usage of a prepaid line rated in batch before (a record stored with an amount) took no money from its
    # balance: it is not prepaid revenue
    async with rt.db.transaction(tenant) as session:
        ctx = ctx_of(session, tenant)
        charging = session_services().charging.service
        when = at(4, 10)
        await charging.store_batch_usage(ctx, [{
            "id": str(uuid4()), "key": "cdr:legacy-1", "body": {"id": "x"}, "account_id": prepaid["id"],
            "usage_type": "data", "units": MB, "allowance_units": 0, "amount_minor": 150, "currency": "EUR",
            "usage_date": when}])
        assert await charging.prepaid_usage_totals(ctx, when - timedelta(hours=1), when + timedelta(hours=1)) == {}

"""Partial records: a long data session the network split into parts is rated as one session, once, whether its
parts arrive in one file, out of order, or across files; a part re-delivered after assembly changes nothing."""

from __future__ import annotations

from typing import Any

from tests.charging.helpers import open_account
from tests.rating.helpers import MB, at, call, csv_file, ingest, jsonl_file, rec, reconciles, usage_of


def part(rid: str, number: str, n: int, quantity: int, *, last: bool = False, session: str = "S1") -> dict[str, Any]:
    return rec(rid, number, at(4, 10 + n), quantity=quantity, sessionId=session, partNumber=n, lastPart=last)


async def test_parts_in_one_file_are_rated_as_one_session(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    n = acc["msisdn"]
    report = await ingest(rt, tenant, "pgw.jsonl", jsonl_file([
        part("p3", n, 3, MB // 2, last=True), part("p1", n, 1, MB), part("p2", n, 2, MB + MB // 2),
        rec("other", n, at(4), quantity=MB)]))
    assert (report["received"], report["rated"], report["suspended"]) == (4, 4, 0) and reconciles(report)
    usage = {u["usageCharacteristic"][0]["value"]: u for u in await usage_of(rt, tenant, acc["id"])}
    assert set(usage) == {"session:S1", "other"}
    session = usage["session:S1"]
    assert session["_units"] == 3 * MB and session["_minor"] == 3  # 3 MB at 0.01 EUR/MB, rated once
    assert session["usageDate"] == "2026-11-04T11:00:00.000Z"  # the first part's time


async def test_parts_across_files_wait_in_suspense_then_assemble(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    n = acc["msisdn"]
    first = await ingest(rt, tenant, "a.jsonl", jsonl_file([part("p1", n, 1, 1500), part("p2", n, 2, 1500)]))
    assert (first["received"], first["rated"], first["suspended"]) == (2, 0, 2)
    waiting = await call(rt, tenant, "suspense")
    assert {w["category"] for w in waiting} == {"partial"} and "waiting for the other parts" in waiting[0]["reason"]
    assert await usage_of(rt, tenant, acc["id"]) == []
    # nothing to assemble yet when re-processed
    assert await call(rt, tenant, "reprocess") == {"rated": 0, "duplicate": 0, "pending": 2}
    second = await ingest(rt, tenant, "b.jsonl", jsonl_file([part("p3", n, 3, 1000, last=True)]))
    assert (second["received"], second["rated"]) == (1, 1) and reconciles(second)
    assert await call(rt, tenant, "suspense") == []
    [session] = await usage_of(rt, tenant, acc["id"])
    assert session["_units"] == 4000
    # a part delivered again, alone or with the others: duplicates
    again = await ingest(rt, tenant, "c.jsonl", jsonl_file([part("p2", n, 2, 1500), part("p3", n, 3, 1000,
                                                                                        last=True)]))
    assert (again["duplicate"], again["rated"], again["suspended"]) == (2, 0, 0)
    assert len(await usage_of(rt, tenant, acc["id"])) == 1


async def test_a_session_costs_what_the_whole_usage_costs(rt: Any, tenant: str) -> None:
    """Rating increments and allowances apply to the session, not to each part."""
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=1)
    whole = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=1)
    sizes = [700_000, 900_000, 650_000, 1_200_001]
    await ingest(rt, tenant, "parts.csv", csv_file([
        {**part(f"q{i}", acc["msisdn"], i + 1, q, last=i == len(sizes) - 1), "sessionId": "S9"}
        for i, q in enumerate(sizes)]), source="pgw")
    await ingest(rt, tenant, "whole.csv", csv_file([rec("w", whole["msisdn"], at(4, 11), quantity=sum(sizes))]))
    [a] = await usage_of(rt, tenant, acc["id"])
    [b] = await usage_of(rt, tenant, whole["id"])
    assert (a["_units"], a["_allowance"], a["_minor"]) == (b["_units"], b["_allowance"], b["_minor"])
    assert a["_allowance"] == MB


async def test_partial_fields_are_validated(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    report = await ingest(rt, tenant, "bad.jsonl", jsonl_file([
        rec("x", acc["msisdn"], at(4), sessionId="S", partNumber=0),
        rec("y", acc["msisdn"], at(4), partNumber=2),
        rec("z", acc["msisdn"], at(4), sessionId="S", partNumber=1, lastPart="maybe")]))
    assert report["rejected"] == 3
    reasons = sorted(s["reason"] for s in await call(rt, tenant, "suspense"))
    assert reasons == ["'lastPart' 'maybe' is not true or false", "'partNumber' 0 must be 1 or more",
                       "'partNumber' and 'lastPart' need a 'sessionId'"]


async def test_a_received_call_in_parts_is_rated_as_received(client: Any, rt: Any, tenant: str) -> None:
    """A terminating call delivered in parts keeps its direction and calling party once assembled: it is rated at
    the tariff's rate for received calls, whether its parts come in one file or across files."""
    from tests.catalog.helpers import EXT, create
    from tests.conftest import bearer
    from tests.rating.test_ber import VOICE_TARIFF
    from tests.rating.test_tariff_equivalence import _account

    tariff = await create(client, bearer(tenant, "catalog_manager"), f"{EXT}/tariff", VOICE_TARIFF)
    acc = await _account(rt, tenant, tariff["id"])
    n = acc["msisdn"]

    def leg(rid: str, number: int, seconds: int, session: str, *, last: bool = False) -> dict[str, Any]:
        return rec(rid, n, at(6, 11, minute=number), "voice", seconds, calledNumber=None, direction="terminating",
                   callingNumber="+33142000000", sessionId=session, partNumber=number, lastPart=last)

    one = await ingest(rt, tenant, "mt-parts.csv", csv_file([leg("m1", 1, 60, "MT1"), leg("m2", 2, 60, "MT1",
                                                                                            last=True)]))
    assert (one["received"], one["rated"], one["suspended"]) == (2, 2, 0) and reconciles(one)
    await ingest(rt, tenant, "mt-a.csv", csv_file([leg("k1", 1, 120, "MT2")]))
    two = await ingest(rt, tenant, "mt-b.csv", csv_file([leg("k2", 2, 60, "MT2", last=True)]))
    assert (two["rated"], two["suspended"]) == (1, 0)
    usage = {u["usageCharacteristic"][0]["value"]: u for u in await usage_of(rt, tenant, acc["id"])}
    assert set(usage) == {"session:MT1", "session:MT2"}
    # received at home: 0.01 EUR a minute (an originating call would cost 0.05)
    assert (usage["session:MT1"]["_minor"], usage["session:MT2"]["_minor"]) == (2, 3)
    for session in usage.values():
        chars = {c["name"]: c["value"] for c in session["usageCharacteristic"]}
        assert (chars["direction"], chars["callingParty"]) == ("terminating", "33142000000")
        assert "calledParty" not in chars


async def test_parts_that_disagree_on_direction_or_party_are_suspended(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    n = acc["msisdn"]
    report = await ingest(rt, tenant, "mixed.csv", csv_file([
        rec("x1", n, at(6, 11), "voice", 60, sessionId="X", partNumber=1),
        rec("x2", n, at(6, 12), "voice", 60, calledNumber=None, direction="terminating",
            callingNumber="+33142000000", sessionId="X", partNumber=2, lastPart=True),
        rec("y1", n, at(6, 13), "voice", 60, calledNumber="+33142000001", sessionId="Y", partNumber=1),
        rec("y2", n, at(6, 14), "voice", 60, calledNumber="+33142000002", sessionId="Y", partNumber=2,
            lastPart=True)]))
    assert (report["received"], report["rated"], report["suspended"]) == (4, 0, 4) and reconciles(report)
    assert await usage_of(rt, tenant, acc["id"]) == []
    reasons = sorted(s["reason"] for s in await call(rt, tenant, "suspense"))
    assert reasons == ["the parts of session X disagree on direction",
                       "the parts of session Y disagree on calledNumber"]

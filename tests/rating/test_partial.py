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

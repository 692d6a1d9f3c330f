"""Records arriving late within a billing period: the allowances are consumed in event-time order anyway — the
records already rated after a late one in its account's period are rated again with it, and those whose figures
change get a new version (a reversal and the new one), so the sum over a record's rows is its right amount."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.charging.helpers import open_account
from tests.rating.helpers import MB, at, csv_file, ingest, rec, reconciles, usage_of


def by_record(usage: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for u in usage:
        out[next(c["value"] for c in u["usageCharacteristic"] if c["name"] == "recordId")].append(u)
    return out


async def test_a_late_record_takes_the_allowance_of_its_time_and_later_records_get_new_versions(
        rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    other = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    n = acc["msisdn"]
    first = await ingest(rt, tenant, "f1.csv", csv_file([
        rec("b", n, at(10), quantity=6 * MB), rec("c", n, at(20), quantity=6 * MB),
        rec("x", other["msisdn"], at(20), quantity=6 * MB), rec("dec", n, at(2, month=12), quantity=6 * MB)]))
    assert first["rated"] == 4
    rows = by_record(await usage_of(rt, tenant, acc["id"]))
    assert (rows["c"][0]["_allowance"], rows["c"][0]["_minor"]) == (4 * MB, 2)

    # "a" happened before both: it takes 3 MB of the allowance, "b" keeps its 6 MB, "c" has 1 MB left
    late = await ingest(rt, tenant, "f2.csv", csv_file([rec("a", n, at(5), quantity=3 * MB)]))
    assert (late["received"], late["rated"]) == (1, 1) and reconciles(late)
    assert late["resequenced"] == 1
    rows = by_record(await usage_of(rt, tenant, acc["id"]))
    assert [(u["_allowance"], u["_minor"]) for u in rows["a"]] == [(3 * MB, 0)]
    assert [(u["_allowance"], u["_minor"]) for u in rows["b"]] == [(6 * MB, 0)]  # unchanged: no new version
    c = rows["c"]
    assert sorted((u["status"], u["_allowance"], u["_minor"]) for u in c) == sorted([
        ("rated", 4 * MB, 2), ("rerated", -4 * MB, -2), ("rerated", 1 * MB, 5)])
    assert sum(u["_minor"] for u in c) == 5 and sum(u["_allowance"] for u in c) == MB
    new = next(u for u in c if u["status"] == "rerated" and u["_minor"] > 0)
    chars = {ch["name"]: ch["value"] for ch in new["usageCharacteristic"]}
    assert chars["version"] == 1 and chars["replaces"] == next(u["id"] for u in c if u["status"] == "rated")
    assert "late records of file" in chars["resequencedBy"]
    # another month and another account are not touched
    assert len(rows["dec"]) == 1 and len(await usage_of(rt, tenant, other["id"])) == 1

    # the period's allowance is spent: a later record pays, and a second late record re-sequences again
    more = await ingest(rt, tenant, "f3.csv", csv_file([rec("d", n, at(25), quantity=MB)]))
    assert more["amounts"] == {"EUR": "0.01"} and more["resequenced"] == 0
    again = await ingest(rt, tenant, "f4.csv", csv_file([rec("a0", n, at(1), quantity=MB)]))
    assert again["rated"] == 1 and again["resequenced"] == 1  # "c" goes to version 2; "a", "b" keep theirs
    rows = by_record(await usage_of(rt, tenant, acc["id"]))
    totals = {k: (sum(u["_allowance"] for u in v), sum(u["_minor"] for u in v)) for k, v in rows.items()}
    assert totals == {"a0": (MB, 0), "a": (3 * MB, 0), "b": (6 * MB, 0), "c": (0, 6), "d": (0, 1),
                      "dec": (6 * MB, 0)}
    assert len(rows["c"]) == 5  # the original, two reversals, two new versions
    # the same late file again is a duplicate file; its record delivered again in another file a duplicate record
    dup = await ingest(rt, tenant, "f4-resent.csv", csv_file([rec("a0", n, at(1), quantity=MB)]))
    assert (dup["duplicate"], dup["resequenced"]) == (1, 0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), sizes=st.lists(st.integers(1, 6), min_size=2, max_size=6))
async def test_any_arrival_order_ends_with_the_in_order_figures(rt: Any, tenant: str, data: Any,
                                                               sizes: list[int]) -> None:
    """Whatever order the records of a period arrive in, in files of any size, the sum over each record's rows is
    what rating them all at once in event-time order gives."""
    in_order = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    shuffled = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    minutes = data.draw(st.lists(st.integers(0, 29 * 24 * 60), min_size=len(sizes), max_size=len(sizes),
                                 unique=True))
    records = [(f"r{i}", at(1, 0) + timedelta(minutes=m), q * MB)
               for i, (m, q) in enumerate(zip(minutes, sizes, strict=True))]
    run = uuid.uuid4().hex  # record keys are origin and record id: each example's records are new
    await ingest(rt, tenant, f"all-{run}.csv", csv_file(
        [rec(r, in_order["msisdn"], t, quantity=q, origin=f"a-{run}") for r, t, q in records]))
    order = data.draw(st.permutations(records))
    cut = data.draw(st.integers(1, len(order)))
    for n, part in enumerate((order[:cut], order[cut:])):
        if part:
            await ingest(rt, tenant, f"part{n}-{run}.csv", csv_file(
                [rec(r, shuffled["msisdn"], t, quantity=q, origin=f"b-{run}") for r, t, q in part]))

    def totals(usage: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
        return {k: (sum(u["_allowance"] for u in v), sum(u["_minor"] for u in v))
                for k, v in by_record(usage).items()}

    assert totals(await usage_of(rt, tenant, shuffled["id"])) == totals(await usage_of(rt, tenant, in_order["id"]))


async def test_a_record_that_cannot_be_rated_again_with_a_late_one_is_reversed_with_its_allowance(
        client: Any, rt: Any, tenant: str) -> None:
    """Re-sequenced by a late record after a correction that leaves one of them unratable: that one is reversed
    whole (amount and allowance), the period's consumption is the sum of the versions in force."""
    from tests.rating.test_rerate import _set_plan, allowance_state, zones_line, zones_plan

    acc, _, france = await zones_line(client, rt, tenant)
    n = acc["msisdn"]
    await ingest(rt, tenant, "calls.csv", csv_file([
        rec("c2", n, at(4), "voice", 300, calledNumber="+442071234567"),
        rec("c3", n, at(5), "voice", 300, calledNumber="+33142000000")]))
    assert await allowance_state(rt, tenant, acc["id"]) == ({"c2": (0, 300), "c3": (0, 300)}, 600)
    await _set_plan(rt, tenant, acc["id"], zones_plan(france))  # the UK is not rated any more
    late = await ingest(rt, tenant, "late.csv", csv_file([rec("c1", n, at(3), "voice", 300,
                                                              calledNumber="+33142000000")]))
    assert (late["rated"], late["suspended"]) == (1, 0) and reconciles(late)
    sums, consumed = await allowance_state(rt, tenant, acc["id"])
    assert sums == {"c1": (0, 300), "c2": (0, 0), "c3": (0, 300)}
    assert consumed == sum(a for _, a in sums.values()) == 600

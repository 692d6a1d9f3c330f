"""Re-rating after a tariff correction: difference records (a reversal and a new version), never an edit in place;
a job runs exactly once; the allowances of the period are consumed again in event-time order; bad requests are
refused with nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charging.helpers import open_account, plan
from tests.rating.helpers import MB, at, call, csv_file, ingest, rec, usage_of


async def _set_plan(rt: Any, tenant: str, account_id: str, new_plan: dict[str, Any]) -> None:
    from openbss.charging import repository as repo

    async with rt.db.transaction(tenant) as session:
        await repo.set_plan(await repo.session_connection(session), account_id, None, new_plan)


async def test_rerate_writes_reversals_and_new_versions_once(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=5)
    other = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    n = acc["msisdn"]
    await ingest(rt, tenant, "f.csv", csv_file([
        rec("d1", n, at(3), quantity=4 * MB), rec("d2", n, at(4), quantity=4 * MB),  # 5 MB free, then 3 MB paid
        rec("v1", n, at(5), "voice", 60), rec("dec", n, at(2, month=12), quantity=2 * MB),
        rec("o1", other["msisdn"], at(3), quantity=10 * MB),
    ]))
    before = {u["usageCharacteristic"][0]["value"]: u["_minor"] for u in await usage_of(rt, tenant, acc["id"])}
    assert before == {"d1": 0, "d2": 3, "v1": 60, "dec": 0}
    # the tariff is corrected: data costs 0.02 EUR/MB, the allowance is 2 MB; voice unchanged
    corrected = plan(data_allowance_mb=2)
    corrected["data"]["price"] = "0.02"
    await _set_plan(rt, tenant, acc["id"], corrected)
    report = await call(rt, tenant, "rerate", "fix-1", "2026-11", account_id=acc["id"])
    assert report["alreadyRun"] is False
    assert (report["records"], report["changed"]) == (3, 2)  # November's records; the voice call is unchanged
    # d1: 2 MB free, 2 MB paid = 0.04; d2: 4 MB paid = 0.08 (was 0.00 and 0.03)
    assert report["before"] == {"EUR": "0.63"} and report["after"] == {"EUR": "0.72"}
    assert report["difference"] == {"EUR": "0.09"}
    assert {c["recordId"]: c["difference"] for c in report["changes"]} == {"d1": "0.04", "d2": "0.05"}
    usage = await usage_of(rt, tenant, acc["id"])
    d1 = [u for u in usage if u["usageCharacteristic"][0]["value"] == "d1"]
    # the original kept as it was, its reversal and the new version
    assert sorted(u["_minor"] for u in d1) == [0, 0, 4]
    assert sorted(u["status"] for u in d1) == ["rated", "rerated", "rerated"]
    assert sum(u["_minor"] for u in usage) == 72 + 0  # what billing sums: the new amounts (December's is free)
    assert sum(u["_allowance"] for u in d1) == 2 * MB
    # the same job again: its report, nothing written; another job with nothing corrected changes nothing
    again = await call(rt, tenant, "rerate", "fix-1", "2026-11", account_id=acc["id"])
    assert again["alreadyRun"] is True and again["difference"] == {"EUR": "0.09"}
    assert len(await usage_of(rt, tenant, acc["id"])) == len(usage)
    second = await call(rt, tenant, "rerate", "fix-2", "2026-11", account_id=acc["id"])
    assert (second["changed"], second["difference"]) == (0, {"EUR": "0.00"})
    assert len(await usage_of(rt, tenant, acc["id"])) == len(usage)
    # a correction back re-rates the new versions in turn (version 2)
    await _set_plan(rt, tenant, acc["id"], plan(data_allowance_mb=5))
    back = await call(rt, tenant, "rerate", "fix-3", "2026-11", account_id=acc["id"])
    assert back["difference"] == {"EUR": "-0.09"}
    assert {c["version"] for c in back["changes"]} == {2}
    assert sum(u["_minor"] for u in await usage_of(rt, tenant, acc["id"])) == 63
    # the other account was not touched
    assert [u["_minor"] for u in await usage_of(rt, tenant, other["id"])] == [10]
    # a file re-delivered after re-rating: still duplicates
    assert (await ingest(rt, tenant, "f-again.csv", csv_file([rec("d1", n, at(3), quantity=4 * MB)])))[
        "duplicate"] == 1


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("", "2026-11"), {"account_id": "x"}, "'id'"),
    (("j", "2026-13"), {"account_id": "x"}, "is not a month"),
    (("j", "2026-11"), {}, "either 'accountId' or 'tariffId'"),
    (("j", "2026-11"), {"account_id": "a", "tariff_id": "t"}, "either 'accountId' or 'tariffId'"),
    (("j", "2026-11"), {"account_id": "no-such-account"}, "charging account 'no-such-account' not found"),
    (("j", "2026-11"), {"tariff_id": "no-such-tariff"}, "tariff 'no-such-tariff' not found"),
])
async def test_bad_rerate_requests_are_refused(rt: Any, tenant: str, args: tuple[str, str], kwargs: dict[str, str],
                                               message: str) -> None:
    from openbss.rating.errors import InvalidRerate

    with pytest.raises(InvalidRerate, match=message):
        await call(rt, tenant, "rerate", *args, **kwargs)
    async with rt.db.transaction(tenant) as session:
        from sqlalchemy import text

        assert (await session.execute(text("SELECT count(*) FROM rating_rerate"))).scalar() == 0


async def test_a_job_id_is_not_reused_for_another_scope(rt: Any, tenant: str) -> None:
    from openbss.rating.errors import RerateJobConflict

    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    await call(rt, tenant, "rerate", "j1", "2026-11", account_id=acc["id"])
    with pytest.raises(RerateJobConflict):
        await call(rt, tenant, "rerate", "j1", "2026-10", account_id=acc["id"])


async def test_late_records_take_their_own_periods_allowance_and_are_resequenced(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    n = acc["msisdn"]
    await ingest(rt, tenant, "nov-late.csv", csv_file([rec("n2", n, at(20), quantity=8 * MB)]))
    # a later file brings a record of an earlier month and one of the same month but earlier in it
    report = await ingest(rt, tenant, "late.csv", csv_file([
        rec("oct", n, at(30, month=10), quantity=8 * MB), rec("n1", n, at(2), quantity=8 * MB)]))
    assert report["rated"] == 2
    assert report["resequenced"] == 1

    async def current() -> dict[str, tuple[int, int]]:
        totals: dict[str, tuple[int, int]] = {}
        for u in await usage_of(rt, tenant, acc["id"]):
            key = u["usageCharacteristic"][0]["value"]
            a, m = totals.get(key, (0, 0))
            totals[key] = (a + u["_allowance"], m + u["_minor"])
        return totals

    # October's allowance, whole; November re-sequenced by event time as the late record came: n1 first, then n2
    # (a new version: 2 MB of allowance left, 6 MB at 0.01)
    assert await current() == {"oct": (8 * MB, 0), "n1": (8 * MB, 0), "n2": (2 * MB, 6)}
    # re-rating the period finds the same figures: nothing changes
    out = await call(rt, tenant, "rerate", "resequence-nov", "2026-11", account_id=acc["id"])
    assert (out["changed"], out["difference"]) == (0, {"EUR": "0.00"})
    assert await current() == {"oct": (8 * MB, 0), "n1": (8 * MB, 0), "n2": (2 * MB, 6)}


async def test_rerate_by_tariff_after_a_tariff_correction(client: Any, rt: Any, tenant: str) -> None:
    from tests.catalog.helpers import EXT, create
    from tests.conftest import bearer
    from tests.rating.test_tariff_equivalence import TARIFF, _account

    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", TARIFF)
    on_tariff = [await _account(rt, tenant, tariff["id"]) for _ in range(2)]
    elsewhere = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    for i, acc in enumerate(on_tariff):  # Wednesday 13:00 UTC = 08:00 in New York: peak, 0.05 EUR/min
        await ingest(rt, tenant, f"t{i}.csv", csv_file([rec(f"c{i}", acc["msisdn"], at(4, 13), "voice", 120)]))
    await ingest(rt, tenant, "x.csv", csv_file([rec("x", elsewhere["msisdn"], at(4, 13), "voice", 120)]))
    rates = [dict(r) for r in TARIFF["rate"]]  # type: ignore[union-attr]
    rates[0]["price"] = {"unit": "EUR", "value": 0.08}  # the peak national rate was wrong
    r = await client.patch(f"{EXT}/tariff/{tariff['id']}", headers=h, json={"rate": rates})
    assert r.status_code == 200, r.text
    corrected = r.json()["id"]  # an Active tariff changed is a new version; the lines still name the old one
    assert corrected != tariff["id"]
    unchanged = await call(rt, tenant, "rerate", "same-version", "2026-11", tariff_id=tariff["id"])
    assert (unchanged["accounts"], unchanged["changed"]) == (2, 0)  # found by lineage, the old version: no change
    report = await call(rt, tenant, "rerate", "tariff-fix", "2026-11", tariff_id=corrected)
    assert (report["accounts"], report["records"], report["changed"]) == (2, 2, 2)
    assert report["difference"] == {"EUR": "0.12"}  # 2 calls x 2 min x 0.03
    assert [u["_minor"] for u in await usage_of(rt, tenant, elsewhere["id"])] == [120]
    for acc in on_tariff:
        assert sum(u["_minor"] for u in await usage_of(rt, tenant, acc["id"])) == 16



ZONES_TARIFF = {
    "name": "Voice by zone", "usageType": "voice", "timeZone": "Europe/Paris", "lifecycleStatus": "Active",
    "homeCountry": "FR", "destinationZone": [{"id": "FR", "prefix": ["33"]}, {"id": "UK", "prefix": ["44"]}],
    "rate": [{"destinationZone": "FR", "price": {"unit": "EUR", "value": 0.05}},
             {"destinationZone": "UK", "price": {"unit": "EUR", "value": 0.10}}],
}


def zones_plan(tariff_id: str) -> dict[str, Any]:
    """Voice on a tariff with 10 minutes included."""
    return {"voice": {"priceId": "pv", "name": "Voice", "currency": "EUR", "price": "0", "per": "60", "tiers": [],
                      "tariffId": tariff_id,
                      "allowances": [{"name": "10 min", "quantity": {"amount": 10, "units": "minute"}}]}}


async def zones_line(client: Any, rt: Any, tenant: str) -> tuple[dict[str, Any], str, str]:
    """A line on the zone tariff (France and the UK), and (its tariff, a corrected tariff without the UK)."""
    from decimal import Decimal

    from openbss.charging import service
    from tests.catalog.helpers import EXT, create
    from tests.charging.helpers import msisdn
    from tests.conftest import bearer, session_services

    h = bearer(tenant, "catalog_manager")
    both = await create(client, h, f"{EXT}/tariff", ZONES_TARIFF)
    france = await create(client, h, f"{EXT}/tariff", {
        **ZONES_TARIFF, "name": "Voice, France only", "destinationZone": ZONES_TARIFF["destinationZone"][:1],
        "rate": ZONES_TARIFF["rate"][:1]})
    n = msisdn()
    async with rt.db.transaction(tenant) as session:
        acc = await session_services().charging.service.open_account(
            service.system_context(session, tenant, "http://testserver"), subscriber=n, payment_type="postpaid",
            currency="EUR", plan=zones_plan(both["id"]), credit_limit=Decimal(1000), party_id=f"party-{n[1:]}")
    acc["msisdn"] = n
    return acc, both["id"], france["id"]


async def allowance_state(rt: Any, tenant: str, account_id: str) -> tuple[dict[str, tuple[int, int]], int]:
    """record -> (amount, allowance units) summed over its rows; November's recorded allowance consumption."""
    from sqlalchemy import text

    sums: dict[str, tuple[int, int]] = {}
    for u in await usage_of(rt, tenant, account_id):
        rid = u["usageCharacteristic"][0]["value"]
        m, a = sums.get(rid, (0, 0))
        sums[rid] = (m + u["_minor"], a + u["_allowance"])
    async with rt.db.transaction(tenant) as session:
        consumed = (await session.execute(text(
            "SELECT coalesce(sum(consumed), 0) FROM rating_allowance WHERE account_id = :a AND period = '2026-11'"),
            {"a": account_id})).scalar()
    return sums, int(consumed or 0)


async def test_a_record_rerated_to_unratable_is_reversed_with_its_allowance(client: Any, rt: Any,
                                                                            tenant: str) -> None:
    """A record that cannot be rated any more after a correction is reversed whole — its amount and the allowance
    it took —: the period's allowance consumption is the sum of the versions in force, never given twice. A later
    correction that makes it ratable again rates it as a new version."""
    acc, both, france = await zones_line(client, rt, tenant)
    n = acc["msisdn"]
    await ingest(rt, tenant, "calls.csv", csv_file([
        rec("c1", n, at(3), "voice", 300, calledNumber="+33142000000"),
        rec("c2", n, at(4), "voice", 300, calledNumber="+442071234567"),
        rec("c3", n, at(5), "voice", 300, calledNumber="+33142000000")]))
    sums, consumed = await allowance_state(rt, tenant, acc["id"])
    assert sums == {"c1": (0, 300), "c2": (0, 300), "c3": (25, 0)} and consumed == 600
    # the UK zone is dropped: the call to the UK cannot be rated any more
    await _set_plan(rt, tenant, acc["id"], zones_plan(france))
    report = await call(rt, tenant, "rerate", "no-uk", "2026-11", account_id=acc["id"])
    assert [u["recordId"] for u in report["unrated"]] == ["c2"]
    assert "no destination zone" in report["unrated"][0]["reason"]
    sums, consumed = await allowance_state(rt, tenant, acc["id"])
    assert sums == {"c1": (0, 300), "c2": (0, 0), "c3": (0, 300)}  # c2 reversed whole; c3 takes the allowance
    assert consumed == sum(a for _, a in sums.values()) == 600
    assert report["difference"] == {"EUR": "-0.25"}
    voided = next(c for c in report["changes"] if c["recordId"] == "c2")
    assert (voided["after"], voided["version"]) == ("0.00", 1) and "no destination zone" in voided["notRated"]
    [not_rated] = [u for u in await usage_of(rt, tenant, acc["id"]) if u["status"] == "rejected"]
    chars = {c["name"]: c["value"] for c in not_rated["usageCharacteristic"]}
    assert (chars["recordId"], chars["calledParty"], not_rated["_units"]) == ("c2", "442071234567", 0)
    assert "no destination zone" in chars["notRated"] and "ratedProductUsage" not in not_rated
    # re-rated again with nothing corrected: nothing changes
    rows = len(await usage_of(rt, tenant, acc["id"]))
    again = await call(rt, tenant, "rerate", "no-uk-again", "2026-11", account_id=acc["id"])
    assert (again["changed"], again["difference"]) == (0, {"EUR": "0.00"})
    assert len(await usage_of(rt, tenant, acc["id"])) == rows
    assert await allowance_state(rt, tenant, acc["id"]) == (sums, consumed)
    # the UK zone back: the call is rated again, a new version; the allowance goes to the earlier calls again
    await _set_plan(rt, tenant, acc["id"], zones_plan(both))
    back = await call(rt, tenant, "rerate", "uk-back", "2026-11", account_id=acc["id"])
    assert back["unrated"] == [] and back["difference"] == {"EUR": "0.25"}
    assert await allowance_state(rt, tenant, acc["id"]) == ({"c1": (0, 300), "c2": (0, 300), "c3": (25, 0)}, 600)

"""The columnar file pipeline (``RatingService._ingest_columns``) against the record-by-record one: the same CSV files
rated both ways, in two tenants with the same subscribers, give the same reports, the same stored usage documents
(but their ids, timestamps of rating and file ids) and the same suspense."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from sqlalchemy import text

from tests.charging.helpers import plan
from tests.conftest import session_services
from tests.rating.helpers import MB, at, ctx_of, rec

NUMBERS = ["+33611000001", "+33611000002", "+33611000003", "+33611000004"]


async def _accounts(rt: Any, tenant: str) -> dict[str, str]:
    out = {}
    async with rt.db.transaction(tenant) as session:
        ctx = ctx_of(session, tenant)
        for i, n in enumerate(NUMBERS):
            rating = plan(data_allowance_mb=5 if i % 2 == 0 else None, voice_allowance_min=2 if i == 0 else None)
            acc = await session_services().charging.service.open_account(
                ctx, subscriber=n, payment_type="postpaid", currency="EUR", plan=rating,
                party_id=f"party-{i}" if i != 3 else None, product_id=f"product-{i}" if i < 2 else None,
                time_zone="Europe/Paris" if i == 1 else None, initial_balance=Decimal(0))
            out[acc["id"]] = n
    return out


def csv_file(records: list[dict[str, Any]]) -> bytes:
    from openbss.rating.layouts import FIELDS

    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(r)
    return out.getvalue().encode()


def _files() -> list[bytes]:
    a, b, c, d = NUMBERS
    first = [
        rec("v1", a, at(3, 9), "voice", 90), rec("v2", a, at(3, 10), "voice", 61),
        rec("d1", a, at(3, 11), quantity=3 * MB), rec("d2", a, at(3, 12), quantity=3 * MB),
        rec("d3", a, at(4, 12).replace(microsecond=123456), quantity=1, apn="internet"),
        rec("s1", b, at(30, 23, minute=30), "sms", 1),  # November in UTC, December in Paris
        rec("s2", b, at(5, 1), "sms", 1, calledNumber="0033142000001"),
        rec("t1", b, at(5, 2), "voice", 30, direction="terminating", callingNumber="+33142000002"),
        rec("t2", b, at(5, 3), "sms", 1, direction="terminating", callingNumber="+33142000003"),
        rec("r1", c, at(6, 8), quantity=7 * MB, visitedCountry="es", visitedNetwork="21401", imsi="208011234567890"),
        rec("r2", c, at(6, 9), quantity="2", unit="MB"),  # a unit to convert: the scalar reader
        rec("r3", c, at(6, 10), quantity=MB, unit="B", origin="pgw7"),
        rec("m1", d, at(7, 9), "mms", 1),  # no MMS price: suspended
        rec("e1", d, at(7, 10), "event", 1),
        rec("x1", d, at(7, 11), quantity=-5),  # rejected
        rec("x2", d, at(7, 12), quantity="12a"),
        rec("x3", "+33699999999", at(7, 12)),  # unknown number: suspended
        rec("x4", d, at(7, 12), "voice", 10, calledNumber=""),  # rejected: no called number
        rec("d1", a, at(3, 11), quantity=3 * MB),  # the same record again: a duplicate
        rec("p1", d, at(8, 9), sessionId="s-1", partNumber=1),  # partial records: the scalar path
        rec("p2", d, at(8, 10), sessionId="s-1", partNumber=2, lastPart="true"),
        rec("y1", d, at(9, 9).replace(tzinfo=None) - timedelta(hours=1), quantity=1),  # no offset: rejected
    ]
    data = csv_file(first).decode()
    data += "z1,msc1,+33611000004,,2026-11-09T09:00:00Z,data,1" + "," * 10 + ",extra\n"  # more values than columns
    data += "\n" + "z2,msc1,+33611000004,,2026-11-09T09:00:00+01:00,data,7\n"  # fewer values; after an empty line
    late = [rec("d0", a, at(2, 9), quantity=4 * MB),  # late: the account's period is rated again
            rec("d9", c, at(20, 9), quantity=MB), rec("v1", a, at(3, 9), "voice", 90)]
    return [data.encode(), csv_file(late)]


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    drop = {"reverses", "replaces", "resequencedBy", "usageFile"}
    out = {k: v for k, v in body.items() if k not in ("id", "href", "description", "usageSpecification")}
    out["usageCharacteristic"] = sorted((c["name"], str(c.get("value"))) for c in body["usageCharacteristic"]
                                        if c["name"] not in drop)
    out["ratedProductUsage"] = [{k: v for k, v in pu.items() if k != "ratingDate"} for pu in body["ratedProductUsage"]]
    out["spec"] = (body.get("usageSpecification") or {}).get("name")
    out["description"] = body["description"] if "reversal" not in body["description"] else "reversal"
    return out


async def _rate(rt: Any, tenant: str, columnar: bool, taken: list[int] | None = None,
                ) -> tuple[list[Any], list[Any], list[Any]]:
    service = session_services().rating.service
    owners = await _accounts(rt, tenant)
    reports = []
    service.columnar = columnar
    store = service._rate_store_columns

    async def spy(*args: Any) -> Any:
        got = await store(*args)
        if taken is not None:
            taken.append(got[0])
        return got

    service._rate_store_columns = spy
    try:
        for i, data in enumerate(_files()):
            async with rt.db.transaction(tenant) as session:
                r = await service.ingest(ctx_of(session, tenant), f"f{i}.csv", data, source="msc1")
            reports.append({k: r[k] for k in ("received", "rated", "duplicate", "rejected", "suspended", "amounts",
                                              "resequenced")})
    finally:
        service.columnar = True
        del service._rate_store_columns
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(text(
            "SELECT body, account_id, session_id, request_number, rating_group, usage_type, units, allowance_units, "
            "amount_minor, currency, usage_date FROM charging_usage"))).all()
        suspense = (await session.execute(text(
            "SELECT f.name, s.line, s.record_key, s.category, s.reason, s.raw, s.status FROM rating_suspense s "
            "LEFT JOIN rating_file f ON f.id = s.file_id"))).all()
        allowance = (await session.execute(text(
            "SELECT account_id, period, allowance_key, consumed FROM rating_allowance"))).all()
    usage = sorted((owners[r.account_id], r.session_id, r.request_number, r.rating_group, r.usage_type, r.units,
                    r.allowance_units, r.amount_minor, r.currency, r.usage_date, repr(_comparable(r.body)))
                   for r in rows)
    return reports, usage, [sorted(map(repr, suspense)),
                            sorted((owners[a.account_id], a.period, a.allowance_key, a.consumed) for a in allowance)]


@pytest.mark.parametrize("chunk", [50_000, 2])
async def test_a_file_rated_as_columns_is_rated_as_record_by_record(rt: Any, tenant: str, other_tenant: str,
                                                                    chunk: int, monkeypatch: pytest.MonkeyPatch,
                                                                    ) -> None:
    from openbss.rating import service

    monkeypatch.setattr(service, "COLUMN_STORE_CHUNK", chunk)  # stored in one COPY, or in overlapping chunks
    taken: list[int] = []
    col_reports, col_usage, col_rest = await _rate(rt, tenant, columnar=True, taken=taken)
    assert taken and taken[0] == 9  # records of accounts the vectorized core takes were stored as columns
    ref_reports, ref_usage, ref_rest = await _rate(rt, other_tenant, columnar=False)
    assert col_reports == ref_reports
    for r in col_reports:
        assert r["received"] == r["rated"] + r["duplicate"] + r["rejected"] + r["suspended"]
    assert col_reports[0]["rated"] >= 12 and col_reports[1]["resequenced"] > 0
    assert len(col_usage) == len(ref_usage)
    for mine, theirs in zip(col_usage, ref_usage, strict=True):
        assert mine == theirs
    assert col_rest == ref_rest


def test_the_columnar_reader_takes_only_what_the_scalar_reader_accepts_the_same() -> None:
    from openbss.rating import columnar, layouts

    data = _files()[0]
    cols = columnar.read_csv(data, "msc1")
    assert cols is not None
    records, rejections = layouts.parse_file("f.csv", data, "msc1")
    by_key = {r.key: r for r in records}
    assert cols.frame.height >= 12 and len(cols.others) >= 8
    for row in cols.frame.iter_rows(named=True):
        expected = by_key[row["key"]]
        for name in columnar.COLUMNS[1:]:
            field = name if name != "event_time" else "event_time"
            assert row[name] == getattr(expected, field), (name, row, expected)
    got, refused = layouts.parse_lines(cols.others, "msc1")
    assert len(got) + len(refused) + cols.frame.height == len(records) + len(rejections)
    assert sorted((r.line, r.reason) for r in refused) == sorted((r.line, r.reason) for r in rejections)


@pytest.mark.parametrize("data", [
    b'recordId,msisdn,eventTime,usageType,quantity\n"1",+336,2026-11-01T00:00:00Z,data,1\n',
    b"recordId,msisdn,eventTime,usageType,quantity,color\n",
    b"recordId,msisdn,eventTime,usageType,quantity\r1,+336,x,data,1\n"])
def test_files_the_columnar_reader_leaves_to_the_scalar_one(data: bytes) -> None:
    from openbss.rating import columnar

    assert columnar.read_csv(data, "msc1") is None


def test_times_and_amounts_render_as_the_scalar_path_renders_them() -> None:
    from openbss.platform.tmf.spec import format_datetime
    from openbss.pricing.usage import from_minor
    from openbss.rating import columnar, layouts

    stamps = ["2026-11-03T10:00:00Z", "2026-11-03T10:00:00.999+01:00", "2026-11-03T23:59:59.999999-05:30",
              "2024-02-29T00:00:00.000001+00:00"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["recordId", "msisdn", "eventTime", "usageType", "quantity"])
    for i, s in enumerate(stamps):
        w.writerow([f"r{i}", "+33611000001", s, "data", 1])
    cols = columnar.read_csv(out.getvalue().encode(), "m")
    assert cols is not None and cols.frame.height == len(stamps)
    got = cols.frame.select(pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")).to_series().to_list()
    assert got == [format_datetime(layouts.parse_time(s)) for s in stamps]
    minors = [0, 1, 7, 10, 90, 98, 100, 105, 120, 12345, 10**12 + 1]
    for digits, currency in ((2, "EUR"), (0, "JPY"), (3, "BHD")):
        rendered = pl.DataFrame({"m": minors}).select(
            columnar._amount(pl.col("m"), pl.lit(digits, dtype=pl.Int64))).to_series().to_list()
        for minor, text_ in zip(minors, rendered, strict=True):
            value = from_minor(minor, currency)
            expected = str(int(value)) if value == value.to_integral_value() else repr(float(value))
            assert text_ == expected

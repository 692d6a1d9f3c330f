"""3GPP TS 32.298 ASN.1 BER CDRs (PGW data in partial records, MSC MO voice, MO SMS) encoded with pycrate from
known values: decoded into the same records as the CSV layout, partial records assembled into one session,
terminating and undecodable records refused with their reason, counts reconciled."""

from __future__ import annotations

from typing import Any

from tests.charging.helpers import open_account
from tests.rating.cdr_ber import mo_call, mo_sms, mt_call, pgw
from tests.rating.helpers import MB, at, call, csv_file, ingest, rec, reconciles, usage_of

IMSI = "208011234567890"


async def test_ber_file_is_rated_as_its_csv_twin(rt: Any, tenant: str) -> None:
    ber_acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=3)
    csv_acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=3)
    n = ber_acc["msisdn"]
    parts = [pgw(charging_id=4242, msisdn=n, imsi=IMSI, start=at(4, 10), uplink=MB, downlink=2 * MB, sequence=1,
                 cause=16),  # volume limit: the session goes on
             pgw(charging_id=4242, msisdn=n, imsi=IMSI, start=at(4, 11), uplink=0, downlink=3 * MB, sequence=2,
                 cause=17),  # time limit
             pgw(charging_id=4242, msisdn=n, imsi=IMSI, start=at(4, 12), uplink=512 * 1024, downlink=0,
                 sequence=3, cause=0)]  # normal release: the closing part
    data = b"".join([
        parts[0], parts[1],
        mo_call(reference=77, msisdn=n, imsi=IMSI, called="+33142000000", answer=at(5, 9), duration=95),
        mo_sms(reference=9, msisdn=n, imsi=IMSI, destination="+33698765432", sent=at(5, 10)),
        mt_call(reference=78, msisdn=n, answer=at(5, 11)),
        parts[2],
        b"\xa0\x03\x01\x01\x01",  # a record that is not a valid moCallRecord
    ])
    report = await ingest(rt, tenant, "msc-pgw-0001.ber", data)
    assert (report["received"], report["rated"], report["rejected"], report["suspended"]) == (7, 5, 2, 0)
    assert reconciles(report) and report["layout"] == "ber"
    usage = await usage_of(rt, tenant, ber_acc["id"])
    assert sorted(u["usageType"] for u in usage) == ["data", "sms", "voice"]  # the three parts rated as one
    session = next(u for u in usage if u["usageType"] == "data")
    assert session["_units"] == 6 * MB + 512 * 1024
    chars = {c["name"]: c["value"] for c in session["usageCharacteristic"]}
    assert (chars["imsi"], chars["apn"], chars["origin"]) == (IMSI, "internet", "pgw-1")
    reasons = sorted(p["reason"] for p in await call(rt, tenant, "suspense"))
    assert any("mtCallRecord" in r and "terminating usage is not rated" in r for r in reasons)
    assert any("cannot be decoded" in r for r in reasons)

    # the same usage as CSV (one data record of the session's volume) costs the same
    m = csv_acc["msisdn"]
    twin = await ingest(rt, tenant, "twin.csv", csv_file([
        rec("s", m, at(4, 10), quantity=6 * MB + 512 * 1024), rec("v", m, at(5, 9), "voice", 95),
        rec("m", m, at(5, 10), "sms", 1, calledNumber="+33698765432")]))
    assert twin["amounts"] == report["amounts"]
    assert sorted(u["_minor"] for u in await usage_of(rt, tenant, csv_acc["id"])) == \
        sorted(u["_minor"] for u in usage)
    # the file again: a duplicate; its records in another file: duplicates
    assert (await ingest(rt, tenant, "msc-pgw-0001.ber", data))["duplicateFile"] is True
    again = await ingest(rt, tenant, "msc-pgw-0002.cdr", data[:len(parts[0]) + len(parts[1])] + parts[2])
    assert (again["received"], again["duplicate"]) == (3, 3)


async def test_a_truncated_ber_file_refuses_the_rest_with_the_reason(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    call_cdr = mo_call(reference=1, msisdn=acc["msisdn"], imsi=IMSI, called="+33142000000", answer=at(5),
                       duration=10)
    report = await ingest(rt, tenant, "cut.ber", call_cdr + call_cdr[:20])
    assert (report["received"], report["rated"], report["rejected"]) == (2, 1, 1)
    [held] = await call(rt, tenant, "suspense")
    assert "bytes announced" in held["reason"]


def test_parallel_decoding_gives_the_serial_records(monkeypatch: Any) -> None:
    from openbss.rating import asn1

    records = [mo_call(reference=i, msisdn="+33612345678", imsi=IMSI, called="+33142000000", answer=at(5, 9),
                       duration=i) for i in range(1, 7)]
    data = b"".join(records[:3]) + b"\xa0\x03\x01\x01\x01" + b"".join(records[3:])
    serial = asn1.read_ber(data, workers=1)
    monkeypatch.setattr(asn1, "PARALLEL_FROM", 2)
    parallel = asn1.read_ber(data, workers=2)
    assert parallel == serial
    assert [n for n, _ in parallel] == list(range(1, 8))
    assert isinstance(parallel[3][1], str) and f"record at byte {sum(map(len, records[:3]))}" in parallel[3][1]
    assert [r["quantity"] for _, r in parallel if isinstance(r, dict)] == [str(i) for i in range(1, 7)]

"""3GPP TS 32.298 ASN.1 BER CDRs (PGW/SGW data in partial records and roaming, MSC MO and MT voice, MO and MT
SMS) encoded with pycrate from known values: decoded into the same records as the CSV layout, partial records
assembled into one session, terminating calls rated by direction, received SMS free unless the tariff charges them,
roaming by the visited PLMN, undecodable records refused with their reason, counts reconciled."""

from __future__ import annotations

from typing import Any

from tests.catalog.helpers import EXT, create
from tests.charging.helpers import open_account
from tests.rating.cdr_ber import mo_call, mo_sms, mt_call, mt_sms, pgw, plmn_id
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
    assert (report["received"], report["rated"], report["rejected"], report["suspended"]) == (7, 6, 1, 0)
    assert reconciles(report) and report["layout"] == "ber"
    usage = await usage_of(rt, tenant, ber_acc["id"])
    assert sorted(u["usageType"] for u in usage) == ["data", "sms", "voice", "voice"]  # three parts rated as one
    session = next(u for u in usage if u["usageType"] == "data")
    assert session["_units"] == 6 * MB + 512 * 1024
    chars = {c["name"]: c["value"] for c in session["usageCharacteristic"]}
    assert (chars["imsi"], chars["apn"], chars["origin"]) == (IMSI, "internet", "pgw-1")
    reasons = sorted(p["reason"] for p in await call(rt, tenant, "suspense"))
    assert len(reasons) == 1 and "cannot be decoded" in reasons[0]
    received = next(u for u in usage if u["usageType"] == "voice" and u["_units"] == 30)
    assert {c["name"]: c["value"] for c in received["usageCharacteristic"]}["direction"] == "terminating"

    # the same usage as CSV (one data record of the session's volume) costs the same
    m = csv_acc["msisdn"]
    twin = await ingest(rt, tenant, "twin.csv", csv_file([
        rec("s", m, at(4, 10), quantity=6 * MB + 512 * 1024), rec("v", m, at(5, 9), "voice", 95),
        rec("m", m, at(5, 10), "sms", 1, calledNumber="+33698765432"),
        rec("t", m, at(5, 11), "voice", 30, calledNumber=None, direction="terminating")]))
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


def _sockets_and_parent() -> tuple[set[str], int]:
    """(the sockets open in this process, its parent's pid): run in a decoding worker."""
    import os

    fds = os.listdir("/proc/self/fd")
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return {link for link in links if link.startswith("socket:")}, os.getppid()


async def test_decoding_workers_are_not_forks_of_the_calling_process(rt: Any, tenant: str) -> None:
    """A fork of this process (an asyncio loop, pooled PostgreSQL connections, NATS, threads) would inherit its
    sockets, the locks of its other threads and its signal wakeup fd: the workers come from a fork server."""
    import asyncio
    import os
    from concurrent.futures import ProcessPoolExecutor

    from openbss.rating import asn1

    assert asn1.process_context().get_start_method() != "fork"
    async with rt.db.transaction(tenant):  # a database connection open here, right now
        mine, _ = _sockets_and_parent()
        with ProcessPoolExecutor(max_workers=1, mp_context=asn1.process_context()) as pool:
            theirs, parent = await asyncio.wrap_future(pool.submit(_sockets_and_parent))
    assert mine and parent != os.getpid()
    assert not mine & theirs


VOICE_TARIFF = {
    "name": "Voice with roaming", "usageType": "voice", "timeZone": "Europe/Paris", "lifecycleStatus": "Active",
    "homeCountry": "FR", "destinationZone": [{"id": "FR", "prefix": ["33"]}],
    "roamingZone": [{"id": "EU", "country": ["ES", "DE"], "network": ["21407"]}],
    "rate": [{"destinationZone": "FR", "price": {"unit": "EUR", "value": 0.05}},
             {"destinationZone": "FR", "direction": "terminating", "price": {"unit": "EUR", "value": 0.01}},
             {"destinationZone": "FR", "roamingZone": "EU", "price": {"unit": "EUR", "value": 0.20}},
             {"destinationZone": "FR", "roamingZone": "EU", "direction": "terminating",
              "price": {"unit": "EUR", "value": 0.08}}],
}


def test_mt_calls_and_roaming_are_decoded_from_their_fields() -> None:
    from openbss.rating.asn1 import plmn, read_ber
    from openbss.rating.layouts import normalize

    assert plmn(plmn_id("214", "07")) == "21407" and plmn(plmn_id("310", "410")) == "310410"
    records = [r for _, r in read_ber(b"".join([
        mt_call(reference=5, msisdn="+33612345678", imsi=IMSI, answer=at(6, 9), duration=61,
                calling="+33142000000", location=plmn_id("214", "07")),
        mt_call(reference=6, msisdn="+33612345678", imsi=IMSI, answer=at(6, 9), duration=20,
                location=plmn_id("208", "01")),  # at home: the IMSI's country
        pgw(charging_id=9, msisdn="+33612345678", imsi=IMSI, start=at(6, 10), uplink=1, downlink=2,
            serving_plmn=plmn_id("262", "02"), kind="sGWRecord"),
        pgw(charging_id=10, msisdn="+33612345678", imsi=IMSI, start=at(6, 10), uplink=1, downlink=2,
            serving_plmn=plmn_id("208", "10")),
    ]))]
    assert all(isinstance(r, dict) for r in records), records
    away, home, sgw, pgw_home = (normalize(r, "x") for r in records)  # type: ignore[arg-type]
    assert (away.direction, away.calling_number, away.visited_network, away.visited_country) == \
        ("terminating", "33142000000", "21407", "ES")
    assert away.record_id == "mtcall:00000005" and away.quantity == 61 and away.called_number is None
    assert (home.direction, home.visited_network, home.visited_country) == ("terminating", None, None)
    assert (sgw.usage_type, sgw.visited_network, sgw.visited_country, sgw.record_id) == ("data", "26202", "DE",
                                                                                          "sgw:9")
    assert (pgw_home.visited_network, pgw_home.visited_country) == (None, None)


async def test_mt_and_roaming_calls_are_rated_by_direction_and_visited_network(client: Any, rt: Any,
                                                                               tenant: str) -> None:
    from tests.catalog.helpers import EXT, create
    from tests.conftest import bearer
    from tests.rating.test_tariff_equivalence import _account

    tariff = await create(client, bearer(tenant, "catalog_manager"), f"{EXT}/tariff", VOICE_TARIFF)
    ber_acc, csv_acc = await _account(rt, tenant, tariff["id"]), await _account(rt, tenant, tariff["id"])
    n, spain = ber_acc["msisdn"], plmn_id("214", "07")
    data = b"".join([
        mo_call(reference=1, msisdn=n, imsi=IMSI, called="+33142000000", answer=at(6, 9), duration=60),
        mo_call(reference=2, msisdn=n, imsi=IMSI, called="+33142000000", answer=at(6, 10), duration=60,
                location=spain),
        mt_call(reference=1, msisdn=n, imsi=IMSI, calling="+33142000000", answer=at(6, 11), duration=60),
        mt_call(reference=3, msisdn=n, imsi=IMSI, calling="+33142000000", answer=at(6, 12), duration=60,
                location=spain),
    ])
    report = await ingest(rt, tenant, "msc-roaming.ber", data)
    assert (report["received"], report["rated"]) == (4, 4) and reconciles(report)
    # home 0.05, roaming 0.20, received at home 0.01, received roaming 0.08 (per minute)
    assert sorted(u["_minor"] for u in await usage_of(rt, tenant, ber_acc["id"])) == [1, 5, 8, 20]
    assert report["amounts"] == {"EUR": "0.34"}
    roaming = next(u for u in await usage_of(rt, tenant, ber_acc["id"]) if u["_minor"] == 8)
    chars = {c["name"]: c["value"] for c in roaming["usageCharacteristic"]}
    assert (chars["direction"], chars["callingParty"], chars["visitedNetwork"], chars["roamingZone"]) == \
        ("terminating", "33142000000", "21407", "EU")
    # the same calls as CSV cost the same
    m = csv_acc["msisdn"]
    twin = await ingest(rt, tenant, "twin-roaming.csv", csv_file([
        rec("a", m, at(6, 9), "voice", 60),
        rec("b", m, at(6, 10), "voice", 60, visitedNetwork="21407", visitedCountry="ES"),
        rec("c", m, at(6, 11), "voice", 60, calledNumber=None, direction="terminating",
            callingNumber="+33142000000"),
        rec("d", m, at(6, 12), "voice", 60, calledNumber=None, direction="terminating",
            callingNumber="+33142000000", visitedCountry="ES")]))
    assert twin["amounts"] == report["amounts"]
    # a terminating record of data usage, or a calling number on an originating call, is refused with the reason
    bad = await ingest(rt, tenant, "bad.csv", csv_file([
        rec("x", m, at(6), "data", MB, direction="terminating"),
        rec("y", m, at(6), "voice", 1, callingNumber="+33142000000"),
        rec("z", m, at(6), "data", MB, visitedNetwork="2140")]))
    assert bad["rejected"] == 3
    reasons = sorted(p["reason"] for p in await call(rt, tenant, "suspense"))
    assert any("terminating is for voice and SMS" in r for r in reasons)
    assert any("'callingNumber' is for terminating usage" in r for r in reasons)
    assert any("'visitedNetwork' '2140' is not a PLMN id" in r for r in reasons)


SMS_TARIFF = {
    "name": "SMS with received messages charged", "usageType": "sms", "timeZone": "Europe/Paris",
    "lifecycleStatus": "Active", "homeCountry": "FR", "destinationZone": [{"id": "FR", "prefix": ["33"]}],
    "roamingZone": [{"id": "EU", "country": ["ES"]}],
    "rate": [{"destinationZone": "FR", "price": {"unit": "EUR", "value": 0.10}},
             {"destinationZone": "FR", "roamingZone": "EU", "price": {"unit": "EUR", "value": 0.30}},
             {"destinationZone": "*", "direction": "terminating", "price": {"unit": "EUR", "value": 0.02}},
             {"destinationZone": "*", "roamingZone": "EU", "direction": "terminating",
              "price": {"unit": "EUR", "value": 0.05}}],
}


def test_mt_sms_records_are_decoded_from_their_fields() -> None:
    from openbss.rating.asn1 import read_ber
    from openbss.rating.layouts import normalize

    rows = read_ber(b"".join([
        mt_sms(msisdn="+33612345678", imsi=IMSI, delivered=at(6, 9)),
        mt_sms(msisdn="+33612345678", imsi=IMSI, delivered=at(6, 10), location=plmn_id("214", "07")),
        mt_sms(msisdn="+33612345678", imsi=IMSI, delivered=at(6, 11), failed=True),
    ]))
    home, away = (normalize(r, "x") for _, r in rows[:2])  # type: ignore[arg-type]
    assert (home.usage_type, home.direction, home.quantity, home.msisdn, home.imsi) == \
        ("sms", "terminating", 1, "33612345678", IMSI)
    assert home.event_time == at(6, 9) and home.origin == "msc:33609000001"
    assert home.record_id == f"mtsms:{IMSI}:{at(6, 9).strftime('%y%m%d%H%M%S')}2b0000"
    assert (home.called_number, home.calling_number, home.visited_network) == (None, None, None)
    assert (away.visited_network, away.visited_country) == ("21407", "ES")
    assert isinstance(rows[2][1], str) and "the delivery failed" in rows[2][1]


async def test_mt_sms_are_rated_free_unless_the_tariff_charges_them(client: Any, rt: Any, tenant: str) -> None:
    from tests.charging.helpers import entry
    from tests.conftest import bearer

    # a flat SMS price with 10 SMS included: a received SMS costs nothing and takes nothing from the allowance
    flat = await open_account(rt, tenant, payment_type="postpaid", balance="0", rating=entry(
        "sms", "0.10", 1, allowances=[{"name": "10 SMS", "quantity": {"amount": 10, "units": "SMS"}}]))
    n = flat["msisdn"]
    report = await ingest(rt, tenant, "mt-sms-flat.ber", b"".join([
        mt_sms(msisdn=n, imsi=IMSI, delivered=at(6, 9)),
        mo_sms(reference=1, msisdn=n, imsi=IMSI, destination="+33698765432", sent=at(6, 10)),
        mt_sms(msisdn=n, imsi=IMSI, delivered=at(6, 11), failed=True)]))
    assert (report["received"], report["rated"], report["rejected"]) == (3, 2, 1) and reconciles(report)
    usage = sorted(await usage_of(rt, tenant, flat["id"]), key=lambda u: u["usageDate"])
    assert [(u["_minor"], u["_allowance"]) for u in usage] == [(0, 0), (0, 1)]  # the MO SMS took the allowance
    chars = {c["name"]: c["value"] for c in usage[0]["usageCharacteristic"]}
    assert (usage[0]["usageType"], chars["direction"]) == ("sms", "terminating")

    # a tariff with a rate for received SMS charges them (at home 0.02, roaming in the EU 0.05); MO at 0.10
    tariff = await create(client, bearer(tenant, "catalog_manager"), f"{EXT}/tariff", SMS_TARIFF)
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0",
                             rating=entry("sms", "0", 1, tariffId=tariff["id"]))
    m, other = acc["msisdn"], "208019876543210"  # another SIM: its received SMS are other records
    charged = await ingest(rt, tenant, "mt-sms-tariff.ber", b"".join([
        mt_sms(msisdn=m, imsi=other, delivered=at(6, 9)),
        mt_sms(msisdn=m, imsi=other, delivered=at(6, 10), location=plmn_id("214", "07")),
        mo_sms(reference=2, msisdn=m, imsi=other, destination="+33698765432", sent=at(6, 11))]))
    assert (charged["received"], charged["rated"]) == (3, 3) and reconciles(charged)
    assert sorted(u["_minor"] for u in await usage_of(rt, tenant, acc["id"])) == [2, 5, 10]
    # the same file again changes nothing
    again = await ingest(rt, tenant, "mt-sms-tariff-2.ber", b"".join([
        mt_sms(msisdn=m, imsi=other, delivered=at(6, 9))]))
    assert (again["received"], again["duplicate"]) == (1, 1)

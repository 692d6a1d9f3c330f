"""The Diameter Gy/Ro front end (``openbss.charging.diameter``) over the charging service and PostgreSQL: the same
sessions over Diameter and over the JSON API give the same result codes, grants and balances; the base protocol
(capabilities exchange, watchdog, disconnect); malformed requests, unknown applications and overload."""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from diameter.message.constants import AVP_CC_REQUEST_NUMBER, AVP_RESULT_CODE, AVP_SERVICE_CONTEXT_ID
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.diameter import codec, wire
from openbss.charging.diameter.client import DiameterClient, answer, result_code
from openbss.charging.diameter.codec import CREDIT_CONTROL, DCCA_APPLICATION_ID, new
from openbss.charging.diameter.engine import ServiceEngine
from openbss.charging.diameter.server import DiameterConfig, DiameterServer
from openbss.charging.schemas import CreditControlRequest
from tests.charging.helpers import DATA, MB, OCS, SMS, VOICE, account_state, ccr, group, open_account


@pytest.fixture
async def diameter(rt: Any, services: Any, tenant: str) -> AsyncIterator[DiameterServer]:
    engine = ServiceEngine(services.charging.service, rt.db, "http://testserver")
    server = DiameterServer(engine, DiameterConfig(port=0, peer_tenants={"test.example": tenant},
                                                   watchdog_seconds=30))
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def peer(diameter: DiameterServer) -> AsyncIterator[DiameterClient]:
    client = DiameterClient()
    cea = await client.connect("127.0.0.1", diameter.port)
    assert result_code(cea) == 2001
    yield client
    await client.close()


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    """A JSON answer without what Diameter does not carry (resultName), for comparing both front ends."""
    out = {k: v for k, v in doc.items() if k not in ("resultName", "errorMessage")}
    if "costInformation" in out:
        out["costInformation"] = {k: v for k, v in out["costInformation"].items() if k != "currencyNumericExponent"}
    return out


async def test_sessions_over_diameter_equal_the_json_api(client: Any, rt: Any, tenant: str,
                                                         system_headers: dict[str, str],
                                                         peer: DiameterClient) -> None:
    over_json = await open_account(rt, tenant, balance="5.00", data_allowance_mb=10)
    over_diameter = await open_account(rt, tenant, balance="5.00", data_allowance_mb=10)
    script = [
        ("INITIAL_REQUEST", 0, [group(10, 8 * MB, key="totalOctets"), group(20, 4 * MB, key="totalOctets")]),
        ("UPDATE_REQUEST", 1, [{"ratingGroup": 10, "requestedServiceUnit": {"totalOctets": 8 * MB},
                                "usedServiceUnit": {"inputOctets": 3 * MB, "outputOctets": 5 * MB}}]),
        ("TERMINATION_REQUEST", 2, [group(10, used=2 * MB, key="totalOctets"),
                                    group(20, used=3 * MB, key="totalOctets")]),
        ("UPDATE_REQUEST", 3, [group(10, 1, used=1, key="totalOctets")]),  # after the end: 5002
    ]
    for kind, number, groups in script:
        extra = {"terminationCause": "DIAMETER_LOGOUT"} if kind == "TERMINATION_REQUEST" else {}
        info = {"serviceInformation": {"visitedNetwork": "20801", "apn": "internet"}} if number == 0 else {}
        j = (await client.post(OCS, json=ccr(kind, "json-" + over_json["id"], number,
                                             over_json["msisdn"] if number == 0 else None, context=DATA,
                                             groups=groups, **extra, **info), headers=system_headers)).json()
        d = await peer.credit_control(ccr(kind, "dia-" + over_json["id"], number,
                                          over_diameter["msisdn"] if number == 0 else None, context=DATA,
                                          groups=groups, **extra, **info))
        assert d["sessionId"] == "dia-" + over_json["id"]
        assert strip(d) | {"sessionId": j["sessionId"]} == strip(j), (kind, d, j)
    # an EVENT (SMS, direct debit) and an IMS voice session with its service information, on both
    for n, (kind, context, groups, extra) in enumerate([
            ("EVENT_REQUEST", SMS, [group(3, 1, key="serviceSpecificUnits")], {"requestedAction": "DIRECT_DEBITING"}),
            ("INITIAL_REQUEST", VOICE, [group(1, 90)],
             {"serviceInformation": {"calledParty": "+447700900123", "roleOfNode": "ORIGINATING_ROLE"}})]):
        j = (await client.post(OCS, json=ccr(kind, f"json-{n}-" + over_json["id"], 0, over_json["msisdn"],
                                             context=context, groups=groups, **extra), headers=system_headers)).json()
        d = await peer.credit_control(ccr(kind, f"dia-{n}-" + over_json["id"], 0, over_diameter["msisdn"],
                                          context=context, groups=groups, **extra))
        assert j["resultCode"] == d["resultCode"] == 2001, (j, d)
        if "costInformation" in j:
            assert Decimal(str(j["costInformation"]["unitValue"])) == d["costInformation"]["unitValue"]
            j["costInformation"]["unitValue"] = d["costInformation"]["unitValue"]
        assert strip(d) | {"sessionId": j["sessionId"]} == strip(j), (kind, d, j)
    a, b = await account_state(rt, tenant, over_json["id"]), await account_state(rt, tenant, over_diameter["id"])
    for key in ("money", "money_reserved", "usage"):
        assert a[key] == b[key], key
    assert a["usage"]["n"] >= 2


async def test_voice_credit_limit_and_event(client: Any, rt: Any, tenant: str, system_headers: dict[str, str],
                                            peer: DiameterClient) -> None:
    acc = await open_account(rt, tenant, balance="1.00")  # 100 seconds of voice, 10 SMS
    i = await peer.credit_control(ccr("INITIAL_REQUEST", "v1", 0, acc["msisdn"], groups=[group(1, 300)],
                                      serviceInformation={"calledParty": "+33612345678",
                                                          "roleOfNode": "ORIGINATING_ROLE"}))
    m = i["multipleServicesCreditControl"][0]
    assert i["resultCode"] == 2001 and m["grantedServiceUnit"] == {"time": 100}
    assert m["finalUnitIndication"] == {"finalUnitAction": "TERMINATE"} and m["validityTime"] == 300
    other = await peer.credit_control(ccr("INITIAL_REQUEST", "v2", 0, acc["msisdn"], groups=[group(1, 10)]))
    assert other["resultCode"] == 4012 and other["multipleServicesCreditControl"][0]["resultCode"] == 4012
    await peer.credit_control(ccr("TERMINATION_REQUEST", "v1", 1, groups=[group(1, used=60)]))
    event = await peer.credit_control(ccr("EVENT_REQUEST", "e1", 0, acc["msisdn"], context=SMS,
                                          requestedAction="DIRECT_DEBITING",
                                          groups=[group(3, 1, key="serviceSpecificUnits")]))
    assert event["resultCode"] == 2001, event
    assert event["costInformation"]["unitValue"] == Decimal("0.10")
    assert event["costInformation"]["currencyCode"] == "EUR"
    # a repeated request gets the same answer and is charged once
    again = await peer.credit_control(ccr("EVENT_REQUEST", "e1", 0, acc["msisdn"], context=SMS,
                                          requestedAction="DIRECT_DEBITING",
                                          groups=[group(3, 1, key="serviceSpecificUnits")]))
    assert again == event
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 100 - 60 - 10 and st["money_reserved"] == 0
    unknown = await peer.credit_control(ccr("INITIAL_REQUEST", "u1", 0, "+33000000000", groups=[group(1, 10)]))
    assert unknown["resultCode"] == 5030
    unknown_session = await peer.credit_control(ccr("UPDATE_REQUEST", "nope", 1, groups=[group(1, 10)]))
    assert unknown_session["resultCode"] == 5002


async def test_concurrent_sessions_on_one_connection_are_answered_out_of_order(rt: Any, tenant: str,
                                                                               peer: DiameterClient) -> None:
    acc = await open_account(rt, tenant, balance="10.00")
    sessions = [f"c-{uuid.uuid4().hex[:8]}-{n}" for n in range(20)]
    answers = await asyncio.gather(*(peer.credit_control(ccr("INITIAL_REQUEST", s, 0, acc["msisdn"],
                                                             groups=[group(1, 30)])) for s in sessions))
    assert [a["sessionId"] for a in answers] == sessions and {a["resultCode"] for a in answers} == {2001}
    ends = await asyncio.gather(*(peer.credit_control(ccr("TERMINATION_REQUEST", s, 1, groups=[group(1, used=10)]))
                                  for s in sessions))
    assert {a["resultCode"] for a in ends} == {2001}
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 - 200 and st["money_reserved"] == 0


async def test_watchdog_and_disconnect(diameter: DiameterServer) -> None:
    client = DiameterClient()
    await client.connect("127.0.0.1", diameter.port)
    dwa = await client.watchdog()
    assert result_code(dwa) == 2001 and not dwa.header.is_request
    dpa = await client.request(282, 0, [new(273, 0)], proxiable=False)
    assert result_code(dpa) == 2001
    await asyncio.wait_for(client.closed.wait(), 5)  # the server closes after its DPA
    await client.close(polite=False)


async def test_server_sends_watchdog_when_idle(rt: Any, services: Any, tenant: str) -> None:
    engine = ServiceEngine(services.charging.service, rt.db, "http://testserver")
    server = DiameterServer(engine, DiameterConfig(port=0, default_tenant=tenant, watchdog_seconds=0.2))
    await server.start()
    client = DiameterClient()
    try:
        await client.connect("127.0.0.1", server.port)
        dwr = await asyncio.wait_for(client.unsolicited.get(), 5)
        assert dwr.header.command_code == 280 and dwr.header.is_request
    finally:
        await client.close()
        await server.close()


async def test_unknown_peer_and_no_common_application_are_refused(rt: Any, services: Any, tenant: str,
                                                                  diameter: DiameterServer) -> None:
    stranger = DiameterClient(origin_host="pgw.elsewhere", origin_realm="elsewhere.example")
    cea = await stranger.connect("127.0.0.1", diameter.port)
    assert result_code(cea) == 3010 and cea.header.is_error
    await asyncio.wait_for(stranger.closed.wait(), 5)
    await stranger.close(polite=False)
    no_dcca = DiameterClient()
    cea = await no_dcca.connect("127.0.0.1", diameter.port, applications=(16777238,))  # Gx only
    assert result_code(cea) == 5010
    await asyncio.wait_for(no_dcca.closed.wait(), 5)
    await no_dcca.close(polite=False)


async def test_request_before_capabilities_exchange_is_refused(diameter: DiameterServer) -> None:
    client = DiameterClient()
    client.reader, client.writer = await asyncio.open_connection("127.0.0.1", diameter.port)
    client._reader_task = asyncio.create_task(client._read())
    hop, data = client.build(CREDIT_CONTROL, DCCA_APPLICATION_ID,
                             codec.request_avps(ccr("INITIAL_REQUEST", "early", 0, "+3361", groups=[group(1, 1)])))
    frame = await asyncio.wait_for(client.send_raw(data, hop), 5)
    assert result_code(frame) == 3010 and frame.header.is_error
    await client.close(polite=False)


async def test_unknown_application_and_command(peer: DiameterClient) -> None:
    avps = codec.request_avps(ccr("INITIAL_REQUEST", "app", 0, "+33611", groups=[group(1, 1)]))
    other_app = await peer.request(CREDIT_CONTROL, 16777238, avps)
    assert result_code(other_app) == 3007 and other_app.header.is_error
    assert codec.find(other_app.avps, 263) is not None  # the Session-Id is echoed
    unknown_command = await peer.request(8388620, DCCA_APPLICATION_ID, avps)
    assert result_code(unknown_command) == 3001


async def test_malformed_requests(rt: Any, tenant: str, peer: DiameterClient) -> None:
    acc = await open_account(rt, tenant, balance="1.00")
    good = codec.request_avps(ccr("INITIAL_REQUEST", "m1", 0, acc["msisdn"], groups=[group(1, 10)]))
    # a missing required AVP: 5005 with the AVP in Failed-AVP
    missing = [a for a in good if a.code != AVP_SERVICE_CONTEXT_ID]
    a = answer(await peer.request(CREDIT_CONTROL, DCCA_APPLICATION_ID, missing))
    assert a["resultCode"] == 5005 and a["requestNumber"] == 0
    # a value outside the mapping: an unknown CC-Request-Type
    bad_type = [new(416, 9) if x.code == 416 else x for x in good]
    assert answer(await peer.request(CREDIT_CONTROL, DCCA_APPLICATION_ID, bad_type))["resultCode"] == 5004
    # a value the schema refuses (a Session-Id longer than 255): 5004
    long_id = [new(263, "x" * 300) if x.code == 263 else x for x in good]
    assert answer(await peer.request(CREDIT_CONTROL, DCCA_APPLICATION_ID, long_id))["resultCode"] == 5004
    # an AVP no dictionary knows, with its M bit: 5001 with the AVP in Failed-AVP; without the M bit it is ignored
    from diameter.message.avp import Avp

    unknown = Avp(4242, 99999, b"\x00\x00\x00\x01", 0xC0)
    refused = await peer.request(CREDIT_CONTROL, DCCA_APPLICATION_ID, [*good, unknown])
    assert result_code(refused) == 5001
    failed = codec.find(refused.avps, 279)
    assert failed is not None and codec.children(failed)[0].code == 4242
    optional = Avp(4242, 99999, b"\x00\x00\x00\x01", 0x80)
    assert answer(await peer.request(CREDIT_CONTROL, DCCA_APPLICATION_ID,
                                     [*codec.request_avps(ccr("INITIAL_REQUEST", "m0", 0, acc["msisdn"],
                                                              groups=[group(1, 5)])), optional]))["resultCode"] == 2001
    # an AVP whose length runs past the message: 5014, the connection stays usable
    hop, data = peer.build(CREDIT_CONTROL, DCCA_APPLICATION_ID, good)
    number_at = data.index(new(AVP_CC_REQUEST_NUMBER, 0).as_bytes())
    broken = bytearray(data)
    struct.pack_into(">I", broken, number_at + 4, (0x40 << 24) | 4000)
    frame = await peer.send_raw(bytes(broken), hop)
    assert result_code(frame) == 5014
    # the connection is still good, and nothing was charged
    ok = await peer.credit_control(ccr("INITIAL_REQUEST", "m2", 0, acc["msisdn"], groups=[group(1, 10)]))
    assert ok["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 10 + 5


async def test_bad_version_closes_the_connection(peer: DiameterClient) -> None:
    hop, data = peer.build(CREDIT_CONTROL, DCCA_APPLICATION_ID,
                           codec.request_avps(ccr("INITIAL_REQUEST", "v", 0, "+3361", groups=[])))
    frame = await peer.send_raw(b"\x02" + data[1:], hop)
    assert result_code(frame) == 5011
    await asyncio.wait_for(peer.closed.wait(), 5)


class SlowEngine:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def credit_control(self, tenant_id: str, ccr: CreditControlRequest) -> dict[str, Any]:
        self.calls += 1
        await self.release.wait()
        return {"sessionId": ccr.sessionId, "requestType": ccr.requestType, "requestNumber": ccr.requestNumber,
                "resultCode": 2001, "multipleServicesCreditControl": []}


async def test_too_busy_is_answered_at_once() -> None:
    engine = SlowEngine()
    server = DiameterServer(engine, DiameterConfig(port=0, default_tenant="t", max_in_flight_per_peer=4,
                                                   max_in_flight=6))
    await server.start()
    one, two = DiameterClient(), DiameterClient(origin_host="pgw2.test.example")
    try:
        await one.connect("127.0.0.1", server.port)
        await two.connect("127.0.0.1", server.port)
        held = [asyncio.create_task(one.credit_control(ccr("EVENT_REQUEST", f"b{n}", 0, "+3361",
                                                           groups=[group(1, 1)]))) for n in range(4)]
        while engine.calls < 4:
            await asyncio.sleep(0.01)
        # the connection's bound: refused at once, while the four are still being decided
        busy = await asyncio.wait_for(one.credit_control(ccr("EVENT_REQUEST", "b9", 0, "+3361",
                                                             groups=[group(1, 1)])), 5)
        assert busy["resultCode"] == 3004 and busy["error"] is True and busy["requestNumber"] == 0
        # the global bound: the second connection gets two, then 3004
        more = [asyncio.create_task(two.credit_control(ccr("EVENT_REQUEST", f"c{n}", 0, "+3361",
                                                           groups=[group(1, 1)]))) for n in range(2)]
        while engine.calls < 6:
            await asyncio.sleep(0.01)
        busy = await asyncio.wait_for(two.credit_control(ccr("EVENT_REQUEST", "c9", 0, "+3361",
                                                             groups=[group(1, 1)])), 5)
        assert busy["resultCode"] == 3004
        engine.release.set()
        assert {a["resultCode"] for a in await asyncio.gather(*held, *more)} == {2001}
        assert server.in_flight == 0 and server.results[3004] == 2
    finally:
        engine.release.set()
        await one.close()
        await two.close()
        await server.close()


def test_codec_round_trip() -> None:
    doc = ccr("UPDATE_REQUEST", "r1", 7, "+33612345678", context=DATA,
              groups=[{"ratingGroup": 5, "requestedServiceUnit": {"totalOctets": 10},
                       "usedServiceUnit": {"inputOctets": 1, "outputOctets": 2, "time": 3}}],
              eventTimestamp="2026-01-02T03:04:05+00:00", terminationCause="DIAMETER_LOGOUT",
              serviceInformation={"visitedNetwork": "20801", "apn": "internet", "calledParty": "+331",
                                  "callingParty": "+332", "roleOfNode": "TERMINATING_ROLE"})
    avps = [wire.decode(wire.encode(wire.request_header(272, 4, 1, 1), codec.request_avps(doc))).avps][0]
    back = codec.request_document(avps)
    assert CreditControlRequest.model_validate(back) == CreditControlRequest.model_validate(doc)
    assert codec.find(avps, AVP_RESULT_CODE) is None


def test_event_timestamp_is_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import UTC, datetime

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        doc = ccr("EVENT_REQUEST", "tz", 0, "+3361", context=SMS, eventTimestamp="2026-01-02T03:04:05+00:00",
                  groups=[group(3, 1, key="serviceSpecificUnits")])
        data = wire.encode(wire.request_header(272, 4, 1, 1), codec.request_avps(doc))
        # the wire value is NTP seconds of 03:04:05 UTC, whatever the local zone
        stamp = codec.find(wire.decode(data).avps, 55)
        assert stamp is not None and int.from_bytes(stamp.payload, "big") == 1767323045 + 2208988800
        back = codec.request_document(wire.decode(data).avps)
        assert datetime.fromisoformat(back["eventTimestamp"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# CC-Time (420) is Unsigned32 on the wire; the octet and service-specific counters are Unsigned64
units = st.fixed_dictionaries({}, optional={
    "time": st.integers(0, 2**32 - 1), **{k: st.integers(0, 2**53) for k in
                                          ("totalOctets", "inputOctets", "outputOctets", "serviceSpecificUnits")}})
requests = st.builds(
    lambda kind, number, sid, groups, sub, info: ccr(
        kind, sid, number, sub, context=DATA,
        groups=[{"ratingGroup": rg, **({"requestedServiceUnit": r} if r is not None else {}),
                 **({"usedServiceUnit": u} if u is not None else {})} for rg, r, u in groups],
        **({"serviceInformation": info} if info else {})),
    st.sampled_from(["INITIAL_REQUEST", "UPDATE_REQUEST", "TERMINATION_REQUEST", "EVENT_REQUEST"]),
    st.integers(0, 2**32 - 1), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                       min_size=1, max_size=60),
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.none() | units, st.none() | units), max_size=4,
             unique_by=lambda g: g[0]),
    st.none() | st.from_regex(r"\+?[0-9]{3,15}", fullmatch=True),
    st.fixed_dictionaries({}, optional={"visitedNetwork": st.from_regex(r"[0-9]{5,6}", fullmatch=True),
                                        "calledParty": st.from_regex(r"\+[0-9]{3,15}", fullmatch=True),
                                        "roleOfNode": st.sampled_from(["ORIGINATING_ROLE", "TERMINATING_ROLE"])}))


@settings(max_examples=200, deadline=None)
@given(requests)
def test_codec_round_trips_every_request(doc: dict[str, Any]) -> None:
    """Any JSON request survives JSON -> CCR bytes -> JSON unchanged (what the front end decides is what was sent)."""
    data = wire.encode(wire.request_header(272, 4, 1, 1), codec.request_avps(doc))
    back = codec.request_document(wire.decode(data).avps)
    assert CreditControlRequest.model_validate(back) == CreditControlRequest.model_validate(doc)


class FailingEngine:
    async def credit_control(self, tenant_id: str, ccr: CreditControlRequest) -> dict[str, Any]:
        raise ConnectionError("database unreachable")


async def test_engine_failure_is_unable_to_comply() -> None:
    server = DiameterServer(FailingEngine(), DiameterConfig(port=0, default_tenant="t"))
    await server.start()
    client = DiameterClient()
    try:
        await client.connect("127.0.0.1", server.port)
        a = await client.credit_control(ccr("INITIAL_REQUEST", "f", 0, "+3361", groups=[group(1, 1)]))
        assert a["resultCode"] == 5012 and a["sessionId"] == "f" and "error" not in a
    finally:
        await client.close()
        await server.close()


class GatedEngine:
    """Answers a session only when the test opens its gate."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}

    async def credit_control(self, tenant_id: str, ccr: CreditControlRequest) -> dict[str, Any]:
        await self.gates.setdefault(ccr.sessionId, asyncio.Event()).wait()
        return {"sessionId": ccr.sessionId, "requestType": ccr.requestType, "requestNumber": ccr.requestNumber,
                "resultCode": 2001}


async def test_answers_leave_in_completion_order() -> None:
    engine = GatedEngine()
    server = DiameterServer(engine, DiameterConfig(port=0, default_tenant="t"))
    await server.start()
    client = DiameterClient()
    try:
        await client.connect("127.0.0.1", server.port)
        first = asyncio.create_task(client.credit_control(ccr("EVENT_REQUEST", "slow", 0, "+3361",
                                                              groups=[group(1, 1)])))
        second = asyncio.create_task(client.credit_control(ccr("EVENT_REQUEST", "fast", 0, "+3361",
                                                               groups=[group(1, 1)])))
        while len(engine.gates) < 2:
            await asyncio.sleep(0.01)
        engine.gates["fast"].set()
        assert (await asyncio.wait_for(second, 5))["sessionId"] == "fast"
        assert not first.done()  # the earlier request is still being decided: its answer comes later
        engine.gates["slow"].set()
        assert (await asyncio.wait_for(first, 5))["sessionId"] == "slow"
    finally:
        for gate in engine.gates.values():
            gate.set()
        await client.close()
        await server.close()


async def test_a_connection_without_capabilities_exchange_is_closed() -> None:
    server = DiameterServer(SlowEngine(), DiameterConfig(port=0, default_tenant="t", watchdog_seconds=0.3))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        writer.close()
    finally:
        await server.close()


def test_fast_avp_codec_agrees_with_the_library() -> None:
    """The front end encodes and decodes the AVP types of credit control itself (the library's generic packer is
    most of the codec's time): the same bytes as the library's, and the library reads our messages."""
    from diameter.message import Message
    from diameter.message.avp import Avp

    doc = ccr("INITIAL_REQUEST", "lib;1", 3, "+33612345678", context=DATA,
              groups=[{"ratingGroup": 7, "requestedServiceUnit": {"totalOctets": 2**40, "time": 5}}],
              eventTimestamp="2026-03-04T05:06:07+00:00",
              serviceInformation={"visitedNetwork": "20801", "calledParty": "+331", "roleOfNode": "ORIGINATING_ROLE"})
    avps = codec.request_avps(doc)
    for avp in avps:
        ours = codec.encode_avp(avp)
        assert ours == Avp.from_bytes(ours).as_bytes()
        if avp.code not in (456, 443, 873, 55):  # scalars: byte-equal with the library's own constructor
            assert ours == Avp.new(avp.code, avp.vendor_id, value=avp.value).as_bytes()
    data = wire.encode(wire.request_header(272, 4, 9, 9), avps)
    parsed = Message.from_bytes(data)
    assert parsed.session_id == "lib;1" and parsed.cc_request_number == 3
    assert parsed.multiple_services_credit_control[0].requested_service_unit.cc_total_octets == 2**40
    assert parsed.subscription_id[0].subscription_id_data == "+33612345678"


async def test_a_malformed_capabilities_exchange_is_answered(diameter: DiameterServer) -> None:
    from diameter.message.avp import Avp

    client = DiameterClient()
    client.reader, client.writer = await asyncio.open_connection("127.0.0.1", diameter.port)
    client._reader_task = asyncio.create_task(client._read())
    # an Auth-Application-Id of 2 bytes: 5014, and the connection is not a peer
    hop, data = client.build(257, 0, [new(257, "127.0.0.1"), Avp(258, 0, b"\x00\x04", 0x40)], proxiable=False)
    frame = await asyncio.wait_for(client.send_raw(data, hop), 5)
    assert result_code(frame) == 5014
    assert not any(p.origin_host for p in diameter.peers)
    await client.close(polite=False)

"""Alarm sources: Prometheus Alertmanager's webhook and RFC 5424 syslog datagrams sent over loopback UDP, each
normalized to TMF642 alarms (raised, repeated, cleared)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from openbss.assurance.ingest import SD_ID, InvalidReport, SyslogListener, parse_syslog, syslog_signal
from tests.assurance.helpers import ALARM, AM, TMF642, ok
from tests.conftest import bearer
from tests.customer.helpers import assert_valid


def notification(status: str, **labels: str) -> dict[str, Any]:
    alert = {"status": status, "labels": {"alertname": "InterfaceDown", "instance": "sw-3:9100",
                                          "severity": "critical", **labels},
             "annotations": {"summary": "ge-0/0/1 is down"}, "startsAt": "2026-12-04T09:00:00Z",
             "endsAt": "2026-12-04T09:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
             "fingerprint": "c0ffee"}
    return {"version": "4", "status": status, "receiver": "openbss", "groupKey": "{}:{}", "alerts": [alert]}


async def test_alertmanager_firing_raises_and_resolved_clears(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    assert await ok(await client.post(AM, json=notification("firing"), headers=h)) == {
        "raised": 1, "repeated": 0, "cleared": 0, "unmatchedClears": 0}
    assert (await ok(await client.post(AM, json=notification("firing"), headers=h)))["repeated"] == 1
    [alarm] = await ok(await client.get(f"{ALARM}?alarmedObject.id=sw-3:9100", headers=h))
    assert_valid(TMF642, "Alarm", alarm)
    assert alarm["specificProblem"] == "InterfaceDown" and alarm["perceivedSeverity"] == "critical"
    assert alarm["alarmType"] == "qualityOfServiceAlarm" and alarm["probableCause"] == "thresholdCrossed"
    assert alarm["occurrenceCount"] == 2 and alarm["alarmDetails"] == "ge-0/0/1 is down"
    assert alarm["externalAlarmId"] == "c0ffee" and alarm["alarmRaisedTime"] == "2026-12-04T09:00:00.000Z"
    assert await ok(await client.post(AM, json=notification("resolved"), headers=h)) == {
        "raised": 0, "repeated": 0, "cleared": 1, "unmatchedClears": 0}
    cleared = await ok(await client.get(f"{ALARM}/{alarm['id']}", headers=h))
    assert cleared["state"] == "cleared" and cleared["alarmClearedTime"] == "2026-12-04T09:30:00.000Z"
    # a resolved notification sent again clears nothing more
    assert (await ok(await client.post(AM, json=notification("resolved"), headers=h)))["unmatchedClears"] == 1


async def test_alertmanager_bad_payloads_are_refused(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    for body, needle in [({"alerts": "x"}, "alerts"), (notification("firing", severity="doom"), "severity"),
                         (notification("firing", probableCause="gremlins"), "probableCause"),
                         ({"alerts": [{"status": "firing", "labels": {"alertname": "X"}}]}, "instance")]:
        r = await client.post(AM, json=body, headers=h)
        assert r.status_code == 400 and needle in r.json()["message"], (body, r.text)
    assert (await client.get(ALARM, headers=h)).headers["X-Total-Count"] == "0"
    assert (await client.post(AM, json=notification("firing"), headers=bearer(tenant, "csr_agent"))).status_code == 403


def test_syslog_messages_are_parsed_per_rfc_5424() -> None:
    msg = parse_syslog(b'<10>1 2026-12-04T10:00:00.123Z cell-07 enodeb 42 LINK_DOWN '
                       b'[alarm@32473 type="equipmentAlarm" cause="lossOfSignal" problem="S1 link" x="a\\"b"]'
                       b'[meta@1 seq="9"] \xef\xbb\xbfS1 link to MME down')
    assert (msg.facility, msg.severity, msg.hostname, msg.app_name, msg.msgid) == (1, 2, "cell-07", "enodeb",
                                                                                    "LINK_DOWN")
    assert msg.structured[SD_ID] == {"type": "equipmentAlarm", "cause": "lossOfSignal", "problem": "S1 link",
                                     "x": 'a"b'}
    assert msg.message == "S1 link to MME down"
    signal = syslog_signal(msg, datetime.now(UTC))
    assert signal is not None and signal.action == "raise"
    assert signal.alarm["perceivedSeverity"] == "critical" and signal.alarm["alarmedObject"] == {"id": "cell-07"}
    assert signal.clear_key == "cell-07|equipmentAlarm|lossOfSignal|S1 link"
    info = parse_syslog(b"<14>1 - host app - - - just information")
    assert syslog_signal(info, datetime.now(UTC)) is None
    for bad in (b"hello", b"<999>1 - - - - - -", b"<14>2 - h a - - - x", b"<14>1 - h a - - [broken"):
        with pytest.raises(InvalidReport):
            parse_syslog(bad)


@pytest.fixture
async def listener(services: Any, rt: Any, tenant: str) -> AsyncIterator[SyslogListener]:
    syslog = services.assurance.syslog_listener(rt.db, port=0, tenant=tenant)
    stop = asyncio.Event()
    task = asyncio.create_task(syslog.run(stop))
    await asyncio.wait_for(syslog.ready.wait(), 5)
    yield syslog
    stop.set()
    await asyncio.wait_for(task, 10)


async def settle(listener: SyslogListener, received: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = listener.stats
        if s.received >= received and s.applied + s.ignored + s.malformed + s.failed >= received:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not settled: {listener.stats}")


async def test_syslog_datagrams_over_loopback_raise_repeat_and_clear(listener: SyslogListener,
                                                                     client: httpx.AsyncClient, tenant: str) -> None:
    assert listener.bound_port
    lines = [
        b'<10>1 2026-12-04T10:00:00Z cell-07 enodeb - LINK_DOWN [alarm@32473 cause="lossOfSignal"] S1 down',
        b'<10>1 2026-12-04T10:00:05Z cell-07 enodeb - LINK_DOWN [alarm@32473 cause="lossOfSignal"] S1 down',
        b'<11>1 2026-12-04T10:00:07Z cell-07 enodeb - LINK_DOWN [alarm@32473 cause="lossOfSignal"] S1 down',
        b"<12>1 2026-12-04T10:00:08Z cell-08 sshd - AUTH - too many failures",
        b"<14>1 2026-12-04T10:00:09Z cell-08 cron - - - nightly job ran",
        b"not syslog at all",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(lines[0], ("127.0.0.1", listener.bound_port))
        await settle(listener, 1)  # raised; the repeats below (one window: folded) count on it
        for line in lines[1:]:
            sock.sendto(line, ("127.0.0.1", listener.bound_port))
            await asyncio.sleep(0.01)
        await settle(listener, len(lines))
        h = bearer(tenant, "network_ops")
        [alarm] = await ok(await client.get(f"{ALARM}?alarmedObject.id=cell-07", headers=h))
        assert_valid(TMF642, "Alarm", alarm)
        assert alarm["occurrenceCount"] == 3 and alarm["perceivedSeverity"] == "major"  # the last: err → major
        assert alarm["lastOccurrenceTime"] == "2026-12-04T10:00:07.000Z" and alarm["state"] == "updated"
        assert alarm["specificProblem"] == "LINK_DOWN" and alarm["sourceSystemId"] == "enodeb"
        assert alarm["alarmDetails"] == "S1 down" and alarm["reportingSystemId"] == "syslog"
        [warning] = await ok(await client.get(f"{ALARM}?alarmedObject.id=cell-08", headers=h))
        assert warning["perceivedSeverity"] == "warning" and warning["probableCause"] == "unspecifiedReason"
        assert listener.stats.ignored == 1 and listener.stats.malformed == 1
        sock.sendto(b'<13>1 2026-12-04T10:10:00Z cell-07 enodeb - LINK_DOWN '
                    b'[alarm@32473 cause="lossOfSignal" state="cleared"] S1 up', ("127.0.0.1", listener.bound_port))
        await settle(listener, len(lines) + 1)
    cleared = await ok(await client.get(f"{ALARM}/{alarm['id']}", headers=h))
    assert cleared["state"] == "cleared" and cleared["alarmClearedTime"] == "2026-12-04T10:10:00.000Z"
    assert cleared["clearSystemId"] == "syslog"

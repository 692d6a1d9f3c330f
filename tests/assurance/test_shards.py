"""Alarm listeners under load: repeats folded in memory without losing a report, several listener processes on one
UDP port (``SO_REUSEPORT``) deduplicating across processes, and a clean stop applying what was received."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from openbss.assurance.ingest import SyslogListener, parse_syslog, syslog_signal
from openbss.assurance.models import Alarm
from openbss.assurance.service import Signal, coalesce
from openbss.assurance.shards import ListenerPool
from openbss.services import run_listener_process

SEVERITY = {"critical": 2, "major": 3, "warning": 4}


def line(obj: str, minute: int, *, severity: str = "major", clear: bool = False, second: int = 0) -> bytes:
    state = ' state="cleared"' if clear else ""
    pri = 13 if clear else 8 + SEVERITY[severity]
    return (f"<{pri}>1 2026-12-04T10:{minute:02d}:{second:02d}Z {obj} enodeb - LINK_DOWN "
            f'[alarm@32473 cause="lossOfSignal"{state}] S1 down').encode()


async def _nothing(signals: list[Signal]) -> None:
    return None


EVENTS = st.lists(st.tuples(st.sampled_from(["raise", "clear"]), st.sampled_from(["a", "b", "c"]),
                            st.integers(min_value=0, max_value=59), st.sampled_from(sorted(SEVERITY))),
                  max_size=80)


def folded(signals: list[Signal]) -> list[tuple[str, str, str, int, str | None, str]]:
    return [(s.alarm["alarmedObject"]["id"], s.action, s.clear_key, n, last if s.action == "raise" else None,
             s.alarm["perceivedSeverity"]) for s, n, last in coalesce(signals)]


@settings(max_examples=60, deadline=None)
@given(EVENTS)
def test_a_window_folds_repeats_as_the_batch_would(events: list[tuple[str, str, int, str]]) -> None:
    """Folding in the listener (per distinct datagram, parsed once) then in the batch gives, per problem, what
    folding every datagram's own signal gives: the same runs between clears, every report counted, the latest time
    and severity."""
    datagrams = [line(obj, minute, severity=sev, clear=action == "clear") for action, obj, minute, sev in events]
    listener = SyslogListener(_nothing)
    for data in datagrams:
        listener._received(data)
    window, _ = listener._batch()
    assert sum(s.count for s in window) == len(datagrams)
    each = [s for s in (syslog_signal(parse_syslog(d), listener_now()) for d in datagrams) if s is not None]
    for obj in "abc":  # per problem (the order between problems is free)
        assert [f for f in folded(window) if f[0] == obj] == [f for f in folded(each) if f[0] == obj]


def listener_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def _alarms(rt: Any, tenant: str) -> tuple[int, int, int]:
    async with rt.db.transaction(tenant) as session:
        row = (await session.execute(select(
            func.count(), func.count().filter(Alarm.is_open),
            func.coalesce(func.sum(Alarm.body["occurrenceCount"].as_integer()), 0)))).one()
    return int(row[0]), int(row[1]), int(row[2])


def _send(port: int, sockets: int, keys: int, repeats: int, tag: str) -> int:
    """Every key's repeats from every one of ``sockets`` source ports (the kernel spreads source ports over the
    processes: each key reaches both); paced so that the kernel drops nothing."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sockets)]
    sent = 0
    try:
        for r in range(repeats):
            for sock in socks:
                for k in range(keys):
                    sock.sendto(line(f"{tag}-ne-{k}", r % 60, second=r % 60), ("127.0.0.1", port))
                    sent += 1
            time.sleep(0.002)
    finally:
        for sock in socks:
            sock.close()
    return sent


async def test_two_listener_processes_count_every_report_once(rt: Any, tenant: str) -> None:
    pool = ListenerPool(run_listener_process, 2, {"port": 0, "tenant": tenant, "window": 0.05})
    await asyncio.to_thread(pool.start)
    try:
        sent = await asyncio.to_thread(_send, pool.port, 16, 10, 20, "two")
        deadline = time.monotonic() + 60
        while (await _alarms(rt, tenant))[2] < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        stats = await asyncio.to_thread(pool.stop)
    assert len(stats) == 2 and all(s["received"] > 0 for s in stats), stats  # both processes took datagrams
    assert sum(s["received"] for s in stats) == sent == 16 * 10 * 20
    assert sum(s["applied"] for s in stats) == sent and not any(s["failed"] for s in stats), stats
    # one open alarm per problem whichever process saw it first, and every report counted on it
    assert await _alarms(rt, tenant) == (10, 10, sent)


async def test_a_clean_stop_applies_what_was_received(rt: Any, tenant: str) -> None:
    # a window longer than the test: nothing reaches the database before the stop
    pool = ListenerPool(run_listener_process, 2, {"port": 0, "tenant": tenant, "window": 600})
    await asyncio.to_thread(pool.start)
    try:
        sent = await asyncio.to_thread(_send, pool.port, 8, 5, 10, "stop")
        await asyncio.sleep(0.5)
        assert await _alarms(rt, tenant) == (0, 0, 0)
    finally:
        stats = await asyncio.to_thread(pool.stop)
    assert sum(s["received"] for s in stats) == sent == 8 * 5 * 10
    assert sum(s["applied"] for s in stats) == sent
    assert await _alarms(rt, tenant) == (5, 5, sent)

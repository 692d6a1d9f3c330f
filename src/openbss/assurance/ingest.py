"""Alarm sources, each normalized to TMF642 alarms: Prometheus Alertmanager's webhook (``firing`` raises,
``resolved`` clears) and RFC 5424 syslog over UDP (an alarm per message of severity warning or worse; a message
whose structured data says ``state="cleared"`` clears).

A source's report becomes a ``Signal``: raise this alarm, or clear the open alarm of the same problem (its clear
key is the reduction key the same report would have raised).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openbss.assurance import x733
from openbss.assurance.service import Signal
from openbss.platform.tmf.spec import format_datetime

log = logging.getLogger("openbss.assurance.ingest")

#: the structured-data element of syslog messages that describes an alarm (RFC 5424 section 7.2.2: a name with
#: an enterprise number; 32473 is the example number of RFC 5612)
SD_ID = "alarm@32473"
#: the UDP receive buffer the syslog listener asks for (bytes)
RECEIVE_BUFFER = 8 * 1024 * 1024


class InvalidReport(ValueError):
    """A report that cannot become an alarm (named)."""


# --- Prometheus Alertmanager ------------------------------------------------------------------------------------
#: Alertmanager's conventional ``severity`` label → X.733 perceived severity
AM_SEVERITY = {"critical": "critical", "page": "critical", "error": "major", "major": "major", "minor": "minor",
               "warning": "warning", "info": "indeterminate", "none": "indeterminate"}


def _time(value: Any, default: datetime) -> str:
    if not value or str(value).startswith("0001-"):  # Go's zero time: not set
        return format_datetime(default)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidReport(f"'{value}' is not a date-time") from exc
    return format_datetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def alertmanager_signals(payload: dict[str, Any], now: datetime) -> list[Signal]:
    """The alarms of an Alertmanager webhook notification (version 4). Labels: ``alertname`` (the specific
    problem), ``resource`` or else ``instance`` (the managed object), ``severity``, and optionally ``alarmType``
    and ``probableCause`` (X.733; default ``qualityOfServiceAlarm`` / ``thresholdCrossed``); annotations
    ``summary``/``description`` become the alarm details."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidReport("'alerts' must be a list (Alertmanager webhook payload, version 4)")
    out = []
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise InvalidReport(f"alerts[{i}] must be an object")
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        name = labels.get("alertname")
        obj = labels.get("resource") or labels.get("instance")
        if not name or not obj:
            raise InvalidReport(f"alerts[{i}] needs the labels 'alertname' and 'resource' (or 'instance')")
        status = alert.get("status") or payload.get("status")
        if status not in ("firing", "resolved"):
            raise InvalidReport(f"alerts[{i}].status must be 'firing' or 'resolved', not '{status}'")
        severity = AM_SEVERITY.get(str(labels.get("severity", "warning")).lower())
        if severity is None:
            raise InvalidReport(f"alerts[{i}]: unknown severity label '{labels.get('severity')}' "
                                f"(one of {', '.join(sorted(AM_SEVERITY))})")
        alarm: dict[str, Any] = {
            "alarmType": labels.get("alarmType", "qualityOfServiceAlarm"),
            "probableCause": labels.get("probableCause", "thresholdCrossed"),
            "specificProblem": name, "perceivedSeverity": severity, "state": "raised",
            "alarmedObject": {"id": obj}, "sourceSystemId": payload.get("receiver") or "alertmanager",
            "alarmRaisedTime": _time(alert.get("startsAt"), now),
        }
        details = " — ".join(str(annotations[k]) for k in ("summary", "description") if annotations.get(k))
        if details:
            alarm["alarmDetails"] = details
        if alert.get("fingerprint"):
            alarm["externalAlarmId"] = str(alert["fingerprint"])
        if status == "resolved":
            alarm["alarmClearedTime"] = _time(alert.get("endsAt"), now)
        out.append(Signal("raise" if status == "firing" else "clear", alarm, "alertmanager"))
    return out


# --- RFC 5424 syslog ------------------------------------------------------------------------------------------
_HEADER = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) "
    rb"(?P<msgid>\S+) (?P<rest>.*)$", re.DOTALL)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=" ]+)(?P<params>(?:\s+[^\s=\]"]+="(?:[^"\\\]]|\\.)*")*)\]')
_SD_PARAM = re.compile(r'([^\s=\]"]+)="((?:[^"\\\]]|\\.)*)"')
#: syslog severity (0 emergency … 7 debug) → X.733 perceived severity; notice, info and debug raise nothing
SYSLOG_SEVERITY = {0: "critical", 1: "critical", 2: "critical", 3: "major", 4: "warning"}


@dataclass(frozen=True)
class SyslogMessage:
    facility: int
    severity: int
    timestamp: str | None
    hostname: str | None
    app_name: str | None
    msgid: str | None
    structured: dict[str, dict[str, str]]
    message: str


def _nil(value: bytes) -> str | None:
    text = value.decode("utf-8", "replace")
    return None if text == "-" else text


def parse_syslog(data: bytes) -> SyslogMessage:
    """An RFC 5424 message (header, structured data, message; a UTF-8 BOM before the message is dropped)."""
    m = _HEADER.match(data.rstrip(b"\r\n\x00"))
    if m is None:
        raise InvalidReport("not an RFC 5424 syslog message")
    pri = int(m["pri"])
    if pri > 191 or m["version"] != b"1":
        raise InvalidReport(f"bad PRI {pri} or version {m['version']!r}")
    rest = m["rest"].decode("utf-8", "replace")
    structured: dict[str, dict[str, str]] = {}
    if rest.startswith("-"):
        rest = rest[1:]
    else:
        while rest.startswith("["):
            element = _SD_ELEMENT.match(rest)
            if element is None:
                raise InvalidReport("malformed structured data")
            structured[element["id"]] = {k: re.sub(r'\\(["\\\]])', r"\1", v)
                                         for k, v in _SD_PARAM.findall(element["params"])}
            rest = rest[element.end():]
    message = rest[1:] if rest.startswith(" ") else rest
    return SyslogMessage(pri // 8, pri % 8, _nil(m["ts"]), _nil(m["host"]), _nil(m["app"]), _nil(m["msgid"]),
                         structured, message.removeprefix("\ufeff").strip())


def syslog_signal(msg: SyslogMessage, now: datetime) -> Signal | None:
    """The alarm of a syslog message, or None for notice, info and debug messages. The ``alarm@32473`` element
    may name ``resource`` (default: the HOSTNAME), ``type`` (X.733 event type, default ``communicationsAlarm``,
    or ``equipmentAlarm`` for facility kern), ``cause`` (probable cause, default ``unspecifiedReason``),
    ``problem`` (default: the MSGID, else the APP-NAME), ``severity`` (X.733, overriding the syslog severity) and
    ``state="cleared"`` to clear the problem's open alarm."""
    sd = msg.structured.get(SD_ID, {})
    clearing = sd.get("state") == "cleared"
    severity = sd.get("severity") or SYSLOG_SEVERITY.get(msg.severity)
    if severity is None and not clearing:
        return None
    obj = sd.get("resource") or msg.hostname
    if not obj:
        raise InvalidReport("a syslog alarm needs a HOSTNAME or a 'resource' parameter")
    alarm: dict[str, Any] = {
        "alarmType": sd.get("type") or ("equipmentAlarm" if msg.facility == 0 else "communicationsAlarm"),
        "probableCause": sd.get("cause", "unspecifiedReason"),
        "perceivedSeverity": severity if severity in x733.RAISING_SEVERITIES else "indeterminate",
        "state": "raised", "alarmedObject": {"id": obj}, "sourceSystemId": msg.app_name or msg.hostname or "syslog",
        "alarmRaisedTime": _time(msg.timestamp, now),
    }
    problem = sd.get("problem") or msg.msgid or msg.app_name
    if problem:
        alarm["specificProblem"] = problem
    if msg.message:
        alarm["alarmDetails"] = msg.message[:2000]
    if clearing:
        alarm["alarmClearedTime"] = alarm["alarmRaisedTime"]
    return Signal("clear" if clearing else "raise", alarm, "syslog")


# --- the UDP listener -------------------------------------------------------------------------------------------
Sink = Callable[[list[Signal]], Awaitable[None]]
#: a window's entry: the report's verdict (its signal, or "ignored"/"malformed"), how many datagrams carried it,
#: the greatest TIMESTAMP among them (bytes, as sent) and the arrival number of the last one
_IGNORED, _MALFORMED = "ignored", "malformed"
#: datagrams read from the socket at one wake-up of the event loop, at most (then other tasks run)
READ_BUDGET = 2048
#: attempts at applying a batch before its reports are counted as failed (a transaction that rolled back, e.g. a
#: lost connection, is applied again whole: nothing of it was written)
ATTEMPTS = 3


@dataclass
class ListenerStats:
    received: int = 0
    ignored: int = 0
    malformed: int = 0
    failed: int = 0
    applied: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)
    #: receipt (read from the socket) → committed, in milliseconds: {milliseconds: datagrams}
    latency_ms: dict[int, int] = field(default_factory=dict)

    def latency_percentile(self, p: float) -> float | None:
        """The nearest-rank percentile of receipt → committed, in milliseconds (None before any commit)."""
        total = sum(self.latency_ms.values())
        if not total:
            return None
        rank, seen = max(1, -(-total * p // 100)), 0
        for ms in sorted(self.latency_ms):
            seen += self.latency_ms[ms]
            if seen >= rank:
                return float(ms)
        return float(max(self.latency_ms))


class SyslogListener:
    """Receives RFC 5424 datagrams on a UDP port and hands their signals, in batches, to ``sink`` (the tenant's
    ingestion: one transaction per batch). ``port`` 0 takes a free port (``bound_port`` tells which).

    Repeats are folded in memory before the database: the datagrams read within ``window`` seconds (or while the
    previous batch commits) are counted per distinct report — the datagram without its TIMESTAMP — which is parsed
    once; the batch then carries one signal per report with its count and latest time, and the database does one
    update per open alarm. A clear starts a new run, so a raise after it is counted after it. ``reuse_port`` binds
    with ``SO_REUSEPORT``: several listener processes share the port, the kernel spreading the senders over them.
    At ``stop``, what the socket still holds is read and applied before it closes."""

    def __init__(self, sink: Sink, host: str = "127.0.0.1", port: int = 5514, batch: int = 500, *,
                 window: float = 0.1, reuse_port: bool = False, max_pending: int = 100_000) -> None:
        self.sink = sink
        self.host = host
        self.port = port
        self.batch = batch
        self.window = window
        self.reuse_port = reuse_port
        self.max_pending = max_pending
        self.stats = ListenerStats()
        self.bound_port: int | None = None
        self.ready = asyncio.Event()
        self._runs: list[dict[Any, list[Any]]] = [{}]
        self._pending = 0  # distinct reports in the window
        self._stamps: list[tuple[float, int]] = []  # (read at, datagrams read then)
        self._first: float | None = None  # when the window's first datagram was read
        self._seq = 0
        self._wake = asyncio.Event()
        self._sock: socket.socket | None = None
        self._paused = False
        self._closing = False

    # the report of a datagram: a key that is equal for repeats, and the repeat's time (syslog: the datagram
    # without its TIMESTAMP, and the TIMESTAMP)
    @staticmethod
    def _key(data: Any) -> tuple[Any, bytes]:
        i = data.find(b" ")
        j = data.find(b" ", i + 1)
        if i < 0 or j < 0:
            return data, b""
        return data[:i] + data[j:], data[i + 1:j]

    def _signal(self, data: Any, now: datetime) -> Signal | None:
        return syslog_signal(parse_syslog(data), now)

    def _verdict(self, data: Any) -> Signal | str:
        try:
            signal = self._signal(data, datetime.now(UTC))
        except InvalidReport as exc:
            self.stats.errors = [*self.stats.errors[-9:], str(exc)]
            return _MALFORMED
        return _IGNORED if signal is None else signal

    def _take(self, data: Any) -> None:
        """Count one datagram into the window (the caller counts it received)."""
        key, at = self._key(data)
        self._seq += 1
        run = self._runs[-1]
        entry = run.get(key)
        if entry is None:
            verdict = self._verdict(data)
            entry = run[key] = [verdict, 0, at, 0]
            if isinstance(verdict, Signal):
                self._pending += 1
                if verdict.action != "raise":
                    self._runs.append({})  # raises after a clear are counted after it
        verdict = entry[0]
        if verdict is _IGNORED:
            self.stats.ignored += 1
            return
        if verdict is _MALFORMED:
            self.stats.malformed += 1
            return
        entry[1] += 1
        entry[3] = self._seq
        if at > entry[2]:
            entry[2] = at
        if self._first is None:
            self._first = time.monotonic()
            self._wake.set()

    def _received(self, data: Any) -> None:
        """One datagram (or decoded trap) received now."""
        self.stats.received += 1
        self._stamps.append((time.monotonic(), 1))
        self._take(data)

    def _read_ready(self) -> None:
        """The socket is readable: read what it holds (up to ``READ_BUDGET`` datagrams), stamped once."""
        sock = self._sock
        if sock is None:
            return
        read = 0
        now = time.monotonic()
        take = self._take
        try:
            while read < READ_BUDGET:
                data = sock.recv(65535)
                read += 1
                take(data)
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            if read:
                self.stats.received += read
                self._stamps.append((now, read))
        if self._pending >= self.max_pending and not self._paused:
            # the database is behind: leave the datagrams in the socket's buffer until the window is applied
            self._paused = True
            asyncio.get_running_loop().remove_reader(sock.fileno())

    def _time(self, at: bytes, now: datetime) -> str | None:
        try:
            return _time(at.decode("ascii", "replace"), now) if at and at != b"-" else None
        except InvalidReport:
            return None

    def _batch(self) -> tuple[list[Signal], list[tuple[float, int]]]:
        """Take the window: its signals (each with the datagrams it stands for) and its receipt stamps."""
        runs, stamps = self._runs, self._stamps
        self._runs, self._stamps, self._pending, self._first = [{}], [], 0, None
        self._wake.clear()
        now = datetime.now(UTC)
        signals: list[Signal] = []
        for run in runs:
            # in the order of each report's last arrival: the latest severity and details win
            for verdict, count, at, _ in sorted((e for e in run.values() if isinstance(e[0], Signal)),
                                                key=lambda e: e[3]):
                if count > 1 and verdict.action == "raise":
                    verdict = Signal(verdict.action, verdict.alarm, verdict.source, count=count,
                                     last=self._time(at, now))
                signals.append(verdict)
        if self._paused and self._sock is not None and not self._closing:
            self._paused = False
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._read_ready)
        return signals, stamps

    async def _apply(self, signals: list[Signal]) -> bool:
        reports = sum(s.count for s in signals)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self.sink(signals)
            except Exception as exc:
                self.stats.errors = [*self.stats.errors[-9:], str(exc)]
                if attempt < ATTEMPTS:
                    log.warning("syslog batch of %d alarms failed (attempt %d), applied again: %s", len(signals),
                                attempt, exc)
                    await asyncio.sleep(0.05 * attempt)
                    continue
                self.stats.failed += reports
                log.exception("syslog batch of %d alarms (%d reports) failed", len(signals), reports)
                return False
            self.stats.applied += reports
            self.stats.batches += 1
            return True
        return False

    async def drain(self) -> int:
        """Apply the window (in transactions of ``batch`` signals); the number of reports applied."""
        signals, stamps = self._batch()
        applied = 0
        ok = True
        for i in range(0, len(signals), max(1, self.batch)):
            chunk = signals[i:i + max(1, self.batch)]
            if await self._apply(chunk):
                applied += sum(s.count for s in chunk)
            else:
                ok = False
        if ok and stamps:
            done = time.monotonic()
            hist = self.stats.latency_ms
            for at, n in stamps:
                ms = int((done - at) * 1000)
                hist[ms] = hist.get(ms, 0) + n
        return applied

    async def serve(self, stop: asyncio.Event) -> None:
        """Apply what arrives until ``stop``: a window is applied ``window`` seconds after its first datagram (or
        at once when the previous one took longer to commit)."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if self._first is None:
                    waking = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    waking.cancel()
                    continue
                delay = self._first + self.window - time.monotonic()
                if delay > 0 and self._pending < self.batch:
                    await asyncio.wait({stopping}, timeout=delay)
                await self.drain()
        finally:
            stopping.cancel()

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # a storm arrives faster than a batch commits: a large receive buffer (capped by net.core.rmem_max)
        # holds the datagrams meanwhile instead of the kernel dropping them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((self.host, self.port))
        sock.setblocking(False)
        return sock

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        sock = self._sock = self._socket()
        self.bound_port = sock.getsockname()[1]
        loop.add_reader(sock.fileno(), self._read_ready)
        self.ready.set()
        log.info("syslog listener on udp/%s:%s", self.host, self.bound_port)
        try:
            await self.serve(stop)
        finally:
            # a clean stop: nothing read is lost — what the socket still holds is read, then everything applied
            self._closing = True
            loop.remove_reader(sock.fileno())
            while True:
                before = self.stats.received
                self._read_ready()
                if self.stats.received == before:
                    break
                if self._pending >= self.max_pending:
                    await self.drain()
            self._sock = None
            sock.close()
            while self._first is not None or self._pending:
                await self.drain()


__all__ = ["SD_ID", "InvalidReport", "Signal", "SyslogListener", "SyslogMessage", "alertmanager_signals",
           "parse_syslog", "syslog_signal"]

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


@dataclass
class ListenerStats:
    received: int = 0
    ignored: int = 0
    malformed: int = 0
    failed: int = 0
    applied: int = 0
    errors: list[str] = field(default_factory=list)


class SyslogListener:
    """Receives RFC 5424 datagrams on a UDP port and hands their signals, in batches, to ``sink`` (the tenant's
    ingestion: one transaction per batch). ``port`` 0 takes a free port (``bound_port`` tells which)."""

    def __init__(self, sink: Sink, host: str = "127.0.0.1", port: int = 5514, batch: int = 500) -> None:
        self.sink = sink
        self.host = host
        self.port = port
        self.batch = batch
        self.stats = ListenerStats()
        self.bound_port: int | None = None
        self.ready = asyncio.Event()
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=100_000)

    def _received(self, data: Any) -> None:
        self.stats.received += 1
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.stats.failed += 1

    def _signals(self, datagrams: list[Any]) -> list[Signal]:
        now = datetime.now(UTC)
        out = []
        for data in datagrams:
            try:
                signal = syslog_signal(parse_syslog(data), now)
            except InvalidReport as exc:
                self.stats.malformed += 1
                self.stats.errors = [*self.stats.errors[-9:], str(exc)]
                continue
            if signal is None:
                self.stats.ignored += 1
            else:
                out.append(signal)
        return out

    async def drain(self, first: list[Any] | None = None) -> int:
        """Apply what has been received so far (after ``first``); the number of signals applied."""
        datagrams = list(first or [])
        while not self._queue.empty() and len(datagrams) < self.batch:
            datagrams.append(self._queue.get_nowait())
        signals = self._signals(datagrams)
        if signals:
            try:
                await self.sink(signals)
            except Exception as exc:  # a failing batch is counted and logged; the listener goes on
                self.stats.failed += len(signals)
                self.stats.errors = [*self.stats.errors[-9:], str(exc)]
                log.exception("syslog batch of %d alarms failed", len(signals))
                return 0
            self.stats.applied += len(signals)
        return len(signals)

    async def serve(self, stop: asyncio.Event) -> None:
        """Apply what arrives until ``stop``, then what is left."""
        while not stop.is_set():
            if self._queue.empty():
                getter = asyncio.ensure_future(self._queue.get())
                stopper = asyncio.ensure_future(stop.wait())
                done, pending = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                await self.drain([getter.result()] if getter in done else [])
            else:
                await self.drain()
        while not self._queue.empty():
            await self.drain()

    async def run(self, stop: asyncio.Event) -> None:
        listener = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
                listener._received(data)

        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
        # a storm arrives faster than a batch commits: a large receive buffer (capped by net.core.rmem_max)
        # holds the datagrams meanwhile instead of the kernel dropping them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((self.host, self.port))
        transport, _ = await loop.create_datagram_endpoint(Protocol, sock=sock)
        self.bound_port = transport.get_extra_info("sockname")[1]
        self.ready.set()
        log.info("syslog listener on udp/%s:%s", self.host, self.bound_port)
        try:
            await self.serve(stop)
        finally:
            transport.close()


__all__ = ["SD_ID", "InvalidReport", "Signal", "SyslogListener", "SyslogMessage", "alertmanager_signals",
           "parse_syslog", "syslog_signal"]

"""SNMP traps (v2c and v3, USM) received with pysnmp and normalized to TMF642 alarms.

The trap's ``snmpTrapOID`` is translated through the MIBs pysnmp has loaded (``SNMPv2-MIB``: ``coldStart``,
``warmStart``, ``authenticationFailure``; ``linkDown``/``linkUp``, whose objects IF-MIB defines under the same
``snmpTraps`` branch, are named here) into a name, and the name chooses the alarm (``TRAPS``): event type, probable
cause, severity, whether it raises or clears, and the specific problem. The managed object is the trap's
``snmpTrapAddress.0`` when the sender gives it (a proxy forwarding for a device), else the sender's IP address. The
other variable bindings, translated to names where a MIB knows them, become the alarm's details.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openbss.assurance.ingest import Sink, SyslogListener
from openbss.assurance.service import Signal
from openbss.platform.tmf.spec import format_datetime

log = logging.getLogger("openbss.assurance.snmp")

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1."
#: IF-MIB's notifications (not among the MIBs pysnmp ships)
KNOWN_OIDS = {"1.3.6.1.6.3.1.1.5.3": "linkDown", "1.3.6.1.6.3.1.1.5.4": "linkUp"}


@dataclass(frozen=True)
class TrapRule:
    action: str  # raise | clear
    alarm_type: str
    probable_cause: str
    severity: str
    problem: str  # the specific problem; "{ifIndex}" is replaced by the trap's interface index


#: a trap's name → its alarm; a trap of another name raises an ``indeterminate`` communications alarm
TRAPS = {
    "linkDown": TrapRule("raise", "communicationsAlarm", "lossOfSignal", "major", "link down ifIndex {ifIndex}"),
    "linkUp": TrapRule("clear", "communicationsAlarm", "lossOfSignal", "major", "link down ifIndex {ifIndex}"),
    "coldStart": TrapRule("raise", "equipmentAlarm", "equipmentMalfunction", "warning", "agent restarted (cold)"),
    "warmStart": TrapRule("raise", "equipmentAlarm", "equipmentMalfunction", "warning", "agent restarted (warm)"),
    "authenticationFailure": TrapRule("raise", "securityServiceOrMechanismViolation", "authenticationFailure",
                                      "minor", "SNMP authentication failure"),
}


@dataclass(frozen=True)
class Trap:
    sender: str
    var_binds: list[tuple[str, str, str]]  # (dotted OID, name, value)


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 user traps are accepted from: the sender's engine id (hex), SHA/SHA-256 authentication and AES
    privacy keys (passphrases), as ``snmptrap -e <engineId> -u <name> -a SHA -A … -x AES -X … -l authPriv``."""

    name: str
    engine_id: str
    auth_key: str | None = None
    priv_key: str | None = None
    auth_protocol: str = "SHA"  # SHA | SHA256 | MD5
    priv_protocol: str = "AES"  # AES | DES


def trap_signal(trap: Trap, now: datetime) -> Signal:
    """The alarm of a received trap."""
    values = {oid: value for oid, _, value in trap.var_binds}
    trap_oid = values.get(SNMP_TRAP_OID, "")
    name = next((n for o, n, v in trap.var_binds if o == SNMP_TRAP_OID), trap_oid)
    trap_name = KNOWN_OIDS.get(trap_oid) or (name if name and not name[0].isdigit() else trap_oid) or "unknown"
    if_index = next((v for o, _, v in trap.var_binds if o.startswith(IF_INDEX)), "?")
    rule = TRAPS.get(trap_name) or TrapRule("raise", "communicationsAlarm", "unspecifiedReason", "indeterminate",
                                            f"trap {trap_name}")
    details = "; ".join(f"{n} = {v}" for o, n, v in trap.var_binds if o not in (SNMP_TRAP_OID, SYS_UPTIME))
    alarm: dict[str, Any] = {
        "alarmType": rule.alarm_type, "probableCause": rule.probable_cause, "perceivedSeverity": rule.severity,
        "specificProblem": rule.problem.format(ifIndex=if_index), "state": "raised",
        "alarmedObject": {"id": values.get(SNMP_TRAP_ADDRESS) or trap.sender}, "sourceSystemId": trap.sender,
        "alarmRaisedTime": format_datetime(now),
    }
    if details:
        alarm["alarmDetails"] = f"{trap_name}: {details}"[:2000]
    if rule.action == "clear":
        alarm["alarmClearedTime"] = alarm["alarmRaisedTime"]
    return Signal(rule.action, alarm, "snmp")


class SnmpTrapListener(SyslogListener):
    """Receives SNMP v2c traps (accepted communities) and v3 traps (USM users) on a UDP port; hands their signals,
    in batches, to ``sink``. ``port`` 0 takes a free port (``bound_port``)."""

    def __init__(self, sink: Sink, host: str = "127.0.0.1", port: int = 1162, batch: int = 500,
                 communities: tuple[str, ...] = ("public",), users: tuple[V3User, ...] = (), *,
                 window: float = 0.1, reuse_port: bool = False) -> None:
        super().__init__(sink, host, port, batch, window=window, reuse_port=reuse_port)
        self.communities = communities
        self.users = users

    @staticmethod
    def _key(data: Any) -> tuple[Any, bytes]:
        # a repeat: the same sender and bindings but for the agent's uptime; its time is its receipt
        return (data.sender, tuple(b for b in data.var_binds if b[0] != SYS_UPTIME)), b""

    def _signal(self, data: Any, now: datetime) -> Signal | None:
        return trap_signal(data, now)

    def _time(self, at: bytes, now: datetime) -> str | None:
        return format_datetime(now)

    async def run(self, stop: asyncio.Event) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv
        from pysnmp.proto.rfc1902 import OctetString
        from pysnmp.smi import rfc1902, view

        auth = {"SHA": config.USM_AUTH_HMAC96_SHA, "SHA256": config.USM_AUTH_HMAC192_SHA256,
                "MD5": config.USM_AUTH_HMAC96_MD5}
        priv = {"AES": config.USM_PRIV_CFB128_AES, "DES": config.USM_PRIV_CBC56_DES}
        snmp = engine.SnmpEngine()
        sock = self._socket()
        sock.setblocking(True)
        self.bound_port = sock.getsockname()[1]
        transport = udp.UdpTransport().open_server_mode(sock=sock)
        config.add_transport(snmp, udp.DOMAIN_NAME, transport)
        for i, community in enumerate(self.communities):
            config.add_v1_system(snmp, f"openbss-{i}", community)
        for user in self.users:
            config.add_v3_user(
                snmp, user.name,
                auth[user.auth_protocol] if user.auth_key else config.USM_AUTH_NONE, user.auth_key,
                priv[user.priv_protocol] if user.priv_key else config.USM_PRIV_NONE, user.priv_key,
                securityEngineId=OctetString(hexValue=user.engine_id.removeprefix("0x")))
        mib = view.MibViewController(snmp.get_mib_builder())

        def label(oid: Any) -> str:
            try:
                identity = rfc1902.ObjectIdentity(oid).resolve_with_mib(mib)
                module, symbol, suffix = identity.get_mib_symbol()
                return f"{module}::{symbol}" + ("." + ".".join(str(x) for x in suffix) if suffix else "")
            except Exception:  # a MIB without the object: the dotted OID stands
                return str(oid)

        def received(engine_: Any, state: Any, context_engine: Any, context: Any, var_binds: Any, ctx: Any) -> None:
            try:
                _, address = engine_.message_dispatcher.get_transport_info(state)
                binds = []
                for oid, value in var_binds:
                    text = value.prettyPrint()
                    if str(oid) == SNMP_TRAP_OID:
                        binds.append((str(oid), label(value).split("::")[-1], str(value)))
                    else:
                        binds.append((str(oid), label(oid), text))
                self._received(Trap(str(address[0]), binds))
            except Exception:
                self.stats.malformed += 1
                log.exception("unreadable SNMP trap")

        ntfrcv.NotificationReceiver(snmp, received)
        snmp.transport_dispatcher.job_started(1)
        self.ready.set()
        log.info("SNMP trap listener on udp/%s:%s", self.host, self.bound_port)
        try:
            await self.serve(stop)
        finally:
            snmp.transport_dispatcher.job_finished(1)
            snmp.close_dispatcher()
            while self._first is not None or self._pending:
                await self.drain()


__all__ = ["TRAPS", "SnmpTrapListener", "Trap", "TrapRule", "V3User", "trap_signal"]

"""SNMP traps sent with Debian's ``snmptrap`` over loopback: v2c (accepted community; another is dropped) and v3
(USM, SHA + AES), translated to TMF642 alarms — linkDown raises, linkUp clears the same problem."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from openbss.assurance.snmp import SnmpTrapListener, V3User
from tests.assurance.helpers import ALARM, TMF642, ok
from tests.assurance.test_ingest import settle
from tests.conftest import bearer
from tests.customer.helpers import assert_valid

ENGINE = "8000000001020304"
LINK_DOWN, LINK_UP, AUTH_FAILURE = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.6.3.1.1.5.5"
IF_INDEX_2 = ("1.3.6.1.2.1.2.2.1.1.2", "i", "2")
TRAP_ADDRESS = ("1.3.6.1.6.3.18.1.3.0", "a", "10.20.0.7")


def snmptrap_or_skip() -> str:
    found = shutil.which("snmptrap")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's snmptrap is missing (make snmp-tools installs it)")
        pytest.skip("Debian's snmptrap is missing (make snmp-tools installs it)")
    return found


@pytest.fixture
async def traps(services: Any, rt: Any, tenant: str) -> AsyncIterator[SnmpTrapListener]:
    snmptrap_or_skip()
    listener = services.assurance.snmp_listener(rt.db, port=0, tenant=tenant)
    listener.users = (V3User("noc-trap", ENGINE, "authpass12", "privpass12"),)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await asyncio.wait_for(listener.ready.wait(), 5)
    yield listener
    stop.set()
    await asyncio.wait_for(task, 10)


async def send(port: int, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        snmptrap_or_skip(), *args[:-1], f"127.0.0.1:{port}", "", *args[-1].split(),
        env={"MIBS": "", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err


async def test_v2c_and_v3_traps_raise_and_clear(traps: SnmpTrapListener, client: httpx.AsyncClient,
                                                tenant: str) -> None:
    port = traps.bound_port
    assert port
    v2c = ("-v", "2c", "-c", "public")
    await send(port, *v2c, " ".join((LINK_DOWN, *IF_INDEX_2, *TRAP_ADDRESS)))
    await send(port, *v2c, " ".join((LINK_DOWN, *IF_INDEX_2, *TRAP_ADDRESS)))
    await send(port, "-v", "2c", "-c", "not-the-community", "1.3.6.1.6.3.1.1.5.1")  # dropped by the engine
    await send(port, "-v", "3", "-e", f"0x{ENGINE}", "-u", "noc-trap", "-a", "SHA", "-A", "authpass12", "-x", "AES",
               "-X", "privpass12", "-l", "authPriv", AUTH_FAILURE)
    await settle(traps, 3)
    h = bearer(tenant, "network_ops")
    [link] = await ok(await client.get(f"{ALARM}?alarmedObject.id=10.20.0.7", headers=h))
    assert_valid(TMF642, "Alarm", link)
    assert (link["alarmType"], link["probableCause"], link["perceivedSeverity"]) == (
        "communicationsAlarm", "lossOfSignal", "major")
    assert link["specificProblem"] == "link down ifIndex 2" and link["occurrenceCount"] == 2
    assert "SNMP-COMMUNITY-MIB::snmpTrapAddress.0 = 10.20.0.7" in link["alarmDetails"]
    [auth] = await ok(await client.get(f"{ALARM}?probableCause=authenticationFailure", headers=h))
    assert auth["alarmedObject"]["id"] == "127.0.0.1" and auth["alarmType"] == "securityServiceOrMechanismViolation"
    assert (await client.get(ALARM, headers=h)).headers["X-Total-Count"] == "2"  # the wrong community raised none
    await send(port, *v2c, " ".join((LINK_UP, *IF_INDEX_2, *TRAP_ADDRESS)))
    await settle(traps, 4)
    cleared = await ok(await client.get(f"{ALARM}/{link['id']}", headers=h))
    assert cleared["state"] == "cleared" and cleared["clearSystemId"] == "snmp"

"""The Diameter front end against a real independent peer: Debian's freeDiameter (``freeDiameterd``).

freeDiameter connects to the front end as a client (TCP, no TLS, no SCTP) and runs the base protocol with it:
capabilities exchange (its CER, our CEA), device watchdog both ways, and disconnect (its DPR on shutdown, our DPA).
Credit control, two ways:

* freeDiameter as the DCCA client: Debian ships no extension that originates a credit-control request (no
  ``test_app``, no DCCA client; only dictionaries, routing and debug extensions), so the test builds a small one
  against Debian's ``libfreediameter-dev`` (``freediameter/test_ccr.c``): the CCRs of a voice session and an SMS
  EVENT are built and encoded by freeDiameter with its DCCA dictionary, and our CCAs parsed by it.
* freeDiameter as a relay agent (a DRA): our client (a PGW, ``pgw.test.example``) connects to freeDiameter, which
  routes each CCR by Destination-Realm to the front end and the CCA back (adding its Route-Record, rewriting the
  hop-by-hop identifiers)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openbss.charging.diameter.client import DiameterClient, result_code
from openbss.charging.diameter.engine import ServiceEngine
from openbss.charging.diameter.server import DiameterConfig, DiameterServer
from tests.charging.helpers import SMS, account_state, ccr, group, open_account

FD_HOST, PGW_HOST, REALM = "fd.test.example", "pgw.test.example", "test.example"
EXTENSIONS = Path("/usr/lib/freeDiameter")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (make freediameter installs it)")
    pytest.skip(f"{reason} (make freediameter installs it)")


def freediameterd_or_skip() -> str:
    found = shutil.which("freeDiameterd")
    if found is None or not (EXTENSIONS / "dict_dcca.fdx").exists():
        _missing("Debian's freeDiameterd is missing")
    assert found is not None
    return found


def build_ccr_extension(directory: Path) -> Path:
    """freediameter/test_ccr.c built against Debian's libfreediameter-dev."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not Path("/usr/include/freeDiameter/extension.h").exists():
        _missing("a C compiler or Debian's libfreediameter-dev is missing")
    assert compiler is not None
    target = directory / "test_ccr.fdx"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(target),
                    str(Path(__file__).parent / "freediameter" / "test_ccr.c")], check=True, capture_output=True)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """freeDiameter insists on a TLS certificate in its configuration even when no peer uses TLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FD_HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def configuration(directory: Path, *, port: int, ocs_port: int, extra: str = "") -> Path:
    cert, key = self_signed(directory)
    conf = directory / "freeDiameter.conf"
    conf.write_text(f"""
Identity = "{FD_HOST}";
Realm = "{REALM}";
Port = {port};
SecPort = {free_port()};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TwTimer = 6;
TLS_Cred = "{cert}", "{key}";
TLS_CA = "{cert}";
LoadExtension = "{EXTENSIONS}/dict_nasreq.fdx";
LoadExtension = "{EXTENSIONS}/dict_dcca.fdx";
LoadExtension = "{EXTENSIONS}/dict_dcca_3gpp.fdx";
ConnectPeer = "ocs.openbss.local" {{ ConnectTo = "127.0.0.1"; No_TLS; Port = {ocs_port}; }};
ConnectPeer = "{PGW_HOST}" {{ ConnectTo = "127.0.0.1"; No_TLS; Port = {free_port()}; }};
{extra}""")
    return conf


async def eventually(check: Any, seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class FreeDiameter:
    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log


@contextlib.asynccontextmanager
async def running(rt: Any, services: Any, tenant: str, directory: Path,
                  extra: str = "") -> AsyncIterator[tuple[DiameterServer, FreeDiameter]]:
    """The front end over the charging service, and freeDiameterd connected to it."""
    binary = freediameterd_or_skip()
    engine = ServiceEngine(services.charging.service, rt.db, "http://testserver")
    server = DiameterServer(engine, DiameterConfig(port=0, peer_tenants={REALM: tenant}, watchdog_seconds=1))
    await server.start()
    port = free_port()
    log = directory / "freeDiameterd.log"
    conf = configuration(directory, port=port, ocs_port=server.port, extra=extra)
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(binary, "-c", str(conf), "-d",
                                                       stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                       stderr=asyncio.subprocess.STDOUT)
    try:
        await eventually(lambda: any(p.origin_host == FD_HOST for p in server.peers) or process.returncode is not None,
                         30, "freeDiameter's capabilities exchange")
        assert process.returncode is None, log.read_text()
        yield server, FreeDiameter(process, port, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        await server.close()


@pytest.fixture
async def setup(rt: Any, services: Any, tenant: str, tmp_path: Path) -> AsyncIterator[tuple[DiameterServer,
                                                                                              FreeDiameter]]:
    async with running(rt, services, tenant, tmp_path) as both:
        yield both


async def test_freediameter_sends_credit_control(rt: Any, services: Any, tenant: str, tmp_path: Path) -> None:
    freediameterd_or_skip()
    extension = build_ccr_extension(tmp_path)
    acc = await open_account(rt, tenant, balance="2.00")
    results, conf = tmp_path / "answers.txt", tmp_path / "test_ccr.conf"
    conf.write_text(f"{results}\n{acc['msisdn']}\n{FD_HOST};{acc['id']}\n")
    load = f'LoadExtension = "{extension}" : "{conf}";'
    async with running(rt, services, tenant, tmp_path, load) as (server, _fd):
        await eventually(lambda: results.exists() and "DONE" in results.read_text(), 30,
                         "freeDiameter's credit-control session")
        assert server.received[272] == 5
    lines = dict(line.split(" ", 1) for line in results.read_text().splitlines() if " " in line)
    assert lines == {"OPEN": "1",
                     "INITIAL": "2001 60",  # 60 s granted
                     "UPDATE": "2001 60",  # 60 used, 60 more granted
                     "TERMINATE": "2001 -1",  # 15 used, nothing granted
                     "EVENT": "2001 1",  # one SMS charged
                     "LATE": "5002 -1"}  # after the end of the session
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 200 - 75 - 10 and st["money_reserved"] == 0
    assert st["usage"]["n"] == 3


async def test_freediameter_base_protocol(setup: tuple[DiameterServer, FreeDiameter]) -> None:
    server, fd = setup
    peer = next(p for p in server.peers if p.origin_host == FD_HOST)
    assert peer.origin_realm == REALM and server.received[257] == 1 and server.results[2001] >= 1
    # our watchdog (Tw 1 s): freeDiameter answers the DWR
    await eventually(lambda: server.watchdog_answers >= 1, 10, "freeDiameter's DWA")
    # freeDiameter's watchdog (its TwTimer 6 s) once ours is quiet: the front end answers its DWR
    server.config.watchdog_seconds = 3600
    await eventually(lambda: server.received[280] >= 1, 20, "freeDiameter's DWR")
    assert peer.writer is not None and not peer.writer.is_closing()
    # freeDiameter shuts down: its DPR, our DPA, and it leaves cleanly
    fd.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(fd.process.wait(), 20) == 0
    assert server.received[282] == 1
    await eventually(lambda: not any(p.origin_host == FD_HOST for p in server.peers), 10, "the connection closed")


async def test_credit_control_relayed_by_freediameter(rt: Any, tenant: str,
                                                      setup: tuple[DiameterServer, FreeDiameter]) -> None:
    server, fd = setup
    acc = await open_account(rt, tenant, balance="2.00")
    pgw = DiameterClient(origin_host=PGW_HOST, origin_realm=REALM, destination_realm="openbss.local")
    cea = await pgw.connect("127.0.0.1", fd.port)
    assert result_code(cea) == 2001  # freeDiameter's own CEA
    try:
        async def call(doc: dict[str, Any]) -> dict[str, Any]:
            return await asyncio.wait_for(pgw.credit_control(doc), 10)

        i = await call(ccr("INITIAL_REQUEST", "pgw;fd;1", 0, acc["msisdn"], groups=[group(1, 60)]))
        assert i["resultCode"] == 2001 and i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"time": 60}
        u = await call(ccr("UPDATE_REQUEST", "pgw;fd;1", 1, groups=[group(1, 60, used=60)]))
        assert u["resultCode"] == 2001 and u["requestNumber"] == 1
        t = await call(ccr("TERMINATION_REQUEST", "pgw;fd;1", 2, groups=[group(1, used=15)],
                           terminationCause="DIAMETER_LOGOUT"))
        assert t["resultCode"] == 2001
        e = await call(ccr("EVENT_REQUEST", "pgw;fd;2", 0, acc["msisdn"], context=SMS,
                           requestedAction="DIRECT_DEBITING", groups=[group(3, 1, key="serviceSpecificUnits")]))
        assert e["resultCode"] == 2001 and str(e["costInformation"]["unitValue"]) == "0.10"
        late = await call(ccr("UPDATE_REQUEST", "pgw;fd;1", 3, groups=[group(1, 10, used=1)]))
        assert late["resultCode"] == 5002
    finally:
        await pgw.close()
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 200 - 75 - 10 and st["money_reserved"] == 0
    assert server.received[272] == 5  # every request reached the front end through freeDiameter

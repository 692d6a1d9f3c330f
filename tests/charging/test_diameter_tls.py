"""Diameter over TLS/TCP (RFC 6733 section 2.1: TLS from the first byte): a peer that trusts the front end's
certificate exchanges capabilities and runs credit control; a peer speaking plain TCP to it gets no answer; a
certificate without its key is refused when the front end is configured."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openbss.charging.diameter.client import DiameterClient, result_code
from openbss.charging.diameter.server import DiameterConfig, DiameterServer
from openbss.charging.schemas import CreditControlRequest
from tests.charging.helpers import ccr, group


def self_signed(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for localhost / 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocs.test.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "ocs.crt", directory / "ocs.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class Engine:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def credit_control(self, tenant_id: str, request: CreditControlRequest) -> dict[str, Any]:
        self.seen.append(request.sessionId)
        return {"sessionId": request.sessionId, "requestType": request.requestType,
                "requestNumber": request.requestNumber, "resultCode": 2001, "multipleServicesCreditControl": []}


async def test_credit_control_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    engine = Engine()
    server = DiameterServer(engine, DiameterConfig(port=0, default_tenant="t", tls_cert=cert, tls_key=key))
    await server.start()
    trusted = ssl.create_default_context(cafile=cert)
    peer = DiameterClient()
    plain = DiameterClient(origin_host="pgw2.test.example")
    try:
        cea = await asyncio.wait_for(peer.connect("127.0.0.1", server.port, ssl=trusted,
                                                  server_hostname="localhost"), 10)
        assert result_code(cea) == 2001
        answer = await asyncio.wait_for(peer.credit_control(ccr("EVENT_REQUEST", "tls-1", 0, "+3361",
                                                                groups=[group(1, 1)])), 10)
        assert answer["resultCode"] == 2001 and answer["sessionId"] == "tls-1" and engine.seen == ["tls-1"]
        assert peer.writer is not None and peer.writer.get_extra_info("ssl_object").version() in ("TLSv1.2",
                                                                                                 "TLSv1.3")
        # a peer that does not trust the certificate: the handshake fails, nothing is decided
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.wait_for(DiameterClient(origin_host="pgw3.test.example").connect(
                "127.0.0.1", server.port, ssl=ssl.create_default_context(), server_hostname="localhost"), 10)
        # plain TCP to the TLS port: no capabilities exchange (the server reads a TLS record, not a Diameter one)
        with pytest.raises((asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError)):
            cea = await asyncio.wait_for(plain.connect("127.0.0.1", server.port), 3)
            if plain.closed.is_set():
                raise ConnectionError("closed")
        assert engine.seen == ["tls-1"]
    finally:
        await peer.close()
        await plain.close(polite=False)
        await server.close()


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert DiameterConfig().ssl_context() is None
    with pytest.raises(ValueError, match="private key is missing"):
        DiameterConfig(tls_cert=cert).ssl_context()
    with pytest.raises(ValueError, match="certificate is missing"):
        DiameterConfig(tls_key=key).ssl_context()
    with pytest.raises(OSError):
        DiameterConfig(tls_cert=cert, tls_key=str(tmp_path / "missing.key")).ssl_context()
    assert isinstance(DiameterConfig(tls_cert=cert, tls_key=key).ssl_context(), ssl.SSLContext)

"""The Diameter Gy/Ro front end of online charging (RFC 6733 base protocol, RFC 4006 credit control) over TCP.

One asyncio server; each peer connection: capabilities exchange (CER/CEA, Auth-Application-Id 4 = DCCA), device
watchdog (DWR/DWA both ways), disconnect (DPR/DPA), and credit control (CCR/CCA) translated one AVP to one
attribute (``codec.py``) into the JSON request of ``POST /ocs/v1/creditControl`` and decided by the engine
(``engine.CreditControlEngine``), so that the Result-Codes are the JSON API's. Requests of one connection are
decided concurrently and answered as they complete (out of order, matched by hop-by-hop identifier, as RFC 6733
allows). A request beyond the in-flight bounds (per connection, and for the whole server) is answered at once with
3004 DIAMETER_TOO_BUSY. The tenant of a peer is configuration: its Origin-Host, else its Origin-Realm, in
``peer_tenants``, else ``default_tenant``; an unmapped peer is refused at the capabilities exchange (3010). A
request relayed by a routing agent is charged to the tenant of its own Origin-Host (else Origin-Realm) when that is
mapped, else to the connected peer's."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import ssl
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diameter.message import MessageHeader
from diameter.message.avp import Avp
from diameter.message.constants import (
    AVP_ACCT_APPLICATION_ID,
    AVP_AUTH_APPLICATION_ID,
    AVP_CC_REQUEST_NUMBER,
    AVP_CC_REQUEST_TYPE,
    AVP_DISCONNECT_CAUSE,
    AVP_FIRMWARE_REVISION,
    AVP_HOST_IP_ADDRESS,
    AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM,
    AVP_ORIGIN_STATE_ID,
    AVP_PRODUCT_NAME,
    AVP_PROXY_INFO,
    AVP_RESULT_CODE,
    AVP_SESSION_ID,
    AVP_SUPPORTED_VENDOR_ID,
    AVP_VENDOR_ID,
    AVP_VENDOR_SPECIFIC_APPLICATION_ID,
    VENDOR_TGPP,
)
from pydantic import ValidationError

from openbss.charging.diameter import codec, wire
from openbss.charging.diameter.codec import (
    APPLICATION_UNSUPPORTED,
    COMMAND_UNSUPPORTED,
    CREDIT_CONTROL,
    DCCA_APPLICATION_ID,
    INVALID_AVP_VALUE,
    MISSING_AVP,
    NO_COMMON_APPLICATION,
    SUCCESS,
    TOO_BUSY,
    UNABLE_TO_COMPLY,
    UNKNOWN_PEER,
    AvpProblem,
    Frame,
    new,
)
from openbss.charging.diameter.engine import CreditControlEngine
from openbss.charging.schemas import CreditControlRequest

log = logging.getLogger("openbss.charging.diameter")

CAPABILITIES_EXCHANGE, DEVICE_WATCHDOG, DISCONNECT_PEER = 257, 280, 282
BASE_APPLICATION, RELAY_APPLICATION = 0, 0xFFFFFFFF
PRODUCT_NAME = "OpenBSS OCS"
DISCONNECT_REBOOTING, DISCONNECT_BUSY, DISCONNECT_DO_NOT_WANT_TO_TALK = 0, 1, 2
#: answers queued for a peer that does not read them; beyond, the connection is dropped
MAX_UNREAD_BYTES = 4 << 20


@dataclass
class DiameterConfig:
    """The front end's identity and limits (``openbss.settings``: ``diameter_*``)."""

    origin_host: str = "ocs.openbss.local"
    origin_realm: str = "openbss.local"
    host: str = "127.0.0.1"
    port: int = 3868
    #: peer Origin-Host or Origin-Realm -> tenant id (the host wins over the realm)
    peer_tenants: Mapping[str, str] = field(default_factory=dict)
    default_tenant: str | None = None
    max_in_flight_per_peer: int = 256
    max_in_flight: int = 2048
    #: Tw of RFC 3539: a DWR after this long without traffic from the peer; the connection closes when the peer
    #: has not answered it within another Tw
    watchdog_seconds: float = 30.0
    #: TLS/TCP (RFC 6733 section 2.1: TLS from the first byte, the IANA port is 5658): the server's certificate
    #: chain and private key (PEM files); both or neither
    tls_cert: str | None = None
    tls_key: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the listening socket (TLS 1.2 or later), or None for plain TCP."""
        if not self.tls_cert and not self.tls_key:
            return None
        if not self.tls_cert or not self.tls_key:
            missing = "certificate" if not self.tls_cert else "private key"
            raise ValueError(f"Diameter over TLS needs a certificate and its private key: the {missing} is missing")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    @classmethod
    def from_settings(cls, settings: Any) -> DiameterConfig:
        return cls(origin_host=settings.diameter_origin_host, origin_realm=settings.diameter_origin_realm,
                   host=settings.diameter_host, port=settings.diameter_port,
                   peer_tenants=dict(settings.diameter_peer_tenants),
                   default_tenant=settings.diameter_default_tenant,
                   max_in_flight_per_peer=settings.diameter_max_in_flight_per_peer,
                   max_in_flight=settings.diameter_max_in_flight,
                   watchdog_seconds=settings.diameter_watchdog_seconds,
                   tls_cert=settings.diameter_tls_cert, tls_key=settings.diameter_tls_key)

    def tenant_of(self, origin_host: str, origin_realm: str) -> str | None:
        return self.peer_tenants.get(origin_host) or self.peer_tenants.get(origin_realm) or self.default_tenant


class DiameterServer:
    """The front end: ``await start()``, then ``await close()``; ``port`` is the bound port (0 in the config picks a
    free one). ``results`` counts the answers sent by Result-Code."""

    def __init__(self, engine: CreditControlEngine, config: DiameterConfig) -> None:
        self.engine = engine
        self.config = config
        self.state_id = int(time.time()) & 0xFFFFFFFF
        self.in_flight = 0
        self.results: Counter[int] = Counter()
        #: requests received, by command code, and answers received to the watchdogs this side sent
        self.received: Counter[int] = Counter()
        self.watchdog_answers = 0
        self.peers: set[PeerConnection] = set()
        self._server: asyncio.Server | None = None
        self._end_to_end = (int(time.time()) & 0xFFF) << 20 | (os.getpid() & 0xFFFFF)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        context = self.config.ssl_context()
        self._server = await asyncio.start_server(self._accept, self.config.host, self.config.port, ssl=context)
        log.info("diameter front end listening on %s:%s (%s) as %s", self.config.host, self.port,
                 "TLS" if context is not None else "TCP", self.config.origin_host)

    async def serve_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers):
            await peer.disconnect()
        if self._server is not None:
            await self._server.wait_closed()

    def next_end_to_end(self) -> int:
        self._end_to_end = (self._end_to_end + 1) & 0xFFFFFFFF
        return self._end_to_end

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = PeerConnection(self, reader, writer)
        self.peers.add(peer)
        try:
            await peer.run()
        finally:
            self.peers.discard(peer)


class PeerConnection:
    def __init__(self, server: DiameterServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.config = server.config
        self.reader = reader
        self.writer = writer
        self.origin_host: str | None = None
        self.origin_realm: str | None = None
        self.tenant: str | None = None
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_received = time.monotonic()
        self.watchdog_pending: int | None = None
        self.closing = False
        self._hop_by_hop = int.from_bytes(os.urandom(4), "big")

    # --- I/O ------------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        watchdog = asyncio.create_task(self._watchdog())
        try:
            while not self.closing:
                try:
                    data = await wire.read_frame(self.reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                except wire.FramingError as exc:  # the stream cannot be resynchronised: answer once and close
                    if exc.header is not None and exc.header.is_request:
                        self._send_error(exc.header, exc.result_code, exc.message, None, [])
                    break
                self.last_received = time.monotonic()
                try:
                    self._dispatch(data)
                except AvpProblem as exc:  # an AVP of a base-protocol message (CER, DWR, DPR) the front end reads
                    header = MessageHeader.from_bytes(data)
                    if header.is_request:
                        self._send_error(header, exc.result_code, exc.message, exc.avp, [])
                except Exception:
                    log.exception("diameter peer %s: message not handled, closing", self.origin_host)
                    break
        finally:
            watchdog.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            await self._close_transport()

    def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > MAX_UNREAD_BYTES:
            log.warning("peer %s does not read its answers: closing", self.origin_host)
            self.closing = True
            self.writer.transport.abort()

    async def _close_transport(self) -> None:
        self.closing = True
        if not self.writer.is_closing():
            self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def disconnect(self) -> None:
        """Close politely: DPR (DO_NOT_WANT_TO_TALK_TO_YOU is not sent on shutdown: REBOOTING), then the socket."""
        if self.origin_host is not None and not self.writer.is_closing():
            header = wire.request_header(DISCONNECT_PEER, BASE_APPLICATION, self._next_hop(),
                                         self.server.next_end_to_end(), proxiable=False)
            self.send(wire.encode(header, [*self._identity(), new(AVP_DISCONNECT_CAUSE, DISCONNECT_REBOOTING)]))
        await self._close_transport()

    def _next_hop(self) -> int:
        self._hop_by_hop = (self._hop_by_hop + 1) & 0xFFFFFFFF
        return self._hop_by_hop

    async def _watchdog(self) -> None:
        while True:
            tw = self.config.watchdog_seconds
            await asyncio.sleep(min(tw / 2, 1.0))
            idle = time.monotonic() - self.last_received
            if self.origin_host is None and idle >= tw:  # no capabilities exchange within Tw: not a peer
                self.closing = True
                self.writer.close()
                return
            if self.watchdog_pending is not None and idle >= 2 * tw:
                log.warning("peer %s did not answer the watchdog: closing", self.origin_host)
                self.closing = True
                self.writer.close()
                return
            if self.watchdog_pending is None and idle >= tw and self.origin_host is not None:
                self.watchdog_pending = self._next_hop()
                header = wire.request_header(DEVICE_WATCHDOG, BASE_APPLICATION, self.watchdog_pending,
                                             self.server.next_end_to_end(), proxiable=False)
                self.send(wire.encode(header, [*self._identity(), new(AVP_ORIGIN_STATE_ID, self.server.state_id)]))

    # --- messages -------------------------------------------------------------------------------------------------
    def _identity(self) -> list[Avp]:
        return [new(AVP_ORIGIN_HOST, self.config.origin_host.encode()),
                new(AVP_ORIGIN_REALM, self.config.origin_realm.encode())]

    def _answer(self, request: MessageHeader, result_code: int, avps: list[Avp], request_avps: list[Avp], *,
                session: bool = True) -> None:
        """Send an answer: Session-Id first (when the request had one), Result-Code, Origin-Host/Realm, the given
        AVPs, and the request's Proxy-Info AVPs (RFC 6733 section 6.2)."""
        head: list[Avp] = []
        session_avp = codec.find(request_avps, AVP_SESSION_ID) if session else None
        if session_avp is not None:
            head.append(session_avp)
        head += [new(AVP_RESULT_CODE, result_code), *self._identity()]
        tail = codec.find_all(request_avps, AVP_PROXY_INFO)
        error = 3000 <= result_code < 4000
        self.server.results[result_code] += 1
        self.send(wire.encode(wire.answer_header(request, error=error), head + avps + tail))

    def _send_error(self, request: MessageHeader, result_code: int, message: str | None, failed: Avp | None,
                    request_avps: list[Avp]) -> None:
        extra = wire.error_avps(result_code, message, failed)[1:]  # the Result-Code is _answer's
        self._answer(request, result_code, extra, request_avps)

    def _dispatch(self, data: bytes) -> None:
        try:
            frame = wire.decode(data)
        except wire.FramingError as exc:
            assert exc.header is not None
            if exc.header.is_request:
                self._send_error(exc.header, exc.result_code, exc.message, None, [])
            return
        except AvpProblem as exc:
            header = MessageHeader.from_bytes(data)
            if header.is_request:
                self._send_error(header, exc.result_code, exc.message, exc.avp, [])
            return
        header = frame.header
        if not header.is_request:
            if header.command_code == DEVICE_WATCHDOG and header.hop_by_hop_identifier == self.watchdog_pending:
                self.watchdog_pending = None
                self.server.watchdog_answers += 1
            return  # a DPA, or an answer to nothing we sent
        code = header.command_code
        self.server.received[code] += 1
        if code == CAPABILITIES_EXCHANGE:
            self._capabilities_exchange(frame)
            return
        if self.origin_host is None:  # nothing but a CER before the capabilities exchange
            self._send_error(header, UNKNOWN_PEER, "capabilities exchange (CER) first", None, frame.avps)
            self.closing = True
            return
        if code == DEVICE_WATCHDOG:
            self._answer(header, SUCCESS, [new(AVP_ORIGIN_STATE_ID, self.server.state_id)], frame.avps)
        elif code == DISCONNECT_PEER:
            self._answer(header, SUCCESS, [], frame.avps)
            self.closing = True  # the peer closes; we stop reading and close too
        elif header.application_id not in (BASE_APPLICATION, DCCA_APPLICATION_ID):
            self._send_error(header, APPLICATION_UNSUPPORTED,
                             f"application {header.application_id} is not supported (only 4, credit control)",
                             None, frame.avps)
        elif code == CREDIT_CONTROL and header.application_id == DCCA_APPLICATION_ID:
            self._credit_control(frame)
        else:
            self._send_error(header, COMMAND_UNSUPPORTED, f"command {code} is not supported", None, frame.avps)

    def _capabilities_exchange(self, frame: Frame) -> None:
        header, avps = frame.header, frame.avps
        try:
            host_avp, realm_avp = codec.find(avps, AVP_ORIGIN_HOST), codec.find(avps, AVP_ORIGIN_REALM)
            if host_avp is None or realm_avp is None:
                missing = AVP_ORIGIN_HOST if host_avp is None else AVP_ORIGIN_REALM
                raise AvpProblem(MISSING_AVP, "Origin-Host and Origin-Realm are required", Avp.new(missing, 0))
            origin_host = _text(codec.value_of(host_avp))
            origin_realm = _text(codec.value_of(realm_avp))
        except AvpProblem as exc:
            self._send_error(header, exc.result_code, exc.message, exc.avp, [])
            self.closing = True
            return
        applications = {codec.value_of(a) for a in codec.find_all(avps, AVP_AUTH_APPLICATION_ID)}
        applications |= {codec.value_of(a) for a in codec.find_all(avps, AVP_ACCT_APPLICATION_ID)}
        for vsa in codec.find_all(avps, AVP_VENDOR_SPECIFIC_APPLICATION_ID):
            applications |= {codec.value_of(a) for a in codec.children(vsa)
                             if a.code in (AVP_AUTH_APPLICATION_ID, AVP_ACCT_APPLICATION_ID)}
        base = self._capabilities()
        if not applications & {DCCA_APPLICATION_ID, RELAY_APPLICATION}:
            self._answer(header, NO_COMMON_APPLICATION, base, [], session=False)
            self.closing = True
            return
        tenant = self.config.tenant_of(origin_host, origin_realm)
        if tenant is None:
            self._answer(header, UNKNOWN_PEER, [*base, new(codec.AVP_ERROR_MESSAGE, "peer is not configured")], [],
                         session=False)
            self.closing = True
            return
        self.origin_host, self.origin_realm, self.tenant = origin_host, origin_realm, tenant
        log.info("diameter peer %s (%s) connected, tenant %s", origin_host, origin_realm, tenant)
        self._answer(header, SUCCESS, base, [], session=False)

    def _capabilities(self) -> list[Avp]:
        sockname = self.writer.get_extra_info("sockname")
        address = sockname[0] if sockname else "127.0.0.1"
        try:
            ipaddress.ip_address(address)
        except ValueError:
            address = "127.0.0.1"
        return [new(AVP_HOST_IP_ADDRESS, address), new(AVP_VENDOR_ID, 0),
                Avp.new(AVP_PRODUCT_NAME, 0, value=PRODUCT_NAME, is_mandatory=False),
                new(AVP_ORIGIN_STATE_ID, self.server.state_id), new(AVP_SUPPORTED_VENDOR_ID, VENDOR_TGPP),
                new(AVP_AUTH_APPLICATION_ID, DCCA_APPLICATION_ID),
                Avp.new(AVP_FIRMWARE_REVISION, 0, value=1, is_mandatory=False)]

    def _credit_control(self, frame: Frame) -> None:
        server = self.server
        if self.in_flight >= self.config.max_in_flight_per_peer or server.in_flight >= self.config.max_in_flight:
            self._cca(frame.header, frame.avps, TOO_BUSY, [new(codec.AVP_ERROR_MESSAGE, "too many requests in flight")])
            return
        self.in_flight += 1
        server.in_flight += 1
        task = asyncio.create_task(self._decide(frame))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _decide(self, frame: Frame) -> None:
        header, avps = frame.header, frame.avps
        try:
            try:
                ccr = CreditControlRequest.model_validate(codec.request_document(avps))
            except AvpProblem as exc:
                self._cca(header, avps, exc.result_code, [*wire.error_avps(0, exc.message, exc.avp)[1:]])
                return
            except ValidationError as exc:
                self._cca(header, avps, INVALID_AVP_VALUE, [new(codec.AVP_ERROR_MESSAGE, _message(exc))])
                return
            try:
                answer = await self.server.engine.credit_control(self._tenant_of(avps), ccr)
            except Exception:
                log.exception("credit control failed for session %s", ccr.sessionId)
                self._cca(header, avps, UNABLE_TO_COMPLY, [new(codec.AVP_ERROR_MESSAGE, "the request could not "
                                                                                      "be decided")])
                return
            self._answer(header, int(answer["resultCode"]),
                         [new(AVP_AUTH_APPLICATION_ID, DCCA_APPLICATION_ID), *codec.answer_avps(answer)], avps)
        finally:
            self.in_flight -= 1
            self.server.in_flight -= 1

    def _tenant_of(self, avps: list[Avp]) -> str:
        """The request's tenant: its own Origin-Host, else Origin-Realm (the network element behind a routing
        agent), else the connected peer's."""
        mapping = self.config.peer_tenants
        for code in (AVP_ORIGIN_HOST, AVP_ORIGIN_REALM):
            avp = codec.find(avps, code)
            if avp is not None:
                tenant = mapping.get(_text(codec.value_of(avp)))
                if tenant:
                    return tenant
        assert self.tenant is not None
        return self.tenant

    def _cca(self, header: MessageHeader, avps: list[Avp], result_code: int, extra: list[Avp]) -> None:
        """A CCA refusing the request: the request's CC-Request-Type/Number echoed when readable."""
        echo = [new(AVP_AUTH_APPLICATION_ID, DCCA_APPLICATION_ID)]
        for code in (AVP_CC_REQUEST_TYPE, AVP_CC_REQUEST_NUMBER):
            avp = codec.find(avps, code)
            if avp is not None:
                echo.append(avp)
        self._answer(header, result_code, echo + extra, avps)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"[:255]

"""A Diameter credit-control client (the same wire code and dictionaries as the server): for the tests and the load
generator. One TCP connection; requests are pipelined and matched to their answers by hop-by-hop identifier."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from ssl import SSLContext
from typing import Any

from diameter.message.avp import Avp
from diameter.message.constants import (
    AVP_AUTH_APPLICATION_ID,
    AVP_DESTINATION_REALM,
    AVP_DISCONNECT_CAUSE,
    AVP_HOST_IP_ADDRESS,
    AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM,
    AVP_ORIGIN_STATE_ID,
    AVP_PRODUCT_NAME,
    AVP_RESULT_CODE,
    AVP_VENDOR_ID,
)

from openbss.charging.diameter import codec, wire
from openbss.charging.diameter.codec import CREDIT_CONTROL, DCCA_APPLICATION_ID, Frame, new
from openbss.charging.diameter.server import CAPABILITIES_EXCHANGE, DEVICE_WATCHDOG, DISCONNECT_PEER


class DiameterClient:
    def __init__(self, origin_host: str = "pgw.test.example", origin_realm: str = "test.example",
                 destination_realm: str = "openbss.local") -> None:
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self.destination_realm = destination_realm
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future[Frame]] = {}
        self.unsolicited: asyncio.Queue[Frame] = asyncio.Queue()
        self._hop = itertools.count(int.from_bytes(os.urandom(2), "big") << 12)
        self._e2e = itertools.count(int.from_bytes(os.urandom(2), "big") << 16)
        self._reader_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def connect(self, host: str, port: int, *, applications: tuple[int, ...] = (DCCA_APPLICATION_ID,),
                      ssl: SSLContext | None = None, server_hostname: str | None = None) -> Frame:
        """Open the connection (over TLS with ``ssl``) and exchange capabilities; the CEA."""
        self.reader, self.writer = await asyncio.open_connection(host, port, ssl=ssl,
                                                                 server_hostname=server_hostname if ssl else None)
        self._reader_task = asyncio.create_task(self._read())
        avps = [new(AVP_HOST_IP_ADDRESS, "127.0.0.1"), new(AVP_VENDOR_ID, 0),
                Avp.new(AVP_PRODUCT_NAME, 0, value="openbss-diameter-client", is_mandatory=False),
                new(AVP_ORIGIN_STATE_ID, 1)]
        avps += [new(AVP_AUTH_APPLICATION_ID, app) for app in applications]
        return await self.request(CAPABILITIES_EXCHANGE, 0, avps, proxiable=False)

    async def close(self, *, polite: bool = True) -> None:
        if polite and self.writer is not None and not self.writer.is_closing():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.request(DISCONNECT_PEER, 0, [new(AVP_DISCONNECT_CAUSE, 0)],
                                                    proxiable=False), 5)
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task

    def _identity(self) -> list[Avp]:
        return [new(AVP_ORIGIN_HOST, self.origin_host.encode()), new(AVP_ORIGIN_REALM, self.origin_realm.encode())]

    def build(self, command: int, application: int, avps: list[Avp], *, proxiable: bool = True) -> tuple[int, bytes]:
        hop = next(self._hop) & 0xFFFFFFFF
        header = wire.request_header(command, application, hop, next(self._e2e) & 0xFFFFFFFF, proxiable=proxiable)
        if command in (CAPABILITIES_EXCHANGE, DEVICE_WATCHDOG, DISCONNECT_PEER):
            body = self._identity() + avps
        else:  # Session-Id first (RFC 6733 section 8.8), then the identity
            body = avps[:1] + self._identity() + [new(AVP_DESTINATION_REALM, self.destination_realm.encode())] \
                + avps[1:]
        return hop, wire.encode(header, body)

    async def request(self, command: int, application: int, avps: list[Avp], *, proxiable: bool = True) -> Frame:
        hop, data = self.build(command, application, avps, proxiable=proxiable)
        return await self.send_raw(data, hop)

    async def send_raw(self, data: bytes, hop: int) -> Frame:
        """Send bytes as they are and wait for the answer whose hop-by-hop identifier is ``hop``."""
        assert self.writer is not None
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.pending[hop] = future
        self.writer.write(data)
        await self.writer.drain()
        try:
            return await future
        finally:
            self.pending.pop(hop, None)

    async def credit_control(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Send the CCR of a JSON credit-control request; the JSON shape of the CCA."""
        frame = await self.request(CREDIT_CONTROL, DCCA_APPLICATION_ID,
                                   _with_application(codec.request_avps(doc)))
        return answer(frame)

    async def watchdog(self) -> Frame:
        return await self.request(DEVICE_WATCHDOG, 0, [new(AVP_ORIGIN_STATE_ID, 1)], proxiable=False)

    async def _read(self) -> None:
        assert self.reader is not None and self.writer is not None
        try:
            while True:
                frame = wire.decode(await wire.read_frame(self.reader))
                header = frame.header
                if header.is_request:  # the server's DWR (answered) or DPR
                    self.writer.write(wire.encode(wire.answer_header(header),
                                                  [new(AVP_RESULT_CODE, 2001), *self._identity()]))
                    await self.unsolicited.put(frame)
                    continue
                future = self.pending.get(header.hop_by_hop_identifier)
                if future is not None and not future.done():
                    future.set_result(frame)
        except (asyncio.IncompleteReadError, ConnectionError, wire.FramingError, codec.AvpProblem):
            pass
        finally:
            self.closed.set()
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))


def _with_application(avps: list[Avp]) -> list[Avp]:
    # Session-Id stays first; Auth-Application-Id follows the identity AVPs that ``build`` inserts
    return [*avps[:1], new(AVP_AUTH_APPLICATION_ID, DCCA_APPLICATION_ID), *avps[1:]]


def result_code(frame: Frame) -> int | None:
    avp = codec.find(frame.avps, AVP_RESULT_CODE)
    return None if avp is None else int(avp.value)


def answer(frame: Frame) -> dict[str, Any]:
    """The JSON shape of a CCA frame (``codec.answer_document``), plus ``error`` when the E bit is set."""
    from diameter.message import Message

    doc = codec.answer_document(Message(frame.header, frame.avps))
    if frame.header.is_error:
        doc["error"] = True
    return doc

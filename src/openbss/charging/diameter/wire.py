"""Diameter framing (RFC 6733 section 3 and 4): reading one message off a stream, checking its header and AVP
lengths, and writing one. AVP values and the dictionaries are the ``python-diameter`` library's."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from diameter.message import Message, MessageHeader
from diameter.message.avp import Avp
from diameter.message.constants import AVP_ERROR_MESSAGE, AVP_FAILED_AVP, AVP_RESULT_CODE

from openbss.charging.diameter.codec import (
    INVALID_AVP_BITS,
    INVALID_AVP_LENGTH,
    INVALID_HDR_BITS,
    INVALID_MESSAGE_LENGTH,
    UNSUPPORTED_VERSION,
    AvpProblem,
    Frame,
    new,
)

HEADER_LENGTH = 20
MAX_MESSAGE_LENGTH = 1 << 16  # a credit-control message is a few hundred bytes; anything this large is refused
REQUEST, PROXIABLE, ERROR, RETRANSMIT = 0x80, 0x40, 0x20, 0x10
AVP_VENDOR, AVP_MANDATORY, AVP_PROTECTED = 0x80, 0x40, 0x20


class FramingError(Exception):
    """The stream cannot be read further (bad version or length): answered once, then the connection closes."""

    def __init__(self, result_code: int, message: str, header: MessageHeader | None) -> None:
        super().__init__(message)
        self.result_code = result_code
        self.message = message
        self.header = header


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole message (header and AVPs) off the stream; ``IncompleteReadError`` at the end of the stream."""
    head = await reader.readexactly(HEADER_LENGTH)
    version_length, _flags_code = struct.unpack(">II", head[:8])
    version, length = version_length >> 24, version_length & 0xFFFFFF
    header = MessageHeader.from_bytes(head)
    if version != 1:
        raise FramingError(UNSUPPORTED_VERSION, f"Diameter version {version} is not supported", header)
    if length < HEADER_LENGTH or length % 4 or length > MAX_MESSAGE_LENGTH:
        raise FramingError(INVALID_MESSAGE_LENGTH, f"message length {length} is invalid", header)
    return head + await reader.readexactly(length - HEADER_LENGTH)


def decode(data: bytes) -> Frame:
    """The header and top-level AVPs of one message. Raises ``AvpProblem`` (5014 invalid AVP length, 3009 invalid AVP
    bits) for an AVP whose framing is wrong, ``FramingError`` (3008) for reserved header bits."""
    header = MessageHeader.from_bytes(data)
    if header.command_flags & 0x0F or (header.is_request and header.is_error):
        raise FramingError(INVALID_HDR_BITS, "reserved or contradictory command flags", header)
    position, avps = HEADER_LENGTH, []
    while position < len(data):
        if len(data) - position < 8:
            raise AvpProblem(INVALID_AVP_LENGTH, "truncated AVP header")
        code, flags_length = struct.unpack(">II", data[position:position + 8])
        flags, length = flags_length >> 24, flags_length & 0xFFFFFF
        minimum = 12 if flags & AVP_VENDOR else 8
        padded = (length + 3) // 4 * 4
        raw = data[position:position + max(min(padded, len(data) - position), 8)]
        if length < minimum or position + padded > len(data):
            raise AvpProblem(INVALID_AVP_LENGTH, f"AVP {code} has an invalid length {length}",
                             _raw_avp(code, flags, raw))
        if flags & 0x1F:
            raise AvpProblem(INVALID_AVP_BITS, f"AVP {code} has reserved flag bits set", _raw_avp(code, flags, raw))
        avps.append(Avp.from_bytes(data[position:position + padded]))
        position += padded
    return Frame(header, avps)


def _raw_avp(code: int, flags: int, raw: bytes) -> Avp:
    vendor = struct.unpack(">I", raw[8:12])[0] if flags & AVP_VENDOR and len(raw) >= 12 else 0
    return Avp(code, vendor, raw[12 if flags & AVP_VENDOR else 8:], flags & 0xE0)


def encode(header: MessageHeader, avps: list[Avp]) -> bytes:
    return Message(header, avps).as_bytes()


def answer_header(request: MessageHeader, *, error: bool = False) -> MessageHeader:
    flags = (request.command_flags & PROXIABLE) | (ERROR if error else 0)
    return MessageHeader(1, 0, flags, request.command_code, request.application_id,
                         request.hop_by_hop_identifier, request.end_to_end_identifier)


def request_header(command_code: int, application_id: int, hop_by_hop: int, end_to_end: int, *,
                   proxiable: bool = True) -> MessageHeader:
    return MessageHeader(1, 0, REQUEST | (PROXIABLE if proxiable else 0), command_code, application_id,
                         hop_by_hop, end_to_end)


def error_avps(result_code: int, message: str | None, failed: Avp | None) -> list[Avp]:
    avps = [new(AVP_RESULT_CODE, result_code)]
    if message:
        avps.append(new(AVP_ERROR_MESSAGE, message[:255]))
    if failed is not None:
        avps.append(Avp.new(AVP_FAILED_AVP, 0, value=[failed]))
    return avps


def peek(data: bytes) -> dict[str, Any]:
    """Command code, flags and application of a frame, without decoding its AVPs (for logging)."""
    header = MessageHeader.from_bytes(data)
    return {"command": header.command_code, "request": header.is_request, "application": header.application_id}

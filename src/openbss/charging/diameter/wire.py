"""Diameter framing (RFC 6733 section 3 and 4): reading one message off a stream, checking its header and AVP
lengths, and writing one. AVP values and the dictionaries are the ``python-diameter`` library's."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from diameter.message import MessageHeader
from diameter.message.avp import Avp
from diameter.message.constants import AVP_ERROR_MESSAGE, AVP_FAILED_AVP, AVP_RESULT_CODE

from openbss.charging.diameter.codec import (
    INVALID_HDR_BITS,
    INVALID_MESSAGE_LENGTH,
    UNSUPPORTED_VERSION,
    Frame,
    encode_avp,
    new,
    parse_avps,
)

HEADER_LENGTH = 20
MAX_MESSAGE_LENGTH = 1 << 16  # a credit-control message is a few hundred bytes; anything this large is refused
REQUEST, PROXIABLE, ERROR, RETRANSMIT = 0x80, 0x40, 0x20, 0x10


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
    return Frame(header, parse_avps(data, HEADER_LENGTH))


_MESSAGE_HEADER = struct.Struct(">IIIII")


def encode(header: MessageHeader, avps: list[Avp]) -> bytes:
    body = b"".join(encode_avp(avp) for avp in avps)
    return _MESSAGE_HEADER.pack((header.version << 24) | (HEADER_LENGTH + len(body)),
                                (header.command_flags << 24) | header.command_code, header.application_id,
                                header.hop_by_hop_identifier, header.end_to_end_identifier) + body


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
        avps.append(new(AVP_FAILED_AVP, [failed]))
    return avps


def peek(data: bytes) -> dict[str, Any]:
    """Command code, flags and application of a frame, without decoding its AVPs (for logging)."""
    header = MessageHeader.from_bytes(data)
    return {"command": header.command_code, "request": header.is_request, "application": header.application_id}

"""Credit-control messages (Diameter CCR/CCA, RFC 4006 / 3GPP TS 32.299) to and from the JSON mapping of
``openbss.charging.schemas``, one AVP to one attribute (the table in ``schemas.py``).

The wire format and the standard dictionaries (AVP codes, types, vendor 3GPP) are the ``python-diameter``
library's; this module only decides which AVP carries which attribute, and reports an AVP it cannot accept with the
RFC 6733 result code and the offending AVP (``Failed-AVP``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from diameter.message import Message, MessageHeader
from diameter.message.avp import (
    Avp,
    AvpGrouped,
    AvpInteger32,
    AvpInteger64,
    AvpOctetString,
    AvpUnsigned32,
    AvpUnsigned64,
    AvpUtf8String,
)
from diameter.message.avp.avp import get_avp_dictionary_entry
from diameter.message.avp.errors import AvpDecodeError, AvpEncodeError
from diameter.message.constants import (
    AVP_CALLED_STATION_ID,
    AVP_CC_INPUT_OCTETS,
    AVP_CC_OUTPUT_OCTETS,
    AVP_CC_REQUEST_NUMBER,
    AVP_CC_REQUEST_TYPE,
    AVP_CC_SERVICE_SPECIFIC_UNITS,
    AVP_CC_TIME,
    AVP_CC_TOTAL_OCTETS,
    AVP_COST_INFORMATION,
    AVP_CURRENCY_CODE,
    AVP_ERROR_MESSAGE,
    AVP_EVENT_TIMESTAMP,
    AVP_EXPONENT,
    AVP_FINAL_UNIT_ACTION,
    AVP_FINAL_UNIT_INDICATION,
    AVP_GRANTED_SERVICE_UNIT,
    AVP_MULTIPLE_SERVICES_CREDIT_CONTROL,
    AVP_RATING_GROUP,
    AVP_REQUESTED_ACTION,
    AVP_REQUESTED_SERVICE_UNIT,
    AVP_RESULT_CODE,
    AVP_SERVICE_CONTEXT_ID,
    AVP_SESSION_ID,
    AVP_SUBSCRIPTION_ID,
    AVP_SUBSCRIPTION_ID_DATA,
    AVP_SUBSCRIPTION_ID_TYPE,
    AVP_TERMINATION_CAUSE,
    AVP_TGPP_3GPP_SGSN_MCC_MNC,
    AVP_TGPP_CALLED_PARTY_ADDRESS,
    AVP_TGPP_CALLING_PARTY_ADDRESS,
    AVP_TGPP_IMS_INFORMATION,
    AVP_TGPP_PS_INFORMATION,
    AVP_TGPP_QUOTA_HOLDING_TIME,
    AVP_TGPP_ROLE_OF_NODE,
    AVP_TGPP_SERVICE_INFORMATION,
    AVP_UNIT_VALUE,
    AVP_USED_SERVICE_UNIT,
    AVP_VALIDITY_TIME,
    AVP_VALUE_DIGITS,
    VENDOR_TGPP,
)

from openbss.charging.schemas import REQUEST_TYPES

DCCA_APPLICATION_ID = 4
CREDIT_CONTROL = 272

# RFC 6733 / RFC 4006 result codes the front end itself answers (the engine's own are in charging/errors.py)
SUCCESS = 2001
COMMAND_UNSUPPORTED = 3001
UNABLE_TO_DELIVER = 3002
TOO_BUSY = 3004
APPLICATION_UNSUPPORTED = 3007
INVALID_HDR_BITS = 3008
INVALID_AVP_BITS = 3009
UNKNOWN_PEER = 3010
AVP_UNSUPPORTED = 5001
INVALID_AVP_VALUE = 5004
MISSING_AVP = 5005
NO_COMMON_APPLICATION = 5010
UNSUPPORTED_VERSION = 5011
UNABLE_TO_COMPLY = 5012
INVALID_AVP_LENGTH = 5014
INVALID_MESSAGE_LENGTH = 5015
AVP_FLAG_VENDOR, AVP_FLAG_MANDATORY = 0x80, 0x40

REQUEST_TYPE_CODES = {name: code for code, name in REQUEST_TYPES.items()}
SUBSCRIPTION_TYPES = {0: "END_USER_E164", 1: "END_USER_IMSI", 2: "END_USER_SIP_URI", 3: "END_USER_NAI",
                      4: "END_USER_PRIVATE"}
SUBSCRIPTION_TYPE_CODES = {name: code for code, name in SUBSCRIPTION_TYPES.items()}
REQUESTED_ACTIONS = {0: "DIRECT_DEBITING", 1: "REFUND_ACCOUNT", 2: "CHECK_BALANCE", 3: "PRICE_ENQUIRY"}
TERMINATION_CAUSES = {1: "DIAMETER_LOGOUT", 2: "DIAMETER_SERVICE_NOT_PROVIDED", 3: "DIAMETER_BAD_ANSWER",
                      4: "DIAMETER_ADMINISTRATIVE", 5: "DIAMETER_LINK_BROKEN", 6: "DIAMETER_AUTH_EXPIRED",
                      7: "DIAMETER_USER_MOVED", 8: "DIAMETER_SESSION_TIMEOUT"}
TERMINATION_CAUSE_CODES = {name: code for code, name in TERMINATION_CAUSES.items()}
ROLES_OF_NODE = {0: "ORIGINATING_ROLE", 1: "TERMINATING_ROLE", 2: "PROXY_ROLE", 3: "B2BUA_ROLE"}
ROLE_OF_NODE_CODES = {name: code for code, name in ROLES_OF_NODE.items()}
FINAL_UNIT_ACTIONS = {0: "TERMINATE", 1: "REDIRECT", 2: "RESTRICT_ACCESS"}
FINAL_UNIT_ACTION_CODES = {name: code for code, name in FINAL_UNIT_ACTIONS.items()}
# ISO 4217 numeric codes of Currency-Code (425); an answer in a currency outside this table has no Cost-Information
CURRENCY_NUMBERS = {"EUR": 978, "USD": 840, "GBP": 826, "CHF": 756, "SEK": 752, "NOK": 578, "DKK": 208, "PLN": 985,
                    "CZK": 203, "HUF": 348, "RON": 946, "BGN": 975, "JPY": 392, "CAD": 124, "AUD": 36, "NZD": 554,
                    "INR": 356, "BRL": 986, "MXN": 484, "ZAR": 710, "TRY": 949, "MAD": 504, "XOF": 952, "XAF": 950,
                    "NGN": 566, "KES": 404, "EGP": 818, "TND": 788, "DZD": 12}
CURRENCY_CODES = {number: code for code, number in CURRENCY_NUMBERS.items()}

# units: JSON key <-> AVP code, in a Requested/Used/Granted-Service-Unit
UNIT_AVPS = (("time", AVP_CC_TIME), ("totalOctets", AVP_CC_TOTAL_OCTETS), ("inputOctets", AVP_CC_INPUT_OCTETS),
             ("outputOctets", AVP_CC_OUTPUT_OCTETS), ("serviceSpecificUnits", AVP_CC_SERVICE_SPECIFIC_UNITS))
UNIT_KEYS = {code: key for key, code in UNIT_AVPS}

#: the AVPs a CCR must carry (RFC 4006 section 3.1), by name for the Error-Message
REQUIRED_CCR_AVPS = ((AVP_SESSION_ID, "Session-Id"), (AVP_CC_REQUEST_TYPE, "CC-Request-Type"),
                     (AVP_CC_REQUEST_NUMBER, "CC-Request-Number"), (AVP_SERVICE_CONTEXT_ID, "Service-Context-Id"))


class AvpProblem(Exception):
    """An AVP the front end cannot accept: answered with ``result_code`` and the AVP in Failed-AVP."""

    def __init__(self, result_code: int, message: str, avp: Avp | None = None) -> None:
        super().__init__(message)
        self.result_code = result_code
        self.message = message
        self.avp = avp


# --- AVPs: the library's types and dictionary, with a fast path for the types credit control uses -----------------
# (the library packs and unpacks through a generic XDR packer: ~5 µs an AVP, most of the front end's codec time)
_PACKERS: dict[type[Avp], Any] = {
    AvpUnsigned32: struct.Struct(">I").pack, AvpUnsigned64: struct.Struct(">Q").pack,
    AvpInteger32: struct.Struct(">i").pack, AvpInteger64: struct.Struct(">q").pack,
    AvpUtf8String: lambda v: v.encode("utf-8"), AvpOctetString: lambda v: v if isinstance(v, bytes) else v.encode(),
}
_ENTRIES: dict[tuple[int, int], tuple[type[Avp], str | None, int]] = {}
_HEADER = struct.Struct(">II")
_VENDOR = struct.Struct(">I")


def _entry(code: int, vendor: int) -> tuple[type[Avp], str | None, int]:
    """The AVP's class, name and default flags (M, V) from the library's dictionary (cached)."""
    key = (code, vendor)
    found = _ENTRIES.get(key)
    if found is None:
        info = get_avp_dictionary_entry(code, vendor)
        if info is None:
            found = (Avp, None, AVP_FLAG_VENDOR if vendor else 0)
        else:
            flags = (AVP_FLAG_MANDATORY if info.get("mandatory") else 0) | (AVP_FLAG_VENDOR if vendor else 0)
            found = (info["type"], info["name"], flags)
        _ENTRIES[key] = found
    return found


def new(code: int, value: Any, vendor: int = 0) -> Avp:
    """An AVP of the dictionary with its value (grouped: a list of AVPs), encoded like ``Avp.new``."""
    kind, name, flags = _entry(code, vendor)
    if kind is AvpGrouped:
        payload = b"".join(encode_avp(child) for child in value)
    else:
        packer = _PACKERS.get(kind)
        if packer is None:
            return Avp.new(code, vendor, value=value)
        try:
            payload = packer(value)
        except (struct.error, AttributeError, UnicodeError) as exc:
            raise AvpEncodeError(f"AVP {code} cannot carry {value!r}: {exc}") from None
    avp = kind(code, vendor, payload, flags)
    if name:
        avp.name = name
    if kind is AvpGrouped:
        avp._avps = list(value)  # the library's cache of the decoded children
    return avp


def encode_avp(avp: Avp) -> bytes:
    payload, vendor = avp.payload, avp.vendor_id
    length = (12 if vendor else 8) + len(payload)
    head = _HEADER.pack(avp.code, (avp.flags << 24) | length)
    if vendor:
        head += _VENDOR.pack(vendor)
    return head + payload + b"\0" * (-length % 4)


def parse_avps(data: bytes, start: int = 0, end: int | None = None) -> list[Avp]:
    """The AVPs of ``data[start:end]`` (a message body or a grouped AVP's payload), their framing checked: 5014 for
    a length that does not fit, 3009 for reserved flag bits."""
    end = len(data) if end is None else end
    avps: list[Avp] = []
    position = start
    while position < end:
        if end - position < 8:
            raise AvpProblem(INVALID_AVP_LENGTH, "truncated AVP header")
        code, flags_length = _HEADER.unpack_from(data, position)
        flags, length = flags_length >> 24, flags_length & 0xFFFFFF
        header = 12 if flags & AVP_FLAG_VENDOR else 8
        if length < header or position + length > end:
            raise AvpProblem(INVALID_AVP_LENGTH, f"AVP {code} has an invalid length {length}",
                             Avp(code, 0, data[position + 8:min(end, position + max(length, 8))], flags & 0x60))
        vendor = _VENDOR.unpack_from(data, position + 8)[0] if header == 12 else 0
        if flags & 0x1F:
            raise AvpProblem(INVALID_AVP_BITS, f"AVP {code} has reserved flag bits set",
                             Avp(code, vendor, data[position + header:position + length], flags & 0xE0))
        kind, name, _ = _entry(code, vendor)
        avp = kind(code, vendor, data[position + header:position + length], flags)
        if name:
            avp.name = name
        avps.append(avp)
        position += (length + 3) & ~3
    return avps


_UNPACKERS: dict[type[Avp], tuple[int, Any]] = {
    AvpUnsigned32: (4, struct.Struct(">I").unpack), AvpUnsigned64: (8, struct.Struct(">Q").unpack),
    AvpInteger32: (4, struct.Struct(">i").unpack), AvpInteger64: (8, struct.Struct(">q").unpack),
}


def value_of(avp: Avp) -> Any:
    kind = type(avp)
    fixed = _UNPACKERS.get(kind)
    if fixed is not None:
        if len(avp.payload) != fixed[0]:
            raise AvpProblem(INVALID_AVP_LENGTH, f"AVP {avp.code} must be {fixed[0]} bytes", avp)
        return fixed[1](avp.payload)[0]
    if kind is AvpUtf8String:
        try:
            return avp.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AvpProblem(INVALID_AVP_VALUE, f"AVP {avp.code} is not UTF-8", avp) from exc
    if kind is AvpOctetString:
        return avp.payload
    try:
        return avp.value
    except (AvpDecodeError, ValueError, UnicodeDecodeError) as exc:
        raise AvpProblem(INVALID_AVP_VALUE, f"AVP {avp.code} cannot be decoded: {exc}", avp) from exc


def children(avp: Avp) -> list[Avp]:
    """The AVPs inside a grouped AVP (decoded once)."""
    if not isinstance(avp, AvpGrouped):
        raise AvpProblem(INVALID_AVP_VALUE, f"AVP {avp.code} is not grouped", avp)
    cached = getattr(avp, "_avps", None)
    if cached is None:
        try:
            cached = parse_avps(avp.payload)
        except AvpProblem as exc:
            raise AvpProblem(exc.result_code, f"in grouped AVP {avp.code}: {exc.message}", avp) from exc
        avp._avps = cached
    return list(cached)


def find(avps: list[Avp], code: int, vendor: int = 0) -> Avp | None:
    for avp in avps:
        if avp.code == code and avp.vendor_id == vendor:
            return avp
    return None


def find_all(avps: list[Avp], code: int, vendor: int = 0) -> list[Avp]:
    return [avp for avp in avps if avp.code == code and avp.vendor_id == vendor]


def _value(avps: list[Avp], code: int, vendor: int = 0) -> Any:
    avp = find(avps, code, vendor)
    return None if avp is None else value_of(avp)


def _enum(avp: Avp, names: dict[int, str], what: str) -> str:
    value = value_of(avp)
    if value not in names:
        raise AvpProblem(INVALID_AVP_VALUE, f"{what} {value} is not supported", avp)
    return names[value]


NTP_ERA0, NTP_ERA1 = -2208988800, 2085978496  # Unix time of the NTP epochs 1900-01-01 and 2036-02-07T06:28:16Z


def ntp_time(avp: Avp) -> datetime:
    """A Time AVP (RFC 6733 4.3.1: NTP seconds, UTC) as an aware UTC datetime. The library's own conversion reads
    and writes it in the process's local time zone."""
    if len(avp.payload) != 4:
        raise AvpProblem(INVALID_AVP_LENGTH, f"Time AVP {avp.code} must be 4 bytes", avp)
    seconds = int.from_bytes(avp.payload, "big")
    unix = seconds + (NTP_ERA0 if seconds & 0x80000000 else NTP_ERA1)
    return datetime.fromtimestamp(unix, UTC)


def ntp_avp(code: int, moment: datetime) -> Avp:
    """A Time AVP of an aware datetime (see ``ntp_time``)."""
    unix = int(moment.timestamp())
    seconds = unix - (NTP_ERA0 if unix < NTP_ERA1 else NTP_ERA1)
    return Avp(code, 0, seconds.to_bytes(4, "big"), Avp.avp_flag_mandatory)


def _units(group: Avp) -> dict[str, int]:
    out: dict[str, int] = {}
    for avp in children(group):
        key = UNIT_KEYS.get(avp.code) if avp.vendor_id == 0 else None
        if key is not None:
            out[key] = out.get(key, 0) + int(value_of(avp))
    return out


# --- CCR -> JSON request ------------------------------------------------------------------------------------------
def request_document(avps: list[Avp]) -> dict[str, Any]:
    """The JSON credit-control request (``CreditControlRequest``'s shape) of a CCR's AVPs. Raises ``AvpProblem``
    for a missing required AVP (5005), a value outside the mapping (5004) or an AVP unknown to the dictionaries with
    its M bit set (5001, RFC 6733 section 4.1); the schema validates the rest."""
    for avp in avps:
        if avp.flags & AVP_FLAG_MANDATORY and _entry(avp.code, avp.vendor_id)[1] is None:
            raise AvpProblem(AVP_UNSUPPORTED, f"AVP {avp.code} (vendor {avp.vendor_id}) is not supported", avp)
    for code, name in REQUIRED_CCR_AVPS:
        if find(avps, code) is None:
            raise AvpProblem(MISSING_AVP, f"{name} is missing", Avp.new(code, 0))
    kind = find(avps, AVP_CC_REQUEST_TYPE)
    assert kind is not None
    doc: dict[str, Any] = {"sessionId": _value(avps, AVP_SESSION_ID),
                           "requestType": _enum(kind, REQUEST_TYPES, "CC-Request-Type"),
                           "requestNumber": _value(avps, AVP_CC_REQUEST_NUMBER),
                           "serviceContextId": _value(avps, AVP_SERVICE_CONTEXT_ID)}
    subscriptions = find_all(avps, AVP_SUBSCRIPTION_ID)
    if subscriptions:
        parsed = []
        for sub in subscriptions:
            inner = children(sub)
            type_avp, data = find(inner, AVP_SUBSCRIPTION_ID_TYPE), find(inner, AVP_SUBSCRIPTION_ID_DATA)
            if type_avp is None or data is None:
                raise AvpProblem(MISSING_AVP, "Subscription-Id needs Subscription-Id-Type and -Data", sub)
            parsed.append({"type": _enum(type_avp, SUBSCRIPTION_TYPES, "Subscription-Id-Type"),
                           "data": value_of(data)})
        # the MSISDN is the charged identity when the network sends several (IMSI and MSISDN, typically)
        doc["subscriptionId"] = next((p for p in parsed if p["type"] == "END_USER_E164"), parsed[0])
    stamp = find(avps, AVP_EVENT_TIMESTAMP)
    if stamp is not None:
        doc["eventTimestamp"] = ntp_time(stamp).isoformat()
    action = find(avps, AVP_REQUESTED_ACTION)
    if action is not None:
        doc["requestedAction"] = _enum(action, REQUESTED_ACTIONS, "Requested-Action")
    cause = find(avps, AVP_TERMINATION_CAUSE)
    if cause is not None:
        doc["terminationCause"] = _enum(cause, TERMINATION_CAUSES, "Termination-Cause")
    info = find(avps, AVP_TGPP_SERVICE_INFORMATION, VENDOR_TGPP)
    if info is not None:
        service_info = _service_information(children(info))
        if service_info:
            doc["serviceInformation"] = service_info
    msccs = []
    for mscc in find_all(avps, AVP_MULTIPLE_SERVICES_CREDIT_CONTROL):
        inner = children(mscc)
        group = find(inner, AVP_RATING_GROUP)
        if group is None:
            raise AvpProblem(MISSING_AVP, "Multiple-Services-Credit-Control without Rating-Group", mscc)
        item: dict[str, Any] = {"ratingGroup": value_of(group)}
        requested = find(inner, AVP_REQUESTED_SERVICE_UNIT)
        if requested is not None:
            item["requestedServiceUnit"] = _units(requested)
        used = find_all(inner, AVP_USED_SERVICE_UNIT)
        if used:
            total: dict[str, int] = {}
            for one in used:  # several Used-Service-Unit (a tariff change inside the report): their sum
                for key, amount in _units(one).items():
                    total[key] = total.get(key, 0) + amount
            item["usedServiceUnit"] = total
        msccs.append(item)
    doc["multipleServicesCreditControl"] = msccs
    return doc


def _service_information(avps: list[Avp]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ps = find(avps, AVP_TGPP_PS_INFORMATION, VENDOR_TGPP)
    if ps is not None:
        inner = children(ps)
        network = _value(inner, AVP_TGPP_3GPP_SGSN_MCC_MNC, VENDOR_TGPP)
        if network:
            out["visitedNetwork"] = network
        apn = _value(inner, AVP_CALLED_STATION_ID)
        if apn:
            out["apn"] = apn
    ims = find(avps, AVP_TGPP_IMS_INFORMATION, VENDOR_TGPP)
    if ims is not None:
        inner = children(ims)
        called = _value(inner, AVP_TGPP_CALLED_PARTY_ADDRESS, VENDOR_TGPP)
        calling = _value(inner, AVP_TGPP_CALLING_PARTY_ADDRESS, VENDOR_TGPP)
        role = find(inner, AVP_TGPP_ROLE_OF_NODE, VENDOR_TGPP)
        if called:
            out["calledParty"] = called
        if calling:
            out["callingParty"] = calling
        if role is not None:
            out["roleOfNode"] = _enum(role, ROLES_OF_NODE, "Role-Of-Node")
    return out


# --- JSON request -> CCR AVPs (the client side: tests and the load generator) -------------------------------------
def request_avps(doc: dict[str, Any]) -> list[Avp]:
    """The CCR AVPs (after the base ones the caller adds: Origin-Host/Realm, Destination-Realm,
    Auth-Application-Id) of a JSON credit-control request."""
    kind = doc["requestType"]
    avps = [new(AVP_SESSION_ID, doc["sessionId"]),
            new(AVP_SERVICE_CONTEXT_ID, doc["serviceContextId"]),
            new(AVP_CC_REQUEST_TYPE, kind if isinstance(kind, int) else REQUEST_TYPE_CODES[kind]),
            new(AVP_CC_REQUEST_NUMBER, doc["requestNumber"])]
    sub = doc.get("subscriptionId")
    if sub:
        avps.append(new(AVP_SUBSCRIPTION_ID, [
            new(AVP_SUBSCRIPTION_ID_TYPE, SUBSCRIPTION_TYPE_CODES[sub.get("type", "END_USER_E164")]),
            new(AVP_SUBSCRIPTION_ID_DATA, sub["data"])]))
    if doc.get("eventTimestamp"):
        moment = doc["eventTimestamp"]
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        avps.append(ntp_avp(AVP_EVENT_TIMESTAMP, moment if moment.tzinfo else moment.replace(tzinfo=UTC)))
    if doc.get("requestedAction"):
        avps.append(new(AVP_REQUESTED_ACTION, {v: k for k, v in REQUESTED_ACTIONS.items()}[doc["requestedAction"]]))
    if doc.get("terminationCause"):
        avps.append(new(AVP_TERMINATION_CAUSE, TERMINATION_CAUSE_CODES[doc["terminationCause"]]))
    for item in doc.get("multipleServicesCreditControl") or []:
        inner = [new(AVP_RATING_GROUP, item["ratingGroup"])]
        if item.get("requestedServiceUnit") is not None:
            inner.append(new(AVP_REQUESTED_SERVICE_UNIT, unit_avps(item["requestedServiceUnit"])))
        if item.get("usedServiceUnit") is not None:
            inner.append(new(AVP_USED_SERVICE_UNIT, unit_avps(item["usedServiceUnit"])))
        avps.append(new(AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, inner))
    info = doc.get("serviceInformation") or {}
    groups = []
    ps = []
    if info.get("visitedNetwork"):
        ps.append(new(AVP_TGPP_3GPP_SGSN_MCC_MNC, info["visitedNetwork"], VENDOR_TGPP))
    if info.get("apn"):
        ps.append(new(AVP_CALLED_STATION_ID, info["apn"]))
    if ps:
        groups.append(new(AVP_TGPP_PS_INFORMATION, ps, VENDOR_TGPP))
    ims = []
    if info.get("calledParty"):
        ims.append(new(AVP_TGPP_CALLED_PARTY_ADDRESS, info["calledParty"], VENDOR_TGPP))
    if info.get("callingParty"):
        ims.append(new(AVP_TGPP_CALLING_PARTY_ADDRESS, info["callingParty"], VENDOR_TGPP))
    if info.get("roleOfNode"):
        ims.append(new(AVP_TGPP_ROLE_OF_NODE, ROLE_OF_NODE_CODES[info["roleOfNode"]], VENDOR_TGPP))
    if ims:
        groups.append(new(AVP_TGPP_IMS_INFORMATION, ims, VENDOR_TGPP))
    if groups:
        avps.append(new(AVP_TGPP_SERVICE_INFORMATION, groups, VENDOR_TGPP))
    return avps


def unit_avps(units: dict[str, int]) -> list[Avp]:
    return [new(code, int(units[key])) for key, code in UNIT_AVPS if units.get(key) is not None]


# --- JSON answer -> CCA AVPs --------------------------------------------------------------------------------------
def answer_avps(answer: dict[str, Any]) -> list[Avp]:
    """The CCA AVPs (after Session-Id, Result-Code, Origin-Host/Realm and Auth-Application-Id, which the server
    adds) of the engine's JSON answer."""
    kind = answer["requestType"]
    avps = [new(AVP_CC_REQUEST_TYPE, REQUEST_TYPE_CODES[kind]),
            new(AVP_CC_REQUEST_NUMBER, int(answer["requestNumber"]))]
    for item in answer.get("multipleServicesCreditControl") or []:
        inner = [new(AVP_RATING_GROUP, int(item["ratingGroup"]))]
        if item.get("grantedServiceUnit") is not None:
            inner.append(new(AVP_GRANTED_SERVICE_UNIT, unit_avps(item["grantedServiceUnit"])))
        if item.get("validityTime") is not None:
            inner.append(new(AVP_VALIDITY_TIME, int(item["validityTime"])))
        if item.get("resultCode") is not None:
            inner.append(new(AVP_RESULT_CODE, int(item["resultCode"])))
        if item.get("finalUnitIndication") is not None:
            action = item["finalUnitIndication"].get("finalUnitAction", "TERMINATE")
            inner.append(new(AVP_FINAL_UNIT_INDICATION, [new(AVP_FINAL_UNIT_ACTION, FINAL_UNIT_ACTION_CODES[action])]))
        if item.get("quotaHoldingTime") is not None:
            inner.append(new(AVP_TGPP_QUOTA_HOLDING_TIME, int(item["quotaHoldingTime"]), VENDOR_TGPP))
        avps.append(new(AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, inner))
    cost = answer.get("costInformation")
    if cost and cost.get("currencyCode") in CURRENCY_NUMBERS:
        digits, exponent = decimal_parts(Decimal(str(cost["unitValue"])))
        unit_value = [new(AVP_VALUE_DIGITS, digits)]
        if exponent:
            unit_value.append(new(AVP_EXPONENT, exponent))
        avps.append(new(AVP_COST_INFORMATION, [new(AVP_UNIT_VALUE, unit_value),
                                               new(AVP_CURRENCY_CODE, CURRENCY_NUMBERS[cost["currencyCode"]])]))
    if answer.get("errorMessage"):
        avps.append(new(AVP_ERROR_MESSAGE, str(answer["errorMessage"])[:255]))
    return avps


def decimal_parts(value: Decimal) -> tuple[int, int]:
    """Unit-Value (445): Value-Digits and Exponent, value = digits * 10^exponent."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    number = int("".join(map(str, digits)) or "0")
    return (-number if sign else number), exponent


# --- CCA -> JSON answer (the client side) -------------------------------------------------------------------------
def answer_document(message: Message) -> dict[str, Any]:
    """The JSON answer (``CreditControlAnswer``'s shape, without resultName) of a CCA."""
    avps = message.avps
    out: dict[str, Any] = {"sessionId": _value(avps, AVP_SESSION_ID), "resultCode": _value(avps, AVP_RESULT_CODE)}
    kind = _value(avps, AVP_CC_REQUEST_TYPE)
    if kind is not None:
        out["requestType"] = REQUEST_TYPES.get(kind, kind)
    number = _value(avps, AVP_CC_REQUEST_NUMBER)
    if number is not None:
        out["requestNumber"] = number
    msccs = []
    for mscc in find_all(avps, AVP_MULTIPLE_SERVICES_CREDIT_CONTROL):
        inner = children(mscc)
        item: dict[str, Any] = {"ratingGroup": _value(inner, AVP_RATING_GROUP)}
        result = _value(inner, AVP_RESULT_CODE)
        if result is not None:
            item["resultCode"] = result
        granted = find(inner, AVP_GRANTED_SERVICE_UNIT)
        if granted is not None:
            item["grantedServiceUnit"] = _units(granted)
        validity = _value(inner, AVP_VALIDITY_TIME)
        if validity is not None:
            item["validityTime"] = validity
        holding = _value(inner, AVP_TGPP_QUOTA_HOLDING_TIME, VENDOR_TGPP)
        if holding is not None:
            item["quotaHoldingTime"] = holding
        fui = find(inner, AVP_FINAL_UNIT_INDICATION)
        if fui is not None:
            action = _value(children(fui), AVP_FINAL_UNIT_ACTION)
            item["finalUnitIndication"] = {"finalUnitAction": FINAL_UNIT_ACTIONS.get(action, action)}
        msccs.append(item)
    if msccs:
        out["multipleServicesCreditControl"] = msccs
    cost = find(avps, AVP_COST_INFORMATION)
    if cost is not None:
        inner = children(cost)
        unit_value = find(inner, AVP_UNIT_VALUE)
        digits, exponent = 0, 0
        if unit_value is not None:
            parts = children(unit_value)
            digits, exponent = _value(parts, AVP_VALUE_DIGITS) or 0, _value(parts, AVP_EXPONENT) or 0
        currency = CURRENCY_CODES.get(_value(inner, AVP_CURRENCY_CODE), "")
        out["costInformation"] = {"unitValue": Decimal(digits).scaleb(exponent), "currencyCode": currency}
    message_text = _value(avps, AVP_ERROR_MESSAGE)
    if message_text:
        out["errorMessage"] = message_text
    return out


@dataclass
class Frame:
    """A decoded message: its header and AVPs (not yet interpreted)."""

    header: MessageHeader
    avps: list[Avp]

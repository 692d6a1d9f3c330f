"""3GPP TS 32.298 ASN.1 BER charging data records, decoded with ``pycrate``'s 3GPP modules (``pycrate_asn1dir.CDR``:
``GPRSChargingDataTypes``, ``CSChargingDataTypes``), into the fields of one usage record (docs/rating.md).

A file is a sequence of BER-encoded records, each a ``GPRSRecord`` (``pGWRecord`` [79], ``sGWRecord`` [78]) or a
``CSRecord`` (``moCallRecord`` [0], ``mtCallRecord`` [1], ``moSMSRecord`` [6], ``mtSMSRecord`` [7]). The records
are cut apart by their
outer tag and length (definite lengths), each decoded by pycrate; a record that cannot be decoded is refused with
the reason and its position, as a CSV line would be.

* PGW/SGW data: ``servedMSISDN``, ``servedIMSI``, ``recordOpeningTime``, the volume of ``listOfTrafficVolumes``
  (uplink + downlink; else ``listOfServiceData``), ``accessPointNameNI``, origin ``nodeID``. A record with a
  ``recordSequenceNumber`` is a **part** of the session ``chargingID`` (part = the sequence number; the closing
  part is the one whose ``causeForRecClosing`` is not a partial-record cause: volume/time limit, serving node,
  RAT or time zone change, maximum change conditions, management intervention).
* MSC voice (MO): ``servedMSISDN``, ``servedIMSI``, ``calledNumber``, ``answerTime`` (else ``seizureTime``),
  ``callDuration``; identity ``callReference`` (and ``sequenceNumber``) of the ``recordingEntity``.
* MSC voice (MT): the same, ``direction`` terminating, rated by its ``callingNumber`` (as online charging rates a
  terminating session); identity ``mtcall:<callReference>``.
* Roaming: the serving network — ``servingNodePLMNIdentifier`` of a PGW/SGW record, ``location.mCC-MNC`` of a call —
  whose MCC is not the one of the ``servedIMSI`` gives ``visitedNetwork`` (MCC and MNC) and ``visitedCountry`` (the
  MCC's country, from pycrate's MCC table).
* SMS (MO): ``servedMSISDN``, ``servedIMSI``, ``destinationNumber`` (TP-DA), ``originationTime``; identity
  ``messageReference`` and ``originationTime`` of the ``recordingEntity``.
* SMS (MT, received): ``servedMSISDN``, ``servedIMSI``, ``deliveryTime``, ``direction`` terminating, roaming by
  ``location.mCC-MNC``; identity ``mtsms:<servedIMSI, else servedMSISDN>:<deliveryTime>`` of the
  ``recordingEntity`` (the record carries no message reference). Rated through the same pricing as the rest: free
  for the receiver unless the tariff has an SMS rate of direction ``terminating`` (``pricing.choice``). A record
  with an ``smsResult`` (the delivery failed) is refused with that reason.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

#: causeForRecClosing values that close a partial record (the session goes on)
PARTIAL_CAUSES = frozenset({16, 17, 18, 19, 20, 21, 22, 23, 24})
GPRS_TAGS = {78: "sGWRecord", 79: "pGWRecord"}
CS_TAGS = {0: "moCallRecord", 1: "mtCallRecord", 6: "moSMSRecord", 7: "mtSMSRecord"}


class BerFramingError(ValueError):
    """The bytes cannot be cut into BER records (a truncated record, an indefinite length)."""


def _modules() -> tuple[Any, Any, tuple[type[Exception], ...]]:
    from pycrate_asn1dir import CDR  # ~1 s to import: only when a BER file comes
    from pycrate_asn1rt.err import ASN1Err
    from pycrate_core.utils import PycrateErr

    return CDR.GPRSChargingDataTypes, CDR.CSChargingDataTypes, (ASN1Err, PycrateErr, KeyError, ValueError, TypeError)


def frames(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(context tag number, offset, the record's bytes) of each record; the outer tag and length only."""
    pos, n = 0, len(data)
    while pos < n:
        start = pos
        first = data[pos]
        tag = first & 0x1F
        pos += 1
        if tag == 0x1F:  # high tag number form
            tag = 0
            while True:
                if pos >= n:
                    raise BerFramingError(f"record at byte {start}: truncated tag")
                b = data[pos]
                pos += 1
                tag = (tag << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
        if pos >= n:
            raise BerFramingError(f"record at byte {start}: truncated length")
        length = data[pos]
        pos += 1
        if length == 0x80:
            raise BerFramingError(f"record at byte {start}: indefinite lengths are not taken")
        if length & 0x80:
            count = length & 0x7F
            if pos + count > n:
                raise BerFramingError(f"record at byte {start}: truncated length")
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > n:
            raise BerFramingError(f"record at byte {start}: {length} bytes announced, {n - pos} left")
        pos += length
        if first & 0xC0 != 0x80:
            tag = -1  # not a context-specific tag: no CDR
        yield tag, start, data[start:pos]


def tbcd(raw: bytes) -> str:
    """Telephony BCD digits (low nibble first, F filler)."""
    out: list[str] = []
    for b in raw:
        for nibble in (b & 0x0F, b >> 4):
            if nibble == 0x0F:
                return "".join(out)
            if nibble > 9:
                raise ValueError(f"'{raw.hex()}' is not telephony BCD")
            out.append(str(nibble))
    return "".join(out)


def address(raw: bytes) -> str:
    """An AddressString / ISDN-AddressString / BCDDirectoryNumber: nature of address octet, then TBCD digits."""
    return tbcd(raw[1:])


def tp_address(raw: bytes) -> str:
    """A TP address of 3GPP TS 23.040 (SmsTpDestinationNumber): digit count, type of address, TBCD digits."""
    if len(raw) < 2:
        raise ValueError("destination number too short")
    return tbcd(raw[2:])[: raw[0]]


def timestamp(raw: bytes) -> str:
    """A TimeStamp (YYMMDDhhmmss in BCD, sign, hh mm of the offset from UTC) as ISO 8601."""
    if len(raw) != 9 or chr(raw[6]) not in "+-":
        raise ValueError(f"TimeStamp '{raw.hex()}' is not 9 octets YYMMDDhhmmss±hhmm")
    d = raw[:6].hex() + raw[7:9].hex()
    if not d.isdigit():
        raise ValueError(f"TimeStamp '{raw.hex()}' is not BCD")
    return f"20{d[0:2]}-{d[2:4]}-{d[4:6]}T{d[6:8]}:{d[8:10]}:{d[10:12]}{chr(raw[6])}{d[12:14]}:{d[14:16]}"


def plmn(raw: bytes) -> str:
    """A PLMN-Id / MCC-MNC (3 octets: MCC digits 2|1, MNC digit 3|MCC digit 3, MNC digits 2|1; F filler for a
    two-digit MNC) as MCC and MNC digits."""
    if len(raw) != 3:
        raise ValueError(f"PLMN id '{raw.hex()}' is not 3 octets")
    mcc = f"{raw[0] & 0x0F}{raw[0] >> 4}{raw[1] & 0x0F}"
    mnc = f"{raw[2] & 0x0F}{raw[2] >> 4}" + ("" if raw[1] >> 4 == 0x0F else f"{raw[1] >> 4}")
    digits = mcc + mnc
    if not digits.isdigit():
        raise ValueError(f"PLMN id '{raw.hex()}' is not BCD")
    return digits


def country_of(mcc: str) -> str | None:
    """The ISO 3166 alpha-2 country of a mobile country code (pycrate's MCC table)."""
    from pycrate_mobile.MCC_MNC import MCC_dict

    found = MCC_dict.get(mcc)
    code = found[1] if found else None
    return code.upper() if isinstance(code, str) and len(code) == 2 else None


def _roaming(raw: dict[str, Any], network: bytes | None) -> None:
    """When the serving network's country (MCC) is not the one of the subscriber's IMSI: ``visitedNetwork`` (MCC
    and MNC) and ``visitedCountry``. Without an IMSI the home country is unknown and the record is taken as at
    home."""
    if not network or not raw.get("imsi"):
        return
    visited = plmn(network)
    if visited[:3] == str(raw["imsi"])[:3]:
        return
    raw["visitedNetwork"] = visited
    country = country_of(visited[:3])
    if country:
        raw["visitedCountry"] = country


def _volume(rec: dict[str, Any]) -> int:
    volumes = rec.get("listOfTrafficVolumes")
    if volumes:
        return sum(int(v.get("dataVolumeGPRSUplink", 0)) + int(v.get("dataVolumeGPRSDownlink", 0)) for v in volumes)
    return sum(int(v.get("datavolumeFBCUplink", 0)) + int(v.get("datavolumeFBCDownlink", 0))
               for v in rec.get("listOfServiceData") or [])


def _common(rec: dict[str, Any], raw: dict[str, Any]) -> None:
    if rec.get("servedMSISDN"):
        raw["msisdn"] = address(rec["servedMSISDN"])
    if rec.get("servedIMSI"):
        raw["imsi"] = tbcd(rec["servedIMSI"])


def _data(kind: str, rec: dict[str, Any]) -> dict[str, Any]:
    charging_id = int(rec["chargingID"])
    raw: dict[str, Any] = {"usageType": "data", "quantity": str(_volume(rec)),
                           "eventTime": timestamp(rec["recordOpeningTime"])}
    if rec.get("nodeID"):
        raw["origin"] = str(rec["nodeID"])
    _common(rec, raw)
    if rec.get("accessPointNameNI"):
        raw["apn"] = str(rec["accessPointNameNI"])
    seq = rec.get("recordSequenceNumber")
    if seq is not None:
        raw.update(recordId=f"{kind}:{charging_id}:{seq}", sessionId=f"{kind}:{charging_id}", partNumber=str(seq),
                   lastPart="false" if int(rec.get("causeForRecClosing", 0)) in PARTIAL_CAUSES else "true")
    else:
        local = rec.get("localSequenceNumber")
        raw["recordId"] = f"{kind}:{charging_id}" + (f":{local}" if local is not None else "")
    _roaming(raw, rec.get("servingNodePLMNIdentifier"))
    return raw


def _voice(rec: dict[str, Any], terminating: bool = False) -> dict[str, Any]:
    moment = rec.get("answerTime") or rec.get("seizureTime")
    if moment is None:
        kind = "mtCallRecord" if terminating else "moCallRecord"
        raise ValueError(f"{kind} has neither answerTime nor seizureTime")
    raw: dict[str, Any] = {"usageType": "voice", "quantity": str(int(rec["callDuration"])),
                           "eventTime": timestamp(moment), "origin": f"msc:{address(rec['recordingEntity'])}",
                           "recordId": f"{'mtcall' if terminating else 'call'}:{rec['callReference'].hex()}"
                                       + (f":{rec['sequenceNumber']}" if rec.get("sequenceNumber") is not None
                                          else "")}
    _common(rec, raw)
    if terminating:
        raw["direction"] = "terminating"
        if rec.get("callingNumber"):
            raw["callingNumber"] = address(rec["callingNumber"])
    elif rec.get("calledNumber"):
        raw["calledNumber"] = address(rec["calledNumber"])
    _roaming(raw, (rec.get("location") or {}).get("mCC-MNC"))
    return raw


def _mt_sms(rec: dict[str, Any]) -> dict[str, Any]:
    if rec.get("smsResult") is not None:
        raise ValueError(f"mtSMSRecord: the delivery failed (smsResult {rec['smsResult']!r}): nothing to rate")
    if rec.get("deliveryTime") is None:
        raise ValueError("mtSMSRecord has no deliveryTime")
    served = tbcd(rec["servedIMSI"]) if rec.get("servedIMSI") else address(rec.get("servedMSISDN") or b"\x91")
    raw: dict[str, Any] = {"usageType": "sms", "quantity": "1", "eventTime": timestamp(rec["deliveryTime"]),
                           "origin": f"msc:{address(rec['recordingEntity'])}", "direction": "terminating",
                           "recordId": f"mtsms:{served}:{rec['deliveryTime'].hex()}"}
    _common(rec, raw)
    _roaming(raw, (rec.get("location") or {}).get("mCC-MNC"))
    return raw


def _sms(rec: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {"usageType": "sms", "quantity": "1", "eventTime": timestamp(rec["originationTime"]),
                           "origin": f"msc:{address(rec['recordingEntity'])}",
                           "recordId": f"sms:{rec['messageReference'].hex()}:{rec['originationTime'].hex()}"}
    _common(rec, raw)
    if rec.get("destinationNumber"):
        raw["calledNumber"] = tp_address(rec["destinationNumber"])
    return raw


#: records from which a file is decoded by several processes (one per core)
PARALLEL_FROM = 20_000


def read_ber(data: bytes, workers: int = 1) -> list[tuple[int, dict[str, Any] | str]]:
    """(record number, fields) of every record of a BER file; a record that cannot be taken is given as its
    reason (as ``layouts.read_raw`` gives a bad line). Decoding is pure Python (pycrate); with ``workers`` > 1 a
    file of ``PARALLEL_FROM`` records or more is cut at record boundaries into one slice per worker, decoded by a
    process pool (not the default: on the 2-core shared machine it measured no faster, docs/benchmarks.md)."""
    cuts: list[int] = []
    try:
        cuts = [offset for _, offset, _ in frames(data)]
    except BerFramingError:
        cuts = []  # decoded in one piece: the framing error is reported at its place
    if workers > 1 and len(cuts) >= PARALLEL_FROM:
        step = -(-len(cuts) // workers)
        bounds = [*cuts[::step], len(data)]
        slices = [(data[bounds[i]:bounds[i + 1]], i * step, bounds[i]) for i in range(len(bounds) - 1)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
            parts = list(pool.map(_read_slice, slices))
        return [row for part in parts for row in part]
    return _read_slice((data, 0, 0))


def process_context() -> Any:
    """The decoding workers' start method: ``forkserver``. They are forked from a server process started once (the
    3GPP modules preloaded in it), never from the calling process: a fork of an asyncio process would inherit its
    sockets (PostgreSQL, NATS), the locks its other threads hold and its signal wakeup fd."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["openbss.rating.asn1", "pycrate_asn1dir.CDR", "pycrate_asn1rt.err",
                                    "pycrate_core.utils"])
    return context


def _read_slice(job: tuple[bytes, int, int]) -> list[tuple[int, dict[str, Any] | str]]:
    """Decode the records of ``data``, numbered from ``number + 1``, ``base`` its offset in the file."""
    data, number, base = job
    gprs, cs, errors = _modules()
    out: list[tuple[int, dict[str, Any] | str]] = []
    try:
        for tag, at, chunk in frames(data):
            number += 1
            offset = base + at
            try:
                if tag in GPRS_TAGS:
                    gprs.GPRSRecord.from_ber(chunk)
                    kind, rec = gprs.GPRSRecord.get_val()
                    out.append((number, _data("pgw" if kind == "pGWRecord" else "sgw", rec)))
                elif tag in CS_TAGS:
                    cs.CSRecord.from_ber(chunk)
                    kind, rec = cs.CSRecord.get_val()
                    if kind == "moSMSRecord":
                        out.append((number, _sms(rec)))
                    elif kind == "mtSMSRecord":
                        out.append((number, _mt_sms(rec)))
                    else:
                        out.append((number, _voice(rec, terminating=kind == "mtCallRecord")))
                else:
                    out.append((number, f"record at byte {offset}: tag [{tag}] is not a PGW, SGW, MO or MT call or "
                                        "MO or MT SMS record"))
            except errors as exc:
                out.append((number, f"record at byte {offset} cannot be decoded: {type(exc).__name__}: {exc}"))
    except BerFramingError as exc:
        out.append((number + 1, str(exc)))
    return out

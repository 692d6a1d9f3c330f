"""3GPP TS 32.298 CDR files for tests and benchmarks, encoded with pycrate (the library that decodes them) from
known values."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def tbcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


def isdn(number: str) -> bytes:
    """ISDN-AddressString: international number, E.164 plan, then TBCD."""
    return b"\x91" + tbcd(number.lstrip("+"))


def plmn_id(mcc: str, mnc: str) -> bytes:
    """PLMN-Id: MCC digits 2|1, MNC digit 3 (F for a two-digit MNC)|MCC digit 3, MNC digits 2|1."""
    m3 = int(mnc[2]) if len(mnc) == 3 else 0xF
    return bytes([int(mcc[1]) << 4 | int(mcc[0]), m3 << 4 | int(mcc[2]), int(mnc[1]) << 4 | int(mnc[0])])


def stamp(moment: datetime) -> bytes:
    """TimeStamp: YYMMDDhhmmss BCD, sign, hhmm offset (UTC here)."""
    return bytes.fromhex(moment.strftime("%y%m%d%H%M%S")) + b"+" + b"\x00\x00"


def pgw(*, charging_id: int, msisdn: str, imsi: str, start: datetime, uplink: int, downlink: int,
        sequence: int | None = None, cause: int = 0, node: str = "pgw-1", apn: str = "internet",
        serving_plmn: bytes | None = None, kind: str = "pGWRecord") -> bytes:
    from pycrate_asn1dir import CDR

    rec: dict[str, Any] = {
        "recordType": 85, "servedIMSI": tbcd(imsi), "p-GWAddress": ("iPBinaryAddress", ("iPBinV4Address",
                                                                                      b"\x0a\x00\x00\x01")),
        "chargingID": charging_id, "servingNodeAddress": [("iPBinaryAddress", ("iPBinV4Address", b"\x0a\x00\x00\x02"))],
        "accessPointNameNI": apn, "listOfTrafficVolumes": [{"dataVolumeGPRSUplink": uplink,
                                                             "dataVolumeGPRSDownlink": downlink,
                                                             "changeCondition": "recordClosure",
                                                             "changeTime": stamp(start)}],
        "recordOpeningTime": stamp(start), "duration": 60, "causeForRecClosing": cause, "nodeID": node,
        "servedMSISDN": isdn(msisdn), "chargingCharacteristics": b"\x08\x00", "servingNodeType": ["gTPSGW"],
    }
    if sequence is not None:
        rec["recordSequenceNumber"] = sequence
    if serving_plmn is not None:
        rec["servingNodePLMNIdentifier"] = serving_plmn
    if kind == "sGWRecord":
        rec["recordType"] = 84
        rec["s-GWAddress"] = rec.pop("p-GWAddress")
        rec.pop("chargingCharacteristics", None)
        rec["chargingCharacteristics"] = b"\x08\x00"
    obj = CDR.GPRSChargingDataTypes.GPRSRecord
    obj.set_val((kind, rec))
    return bytes(obj.to_ber())


def mo_call(*, reference: int, msisdn: str, imsi: str, called: str, answer: datetime, duration: int,
            msc: str = "33609000001", location: bytes | None = None) -> bytes:
    from pycrate_asn1dir import CDR

    rec: dict[str, Any] = {
        "recordType": 0, "servedIMSI": tbcd(imsi), "servedMSISDN": isdn(msisdn), "calledNumber": isdn(called),
        "recordingEntity": isdn(msc), "seizureTime": stamp(answer), "answerTime": stamp(answer),
        "callDuration": duration, "causeForTerm": 0, "callReference": reference.to_bytes(4, "big")}
    if location is not None:
        rec["location"] = {"locationAreaCode": b"\x00\x01", "cellId": b"\x00\x02", "mCC-MNC": location}
    obj = CDR.CSChargingDataTypes.CSRecord
    obj.set_val(("moCallRecord", rec))
    return bytes(obj.to_ber())


def mo_sms(*, reference: int, msisdn: str, imsi: str, destination: str, sent: datetime,
           msc: str = "33609000001") -> bytes:
    from pycrate_asn1dir import CDR

    digits = destination.lstrip("+")
    obj = CDR.CSChargingDataTypes.CSRecord
    obj.set_val(("moSMSRecord", {
        "recordType": 6, "servedIMSI": tbcd(imsi), "servedMSISDN": isdn(msisdn), "msClassmark": b"\x57\x58\xa6",
        "serviceCentre": isdn("33609005000"), "recordingEntity": isdn(msc), "messageReference": bytes([reference]),
        "originationTime": stamp(sent), "destinationNumber": bytes([len(digits), 0x91]) + tbcd(digits)}))
    return bytes(obj.to_ber())


def mt_call(*, reference: int, msisdn: str, answer: datetime, imsi: str = "208010000000001", duration: int = 30,
            calling: str | None = None, location: bytes | None = None) -> bytes:
    from pycrate_asn1dir import CDR

    rec: dict[str, Any] = {
        "recordType": 1, "servedIMSI": tbcd(imsi), "servedMSISDN": isdn(msisdn),
        "recordingEntity": isdn("33609000001"),
        "answerTime": stamp(answer), "callDuration": duration, "causeForTerm": 0,
        "callReference": reference.to_bytes(4, "big")}
    if calling is not None:
        rec["callingNumber"] = isdn(calling)
    if location is not None:
        rec["location"] = {"locationAreaCode": b"\x00\x01", "cellId": b"\x00\x02", "mCC-MNC": location}
    obj = CDR.CSChargingDataTypes.CSRecord
    obj.set_val(("mtCallRecord", rec))
    return bytes(obj.to_ber())


def mt_sms(*, msisdn: str, delivered: datetime, imsi: str = "208010000000001", location: bytes | None = None,
           failed: bool = False, msc: str = "33609000001") -> bytes:
    from pycrate_asn1dir import CDR

    rec: dict[str, Any] = {
        "recordType": 7, "serviceCentre": isdn("33609005000"), "servedIMSI": tbcd(imsi), "servedMSISDN": isdn(msisdn),
        "msClassmark": b"\x57\x58\xa6", "recordingEntity": isdn(msc), "deliveryTime": stamp(delivered)}
    if location is not None:
        rec["location"] = {"locationAreaCode": b"\x00\x01", "cellId": b"\x00\x02", "mCC-MNC": location}
    if failed:
        rec["smsResult"] = ("gsm0408Cause", 27)
    obj = CDR.CSChargingDataTypes.CSRecord
    obj.set_val(("mtSMSRecord", rec))
    return bytes(obj.to_ber())

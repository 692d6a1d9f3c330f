"""The TMF635 usage specifications every tenant starts with: one per kind of usage, with its characteristics."""

from __future__ import annotations

from typing import Any

from openbss.rating.layouts import UsageRecord

_COMMON = [("recordId", "string", "Identity of the record at its origin"),
           ("origin", "string", "Network element that produced the record"),
           ("subscriber", "string", "MSISDN (E.164 digits)"),
           ("quantity", "integer", "Quantity used, in the base unit"),
           ("unit", "string", "Base unit of the quantity")]
_EXTRA = {
    "voice": [("calledParty", "string", "Called number"), ("destinationZone", "string", "Tariff zone"),
              ("timeBand", "string", "Time band at the call start")],
    "sms": [("calledParty", "string", "Recipient number")],
    "mms": [("calledParty", "string", "Recipient number")],
    "data": [("apn", "string", "Access point name")],
    "roamingData": [("apn", "string", "Access point name"), ("visitedCountry", "string", "ISO 3166 country"),
                    ("roamingZone", "string", "Roaming zone of the tariff")],
    "content": [("calledParty", "string", "Content provider or short code")],
}
DESCRIPTIONS = {"voice": "Voice calls (seconds)", "sms": "Short messages (count)", "mms": "Multimedia messages",
                "data": "Home data sessions (bytes)", "roamingData": "Data sessions while roaming (bytes)",
                "content": "Content and one-off events (count)"}


def default_specifications() -> list[dict[str, Any]]:
    out = []
    for name, extra in _EXTRA.items():
        out.append({
            "@type": "UsageSpecification", "name": name, "description": DESCRIPTIONS[name], "version": "1.0",
            "lifecycleStatus": "Active", "isBundle": False,
            "specCharacteristic": [{"name": n, "valueType": t, "description": d, "configurable": False}
                                   for n, t, d in [*_COMMON, *extra]],
        })
    return out


def specification_name(record: UsageRecord) -> str:
    """The usage specification a record belongs to."""
    if record.usage_type == "data":
        return "roamingData" if record.visited_country or record.visited_network else "data"
    if record.usage_type == "event":
        return "content"
    return record.usage_type

"""The usage file layouts (CSV and JSON lines), validation with reasons and normalization to one usage record.

Both layouts carry the same fields (docs/rating.md): ``recordId`` (unique per ``origin``), ``msisdn``, ``eventTime``
(ISO 8601 with an offset, or ``Z``), ``usageType`` (``voice``, ``sms``, ``data``, ``mms``, ``event``),
``quantity`` (an integer in ``unit``), ``unit`` (optional; defaults to the usage type's base unit), and optionally
``origin`` (the network element; defaults to the file's source), ``calledNumber`` (voice and SMS), ``visitedCountry``
(ISO 3166 alpha-2 when roaming), ``apn`` (data), ``imsi``; and for a **partial record** (one part of a long
session the network split): ``sessionId`` (the session's charging id at its origin), ``partNumber`` (1, 2, ...)
and ``lastPart`` (true on the closing part).

Pure: no I/O beyond the bytes handed in.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from openbss.pricing.rating import RatingRuleError
from openbss.pricing.rating import normalize_number as _normalize_number
from openbss.pricing.units import UnitError, canonical_unit, convert, dimension
from openbss.pricing.usage import BASE_UNIT

FIELDS = ("recordId", "origin", "msisdn", "imsi", "eventTime", "usageType", "quantity", "unit", "calledNumber",
          "visitedCountry", "apn", "sessionId", "partNumber", "lastPart", "direction", "callingNumber",
          "visitedNetwork")
DIRECTIONS = ("originating", "terminating")
FIELD_SET = frozenset(FIELDS)
REQUIRED = ("recordId", "msisdn", "eventTime", "usageType", "quantity")
USAGE_TYPES = ("voice", "sms", "data", "mms", "event")
#: the unit dimension each usage type is counted in
DIMENSION = {"voice": "time", "data": "data", "sms": "sms", "mms": "mms", "event": "event"}
MAX_QUANTITY = 2**53
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PLMN = re.compile(r"^\d{5,6}$")


@functools.lru_cache(maxsize=1 << 17)
def normalize_number(number: str) -> str:
    """E.164 digits of a number (``pricing.rating.normalize_number``, remembered: a file names the same
    subscribers again and again)."""
    return _normalize_number(number)


class LayoutError(ValueError):
    """The file as a whole cannot be read (unknown layout, missing CSV header, not UTF-8)."""


@dataclass(frozen=True)
class UsageRecord:
    """One normalized usage record: integer quantity in the usage type's base unit, aware UTC time."""

    key: str  # stable identity: SHA-256 of origin and record id (deduplication across files and re-deliveries)
    record_id: str
    origin: str
    msisdn: str  # E.164 digits
    event_time: datetime
    usage_type: str
    quantity: int  # base units: seconds, bytes, messages, events
    called_number: str | None = None
    visited_country: str | None = None
    apn: str | None = None
    imsi: str | None = None
    session_id: str | None = None  # set on a partial record
    part_number: int | None = None
    last_part: bool = False
    direction: str = "originating"  # "terminating": a call received (MSC MT call record)
    calling_number: str | None = None  # the calling party of a terminating call (rated by it, as online charging)
    visited_network: str | None = None  # MCC+MNC of the visited network when roaming

    @property
    def session_key(self) -> str | None:
        """The key the assembled session is rated under (None for a whole record)."""
        return record_key(self.origin, f"session:{self.session_id}") if self.session_id else None


@dataclass(frozen=True)
class Rejection:
    """A record that failed validation: its raw fields, its position in the file and why."""

    line: int
    raw: dict[str, Any]
    reason: str
    key: str | None = None


def record_key(origin: str, record_id: str) -> str:
    return hashlib.sha256(f"{origin}\x1f{record_id}".encode()).hexdigest()


BER_EXTENSIONS = (".ber", ".asn1", ".cdr")
#: the first octet of a BER CDR: a context-specific constructed tag (GPRSRecord [78]/[79] take the long form)
BER_FIRST = frozenset({0xA0, 0xA1, 0xA6, 0xA7, 0xBF})


def detect_layout(name: str, data: bytes) -> str:
    lower = name.lower()
    if lower.endswith(BER_EXTENSIONS) or (data[:1] and data[0] in BER_FIRST):
        return "ber"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith((".csv", ".txt")):
        return "csv"
    head = data.lstrip()[:1]
    return "jsonl" if head == b"{" else "csv"


def read_raw(name: str, data: bytes) -> list[tuple[int, dict[str, Any] | str]]:
    """(line number, fields) of every record of a file; a line that cannot be parsed is given as its error."""
    if detect_layout(name, data) == "ber":
        from openbss.rating.asn1 import read_ber

        return read_ber(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LayoutError(f"'{name}' is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    out: list[tuple[int, dict[str, Any] | str]] = []
    if detect_layout(name, data) == "jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                out.append((n, f"not a JSON object: {exc.msg} at column {exc.colno}"))
                continue
            out.append((n, value) if isinstance(value, dict) else (n, "not a JSON object"))
        return out
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise LayoutError(f"'{name}' has no CSV header line")
    missing = [f for f in REQUIRED if f not in reader.fieldnames]
    if missing:
        raise LayoutError(f"'{name}': the CSV header lacks {', '.join(missing)} (expected columns: "
                          f"{', '.join(FIELDS)})")
    for row in reader:
        fields: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        if None in row:
            out.append((reader.line_num, "more values than header columns"))
            continue
        out.append((reader.line_num, fields))
    return out


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"'{name}' must be a string")
    return str(value).strip() or None


def parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"'eventTime' '{value}' is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise ValueError(f"'eventTime' '{value}' has no UTC offset (add Z or +hh:mm)")
    return moment.astimezone(UTC)


def normalize(raw: dict[str, Any], default_origin: str) -> UsageRecord:
    """Validate one record's fields and normalize them; raises ``ValueError`` naming the problem."""
    if not FIELD_SET.issuperset(raw):
        unknown = sorted(set(raw) - FIELD_SET)
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    for f in REQUIRED:
        if raw.get(f) in (None, ""):
            raise ValueError(f"'{f}' is missing")
    record_id = _text(raw, "recordId") or ""
    origin = _text(raw, "origin") or default_origin
    try:
        msisdn = normalize_number(_text(raw, "msisdn") or "")
    except RatingRuleError as exc:
        raise ValueError(f"'msisdn': {exc}") from exc
    event_time = parse_time(_text(raw, "eventTime") or "")
    usage_type = _text(raw, "usageType") or ""
    if usage_type not in USAGE_TYPES:
        raise ValueError(f"'usageType' '{usage_type}' is not one of {', '.join(USAGE_TYPES)}")
    q = raw["quantity"]
    unit = raw.get("unit")
    if (unit is None or unit == BASE_UNIT[usage_type]) and (
            (type(q) is str and q.isascii() and q.isdigit()) or (type(q) is int and q >= 0)):  # the common case
        base = Decimal(int(q))
        if base > MAX_QUANTITY:
            raise ValueError(f"'quantity' {q} {BASE_UNIT[usage_type]} is implausibly large")
    else:
        base = _quantity(raw, q, usage_type)
    direction = _text(raw, "direction") or "originating"
    if direction not in DIRECTIONS:
        raise ValueError(f"'direction' '{direction}' is not one of {', '.join(DIRECTIONS)}")
    if direction == "terminating" and usage_type not in ("voice", "sms"):
        raise ValueError(f"'direction' terminating is for voice and SMS usage, not {usage_type}")
    called, calling = _text(raw, "calledNumber"), _text(raw, "callingNumber")
    if called is not None:
        try:
            called = normalize_number(called)
        except RatingRuleError as exc:
            raise ValueError(f"'calledNumber': {exc}") from exc
    elif usage_type in ("voice", "sms") and direction == "originating":
        raise ValueError(f"'calledNumber' is required for {usage_type} usage")
    if calling is not None:
        if direction != "terminating":
            raise ValueError("'callingNumber' is for terminating usage ('direction': terminating)")
        try:
            calling = normalize_number(calling)
        except RatingRuleError as exc:
            raise ValueError(f"'callingNumber': {exc}") from exc
    network = _text(raw, "visitedNetwork")
    if network is not None and not _PLMN.match(network):
        raise ValueError(f"'visitedNetwork' '{network}' is not a PLMN id (MCC and MNC, 5 or 6 digits)")
    visited = _text(raw, "visitedCountry")
    if visited is not None:
        visited = visited.upper()
        if not _COUNTRY.match(visited):
            raise ValueError(f"'visitedCountry' '{visited}' is not an ISO 3166 alpha-2 code")
    imsi = _text(raw, "imsi")
    if imsi is not None and not (imsi.isdigit() and 6 <= len(imsi) <= 15):
        raise ValueError(f"'imsi' '{imsi}' is not 6 to 15 digits")
    session_id = _text(raw, "sessionId")
    part, last = None, False
    if session_id is not None:
        try:
            part = int(str(raw.get("partNumber")))
        except ValueError as exc:
            raise ValueError("'partNumber' (1, 2, ...) is required with 'sessionId'") from exc
        if part < 1:
            raise ValueError(f"'partNumber' {part} must be 1 or more")
        flag = raw.get("lastPart", False)
        if isinstance(flag, str):
            if flag.strip().lower() not in ("true", "false", "1", "0", ""):
                raise ValueError(f"'lastPart' '{flag}' is not true or false")
            flag = flag.strip().lower() in ("true", "1")
        if not isinstance(flag, bool):
            raise ValueError("'lastPart' must be true or false")
        last = flag
    elif raw.get("partNumber") not in (None, "") or raw.get("lastPart") not in (None, ""):
        raise ValueError("'partNumber' and 'lastPart' need a 'sessionId'")
    return UsageRecord(key=record_key(origin, record_id), record_id=record_id, origin=origin, msisdn=msisdn,
                       event_time=event_time, usage_type=usage_type, quantity=int(base), called_number=called,
                       visited_country=visited, apn=_text(raw, "apn"), imsi=imsi, session_id=session_id,
                       part_number=part, last_part=last, direction=direction, calling_number=calling,
                       visited_network=network)


def _quantity(raw: dict[str, Any], q: Any, usage_type: str) -> Decimal:
    """The quantity in the usage type's base unit (a whole number), from the quantity and unit fields."""
    if isinstance(q, bool):
        raise ValueError("'quantity' must be a number")
    try:
        amount = Decimal(str(q).strip())
    except InvalidOperation as exc:
        raise ValueError(f"'quantity' '{q}' is not a number") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"'quantity' {q} must be a non-negative number")
    unit = _text(raw, "unit") or BASE_UNIT[usage_type]
    try:
        unit = canonical_unit(unit)
    except UnitError as exc:
        raise ValueError(f"'unit': {exc}") from exc
    if dimension(unit) != DIMENSION[usage_type]:
        raise ValueError(f"'unit' {unit} does not measure {usage_type} usage")
    base = convert(amount, unit, BASE_UNIT[usage_type])
    if base != base.to_integral_value():
        raise ValueError(f"'quantity' {q} {unit} is not a whole number of {BASE_UNIT[usage_type]}")
    if base > MAX_QUANTITY:
        raise ValueError(f"'quantity' {q} {unit} is implausibly large")
    return base


def parse_file(name: str, data: bytes, source: str) -> tuple[list[UsageRecord], list[Rejection]]:
    """Every record of a file, normalized or rejected with its reason."""
    return parse_lines(read_raw(name, data), source)


def parse_lines(lines: list[tuple[int, dict[str, Any] | str]], source: str,
                ) -> tuple[list[UsageRecord], list[Rejection]]:
    """Records (line number, raw fields or the line's error) normalized or rejected with their reason."""
    records: list[UsageRecord] = []
    rejected: list[Rejection] = []
    for line, raw in lines:
        if isinstance(raw, str):
            rejected.append(Rejection(line, {}, raw))
            continue
        try:
            records.append(normalize(raw, source))
        except ValueError as exc:
            rid, origin = raw.get("recordId"), raw.get("origin") or source
            key = record_key(str(origin), str(rid)) if rid not in (None, "") else None
            rejected.append(Rejection(line, {k: _jsonable(v) for k, v in raw.items()}, str(exc), key))
    return records, rejected


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""The columnar CSV reader of the file pipeline: a CSV usage file read into Polars columns, validated and normalized
as expressions, for the records that are plainly valid; every other line is handed back as its raw fields for
``layouts.normalize``, which accepts or rejects it with its reason exactly as before.

A line is taken here only when the checks below *prove* that ``layouts.normalize`` would accept it and give the
same normalized values (ASCII digits and the common ISO 8601 forms; no surrounding spaces, no unit conversion, no
partial-record fields); anything else — however valid — goes the scalar way. Files with quoted fields, NUL or
stray carriage returns, or a header naming unknown or repeated columns, are read by ``layouts.read_raw`` as a whole
(``read_csv`` returns None). The behaviour is the scalar reader's: only the speed differs.

Pure: no I/O beyond the bytes handed in.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from openbss.pricing.usage import BASE_UNIT
from openbss.rating.layouts import DIRECTIONS, FIELD_SET, MAX_QUANTITY, REQUIRED, USAGE_TYPES

#: the normalized columns of the records read here (the fields of ``layouts.UsageRecord`` but the partial ones)
COLUMNS = ("line", "key", "record_id", "origin", "msisdn", "event_time", "usage_type", "quantity", "called_number",
           "visited_country", "apn", "imsi", "direction", "calling_number", "visited_network")
#: free text without surrounding white space (printable ASCII at both ends), nor backslash or control characters (the
#: stored document's JSON is written here without escaping)
_TEXT_ENDS = r"^[!-\[\]-~]([^\\\x00-\x1f]*[!-\[\]-~])?$"
_NUMBER = r"^(\+[0-9]+|[0-9]+)$"
_TIME = (r"^[0-9]{4}-(0[1-9]|1[0-2])-[0-3][0-9]T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{3}|\.[0-9]{6})?"
         r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")


@dataclass
class CsvColumns:
    """The records read as columns (``COLUMNS``; ``event_time`` aware UTC), and the other lines as (line number,
    raw fields or the error of the line) for the scalar reader."""

    frame: pl.DataFrame
    others: list[tuple[int, dict[str, Any] | str]]


def _number(col: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(acceptable, E.164 digits) of a number column as ``pricing.rating.normalize_number`` gives them."""
    digits = (pl.when(col.str.starts_with("+")).then(col.str.slice(1))
              .when(col.str.starts_with("00")).then(col.str.slice(2)).otherwise(col))
    return col.str.contains(_NUMBER) & (digits.str.len_bytes() > 0), digits


def read_csv(data: bytes, source: str) -> CsvColumns | None:
    """The records of a CSV usage file as columns, or None when the file is for ``layouts.read_raw`` as a whole."""
    if b'"' in data or b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "\r" in text:
        if text.count("\r") != text.count("\r\n"):
            return None
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    header = lines[0].split(",")
    if (not header or len(set(header)) != len(header) or not FIELD_SET.issuperset(header)
            or any(f not in header for f in REQUIRED)):
        return None
    width = len(header)
    body = pl.DataFrame({"text": pl.Series(lines[1:], dtype=pl.String)}).with_row_index("line", offset=2)
    body = body.filter(pl.col("text") != "")  # the csv module skips empty lines (their numbers still count)
    body = body.with_columns((pl.col("text").str.count_matches(",", literal=True) + 1).alias("_n"))
    even = body.filter(pl.col("_n") == width)
    ragged = body.filter(pl.col("_n") != width)
    cols = even.select(pl.col("line").cast(pl.Int64), pl.col("text").str.split_exact(",", width - 1)
                       .struct.rename_fields(header).alias("_fields")).unnest("_fields")
    for name in FIELD_SET:
        if name not in cols.columns:
            cols = cols.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    cols = cols.with_columns(pl.when(pl.col(n) != "").then(pl.col(n)).alias(n) for n in FIELD_SET)
    c = pl.col
    msisdn_ok, msisdn = _number(c("msisdn"))
    called_ok, called = _number(c("calledNumber"))
    calling_ok, calling = _number(c("callingNumber"))
    direction = c("direction").fill_null("originating")
    base_unit = c("usageType").replace_strict(BASE_UNIT, default=None, return_dtype=pl.String)
    stamp = (pl.when(c("eventTime").str.ends_with("Z"))
             .then(c("eventTime").str.slice(0, c("eventTime").str.len_bytes() - 1) + "+00:00")
             .otherwise(c("eventTime")))
    moment = stamp.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC", strict=False)
    quantity = c("quantity").cast(pl.Int64, strict=False)

    def text_ok(name: str) -> pl.Expr:
        return c(name).is_null() | c(name).str.contains(_TEXT_ENDS)

    fast = (
        c("recordId").is_not_null() & c("recordId").str.contains(_TEXT_ENDS) & text_ok("origin") & text_ok("apn")
        & c("msisdn").is_not_null() & msisdn_ok
        & c("eventTime").is_not_null() & c("eventTime").str.contains(_TIME)
        & c("usageType").is_in(list(USAGE_TYPES))
        & c("quantity").str.contains(r"^[0-9]{1,16}$") & (quantity <= MAX_QUANTITY)
        & (c("unit").is_null() | (c("unit") == base_unit))
        & direction.is_in(list(DIRECTIONS))
        & ((direction == "originating") | c("usageType").is_in(["voice", "sms"]))
        & pl.when(c("calledNumber").is_not_null()).then(called_ok)
        .otherwise(~(c("usageType").is_in(["voice", "sms"]) & (direction == "originating")))
        & (c("callingNumber").is_null() | (calling_ok & (direction == "terminating")))
        & (c("visitedNetwork").is_null() | c("visitedNetwork").str.contains(r"^[0-9]{5,6}$"))
        & (c("visitedCountry").is_null() | c("visitedCountry").str.contains(r"^[A-Za-z]{2}$"))
        & (c("imsi").is_null() | c("imsi").str.contains(r"^[0-9]{6,15}$"))
        & c("sessionId").is_null() & c("partNumber").is_null() & c("lastPart").is_null()
    ).fill_null(False)
    cols = cols.with_columns(fast.alias("_fast"), moment.alias("_moment"))
    cols = cols.with_columns((c("_fast") & c("_moment").is_not_null()).alias("_fast"))
    good = cols.filter(c("_fast"))
    frame = good.select(
        c("line"),
        c("recordId").alias("record_id"),
        c("origin").fill_null(pl.lit(source)).alias("origin"),
        msisdn.alias("msisdn"),
        c("_moment").alias("event_time"),
        c("usageType").alias("usage_type"),
        quantity.alias("quantity"),
        called.alias("called_number"),
        c("visitedCountry").str.to_uppercase().alias("visited_country"),
        c("apn"), c("imsi"),
        direction.alias("direction"),
        calling.alias("calling_number"),
        c("visitedNetwork").alias("visited_network"),
    )
    keys = [hashlib.sha256(f"{o}\x1f{r}".encode()).hexdigest()
            for o, r in zip(frame["origin"].to_list(), frame["record_id"].to_list(), strict=True)]
    frame = frame.with_columns(pl.Series("key", keys, dtype=pl.String)).select(COLUMNS)
    # the other lines, as the csv module reads them (no quotes here: a line is its fields)
    others: list[tuple[int, dict[str, Any] | str]] = []
    rest = pl.concat([cols.filter(~c("_fast")).select("line"), ragged.select(pl.col("line").cast(pl.Int64))])
    slow = body.filter(pl.col("line").is_in(rest["line"])).sort("line")
    for n, line in zip(slow["line"].to_list(), slow["text"].to_list(), strict=True):
        values = next(csv.reader([line]))
        if len(values) > width:
            others.append((n, "more values than header columns"))
            continue
        others.append((n, {k: v for k, v in zip(header, values, strict=False) if v not in (None, "")}))
    return CsvColumns(frame, others)


# --- storage: typed columns in, the TMF635 usage documents written as JSON text by Polars ---------------------------
#: the columns COPY'd into the temporary table (name, SQL type), in the order of ``store_frame``
STORE_COLUMNS = [
    ("id", "text"), ("key", "text"), ("body", "text"), ("account_id", "text"), ("usage_type", "text"),
    ("units", "bigint"), ("allowance_units", "bigint"), ("amount_minor", "bigint"), ("currency", "text"),
    ("usage_date", "timestamptz"),
]
#: the stored document from the COPY'd columns
BODY_SQL = "body::jsonb"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _lit(value: str) -> pl.Expr:
    return pl.lit(value, dtype=pl.String)


def _amount(minor: pl.Expr, digits: pl.Expr) -> pl.Expr:
    """``from_minor`` as the stored JSON renders it: an integer when whole, else the shortest decimal."""
    scale = pl.lit(10, dtype=pl.Int64).pow(digits).cast(pl.Int64)
    whole = (minor // scale).cast(pl.String)
    fraction = (minor % scale).cast(pl.String).str.zfill(digits).str.strip_chars_end("0")
    return pl.when(fraction.str.len_bytes() > 0).then(whole + _lit(".") + fraction).otherwise(whole)


def store_frame(frame: pl.DataFrame, *, ids: list[str], href: str, rating_date: str, file_id: str | None,
                specs: dict[str, Any], rates: list[dict[str, Any]], unit_prices: list[str],
                minor_digits: list[int]) -> bytes:
    """The text COPY'd for ``STORE_COLUMNS`` (PostgreSQL's text format: tab-separated, ``\\N`` for null): each rated
    record's TMF635 usage document as ``RatingService._usage_row`` builds it, written as JSON text column by column
    (one ``concat_str`` of literal and column pieces: no Python per record).

    Columns in: those of ``read_csv`` and ``account_id``, ``rate`` (index into ``rates``), ``billable``,
    ``allowance_units``, ``amount_minor``, ``currency``, ``period``, ``unit``, ``spec`` (usage specification name),
    and as JSON text (or null) ``party_json``, ``party_type_json``, ``product_json``."""
    c = pl.col

    def per_rate(values: list[Any], dtype: Any = pl.String) -> pl.Expr:
        return pl.lit(pl.Series(values, dtype=dtype)).gather(c("rate"))

    def char(name: str, value: pl.Expr, value_type: str = "string") -> list[pl.Expr]:
        head = f'{{"name":"{name}","valueType":"{value_type}","value":'
        if value_type == "string":
            return [_lit(head + '"'), value, _lit('"}')]
        return [_lit(head), value.cast(pl.String), _lit("}")]

    def optional(name: str, value: pl.Expr) -> pl.Expr:
        return (pl.when(value.is_not_null())
                .then(pl.concat_str([_lit(f',{{"name":"{name}","valueType":"string","value":"'), value, _lit('"}')]))
                .otherwise(_lit("")))

    def optional_rate(name: str, key: str) -> pl.Expr:
        values = [f',{{"name":"{name}","valueType":"string","value":{_json(r.get(key))}}}' if r.get(key) else ""
                  for r in rates]
        return per_rate(values)

    tag = (pl.when((c("allowance_units") != 0) & (c("amount_minor") == 0)).then(_lit("included usage"))
           .when(c("allowance_units") != 0).then(_lit("non included usage")).otherwise(_lit("usage")))
    spec_json = {name: f',"usageSpecification":{_json(ref)}' for name, ref in specs.items()}
    parts: list[pl.Expr] = [
        _lit('{"id":"'), c("id"), _lit(f'","href":"{href}'), c("id"), _lit('","@type":"Usage","usageDate":"'),
        c("event_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"), _lit('","usageType":"'), c("usage_type"),
        _lit('","status":"rated","description":"'), c("usage_type"), _lit(" "), c("quantity").cast(pl.String),
        _lit(" "), c("unit"), _lit('","usageCharacteristic":['),
        *char("recordId", c("record_id")), _lit(","), *char("origin", c("origin")), _lit(","),
        *char("subscriber", c("msisdn")), _lit(","), *char("quantity", c("quantity"), "integer"), _lit(","),
        *char("unit", c("unit")), _lit(","), *char("billableQuantity", c("billable"), "integer"), _lit(","),
        *char("allowanceQuantity", c("allowance_units"), "integer"), _lit(","),
        *char("billingPeriod", c("period")), _lit(","),
        _lit('{"name":"unitPrice","valueType":"string","value":"'), per_rate(unit_prices), _lit(" "), c("unit"),
        _lit('"}'),
        optional("calledParty", c("called_number")), optional("callingParty", c("calling_number")),
        optional("direction", pl.when(c("direction") != "originating").then(c("direction"))),
        optional("visitedNetwork", c("visited_network")), optional("visitedCountry", c("visited_country")),
        optional("apn", c("apn")), optional("imsi", c("imsi")),
        _lit(f',{{"name":"usageFile","valueType":"string","value":{_json(file_id)}}}' if file_id else ""),
        optional_rate("destinationZone", "zone"), optional_rate("timeBand", "band"),
        optional_rate("roamingZone", "roaming"), optional_rate("destinationPrefix", "prefix"),
        _lit(f'],"ratedProductUsage":[{{"@type":"RatedProductUsage","ratingDate":{_json(rating_date)},'
             '"usageRatingTag":"'), tag,
        _lit('","isBilled":false,"ratingAmountType":"total","offerTariffType":'),
        per_rate([_json(r.get("band") or "flat") for r in rates]),
        _lit(',"taxExcludedRatingAmount":{"unit":"'), c("currency"), _lit('","value":'),
        _amount(c("amount_minor"), per_rate(minor_digits, pl.Int64)), _lit("}"),
        pl.when(c("product_json").is_not_null())
        .then(pl.concat_str([_lit(',"productRef":{"id":'), c("product_json"), _lit(',"@referredType":"Product"}')]))
        .otherwise(_lit("")),
        _lit("}]"),
        c("spec").replace_strict(spec_json, default="", return_dtype=pl.String),
        pl.when(c("party_json").is_not_null())
        .then(pl.concat_str([_lit(',"relatedParty":[{"id":'), c("party_json"),
                             _lit(',"role":"customer","@referredType":'), c("party_type_json"), _lit("}]")]))
        .otherwise(_lit("")),
        _lit("}"),
    ]
    # text format: the document's backslashes (JSON escapes of the references) doubled; no tab or newline in it
    body = pl.concat_str(parts).str.replace_all("\\", "\\\\", literal=True)
    return frame.with_columns(pl.Series("id", ids, dtype=pl.String)).select(
        "id", (_lit("cdr:") + c("key")).alias("key"), body.alias("body"), "account_id", "usage_type",
        c("quantity").alias("units"), "allowance_units", "amount_minor", "currency",
        c("event_time").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00").alias("usage_date"),
    ).write_csv(include_header=False, separator="\t", quote_style="never", null_value="\\N").encode()

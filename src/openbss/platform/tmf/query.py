"""TMF630 list queries: paging, ``fields`` projection, ``sort`` and attribute filters.

A filter is parsed once against the resource's specification (unknown attributes and values of the wrong type
are refused with 400) and can then be compiled to SQL over the resource's JSONB document, or evaluated in Python
over an event (notification hubs use the same syntax in their ``query``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import ARRAY, Boolean, ColumnElement, Text, cast, literal
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH

from openbss.platform.db import MAX_OFFSET
from openbss.platform.errors import BadRequest
from openbss.platform.tmf.spec import AttributeType, Spec, format_datetime

OPERATORS = {"eq": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
RESERVED_PARAMS = {"offset", "limit", "fields", "sort", "depth", "expand"}
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Filter:
    path: str
    op: str
    values: tuple[Any, ...]
    type: AttributeType

    def jsonpath(self) -> str:
        """A jsonpath predicate with the values inlined as JSON literals (parsed, typed, escaped)."""
        keys = "".join(f".{json.dumps(k)}" for k in self.path.split("."))
        sym = OPERATORS[self.op]
        preds = " || ".join(f"@ {sym} {json.dumps(v)}" for v in self.values)
        return f"${keys} ? ({preds})"

    def matches(self, document: Any) -> bool:
        for candidate in _values_at(document, self.path.split(".")):
            for v in self.values:
                if _compare(candidate, self.op, v):
                    return True
        return False


@dataclass
class ListQuery:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    fields: tuple[str, ...] | None = None
    sort: tuple[tuple[str, bool], ...] = ()  # (path, descending)
    filters: list[Filter] = field(default_factory=list)

    def matches(self, document: Any) -> bool:
        return all(f.matches(document) for f in self.filters)


def _values_at(document: Any, parts: list[str]) -> list[Any]:
    current = [document]
    for part in parts:
        nxt: list[Any] = []
        for item in current:
            items = item if isinstance(item, list) else [item]
            for it in items:
                if isinstance(it, dict) and part in it:
                    nxt.append(it[part])
        current = nxt
    flat: list[Any] = []
    for item in current:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


def _compare(candidate: Any, op: str, value: Any) -> bool:
    try:
        if isinstance(value, bool) or isinstance(candidate, bool):
            if not (isinstance(value, bool) and isinstance(candidate, bool)):
                return False
        elif isinstance(value, int | float | Decimal):
            if isinstance(candidate, str | dict | list) or candidate is None:
                return False
            candidate, value = Decimal(str(candidate)), Decimal(str(value))
        elif isinstance(value, str) and not isinstance(candidate, str):
            return False
        if op == "eq":
            return bool(candidate == value)
        if op == "gt":
            return bool(candidate > value)
        if op == "gte":
            return bool(candidate >= value)
        if op == "lt":
            return bool(candidate < value)
        if op == "lte":
            return bool(candidate <= value)
    except (TypeError, InvalidOperation):
        return False
    return False


def coerce(raw: str, attr: AttributeType, name: str) -> Any:
    kind = attr.kind
    if "\x00" in raw:
        raise BadRequest(f"filter '{name}': NUL characters are not allowed", code="INVALID_FILTER")
    try:
        if kind == "string":
            if attr.enum and raw not in attr.enum:
                raise BadRequest(
                    f"filter '{name}': '{raw}' is not one of {', '.join(attr.enum)}", code="INVALID_FILTER"
                )
            return raw
        if kind == "datetime":
            return format_datetime(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        if kind == "integer":
            return int(raw)
        if kind == "number":
            d = Decimal(raw)
            if not d.is_finite():
                raise ValueError(raw)
            return int(d) if d == d.to_integral_value() else float(d)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
    except (ValueError, InvalidOperation, OverflowError) as exc:
        raise BadRequest(f"filter '{name}': '{raw}' is not a valid {kind}", code="INVALID_FILTER") from exc
    return raw


def _int_param(params: dict[str, str], name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be an integer, got '{raw}'", code="INVALID_QUERY") from exc
    if value < minimum or (maximum is not None and value > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise BadRequest(f"'{name}' must be at least {minimum}{bound}", code="INVALID_QUERY")
    return value


def parse_filter_pairs(pairs: list[tuple[str, str]], spec: Spec, definition: str,
                       extra_attributes: dict[str, AttributeType] | None = None) -> list[Filter]:
    filters: list[Filter] = []
    for key, raw in pairs:
        path, op = key, "eq"
        for candidate in ("gte", "lte", "gt", "lt", "eq"):
            if key.endswith("." + candidate):
                path, op = key[: -len(candidate) - 1], candidate
                break
        attr = (extra_attributes or {}).get(path) or spec.attribute(definition, path)
        if attr is None:
            raise BadRequest(f"unknown filter attribute '{path}'", code="INVALID_FILTER")
        if attr.kind in ("object", "any"):
            raise BadRequest(f"filter attribute '{path}' is not a simple value", code="INVALID_FILTER")
        if op != "eq" and attr.kind == "boolean":
            raise BadRequest(f"filter '{key}': a boolean cannot be compared with '{op}'", code="INVALID_FILTER")
        values = tuple(coerce(v, attr, path) for v in raw.split(",")) if op == "eq" else (coerce(raw, attr, path),)
        filters.append(Filter(path, op, values, attr))
    return filters


def parse_list_query(query_string: str, spec: Spec, definition: str,
                     extra_attributes: dict[str, AttributeType] | None = None) -> ListQuery:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    params = dict(pairs)
    q = ListQuery(
        offset=_int_param(params, "offset", 0, 0, MAX_OFFSET),
        limit=_int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )
    if params.get("fields"):
        names = tuple(f.strip() for f in params["fields"].split(",") if f.strip())
        for name in names:
            top = name.split(".")[0]
            if top not in ("id", "href") and spec.attribute(definition, top) is None:
                raise BadRequest(f"unknown attribute '{name}' in fields", code="INVALID_FIELDS")
        q.fields = names
    if params.get("sort"):
        sort: list[tuple[str, bool]] = []
        for item in params["sort"].split(","):
            item = item.strip()
            desc = item.startswith("-")
            path = item.lstrip("+-")
            attr = (extra_attributes or {}).get(path) or spec.attribute(definition, path)
            if attr is None:
                raise BadRequest(f"unknown sort attribute '{path}'", code="INVALID_SORT")
            if attr.through_array or attr.kind in ("object", "any"):
                raise BadRequest(f"cannot sort by '{path}': not a single value", code="INVALID_SORT")
            sort.append((path, desc))
        q.sort = tuple(sort)
    q.filters = parse_filter_pairs(
        [(k, v) for k, v in pairs if k not in RESERVED_PARAMS], spec, definition, extra_attributes
    )
    return q


def sql_condition(flt: Filter, column: Any) -> ColumnElement[bool]:
    """``body @? '<jsonpath>'``: served by a GIN (jsonb_path_ops) index for equality."""
    cond: ColumnElement[bool] = column.op("@?", return_type=Boolean)(cast(literal(flt.jsonpath()), JSONPATH))
    return cond


def sql_sort_key(path: str, column: Any) -> ColumnElement[Any]:
    key: ColumnElement[Any] = column.op("#>", return_type=JSONB)(cast(literal(path.split(".")), ARRAY(Text)))
    return key


def project(document: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    if not fields:
        return document
    keep = {f.split(".")[0] for f in fields} | {"id", "href", "@type"}
    return {k: v for k, v in document.items() if k in keep}

"""The TM Forum specifications as the contract.

The official OpenAPI files are bundled in ``specs/``. From a definition (``Individual_Create``) this module builds
the Pydantic model that validates request bodies, so mandatory attributes, types and enumerations are exactly the
specification's; and it answers the type of a dotted attribute path (``relatedParty.id``) for filters and sorting.
"""

from __future__ import annotations

import json
import keyword
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    create_model,
    model_validator,
)

from openbss.platform.db import format_datetime as format_datetime  # re-exported (defined with utcnow)

SPEC_DIR = Path(__file__).parent / "specs"


def _strict_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is expected, not a boolean")
    if isinstance(value, float) and value != value:  # NaN
        raise ValueError("NaN is not a number")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("date-time out of range") from exc


TmfDateTime = Annotated[datetime, AfterValidator(_utc), PlainSerializer(format_datetime, return_type=str)]


#: the most items an array attribute of a request body may hold (each item is validated, stored and indexed)
MAX_ARRAY_ITEMS = 1000


def _bad_text(text: str) -> str | None:
    """What makes ``text`` unstorable: a NUL character, or a lone UTF-16 surrogate (JSON's ``\\ud800``
    escapes decode to code points that are not Unicode text)."""
    if "\x00" in text:
        return "contains a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone UTF-16 surrogate (U+{ord(text[exc.start]):04X}): text must be valid Unicode"
    return None


def find_bad_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (value or key) of a JSON value that cannot be stored as text: its path and the reason."""
    if isinstance(value, str):
        problem = _bad_text(value)
        return (path or "value", problem) if problem else None
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            problem = _bad_text(str(k))
            if problem:
                return sub, f"(the attribute name) {problem}"
            found = find_bad_text(v, sub)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = find_bad_text(v, f"{path}[{i}]")
            if found:
                return found
    return None


def find_nul(value: Any, path: str = "") -> str | None:
    found = find_bad_text(value, path)
    return found[0] if found and "NUL" in found[1] else None


TmfNumber = Annotated[
    Decimal,
    BeforeValidator(_strict_number),
    Field(allow_inf_nan=False),
    PlainSerializer(lambda d: int(d) if d == d.to_integral_value() else float(d), return_type=float),
]

_RESERVED = set(dir(BaseModel)) | {"model_config", "model_fields"}


def _field_name(prop: str) -> str:
    name = prop.replace("@", "at_").replace("-", "_").replace(".", "_")
    if keyword.iskeyword(name) or name in _RESERVED or name.startswith("_"):
        name = f"{name}_"
    return name


class TmfModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        found = find_bad_text(data)
        if found:
            raise ValueError(f"'{found[0]}' {found[1]}")
        return data

    def to_doc(self) -> dict[str, Any]:
        """The JSON document of the attributes the caller set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


@dataclass(frozen=True)
class AttributeType:
    """What a dotted attribute path holds: a scalar kind, whether it crosses an array, and enum values."""

    kind: str  # string | datetime | number | integer | boolean | object | any
    through_array: bool = False
    enum: tuple[str, ...] | None = None


class Spec:
    """One TM Forum API specification file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        source = (SPEC_DIR / filename).read_text()
        if filename.endswith((".yaml", ".yml")):  # OpenAPI 3 (TMF v5): the schemas are the definitions
            import yaml

            self.document: dict[str, Any] = yaml.safe_load(source)
            self.definitions: dict[str, Any] = self.document["components"]["schemas"]
        else:  # Swagger 2.0
            self.document = json.loads(source)
            self.definitions = self.document["definitions"]
        self._models: dict[str, type[BaseModel]] = {}

    @property
    def base_path(self) -> str:
        return str(self.document.get("basePath", "/")).rstrip("/")

    # --- Pydantic models -------------------------------------------------------------------------------
    def model(self, name: str) -> type[BaseModel]:
        if name not in self._models:
            self._models[name] = self._build(name)
        return self._models[name]

    def _properties(self, definition: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        props: dict[str, Any] = {}
        required: set[str] = set(definition.get("required", []))
        for part in definition.get("allOf", []):
            if "$ref" in part:
                p, r = self._properties(self.definitions[part["$ref"].split("/")[-1]])
            else:
                p, r = self._properties(part)
            props.update(p)
            required |= r
        props.update(definition.get("properties", {}))
        return props, required

    def _build(self, name: str) -> type[BaseModel]:
        definition = self.definitions[name]
        # Register a forward name first so that recursive definitions resolve.
        props, required = self._properties(definition)
        fields: dict[str, Any] = {}
        for prop, schema in props.items():
            annotation = self._annotation(schema)
            extra: dict[str, Any] = {"alias": prop, "description": schema.get("description")}
            if schema.get("minItems"):
                extra["min_length"] = schema["minItems"]
            if prop in required:
                fields[_field_name(prop)] = (annotation, Field(**extra))
            else:
                fields[_field_name(prop)] = (annotation | None, Field(default=None, **extra))
        model = create_model(name, __base__=TmfModel, **fields)
        model.__doc__ = definition.get("description")
        return model

    def _annotation(self, schema: dict[str, Any]) -> Any:
        if "$ref" in schema:
            ref = schema["$ref"].split("/")[-1]
            target = self.definitions[ref]
            if not target or (not target.get("properties") and not target.get("allOf")
                              and target.get("type") in (None, "object") and "enum" not in target):
                return Any
            if "enum" in target or target.get("type") in ("string", "number", "integer", "boolean"):
                return self._annotation(target)
            return self._lazy_model(ref)
        if "enum" in schema:
            return Literal[tuple(schema["enum"])]
        kind = schema.get("type")
        if kind == "array":
            item = self._annotation(schema.get("items", {}))
            return Annotated[list[item], Field(max_length=MAX_ARRAY_ITEMS)]  # type: ignore[valid-type]
        if kind == "string":
            if schema.get("format") == "date-time":
                return TmfDateTime
            return str
        if kind == "number":
            return TmfNumber
        if kind == "integer":
            return int
        if kind == "boolean":
            return bool
        if kind == "object":
            return dict[str, Any]
        return Any

    def _lazy_model(self, ref: str) -> Any:
        if ref in self._models:
            return self._models[ref]
        if ref in _building:
            return Any  # recursive reference: accept any object at the recursion point
        _building.add(ref)
        try:
            return self.model(ref)
        finally:
            _building.discard(ref)

    # --- attribute paths ---------------------------------------------------------------------------------
    def attribute(self, definition: str, path: str) -> AttributeType | None:
        """The type of ``path`` (dotted) within ``definition``; None when the path does not exist."""
        schema: dict[str, Any] = {"$ref": f"#/definitions/{definition}"}
        through_array = False
        for part in path.split("."):
            schema, arr = self._deref(schema)
            through_array |= arr
            props, _ = self._properties(schema)
            if part not in props:
                return None
            schema = props[part]
        schema, arr = self._deref(schema)
        through_array |= arr
        if "enum" in schema:
            return AttributeType("string", through_array, tuple(str(v) for v in schema["enum"]))
        kind = schema.get("type")
        if kind == "string" and schema.get("format") == "date-time":
            return AttributeType("datetime", through_array)
        if kind in ("string", "number", "integer", "boolean"):
            return AttributeType(kind, through_array)
        if schema.get("properties") or schema.get("allOf"):
            return AttributeType("object", through_array)
        return AttributeType("any", through_array)

    def _deref(self, schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        through_array = False
        for _ in range(10):
            if "$ref" in schema:
                schema = self.definitions[schema["$ref"].split("/")[-1]]
            elif schema.get("type") == "array":
                through_array = True
                schema = schema.get("items", {})
            else:
                break
        return schema, through_array

    def json_schema(self, definition: str) -> dict[str, Any]:
        """A JSON Schema (draft 4) of a definition, for contract tests."""
        return {"definitions": self.definitions, "$ref": f"#/definitions/{definition}"}


_building: set[str] = set()


@cache
def load_spec(filename: str) -> Spec:
    return Spec(filename)

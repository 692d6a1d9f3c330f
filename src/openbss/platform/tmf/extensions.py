"""TMF630 extensions: attributes a specification lacks travel in a declared subtype, never as unknown attributes.

A representation carrying an extension attribute names its subtype: ``@type`` (the extension, e.g.
``OpenBSSBucket``), ``@baseType`` (the specification's resource, ``Bucket``) and ``@schemaLocation`` (the URL of
the extension's JSON Schema, served by the API at ``/tmf-api/schema/{name}.schema.json``: the base definition of
the published specification plus the extension's attributes). A client that knows only the specification reads
the base attributes and may ignore the rest; one that follows ``@schemaLocation`` validates everything.
"""
# No ``from __future__ import annotations``: FastAPI reads the handler's annotations at runtime.

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openbss.platform.errors import NotFound
from openbss.platform.runtime import runtime
from openbss.platform.tmf.spec import load_spec

SCHEMA_PATH = "/tmf-api/schema"


def base_type(doc: dict[str, Any]) -> Any:
    """The specification's type of a representation: its ``@baseType`` when it is an extension subtype."""
    return doc.get("@baseType") or doc.get("@type")


@dataclass(frozen=True)
class Extension:
    name: str  # the subtype, e.g. "OpenBSSBucket"
    base: str  # the specification's definition, e.g. "Bucket"
    spec_file: str  # the specification that defines ``base``
    description: str
    #: the extension's attributes: name → JSON Schema (draft 4)
    properties: dict[str, Any] = field(default_factory=dict)
    #: definitions the attributes' schemas refer to (``#/definitions/...``) beyond the specification's
    definitions: dict[str, Any] = field(default_factory=dict)

    def location(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}{SCHEMA_PATH}/{self.name}.schema.json"

    def mark(self, doc: dict[str, Any], base_url: str) -> dict[str, Any]:
        """Declare the subtype on a representation that carries extension attributes (in place; returns it)."""
        doc["@type"] = self.name
        doc["@baseType"] = self.base
        doc["@schemaLocation"] = self.location(base_url)
        return doc

    def mark_if_extended(self, doc: dict[str, Any], base_url: str) -> dict[str, Any]:
        """The subtype when the document carries one of the extension's attributes, else the base type (a
        document that lost its last extension attribute is a plain ``base`` again)."""
        if any(k in doc for k in self.properties):
            return self.mark(doc, base_url)
        if doc.get("@type") == self.name:
            doc["@type"] = self.base
            doc.pop("@baseType", None)
            doc.pop("@schemaLocation", None)
        return doc

    def schema(self, base_url: str) -> dict[str, Any]:
        """The extension's JSON Schema: the base definition (with the specification's definitions it refers to)
        and the extension's attributes."""
        spec = load_spec(self.spec_file)
        return {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "id": self.location(base_url),
            "title": self.name,
            "description": f"{self.description} A subtype of {self.base} ({self.spec_file}).",
            "definitions": {**self.definitions, **spec.definitions},
            "allOf": [{"$ref": f"#/definitions/{self.base}"},
                      {"type": "object", "properties": dict(self.properties)}],
        }


def schema_router(extensions: Iterable[Extension]) -> APIRouter:
    """``GET /tmf-api/schema/{name}.schema.json``: the published schema of each extension (public: no token)."""
    by_name = {e.name: e for e in extensions}
    router = APIRouter(prefix=SCHEMA_PATH, tags=["Extension schemas"])

    async def extension_schema(request: Request, name: str) -> JSONResponse:
        ext = by_name.get(name)
        if ext is None:
            raise NotFound(f"no extension schema '{name}' (known: {', '.join(sorted(by_name)) or 'none'})")
        return JSONResponse(ext.schema(runtime(request).settings.public_url))

    router.add_api_route("/{name}.schema.json", extension_schema, methods=["GET"],
                         summary="The JSON Schema of an extension subtype (@schemaLocation)")
    return router

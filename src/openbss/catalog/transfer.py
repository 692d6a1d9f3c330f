"""Import and export of a whole catalog (TMF620 importJob / exportJob).

An export is one JSON document (``openbss-catalog`` format 1) holding every catalog object of the tenant in
dependency order, with each versioned object's lineage. It is produced synchronously when the export job is
created, kept with the job, and downloadable at ``/api/catalog/v1/exportJob/{id}/content`` (the job's ``url``).

An import job's ``url`` is a ``data:`` URL (RFC 2397, ``data:application/json;base64,...``) holding such a
document — to move a catalog between tenants or installations, download the export and post it inline. The
import runs in the request's transaction inside a savepoint: either the whole catalog is imported (job
``Succeeded``) or nothing is (job ``Failed`` with the reason in ``errorLog``). Ids are primary keys across the
installation, so imported objects get new ids and every reference (``id``, ``href``, ``parentId``) is rewritten;
names, versions, lifecycle statuses, validity and lineages are reproduced.

Fetching ``http(s)`` URLs is not done inside a request (no network call in a database transaction); it is left
to a background job in a later version.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from openbss.catalog import repository
from openbss.catalog.errors import InvalidImport
from openbss.catalog.service import CatalogService
from openbss.platform.db import json_loads, utcnow
from openbss.platform.errors import BadRequest, DomainError
from openbss.platform.tmf.resource import Context, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.spec import format_datetime

FORMAT = "openbss-catalog"
FORMAT_VERSION = 1
#: dependency order: what is referenced comes first
ORDER = ("resourceSpecification", "serviceSpecification", "productSpecification", "tariff",
         "productOfferingPrice", "category", "productOffering", "catalog")
EXPORT_CONTENT_PATH = "/api/catalog/v1/exportJob/{id}/content"


async def export_catalog(ctx: Context, catalog: Mapping[str, CatalogService]) -> dict[str, Any]:
    resources: dict[str, list[dict[str, Any]]] = {}
    for path in ORDER:
        svc = catalog[path]
        items = []
        for row in await repository.all_rows(ctx.session, svc.resource.table):
            entry: dict[str, Any] = {"document": await svc.store.render(ctx, row)}
            if svc.versioned:
                entry["lineageId"] = getattr(row, "lineage_id", None) or row.id
            items.append(entry)
        resources[path] = items
    return {"format": FORMAT, "formatVersion": FORMAT_VERSION, "exportedAt": format_datetime(utcnow()),
            "resources": resources}


def decode_data_url(url: str) -> Any:
    if not url.startswith("data:"):
        raise BadRequest(f"'url': only data: URLs (RFC 2397) can be imported, got '{url[:40]}'; download the "
                         f"export and post it as data:application/json;base64,...", code="UNSUPPORTED_URL")
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise BadRequest("'url': malformed data: URL (no comma)", code="INVALID_URL")
    try:
        raw = base64.b64decode(payload, validate=True) if header.endswith(";base64") else unquote_to_bytes(payload)
        return json_loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"'url': the data is not {'base64 ' if ';base64' in header else ''}JSON: {exc}",
                         code="INVALID_URL") from exc


def _rewrite(value: Any, mapping: dict[str, str], base_url: str) -> Any:
    if isinstance(value, list):
        return [_rewrite(v, mapping, base_url) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _rewrite(v, mapping, base_url) for k, v in value.items()}
    old_id = value.get("id")
    if isinstance(old_id, str) and old_id in mapping:
        out["id"] = mapping[old_id]
        href = value.get("href")
        if isinstance(href, str):
            for marker in ("/tmf-api/", "/api/"):
                at = href.find(marker)
                if at >= 0:
                    path = href[at:]
                    out["href"] = base_url + path[: path.rfind("/") + 1] + mapping[old_id]
                    break
    if isinstance(value.get("parentId"), str) and value["parentId"] in mapping:
        out["parentId"] = mapping[value["parentId"]]
    return out


async def import_catalog(ctx: Context, content: Any, catalog: Mapping[str, CatalogService]) -> dict[str, int]:
    """Every object of the export, with new ids, audited and announced like any creation; then every reference
    must resolve (else the caller's savepoint rolls the whole import back)."""
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise InvalidImport(f"the document is not an {FORMAT} export (missing \"format\": \"{FORMAT}\")")
    if content.get("formatVersion") != FORMAT_VERSION:
        raise InvalidImport(f"unsupported formatVersion {content.get('formatVersion')!r} (supported: {FORMAT_VERSION})")
    resources = content.get("resources")
    if not isinstance(resources, dict):
        raise InvalidImport("'resources' must be an object of resource lists")
    unknown = set(resources) - set(ORDER)
    if unknown:
        raise InvalidImport(f"'resources': unknown resource kind(s) {', '.join(sorted(unknown))}")
    mapping: dict[str, str] = {}
    for path in ORDER:
        for i, entry in enumerate(resources.get(path) or []):
            doc = entry.get("document") if isinstance(entry, dict) else None
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise InvalidImport(f"'resources.{path}[{i}].document' must be an object with an id")
            mapping[doc["id"]] = str(uuid.uuid4())
    counts: dict[str, int] = {}
    inserted: list[tuple[CatalogService, dict[str, Any]]] = []
    for path in ORDER:
        svc = catalog[path]
        for i, entry in enumerate(resources.get(path) or []):
            doc = _rewrite(entry["document"], mapping, ctx.base_url)
            try:
                shaped = svc.shape(doc)
            except DomainError as exc:
                raise InvalidImport(f"'resources.{path}[{i}]' ({doc.get('name')}): {exc.message}") from exc
            new_id = doc["id"]
            shaped["id"] = new_id
            columns = None
            if svc.versioned:
                lineage = entry.get("lineageId")
                columns = {"lineage_id": mapping.get(lineage, new_id) if isinstance(lineage, str) else new_id}
            inserted.append((svc, await svc.record(ctx, shaped, columns=columns)))
            counts[path] = counts.get(path, 0) + 1
    # every reference must resolve now that everything is in
    for svc, doc in inserted:
        try:
            await svc.rules.validate(ctx, {k: v for k, v in doc.items() if k != "href"}, doc["id"])
        except DomainError as exc:
            raise InvalidImport(f"{svc.resource.type} '{doc.get('name')}': {exc.message}") from exc
    return counts


class JobService(ResourceService):
    """Import and export jobs run synchronously when created; their state is final in the 201 response."""

    def __init__(self, api: TmfApi, resource: TmfResource, catalog: Mapping[str, CatalogService], *,
                 create_model: Any = None) -> None:
        super().__init__(api, resource)
        self.catalog = catalog
        if create_model is not None:
            self.create_model = create_model

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        r = self.resource
        job_id = r.id_factory()
        now = format_datetime(utcnow())
        doc = {**doc, "@type": doc.get("@type", r.type), "creationDate": now, "status": "Running", "id": job_id}
        doc.pop("completionDate", None)
        doc.pop("errorLog", None)
        content: dict[str, Any] | None = None
        if r.type == "ExportJob":
            if doc.get("query"):
                raise BadRequest("'query': exports contain the whole catalog; filtering is not supported",
                                 code="UNSUPPORTED_QUERY")
            content = await export_catalog(ctx, self.catalog)
            doc["url"] = ctx.base_url + EXPORT_CONTENT_PATH.format(id=job_id)
            doc["contentType"] = "application/json"
            doc["status"] = "Succeeded"
        else:
            data = decode_data_url(doc["url"])
            doc["contentType"] = doc.get("contentType") or "application/json"
            try:
                async with ctx.session.begin_nested():
                    counts = await import_catalog(ctx, data, self.catalog)
                doc["status"] = "Succeeded"
                doc["path"] = doc.get("path") or ", ".join(f"{k}: {n}" for k, n in counts.items())
            except DomainError as exc:
                doc["status"] = "Failed"
                doc["errorLog"] = exc.message
        doc["completionDate"] = format_datetime(utcnow())
        return await self.record(ctx, doc, columns={"content": content} if content is not None else None)

    async def content(self, ctx: Context, job_id: str) -> dict[str, Any]:
        row = await self.store.get(ctx, job_id)
        data = getattr(row, "content", None)
        if data is None:
            raise BadRequest(f"export job '{job_id}' has no content", code="NO_CONTENT")
        return dict(data)

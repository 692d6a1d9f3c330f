"""HTTP APIs of batch rating.

* TMF635 ``POST /tmf-api/usageManagement/v4/usage``: one usage record, mediated and rated at once (201 with the
  rated usage; 400 for an invalid record, 409 for a record already received, 422 for one that cannot be guided or
  rated — nothing is written then). The other TMF635 routes (``usage`` reads, ``usageSpecification``) are served
  by the usage management API of online charging.
* ``/rating/v1/usageFile``: the bulk endpoint — a whole usage file (CSV, JSON lines or BER, docs/rating.md) as the
  request body, registered once by (source, name, SHA-256) and rated; its reconciled counts (201). With NATS the
  file is submitted to the work queue instead: 202 with ``status: queued``, rated by the ``openbss worker``
  processes (``GET`` shows its counts reconciled once ``rated``). A file seen before: 200, ``duplicateFile: true``,
  nothing changes. ``GET`` lists files.
* ``/rating/v1/suspense``: the suspense queue; ``POST /rating/v1/suspense/reprocess`` re-processes it.
* ``POST /rating/v1/rerate``: re-rate a billing period's usage (of an account, or of a tariff's accounts) after a
  tariff correction: 201 with the report of the differences, 200 with the first run's report for a job id seen.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.errors import UnsupportedMediaType
from openbss.platform.runtime import authenticate, permitted
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.rating.errors import InvalidUsageRecord
from openbss.rating.service import USAGE_PATH, RatingService
from openbss.rating.wiring import RatingServices

PERMISSION = "charging"
#: usage files and the suspense queue: billing operations' (the role table's ``rating`` scope)
BATCH_PERMISSION = "rating"
#: usageCharacteristic names read from a TMF635 Usage_Create, and the record field each gives
CHARACTERISTICS = {"recordId": "recordId", "origin": "origin", "msisdn": "msisdn", "subscriber": "msisdn",
                   "imsi": "imsi", "quantity": "quantity", "unit": "unit", "calledNumber": "calledNumber",
                   "calledParty": "calledNumber", "visitedCountry": "visitedCountry", "apn": "apn",
                   "direction": "direction", "callingNumber": "callingNumber", "callingParty": "callingNumber",
                   "visitedNetwork": "visitedNetwork"}


def record_of_usage(doc: Any) -> dict[str, Any]:
    """A TMF635 Usage_Create as a usage record (docs/rating.md): ``usageDate``, ``usageType`` and the
    characteristics ``recordId``, ``msisdn``, ``quantity`` (and optionally ``unit``, ``origin``, ``calledNumber``,
    ``visitedCountry``, ``apn``, ``imsi``, ``direction``, ``callingNumber``, ``visitedNetwork``)."""
    if not isinstance(doc, dict):
        raise InvalidUsageRecord("the body must be a TMF635 Usage object")
    raw: dict[str, Any] = {}
    if doc.get("usageDate") is not None:
        raw["eventTime"] = doc["usageDate"]
    if doc.get("usageType") is not None:
        raw["usageType"] = doc["usageType"]
    chars = doc.get("usageCharacteristic") or []
    if not isinstance(chars, list):
        raise InvalidUsageRecord("'usageCharacteristic' must be a list")
    for c in chars:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or "value" not in c:
            raise InvalidUsageRecord("each usageCharacteristic needs a name and a value")
        field = CHARACTERISTICS.get(c["name"])
        if field is None:
            raise InvalidUsageRecord(f"unknown usageCharacteristic '{c['name']}' (known: "
                                     f"{', '.join(CHARACTERISTICS)})")
        raw[field] = c["value"]
    return raw


class Reprocess(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(None, description="Suspended records to re-process (default: all pending)")
    corrections: dict[int, dict[str, Any]] = Field(default_factory=dict,
                                                   description="Field corrections per suspended record id")


class Rerate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., description="The re-rate job's id: the same id again returns the first run's report")
    period: str = Field(..., description="The billing period, YYYY-MM (in each account's time zone)")
    accountId: str | None = Field(None, description="Re-rate this charging account's usage")
    tariffId: str | None = Field(None, description="Re-rate the usage of every account whose plan uses this tariff")


def routers(svc: RatingServices) -> list[tuple[str, APIRouter]]:
    rating: RatingService = svc.service
    usage = APIRouter(prefix=USAGE_PATH, tags=["TMF635 Usage Management (rating)"])

    async def create_usage(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require(PERMISSION, WRITE)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise UnsupportedMediaType(f"Content-Type must be application/json, got '{ctype or 'none'}'")
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidUsageRecord("the body is not JSON") from exc
        raw = record_of_usage(body)
        async with unit_of_work(request, principal) as ctx:
            doc = await rating.rate_one(ctx, raw, source="api")
        return TmfJSONResponse(doc, status_code=201, headers={"Location": doc["href"]})

    usage.add_api_route("/usage", create_usage, methods=["POST"], name="createUsage", status_code=201,
                        summary="Creates a Usage (one record, mediated and rated at once)")

    bulk = APIRouter(prefix="/rating/v1", tags=["Batch rating"])

    async def upload(request: Request, name: str = Query(..., description="File name (registration key)"),
                     source: str = Query("api", description="Collection source"),
                     principal: Principal = Depends(permitted(BATCH_PERMISSION, WRITE))) -> Response:
        data = await request.body()
        queue = svc.queue  # read per request: with NATS, the file is rated by the workers
        async with unit_of_work(request, principal) as ctx:
            if queue is None:
                report = await rating.ingest(ctx, name, data, source=source)
            else:
                report = await rating.submit(ctx, name, data, source=source, partitions=queue.partitions,
                                             chunk_records=queue.settings.rating_chunk_records)
        if queue is not None:  # after the commit: the chunks exist before a worker receives them
            report = await queue.publish_report(ctx.principal.tenant_id, report)
        if report["duplicateFile"]:
            return TmfJSONResponse(report, status_code=200)
        return TmfJSONResponse(report, status_code=202 if report["status"] == "queued" else 201)

    async def files(request: Request, principal: Principal = Depends(authenticate),
                    limit: int = Query(100, ge=1, le=1000)) -> Response:
        principal.require(BATCH_PERMISSION, READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await rating.files(ctx, limit))

    async def suspense(request: Request, principal: Principal = Depends(authenticate),
                       status: str = Query("pending"), limit: int = Query(100, ge=1, le=1000)) -> Response:
        principal.require(BATCH_PERMISSION, READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await rating.suspense(ctx, status, limit))

    async def reprocess(request: Request, body: Reprocess,
                        principal: Principal = Depends(permitted(BATCH_PERMISSION, WRITE))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await rating.reprocess(ctx, body.ids, body.corrections))

    async def rerate(request: Request, body: Rerate,
                     principal: Principal = Depends(permitted(BATCH_PERMISSION, WRITE))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            report = await rating.rerate(ctx, body.id, body.period, account_id=body.accountId,
                                         tariff_id=body.tariffId)
        return TmfJSONResponse(report, status_code=200 if report["alreadyRun"] else 201)

    bulk.add_api_route("/usageFile", upload, methods=["POST"],
                       summary="Rate a usage file (CSV, JSON lines or 3GPP ASN.1 BER CDRs)",
                       openapi_extra={"requestBody": {"content": {"text/csv": {}, "application/x-ndjson": {},
                                                                  "application/octet-stream": {}},
                                                      "required": True}})
    bulk.add_api_route("/usageFile", files, methods=["GET"], summary="Registered usage files and their counts")
    bulk.add_api_route("/suspense", suspense, methods=["GET"], summary="The suspense queue")
    bulk.add_api_route("/suspense/reprocess", reprocess, methods=["POST"], summary="Re-process suspended records")
    bulk.add_api_route("/rerate", rerate, methods=["POST"], summary="Re-rate a period's usage after a tariff "
                       "correction (difference records; once per job id)")
    return [("TMF635 Usage Management (rating)", usage), ("Batch rating", bulk)]

"""HTTP API of collections at ``/api/collections/v1`` (the TMF conventions: paging with ``offset``/``limit`` and
``X-Total-Count``, attribute filters, ``fields``, TMF630 errors, ``/hub`` subscriptions):

* ``dunningPolicy`` (create, list, get, PATCH: a change of ``dunningStep`` is a new version),
  ``dunningEpisode`` (list, get: with ``stepTaken`` and ``stepPlanned``), ``promiseToPay`` and ``paymentPlan``
  (create, list, get, PATCH ``state: cancelled``), ``dunningExclusion`` (create, list, get, PATCH, DELETE);
* ``POST /run`` (evaluate the tenant and take its due steps now; ``asOf`` a date), ``GET /report/{name}``
  (``inCollection``, ``recoveredByStep``, ``cureRate``, ``brokenPromises``, ``suspensionsPerDay``; ``start``,
  ``format=csv``). Permission ``collections``.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from openbss.collections import reports
from openbss.collections.errors import InvalidCollections
from openbss.collections.wiring import CollectionsServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.db import utcnow
from openbss.platform.errors import Forbidden, NotFound
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.platform.tmf.router import api_router


def _date(value: Any, what: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidCollections(f"'{what}': '{value}' is not a date (YYYY-MM-DD)") from exc


def extra_routes(svc: CollectionsServices) -> Any:
    service = svc.service

    def extra(router: APIRouter) -> None:
        async def run(body: dict[str, Any] = Body(default_factory=dict),
                      principal: Principal = Depends(authenticate)) -> Response:
            principal.require("collectionsconfig", WRITE)  # a run actions accounts: not an agent's
            if not isinstance(body, dict):
                raise InvalidCollections("the request body must be a JSON object")
            unknown = sorted(set(body) - {"asOf"})
            if unknown:
                raise InvalidCollections(f"unknown attributes {unknown} (known: asOf)")
            as_of = _date(body["asOf"], "asOf") if body.get("asOf") is not None else None
            report = await service.run_tenant(principal.tenant_id, as_of, worker=f"api:{principal.subject}")
            return TmfJSONResponse(report.as_dict(), status_code=201)

        async def report(request: Request, name: str, start: str | None = None,
                         format: str = Query("json", pattern="^(json|csv)$"),
                         principal: Principal = Depends(authenticate)) -> Response:
            principal.require("collections", READ)
            if principal.is_customer:
                raise Forbidden("customers cannot read collections reports", code="CUSTOMER_FORBIDDEN")
            if name not in reports.REPORTS:
                raise NotFound(f"no report '{name}' (reports: {', '.join(reports.REPORTS)})")
            first = _date(start, "start") if start else utcnow().date() - timedelta(days=90)
            async with unit_of_work(request, principal) as ctx:
                rows = await reports.report(ctx.session, name, first)
            if format == "csv":
                return Response(reports.to_csv(rows), media_type="text/csv",
                                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
            return TmfJSONResponse(rows)

        router.add_api_route("/run", run, methods=["POST"], status_code=201,
                             summary="Evaluate the tenant's accounts and take the due dunning steps now")
        router.add_api_route("/report/{name}", report, methods=["GET"],
                             summary="A collections report: inCollection, recoveredByStep, cureRate, "
                                     "brokenPromises, suspensionsPerDay (JSON or CSV)")

    return extra


def routers(svc: CollectionsServices) -> list[tuple[str, APIRouter]]:
    return [(svc.api.title, api_router(svc.api, svc.resources, extra_routes(svc)))]

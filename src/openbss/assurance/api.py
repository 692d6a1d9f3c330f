"""Service assurance's HTTP APIs.

* TMF642 Alarm Management at ``/tmf-api/alarm/v4/``: ``alarm`` and the operation tasks ``ackAlarms``,
  ``unAckAlarms``, ``clearAlarms``, ``commentAlarms`` (with hub and events);
* TMF656 Service Problem Management at ``/tmf-api/serviceProblemManagement/v4/``: ``serviceProblem`` (with hub and
  events);
* OpenBSS assurance at ``/api/assurance/v1/``: the Prometheus Alertmanager webhook (``alertmanager``), the tenant's
  correlation rules (``correlationRule``) and the JSON schema of the alarm's extension (``schema/OpenBSSAlarm.json``).
  Reading needs ``assurance:read``, the webhook and the rules' changes ``assurance:write``.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from openbss.assurance.errors import InvalidAlarm, InvalidMeasurement
from openbss.assurance.ingest import InvalidReport, alertmanager_signals
from openbss.assurance.performance import ROLLUPS, parse_measurements
from openbss.assurance.schemas import extension_schema
from openbss.assurance.service import SCHEMA_PATH, AssuranceService
from openbss.assurance.thresholds import object_limits
from openbss.assurance.wiring import AssuranceServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.db import MAX_OFFSET
from openbss.platform.errors import Forbidden
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.query import MAX_LIMIT
from openbss.platform.tmf.resource import (
    TmfJSONResponse,
    base_url,
    json_content,
    json_or_merge_patch_content,
    unit_of_work,
)
from openbss.platform.tmf.router import api_router
from openbss.platform.tmf.spec import format_datetime

PREFIX = "/api/assurance/v1"


def _staff(principal: Principal, action: str) -> None:
    principal.require("assurance", action)
    if principal.is_customer:
        raise Forbidden("customers cannot use service assurance", code="CUSTOMER_FORBIDDEN")


def _time(value: str | None, what: str, default: datetime) -> datetime:
    if value is None:
        return default
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidMeasurement(f"'{what}' is not a date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidMeasurement(f"'{what}' needs a time zone (e.g. 2026-12-04T10:00:00Z)")
    return parsed.astimezone(UTC)


def assurance_router(service: AssuranceService, svc: AssuranceServices | None = None) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["Service assurance"])

    async def alertmanager(request: Request, body: dict[str, Any] = Body(...),
                           principal: Principal = Depends(authenticate),
                           _ct: None = Depends(json_content)) -> Response:
        _staff(principal, WRITE)
        try:
            signals = alertmanager_signals(body, datetime.now(UTC))
        except InvalidReport as exc:
            raise InvalidAlarm(str(exc)) from exc
        async with unit_of_work(request, principal) as ctx:
            applied = await service.apply(ctx, signals)
        return TmfJSONResponse(applied.counts())

    async def create_rule(request: Request, body: Any = Body(...), principal: Principal = Depends(authenticate),
                          _ct: None = Depends(json_content)) -> Response:
        _staff(principal, WRITE)
        async with unit_of_work(request, principal) as ctx:
            rule = await service.rules.create(ctx, body)
        return TmfJSONResponse(rule, status_code=201,
                               headers={"Location": f"{base_url(request)}{PREFIX}/correlationRule/{rule['id']}"})

    async def list_rules(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await service.rules.list(ctx))

    async def get_rule(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await service.rules.get(ctx, id))

    async def patch_rule(request: Request, id: str, body: Any = Body(...),
                         principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, WRITE)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await service.rules.patch(ctx, id, body))

    async def delete_rule(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, WRITE)
        async with unit_of_work(request, principal) as ctx:
            await service.rules.delete(ctx, id)
        return Response(status_code=204)

    async def push_measurements(request: Request, body: Any = Body(...),
                                principal: Principal = Depends(authenticate),
                                _ct: None = Depends(json_content)) -> Response:
        _staff(principal, WRITE)
        assert svc is not None
        measurements = parse_measurements(body)
        async with unit_of_work(request, principal) as ctx:
            known = await svc.collector.indicators.names(ctx, sorted({m.indicator for m in measurements}))
        unknown = sorted({m.indicator for m in measurements} - set(known))
        if unknown:
            raise InvalidMeasurement(f"unknown performance indicator(s): {', '.join(unknown)} (create their "
                                     "performanceIndicatorSpecification first)")
        await svc.kpis.ensure_partitions(runtime(request).db, principal.tenant_id,
                                         {m.time.date() for m in measurements})
        async with unit_of_work(request, principal) as ctx:
            stored = await svc.kpis.store(ctx.session, measurements)
            for listener in svc.collector.listeners:
                await listener(ctx, measurements)
        return TmfJSONResponse({"accepted": stored, "duplicates": len(measurements) - stored})

    async def kpi_series(request: Request, objectId: str, indicator: str, granularity: str = "5min",
                         start: str | None = None, end: str | None = None, limit: int = 1000,
                         principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        assert svc is not None
        if granularity not in ("raw", *ROLLUPS):
            raise InvalidMeasurement(f"'granularity' is one of raw, {', '.join(ROLLUPS)}; not {granularity!r}")
        if not 1 <= limit <= 10_000:
            raise InvalidMeasurement("'limit' is from 1 to 10000")
        now = datetime.now(UTC)
        until = _time(end, "end", now)
        since = _time(start, "start", until - timedelta(days=1))
        async with unit_of_work(request, principal) as ctx:
            points = await svc.kpis.series(ctx.session, objectId, indicator, granularity, since, until, limit)
        return TmfJSONResponse({"monitoredObject": {"id": objectId}, "indicator": indicator,
                                "granularity": granularity, "start": format_datetime(since),
                                "end": format_datetime(until), "points": points})

    async def kpi_thresholds(request: Request, objectId: str, indicator: str | None = None,
                             offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(100, ge=1, le=MAX_LIMIT),
                             principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        async with unit_of_work(request, principal) as ctx:
            items = await object_limits(ctx, objectId, indicator)
        page = items[offset:offset + limit]
        return TmfJSONResponse(page, headers={"X-Total-Count": str(len(items)), "X-Result-Count": str(len(page))})

    async def sla_evaluations(request: Request, sla: str | None = None, period: str | None = None,
                              violated: bool | None = None, offset: int = Query(0, ge=0, le=MAX_OFFSET),
                              limit: int = Query(100, ge=1, le=MAX_LIMIT),
                              principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        assert svc is not None
        start = None
        if period is not None:
            day = period if "T" in period else f"{period}T00:00:00Z"
            start = _time(day, "period", datetime.now(UTC))
        async with unit_of_work(request, principal) as ctx:
            items, total = await svc.slas.evaluations(ctx, sla_id=sla, period_start=start, violated=violated,
                                                      offset=offset, limit=limit)
        return TmfJSONResponse(items, headers={"X-Total-Count": str(total), "X-Result-Count": str(len(items))})

    async def create_sla(request: Request, body: Any = Body(...), principal: Principal = Depends(authenticate),
                         _ct: None = Depends(json_content)) -> Response:
        _staff(principal, WRITE)
        assert svc is not None
        async with unit_of_work(request, principal) as ctx:
            sla = await svc.slas.create(ctx, body)
        return TmfJSONResponse(sla, status_code=201,
                               headers={"Location": f"{base_url(request)}{PREFIX}/sla/{sla['id']}"})

    async def list_slas(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        assert svc is not None
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await svc.slas.all(ctx))

    async def get_sla(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        _staff(principal, READ)
        assert svc is not None
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await svc.slas.get(ctx, id))

    async def change_sla(request: Request, id: str, body: Any = Body(...),
                         principal: Principal = Depends(authenticate),
                         _ct: None = Depends(json_or_merge_patch_content)) -> Response:
        _staff(principal, WRITE)
        assert svc is not None
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await svc.slas.change(ctx, id, body))

    async def evaluate_sla(request: Request, id: str, body: Any = Body(...),
                           principal: Principal = Depends(authenticate),
                           _ct: None = Depends(json_content)) -> Response:
        _staff(principal, WRITE)
        assert svc is not None
        start = body.get("periodStart") if isinstance(body, dict) else None
        if not isinstance(start, str):
            raise InvalidMeasurement("the body is {\"periodStart\": <the period's first instant, UTC>}")
        async with unit_of_work(request, principal) as ctx:
            out = await svc.slas.evaluate(ctx, id, _time(start, "periodStart", datetime.now(UTC)))
        return TmfJSONResponse(out)

    async def sla_report(request: Request, customerId: str, principal: Principal = Depends(authenticate),
                         ) -> Response:
        _staff(principal, READ)
        assert svc is not None
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await svc.slas.report(ctx, customerId))

    async def schema(request: Request) -> Response:
        return TmfJSONResponse(extension_schema(f"{base_url(request)}{SCHEMA_PATH}"))

    router.add_api_route("/alertmanager", alertmanager, methods=["POST"],
                         summary="Prometheus Alertmanager webhook (version 4): firing raises, resolved clears")
    router.add_api_route("/correlationRule", create_rule, methods=["POST"], status_code=201,
                         summary="Create a correlation rule (suppression, rootCause, grouping)")
    router.add_api_route("/correlationRule", list_rules, methods=["GET"], summary="The tenant's correlation rules")
    router.add_api_route("/correlationRule/{id}", get_rule, methods=["GET"], summary="A correlation rule")
    router.add_api_route("/correlationRule/{id}", patch_rule, methods=["PATCH"],
                         summary="Change a correlation rule (its kind stays)")
    router.add_api_route("/correlationRule/{id}", delete_rule, methods=["DELETE"], status_code=204,
                         summary="Delete a correlation rule")
    router.add_api_route("/measurement", push_measurements, methods=["POST"],
                         summary="Push measurements of performance indicators (KPIs) on managed objects")
    router.add_api_route("/kpi", kpi_series, methods=["GET"],
                         summary="A KPI's series on an object: raw samples or 5min/hour/day rollups")
    router.add_api_route("/kpi/thresholds", kpi_thresholds, methods=["GET"],
                         summary="The limits watched on an object per KPI (the active threshold jobs' rules)")
    router.add_api_route("/slaEvaluation", sla_evaluations, methods=["GET"],
                         summary="SLA evaluations, filtered by SLA, period and outcome (newest period first)")
    router.add_api_route("/sla", create_sla, methods=["POST"], status_code=201,
                         summary="Define an SLA on a product offering (objectives, period, credit)")
    router.add_api_route("/sla", list_slas, methods=["GET"], summary="The tenant's SLA definitions")
    router.add_api_route("/sla/{id}", get_sla, methods=["GET"], summary="An SLA definition")
    router.add_api_route("/sla/{id}", change_sla, methods=["PATCH"],
                         summary="Change an SLA definition: a new version, valid from the next period that starts "
                                 "after its validFrom")
    router.add_api_route("/sla/{id}/evaluate", evaluate_sla, methods=["POST"],
                         summary="Evaluate a closed period of an SLA for every product of its offering (once)")
    router.add_api_route("/slaReport/{customerId}", sla_report, methods=["GET"],
                         summary="A customer's SLA evaluations, violations and credits")
    router.add_api_route(SCHEMA_PATH.removeprefix(PREFIX), schema, methods=["GET"],
                         summary="JSON schema of the OpenBSSAlarm extension")
    return router


def routers(svc: AssuranceServices) -> list[tuple[str, APIRouter]]:
    return [(svc.api.title, api_router(svc.api, svc.services_of(svc.api))),
            (svc.problem_api.title, api_router(svc.problem_api, svc.services_of(svc.problem_api))),
            (svc.performance_api.title, api_router(svc.performance_api, svc.services_of(svc.performance_api))),
            (svc.threshold_api.title, api_router(svc.threshold_api, svc.services_of(svc.threshold_api))),
            ("Service assurance", assurance_router(svc.service, svc))]

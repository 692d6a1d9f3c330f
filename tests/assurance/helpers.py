"""Shared helpers of the assurance tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from openbss.platform.tmf.resource import system_context
from tests.customer.helpers import assert_valid

BASE = "/tmf-api/alarm/v4"
ALARM = f"{BASE}/alarm"
AM = "/api/assurance/v1/alertmanager"
TMF642 = "TMF642-Alarm-v4.0.0.swagger.json"
TT = "/tmf-api/troubleTicket/v4/troubleTicket"


def alarm_body(obj: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"alarmType": "communicationsAlarm", "perceivedSeverity": "major", "probableCause": "lossOfSignal",
            "specificProblem": "LOS on port 1", "alarmedObject": {"id": obj or f"ne-{uuid.uuid4().hex[:8]}"},
            "sourceSystemId": "ems-1", "state": "raised", "alarmRaisedTime": "2026-12-04T10:00:00Z", **extra}


async def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


async def raise_alarm(client: httpx.AsyncClient, h: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    out = await ok(await client.post(ALARM, json=body, headers=h), 201)
    assert_valid(TMF642, "Alarm", out)
    return out  # type: ignore[no-any-return]


async def make_resource(rt: Any, services: Any, tenant: str, name: str = "agg-node-1") -> dict[str, Any]:
    """A resource of the inventory and a customer's service running on it."""
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        resource = await services.inventory.resources["resource"].record(ctx, {
            "id": f"res-{uuid.uuid4().hex[:10]}", "name": name, "@type": "LogicalResource",
            "resourceStatus": "available"})
        service = await services.inventory.resources["service"].record(ctx, {
            "id": f"svc-{uuid.uuid4().hex[:10]}", "name": "Broadband", "state": "active",
            "serviceSpecification": {"id": "bb"}, "supportingResource": [{"id": resource["id"]}]})
    return {"resource": resource, "service": service}


PROBLEM = "/tmf-api/serviceProblemManagement/v4/serviceProblem"
RULES = "/api/assurance/v1/correlationRule"
TMF656 = "TMF656-ServiceProblem-v4.0.0.swagger.json"


async def make_topology(rt: Any, services: Any, tenant: str, children: int = 3, *, dual_homed: bool = False,
                        ) -> dict[str, Any]:
    """An aggregation node, cell sites relying on it (``reliesOn``), a service on every cell site; with
    ``dual_homed`` one more cell site relying on the node and on a second aggregation node."""
    tag = uuid.uuid4().hex[:6]
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        res = services.inventory.resources["resource"]
        svc = services.inventory.resources["service"]

        async def resource(name: str, parents: list[str]) -> dict[str, Any]:
            return await res.record(ctx, {  # type: ignore[no-any-return]
                "id": f"{name}-{tag}", "name": name, "@type": "PhysicalResource", "resourceStatus": "available",
                "resourceRelationship": [{"relationshipType": "reliesOn", "resource": {"id": p}} for p in parents]})

        agg = await resource("agg", [])
        sites = [await resource(f"cell{i}", [agg["id"]]) for i in range(children)]
        other = await resource("agg2", []) if dual_homed else None
        dual = await resource("cell-dual", [agg["id"], other["id"]]) if other else None
        svcs = {}
        for site in [*sites, *([dual] if dual else [])]:
            svcs[site["id"]] = await svc.record(ctx, {
                "id": f"svc-{site['id']}", "name": f"Mobile on {site['name']}", "state": "active",
                "serviceSpecification": {"id": "mobile"}, "supportingResource": [{"id": site["id"]}]})
    return {"agg": agg, "sites": sites, "agg2": other, "dual": dual, "services": svcs}


async def add_rules(client: httpx.AsyncClient, h: dict[str, str], *kinds: str, **params: Any) -> None:
    for kind in kinds:
        await ok(await client.post(RULES, json={"name": f"{kind} rule", "kind": kind, **params}, headers=h), 201)

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

"""TMF656 service problem event records: every event announced for a problem is recorded (read only), listed per
problem, and validates against the specification."""

from __future__ import annotations

import httpx

from tests.assurance.helpers import PROBLEM, TMF656, ok
from tests.assurance.test_problem_tasks import BASE, declare
from tests.conftest import bearer
from tests.customer.helpers import assert_valid

RECORDS = f"{BASE}/serviceProblemEventRecord"


async def test_a_problems_events_are_recorded(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    problem, other = await declare(client, h, 1), await declare(client, h, 2)
    await ok(await client.post(f"{BASE}/problemAcknowledgement", json={"problem": [{"id": problem["id"]}]},
                               headers=h), 201)
    await ok(await client.patch(f"{PROBLEM}/{problem['id']}", json={"priority": 1}, headers=h))

    r = await client.get(RECORDS, params={"serviceProblem.id": problem["id"]}, headers=h)
    records = await ok(r)
    assert r.headers["X-Total-Count"] == str(len(records))
    kinds = sorted(rec["eventType"] for rec in records)
    assert kinds.count("ServiceProblemCreateEvent") == 1, kinds
    assert "ServiceProblemStateChangeEvent" in kinds or "ServiceProblemStatusChangeEvent" in kinds, kinds
    assert kinds.count("ServiceProblemAttributeValueChangeEvent") >= 2, kinds
    for rec in records:
        assert_valid(TMF656, "ServiceProblemEventRecord", rec)
        assert rec["serviceProblem"]["id"] == problem["id"] and rec["serviceProblem"]["href"].endswith(problem["id"])
        assert rec["notification"]["eventType"] == rec["eventType"]
        assert rec["notification"]["event"]["serviceProblem"]["id"] == problem["id"]
    last = max((rec for rec in records if rec["eventType"] == "ServiceProblemAttributeValueChangeEvent"),
               key=lambda rec: rec["notification"]["event"]["serviceProblem"].get("priority") == 1)
    assert last["notification"]["event"]["serviceProblem"]["priority"] == 1
    one = await ok(await client.get(f"{RECORDS}/{records[0]['id']}", headers=h))
    assert one == records[0] or one["id"] == records[0]["id"]
    assert_valid(TMF656, "ServiceProblemEventRecord", one)

    theirs = await ok(await client.get(RECORDS, params={"serviceProblem.id": other["id"]}, headers=h))
    assert [rec["eventType"] for rec in theirs] == ["ServiceProblemCreateEvent"]
    # read only, for the assurance roles
    assert (await client.post(RECORDS, json={"eventType": "x"}, headers=h)).status_code in (404, 405)
    assert (await client.delete(f"{RECORDS}/{one['id']}", headers=h)).status_code in (404, 405)
    assert (await client.get(RECORDS, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.get(f"{RECORDS}/nope", headers=h)).status_code == 404

"""The TMF656 task resources: acknowledging and unacknowledging service problems, grouping problems under a parent
and ungrouping them; the responses validate against the specification; bad tasks are refused, changing nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.assurance.helpers import PROBLEM, TMF656, ok
from tests.conftest import bearer
from tests.customer.helpers import assert_valid

BASE = "/tmf-api/serviceProblemManagement/v4"


async def declare(client: httpx.AsyncClient, h: dict[str, str], n: int) -> dict[str, Any]:
    return await ok(await client.post(PROBLEM, json={  # type: ignore[no-any-return]
        "category": "serviceProvider.declarer", "priority": 3, "description": f"slow DNS {n}", "reason": "complaints",
        "originatorParty": {"id": "noc", "@referredType": "Individual"}}, headers=h), 201)


async def test_acknowledge_and_unacknowledge(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    a, b = await declare(client, h, 1), await declare(client, h, 2)
    task = await ok(await client.post(f"{BASE}/problemAcknowledgement", json={"problem": [
        {"id": a["id"]}, {"id": b["id"]}]}, headers=h), 201)
    assert_valid(TMF656, "ProblemAcknowledgement", task)
    assert {p["id"] for p in task["ackProblem"]} == {a["id"], b["id"]}
    got = await ok(await client.get(f"{PROBLEM}/{a['id']}", headers=h))
    assert got["status"] == "acknowledged" and got["statusChangeReason"].startswith("ProblemAcknowledgement")
    again = await ok(await client.post(f"{BASE}/problemAcknowledgement", json={"problem": [{"id": a["id"]}]},
                                       headers=h), 201)
    assert again["ackProblem"] == []  # already acknowledged: not listed
    un = await ok(await client.post(f"{BASE}/problemUnacknowledgement", json={"problem": [{"id": a["id"]}]},
                                    headers=h), 201)
    assert_valid(TMF656, "ProblemUnacknowledgement", un)
    assert [p["id"] for p in un["unackProblem"]] == [a["id"]]
    assert (await ok(await client.get(f"{PROBLEM}/{a['id']}", headers=h)))["status"] == "pending"
    r = await client.post(f"{BASE}/problemAcknowledgement", json={"problem": [{"id": a["id"]}, {"id": "ghost"}]},
                          headers=h)
    assert r.status_code == 400 and "ghost" in r.json()["message"]
    assert (await ok(await client.get(f"{PROBLEM}/{a['id']}", headers=h)))["status"] == "pending"
    assert (await client.post(f"{BASE}/problemAcknowledgement", json={"problem": [{"id": a["id"]}]},
                              headers=bearer(tenant, "csr_agent"))).status_code == 403


async def test_group_and_ungroup(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    parent, c1, c2 = await declare(client, h, 1), await declare(client, h, 2), await declare(client, h, 3)
    task = await ok(await client.post(f"{BASE}/problemGroup", json={
        "parentProblem": {"id": parent["id"]}, "childProblem": [{"id": c1["id"]}, {"id": c2["id"]}]}, headers=h), 201)
    assert_valid(TMF656, "ProblemGroup", task)
    p = await ok(await client.get(f"{PROBLEM}/{parent['id']}", headers=h))
    assert {r["id"] for r in p["underlyingProblem"]} == {c1["id"], c2["id"]}
    child = await ok(await client.get(f"{PROBLEM}/{c1['id']}", headers=h))
    assert [r["id"] for r in child["parentProblem"]] == [parent["id"]]
    assert_valid(TMF656, "ServiceProblem", child)
    task = await ok(await client.post(f"{BASE}/problemUngroup", json={
        "parentProblem": {"id": parent["id"]}, "childProblem": [{"id": c1["id"]}]}, headers=h), 201)
    assert_valid(TMF656, "ProblemUngroup", task)
    p = await ok(await client.get(f"{PROBLEM}/{parent['id']}", headers=h))
    assert [r["id"] for r in p["underlyingProblem"]] == [c2["id"]]
    assert "parentProblem" not in await ok(await client.get(f"{PROBLEM}/{c1['id']}", headers=h))
    for body, needle in [
        ({"parentProblem": {"id": parent["id"]}, "childProblem": [{"id": parent["id"]}]}, "own child"),
        ({"parentProblem": {"id": "ghost"}, "childProblem": [{"id": c1["id"]}]}, "ghost"),
        ({"parentProblem": {"id": parent["id"]}, "childProblem": []}, "childProblem"),
    ]:
        r = await client.post(f"{BASE}/problemGroup", json=body, headers=h)
        assert r.status_code == 400, r.text
        assert needle in r.json()["message"], r.text

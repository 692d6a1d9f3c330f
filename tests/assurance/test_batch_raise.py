"""The new alarms of a batch are raised set-based (one insert, correlation decided in memory, each problem widened
once): the same alarms, problems, tickets and alarm events as the same reports raised one batch of one at a time."""

from __future__ import annotations

from typing import Any

import httpx

from openbss.assurance.service import Signal
from openbss.platform.tmf.resource import system_context
from tests.assurance.helpers import ALARM, PROBLEM, TT, add_rules, alarm_body, make_topology, ok
from tests.care.helpers import events_of
from tests.conftest import bearer


def node_down(obj: str, **extra: Any) -> dict[str, Any]:
    return alarm_body(obj, **{"perceivedSeverity": "critical", "alarmType": "equipmentAlarm",
                              "probableCause": "equipmentMalfunction", "specificProblem": "node down", **extra})


def storm(topo: dict[str, Any]) -> list[Signal]:
    """A failed node's storm with what correlation must tell apart: a cell site's alarm before the node's (it opens
    its own problem, then is adopted and its problem merged), the node's alarms, the cell sites' (suppressed), a
    dual-homed site's (root cause only), a minor one, an alarm on an object unknown to the inventory, and the raise
    of a flapping problem (its creation not announced)."""
    agg, sites, dual = topo["agg"]["id"], topo["sites"], topo["dual"]["id"]
    out = [alarm_body(sites[0]["id"], perceivedSeverity="critical", specificProblem="early"), node_down(agg)]
    out += [alarm_body(site["id"], perceivedSeverity="critical", specificProblem=f"S1 link {n}")
            for site in sites for n in range(3)]
    out += [alarm_body(dual, perceivedSeverity="critical"), node_down(agg, specificProblem="port 1 down"),
            alarm_body(sites[1]["id"], perceivedSeverity="minor", specificProblem="fan"),
            alarm_body(f"olt-unknown-{agg}", perceivedSeverity="critical"),
            alarm_body(f"flap-{agg}", perceivedSeverity="critical", specificProblem="flap")]
    return [Signal("raise", body, "syslog") for body in out]


async def scenario(client: httpx.AsyncClient, rt: Any, services: Any, tenant: str, *, one_by_one: bool,
                   ) -> dict[str, Any]:
    h = bearer(tenant, "network_ops")
    topo = await make_topology(rt, services, tenant, children=4, dual_homed=True)
    await add_rules(client, h, "suppression", "rootCause", "grouping")
    tag = topo["agg"]["id"].rsplit("-", 1)[1]
    apply = services.assurance.service.apply

    async def run(batch: list[Signal]) -> Any:
        async with rt.db.transaction(tenant) as session:
            return await apply(system_context(tenant, session, "http://testserver", "syslog"), batch)

    flap = storm(topo)[-1]
    for _ in range(6):  # the flapping problem's history: raised and cleared six times within the window
        await run([flap])
        await run([Signal("clear", flap.alarm, "syslog")])
    batch = storm(topo)
    counts: dict[str, int] = {}
    if one_by_one:
        for signal in batch:
            for k, v in (await run([signal])).counts().items():
                counts[k] = counts.get(k, 0) + v
    else:
        counts = (await run(batch)).counts()

    def norm(value: Any) -> Any:
        return str(value).replace(tag, "T")

    alarms = [a for a in await ok(await client.get(f"{ALARM}?state=raised&limit=1000", headers=h))]
    by_id = {str(a["id"]): (norm(a["alarmedObject"]["id"]), a["specificProblem"]) for a in alarms}
    problems = await ok(await client.get(f"{PROBLEM}?limit=100", headers=h))
    problem_root = {p["id"]: norm((p.get("rootCauseResource") or [{}])[0].get("id")) for p in problems}
    events = {str(a["id"]): await events_of(rt, tenant, str(a["id"])) for a in alarms}
    shaped = sorted((by_id[str(a["id"])], a["perceivedSeverity"], a.get("suppressed"), a.get("isRootCause"),
                     sorted(by_id[p["id"]] for p in a.get("parentAlarm") or []),
                     problem_root.get((a.get("serviceProblem") or {}).get("id")), a.get("flapping"),
                     a.get("flapCount"), a["occurrenceCount"], a["state"],
                     sorted(norm(s["id"]) for s in a.get("affectedService") or []),
                     events[str(a["id"])]) for a in alarms)
    shaped_problems = sorted((problem_root[p["id"]], p["status"], p["priority"],
                              sorted(norm(r["id"]) for r in p.get("affectedResource") or []),
                              sorted(norm(s["id"]) for s in p.get("affectedService") or []),
                              sorted(by_id.get(a["id"], ("cleared", "")) for a in p.get("underlyingAlarm") or []),
                              p.get("affectedCustomerCount"), len(p.get("troubleTicket") or []),
                              [problem_root[x["id"]] for x in p.get("parentProblem") or []]) for p in problems)
    tickets = await ok(await client.get(f"{TT}?limit=100", headers=bearer(tenant, "csr_agent")))
    return {"counts": counts, "alarms": shaped, "problems": shaped_problems,
            "tickets": sorted(t["status"] for t in tickets)}


async def test_a_batch_of_new_alarms_is_raised_as_one_by_one(
        client: httpx.AsyncClient, tenant: str, other_tenant: str, rt: Any, services: Any) -> None:
    single = await scenario(client, rt, services, tenant, one_by_one=True)
    batched = await scenario(client, rt, services, other_tenant, one_by_one=False)
    assert batched == single
    # what the storm must be: one open problem (the node's), the early cell site's merged into it, one ticket each
    assert single["counts"] == {"raised": 19, "repeated": 0, "cleared": 0, "unmatchedClears": 0}
    open_ = [p for p in single["problems"] if p[1] == "inProgress"]
    assert len(open_) == 1 and open_[0][0].startswith("agg-")
    assert single["tickets"] == ["acknowledged", "resolved"]  # the node's problem's, the merged problem's
    suppressed = [a for a in single["alarms"] if a[2]]
    assert len(suppressed) == 4 * 3 + 2  # every single-homed site's alarms (and the early and minor ones)
    flapping = [a for a in single["alarms"] if a[6]]
    assert [(a[7], a[11]) for a in flapping] == [(7, [])]  # a flapping problem's raise is recorded, not announced

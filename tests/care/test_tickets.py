"""TMF621 trouble tickets: creation with the mandatory attributes, the status life cycle with its history and its
refused transitions, notes, relationships, assignment to queues and agents, filters, events, roles."""

from __future__ import annotations

from typing import Any

import httpx

from tests.care.helpers import ALWAYS, CFG, TT, events_of, make_queue, move, ok, raise_ticket, ticket_body
from tests.conftest import bearer


async def test_a_ticket_is_raised_acknowledged_with_its_history(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "csr_agent")
    r = await client.post(TT, json=ticket_body(priority="high", channel={"id": "phone", "name": "Phone call"}),
                          headers=h)
    assert r.status_code == 201, r.text
    t = r.json()
    assert r.headers["Location"] == t["href"] and t["href"].endswith(f"{TT}/{t['id']}")
    assert t["status"] == "acknowledged" and t["creationDate"] == t["statusChangeDate"]
    assert [s["status"] for s in t["statusChange"]] == ["acknowledged"]
    assert t["@type"] == "OpenBSSTroubleTicket" and t["@baseType"] == "TroubleTicket"
    schema = await ok(await client.get(t["@schemaLocation"].removeprefix("http://testserver")))
    assert set(schema["allOf"][1]["properties"]) == {"queue", "assignee", "sla"}
    assert (await ok(await client.get(f"{TT}/{t['id']}", headers=h)))["statusChange"] == t["statusChange"]


async def test_bad_tickets_are_refused_naming_the_problem(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "csr_agent")
    for body, needle in [
        ({"description": "x", "ticketType": "network"}, "severity"),
        (ticket_body(status="resolved"), "acknowledged"),
        (ticket_body(statusChange=[{"status": "closed"}]), "statusChange"),
        (ticket_body(troubleTicketRelationship=[{"id": "nope", "relationshipType": "duplicateOf"}]), "nope"),
        (ticket_body(queue={"id": "nowhere"}), "queue"),
        (ticket_body(note=[{"text": " "}]), "note"),
    ]:
        r = await client.post(TT, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], r.text
    r = await client.get(TT, headers=h)
    assert r.headers["X-Total-Count"] == "0"  # nothing written


async def test_the_life_cycle_records_every_status_and_refuses_illegal_moves(client: httpx.AsyncClient, rt: Any,
                                                                             tenant: str) -> None:
    h = bearer(tenant, "csr_agent")
    t = await raise_ticket(client, h)
    await move(client, h, t["id"], "inProgress", "taken by first line")
    await move(client, h, t["id"], "pending", "waiting for the customer's device details")
    await move(client, h, t["id"], "inProgress")
    resolved = await move(client, h, t["id"], "resolved", "APN reset")
    assert resolved["resolutionDate"] == resolved["statusChangeDate"]
    reopened = await move(client, h, t["id"], "inProgress", "customer says it is back")
    assert "resolutionDate" not in reopened
    await move(client, h, t["id"], "resolved")
    closed = await move(client, h, t["id"], "closed")
    assert [s["status"] for s in closed["statusChange"]] == [
        "acknowledged", "inProgress", "pending", "inProgress", "resolved", "inProgress", "resolved", "closed"]
    assert closed["statusChange"][1]["changeReason"] == "taken by first line"
    r = await client.patch(f"{TT}/{t['id']}", json={"status": "inProgress"}, headers=h)
    assert r.status_code == 409 and "closed" in r.json()["message"]
    assert (await ok(await client.get(f"{TT}/{t['id']}", headers=h)))["statusChange"] == closed["statusChange"]
    # acknowledged cannot jump to closed, a rejected ticket stays rejected
    other = await raise_ticket(client, h)
    assert (await client.patch(f"{TT}/{other['id']}", json={"status": "closed"}, headers=h)).status_code == 409
    await move(client, h, other["id"], "rejected", "not our network")
    assert (await client.patch(f"{TT}/{other['id']}", json={"status": "inProgress"}, headers=h)).status_code == 409
    events = await events_of(rt, tenant, t["id"])
    assert events.count("TroubleTicketStatusChangeEvent") == 7
    assert events.count("TroubleTicketResolvedEvent") == 2
    assert "TroubleTicketStateChangeEvent" not in events and events[0] == "TroubleTicketCreateEvent"


async def test_notes_are_appended_with_their_author(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "csr_agent")
    t = await raise_ticket(client, h, note=[{"text": "customer called from a landline"},
                                            {"text": "taken over", "author": "Grace", "date": "2026-12-01T10:00:00Z"}])
    first, given = t["note"]
    assert first["author"] and first["id"] and first["date"]
    assert given["author"] == "Grace" and given["date"] == "2026-12-01T10:00:00.000Z"
    r = await client.patch(f"{TT}/{t['id']}", json={"note": [first]}, headers=h)
    assert r.status_code == 400
    after = await ok(await client.patch(f"{TT}/{t['id']}", json={"note": [first, given, {"text": "APN checked"}]},
                                        headers=h))
    assert [n["text"] for n in after["note"]] == ["customer called from a landline", "taken over", "APN checked"]
    for tampered in ([{**first, "text": "rewritten"}], [{"text": "only a new one"}]):
        r = await client.patch(f"{TT}/{t['id']}", json={"note": tampered}, headers=h)
        assert r.status_code == 400 and "appended" in r.json()["message"]


async def test_relationships_assignment_and_filters(client: httpx.AsyncClient, tenant: str) -> None:
    sup = bearer(tenant, "care_supervisor")
    h = bearer(tenant, "csr_agent")
    network = await make_queue(client, sup, "Network second line")
    billing = await make_queue(client, sup, "Billing")
    party = {"id": "cust-1", "@referredType": "Customer", "role": "customer"}
    a = await raise_ticket(client, h, priority="high", relatedParty=[party], queue={"id": network["id"]},
                           assignee={"id": "agent-7", "name": "Grace"})
    assert a["queue"] == {"id": network["id"], "name": "Network second line"}
    b = await raise_ticket(client, h, priority="low", severity="minor",
                           troubleTicketRelationship=[{"id": a["id"], "relationshipType": "duplicateOf"}])
    assert b["troubleTicketRelationship"][0]["href"].endswith(f"{TT}/{a['id']}")
    r = await client.patch(f"{TT}/{b['id']}", json={"troubleTicketRelationship": [
        {"id": b["id"], "relationshipType": "causedBy"}]}, headers=h)
    assert r.status_code == 400 and "itself" in r.json()["message"]
    r = await client.patch(f"{TT}/{b['id']}", json={"troubleTicketRelationship": [
        {"id": a["id"], "relationshipType": "cousinOf"}]}, headers=h)
    assert r.status_code == 400 and "relationshipType" in r.json()["message"]
    moved = await ok(await client.patch(f"{TT}/{b['id']}", json={"queue": {"id": billing["id"]}}, headers=h))
    assert moved["queue"]["name"] == "Billing"
    await move(client, h, b["id"], "inProgress")

    async def ids(query: str) -> set[str]:
        r = await client.get(f"{TT}?{query}", headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["X-Total-Count"] == str(len(r.json()))
        return {x["id"] for x in r.json()}

    assert await ids(f"queue.id={network['id']}") == {a["id"]}
    assert await ids(f"queue.id={network['id']},{billing['id']}") == {a["id"], b["id"]}
    assert await ids("status=inProgress") == {b["id"]}
    assert await ids("status=acknowledged&severity=major") == {a["id"]}
    assert await ids("priority=low") == {b["id"]}
    assert await ids("relatedParty.id=cust-1") == {a["id"]}
    assert await ids("assignee.id=agent-7") == {a["id"]}
    assert (await client.get(f"{TT}?status=lost", headers=h)).status_code == 400


async def test_roles_and_tenants(client: httpx.AsyncClient, tenant: str, other_tenant: str) -> None:
    agent = bearer(tenant, "csr_agent")
    r = await client.post(f"{CFG}/queue", json={"name": "Mine"}, headers=agent)
    assert r.status_code == 403 and "careconfig:write" in r.json()["message"]
    policy = {"name": "Mine", "firstResponseMinutes": 5, "resolutionMinutes": 60, "calendar": ALWAYS}
    assert (await client.post(f"{CFG}/slaPolicy", json=policy, headers=agent)).status_code == 403
    assert (await client.post(TT, json=ticket_body(), headers=bearer(tenant, "billing_ops"))).status_code == 403
    mine = await raise_ticket(client, agent, relatedParty=[{"id": "p-1", "@referredType": "Individual"}])
    theirs = await raise_ticket(client, agent, relatedParty=[{"id": "p-2", "@referredType": "Individual"}])
    customer = bearer(tenant, "customer", party="p-1")
    seen = await ok(await client.get(TT, headers=customer))
    assert [t["id"] for t in seen] == [mine["id"]]  # (before raising their own)
    assert (await client.get(f"{TT}/{theirs['id']}", headers=customer)).status_code == 404
    own = await ok(await client.post(TT, json=ticket_body(), headers=customer), 201)  # raised in self-care
    assert own["relatedParty"] == [{"id": "p-1", "role": "customer", "@referredType": "Individual"}]
    assert own["channel"]["id"] == "selfcare"
    for body in (ticket_body(relatedParty=[{"id": "p-2", "@referredType": "Individual"}]),
                 ticket_body(queue={"id": "q"}), ticket_body(priority="critical")):
        r = await client.post(TT, json=body, headers=customer)
        assert r.status_code == 403 and r.json()["code"] == "CUSTOMER_FORBIDDEN", r.text
    assert (await client.patch(f"{TT}/{mine['id']}", json={"status": "cancelled"}, headers=customer)).status_code == 403
    assert (await client.get(f"{TT}/{mine['id']}", headers=bearer(other_tenant, "csr_agent"))).status_code == 404


async def test_changes_are_audited_with_the_agent(client: httpx.AsyncClient, tenant: str) -> None:
    from openbss.platform.auth import issue_token

    h = {"Authorization": f"Bearer {issue_token(tenant, ['csr_agent'], subject='agent-grace')}"}
    t = await raise_ticket(client, h)
    await move(client, h, t["id"], "inProgress")
    records = await ok(await client.get("/audit/v1/auditRecord", params={
        "resourceType": "TroubleTicket", "resourceId": t["id"]}, headers=bearer(tenant, "admin")))
    assert sorted(r["action"] for r in records) == ["create", "update"]
    assert {r["actor"] for r in records} == {"agent-grace"}


async def test_the_hub_accepts_the_ticket_events(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "admin")
    hub = "/tmf-api/troubleTicket/v4/hub"
    for query in ("eventType=TroubleTicketStatusChangeEvent", "eventType=TroubleTicketResolvedEvent",
                  "eventType=TroubleTicketSlaEscalationEvent"):
        r = await client.post(hub, json={"callback": "http://127.0.0.1:9/cb", "query": query}, headers=h)
        assert r.status_code == 201, (query, r.text)
    r = await client.post(hub, json={"callback": "http://127.0.0.1:9/cb",
                                     "query": "eventType=TroubleTicketStateChangeEvent"}, headers=h)
    assert r.status_code == 400


async def test_attachments_are_stored_and_downloaded(client: httpx.AsyncClient, tenant: str) -> None:
    import base64

    h = bearer(tenant, "csr_agent")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    t = await raise_ticket(client, h, relatedParty=[{"id": "p-5", "@referredType": "Individual"}], attachment=[
        {"name": "screenshot.png", "mimeType": "image/png", "content": base64.b64encode(png).decode()},
        {"name": "speed test", "url": "https://speedtest.example/result/42"}])
    stored, ref = t["attachment"]
    assert "content" not in stored and stored["size"] == {"amount": len(png), "units": "bytes"}
    assert ref["url"] == "https://speedtest.example/result/42" and ref["id"]
    path = stored["url"].removeprefix("http://testserver")
    r = await client.get(path, headers=h)
    assert r.status_code == 200 and r.content == png and r.headers["content-type"] == "image/png"
    assert (await client.get(path, headers=bearer(tenant, "customer", party="p-5"))).status_code == 200
    assert (await client.get(path, headers=bearer(tenant, "customer", party="p-6"))).status_code == 404
    assert (await client.get(f"{TT}/{t['id']}/nope", headers=h)).status_code in (404, 405)
    log = base64.b64encode(b"line 1\n").decode()
    after = await ok(await client.patch(f"{TT}/{t['id']}", json={"attachment": [
        stored, ref, {"name": "modem.log", "mimeType": "text/plain", "content": log}]}, headers=h))
    assert [a["name"] for a in after["attachment"]] == ["screenshot.png", "speed test", "modem.log"]
    for bad, needle in [([stored], "appended"),
                        ([stored, ref, {"name": "x", "content": "%%%"}], "base64"),
                        ([stored, ref, {"name": "x"}], "content"),
                        ([stored, ref, {"name": "x", "mimeType": "text", "content": log}], "mimeType")]:
        r = await client.patch(f"{TT}/{t['id']}", json={"attachment": [*after["attachment"][2:], *bad]
                                                        if needle == "appended" else
                                                        [*after["attachment"], *bad[2:]]}, headers=h)
        assert r.status_code == 400 and needle in r.json()["message"], (needle, r.text)
    big = base64.b64encode(b"x" * (512 * 1024 + 1)).decode()
    r = await client.post(TT, json=ticket_body(attachment=[{"name": "big", "content": big}]), headers=h)
    assert r.status_code == 413

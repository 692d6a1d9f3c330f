"""The agent console's server side: bill adjustments within an agent's limit, approvals above it (decided by a
supervisor, never the requester, audited with both identities), top-ups, the console's page, and a customer 360
whose failing section is marked unavailable instead of failing the view."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openbss.platform.audit import AuditRecord
from openbss.platform.auth import issue_token
from tests.billing.helpers import CB, billing_account, recurring, run, sell

CARE = "/api/care/v1"
C360 = "/tmf-api/customerManagement/v4/customer360"


def agent(tenant: str, subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(tenant, list(roles), subject=subject)}"}


async def issued_bill(client: httpx.AsyncClient, rt: Any, tenant: str, h: dict[str, str]) -> dict[str, Any]:
    account = await billing_account(client, h, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("50.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    bills = (await client.get(f"{CB}/customerBill", headers=h,
                              params={"billingAccount.id": account["id"]})).json()
    [bill] = [b for b in bills if b.get("category") != "creditNote"]
    assert bill["taxIncludedAmount"]["value"] == 60
    return {"bill": bill, "account": account}


async def set_limit(client: httpx.AsyncClient, h: dict[str, str], kind: str, who: str, value: str) -> Any:
    r = await client.put(f"{CARE}/adjustmentLimit", headers=h,
                         json={"appliesTo": {"kind": kind, "id": who}, "amount": {"value": value, "unit": "EUR"}})
    assert r.status_code == 200, r.text
    return r.json()


async def audit_of(rt: Any, tenant: str, kind: str, rid: str) -> list[AuditRecord]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(select(AuditRecord).where(
            AuditRecord.resource_type == kind, AuditRecord.resource_id == rid).order_by(AuditRecord.id))).scalars())


async def test_adjustment_within_limit_is_applied_above_it_needs_a_supervisor(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    world = await issued_bill(client, rt, tenant, admin_headers)
    bill = world["bill"]
    sup = agent(tenant, "sup-ada", "care_supervisor")
    alice = agent(tenant, "agent-alice", "csr_agent")
    bob = agent(tenant, "agent-bob", "csr_agent")
    # an agent without any limit configured may credit nothing alone
    r = await client.post(f"{CARE}/billAdjustment", headers=alice,
                          json={"bill": {"id": bill["id"]}, "amount": "1.00", "reason": "goodwill"})
    assert r.status_code == 202 and r.json()["status"] == "pendingApproval", r.text
    first = r.json()["approval"]
    # limits: agents may not set them; a role's limit, and one agent's own (which wins)
    r = await client.put(f"{CARE}/adjustmentLimit", headers=alice,
                         json={"appliesTo": {"kind": "role", "id": "csr_agent"},
                               "amount": {"value": "1000", "unit": "EUR"}})
    assert r.status_code == 403
    await set_limit(client, sup, "role", "csr_agent", "10.00")
    await set_limit(client, sup, "agent", "agent-bob", "25.00")
    me = (await client.get(f"{CARE}/agent/me", headers=bob)).json()
    assert me["adjustmentLimit"] == {"value": "25.0000", "unit": "EUR"} and me["canApprove"] is False
    assert (await client.get(f"{CARE}/agent/me", headers=alice)).json()["adjustmentLimit"]["value"] == "10.0000"

    # within the limit: a credit note at once, audited with the agent
    r = await client.post(f"{CARE}/billAdjustment", headers=alice,
                          json={"bill": {"id": bill["id"]}, "amount": "10.00", "reason": "outage",
                                "customer": {"id": "c1"}})
    assert r.status_code == 201, r.text
    note = r.json()["creditNote"]
    assert note["category"] == "creditNote" and note["taxIncludedAmount"]["value"] == -10
    [rec] = await audit_of(rt, tenant, "BillAdjustment", note["id"])
    assert rec.actor == "agent-alice" and rec.changes["adjustment"]["new"]["amount"] == "10.00"

    # above it: nothing credited, an approval request
    r = await client.post(f"{CARE}/billAdjustment", headers=alice,
                          json={"bill": {"id": bill["id"]}, "amount": "10.01", "reason": "outage, 2 weeks"})
    assert r.status_code == 202, r.text
    approval = r.json()["approval"]
    assert approval["status"] == "pending" and approval["amount"] == {"value": "10.01", "unit": "EUR"}
    assert approval["requestedBy"] == "agent-alice" and approval["requesterLimit"]["value"] == "10.0000"
    bills = (await client.get(f"{CB}/customerBill", headers=admin_headers,
                              params={"billingAccount.id": world["account"]["id"]})).json()
    assert len(bills) == 2  # the bill and the one credit note
    # the requester and other agents cannot decide it; agents see only their own requests
    assert (await client.post(f"{CARE}/approval/{approval['id']}/approve", headers=alice)).status_code == 403
    assert (await client.post(f"{CARE}/approval/{approval['id']}/approve", headers=bob)).status_code == 403
    assert {a["id"] for a in (await client.get(f"{CARE}/approval", headers=bob)).json()} == set()
    assert {a["id"] for a in (await client.get(f"{CARE}/approval?status=pending", headers=alice)).json()} == {
        first["id"], approval["id"]}
    # a supervisor approves: the credit note is issued then, once
    r = await client.post(f"{CARE}/approval/{approval['id']}/approve", headers=sup, json={"reason": "ok"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "approved" and done["decidedBy"] == "sup-ada" and done["creditNote"]["id"]
    again = await client.post(f"{CARE}/approval/{approval['id']}/approve", headers=sup)
    assert again.status_code == 409 and again.json()["code"] == "APPROVAL_DECIDED"
    credited = (await client.get(f"{CB}/customerBill/{done['creditNote']['id']}", headers=admin_headers)).json()
    assert Decimal(str(credited["taxIncludedAmount"]["value"])) == Decimal("-10.01")
    records = await audit_of(rt, tenant, "CareApproval", approval["id"])
    assert [(x.action, x.actor) for x in records] == [("create", "agent-alice"), ("approve", "sup-ada")]
    assert records[1].changes["requestedBy"]["new"] == "agent-alice"
    assert records[1].changes["decidedBy"]["new"] == "sup-ada"
    # a rejected request credits nothing
    r = await client.post(f"{CARE}/approval/{first['id']}/reject", headers=sup, json={"reason": "no"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and "creditNote" not in r.json()
    # a supervisor's own request is decided by another supervisor
    r = await client.post(f"{CARE}/billAdjustment", headers=sup,
                          json={"bill": {"id": bill["id"]}, "amount": "5", "reason": "goodwill"})
    assert r.status_code == 202
    own = r.json()["approval"]["id"]
    r = await client.post(f"{CARE}/approval/{own}/approve", headers=sup)
    assert r.status_code == 403 and r.json()["code"] == "SELF_APPROVAL"


@pytest.mark.parametrize("amount", ["-1", "0", "abc", "1.00001", True])
async def test_a_bad_adjustment_is_refused_and_writes_nothing(
        client: Any, tenant: str, amount: Any) -> None:
    alice = agent(tenant, "agent-x", "csr_agent")
    r = await client.post(f"{CARE}/billAdjustment", headers=alice,
                          json={"bill": {"id": "b"}, "amount": amount, "reason": "x"})
    assert r.status_code in (400, 422) and "amount" in r.text, r.text


async def test_customers_cannot_adjust_or_approve(client: Any, tenant: str) -> None:
    h = {"Authorization": f"Bearer {issue_token(tenant, ['customer'], party='p1')}"}
    for path in ("/billAdjustment", "/approval/x/approve", "/topUp"):
        r = await client.post(f"{CARE}{path}", headers=h, json={})
        assert r.status_code == 403, (path, r.text)


async def test_the_console_page_is_served_with_its_assets(client: Any) -> None:
    r = await client.get("/console/")
    assert r.status_code == 200 and 'src="/console/assets/app.js"' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    for asset in ("app.js", "api.js", "dom.js", "console.css"):
        assert (await client.get(f"/console/assets/{asset}")).status_code == 200


async def test_a_failing_360_section_is_marked_unavailable(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    world = await issued_bill(client, rt, tenant, admin_headers)
    customer_id = world["account"]["relatedParty"][0]["id"]

    async def broken(ctx: Any, customer: dict[str, Any]) -> Any:
        from sqlalchemy import text
        await ctx.session.execute(text("SELECT * FROM a_table_that_does_not_exist"))  # the transaction's error

    registry = services.personal_data
    views = dict(registry.customer_views)
    registry.customer_views = {"broken": broken, **views}  # first: the others are read after its failure
    try:
        r = await client.get(f"{C360}/{customer_id}", headers=admin_headers)
    finally:
        registry.customer_views = views
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["broken"]["unavailable"] is True and "broken" in view["broken"]["reason"]
    assert view["unavailableSections"] == ["broken"]
    # the sections after the failed one are read in the same, still usable transaction
    assert [b["id"] for b in view["bills"]] == [world["bill"]["id"]]
    assert isinstance(view["accounts"], list) and view["accounts"]


async def test_an_agent_tops_up_a_prepaid_line_audited_and_recorded(client: Any, rt: Any, tenant: str) -> None:
    from tests.charging.helpers import account_state, open_account

    prepaid = await open_account(rt, tenant, balance="5.00")
    postpaid = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    alice = agent(tenant, "agent-alice", "csr_agent")
    await set_limit(client, agent(tenant, "sup-ada", "care_supervisor"), "agent", "agent-alice", "20.00")
    r = await client.post(f"{CARE}/topUp", headers=alice, json={"subscriber": prepaid["msisdn"], "amount": "10.50"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["status"] == "applied" and out["agent"] == "agent-alice"
    assert out["amount"] == {"value": "10.50", "unit": "EUR"} and Decimal(out["balance"]["value"]) == Decimal("15.50")
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 1550  # minor units
    [rec] = await audit_of(rt, tenant, "PrepaidTopUp", prepaid["id"])
    assert rec.actor == "agent-alice"
    party = prepaid["party_id"]
    found = (await client.get(f"/tmf-api/partyInteraction/v4/partyInteraction?relatedParty.id={party}",
                              headers=alice)).json()
    assert [i["reason"] for i in found] == ["Prepaid top-up by an agent"]
    # refused, nothing credited: a postpaid line, sub-cent amounts, unknown lines
    for body, status in (({"subscriber": postpaid["msisdn"], "amount": "5"}, 409),
                         ({"subscriber": prepaid["msisdn"], "amount": "1.005"}, 400),
                         ({"subscriber": "+33000000000", "amount": "5"}, 404)):
        r = await client.post(f"{CARE}/topUp", headers=alice, json=body)
        assert r.status_code == status, (body, r.text)
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 1550


async def test_two_supervisors_approving_at_once_issue_one_credit_note(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    import asyncio

    world = await issued_bill(client, rt, tenant, admin_headers)
    alice = agent(tenant, "agent-alice", "csr_agent")
    r = await client.post(f"{CARE}/billAdjustment", headers=alice,
                          json={"bill": {"id": world["bill"]["id"]}, "amount": "7.00", "reason": "goodwill"})
    approval = r.json()["approval"]["id"]
    sups = [agent(tenant, f"sup-{i}", "care_supervisor") for i in range(4)]
    answers = await asyncio.gather(*[client.post(f"{CARE}/approval/{approval}/approve", headers=h) for h in sups])
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [a.text for a in answers]
    bills = (await client.get(f"{CB}/customerBill", headers=admin_headers,
                              params={"billingAccount.id": world["account"]["id"]})).json()
    notes = [b for b in bills if b.get("category") == "creditNote"]
    assert [n["taxIncludedAmount"]["value"] for n in notes] == [-7]
    records = await audit_of(rt, tenant, "CareApproval", approval)
    assert [x.action for x in records] == ["create", "approve"]


async def test_a_top_up_above_the_limit_waits_for_a_supervisor_and_is_credited_once(
        client: Any, rt: Any, tenant: str) -> None:
    import asyncio

    from tests.charging.helpers import account_state, open_account

    prepaid = await open_account(rt, tenant, balance="5.00")
    alice = agent(tenant, "agent-alice", "csr_agent")
    sup = agent(tenant, "sup-ada", "care_supervisor")
    await set_limit(client, sup, "role", "csr_agent", "20.00")
    # above the limit: refused as such, an approval request instead, nothing credited
    r = await client.post(f"{CARE}/topUp", headers=alice,
                          json={"subscriber": prepaid["msisdn"], "amount": "25", "reason": "network outage"})
    assert r.status_code == 202, r.text
    approval = r.json()["approval"]
    assert r.json()["status"] == "pendingApproval" and r.headers["location"] == approval["href"]
    assert approval["kind"] == "topUp" and approval["subscriber"] == prepaid["msisdn"]
    assert Decimal(approval["amount"]["value"]) == 25 and approval["amount"]["unit"] == "EUR"
    assert approval["requestedBy"] == "agent-alice" and Decimal(approval["requesterLimit"]["value"]) == 20
    assert "bill" not in approval
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 500
    # the requester cannot decide it, nor can another agent
    r = await client.post(f"{CARE}/approval/{approval['id']}/approve", headers=alice)
    assert r.status_code == 403, r.text
    # four supervisors approve at once: one wins, the line is credited once
    sups = [agent(tenant, f"sup-{i}", "care_supervisor") for i in range(4)]
    answers = await asyncio.gather(*[client.post(f"{CARE}/approval/{approval['id']}/approve", headers=h)
                                     for h in sups])
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [a.text for a in answers]
    [won] = [a.json() for a in answers if a.status_code == 200]
    assert won["status"] == "approved" and won["topUp"]["agent"] == "agent-alice"
    assert won["topUp"]["amount"] == {"value": "25.00", "unit": "EUR"}
    assert won["topUp"]["approvedBy"] == won["decidedBy"]
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 3000
    # audited: the request by the agent, the decision and the top-up by the supervisor, naming the agent
    records = await audit_of(rt, tenant, "CareApproval", approval["id"])
    assert [(x.action, x.actor) for x in records] == [("create", "agent-alice"), ("approve", won["decidedBy"])]
    [topup] = await audit_of(rt, tenant, "PrepaidTopUp", prepaid["id"])
    assert topup.actor == won["decidedBy"]
    # decided once
    r = await client.post(f"{CARE}/approval/{approval['id']}/reject", headers=sup)
    assert r.status_code == 409 and r.json()["code"] == "APPROVAL_DECIDED"
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 3000


async def test_a_rejected_top_up_credits_nothing_and_bad_requests_write_nothing(
        client: Any, rt: Any, tenant: str) -> None:
    from openbss.care.models import CareApproval
    from tests.charging.helpers import account_state, open_account

    prepaid = await open_account(rt, tenant, balance="5.00")
    postpaid = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    bob = agent(tenant, "agent-bob", "csr_agent")  # no limit configured: every top-up needs an approval
    sup = agent(tenant, "sup-ada", "care_supervisor")
    r = await client.post(f"{CARE}/topUp", headers=bob, json={"subscriber": prepaid["msisdn"], "amount": "3"})
    assert r.status_code == 202, r.text
    approval = r.json()["approval"]["id"]
    r = await client.post(f"{CARE}/approval/{approval}/reject", headers=sup, json={"reason": "not eligible"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and "topUp" not in r.json()
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 500
    # a postpaid line, sub-cent amounts, unknown lines: refused before any approval request is written
    for body, status in (({"subscriber": postpaid["msisdn"], "amount": "50"}, 409),
                         ({"subscriber": prepaid["msisdn"], "amount": "100.005"}, 400),
                         ({"subscriber": "+33000000000", "amount": "50"}, 404)):
        r = await client.post(f"{CARE}/topUp", headers=bob, json=body)
        assert r.status_code == status, (body, r.text)
    async with rt.db.transaction(tenant) as session:
        rows = list((await session.execute(select(CareApproval).where(
            CareApproval.requested_by == "agent-bob"))).scalars())
    assert [x.id for x in rows] == [approval]


async def test_an_adjustment_finer_than_the_bills_currency_is_refused_and_writes_nothing(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """10.005 EUR is no amount a credit note can credit (it would credit 10.01, not what the limit, the approval
    and the audit record say): refused (400) for an agent and for an admin alike, no credit note, no approval."""
    world = await issued_bill(client, rt, tenant, admin_headers)
    await set_limit(client, admin_headers, "agent", "agent-fine", "25")
    for h in (agent(tenant, "agent-fine", "csr_agent"), admin_headers):
        for value in ("10.005", "30.0001"):  # within the limit, above it
            r = await client.post(f"{CARE}/billAdjustment", headers=h,
                                  json={"bill": {"id": world["bill"]["id"]}, "amount": value, "reason": "Outage"})
            assert r.status_code == 400 and "decimals" in r.json()["message"], r.text
    bills = (await client.get(f"{CB}/customerBill", headers=admin_headers,
                              params={"billingAccount.id": world["account"]["id"]})).json()
    assert [b.get("category") for b in bills] != ["creditNote"] and len(bills) == 1
    assert (await client.get(f"{CARE}/approval", headers=admin_headers)).json() == []
    ok = await client.post(f"{CARE}/billAdjustment", headers=admin_headers,
                           json={"bill": {"id": world["bill"]["id"]}, "amount": "10.0100", "reason": "Outage"})
    assert ok.status_code == 201 and ok.json()["creditNote"]["taxIncludedAmount"]["value"] == -10.01, ok.text


async def test_an_agents_limit_applies_to_what_they_credit_in_24_hours_not_to_each_piece(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    from tests.charging.helpers import account_state, open_account

    world = await issued_bill(client, rt, tenant, admin_headers)
    bill = world["bill"]
    prepaid = await open_account(rt, tenant, balance="5.00")
    sup = agent(tenant, "sup-ada", "care_supervisor")
    carl = agent(tenant, "agent-carl", "csr_agent")
    await set_limit(client, sup, "agent", "agent-carl", "10.00")

    def credit(amount: str) -> Any:
        return client.post(f"{CARE}/billAdjustment", headers=carl,
                           json={"bill": {"id": bill["id"]}, "amount": amount, "reason": "goodwill"})

    assert (await credit("6.00")).status_code == 201
    # 6 + 5 is above the limit of 10: the second piece waits for a supervisor, nothing credited
    r = await credit("5.00")
    assert r.status_code == 202 and r.json()["status"] == "pendingApproval", r.text
    # a top-up counts against the same limit: 6 + 4 = 10 is within it, anything more is not
    r = await client.post(f"{CARE}/topUp", headers=carl, json={"subscriber": prepaid["msisdn"], "amount": "4"})
    assert r.status_code == 201 and r.json()["status"] == "applied", r.text
    r = await client.post(f"{CARE}/topUp", headers=carl, json={"subscriber": prepaid["msisdn"], "amount": "0.01"})
    assert r.status_code == 202, r.text
    me = (await client.get(f"{CARE}/agent/me", headers=carl)).json()
    assert me["adjustmentLimit"]["value"] == "10.0000" and Decimal(me["adjustmentUsed"]["value"]) == 10
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 900
    notes = [b for b in (await client.get(f"{CB}/customerBill", headers=admin_headers,
                                          params={"billingAccount.id": world["account"]["id"]})).json()
             if b.get("category") == "creditNote"]
    assert [n["taxIncludedAmount"]["value"] for n in notes] == [-6]
    # another agent's headroom is their own; an approved request does not use the requester's
    await set_limit(client, sup, "agent", "agent-dora", "10.00")
    dora = agent(tenant, "agent-dora", "csr_agent")
    r = await client.post(f"{CARE}/billAdjustment", headers=dora,
                          json={"bill": {"id": bill["id"]}, "amount": "10", "reason": "goodwill"})
    assert r.status_code == 201, r.text


async def test_two_credits_at_once_cannot_both_use_the_same_headroom(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    world = await issued_bill(client, rt, tenant, admin_headers)
    sup = agent(tenant, "sup-ada", "care_supervisor")
    eve = agent(tenant, "agent-eve", "csr_agent")
    await set_limit(client, sup, "agent", "agent-eve", "10.00")
    results = await asyncio.gather(*(client.post(
        f"{CARE}/billAdjustment", headers=eve,
        json={"bill": {"id": world["bill"]["id"]}, "amount": "6.00", "reason": "goodwill"}) for _ in range(3)))
    assert sorted(r.status_code for r in results) == [201, 202, 202], [r.text for r in results]

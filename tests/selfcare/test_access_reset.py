"""An agent resets a customer's self-care access from the console: every portal session ends, the sign-in
identities are unlinked (the next sign-in proves again who it is), a sign-in link is sent through messaging, the
reset is audited with the agent's identity and recorded as an interaction; only staff with care:write may do it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from openbss.platform.audit import AuditRecord
from openbss.platform.auth import issue_token
from openbss.selfcare.models import SelfcareIdentity, SelfcareSession
from openbss.selfcare.security import digest
from tests.selfcare.portal import last_message, new_customer, next_matching, sign_in

RESET = "/api/care/v1/selfcareAccessReset"


def staff(tenant: str, subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(tenant, list(roles), subject=subject)}"}


async def audit_of(rt: Any, tenant: str, customer_id: str) -> list[AuditRecord]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(select(AuditRecord).where(
            AuditRecord.resource_type == "SelfcareAccess", AuditRecord.resource_id == customer_id))).scalars())


async def test_an_agent_resets_a_customers_self_care_access(
        rt: Any, portal_tenant: str, client: httpx.AsyncClient, portal_client: httpx.AsyncClient, portal_app: Any,
) -> None:
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email)
    await sign_in(portal_client, user)
    assert (await portal_client.get("/selfcare/api/customer")).status_code == 200
    key = digest(portal_client.cookies.get("sc_session"))

    alice = staff(portal_tenant, "agent-alice", "csr_agent")
    r = await client.post(RESET, headers=alice, json={"customer": {"id": cust["customer_id"]},
                                                      "reason": "lost phone; caller verified"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["sessionsRevoked"] == 1 and out["identitiesUnlinked"] == 1 and out["resetBy"] == "agent-alice"
    assert out["notified"]["channel"] == "email" and user.email not in str(out)  # masked
    assert out["signInLink"].endswith("/selfcare/")

    # the session is dead (the portal serves a session from memory for at most selfcare_cache_seconds)
    portal_app.state.selfcare.sessions.drop(key)
    r = await portal_client.get("/selfcare/api/customer")
    assert r.status_code == 401 and r.json()["code"] == "SESSION_EXPIRED"
    async with rt.db.transaction(portal_tenant) as session:
        assert (await session.get(SelfcareSession, key)).revoked_at is not None  # type: ignore[union-attr]
        links = (await session.execute(select(SelfcareIdentity).where(
            SelfcareIdentity.customer_id == cust["customer_id"]))).scalars().all()
        assert links == []
    text = await last_message(rt, portal_tenant, user.email)
    assert text is not None and "reset" in text and out["signInLink"] in text

    # audited with the agent's identity, recorded as an interaction of the customer
    [rec] = await audit_of(rt, portal_tenant, cust["customer_id"])
    assert rec.action == "reset" and rec.actor == "agent-alice"
    assert rec.changes["access"]["new"]["reason"] == "lost phone; caller verified"
    found = (await client.get("/tmf-api/partyInteraction/v4/partyInteraction", headers=alice,
                              params={"relatedParty.id": cust["party_id"]})).json()
    assert [i["reason"] for i in found] == ["Self-care access reset"]
    assert "agent-alice" in found[0]["description"]

    # signing in again links again (verified email) and works
    await sign_in(portal_client, user)
    assert (await portal_client.get("/selfcare/api/customer")).status_code == 200


async def test_a_reset_is_refused_to_customers_and_for_unknown_customers(
        rt: Any, portal_tenant: str, client: httpx.AsyncClient) -> None:
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email)
    customer_token = {"Authorization": "Bearer " + issue_token(portal_tenant, ["customer"], party=cust["party_id"])}
    r = await client.post(RESET, headers=customer_token, json={"customer": {"id": cust["customer_id"]}})
    assert r.status_code == 403, r.text
    r = await client.post(RESET, headers=staff(portal_tenant, "net-ops", "network_ops"),
                          json={"customer": {"id": cust["customer_id"]}})
    assert r.status_code == 403, r.text
    alice = staff(portal_tenant, "agent-alice", "csr_agent")
    r = await client.post(RESET, headers=alice, json={"customer": {"id": "no-such-customer"}})
    assert r.status_code == 404 and "no-such-customer" in r.json()["message"], r.text
    r = await client.post(RESET, headers=alice, json={"customer": {"id": cust["customer_id"]}, "reason": "x" * 501})
    assert r.status_code in (400, 422), r.text
    r = await client.post(RESET, headers=alice, json={})
    assert r.status_code in (400, 422) and "customer" in r.text, r.text
    assert await audit_of(rt, portal_tenant, cust["customer_id"]) == []
    assert await audit_of(rt, portal_tenant, "no-such-customer") == []

"""The audit trail covers every create/update/delete of parties, roles, customers and accounts: actor, request id,
time, changed attributes, personal values masked (by each resource's codec)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer
from tests.customer.helpers import BA, CUST, IND, ROLE, make_billing_account, make_customer, make_individual

AUDIT = "/audit/v1/auditRecord"


async def trail(client: httpx.AsyncClient, tenant: str, kind: str, rid: str) -> list[dict[str, Any]]:
    r = await client.get(AUDIT, params={"resourceType": kind, "resourceId": rid}, headers=bearer(tenant))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_every_change_is_audited_with_personal_data_masked(client: httpx.AsyncClient, tenant: str) -> None:
    from openbss.platform.auth import issue_token

    agent = {"Authorization": f"Bearer {issue_token(tenant, ['csr_agent'], subject='agent-007')}",
             "X-Request-ID": "req-audit-1"}
    h = bearer(tenant)
    ind = await make_individual(client, agent)
    customer = await make_customer(client, h, ind)
    account = await make_billing_account(client, h, customer)
    role = (await client.post(ROLE, json={"name": "reseller", "engagedParty": {
        "id": ind["id"], "@referredType": "Individual"}}, headers=h)).json()

    assert (await client.patch(f"{IND}/{ind['id']}", json={"familyName": "King", "gender": "female"},
                               headers=h)).status_code == 200
    assert (await client.patch(f"{CUST}/{customer['id']}", json={"status": "active", "name": "Ada King"},
                               headers=h)).status_code == 200
    assert (await client.patch(f"{BA}/{account['id']}", json={"paymentTermsDays": 30}, headers=h)).status_code == 200
    assert (await client.delete(f"{ROLE}/{role['id']}", headers=h)).status_code == 204

    recs = await trail(client, tenant, "Individual", ind["id"])
    assert [r["action"] for r in recs] == ["create", "update"]
    created = recs[0]
    assert created["actor"] == "agent-007" and created["roles"] == ["csr_agent"]
    assert created["requestId"] == "req-audit-1" and created["at"]
    assert created["changes"]["givenName"] == {"old": None, "new": "***"}
    assert created["changes"]["contactMedium"] == {"old": None, "new": "***"}
    assert created["changes"]["birthDate"] == {"old": None, "new": "***"}
    assert created["changes"]["status"] == {"old": None, "new": "initialized"}
    update = recs[1]["changes"]
    assert update["familyName"] == {"old": "***", "new": "***"} and update["fullName"] == {"old": "***", "new": "***"}
    assert update["gender"] == {"old": None, "new": "female"}
    assert "Lovelace" not in str(recs) and "King" not in str(recs)

    recs = await trail(client, tenant, "Customer", customer["id"])
    assert [r["action"] for r in recs] == ["create", "update", "update"]  # the account link, then the patch
    assert recs[2]["changes"]["status"] == {"old": "initialized", "new": "active"}
    assert recs[2]["changes"]["name"] == {"old": "***", "new": "***"}

    recs = await trail(client, tenant, "BillingAccount", account["id"])
    assert [r["action"] for r in recs] == ["create", "update"]
    assert recs[1]["changes"]["paymentTermsDays"] == {"old": 14, "new": 30}
    assert recs[0]["changes"]["contact"] == {"old": None, "new": "***"}
    assert recs[0]["changes"]["currency"] == {"old": None, "new": "EUR"}

    recs = await trail(client, tenant, "PartyRole", role["id"])
    assert [r["action"] for r in recs] == ["create", "delete"]


async def test_only_admins_read_the_trail(client: httpx.AsyncClient, tenant: str) -> None:
    r = await client.get(AUDIT, params={"resourceType": "Customer", "resourceId": "x"},
                         headers=bearer(tenant, "csr_agent"))
    assert r.status_code == 403

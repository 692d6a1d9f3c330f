"""Who may write what in collections: exclusions from dunning are a supervisor's or finance's decision (permission
``collectionsconfig``), an agent reads them; an agent records promises to pay."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from openbss.collections.models import Exclusion, Promise
from tests.collections.helpers import API, accounts
from tests.conftest import bearer, make_tenant

MERGE = {"Content-Type": "application/merge-patch+json"}


async def _exclusions(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as s:
        return int(await s.scalar(select(func.count()).select_from(Exclusion)) or 0)


async def test_exclusions_are_written_by_supervisors_and_finance_not_agents(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dunperm")
    [account] = await accounts(client, tenant, 1)
    body = {"billingAccount": {"id": account["id"]}, "reason": "dispute"}
    agent = bearer(tenant, "csr_agent")
    r = await client.post(f"{API}/dunningExclusion", json=body, headers=agent)
    assert r.status_code == 403 and "collectionsconfig:write" in r.json()["message"], r.text
    assert await _exclusions(rt, tenant) == 0  # nothing written
    r = await client.post(f"{API}/dunningExclusion", json=body, headers=bearer(tenant, "care_supervisor"))
    assert r.status_code == 201, r.text
    exclusion = r.json()["id"]
    # the agent sees it (and so does not action the account), but neither changes nor removes it
    r = await client.get(f"{API}/dunningExclusion", headers=agent)
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [exclusion]
    r = await client.patch(f"{API}/dunningExclusion/{exclusion}", json={"reason": "vip"}, headers={**agent, **MERGE})
    assert r.status_code == 403, r.text
    r = await client.delete(f"{API}/dunningExclusion/{exclusion}", headers=agent)
    assert r.status_code == 403, r.text
    assert await _exclusions(rt, tenant) == 1
    finance = bearer(tenant, "billing_ops")
    r = await client.patch(f"{API}/dunningExclusion/{exclusion}", json={"reason": "vip"},
                           headers={**finance, **MERGE})
    assert r.status_code == 200 and r.json()["reason"] == "vip", r.text
    r = await client.delete(f"{API}/dunningExclusion/{exclusion}", headers=finance)
    assert r.status_code == 204, r.text
    # an agent still records a promise to pay
    r = await client.post(f"{API}/promiseToPay", headers=agent, json={
        "billingAccount": {"id": account["id"]}, "amount": {"unit": "EUR", "value": 10},
        "promisedDate": date.today().isoformat()})
    assert r.status_code == 201, r.text


async def test_a_customer_promises_to_pay_for_its_own_accounts_only(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dunself")
    [mine] = await accounts(client, tenant, 1)
    [theirs] = await accounts(client, tenant, 1)  # another customer's
    owner = mine["relatedParty"][0]["id"]
    me = bearer(tenant, "customer", party=owner)
    body = {"amount": {"unit": "EUR", "value": 25}, "promisedDate": date.today().isoformat()}
    r = await client.post(f"{API}/promiseToPay", headers=me, json={**body, "billingAccount": {"id": theirs["id"]}})
    assert r.status_code == 404 and "among yours" in r.json()["message"], r.text
    async with rt.db.transaction(tenant) as s:
        assert not await s.scalar(select(func.count()).select_from(Promise))  # nothing written
    r = await client.post(f"{API}/promiseToPay", headers=me, json={
        **body, "billingAccount": {"id": mine["id"]}, "relatedParty": [{"id": theirs["relatedParty"][0]["id"]}]})
    assert r.status_code == 400 and "relatedParty" in r.text, r.text
    r = await client.post(f"{API}/promiseToPay", headers=me, json={**body, "billingAccount": {"id": mine["id"]}})
    assert r.status_code == 201, r.text
    promise = r.json()
    assert promise["channel"] == "selfcare"
    assert {"id": owner, "@referredType": "Customer"} in promise["relatedParty"]  # the account's parties
    # the other customer sees nothing of it; an agent sees it
    other = bearer(tenant, "customer", party=theirs["relatedParty"][0]["id"])
    assert (await client.get(f"{API}/promiseToPay", headers=other)).json() == []
    assert (await client.get(f"{API}/promiseToPay/{promise['id']}", headers=other)).status_code == 404
    assert [p["id"] for p in (await client.get(f"{API}/promiseToPay", headers=me)).json()] == [promise["id"]]
    assert (await client.get(f"{API}/promiseToPay", headers=bearer(tenant, "csr_agent"))).json()[0]["id"] == \
        promise["id"]
    # nothing else of collections is a customer's
    r = await client.patch(f"{API}/promiseToPay/{promise['id']}", json={"state": "cancelled"},
                           headers={**me, **MERGE})
    assert r.status_code == 403, r.text
    for path in ("dunningEpisode", "dunningPolicy", "dunningExclusion", "paymentPlan", "report/inCollection"):
        assert (await client.get(f"{API}/{path}", headers=me)).status_code == 403, path
    r = await client.post(f"{API}/dunningExclusion", headers=me, json={"billingAccount": {"id": mine["id"]},
                                                                      "reason": "vip"})
    assert r.status_code == 403, r.text

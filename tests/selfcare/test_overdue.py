"""An overdue bill in the portal: the notice with the amount due, the pay button (the account's default card through
payments' sandbox gateway: the payment closes the dunning episode) and the promise-to-pay form (recorded by
collections as the customer, for its own accounts only)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from openbss.collections.models import Episode, Promise
from tests.conftest import deliver_all
from tests.selfcare.portal import new_customer, next_matching, overdue_customer, sign_in

CSRF = "sc_csrf"


def _writes(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get(CSRF) or "", "Content-Type": "application/json"}


async def _episode(rt: Any, tenant: str, account_id: str) -> Episode:
    async with rt.db.transaction(tenant) as s:
        return (await s.execute(select(Episode).where(Episode.billing_account_id == account_id)
                                .order_by(Episode.opened_at.desc()))).scalars().first()


async def test_overdue_notice_pay_button_closes_the_episode(rt: Any, portal_tenant: str,
                                                            portal_client: httpx.AsyncClient,
                                                            other_client: httpx.AsyncClient) -> None:
    ua, ub = next_matching(), next_matching()
    a = await new_customer(rt, portal_tenant, email=ua.email, given="Olga", family="Owens")
    b = await new_customer(rt, portal_tenant, email=ub.email, given="Piet", family="Pay")
    bill = await overdue_customer(rt, portal_tenant, a, "25.00")
    theirs = await overdue_customer(rt, portal_tenant, b, "10.00", card=None)
    account = bill["billingAccountId"]
    assert (await _episode(rt, portal_tenant, account)).state == "open"
    await sign_in(portal_client, ua)
    await sign_in(other_client, ub)

    due = (await portal_client.get("/selfcare/api/bills")).json()["due"]
    [notice] = [d for d in due if d["accountId"] == account]
    total = f"{Decimal(str(bill['taxIncludedAmount']['value'])):.2f}"
    assert notice["overdue"] is True and notice["daysPastDue"] == (
        date.today() - date.fromisoformat(notice["dueDate"])).days > 0
    assert notice["amountDue"] == {"value": total, "unit": "EUR"} and "promise" not in notice

    # another customer's account: not found; unknown attributes and a missing CSRF token refused
    r = await portal_client.post("/selfcare/api/bills/pay", json={"account": theirs["billingAccountId"]},
                                 headers=_writes(portal_client))
    assert r.status_code == 404, r.text
    r = await portal_client.post("/selfcare/api/bills/pay", json={"account": account, "amount": 1},
                                 headers=_writes(portal_client))
    assert r.status_code == 400 and "amount" in r.json()["message"], r.text
    r = await portal_client.post("/selfcare/api/bills/pay", json={"account": account},
                                 headers={"Content-Type": "application/json"})
    assert r.status_code == 403, r.text
    # a customer without a card on file is told so
    r = await other_client.post("/selfcare/api/bills/pay", json={"account": theirs["billingAccountId"]},
                                headers=_writes(other_client))
    assert r.status_code == 400 and "payment method" in r.json()["message"], r.text

    r = await portal_client.post("/selfcare/api/bills/pay", json={"account": account}, headers=_writes(portal_client))
    assert r.status_code == 200, r.text
    payment = r.json()["payment"]
    assert payment["status"] == "succeeded" and payment["amount"] == {"value": total, "unit": "EUR"}
    # a second click pays once
    again = await portal_client.post("/selfcare/api/bills/pay", json={"account": account},
                                     headers=_writes(portal_client))
    assert again.status_code in (200, 409), again.text
    if again.status_code == 200:
        assert again.json()["payment"]["id"] == payment["id"]
    await deliver_all(rt)  # collections hears of the payment: the episode closes
    episode = await _episode(rt, portal_tenant, account)
    assert episode.state == "closed" and episode.close_reason == "paid"
    due = (await portal_client.get("/selfcare/api/bills")).json()["due"]
    assert next(d for d in due if d["accountId"] == account)["overdue"] is False


async def test_promise_to_pay_from_the_portal(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient,
                                              other_client: httpx.AsyncClient) -> None:
    ua, ub = next_matching(), next_matching()
    a = await new_customer(rt, portal_tenant, email=ua.email, given="Quinn", family="Quick")
    b = await new_customer(rt, portal_tenant, email=ub.email, given="Rosa", family="Rich")
    bill = await overdue_customer(rt, portal_tenant, a, "25.00", card=None)
    theirs = await overdue_customer(rt, portal_tenant, b, "10.00", card=None)
    account = bill["billingAccountId"]
    await sign_in(portal_client, ua)
    await sign_in(other_client, ub)
    when = (date.today() + timedelta(days=7)).isoformat()

    r = await portal_client.post("/selfcare/api/bills/promise", headers=_writes(portal_client), json={
        "account": theirs["billingAccountId"], "amount": "10", "promisedDate": when})
    assert r.status_code == 404, r.text
    r = await portal_client.post("/selfcare/api/bills/promise", headers=_writes(portal_client), json={
        "account": account, "amount": "30", "promisedDate": (date.today() - timedelta(days=1)).isoformat()})
    assert r.status_code == 400 and "past" in r.json()["message"], r.text  # collections' own rule, relayed
    r = await portal_client.post("/selfcare/api/bills/promise", headers=_writes(portal_client), json={
        "account": account, "amount": "abc", "promisedDate": when})
    assert r.status_code == 400, r.text
    async with rt.db.transaction(portal_tenant) as s:
        assert not (await s.execute(select(Promise).where(Promise.billing_account_id.in_(
            [account, theirs["billingAccountId"]])))).scalars().all()

    r = await portal_client.post("/selfcare/api/bills/promise", headers=_writes(portal_client), json={
        "account": account, "amount": "30.00", "promisedDate": when})
    assert r.status_code == 201, r.text
    assert r.json()["promise"]["state"] == "pending" and r.json()["promise"]["promisedDate"] == when
    notice = next(d for d in (await portal_client.get("/selfcare/api/bills")).json()["due"]
                  if d["accountId"] == account)
    assert notice["promise"] == {"amount": {"value": "30.00", "unit": "EUR"}, "promisedDate": when}
    assert notice["overdue"] is True
    # the episode pauses until the date; the other customer sees no promise
    assert (await _episode(rt, portal_tenant, account)).paused_until == date.fromisoformat(when)
    other = next(d for d in (await other_client.get("/selfcare/api/bills")).json()["due"]
                 if d["accountId"] == theirs["billingAccountId"])
    assert "promise" not in other
    async with rt.db.transaction(portal_tenant) as s:
        [promise] = (await s.execute(select(Promise).where(Promise.billing_account_id == account))).scalars().all()
    assert promise.body["channel"] == "selfcare"

"""Which policy an account gets (explicit assignment > category > segment > default), and versions: a change of
the steps applies to new episodes, running ones keep the version they opened with."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openbss.collections.service import in_quiet_hours
from tests.collections.helpers import API, assert_spec, episodes, overdue, policy, reminder
from tests.conftest import bearer, make_tenant, session_services
from tests.customer.helpers import make_billing_account, make_customer, make_individual


async def test_policy_choice_and_versions(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "pol")
    h = bearer(tenant, "billing_ops")
    admin = bearer(tenant, "admin")
    party = await make_individual(client, admin)
    sme = await make_customer(client, admin, party, characteristic=[
        {"name": "segment", "value": "sme", "valueType": "string"}])
    residential = await make_customer(client, admin, party, characteristic=[
        {"name": "segment", "value": "residential", "valueType": "string"}])
    plain = await make_billing_account(client, admin, residential)
    small_business = await make_billing_account(client, admin, sme)
    key = await make_billing_account(client, admin, sme, accountType="key")
    assigned = await make_billing_account(client, admin, sme, accountType="key")
    default = await policy(client, h, [reminder(0)])
    by_segment = await policy(client, h, [reminder(0)], name="SME", isDefault=False, segment="sme")
    by_category = await policy(client, h, [reminder(0)], name="Key", isDefault=False, customerCategory="key")
    explicit = await policy(client, h, [reminder(0)], name="Hand-picked", isDefault=False,
                            billingAccount=[{"id": assigned["id"]}])
    for a in (plain, small_business, key, assigned):
        await overdue(rt, tenant, a["id"], "50", days=2)
    svc = session_services().collections.service
    await svc.run_tenant(tenant)
    chosen = {e.billing_account_id: (e.policy_id, e.policy_version) for e in await episodes(rt, tenant)}
    assert chosen == {plain["id"]: (default["id"], 1), small_business["id"]: (by_segment["id"], 1),
                      key["id"]: (by_category["id"], 1), assigned["id"]: (explicit["id"], 1)}
    # a second default is refused
    r = await client.post(f"{API}/dunningPolicy", json={"name": "Other", "isDefault": True,
                                                        "dunningStep": [reminder(0)]}, headers=h)
    assert r.status_code == 409
    # a new version of the default policy: the running episode keeps version 1, a new one gets version 2
    r = await client.patch(f"{API}/dunningPolicy/{default['id']}", json={"dunningStep": [reminder(0), reminder(9)]},
                           headers={**h, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    assert_spec("DunningPolicy", r.json())
    r = await client.patch(f"{API}/dunningPolicy/{default['id']}", json={"description": "wording only"},
                           headers={**h, "Content-Type": "application/merge-patch+json"})
    assert r.json()["version"] == 2  # no change of the steps: no new version
    r = await client.patch(f"{API}/dunningPolicy/{default['id']}", json={"version": 7},
                           headers={**h, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 400
    [newcomer] = await _accounts(client, admin, residential, 1)
    await overdue(rt, tenant, newcomer["id"], "50", days=2)
    await svc.run_tenant(tenant)
    chosen = {e.billing_account_id: (e.policy_id, e.policy_version) for e in await episodes(rt, tenant)}
    assert chosen[plain["id"]] == (default["id"], 1) and chosen[newcomer["id"]] == (default["id"], 2)
    episode = (await client.get(f"{API}/dunningEpisode", params={"billingAccount.id": plain["id"]},
                                headers=h)).json()[0]
    assert episode["stepPlanned"] == []  # version 1 had one step, taken


async def _accounts(client: Any, h: dict[str, str], customer: dict[str, Any], n: int) -> list[dict[str, Any]]:
    return [await make_billing_account(client, h, customer) for _ in range(n)]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.tuples(st.integers(0, 23), st.integers(0, 59)), end=st.tuples(st.integers(0, 23), st.integers(0, 59)),
       minutes=st.integers(0, 60 * 24 * 366))
def test_quiet_hours_end_after_now_within_a_day(start: tuple[int, int], end: tuple[int, int], minutes: int) -> None:
    quiet = {"start": f"{start[0]:02d}:{start[1]:02d}", "end": f"{end[0]:02d}:{end[1]:02d}", "timeZone": "UTC"}
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    until = in_quiet_hours(quiet, now, None)
    t, s, e = now.time(), time(*start), time(*end)
    inside = (s <= t < e) if s <= e else (t >= s or t < e)
    assert (until is not None) == inside
    if until is not None:
        assert now < until <= now + timedelta(days=1) and until.time() == e


async def test_amounts_finer_than_their_currency_are_refused(rt: Any, client: Any) -> None:
    """A late fee, a promise or an instalment of 7.555 EUR or 5.5 JPY is no amount a bill or a payment can carry:
    refused when it is given (a late fee of 5.5 JPY failed at every episode's step; a plan's instalments of 33.333
    EUR never added up to a payable total)."""
    tenant = await make_tenant(rt, "pol")
    h = bearer(tenant, "billing_ops")
    admin = bearer(tenant, "admin")
    for fee in ({"unit": "EUR", "value": "7.555"}, {"unit": "JPY", "value": 5.5}):
        r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Fees", "dunningStep": [
            {"name": "Late fee", "action": "lateFee", "daysPastDue": 0, "fee": fee}]})
        assert r.status_code == 400 and "more decimals" in r.text, r.text
    account = await make_billing_account(client, admin, await make_customer(client, admin,
                                                                            await make_individual(client, admin)))
    today = datetime.now(UTC).date()
    r = await client.post(f"{API}/promiseToPay", headers=admin, json={
        "billingAccount": {"id": account["id"]}, "amount": {"unit": "EUR", "value": "10.005"},
        "promisedDate": (today + timedelta(days=5)).isoformat()})
    assert r.status_code == 400 and "more decimals" in r.text, r.text
    r = await client.post(f"{API}/paymentPlan", headers=admin, json={
        "billingAccount": {"id": account["id"]}, "instalment": [
            {"amount": {"unit": "EUR", "value": "33.333"}, "dueDate": (today + timedelta(days=d)).isoformat()}
            for d in (10, 40, 70)]})
    assert r.status_code == 400 and "more decimals" in r.text, r.text
    r = await client.post(f"{API}/dunningPolicy", headers=h, json={"name": "Fees", "dunningStep": [
        {"name": "Late fee", "action": "lateFee", "daysPastDue": 0, "fee": {"unit": "EUR", "value": "7.50"}}]})
    assert r.status_code == 201, r.text

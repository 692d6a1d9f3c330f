"""One path of money logic: a bill run's partition (``bill_accounts``: data read once for all its accounts, rows
written in bulk, drafts issued together) makes exactly the bills, lines, numbers, balances, audit records and
events that billing the same accounts one at a time (``bill_account``, what a bill on demand and a draft's
recomputation use) makes — property-tested on random accounts in two tenants holding the same data."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant, one_time, postpaid_line, recurring, sell, terminate, usage
from tests.conftest import bearer, make_tenant, session_services

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

product_st = st.fixed_dictionaries({
    "fee": st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2),
    "start": st.integers(0, 80),  # days after 1 December 2026
    "activation": st.booleans(),
    "ends": st.none() | st.integers(1, 90),  # days after its start
    "usage": st.lists(st.tuples(st.integers(0, 100), st.integers(1, 5000)), max_size=3),
})
account_st = st.fixed_dictionaries({
    "day": st.integers(1, 31),
    "tz": st.sampled_from(["Europe/Paris", "UTC", "America/New_York"]),
    "products": st.lists(product_st, min_size=0, max_size=3),
})


def _normal(value: Any, tenant: str) -> str:
    """A value with its ids and its tenant blanked (the two tenants' ids differ), as JSON."""
    text = json.dumps(value, default=str, sort_keys=True)
    return UUID.sub("<id>", text.replace(tenant, "<tenant>"))


async def _make(client: Any, rt: Any, tenant: str, accounts: list[dict[str, Any]]) -> list[str]:
    h = bearer(tenant, "admin")
    ids = []
    for n, spec in enumerate(accounts):
        account = await billing_account(client, h, day=spec["day"], tz=spec["tz"])
        for k, p in enumerate(spec["products"]):
            start = datetime(2026, 12, 1, 10, tzinfo=UTC) + timedelta(days=p["start"])
            prices = [recurring(str(p["fee"]), price_id=f"pop-{n}-{k}")]
            if p["activation"]:
                fee = one_time("25.00")
                fee["productOfferingPrice"]["id"] = f"pop-{n}-{k}-activation"
                prices.append(fee)
            product = await sell(rt, tenant, account, start.isoformat().replace("+00:00", "Z"), prices)
            if p["ends"] is not None:
                end = start + timedelta(days=p["ends"])
                await terminate(rt, tenant, product["id"], end.isoformat().replace("+00:00", "Z"))
            if p["usage"]:
                line = await postpaid_line(rt, tenant, account, product["id"], f"+3361{n:03d}{k:02d}{len(ids):03d}")
                for day, amount in p["usage"]:
                    await usage(rt, tenant, line, start + timedelta(days=day, hours=1), amount)
        ids.append(account["id"])
    return ids


async def _state(rt: Any, tenant: str, ids: list[str]) -> dict[str, Any]:
    order = {a: i for i, a in enumerate(ids)}
    bills = await in_tenant(rt, tenant, "SELECT id, billing_account_id, bill_date, state, number, total, "
                                        "balance_after, issue_seq, body FROM billing_customer_bill")
    key = {b.id: (order[b.billing_account_id], b.bill_date) for b in bills}
    lines = await in_tenant(rt, tenant, "SELECT bill_id, charge_key, period_start, period_end, amount, body "
                                        "FROM billing_applied_rate")
    used = await in_tenant(rt, tenant, "SELECT r.bill_id, u.usage_id FROM billing_usage_item u "
                                       "JOIN billing_applied_rate r ON r.id = u.line_id")
    events = await in_tenant(rt, tenant, "SELECT event_type, resource_id, envelope FROM outbox_event "
                                         "WHERE resource_type = 'CustomerBill'")
    audit = await in_tenant(rt, tenant, "SELECT resource_id, action, changes FROM audit_record "
                                        "WHERE resource_type = 'CustomerBill'")

    def body(doc: dict[str, Any]) -> str:
        return _normal({k: v for k, v in doc.items() if k != "lastUpdate"}, tenant)

    return {
        "bills": sorted((key[b.id], b.state, b.number, b.total, b.balance_after, b.issue_seq, body(b.body))
                        for b in bills),
        "lines": sorted((key[ln.bill_id], _normal(ln.charge_key, tenant), ln.period_start, ln.period_end, ln.amount,
                         body(ln.body)) for ln in lines),
        "usage billed": sorted(key[u.bill_id] for u in used),  # (the records' ids differ between the tenants)
        "events": sorted((key[e.resource_id], e.event_type,
                          body(e.envelope["event"]["customerBill"])) for e in events),
        "audit": sorted((key[a.resource_id], a.action, _normal({k: v for k, v in a.changes.items()
                                                                  if k != "lastUpdate"}, tenant)) for a in audit),
    }


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.lists(account_st, min_size=1, max_size=5), st.sampled_from([True, None]))
async def test_a_partition_bills_exactly_as_accounts_billed_one_by_one(client: Any, rt: Any,
                                                                       accounts: list[dict[str, Any]],
                                                                       finalize: bool | None) -> None:
    bulk, alone = await make_tenant(rt, "eqb"), await make_tenant(rt, "eqa")
    ids = {t: await _make(client, rt, t, accounts) for t in (bulk, alone)}
    billing = session_services().billing.service
    for as_of in (date(2027, 1, 15), date(2027, 2, 20), date(2027, 3, 5)):  # each cycle, then the next
        async with rt.db.transaction(bulk) as session:
            report = await billing.run(system_context(bulk, session, "http://testserver"), as_of, finalize=finalize,
                                       account_ids=ids[bulk])
        assert report.failed == {}
        billed = 0
        for account_id in ids[alone]:
            async with rt.db.transaction(alone) as session:
                bill = await billing.bill_account(system_context(alone, session, "http://testserver"), account_id,
                                                  as_of, finalize=finalize)
                billed += bill is not None
        assert report.billed == billed
    got, expected = await _state(rt, bulk, ids[bulk]), await _state(rt, alone, ids[alone])
    for part in expected:
        assert got[part] == expected[part], part

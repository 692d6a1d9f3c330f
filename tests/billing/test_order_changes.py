"""Billing prorates the product changes product orders make: a completed order's items that suspend, resume, change
the offering of or terminate a product are recorded as the same product changes ``POST productChange`` records,
effective at the order's requested start (else its completion), once per order item."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from openbss.billing import events
from openbss.billing.service import BillingService
from openbss.ordering import events as ordering
from openbss.platform.events.event import Event
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant, recurring, run, sell
from tests.billing.test_changes import change, lines
from tests.conftest import session_services
from tests.ordering.helpers import PO, assert_tmf, customer, get, mobile_order, setup_world
from tests.ordering.helpers import run as run_orders

D = Decimal
CHANGES = "/billing/v1/productChange"


def completed_order(items: list[dict[str, Any]], *, requested: str | None = None,
                    completed: str = "2027-03-25T10:00:00.000Z", state: str = "completed") -> dict[str, Any]:
    """A product order as ordering's ``ProductOrderStateChangeEvent`` carries it."""
    order: dict[str, Any] = {"id": str(uuid.uuid4()), "@type": "ProductOrder", "state": state,
                             "completionDate": completed,
                             "productOrderItem": [{"id": str(i + 1), "state": "completed", **it}
                                                  for i, it in enumerate(items)]}
    if requested:
        order["requestedStartDate"] = requested
    return order


async def deliver(rt: Any, tenant: str, order: dict[str, Any]) -> None:
    consumer = next(c for c in session_services().billing.consumers() if c.name == events.ORDER_CHANGES_CONSUMER)
    event = Event(tenant, ordering.API, "ProductOrderStateChangeEvent",
                  {"eventId": str(uuid.uuid4()), "eventType": "ProductOrderStateChangeEvent",
                   "event": {"productOrder": order}})
    async with rt.db.transaction(tenant) as session:
        await consumer.handler(session, event)


def status_item(product_id: str, status: str) -> dict[str, Any]:
    return {"action": "modify", "product": {"id": product_id, "status": status}}


async def product_changes(client: Any, h: dict[str, str], product_id: str) -> list[dict[str, Any]]:
    r = await client.get(CHANGES, headers=h, params={"product.id": product_id})
    assert r.status_code == 200, r.text
    return [c for c in r.json() if c["product"]["id"] == product_id]


async def test_a_suspend_order_then_a_resume_order_charge_only_the_active_days(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    # (Europe/Paris: the account's local dates are 10 and 20 March)
    await deliver(rt, tenant, completed_order([status_item(product["id"], "suspended")],
                                              requested="2027-03-09T23:30:00.000Z"))
    await deliver(rt, tenant, completed_order([status_item(product["id"], "active")],
                                              requested="2027-03-19T23:30:00.000Z"))
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("suspend", "2027-03-10"), ("resume", "2027-03-20")]
    assert all(c["productOrderItem"].endswith("/1") for c in got)
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    # used 9 + 12 of 31 days: the 10 suspended days credited, as through POST productChange
    assert await lines(rt, tenant, account["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-10.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("31.00"))]


async def test_an_offering_change_by_order_is_prorated_as_through_the_api(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    basic = recurring("31.00", rate="0", name="Basic", price_id=f"pop-basic-{uuid.uuid4().hex[:6]}")
    premium = recurring("62.00", rate="0", name="Premium", price_id=f"pop-premium-{uuid.uuid4().hex[:6]}")
    by_order = await billing_account(client, admin_headers)
    by_api = await billing_account(client, admin_headers)
    ordered = await sell(rt, tenant, by_order, "2027-02-28T23:00:00.000Z", [basic])
    direct = await sell(rt, tenant, by_api, "2027-02-28T23:00:00.000Z", [basic])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    # the order's change step wrote the new offering and prices to the inventory before the order completed
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        await session_services().inventory.service.change_product(
            ctx, ordered["id"], {"productOffering": {"id": "premium"}, "productPrice": [premium]})
    await deliver(rt, tenant, completed_order(
        [{"action": "modify", "product": {"id": ordered["id"]}, "productOffering": {"id": "premium"},
          "itemPrice": [premium]}], completed="2027-03-16T23:30:00.000Z"))  # no requested date: completion's
    r = await change(client, admin_headers, direct["id"], "upgrade", "2027-03-17", productPrice=[premium])
    assert r.status_code == 201, r.text
    got = await product_changes(client, admin_headers, ordered["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("upgrade", "2027-03-17")]
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    # March billed 31.00, used 16 days: credit 15.00; Premium 62.00 × 15/31 = 30.00; then April 62.00
    expected = [("credit", date(2027, 3, 1), date(2027, 4, 1), D("-15.00")),
                ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00")),
                ("recurring", date(2027, 3, 17), date(2027, 4, 1), D("30.00")),
                ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("62.00"))]
    assert await lines(rt, tenant, by_order["id"]) == expected
    assert await lines(rt, tenant, by_api["id"]) == expected
    # back to Basic by order: a downgrade
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        await session_services().inventory.service.change_product(
            ctx, ordered["id"], {"productOffering": {"id": "basic"}, "productPrice": [basic]})
    await deliver(rt, tenant, completed_order(
        [{"action": "modify", "product": {"id": ordered["id"]}, "productOffering": {"id": "basic"},
          "itemPrice": [basic]}], requested="2027-04-15T22:30:00.000Z"))
    got = await product_changes(client, admin_headers, ordered["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("upgrade", "2027-03-17"), ("downgrade", "2027-04-16")]


async def test_an_order_event_delivered_twice_records_one_change(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    suspend = completed_order([status_item(product["id"], "suspended"),
                               {"action": "modify", "product": {"id": product["id"]},  # characteristics only
                                "productCharacteristic": [{"name": "roaming", "value": "on"}]}],
                              requested="2027-03-09T23:30:00.000Z")
    in_progress = completed_order([{"action": "delete", "product": {"id": product["id"]}}], state="inProgress")
    for order in (suspend, suspend, in_progress):
        await deliver(rt, tenant, order)
    await deliver(rt, tenant, suspend)  # again, after other events
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("suspend", "2027-03-10")]
    terminate = completed_order([{"action": "delete", "product": {"id": product["id"]}}],
                                completed="2027-04-16T08:00:00.000Z")
    await deliver(rt, tenant, terminate)
    await deliver(rt, tenant, terminate)
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("suspend", "2027-03-10"), ("cancel", "2027-04-16")]
    rows = await in_tenant(rt, tenant, "SELECT count(*) FROM billing_product_change WHERE product_id = :p",
                           p=product["id"])
    assert rows[0][0] == 2


async def test_the_same_order_delivered_concurrently_records_one_change(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    suspend = completed_order([status_item(product["id"], "suspended")], requested="2027-03-09T23:30:00.000Z")
    await asyncio.gather(*(deliver(rt, tenant, suspend) for _ in range(4)))
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("suspend", "2027-03-10")]


async def test_an_upgrade_by_order_is_prorated_from_the_prices_its_event_carries(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """The order's item says what the product was charged before (``previousProductPrice``): billing prorates from
    it, without the inventory's audit trail (here it shows no price change at all)."""
    basic = recurring("31.00", rate="0", name="Basic", price_id=f"pop-basic-{uuid.uuid4().hex[:6]}")
    premium = recurring("62.00", rate="0", name="Premium", price_id=f"pop-premium-{uuid.uuid4().hex[:6]}")
    by_order = await billing_account(client, admin_headers)
    by_api = await billing_account(client, admin_headers)
    ordered = await sell(rt, tenant, by_order, "2027-02-28T23:00:00.000Z", [basic])
    direct = await sell(rt, tenant, by_api, "2027-02-28T23:00:00.000Z", [basic])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    async with rt.db.transaction(tenant) as session:  # the audit trail knows no change to Premium
        ctx = system_context(tenant, session, "http://testserver")
        assert await BillingService._prices_before(ctx, ordered["id"], [premium]) is None
    await deliver(rt, tenant, completed_order(
        [{"action": "modify", "product": {"id": ordered["id"]}, "productOffering": {"id": "premium"},
          "itemPrice": [premium], "previousProductPrice": [basic]}], completed="2027-03-16T23:30:00.000Z"))
    r = await change(client, admin_headers, direct["id"], "upgrade", "2027-03-17", productPrice=[premium])
    assert r.status_code == 201, r.text
    got = await product_changes(client, admin_headers, ordered["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("upgrade", "2027-03-17")]
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    # March billed 31.00, used 16 days: credit 15.00; Premium 62.00 × 15/31 = 30.00; then April 62.00
    expected = [("credit", date(2027, 3, 1), date(2027, 4, 1), D("-15.00")),
                ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00")),
                ("recurring", date(2027, 3, 17), date(2027, 4, 1), D("30.00")),
                ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("62.00"))]
    assert await lines(rt, tenant, by_order["id"]) == expected
    assert await lines(rt, tenant, by_api["id"]) == expected


async def test_a_downgrade_by_order_is_told_from_the_previous_prices_of_its_event(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """Whether an order's change is an upgrade or a downgrade is told from the prices its event says the product
    had: the event's, not the audit trail's."""
    premium = recurring("62.00", rate="0", name="Premium", price_id=f"pop-premium-{uuid.uuid4().hex[:6]}")
    basic = recurring("31.00", rate="0", name="Basic", price_id=f"pop-basic-{uuid.uuid4().hex[:6]}")
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [premium])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    await deliver(rt, tenant, completed_order(
        [{"action": "modify", "product": {"id": product["id"]}, "productOffering": {"id": "basic"},
          "itemPrice": [basic], "previousProductPrice": [premium]}], requested="2027-03-15T23:00:00.000Z"))
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("downgrade", "2027-03-16")]


async def test_a_plan_change_order_records_the_prices_the_product_had(rt: Any, client: Any) -> None:
    """Ordering states ``previousProductPrice`` on a modify item changing the offering (what billing reads from
    the order's events); a client cannot send one."""
    w = await setup_world(rt, client, numbers=5, sims=5)
    h = w["h"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run_orders(rt, w["tenant"], provisioning_ocs="simulator")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", order
    product = await get(client, h, order["productOrderItem"][0]["product"]["href"].split("testserver", 1)[-1])
    assert product["productPrice"]
    body = {"relatedParty": [{"id": c["customer"]["id"], "@referredType": "Customer", "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "productOffering": {"id": w["offers"]["Prepaid S"]["id"]},
                 "product": {"id": product["id"]}}]}
    made_up = {**body, "productOrderItem": [{**body["productOrderItem"][0], "previousProductPrice": []}]}
    r = await client.post(PO, json=made_up, headers=h)
    assert r.status_code == 400 and "previousProductPrice" in r.json()["message"], r.text
    r = await client.post(PO, json=body, headers=h)
    assert r.status_code == 201, r.text
    [item] = r.json()["productOrderItem"]
    assert item["previousProductPrice"] == product["productPrice"]
    assert item["itemPrice"] and item["itemPrice"] != item["previousProductPrice"]
    assert_tmf("TMF622", "ProductOrder", r.json())
    suspend = {**body, "productOrderItem": [{"id": "1", "action": "modify",
                                             "product": {"id": product["id"], "status": "suspended"}}]}
    r = await client.post(PO, json=suspend, headers=h)
    assert r.status_code == 201, r.text
    assert "previousProductPrice" not in r.json()["productOrderItem"][0]


async def placed(rt: Any, client: Any, w: dict[str, Any], body: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A product order placed and run to its end (provisioning with ``overrides``): completed, as read back."""
    r = await client.post(PO, json=body, headers=w["h"])
    assert r.status_code == 201, r.text
    await run_orders(rt, w["tenant"], **overrides)
    done = await get(client, w["h"], f"{PO}/{r.json()['id']}")
    assert done["state"] == "completed", done
    return dict(done)


def ending(c: dict[str, Any], product_id: str) -> dict[str, Any]:
    """An order terminating the customer's product."""
    return {"relatedParty": [{"id": c["customer"]["id"], "@referredType": "Customer", "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": product_id}}]}


async def bill_cycles(rt: Any, client: Any, w: dict[str, Any], c: dict[str, Any], product: dict[str, Any],
                      cycles: int) -> None:
    """``cycles`` bill runs of the customer's account, on its cycle dates from the product's start."""
    from openbss.pricing.cycles import next_cycle_date

    account = await get(client, w["h"], f"/tmf-api/accountManagement/v4/billingAccount/{c['account']['id']}")
    day = int((account.get("billCycle") or {}).get("billingDay") or 1)
    bill_date = next_cycle_date(date.fromisoformat(product["startDate"][:10]), day, 1)
    for _ in range(cycles):
        await run(rt, w["tenant"], bill_date, finalize=True)
        bill_date = next_cycle_date(bill_date, day, 1)


async def test_an_ordered_welcome_discount_ends_after_its_three_months(rt: Any, client: Any) -> None:
    """From the order to the bills: Mobile M (24.99 a month) with the catalog's "50 % for 3 months" is billed
    12.49 a month for three months from its start, then 24.99 (the discount was billed for ever)."""
    w = await setup_world(rt, client, numbers=5, sims=5)
    h = w["h"]
    c = await customer(client, h)
    order = await placed(rt, client, w, mobile_order(c, w["offers"]["Mobile M"]), provisioning_ocs="simulator")
    product = await get(client, h, order["productOrderItem"][0]["product"]["href"].split("testserver", 1)[-1])
    fee = next(pp for pp in product["productPrice"] if pp["priceType"] == "recurring")
    assert [a["applicationDuration"] for a in fee["productPriceAlteration"]] == [3]
    await bill_cycles(rt, client, w, c, product, 6)
    charged = await in_tenant(rt, w["tenant"], "SELECT period_start, period_end, amount FROM billing_applied_rate "
                                               "WHERE charge_key = :k ORDER BY period_start",
                              k=f"recurring|{product['id']}|{fee['productOfferingPrice']['id']}")
    whole = [(s, e, a) for s, e, a in charged if (e - s).days >= 28]
    assert [a for _, _, a in whole[:2]] == [D("12.49")] * 2
    assert whole[-1][2] == D("24.99")
    assert sum(1 for _, _, a in whole if a == D("24.99")) >= 2


async def test_a_line_activated_by_an_order_names_its_product_and_a_prepaid_fee_is_taken_once(
        rt: Any, client: Any) -> None:
    """Activation opens the line's charging account before the product is recorded; the account then names the
    product. Without it, billing could not tell the prepaid line (``prepaid_products``) and billed its monthly
    bundle on the bill while charging took it from the balance — twice."""
    w = await setup_world(rt, client, numbers=5, sims=5)
    h = w["h"]
    c = await customer(client, h)
    order = await placed(rt, client, w, mobile_order(c, w["offers"]["Prepaid S"]), provisioning_ocs="charging")
    product_id = order["productOrderItem"][0]["product"]["id"]
    [(payment_type, linked)] = await in_tenant(
        rt, w["tenant"], "SELECT payment_type, product_id FROM charging_account WHERE billing_account_id = :a",
        a=c["account"]["id"])
    assert (payment_type, linked) == ("prepaid", product_id)
    product = await get(client, h, f"/tmf-api/productInventory/v4/product/{product_id}")
    await bill_cycles(rt, client, w, c, product, 2)
    keys = [k for (k,) in await in_tenant(rt, w["tenant"], "SELECT charge_key FROM billing_applied_rate "
                                                            "WHERE billing_account_id = :a", a=c["account"]["id"])]
    assert [k for k in keys if k.startswith("recurring|")] == []  # the bundle is charging's, from the balance
    assert any(k.startswith(f"oneTime|{product_id}|") for k in keys)  # the SIM card is billed


async def test_the_migration_links_the_lines_activated_before(rt: Any, client: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines activated before the orchestrator linked them: revision d5a9e3c7b1f4 links each charging account to
    its product from the activation records (the OCS create step's answer and the item run's product)."""
    import importlib

    from openbss.provisioning.ocs import ChargingOcs

    async def unlinked(*_: Any) -> None:
        return None

    monkeypatch.setattr(ChargingOcs, "product_recorded", unlinked)
    migration = importlib.import_module("migrations.versions.20261205_1100_d5a9e3c7b1f4_charging_account_product")
    w = await setup_world(rt, client, numbers=5, sims=5)
    c = await customer(client, w["h"])
    order = await placed(rt, client, w, mobile_order(c, w["offers"]["Prepaid S"]), provisioning_ocs="charging")
    product_id = order["productOrderItem"][0]["product"]["id"]
    query = "SELECT product_id, version FROM charging_account WHERE billing_account_id = :a"
    [(before, version)] = await in_tenant(rt, w["tenant"], query, a=c["account"]["id"])
    assert before is None
    async with rt.db.transaction(w["tenant"]) as session:
        assert (await session.execute(migration.LINK)).rowcount == 1
        assert (await session.execute(migration.LINK)).rowcount == 0  # once
    assert await in_tenant(rt, w["tenant"], query, a=c["account"]["id"]) == [(product_id, version + 1)]


async def test_a_line_transferred_by_an_order_bills_its_usage_to_the_new_account(rt: Any, client: Any) -> None:
    """A transfer order moves the product (billing charges its recurring prices to the new account) and the line:
    its charging account names the new billing account, so its usage from then on is billed there — it stayed
    with the old account (the wrong customer), under the old credit limit."""
    from datetime import UTC, datetime

    from tests.billing.helpers import usage
    from tests.customer.helpers import make_billing_account

    w = await setup_world(rt, client, numbers=5, sims=5)
    h = w["h"]
    c = await customer(client, h)
    order = await placed(rt, client, w, mobile_order(c, w["offers"]["Mobile M"]), provisioning_ocs="charging")
    product_id = order["productOrderItem"][0]["product"]["id"]
    other = await make_billing_account(client, h, c["customer"], state="active")
    move = {"relatedParty": [{"id": c["customer"]["id"], "@referredType": "Customer", "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": "modify", "product": {"id": product_id},
                                  "billingAccount": {"id": other["id"]}}]}
    await placed(rt, client, w, move, provisioning_ocs="charging")
    [(line_id, billed_to)] = await in_tenant(
        rt, w["tenant"], "SELECT id, billing_account_id FROM charging_account WHERE product_id = :p", p=product_id)
    assert billed_to == other["id"]
    bucket_owner = await in_tenant(rt, w["tenant"], "SELECT DISTINCT body -> 'partyAccount' ->> 'id' FROM "
                                                    "charging_bucket WHERE account_id = :a", a=line_id)
    assert bucket_owner == [(other["id"],)]
    # a call after the transfer is the new account's usage, not the old one's
    await usage(rt, w["tenant"], line_id, datetime.now(UTC), 150)
    async with rt.db.transaction(w["tenant"]) as session:
        ctx = system_context(w["tenant"], session, "http://testserver")
        charging = session_services().charging.service
        since, before = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        assert [u.amount for u in await charging.postpaid_usage(ctx, other["id"], since, before)] == [D("1.50")]
        assert await charging.postpaid_usage(ctx, c["account"]["id"], since, before) == []


async def test_a_number_reused_after_its_quarantine_gets_a_new_charging_account(rt: Any, client: Any) -> None:
    """A terminated line's number goes back to the pool after its quarantine; the line that gets it next has its
    own charging account. The closed account kept the number, so the next activation failed ("already has a
    charging account") — or, on the same billing account, took the closed account over and was denied service."""
    w = await setup_world(rt, client, numbers=2, sims=4)
    h = w["h"]
    net = {"provisioning_ocs": "charging", "msisdn_quarantine_days": 0}
    first, second = await customer(client, h, 1), await customer(client, h, 2)
    done = await placed(rt, client, w, mobile_order(first, w["offers"]["Mobile M"]), **net)
    [(old_id, number)] = await in_tenant(rt, w["tenant"], "SELECT id, subscriber FROM charging_account")
    await placed(rt, client, w, ending(first, done["productOrderItem"][0]["product"]["id"]), **net)
    for c in (second, first):  # another customer gets the number; then (once free again) the first one back
        done = await placed(rt, client, w, mobile_order(c, w["offers"]["Mobile M"]), **net)
        rows = await in_tenant(rt, w["tenant"], "SELECT id, status, billing_account_id FROM charging_account "
                                                "WHERE subscriber = :n", n=number)
        assert [(s, ba) for _, s, ba in rows] == [("active", c["account"]["id"])]
        assert rows[0][0] != old_id
        if c is second:
            await placed(rt, client, w, ending(c, done["productOrderItem"][0]["product"]["id"]), **net)
    [(status,)] = await in_tenant(rt, w["tenant"], "SELECT status FROM charging_account WHERE id = :a", a=old_id)
    assert status == "closed"  # the old line keeps its usage and history, under a retired key


async def test_an_upgrade_order_with_a_discount_for_a_time_bills_it_from_the_upgrade(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A plan change ordered to an offering sold at 50 % for 1 month: the order priced the discount
    (``priceAlteration`` of the item's price); billing bills it from the change for a month, then the full price —
    it took the item's prices without their discounts and billed the full price at once."""
    basic = recurring("31.00", rate="0", name="Basic", price_id=f"pop-basic-{uuid.uuid4().hex[:6]}")
    premium = recurring("62.00", rate="0", name="Premium", price_id=f"pop-premium-{uuid.uuid4().hex[:6]}")
    premium["priceAlteration"] = [{
        "name": "Half price for a month", "priceType": "recurring", "priority": 1, "recurringChargePeriod": "month",
        "applicationDuration": 1, "unitOfMeasure": "month",
        "price": {"percentage": 50, "dutyFreeAmount": {"unit": "EUR", "value": -31}, "taxRate": 0},
        "productOfferingPrice": {"id": "pop-half", "name": "Half price for a month"}}]
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [basic])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    await deliver(rt, tenant, completed_order(
        [{"action": "modify", "product": {"id": product["id"]}, "productOffering": {"id": "premium"},
          "itemPrice": [premium], "previousProductPrice": [basic]}], completed="2027-03-16T23:30:00.000Z"))
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"]) for c in got] == [("upgrade", "2027-03-17")]
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    premium_id = premium["productOfferingPrice"]["id"]
    charged = [(s, e, a) for k, s, e, a in await in_tenant(
        rt, tenant, "SELECT charge_key, period_start, period_end, amount FROM billing_applied_rate "
                    "WHERE billing_account_id = :a ORDER BY period_start, period_end", a=account["id"])
        if k.startswith("recurring|") and premium_id in k]
    # 31.00 × 15/31 = 15.00; April: 31.00 × 16/30 = 16.53, then 62.00 × 14/30 = 28.93
    assert charged == [(date(2027, 3, 17), date(2027, 4, 1), D("15.00")),
                       (date(2027, 4, 1), date(2027, 4, 17), D("16.53")),
                       (date(2027, 4, 17), date(2027, 5, 1), D("28.93"))]


@pytest.mark.parametrize(("convention", "charged"), [
    (None, [(date(2027, 3, 1), date(2027, 4, 1), D("31.00")), (date(2027, 4, 1), date(2027, 4, 10), D("9.30"))]),
    ("keepsCharges", [(date(2027, m, 1), date(2027, m + 1, 1), D("31.00")) for m in (3, 4, 5)]),
])
async def test_a_suspension_for_non_payment_stops_or_keeps_the_charges_as_the_tenant_says(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], convention: str | None,
        charged: list[tuple[date, date, Decimal]]) -> None:
    """Collections suspends a line for debt by a product order of category ``collections``. By default
    (``dunningSuspension: stopsCharges``) it stops the recurring charges like any suspension; with
    ``keepsCharges`` (barred for debt, still charged, as some operators bill) billing records no suspension. A
    customer's own suspension stops them either way."""
    if convention:
        r = await client.patch("/billing/v1/settings", json={"dunningSuspension": convention}, headers=admin_headers)
        assert r.status_code == 200 and r.json()["dunningSuspension"] == convention, r.text
    bad = await client.patch("/billing/v1/settings", json={"dunningSuspension": "sometimes"}, headers=admin_headers)
    assert bad.status_code == 400 and "dunningSuspension" in bad.json()["message"]
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    dunning = completed_order([status_item(product["id"], "suspended")], requested="2027-04-09T22:00:00.000Z")
    dunning["category"] = "collections"
    await deliver(rt, tenant, dunning)
    for month in (4, 5):
        await run(rt, tenant, date(2027, month, 1), finalize=True)
    got = [(s, e, a) for k, s, e, a in await lines(rt, tenant, account["id"]) if k == "recurring"]
    assert got == charged
    other = await billing_account(client, admin_headers)  # the customer's own suspension: stops, whatever the setting
    own = await sell(rt, tenant, other, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await deliver(rt, tenant, completed_order([status_item(own["id"], "suspended")],
                                              requested="2027-02-28T23:00:00.000Z"))
    assert [(c["kind"]) for c in await product_changes(client, admin_headers, own["id"])] == ["suspend"]

"""With OPENBSS_PROVISIONING_OCS=charging, activation opens the line's account in the charging domain, and
suspend/terminate change its status."""

from __future__ import annotations

from typing import Any

from tests.ordering.helpers import PO, customer, get, mobile_order, run, setup_world


async def test_activation_opens_a_charging_account(rt: Any, client: Any) -> None:
    from openbss.charging import service as charging
    from openbss.provisioning.orchestrator import system_context

    w = await setup_world(rt, client, numbers=10, sims=10)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, tenant, provisioning_ocs="charging")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", order
    product = await get(client, h, order["productOrderItem"][0]["product"]["href"].replace("http://testserver", ""))
    resources = [await get(client, h, r["href"].replace("http://testserver", "")) for r in product["realizingResource"]]
    msisdn = next(r for r in resources if r["category"] == "msisdn")["resourceCharacteristic"][0]["value"]
    async with rt.db.transaction(tenant) as session:
        account = await charging.get_account(system_context(tenant, session, "http://testserver"), subscriber=msisdn)
    assert account["payment_type"] == "postpaid" and account["billing_account_id"] == c["account"]["id"]
    assert account["status"] == "active" and account["buckets"]

    r = await client.post(PO, json={"relatedParty": mobile_order(c, w["offers"]["Mobile M"])["relatedParty"],
                                    "productOrderItem": [{"id": "1", "action": "modify",
                                                          "product": {"id": product["id"], "status": "suspended"}}]},
                          headers=h)
    assert r.status_code == 201, r.text
    await run(rt, tenant, provisioning_ocs="charging")
    assert (await get(client, h, f"{PO}/{r.json()['id']}"))["state"] == "completed"
    async with rt.db.transaction(tenant) as session:
        account = await charging.get_account(system_context(tenant, session, "http://testserver"), subscriber=msisdn)
    assert account["status"] == "suspended"

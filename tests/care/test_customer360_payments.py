"""The customer 360's payments section (recent payments, payment methods masked) and dunning section (each billing
account's collections episode and step), each marked unavailable — not a 500 — when its domain fails."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.collections.helpers import accounts, overdue, policy, reminder
from tests.conftest import bearer, make_tenant, session_services
from tests.payments.helpers import card, cash, method, pay

C360 = "/tmf-api/customerManagement/v4/customer360"


async def customer_with_history(rt: Any, client: Any) -> dict[str, Any]:
    tenant = await make_tenant(rt, "c360pay")
    h = bearer(tenant, "admin")
    await policy(client, h, [reminder(0, "first reminder"), reminder(30, "second reminder")])
    late, good = await accounts(client, tenant, 2)
    [customer_id] = [p["id"] for p in late["relatedParty"] if p.get("@referredType") == "Customer"]
    await overdue(rt, tenant, late["id"], "40.00", days=10)
    report = await session_services().collections.service.run_tenant(tenant)
    assert report.opened == 1
    visa = await method(client, h, card(good, isPreferred=True))
    till = await method(client, h, cash(good))
    r = await pay(client, h, good, till["id"], "12.50")
    assert r.status_code in (200, 201), r.text
    return {"tenant": tenant, "h": h, "customer": customer_id, "late": late, "good": good, "visa": visa,
            "payment": r.json()}


async def test_payments_and_dunning_in_the_customer_360(rt: Any, client: Any) -> None:
    w = await customer_with_history(rt, client)
    agent = bearer(w["tenant"], "csr_agent")
    r = await client.get(f"{C360}/{w['customer']}", headers=agent)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["unavailableSections"] == []
    payments = view["payments"]
    [paid] = payments["recent"]
    assert paid["id"] == w["payment"]["id"] and paid["amount"]["unit"] == "EUR"
    assert Decimal(str(paid["amount"]["value"])) == Decimal("12.50")
    assert paid["billingAccount"]["id"] == w["good"]["id"] and paid["method"] == "Cash at the shop"
    methods = {m["type"]: m for m in payments["methods"]}
    assert methods["tokenizedCard"]["masked"] == "visa •••• 4242 exp. 2031-12"
    assert methods["tokenizedCard"]["isDefault"] is True and methods["tokenizedCard"]["status"] == "active"
    assert "tok_visa" not in r.text  # the gateway token is never shown
    dunning = {d["billingAccount"]["id"]: d for d in view["dunning"]}
    late = dunning[w["late"]["id"]]
    assert late["state"] == "open" and late["episode"]["id"]
    assert late["currentStep"]["sequence"] == 1 and late["currentStep"]["name"] == "first reminder"
    assert late["currentStep"]["action"] == "reminder" and late["currentStep"]["state"] == "done"
    assert late["nextStep"] == {"sequence": 2, "name": "second reminder", "action": "reminder"}
    assert dunning[w["good"]["id"]]["state"] == "none"


@pytest.mark.parametrize("broken", ["payments", "dunning"])
async def test_a_failing_payments_or_collections_domain_marks_its_section_unavailable(
        rt: Any, client: Any, monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    w = await customer_with_history(rt, client)
    services = session_services()

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the domain's database is unreachable")

    if broken == "payments":
        monkeypatch.setattr(services.payments.service, "customer_payments", down)
    else:
        monkeypatch.setattr(services.collections.service, "dunning_state", down)
    r = await client.get(f"{C360}/{w['customer']}", headers=bearer(w["tenant"], "csr_agent"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["unavailableSections"] == [broken]
    assert view[broken] == {"unavailable": True, "reason": f"the {broken} section could not be read (ConnectionError)"}
    other = "dunning" if broken == "payments" else "payments"
    assert not isinstance(view[other], dict) or "unavailable" not in view[other]
    assert view["accounts"] and isinstance(view["bills"], list)

"""The payments demo seed against PostgreSQL: paid, partially paid, failed-then-retried and refunded payments, a
SEPA batch collected by a statement whose other line waits in the exceptions queue, last month closed; the ledger
balances and replays; seeding again adds nothing."""

from __future__ import annotations

from typing import Any

from openbss.demo.payments import seed_payments
from tests.billing.helpers import in_tenant
from tests.payments.test_payments import bill_state

BASE = "http://testserver"


async def test_the_payments_demo_has_content_and_is_seeded_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    services.payments.gateway.timeouts = 0
    made = await seed_payments(services, rt.db, tenant, BASE)
    assert made, "the demo seeded nothing"
    assert made["statement"]["collected"] == 1 and made["statement"]["exceptions"] == 1
    states = dict(await in_tenant(rt, tenant, "SELECT id, state FROM payments_payment"))
    assert states[made["paid"]] == "succeeded" and states[made["failed"]] == "failed"
    assert states[made["retried"]] == "succeeded" and states[made["refunded"]] == "succeeded"
    assert [await bill_state(rt, tenant, b) for b in made["bills"]] == [
        "settled", "partiallyPaid", "settled", "settled", "settled"]
    assert await in_tenant(rt, tenant, "SELECT state FROM payments_refund") == [("succeeded",)]
    assert len(await in_tenant(rt, tenant, "SELECT * FROM ledger_period")) == 1
    tb = (await client.get("/payments/v1/trialBalance", headers=admin_headers)).json()
    assert all(t["value"] == 0 for t in tb["totals"]) and tb["accounts"]
    assert (await client.get("/payments/v1/ledgerReplay", headers=admin_headers)).json()["differences"] == []
    receipts = (await client.get("/payments/v1/report/cashReceipts", params={"start": "2000-01-01"},
                                 headers=admin_headers)).json()
    assert {r["method"] for r in receipts} >= {"cash", "tokenizedCard"}
    assert await seed_payments(services, rt.db, tenant, BASE) == {}
    assert len(await in_tenant(rt, tenant, "SELECT id FROM payments_payment")) == len(states)

"""The Stripe adapter against a stateful local Stripe-compatible server (localstripe) run on 127.0.0.1 by the test:
a card payment, a declined card, a partial refund, and a webhook signed by the server verified (and a forged one
refused). The server ignores idempotency keys: our own idempotency is proven by tests/payments/test_payments.py."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from openbss.payments.errors import BadSignature
from openbss.payments.service import PaymentService
from openbss.payments.stripe_gateway import StripeGateway
from openbss.platform.tmf.resource import system_context
from tests.payments.helpers import card, issued_bill, method

SECRET = "whsec_local_test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    binary = Path(sys.executable).parent / "localstripe"
    if not binary.exists():
        pytest.skip("localstripe is not installed (pip install -e '.[dev]')")
    port = _free_port()
    proc = subprocess.Popen([str(binary), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.1)
        else:
            pytest.fail("localstripe did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[bytes, str]]]]:
    """An HTTP endpoint on 127.0.0.1 recording the webhooks the local server sends."""
    seen: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("Stripe-Signature", "")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        await runner.cleanup()


async def test_card_payment_decline_partial_refund_and_signed_webhook(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, localstripe: str,
        receiver: tuple[str, list[tuple[bytes, str]]]) -> None:
    url, seen = receiver
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{localstripe}/_config/webhooks/openbss", data={"url": url, "secret": SECRET},
                            headers={"Authorization": "Bearer sk_test_local"})
        assert r.status_code == 200, r.text
    gateway = StripeGateway("sk_test_local", SECRET, api_base=localstripe)
    payments = PaymentService(rt.db, "http://testserver", gateway, services.billing.service,
                              services.account.service, services.payments.resources["payment"],
                              services.payments.resources["refund"])
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    visa = await method(client, admin_headers, card(account, token="pm_card_visa"))
    failing = await method(client, admin_headers, card(account, token="pm_card_chargeCustomerFail"))
    async with rt.db.transaction(tenant) as session:
        principal = system_context(tenant, session, "http://testserver").principal

    def body(method_id: str, value: str) -> dict[str, Any]:
        return {"account": {"id": account["id"]}, "paymentMethod": {"id": method_id},
                "totalAmount": {"unit": "EUR", "value": value}, "paymentItem": [{"item": {"id": bill["id"]}}]}

    declined = (await payments.pay(principal, body(failing["id"], "120.00"))).resource
    assert declined["status"] == "failed" and declined["statusReason"] == "card_declined"
    paid = (await payments.pay(principal, body(visa["id"], "150.00"))).resource
    assert paid["status"] == "succeeded" and paid["authorizationCode"].startswith("pi_")
    intent = await gateway.client.v1.payment_intents.retrieve_async(paid["authorizationCode"])
    assert intent.amount == 15000 and intent.currency == "eur" and intent.metadata["payment"] == paid["id"]

    refund = (await payments.refund(principal, {"payment": {"id": paid["id"]},
                                                "totalAmount": {"unit": "EUR", "value": "12.50"}})).resource
    assert refund["status"] == "succeeded" and refund["authorizationCode"].startswith("re_")
    at_stripe = await gateway.client.v1.refunds.retrieve_async(refund["authorizationCode"])
    assert at_stripe.amount == 1250 and at_stripe.status == "succeeded"

    for _ in range(50):  # the local server sends its webhooks asynchronously
        if any(b"payment_intent.succeeded" in b and paid["id"].encode() in b for b, _ in seen):
            break
        await asyncio.sleep(0.1)
    raw, signature = next((b, s) for b, s in seen if b"payment_intent.succeeded" in b and paid["id"].encode() in b)
    event = gateway.verify(raw, signature)
    assert event["data"] == {"reference": paid["authorizationCode"], "idempotencyKey": paid["id"],
                             "status": "succeeded", "metadata": {"tenant": tenant, "payment": paid["id"]},
                             "declineCode": None}
    assert await payments.handle_webhook(raw, signature) is False  # already succeeded: nothing changes
    assert await payments.handle_webhook(raw, signature) is False  # a replay: recorded once
    with pytest.raises(BadSignature):
        await payments.handle_webhook(raw.replace(b"15000", b"15001"), signature)
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        assert (await payments.bill_position(ctx, bill["id"]))["state"] == "settled"
        assert (await payments.transitions(ctx, paid["id"]))[-1]["to"] == "succeeded"
    # what Stripe settled: the succeeded intent with our payment id, what was refunded of it; not the declined one
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    now = datetime.now(UTC)
    settled = await gateway.settlements(now - timedelta(hours=1), now + timedelta(minutes=1))
    mine = [s for s in settled if s.metadata.get("tenant") == tenant]
    assert [(s.idempotency_key, s.amount, s.refunded, s.currency) for s in mine] == [
        (paid["id"], Decimal("150.00"), Decimal("12.50"), "EUR")]


@pytest.mark.parametrize(("amount", "currency", "sent"), [
    ("12.34", "EUR", 1234), ("1500", "JPY", 1500), ("1.250", "KWD", 1250),
    # where Stripe's exponent is not ISO's: MGA is zero-decimal at Stripe (it was sent 100 times too much), ISK and
    # UGX are sent as whole units times 100 (they were sent 100 times too little)
    ("5000", "MGA", 5000), ("500", "ISK", 50000), ("3700", "UGX", 370000)])
def test_amounts_travel_in_stripes_units_and_back(amount: str, currency: str, sent: int) -> None:
    from decimal import Decimal

    from openbss.payments.stripe_gateway import from_minor, to_minor

    assert to_minor(Decimal(amount), currency) == sent
    assert from_minor(sent, currency) == Decimal(amount)


def test_an_amount_finer_than_stripes_unit_is_refused_not_truncated() -> None:
    from decimal import Decimal

    from openbss.payments.errors import InvalidPayment
    from openbss.payments.stripe_gateway import to_minor

    for amount, currency in (("10.005", "EUR"), ("0.5", "JPY"), ("12.5", "MGA")):
        with pytest.raises(InvalidPayment):
            to_minor(Decimal(amount), currency)

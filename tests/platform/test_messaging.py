"""Messages to customers: the simulator records them; the webhook channel delivers them after commit, signed,
retried, and erases the text once delivered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from openbss.platform import messaging
from openbss.platform.db import utcnow
from openbss.platform.messaging import OutboundMessage


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, Any], str]] = []
    status = 202

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((json.loads(body), self.headers["X-OpenBSS-Signature"]))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway]]]:
    _Gateway.received = []
    _Gateway.status = 202
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms", _Gateway
    server.shutdown()


async def _rows(rt: Any, tenant: str) -> list[OutboundMessage]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(select(OutboundMessage).order_by(OutboundMessage.id))).scalars().all())


async def test_simulator_records_and_rollback_sends_nothing(rt: Any, tenant: str, client: httpx.AsyncClient) -> None:
    from tests.conftest import bearer

    async with rt.db.transaction(tenant) as session:
        await messaging.send(session, messaging.SMS, "+33600000001", "code 123456", purpose="test")
    with pytest.raises(RuntimeError):
        async with rt.db.transaction(tenant) as session:
            await messaging.send(session, messaging.SMS, "+33600000002", "code 654321", purpose="test")
            raise RuntimeError("the request failed")
    [row] = await _rows(rt, tenant)
    assert row.recipient == "+33600000001" and row.status == "recorded"
    listed = (await client.get("/api/messaging/v1/message", params={"to": "+33600000001"},
                               headers=bearer(tenant, "admin"))).json()
    assert [m["text"] for m in listed] == ["code 123456"]
    assert (await client.get("/api/messaging/v1/message", headers=bearer(tenant, "csr_agent"))).status_code == 403


async def test_webhook_delivery_is_signed_and_erases_the_text(rt: Any, tenant: str, settings: Any,
                                                              gateway: tuple[str, Any]) -> None:
    url, received = gateway
    s = settings.model_copy(update={"messaging_channel": "webhook", "messaging_webhook_url": url,
                                    "messaging_webhook_secret": "gw-secret"})
    async with rt.db.transaction(tenant) as session:
        await messaging.send(session, messaging.SMS, "+33600000003", "your code is 111222", purpose="test",
                             settings=s)
    async with httpx.AsyncClient() as http:
        assert await messaging.deliver_pending(rt.db, s, http) >= 1
    payload, sig = next((p, g) for p, g in received.received if p["to"] == "+33600000003")
    assert payload["text"] == "your code is 111222" and payload["tenant"] == tenant and payload["channel"] == "sms"
    raw = json.dumps(payload, separators=(",", ":")).encode()
    assert sig == messaging.signature("gw-secret", raw)
    [row] = await _rows(rt, tenant)
    assert row.status == "sent" and row.body == messaging.ERASED and row.sent_at is not None


async def test_webhook_failures_back_off_then_give_up(rt: Any, tenant: str, settings: Any,
                                                      gateway: tuple[str, Any]) -> None:
    url, received = gateway
    received.status = 503
    s = settings.model_copy(update={"messaging_channel": "webhook", "messaging_webhook_url": url})
    async with rt.db.transaction(tenant) as session:
        await messaging.send(session, messaging.EMAIL, "a@example.net", "code 333444", purpose="test", settings=s)
    async with httpx.AsyncClient() as http:
        for attempt in range(1, messaging.MAX_ATTEMPTS + 1):
            await messaging.deliver_pending(rt.db, s, http)
            [row] = await _rows(rt, tenant)
            assert row.attempts == attempt
            if attempt < messaging.MAX_ATTEMPTS:
                assert row.status == "pending" and row.next_attempt_at > utcnow()
                async with rt.db.transaction(tenant) as session:  # as if the backoff had passed
                    await session.execute(update(OutboundMessage).where(OutboundMessage.id == row.id)
                                          .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    [row] = await _rows(rt, tenant)
    assert row.status == "failed" and row.body == messaging.ERASED


async def test_old_messages_are_purged(rt: Any, tenant: str, settings: Any) -> None:
    async with rt.db.transaction(tenant) as session:
        await messaging.send(session, messaging.SMS, "+33600000004", "old", purpose="test")
        await messaging.send(session, messaging.SMS, "+33600000005", "new", purpose="test")
        await session.execute(update(OutboundMessage).where(OutboundMessage.recipient == "+33600000004")
                              .values(created_at=utcnow() - timedelta(hours=25)))
    assert await messaging.purge_recorded(rt.db, settings) >= 1
    assert [r.recipient for r in await _rows(rt, tenant)] == ["+33600000005"]

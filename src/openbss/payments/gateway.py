"""Payment gateways behind one small interface, and the built-in sandbox gateway.

A gateway takes a charge (our payment id as its idempotency key: asking twice charges once), answers where a
charge stands (what the janitor asks about payments left pending or unknown), refunds, and reports later
changes by signed webhooks. A call that times out raises ``GatewayTimeout``: the charge may or may not exist, the
payment becomes ``unknown`` and the janitor asks again.

The **sandbox gateway** behaves like a real provider, in process: charges settle asynchronously (``pending``, then
a ``charge.succeeded`` webhook when ``settle`` runs), webhooks are signed with HMAC-SHA256 (``t=<unix>,v1=<hex>``
over ``"<t>.<body>"``) and retried until delivered, test tokens decide the outcome, and timeouts can be injected
(the charge is taken but the answer is lost).

Test tokens (like a real provider's test cards): ``tok_visa`` / ``tok_mastercard`` and any other token settle
successfully; ``tok_chargeDeclined`` is declined at once (``card_declined``); ``tok_insufficientFunds`` is declined
(``insufficient_funds``); ``tok_failLater`` is accepted, then fails at settlement; ``tok_instant`` succeeds at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from openbss.payments.errors import BadSignature


class GatewayTimeout(Exception):
    """The gateway did not answer in time: the outcome is unknown."""


@dataclass(frozen=True)
class GatewayResult:
    status: str  # pending | succeeded | failed
    reference: str
    decline_code: str | None = None


@dataclass(frozen=True)
class Settlement:
    """A charge the gateway settled (the money is ours, less what it refunded): what reconciliation compares
    with the payments recorded. ``idempotency_key`` is our payment id."""

    idempotency_key: str
    reference: str
    amount: Decimal
    refunded: Decimal
    currency: str
    settled_at: datetime
    metadata: dict[str, str]


class Gateway(Protocol):
    name: str

    async def settlements(self, since: datetime, before: datetime) -> list[Settlement]:
        """The charges settled in ``[since, before)`` (every tenant's: filter by ``metadata['tenant']``)."""
        ...

    async def charge(self, *, idempotency_key: str, amount: Decimal, currency: str, token: str,
                     metadata: dict[str, str]) -> GatewayResult: ...

    async def lookup(self, idempotency_key: str) -> GatewayResult | None: ...

    async def refund(self, *, idempotency_key: str, reference: str, amount: Decimal, currency: str,
                     ) -> GatewayResult: ...

    async def lookup_refund(self, idempotency_key: str, reference: str) -> GatewayResult | None: ...

    def verify(self, body: bytes, signature: str | None) -> dict[str, Any]: ...


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, body: bytes, header: str | None, tolerance: int = 300) -> None:
    if not header:
        raise BadSignature("the webhook has no signature header")
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError) as exc:
        raise BadSignature("the webhook's signature header is malformed (t=<unix>,v1=<hex>)") from exc
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise BadSignature("the webhook's signature does not match its body")
    if abs(time.time() - t) > tolerance:
        raise BadSignature(f"the webhook's signature is older than {tolerance} s")


Deliver = Callable[[bytes, str], Awaitable[None]]

DECLINES = {"tok_chargeDeclined": "card_declined", "tok_insufficientFunds": "insufficient_funds"}
INSTANT = "tok_instant"
FAIL_LATER = "tok_failLater"


@dataclass
class _Charge:
    reference: str
    key: str
    amount: Decimal
    currency: str
    token: str
    metadata: dict[str, str]
    status: str
    decline_code: str | None = None
    refunded: Decimal = Decimal(0)
    settled_at: datetime | None = None


@dataclass
class SandboxGateway:
    """The built-in gateway of the demo and the tests (state in process memory, like a provider's account)."""

    secret: str
    name: str = "sandbox"
    deliver: Deliver | None = None
    charges: dict[str, _Charge] = field(default_factory=dict)  # by idempotency key
    refunds: dict[str, GatewayResult] = field(default_factory=dict)
    disputes: dict[str, tuple[_Charge, dict[str, str]]] = field(default_factory=dict)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)  # webhooks not delivered yet
    timeouts: int = 0  # the next n calls take the charge or the refund but lose the answer
    calls: int = 0

    def inject_timeouts(self, n: int = 1) -> None:
        self.timeouts += n

    async def charge(self, *, idempotency_key: str, amount: Decimal, currency: str, token: str,
                     metadata: dict[str, str]) -> GatewayResult:
        self.calls += 1
        existing = self.charges.get(idempotency_key)
        if existing is None:
            decline = DECLINES.get(token)
            status = "failed" if decline else "succeeded" if token == INSTANT else "pending"
            existing = _Charge(f"ch_{uuid.uuid4().hex[:24]}", idempotency_key, amount, currency, token,
                               dict(metadata), status, decline,
                               settled_at=datetime.now(UTC) if status == "succeeded" else None)
            self.charges[idempotency_key] = existing
        if self.timeouts:
            self.timeouts -= 1
            raise GatewayTimeout("the sandbox gateway did not answer (injected timeout)")
        return GatewayResult(existing.status, existing.reference, existing.decline_code)

    async def lookup(self, idempotency_key: str) -> GatewayResult | None:
        c = self.charges.get(idempotency_key)
        return GatewayResult(c.status, c.reference, c.decline_code) if c else None

    async def refund(self, *, idempotency_key: str, reference: str, amount: Decimal, currency: str,
                     ) -> GatewayResult:
        self.calls += 1
        if idempotency_key not in self.refunds:  # a key seen before gets the first answer again (a provider's way)
            charge = next((c for c in self.charges.values() if c.reference == reference), None)
            if charge is None or charge.status != "succeeded" or charge.refunded + amount > charge.amount:
                result = GatewayResult("failed", f"re_{uuid.uuid4().hex[:24]}", "refund_refused")
            else:
                charge.refunded += amount
                result = GatewayResult("succeeded", f"re_{uuid.uuid4().hex[:24]}")
            self.refunds[idempotency_key] = result
        if self.timeouts:
            self.timeouts -= 1
            raise GatewayTimeout("the sandbox gateway did not answer (injected timeout)")
        return self.refunds[idempotency_key]

    async def lookup_refund(self, idempotency_key: str, reference: str) -> GatewayResult | None:
        if self.timeouts:
            self.timeouts -= 1
            raise GatewayTimeout("the sandbox gateway did not answer (injected timeout)")
        return self.refunds.get(idempotency_key)

    async def settlements(self, since: datetime, before: datetime) -> list[Settlement]:
        return [Settlement(c.key, c.reference, c.amount, c.refunded, c.currency, c.settled_at, dict(c.metadata))
                for c in self.charges.values()
                if c.status == "succeeded" and c.settled_at is not None and since <= c.settled_at < before]

    def verify(self, body: bytes, signature: str | None) -> dict[str, Any]:
        verify_signature(self.secret, body, signature)
        payload: dict[str, Any] = json.loads(body)
        return payload

    def _event(self, charge: _Charge) -> None:
        body = json.dumps({
            "id": f"evt_{uuid.uuid4().hex[:24]}", "type": f"charge.{charge.status}", "created": int(time.time()),
            "data": {"reference": charge.reference, "idempotencyKey": charge.key, "status": charge.status,
                     "amount": str(charge.amount), "currency": charge.currency, "declineCode": charge.decline_code,
                     "metadata": charge.metadata}}).encode()
        self.outbox.append((charge.key, body))

    def open_dispute(self, idempotency_key: str, *, amount: Decimal | None = None, fee: Decimal = Decimal("15.00"),
                     reason: str = "fraudulent") -> str:
        """The payer disputes a succeeded charge (of our payment id ``idempotency_key``): the disputed amount (all
        of the charge by default) and the provider's fee are withdrawn, and a ``charge.dispute.created`` webhook
        is queued (``deliver_webhooks`` sends it). Returns the dispute's id."""
        charge = self.charges[idempotency_key]
        if charge.status != "succeeded":
            raise ValueError(f"charge {charge.reference} is {charge.status}: only a succeeded charge is disputed")
        dispute = {"id": f"dp_{uuid.uuid4().hex[:24]}", "amount": str(amount if amount is not None
                                                                       else charge.amount - charge.refunded),
                   "fee": str(fee), "currency": charge.currency, "reason": reason, "status": "open"}
        self.disputes[dispute["id"]] = (charge, dispute)
        self._dispute_event(charge, dispute, "charge.dispute.created")
        return str(dispute["id"])

    def close_dispute(self, dispute_id: str, *, won: bool) -> None:
        """The dispute is decided: won (the amount is given back) or lost; a ``charge.dispute.closed`` webhook."""
        charge, dispute = self.disputes[dispute_id]
        dispute["status"] = "won" if won else "lost"
        self._dispute_event(charge, dispute, "charge.dispute.closed")

    def _dispute_event(self, charge: _Charge, dispute: dict[str, str], kind: str) -> None:
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex[:24]}", "type": kind, "created": int(time.time()),
                           "data": {"reference": charge.reference, "dispute": dict(dispute),
                                    "metadata": charge.metadata}}).encode()
        self.outbox.append((charge.key, body))

    async def settle(self) -> int:
        """Settle every pending charge (``tok_failLater`` fails) and queue its webhook; then deliver. Returns the
        number of charges settled."""
        settled = 0
        for charge in self.charges.values():
            if charge.status == "pending":
                charge.status = "failed" if charge.token == FAIL_LATER else "succeeded"
                charge.decline_code = "do_not_honor" if charge.status == "failed" else None
                charge.settled_at = datetime.now(UTC) if charge.status == "succeeded" else None
                self._event(charge)
                settled += 1
        await self.deliver_webhooks()
        return settled

    async def deliver_webhooks(self) -> int:
        """Deliver the queued webhooks, signed; one whose delivery fails stays queued for the next attempt."""
        if self.deliver is None:
            return 0
        delivered = 0
        remaining: list[tuple[str, bytes]] = []
        for key, body in self.outbox:
            try:
                await self.deliver(body, sign(self.secret, body))
                delivered += 1
            except Exception:  # a failed delivery is retried, as a provider does
                remaining.append((key, body))
        self.outbox = remaining
        return delivered

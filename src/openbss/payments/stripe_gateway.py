"""The Stripe adapter of the gateway interface (the official ``stripe`` library, asynchronous over httpx).

A charge is a PaymentIntent confirmed at once with the card's payment method (the ``token`` of a tokenizedCard),
created with our payment id as Stripe's ``Idempotency-Key`` and in its metadata (``payment``, ``tenant``): the
janitor finds it again by searching that metadata. Amounts travel in the currency's minor unit. A declined card is
a ``failed`` result with Stripe's decline code; a connection error or a timeout is ``GatewayTimeout`` (the outcome
is unknown). Webhooks are verified with Stripe's signature scheme (``Stripe-Signature``) and normalized to the
events the payment service applies (``payment_intent.succeeded`` / ``.payment_failed`` / ``.processing``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe

from openbss.payments.errors import BadSignature, InvalidPayment
from openbss.payments.gateway import GatewayResult, GatewayTimeout, Settlement
from openbss.pricing.money import MINOR_UNITS

STATUS = {"succeeded": "succeeded", "processing": "pending", "requires_action": "pending",
          "requires_confirmation": "pending", "requires_capture": "pending",
          "requires_payment_method": "failed", "canceled": "failed"}
EVENTS = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed",
          "payment_intent.processing": "pending"}

#: dispute events: created (the amount withdrawn), closed (won: given back; lost)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.closed")
DISPUTE_STATUS = {"won": "won", "lost": "lost"}


#: where Stripe's amount exponent is not ISO 4217's: MGA is one of Stripe's zero-decimal currencies (ISO: 2), and
#: Stripe takes ISK and UGX (ISO: 0) as two-decimal amounts, whole units times 100 (Stripe's "special cases")
STRIPE_EXPONENT = {"MGA": 0, "ISK": 2, "UGX": 2}


def exponent(currency: str) -> int:
    """The power of ten of Stripe's integer amounts in ``currency``."""
    return STRIPE_EXPONENT.get(currency, MINOR_UNITS.get(currency, 2))


def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` as Stripe's integer amount; an amount finer than that is refused, never truncated."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidPayment(f"{amount} {currency} is finer than the currency's smallest unit")
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, webhook_secret: str, api_base: str | None = None,
                 timeout: float = 20.0) -> None:
        bases: Any = {"api": api_base} if api_base else {}
        self.client = stripe.StripeClient(api_key, base_addresses=bases,
                                          http_client=stripe.HTTPXClient(timeout=timeout))
        self.webhook_secret = webhook_secret

    @staticmethod
    def _result(intent: Any) -> GatewayResult:
        error = getattr(intent, "last_payment_error", None)
        return GatewayResult(STATUS.get(str(intent.status), "pending"), str(intent.id),
                             getattr(error, "code", None) if error else None)

    async def charge(self, *, idempotency_key: str, amount: Decimal, currency: str, token: str,
                     metadata: dict[str, str]) -> GatewayResult:
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={"amount": to_minor(amount, currency), "currency": currency.lower(), "payment_method": token,
                        "confirm": True, "metadata": {**metadata, "payment": idempotency_key}},
                options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            body: dict[str, Any] = exc.json_body if isinstance(exc.json_body, dict) else {}
            declined: dict[str, Any] = (body.get("error") or {}).get("payment_intent") or {}
            return GatewayResult("failed", str(declined.get("id") or f"declined-{idempotency_key}"),
                                 exc.code or "card_declined")
        except stripe.APIConnectionError as exc:
            raise GatewayTimeout(str(exc)) from exc
        return self._result(intent)

    async def settlements(self, since: datetime, before: datetime) -> list[Settlement]:
        """The PaymentIntents created in ``[since, before)`` (filtered here: newest first, paging stops past
        ``since``) that succeeded (their latest charge expanded for what
        was refunded), with our payment id from their metadata."""
        out: list[Settlement] = []
        try:
            intents: list[Any] = []
            after: str | None = None
            lo, hi = int(since.timestamp()), int(before.timestamp())
            while True:  # pages of 100, newest first (Stripe's order): stop once past ``since``
                params: Any = {"limit": 100, "expand": ["data.latest_charge"]}
                if after:
                    params["starting_after"] = after
                page = await self.client.v1.payment_intents.list_async(params=params)
                intents += [i for i in page.data if lo <= int(i.created) < hi]
                if not page.has_more or not page.data or min(int(i.created) for i in page.data) < lo:
                    break
                after = str(page.data[-1].id)
            for intent in intents:
                if intent.status != "succeeded":
                    continue
                currency = str(intent.currency).upper()
                charge: Any = getattr(intent, "latest_charge", None)
                if charge is None or isinstance(charge, str):  # not expanded: the intent's charges (older API)
                    charges = getattr(intent, "charges", None)
                    charge = charges.data[-1] if charges is not None and charges.data else None
                refunded = int(getattr(charge, "amount_refunded", 0) or 0) if charge is not None else 0
                raw = intent.metadata.to_dict() if intent.metadata is not None else {}
                metadata = {str(k): str(v) for k, v in raw.items()}
                received = int(getattr(intent, "amount_received", None) or intent.amount)
                out.append(Settlement(metadata.get("payment", str(intent.id)), str(intent.id),
                                      from_minor(received, currency),
                                      from_minor(refunded, currency), currency,
                                      datetime.fromtimestamp(int(intent.created), UTC), metadata))
        except stripe.APIConnectionError as exc:
            raise GatewayTimeout(str(exc)) from exc
        return out

    async def lookup(self, idempotency_key: str) -> GatewayResult | None:
        try:
            found = await self.client.v1.payment_intents.search_async(
                params={"query": f"metadata['payment']:'{idempotency_key}'"})
        except stripe.APIConnectionError as exc:
            raise GatewayTimeout(str(exc)) from exc
        intents = list(found.data)
        return self._result(intents[0]) if intents else None

    async def refund(self, *, idempotency_key: str, reference: str, amount: Decimal, currency: str,
                     ) -> GatewayResult:
        try:
            refund = await self.client.v1.refunds.create_async(
                params={"payment_intent": reference, "amount": to_minor(amount, currency),
                        "metadata": {"refund": idempotency_key}},
                options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as exc:
            return GatewayResult("failed", f"refused-{idempotency_key}", exc.code or "refund_refused")
        except stripe.APIConnectionError as exc:
            raise GatewayTimeout(str(exc)) from exc
        return GatewayResult("succeeded" if refund.status in ("succeeded", "pending") else "failed", str(refund.id))

    async def lookup_refund(self, idempotency_key: str, reference: str) -> GatewayResult | None:
        """The refund of the intent ``reference`` made with our refund id (in its metadata), if Stripe has it."""
        try:
            found = await self.client.v1.refunds.list_async(params={"payment_intent": reference, "limit": 100})
        except stripe.InvalidRequestError:
            return None
        except stripe.APIConnectionError as exc:
            raise GatewayTimeout(str(exc)) from exc
        for refund in found.data:
            metadata = getattr(refund, "metadata", None)
            if metadata is not None and metadata.to_dict().get("refund") == idempotency_key:
                return GatewayResult("succeeded" if refund.status in ("succeeded", "pending") else "failed",
                                     str(refund.id))
        return None

    def verify(self, body: bytes, signature: str | None) -> dict[str, Any]:
        if not signature:
            raise BadSignature("the webhook has no Stripe-Signature header")
        try:
            event = stripe.Webhook.construct_event(body, signature, self.webhook_secret)
        except stripe.SignatureVerificationError as exc:
            raise BadSignature(f"the Stripe webhook does not verify: {exc}") from exc
        except ValueError as exc:
            raise InvalidPayment(f"the Stripe webhook is not JSON: {exc}") from exc
        if event.type in DISPUTE_EVENTS:
            return self._dispute(event)
        intent = event.data.object
        status = EVENTS.get(event.type)
        raw_metadata = getattr(intent, "metadata", None)
        metadata = {str(k): str(v) for k, v in raw_metadata.to_dict().items()} if raw_metadata else {}
        error = getattr(intent, "last_payment_error", None)
        return {"id": event.id, "type": event.type,
                "data": {"reference": getattr(intent, "id", None), "idempotencyKey": metadata.get("payment"),
                         "status": status, "metadata": metadata,
                         "declineCode": getattr(error, "code", None) if error else None}}

    @staticmethod
    def _dispute(event: Any) -> dict[str, Any]:
        """A dispute event normalized: the intent disputed (our payment's gateway reference), the amount and the
        fee Stripe took (from the dispute's balance transactions), and open / won / lost."""
        d = event.data.object
        currency = str(getattr(d, "currency", "eur")).upper()
        fee = sum((int(getattr(t, "fee", 0) or 0) for t in getattr(d, "balance_transactions", None) or []), 0)
        status = DISPUTE_STATUS.get(str(d.status), "open") if event.type == "charge.dispute.closed" else "open"
        return {"id": event.id, "type": event.type,
                "data": {"reference": getattr(d, "payment_intent", None) or getattr(d, "charge", None),
                         "dispute": {"id": d.id, "amount": str(from_minor(int(d.amount), currency)),
                                     "fee": str(from_minor(fee, currency)), "currency": currency,
                                     "reason": getattr(d, "reason", None), "status": status}}}

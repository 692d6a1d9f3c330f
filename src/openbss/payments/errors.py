"""Typed errors of payments and the ledger."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict, Unauthorized


class InvalidPayment(BadRequest):
    code = "INVALID_PAYMENT"
    reason = "Invalid payment request"


class MethodUnusable(Conflict):
    """The payment method is revoked or expired."""

    status = 422
    code = "PAYMENT_METHOD_UNUSABLE"
    reason = "The payment method cannot be used"


class PaymentInFlight(Conflict):
    code = "PAYMENT_IN_FLIGHT"
    reason = "Another payment of this bill is in flight"


class IdempotencyMismatch(Conflict):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    reason = "The Idempotency-Key was used for another request"


class RefundRefused(Conflict):
    code = "REFUND_REFUSED"
    reason = "The refund cannot be made"


class BadSignature(Unauthorized):
    code = "BAD_WEBHOOK_SIGNATURE"
    reason = "The webhook's signature does not verify"


class Unbalanced(Conflict):
    code = "LEDGER_UNBALANCED"
    reason = "A journal entry must balance"


class PeriodRefused(Conflict):
    code = "LEDGER_PERIOD_REFUSED"
    reason = "The ledger period cannot be closed"


class WriteOffRefused(Conflict):
    code = "WRITE_OFF_REFUSED"
    reason = "The write-off cannot be made"

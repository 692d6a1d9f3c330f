"""Typed errors of ordering: each names the order item and the rule it breaks."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class InvalidOrder(BadRequest):
    code = "INVALID_ORDER"
    reason = "Invalid product order"


class NotOrderable(BadRequest):
    code = "OFFERING_NOT_ORDERABLE"
    reason = "Offering not orderable"


class InvalidBillingAccount(BadRequest):
    code = "INVALID_BILLING_ACCOUNT"
    reason = "Invalid billing account"


class BundleCardinality(BadRequest):
    code = "BUNDLE_CARDINALITY"
    reason = "Bundle cardinality not respected"


class InvalidItemCharacteristic(BadRequest):
    code = "INVALID_CHARACTERISTIC"
    reason = "Characteristic value not allowed"


class OrderNotCancellable(Conflict):
    code = "ORDER_NOT_CANCELLABLE"
    reason = "Order cannot be cancelled"


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    reason = "Idempotency key reused with another request"


class CartCheckedOut(Conflict):
    code = "CART_CHECKED_OUT"
    reason = "Shopping cart already checked out"

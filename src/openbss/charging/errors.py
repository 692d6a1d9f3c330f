"""Typed errors of online charging and the Diameter result codes of the credit-control API."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict, NotFound

# Diameter result codes (RFC 6733, RFC 4006 section 9), as the credit-control answers carry them.
SUCCESS = 2001
END_USER_SERVICE_DENIED = 4010
CREDIT_CONTROL_NOT_APPLICABLE = 4011
CREDIT_LIMIT_REACHED = 4012
UNKNOWN_SESSION_ID = 5002
INVALID_AVP_VALUE = 5004
MISSING_AVP = 5005
UNABLE_TO_COMPLY = 5012
USER_UNKNOWN = 5030
RATING_FAILED = 5031

RESULT_NAMES = {
    SUCCESS: "DIAMETER_SUCCESS",
    END_USER_SERVICE_DENIED: "DIAMETER_END_USER_SERVICE_DENIED",
    CREDIT_CONTROL_NOT_APPLICABLE: "DIAMETER_CREDIT_CONTROL_NOT_APPLICABLE",
    CREDIT_LIMIT_REACHED: "DIAMETER_CREDIT_LIMIT_REACHED",
    UNKNOWN_SESSION_ID: "DIAMETER_UNKNOWN_SESSION_ID",
    INVALID_AVP_VALUE: "DIAMETER_INVALID_AVP_VALUE",
    MISSING_AVP: "DIAMETER_MISSING_AVP",
    UNABLE_TO_COMPLY: "DIAMETER_UNABLE_TO_COMPLY",
    USER_UNKNOWN: "DIAMETER_USER_UNKNOWN",
    RATING_FAILED: "DIAMETER_RATING_FAILED",
}


class ChargingAccountNotFound(NotFound):
    code = "CHARGING_ACCOUNT_NOT_FOUND"
    reason = "Charging account not found"


class SubscriberExists(Conflict):
    code = "SUBSCRIBER_EXISTS"
    reason = "Subscriber already has a charging account"


class InvalidBalanceAction(BadRequest):
    code = "INVALID_BALANCE_ACTION"
    reason = "Invalid balance action"


class AccountClosed(Conflict):
    """Money credited to a closed line (its product terminated) would be owed to nobody who can use it."""

    code = "CHARGING_ACCOUNT_CLOSED"
    reason = "Charging account is closed"


class InsufficientBalance(Conflict):
    code = "INSUFFICIENT_BALANCE"
    reason = "Insufficient balance"


class NotReversible(Conflict):
    """A balance action's cancellation that the balance cannot take (the credit was used, the reservation
    expired)."""

    code = "ACTION_NOT_REVERSIBLE"
    reason = "Balance action cannot be reversed"


class ActionApplied(Conflict):
    """A change (or deletion) of a balance action that would rewrite the record of money moved."""

    code = "ACTION_APPLIED"
    reason = "Balance action already applied"


class InvalidChargingRequest(BadRequest):
    code = "INVALID_CREDIT_CONTROL_REQUEST"
    reason = "Invalid credit-control request"

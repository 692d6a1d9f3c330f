"""Typed errors of the self-care portal (status + stable code, rendered in the platform's error format)."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, DomainError, Forbidden, NotFound, Unauthorized


class NotSignedIn(Unauthorized):
    code = "NOT_SIGNED_IN"


class CsrfFailed(Forbidden):
    code = "CSRF_FAILED"


class InvalidInput(BadRequest):
    code = "INVALID_INPUT"


class InvalidCode(BadRequest):
    code = "INVALID_CODE"
    reason = "Invalid one-time code"


class NoPendingLink(NotFound):
    code = "NO_PENDING_LINK"


class SignInFailed(BadRequest):
    code = "SIGN_IN_FAILED"
    reason = "Sign-in failed"


class TooManyRequests(DomainError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    reason = "Too many requests"


class UpstreamUnavailable(DomainError):
    """The charging system or the corporate directory did not answer."""

    status = 503
    code = "UPSTREAM_UNAVAILABLE"
    reason = "Service temporarily unavailable"


class StatementGone(DomainError):
    status = 410
    code = "STATEMENT_GONE"
    reason = "Gone"


class NothingToPay(DomainError):
    """The pay button of an account with nothing due (or payments absent: 503)."""

    status = 409
    code = "NOTHING_TO_PAY"
    reason = "Conflict"

"""Typed errors. Every domain raises subclasses carrying an HTTP status and a stable code; one handler renders
them in the TMF630 error format."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "BAD_REQUEST"
    reason: str = "Bad request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 reason: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        if reason:
            self.reason = reason
        self.details = details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "status": str(self.status),
            "@type": "Error",
        }
        return out


class BadRequest(DomainError):
    status = 400
    code = "BAD_REQUEST"
    reason = "Bad request"


class ValidationFailed(DomainError):
    status = 400
    code = "INVALID_BODY"
    reason = "Invalid request body"


class Unauthorized(DomainError):
    status = 401
    code = "UNAUTHORIZED"
    reason = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "FORBIDDEN"
    reason = "Permission denied"


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"
    reason = "Resource not found"


class MethodNotAllowed(DomainError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    reason = "Method not allowed"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"
    reason = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    reason = "Request body too large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    reason = "Unsupported media type"


class InvalidStateTransition(DomainError):
    status = 409
    code = "INVALID_STATE_TRANSITION"
    reason = "Invalid state transition"

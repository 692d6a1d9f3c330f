"""Customer care's typed errors (HTTP status + stable code)."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict, NotFound


class InvalidTicket(BadRequest):
    code = "INVALID_TICKET"


class UnknownQueue(BadRequest):
    code = "UNKNOWN_QUEUE"


class InvalidSlaPolicy(BadRequest):
    code = "INVALID_SLA_POLICY"


class DuplicateSlaPolicy(Conflict):
    code = "DUPLICATE_SLA_POLICY"


class DuplicateQueue(Conflict):
    code = "DUPLICATE_QUEUE"


class CareNotFound(NotFound):
    code = "NOT_FOUND"


class InvalidAdjustment(BadRequest):
    code = "INVALID_ADJUSTMENT"


__all__ = ["CareNotFound", "DuplicateQueue", "DuplicateSlaPolicy", "InvalidAdjustment", "InvalidSlaPolicy",
           "InvalidTicket", "UnknownQueue"]

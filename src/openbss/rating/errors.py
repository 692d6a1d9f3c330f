"""Typed errors of mediation and batch rating."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict, NotFound


class UnreadableUsageFile(BadRequest):
    code = "UNREADABLE_USAGE_FILE"
    reason = "Usage file cannot be read"


class InvalidUsageRecord(BadRequest):
    code = "INVALID_USAGE_RECORD"
    reason = "Invalid usage record"


class SuspendedRecordNotFound(NotFound):
    code = "SUSPENDED_RECORD_NOT_FOUND"
    reason = "Suspended record not found"


class InvalidNumberAssignment(BadRequest):
    code = "INVALID_NUMBER_ASSIGNMENT"
    reason = "Invalid number assignment"


class ConcurrentRating(Conflict):
    code = "CONCURRENT_RATING"
    reason = "Usage rated concurrently"


class InvalidRerate(BadRequest):
    code = "INVALID_RERATE"
    reason = "Invalid re-rate job"


class RerateJobConflict(Conflict):
    code = "RERATE_JOB_CONFLICT"
    reason = "Re-rate job id already used"

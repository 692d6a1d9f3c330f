"""Service assurance's typed errors (HTTP status + stable code)."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class InvalidAlarm(BadRequest):
    code = "INVALID_ALARM"


class InvalidPattern(BadRequest):
    code = "INVALID_ALARM_PATTERN"


class InvalidRule(BadRequest):
    code = "INVALID_CORRELATION_RULE"


class InvalidProblem(BadRequest):
    code = "INVALID_SERVICE_PROBLEM"


class AlarmContention(Conflict):
    code = "ALARM_CONTENTION"


__all__ = ["AlarmContention", "InvalidAlarm", "InvalidPattern", "InvalidProblem", "InvalidRule"]

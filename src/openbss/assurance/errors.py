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


class InvalidPerformanceJob(BadRequest):
    code = "INVALID_PERFORMANCE_REQUEST"


class InvalidThreshold(BadRequest):
    code = "INVALID_THRESHOLD"


class InvalidSla(BadRequest):
    code = "INVALID_SLA"


class InvalidMeasurement(BadRequest):
    code = "INVALID_MEASUREMENT"


class PerformanceConflict(Conflict):
    code = "PERFORMANCE_CONFLICT"


class ThresholdInUse(Conflict):
    code = "THRESHOLD_IN_USE"


class AlarmContention(Conflict):
    code = "ALARM_CONTENTION"


__all__ = ["AlarmContention", "InvalidAlarm", "InvalidMeasurement", "InvalidPattern", "InvalidPerformanceJob",
           "InvalidProblem", "InvalidRule", "InvalidSla", "InvalidThreshold", "PerformanceConflict", "ThresholdInUse"]

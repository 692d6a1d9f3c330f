"""Events service assurance emits (api ``alarm``, through the TMF kit, on the TMF642 hub and the backbone):
``AlarmCreateEvent``, ``AlarmAttributeValueChangeEvent`` (a repeat, an acknowledgement, a comment, a clear…),
``AlarmStateChangeEvent`` (raised → updated → cleared), ``AlarmDeleteEvent``, and the tasks' ``AckAlarmsCreateEvent``,
``UnAckAlarmsCreateEvent``, ``ClearAlarmsCreateEvent``, ``CommentAlarmsCreateEvent``. Assurance consumes no other
domain's events: it commands care to raise and resolve tickets in the transaction of the alarm that causes it, and
billing to credit an SLA violation in the transaction of the evaluation.

The TMF628 (``performance``), TMF649 (``performanceThresholding``) and TMF656 APIs emit the kit's events of their
resources. An SLA violation is announced on the backbone as ``SlaViolationEvent`` (api ``assurance``, key
``slaViolation``: the evaluation — SLA, product, customer, period, measured values, missed objectives, credit)."""

from __future__ import annotations

API = "alarm"
KINDS = ("Create", "AttributeValueChange", "StateChange", "Delete")
ALARM_EVENTS = tuple(f"Alarm{k}Event" for k in KINDS)
TASKS = ("AckAlarms", "UnAckAlarms", "ClearAlarms", "CommentAlarms")
TASK_EVENTS = tuple(f"{t}CreateEvent" for t in TASKS)
#: every event type the hub of the API accepts subscriptions to (the kit declares the four kinds of every resource;
#: a task, never updated nor deleted, emits only its creation)
EVENT_TYPES = (*ALARM_EVENTS, *(f"{t}{k}Event" for t in TASKS for k in KINDS))

SLA_API = "assurance"
SLA_VIOLATION = "SlaViolationEvent"
SLA_VIOLATION_KEY = "slaViolation"

__all__ = ["ALARM_EVENTS", "API", "EVENT_TYPES", "SLA_API", "SLA_VIOLATION", "SLA_VIOLATION_KEY", "TASK_EVENTS"]

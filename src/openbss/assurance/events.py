"""Events service assurance emits (api ``alarm``, through the TMF kit, on the TMF642 hub and the backbone):
``AlarmCreateEvent``, ``AlarmAttributeValueChangeEvent`` (a repeat, an acknowledgement, a comment, a clear…),
``AlarmStateChangeEvent`` (raised → updated → cleared), ``AlarmDeleteEvent``, and the tasks' ``AckAlarmsCreateEvent``,
``UnAckAlarmsCreateEvent``, ``ClearAlarmsCreateEvent``, ``CommentAlarmsCreateEvent``. Assurance consumes no other
domain's events: it commands care to raise and resolve tickets in the transaction of the alarm that causes it."""

from __future__ import annotations

API = "alarm"
KINDS = ("Create", "AttributeValueChange", "StateChange", "Delete")
ALARM_EVENTS = tuple(f"Alarm{k}Event" for k in KINDS)
TASKS = ("AckAlarms", "UnAckAlarms", "ClearAlarms", "CommentAlarms")
TASK_EVENTS = tuple(f"{t}CreateEvent" for t in TASKS)
#: every event type the hub of the API accepts subscriptions to (the kit declares the four kinds of every resource;
#: a task, never updated nor deleted, emits only its creation)
EVENT_TYPES = (*ALARM_EVENTS, *(f"{t}{k}Event" for t in TASKS for k in KINDS))

__all__ = ["ALARM_EVENTS", "API", "EVENT_TYPES", "TASK_EVENTS"]

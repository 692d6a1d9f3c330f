"""Events the party domain emits (through the TMF kit) on its notification hub and the event backbone."""

from __future__ import annotations

API = "party"
EVENT_TYPES = tuple(
    f"{resource}{kind}Event"
    for resource in ("Individual", "Organization")
    for kind in ("Create", "AttributeValueChange", "StateChange", "Delete")
)

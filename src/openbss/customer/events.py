"""Events the customer domain emits (through the TMF kit) on its hub and the event backbone."""

from __future__ import annotations

API = "customerManagement"
EVENT_TYPES = tuple(f"Customer{kind}Event" for kind in ("Create", "AttributeValueChange", "StateChange", "Delete"))

"""Events the party domain emits (through the TMF kit) on its notification hubs and the event backbone."""

from __future__ import annotations

API = "party"
ROLE_API = "partyRoleManagement"
EVENT_TYPES = tuple(
    f"{resource}{kind}Event"
    for resource in ("Individual", "Organization")
    for kind in ("Create", "AttributeValueChange", "StateChange", "Delete")
)
ROLE_EVENT_TYPES = tuple(
    f"PartyRole{kind}Event" for kind in ("Create", "AttributeValueChange", "StateChange", "Delete")
)

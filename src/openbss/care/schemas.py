"""TMF621 and TMF683 shapes, from the official specifications, and OpenBSS's documented extension of the trouble
ticket (TMF630 extension pattern: the subtype ``OpenBSSTroubleTicket`` of ``TroubleTicket``, described by the
JSON schema served at ``/api/care/v1/schema/OpenBSSTroubleTicket.json``, its ``@schemaLocation``):

* ``queue`` — the work queue (team) the ticket is assigned to: ``{id, name}`` (``/api/care/v1/queue``);
* ``assignee`` — the agent working it: ``{id, name}`` (the agent's user id at the identity provider);
* ``sla`` — read only, kept by the server: the SLA policy applied, the clock's status (running, paused,
  stopped), the first-response and resolution due times and whether each target was breached.
"""

from __future__ import annotations

from typing import Any

from openbss.platform.tmf.spec import load_spec

TICKET_SPEC = "TMF621-TroubleTicket-v4.0.0.swagger.json"
INTERACTION_SPEC = "TMF683-PartyInteraction-v4.0.0.swagger.json"
TICKET_TYPE = "OpenBSSTroubleTicket"

_REF = {"type": "object", "required": ["id"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "href": {"type": "string"}}}
_SLA = {"type": "object", "description": "The ticket's SLA, kept by the server (read only)", "properties": {
    "policy": {"$ref": "#/definitions/OpenBSSRef"},
    "status": {"type": "string", "enum": ["running", "paused", "stopped"]},
    "firstResponseDue": {"type": "string", "format": "date-time"},
    "firstResponseDate": {"type": "string", "format": "date-time"},
    "firstResponseBreached": {"type": "boolean"},
    "resolutionDue": {"type": "string", "format": "date-time"},
    "resolutionBreached": {"type": "boolean"},
}}
_EXTENSION = {
    "queue": {"$ref": "#/definitions/OpenBSSRef", "description": "The work queue (team) the ticket is assigned to"},
    "assignee": {"$ref": "#/definitions/OpenBSSRef", "description": "The agent working the ticket"},
}

ticket_spec = load_spec(TICKET_SPEC)
if TICKET_TYPE not in ticket_spec.definitions:
    defs: dict[str, Any] = ticket_spec.definitions
    defs["OpenBSSRef"] = _REF
    defs["OpenBSSTicketSla"] = _SLA
    defs[TICKET_TYPE] = {"allOf": [{"$ref": "#/definitions/TroubleTicket"}, {
        "type": "object", "properties": {**_EXTENSION, "sla": {"$ref": "#/definitions/OpenBSSTicketSla"}}}]}
    # the create shape carries ``sla`` so that a stored ticket validates again on a PATCH; a client's is refused
    defs[f"{TICKET_TYPE}_Create"] = {"allOf": [{"$ref": "#/definitions/TroubleTicket_Create"}, {
        "type": "object", "properties": {**_EXTENSION, "sla": {"$ref": "#/definitions/OpenBSSTicketSla"}}}]}
    defs[f"{TICKET_TYPE}_Update"] = {"allOf": [{"$ref": "#/definitions/TroubleTicket_Update"}, {
        "type": "object", "properties": dict(_EXTENSION)}]}


def extension_schema(schema_location: str) -> dict[str, Any]:
    """The JSON schema of the extension (draft 4), with the definitions it refers to."""
    return {"$schema": "http://json-schema.org/draft-04/schema#", "id": schema_location, "title": TICKET_TYPE,
            "description": __doc__, "definitions": {"OpenBSSRef": _REF, "OpenBSSTicketSla": _SLA},
            "allOf": [{"description": "TMF621 TroubleTicket"}, {"type": "object", "properties": {
                **_EXTENSION, "sla": {"$ref": "#/definitions/OpenBSSTicketSla"}}}]}

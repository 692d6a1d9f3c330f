"""TMF642 shapes, from the official specification, and OpenBSS's documented extension of the alarm (TMF630
extension pattern: the subtype ``OpenBSSAlarm`` of ``Alarm``, described by the JSON schema served at
``/api/assurance/v1/schema/OpenBSSAlarm.json``, its ``@schemaLocation``). Every extension attribute is kept by the
server (read only):

* ``reductionKey`` — what identifies the problem on its managed object (object, event type, probable cause,
  specific problem); while the alarm is open, a repeat of the same key updates this alarm;
* ``occurrenceCount`` — how many times the problem was reported while this alarm was open (1 when raised);
* ``lastOccurrenceTime`` — when it was last reported.
"""

from __future__ import annotations

from typing import Any

from openbss.platform.tmf.spec import load_spec

ALARM_SPEC = "TMF642-Alarm-v4.0.0.swagger.json"
ALARM_TYPE = "OpenBSSAlarm"

_EXTENSION: dict[str, Any] = {
    "reductionKey": {"type": "string", "description": "The problem on its managed object (read only)"},
    "occurrenceCount": {"type": "integer", "description": "Reports of the problem while open (read only)"},
    "lastOccurrenceTime": {"type": "string", "format": "date-time",
                           "description": "When the problem was last reported (read only)"},
}
MANAGED = frozenset(_EXTENSION)

alarm_spec = load_spec(ALARM_SPEC)
if ALARM_TYPE not in alarm_spec.definitions:
    defs: dict[str, Any] = alarm_spec.definitions
    defs[ALARM_TYPE] = {"allOf": [{"$ref": "#/definitions/Alarm"}, {"type": "object", "properties": _EXTENSION}]}
    # the create and update shapes carry the extension so that a stored alarm validates again on a PATCH; the
    # service refuses a client's values
    defs[f"{ALARM_TYPE}_Create"] = {"allOf": [{"$ref": "#/definitions/Alarm_Create"},
                                              {"type": "object", "properties": _EXTENSION}]}
    defs[f"{ALARM_TYPE}_Update"] = {"allOf": [{"$ref": "#/definitions/Alarm_Update"},
                                              {"type": "object", "properties": _EXTENSION}]}


def extension_schema(schema_location: str) -> dict[str, Any]:
    """The JSON schema of the extension (draft 4)."""
    return {"$schema": "http://json-schema.org/draft-04/schema#", "id": schema_location, "title": ALARM_TYPE,
            "description": __doc__,
            "allOf": [{"description": "TMF642 Alarm"}, {"type": "object", "properties": _EXTENSION}]}

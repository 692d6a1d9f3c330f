"""TMF642 shapes, from the official specification, and OpenBSS's documented extension of the alarm (TMF630
extension pattern: the subtype ``OpenBSSAlarm`` of ``Alarm``, described by the JSON schema served at
``/api/assurance/v1/schema/OpenBSSAlarm.json``, its ``@schemaLocation``). Every extension attribute is kept by the
server (read only):

* ``reductionKey`` — what identifies the problem on its managed object (object, event type, probable cause,
  specific problem); while the alarm is open, a repeat of the same key updates this alarm;
* ``occurrenceCount`` — how many times the problem was reported while this alarm was open (1 when raised);
* ``lastOccurrenceTime`` — when it was last reported;
* ``serviceProblem`` — the TMF656 service problem the alarm is grouped into;
* ``suppressed`` — the alarm is suppressed: every parent of its object in the topology is down;
* ``flapping`` / ``flapCount`` — the problem was raised and cleared more often than the flapping threshold within its
  window (its notifications are damped).

The TMF656 service problem is rendered as the subtype ``OpenBSSServiceProblem`` (``PROBLEM_EXTENSION``) with the
counts of its impact: ``affectedCustomerCount`` and ``affectedProductCount``.
"""

from __future__ import annotations

from typing import Any

from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.spec import load_spec

ALARM_SPEC = "TMF642-Alarm-v4.0.0.swagger.json"
ALARM_TYPE = "OpenBSSAlarm"

_EXTENSION: dict[str, Any] = {
    "reductionKey": {"type": "string", "description": "The problem on its managed object (read only)"},
    "occurrenceCount": {"type": "integer", "description": "Reports of the problem while open (read only)"},
    "lastOccurrenceTime": {"type": "string", "format": "date-time",
                           "description": "When the problem was last reported (read only)"},
    "serviceProblem": {"type": "object", "description": "The TMF656 service problem grouping the alarm (read only)",
                       "properties": {"id": {"type": "string"}, "href": {"type": "string"}}},
    "suppressed": {"type": "boolean",
                   "description": "Every parent of the alarmed object in the topology is down (read only)"},
    "flapping": {"type": "boolean", "description": "Raised and cleared too often in the flapping window (read only)"},
    "flapCount": {"type": "integer", "description": "Alarms of the problem in the flapping window (read only)"},
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


# --- TMF656 service problem ---------------------------------------------------------------------------------------
PROBLEM_SPEC = "TMF656-ServiceProblem-v4.0.0.swagger.json"
PROBLEM_TYPE = "OpenBSSServiceProblem"
PROBLEM_EXTENSION_PROPERTIES: dict[str, Any] = {
    "affectedCustomerCount": {"type": "integer", "description": "Customers whose products the problem affects"},
    "affectedProductCount": {"type": "integer", "description": "Products whose services the problem affects"},
}
PROBLEM_MANAGED = frozenset(PROBLEM_EXTENSION_PROPERTIES)
PROBLEM_EXTENSION = Extension(
    name=PROBLEM_TYPE, base="ServiceProblem", spec_file=PROBLEM_SPEC,
    description="A service problem with the counts of its impact (OpenBSS).",
    properties=PROBLEM_EXTENSION_PROPERTIES)

problem_spec = load_spec(PROBLEM_SPEC)
if PROBLEM_TYPE not in problem_spec.definitions:
    pdefs: dict[str, Any] = problem_spec.definitions
    for _name, _base in ((PROBLEM_TYPE, "ServiceProblem"), (f"{PROBLEM_TYPE}_Create", "ServiceProblem_Create"),
                         (f"{PROBLEM_TYPE}_Update", "ServiceProblem_Update")):
        pdefs[_name] = {**pdefs[_base], "properties": {**pdefs[_base]["properties"], **PROBLEM_EXTENSION_PROPERTIES}}
    pdefs[f"{PROBLEM_TYPE}_Update"].pop("required", None)

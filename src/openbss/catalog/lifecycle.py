"""The TMF620 lifecycle of catalog objects: In design → In test → Active → Retired → Obsolete.

TMF620 v4 types ``lifecycleStatus`` as a free string and names these values in its user guide; it defines no
lowercase forms. OpenBSS stores the canonical spelling and accepts any capitalisation or spacing on input
("active", "in design", "IN_TEST").
"""

from __future__ import annotations

from typing import Any

from openbss.catalog.errors import InvalidLifecycleStatus

IN_DESIGN, IN_TEST, ACTIVE, RETIRED, OBSOLETE = "In design", "In test", "Active", "Retired", "Obsolete"
STATUSES = (IN_DESIGN, IN_TEST, ACTIVE, RETIRED, OBSOLETE)
#: allowed transitions of one version (a test may send a design back for rework)
TRANSITIONS: dict[str, set[str]] = {
    IN_DESIGN: {IN_TEST},
    IN_TEST: {IN_DESIGN, ACTIVE},
    ACTIVE: {RETIRED},
    RETIRED: {OBSOLETE},
    OBSOLETE: set(),
}
#: statuses a new object may be created in through the API (imports reproduce any status)
CREATABLE = (IN_DESIGN, IN_TEST, ACTIVE)
#: versions whose content is frozen: changing an Active one creates a new version
FROZEN = (ACTIVE, RETIRED, OBSOLETE)

_CANONICAL = {s.lower().replace(" ", ""): s for s in STATUSES}


def normalize_status(value: Any) -> str:
    key = str(value).strip().lower().replace(" ", "").replace("_", "").replace("-", "")
    status = _CANONICAL.get(key)
    if status is None:
        raise InvalidLifecycleStatus(f"'lifecycleStatus': '{value}' is not one of {', '.join(STATUSES)}")
    return status


def next_version(existing: list[str]) -> str:
    """The next major version after the lineage's versions ("1.0" -> "2.0"; unparsable ones count as 1)."""
    majors = []
    for v in existing:
        try:
            majors.append(int(str(v).split(".")[0]))
        except ValueError:
            majors.append(1)
    candidate = f"{max(majors, default=0) + 1}.0"
    while candidate in existing:
        candidate = f"{int(candidate.split('.')[0]) + 1}.0"
    return candidate

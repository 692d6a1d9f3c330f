"""TMF656 ``serviceProblemEventRecord``: the record of every event announced for a service problem.

Each ``ServiceProblem…Event`` the kit announces (creation, attribute value change, status change; the damped ones
are not announced, and not recorded) is kept as a read-only event record in the same transaction: ``eventType``,
``eventTime`` (when it was announced), ``recordTime``, the ``serviceProblem`` it applies to (id, href) and the
``notification`` itself (``eventId``, ``eventTime``, ``eventType`` and ``event.serviceProblem``, the problem as the
event carried it: without the values events withhold). ``GET …/serviceProblemEventRecord?serviceProblem.id=<id>``
is a problem's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from openbss.platform.db import utcnow
from openbss.platform.tmf.references import without
from openbss.platform.tmf.resource import Context, ResourceService, TmfResource
from openbss.platform.tmf.search import Indexed, Searchable
from openbss.platform.tmf.spec import format_datetime

RECORD_TYPE = "ServiceProblemEventRecord"


def event_record_resource(table: Any) -> TmfResource:
    return TmfResource(
        path="serviceProblemEventRecord", type=RECORD_TYPE, table=table, operations=frozenset({"list", "get"}),
        customer_operations=frozenset(), create_definition=RECORD_TYPE, update_definition=RECORD_TYPE,
        searchable=Searchable(include=(Indexed("serviceProblem.id"), "eventType", "eventTime"), defaults=False))


class ProblemEventRecords(ResourceService):
    """Writes the records (the specification has no events for them: none is announced, nor audited — they are
    themselves the problem's log)."""

    def _announced(self, event_type: str, rendered: dict[str, Any]) -> bool:
        return False

    async def add(self, ctx: Context, events: list[tuple[str, dict[str, Any]]], withheld: tuple[str, ...]) -> None:
        if not events:
            return
        now = format_datetime(utcnow())
        items: list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        for kind, rendered in events:
            record_id = str(uuid.uuid4())
            problem = without(rendered, withheld)
            items.append((record_id, {
                "id": record_id, "eventType": kind, "eventTime": now, "recordTime": now,
                "serviceProblem": {"id": problem["id"], "href": problem.get("href"), "@referredType": "ServiceProblem"},
                "notification": {"eventId": record_id, "eventTime": now, "eventType": kind,
                                 "event": {"serviceProblem": problem}}}, {}))
        await self.store.insert_many(ctx, items)


__all__ = ["ProblemEventRecords", "event_record_resource"]

"""Erasure reaches every copy: what the platform scrubs when a party is erased, beyond the domains' own records.

The domains anonymize the records they own (party, roles, customers, accounts, portal identities). Copies of the
party's data elsewhere are found by the ids that name the party (the party, its customers and accounts —
``Related``) and scrubbed in the same transaction:

* **events** — ``outbox_event`` envelopes, ``hub_delivery`` payloads (kept as long as the subscription) and
  ``event_failure`` envelopes: the resource of an event loses its personal values (the paths its codec seals, party
  names, declared MSISDNs: ``TmfResource.event_withheld_paths``) and every reference to the party loses its name.
  Events written by this version carry none already (``platform/tmf/references.py``); this reaches those written
  before it. Messages already on the JetStream stream cannot be edited: they carry no personal values from this
  version on, and older ones age out with the stream (``OPENBSS_OUTBOX_RETENTION_DAYS``).
* **documents that refer to the party** — the TMF documents of resources without sealed personal data (orders,
  carts, products, service orders, …) and JSON columns of other tables the composition root names (audit changes,
  order item runs): a reference to the party (any object whose ``id`` is one of the party's ids) loses its ``name``.

A TMF document is found through its GIN index (``relatedParty``/``engagedParty`` containing one of the ids); a row of
the other tables by its JSON text containing one of the ids (an erasure is rare; those tables are bounded by their
retention). A row is rewritten only when something was removed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, or_, select, update

from openbss.platform.db import json_dumps
from openbss.platform.events.failures import EventFailure
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.hub import HubDelivery
from openbss.platform.tmf.references import without
from openbss.platform.tmf.resource import Context, ResourceService, TmfResource

#: the ids whose ``name`` in other records is the party's personal data: the party's, its customers', accounts'
Related = Callable[[Context, str], Awaitable[set[str]]]


def forget_names(value: Any, ids: set[str]) -> Any:
    """A copy of a JSON value in which every object whose ``id`` is one of ``ids`` has no ``name``."""
    if isinstance(value, dict):
        out = {k: forget_names(v, ids) for k, v in value.items()}
        if isinstance(out.get("id"), str) and out["id"] in ids:
            out.pop("name", None)
        return out
    if isinstance(value, list):
        return [forget_names(v, ids) for v in value]
    return value


@dataclass
class CopyEraser:
    """The platform's eraser of copies (registered last by the composition root)."""

    resources: Sequence[TmfResource]
    related: Related
    #: (ORM class, JSON attribute) of tables outside the TMF documents that may hold references to a party
    json_columns: Sequence[tuple[Any, str]] = ()
    _withheld: dict[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self._withheld = {}
        for r in self.resources:
            self._withheld.setdefault(r.event_key, ())
            self._withheld[r.event_key] += r.event_withheld_paths()

    def scrub_envelope(self, envelope: dict[str, Any], ids: set[str]) -> dict[str, Any]:
        event = envelope.get("event")
        if isinstance(event, dict):
            envelope = {**envelope, "event": {
                key: without(res, self._withheld.get(key, ())) if isinstance(res, dict) else res
                for key, res in event.items()}}
        return forget_names(envelope, ids)

    def _scrub_payload(self, payload: str, ids: set[str]) -> str:
        """A hub delivery's JSON text, scrubbed (the same text when nothing was removed)."""
        envelope = json.loads(payload)
        scrubbed = self.scrub_envelope(envelope, ids)
        return payload if scrubbed == envelope else json_dumps(scrubbed)

    async def __call__(self, ctx: Context, party_id: str) -> int:
        ids = {i for i in await self.related(ctx, party_id) if i}
        if not ids:
            return 0
        n = 0
        n += await self._rewrite(ctx, OutboxEvent, "envelope", ids, lambda v: self.scrub_envelope(v, ids))
        n += await self._rewrite(ctx, EventFailure, "envelope", ids, lambda v: self.scrub_envelope(v, ids))
        n += await self._rewrite(ctx, HubDelivery, "payload", ids, lambda v: self._scrub_payload(v, ids))
        for table, column in self.json_columns:
            n += await self._rewrite(ctx, table, column, ids, lambda v: forget_names(v, ids))
        seen: set[Any] = set()
        for r in self.resources:
            if r.codec.personal_paths() or r.table in seen:
                continue  # records with sealed personal data are anonymized by their domain's eraser
            seen.add(r.table)
            # the references that carried names: found through the documents' GIN index, not by reading them all
            body = r.table.body
            refers = or_(*[c for i in ids for c in (body.contains({"relatedParty": [{"id": i}]}),
                                                      body.contains({"engagedParty": {"id": i}}))])
            n += await self._rewrite(ctx, r.table, "body", ids, lambda v: forget_names(v, ids), where=refers)
        return n

    async def _rewrite(self, ctx: Context, table: Any, column: str, ids: Iterable[str],
                       scrub: Callable[[Any], Any], where: Any = None) -> int:
        col = getattr(table, column)
        text_of = col if isinstance(col.type, String) else cast(col, String)
        pk = table.__mapper__.primary_key[0]
        if where is None:
            where = or_(*[text_of.contains(f'"{i}"') for i in ids])
        rows = (await ctx.session.execute(select(pk, col).where(where))).all()
        changed = 0
        for key, value in rows:
            new = scrub(value)
            if new != value:
                await ctx.session.execute(update(table).where(pk == key).values({column: new}))
                changed += 1
        return changed


async def recent_referring(ctx: Context, service: ResourceService, ids: Iterable[Any], limit: int, *,
                           exclude_states: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The ``limit`` most recent documents of a TMF resource whose ``relatedParty`` names one of ``ids`` (a customer
    360 section), newest first; ``exclude_states``: leave out the documents in those states."""
    wanted = [str(i) for i in dict.fromkeys(ids) if i]
    if not wanted:
        return []
    table = service.resource.table
    q = select(table).where(or_(*[table.body.contains({"relatedParty": [{"id": i}]}) for i in wanted]))
    excluded = list(exclude_states)
    if excluded and service.resource.state_field:
        q = q.where(table.body[service.resource.state_field].astext.not_in(excluded))
    rows = (await ctx.session.execute(q.order_by(table.created_at.desc(), table.id).limit(limit))).scalars().all()
    return await service.store.render_all(ctx, list(rows))


async def referring(ctx: Context, service: ResourceService, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The documents of a TMF resource whose ``relatedParty`` names one of ``ids`` (a party's GDPR export), as the
    API renders them, oldest first."""
    wanted = [i for i in dict.fromkeys(ids) if i]
    if not wanted:
        return []
    table = service.resource.table
    rows = (await ctx.session.execute(select(table).where(
        or_(*[table.body.contains({"relatedParty": [{"id": i}]}) for i in wanted]))
        .order_by(table.created_at, table.id))).scalars().all()
    return await service.store.render_all(ctx, list(rows))


__all__ = ["CopyEraser", "Related", "forget_names", "referring"]

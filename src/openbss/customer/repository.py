"""The customer domain's own queries (beyond the TMF kit's): search by personal data through the blind index.

Each criterion is a subquery of customer ids served by an index (blind index, engaged party, GIN on the document);
the ids matching every criterion are computed once (materialized), then counted and paged in id order — a stable
order that needs no decryption. Only the page's rows are read and decrypted.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, cast, func, intersect, literal, or_, select, text, union
from sqlalchemy.dialects.postgresql import JSONB

from openbss.customer.models import Customer
from openbss.platform.tmf.resource import Context


def by_engaged_party(party_ids: Any, own_ids: Any | None = None) -> Any:
    by_party = select(Customer.id).where(Customer.engaged_party_id.in_(party_ids))
    return union(by_party, own_ids) if own_ids is not None else by_party


def segment_condition(segments: list[str]) -> Any:
    return or_(*[Customer.body.op("@>", return_type=Boolean)(
        cast(literal(json.dumps({"characteristic": [{"name": "segment", "value": s}]})), JSONB)) for s in segments])


def status_condition(statuses: list[str]) -> Any:
    return or_(*[Customer.body["status"].astext == s for s in statuses])


async def search(ctx: Context, criteria: list[Any], conditions: list[Any], offset: int,
                 limit: int, *, broad: bool = True) -> tuple[list[Customer], int]:
    """Customers whose id is in every ``criteria`` subquery and that satisfy every row ``condition``. ``broad``:
    the planner may estimate many rows (name prefixes, no index criterion), so JIT is turned off for the
    transaction — compiling would cost more than these short queries; exact lookups (e-mail, phone,
    identification, account) are estimated at a few rows, never reach ``jit_above_cost``, and save the round trip."""
    if broad or not criteria:
        await ctx.session.execute(text("SET LOCAL jit = off"))
    ids: Any = None
    if criteria:
        combine: Any = intersect  # (mypy cannot expand intersect's variadic signature over list[Any])
        ids = (criteria[0] if len(criteria) == 1 else combine(*criteria)).subquery("ids")
    matched: Any
    if ids is not None and not conditions:
        matched = select(ids.c[0].label("id"))  # the index gives customer ids: no need to read the table
    elif ids is not None:
        matched = select(Customer.id).join(ids, Customer.id == ids.c[0]).where(*conditions)
    else:
        matched = select(Customer.id).where(*conditions)
    m = matched.cte("matched").prefix_with("MATERIALIZED")
    # the page's documents and the total in one statement (one round trip, one statement to build per request)
    page = select(m.c.id).order_by(m.c.id).offset(offset).limit(limit).subquery("page")
    rows = (await ctx.session.execute(
        select(Customer, select(func.count()).select_from(m).scalar_subquery())
        .join(page, Customer.id == page.c.id).order_by(Customer.id)
    )).all()
    if not rows:
        total = await ctx.session.scalar(select(func.count()).select_from(matched.subquery())) if offset else 0
        return [], int(total or 0)
    total = int(rows[0][1])
    customers = [r[0] for r in rows]
    return list(customers), total

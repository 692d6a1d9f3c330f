"""Every query of the catalog beyond the kit's document store (which serves the TMF list/get endpoints)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.catalog.models import ProductOffering
from openbss.platform.tmf.resource import TmfDocument


async def bodies_by_id(session: AsyncSession, table: type[TmfDocument],
                       ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = sorted({i for i in ids if isinstance(i, str)})
    if not wanted:
        return {}
    rows = (await session.execute(select(table.id, table.body).where(table.id.in_(wanted)))).all()
    return {row.id: row.body for row in rows}


async def referencing(session: AsyncSession, table: type[TmfDocument], attribute: str, target_id: str,
                      *, many: bool = True, for_update: bool = False) -> list[TmfDocument]:
    """Rows whose ``attribute`` (an array of refs when ``many``, else one ref) names ``target_id``.

    ``body @> ...`` is answered by the table's GIN (jsonb_path_ops) index.
    """
    pattern = {attribute: [{"id": target_id}]} if many else {attribute: {"id": target_id}}
    stmt = select(table).where(table.body.contains(pattern)).order_by(table.created_at, table.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars().all())


async def lineage_rows(session: AsyncSession, table: Any, lineage_id: str, *, for_update: bool = False) -> list[Any]:
    stmt = select(table).where(table.lineage_id == lineage_id).order_by(table.created_at, table.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars().all())


async def all_rows(session: AsyncSession, table: type[TmfDocument]) -> list[TmfDocument]:
    return list((await session.execute(select(table).order_by(table.created_at, table.id))).scalars().all())


async def count(session: AsyncSession, table: type[TmfDocument]) -> int:
    return int(await session.scalar(select(func.count()).select_from(table)) or 0)


def _open_or_contains(attribute: str, ref_id: str | None) -> Any:
    """No restriction declared (attribute absent or empty), or the restriction includes ``ref_id``."""
    if ref_id is None:
        return true()
    body = ProductOffering.body
    unrestricted = or_(not_(body.has_key(attribute)), func.jsonb_array_length(body[attribute]) == 0)
    return or_(unrestricted, body.contains({attribute: [{"id": ref_id}]}))


def orderable_condition(at: str, channel: str | None, segment: str | None) -> Any:
    """Active, sellable, within validFor at ``at`` (fixed-format UTC string), eligible for channel and segment."""
    body = ProductOffering.body
    start = body[("validFor", "startDateTime")].astext
    end = body[("validFor", "endDateTime")].astext
    return and_(
        body.contains({"lifecycleStatus": "Active"}),
        not_(body.contains({"isSellable": False})),
        or_(start.is_(None), start <= at),
        or_(end.is_(None), end > at),
        _open_or_contains("channel", channel),
        _open_or_contains("marketSegment", segment),
    )


async def orderable_offerings(session: AsyncSession, at: str, channel: str | None, segment: str | None,
                              offset: int, limit: int) -> tuple[list[ProductOffering], int]:
    cond = orderable_condition(at, channel, segment)
    total = int(await session.scalar(select(func.count()).select_from(ProductOffering).where(cond)) or 0)
    rows = (await session.execute(select(ProductOffering).where(cond)
                                  .order_by(ProductOffering.created_at.desc(), ProductOffering.id)
                                  .offset(offset).limit(limit))).scalars().all()
    return list(rows), total


async def referencing_value(session: AsyncSession, table: type[TmfDocument], attribute: str,
                            value: str) -> list[TmfDocument]:
    stmt = select(table).where(table.body.contains({attribute: value})).limit(10)
    return list((await session.execute(stmt)).scalars().all())

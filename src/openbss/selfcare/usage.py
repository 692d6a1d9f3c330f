"""RetrieveItemizedUsage: a month's rated usage, as JSON for the page and as the archived PDF.

Months are cut in ``selfcare_time_zone``. A month is *closed* once it ended (plus ``selfcare_month_close_hours``
for late records). Every generated PDF is archived in the object store with its SHA-256; the first PDF generated
for a closed month is *final* (one per customer and month, a unique index) and every later request for that month
is served from the archive, byte for byte. Documents of an open month are archived too, never served again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert

from openbss.platform.db import utcnow
from openbss.platform.storage import ObjectExists, StorageError
from openbss.pricing.money import round_money
from openbss.selfcare.directory import e164
from openbss.selfcare.errors import InvalidInput, StatementGone, UpstreamUnavailable
from openbss.selfcare.models import UsageDocument
from openbss.selfcare.portal import Portal
from openbss.selfcare.statement import (
    Branding,
    Statement,
    StatementCustomer,
    UsageItem,
    render_statement,
    totals_by_service,
)

log = logging.getLogger(__name__)
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MONTHS_SHOWN = 12
SERVICE = {"voice": "Voice", "data": "Data", "sms": "SMS", "mms": "MMS"}
MB = 1024 * 1024


@dataclass(frozen=True)
class UsageDocumentFile:
    content: bytes
    sha256: str
    month: str
    final: bool
    archived_key: str


def zone(portal: Portal) -> ZoneInfo:
    return ZoneInfo(portal.settings.selfcare_time_zone)


def current_month(portal: Portal, now: datetime | None = None) -> str:
    local = (now or utcnow()).astimezone(zone(portal))
    return f"{local.year:04d}-{local.month:02d}"


def months(portal: Portal, now: datetime | None = None) -> list[str]:
    local = (now or utcnow()).astimezone(zone(portal))
    year, month = local.year, local.month
    out = []
    for _ in range(MONTHS_SHOWN):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


def bounds(portal: Portal, month: str) -> tuple[datetime, datetime]:
    """[start, end) of ``month`` in the portal's time zone, as UTC instants."""
    found = MONTH.match(month or "")
    if not found:
        raise InvalidInput(f"'month': '{month}' is not a month (YYYY-MM)")
    year, number = int(found.group(1)), int(found.group(2))
    if year < 2000 or year > 2100:
        raise InvalidInput(f"'month': {month} is out of range")
    tz = zone(portal)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + (number == 12), 1 if number == 12 else number + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def is_closed(portal: Portal, month: str, now: datetime | None = None) -> bool:
    _, end = bounds(portal, month)
    return (now or utcnow()) >= end + timedelta(hours=portal.settings.selfcare_month_close_hours)


def check_month(portal: Portal, month: str) -> None:
    start, _ = bounds(portal, month)
    if start > utcnow():
        raise InvalidInput(f"'month': {month} has not started yet")


# --- records -> items --------------------------------------------------------------------------------------------
def _chars(record: dict[str, Any]) -> dict[str, Any]:
    return {c.get("name"): c.get("value") for c in record.get("usageCharacteristic") or []}


def quantity_text(usage_type: str, units: int) -> str:
    if usage_type == "voice":
        return f"{units // 60} min {units % 60:02d} s"
    if usage_type == "data":
        if units >= 1024 * MB:
            return f"{Decimal(units) / (1024 * MB):.2f} GB"
        return f"{Decimal(units) / MB:.1f} MB"
    if usage_type in ("sms", "mms"):
        return f"{units} {usage_type.upper()}"
    return str(units)


def to_item(record: dict[str, Any]) -> UsageItem:
    chars = _chars(record)
    usage_type = str(record.get("usageType") or "other")
    rated = (record.get("ratedProductUsage") or [{}])[0]
    amount = rated.get("taxExcludedRatingAmount") or {}
    msisdn = e164(str(chars.get("subscriber") or ""))
    destination = chars.get("calledParty") or chars.get("apn") or chars.get("destinationZone") or ""
    return UsageItem(
        at=datetime.fromisoformat(str(record["usageDate"]).replace("Z", "+00:00")), msisdn=msisdn,
        service=SERVICE.get(usage_type, usage_type.title()), destination=str(destination),
        quantity=quantity_text(usage_type, int(chars.get("quantity") or 0)),
        charge=Decimal(str(amount.get("value") or 0)), currency=str(amount.get("unit") or "EUR"),
        included=rated.get("usageRatingTag") == "included usage")


async def items_of(portal: Portal, party_id: str, month: str) -> tuple[list[UsageItem], bool]:
    start, end = bounds(portal, month)
    records, truncated = await portal.charging.usage(party_id, start, end)
    items = sorted((to_item(r) for r in records), key=lambda i: (i.at, i.msisdn, i.service))
    return items, truncated


def money_text(amount: Decimal, currency: str) -> str:
    """An amount as the portal shows it: rounded by the platform's rule for the currency (as in the PDF)."""
    return str(round_money(amount, currency))


def item_json(item: UsageItem, tz: ZoneInfo) -> dict[str, Any]:
    return {"at": item.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "localTime": item.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), "msisdn": item.msisdn,
            "service": item.service, "destination": item.destination, "quantity": item.quantity,
            "charge": money_text(item.charge, item.currency), "currency": item.currency,
            "included": item.included}


async def usage_json(portal: Portal, party_id: str, month: str) -> dict[str, Any]:
    check_month(portal, month)
    items, truncated = await items_of(portal, party_id, month)
    tz = zone(portal)
    return {"month": month, "closed": is_closed(portal, month), "timeZone": str(tz), "truncated": truncated,
            "items": [item_json(i, tz) for i in items],
            "totals": [{"service": s, "count": n, "charge": money_text(total, cur), "currency": cur}
                       for s, n, total, cur in totals_by_service(items)],
            "pdf": f"/selfcare/api/usage/{month}.pdf"}


# --- the PDF and its archive ---------------------------------------------------------------------------------
async def _final(portal: Portal, customer_id: str, month: str) -> UsageDocument | None:
    async with portal.db.transaction(portal.tenant) as session:
        row: UsageDocument | None = (await session.execute(select(UsageDocument).where(
            UsageDocument.customer_id == customer_id, UsageDocument.month == month,
            UsageDocument.final.is_(True)))).scalar_one_or_none()
        return row


async def archived_final(portal: Portal, customer_id: str, month: str) -> UsageDocumentFile | None:
    """The final statement of a closed month from the archive, or None when none was made yet."""
    row = await _final(portal, customer_id, month)
    if row is None:
        return None
    if row.purged_at is not None:
        raise StatementGone(f"the statement of {month} was deleted at the end of its retention period")
    return await _read_archived(portal, row)


async def _read_archived(portal: Portal, row: UsageDocument) -> UsageDocumentFile:
    try:
        content = await portal.archive.get(row.object_key)
    except StorageError as exc:  # missing, or its checksum does not match: an operator has to look
        log.error("archived statement %s of %s cannot be read: %s", row.id, row.month, type(exc).__name__)
        raise UpstreamUnavailable(f"the archived statement of {row.month} cannot be read right now") from exc
    sha = hashlib.sha256(content).hexdigest()
    if sha != row.sha256:
        log.error("archived statement %s of %s does not match its checksum", row.id, row.month)
        raise UpstreamUnavailable(f"the archived statement of {row.month} cannot be read right now")
    return UsageDocumentFile(content, sha, row.month, True, row.object_key)


async def ensure_archive(portal: Portal) -> None:
    """An S3 bucket is created on first use when missing (with Object Lock when configured)."""
    if not portal.archive_ready:
        ensure = getattr(portal.archive, "ensure_bucket", None)
        if ensure is not None:
            try:
                await ensure()
            except Exception as exc:  # S3 unreachable or refusing: the statement cannot be archived, so not served
                log.error("the document archive is not usable: %s", type(exc).__name__)
                raise UpstreamUnavailable("the document archive is temporarily unavailable") from exc
        portal.archive_ready = True


async def usage_pdf(portal: Portal, customer: StatementCustomer, party_id: str, month: str) -> UsageDocumentFile:
    check_month(portal, month)
    closed = is_closed(portal, month)
    if closed:
        found = await archived_final(portal, customer.customer_id, month)
        if found is not None:
            return found
    items, truncated = await items_of(portal, party_id, month)
    if truncated:  # never archive an incomplete statement as the month's final one
        log.warning("statement of %s for customer %s truncated at %d events", month, customer.customer_id,
                    len(items))
        closed = False
    start, end = bounds(portal, month)
    now = utcnow()
    s = portal.settings
    statement = Statement(
        month=month, period_start=start, period_end=end, generated_at=now, time_zone=s.selfcare_time_zone,
        customer=customer, items=tuple(items),
        branding=Branding(operator_name=s.selfcare_brand_name, primary_color=s.selfcare_brand_color,
                          address=s.selfcare_brand_address, support=s.selfcare_brand_support))
    content = await asyncio.to_thread(render_statement, statement)  # CPU-bound: off the event loop
    sha = hashlib.sha256(content).hexdigest()
    key = (f"usage-statements/{portal.tenant}/{customer.customer_id}/{month}/"
           f"{now.strftime('%Y%m%dT%H%M%S%f')}-{sha[:16]}.pdf")
    retention = s.selfcare_archive_retention_days
    retain_until = now + timedelta(days=retention) if retention > 0 else None
    await ensure_archive(portal)
    try:
        await portal.archive.put(key, content, content_type="application/pdf", retain_until=retain_until,
                                 metadata={"month": month, "final": str(closed).lower()})
    except ObjectExists:  # the same instant and content: already archived
        pass
    except StorageError as exc:
        log.error("statement of %s not archived: %s", month, type(exc).__name__)
        raise UpstreamUnavailable("the document archive is temporarily unavailable") from exc
    async with portal.db.transaction(portal.tenant) as session:
        stmt = insert(UsageDocument).values(customer_id=customer.customer_id, month=month, final=closed,
                                            object_key=key, sha256=sha, size=len(content), items=len(items),
                                            retain_until=retain_until)
        if closed:
            stmt = stmt.on_conflict_do_nothing(index_elements=["customer_id", "month", "tenant_id"],
                                               index_where=text("final"))
        inserted = await session.execute(stmt.returning(UsageDocument.id))
        won = inserted.scalar_one_or_none() is not None
    if closed and not won:  # another request (maybe in another process) archived this month first: serve that one
        found = await archived_final(portal, customer.customer_id, month)
        assert found is not None
        return found
    return UsageDocumentFile(content, sha, month, closed, key)


async def archived_statements(session: Any, customer_ids: list[str]) -> list[dict[str, Any]]:
    """The itemized statements archived for customers (a party's GDPR export): which month, when, which file."""
    if not customer_ids:
        return []
    rows = (await session.execute(select(UsageDocument).where(UsageDocument.customer_id.in_(customer_ids))
                                  .order_by(UsageDocument.customer_id, UsageDocument.month, UsageDocument.id)))\
        .scalars().all()
    return [{"customerId": r.customer_id, "month": r.month, "final": r.final, "items": r.items, "sha256": r.sha256,
             "size": r.size, "createdAt": r.created_at.isoformat(),
             "retainUntil": r.retain_until.isoformat() if r.retain_until else None,
             "purgedAt": r.purged_at.isoformat() if r.purged_at else None} for r in rows]


async def purge_expired_documents(portal: Portal) -> int:
    """Delete archived documents past their retention (none when retention is 0: kept forever). Each object is
    deleted first and its index row marked purged after, one at a time: a failure leaves the row for the next run,
    and a purged month answers 410 instead of being generated again."""
    now = utcnow()
    async with portal.db.transaction(portal.tenant) as session:
        rows = (await session.execute(select(UsageDocument.id, UsageDocument.object_key).where(
            UsageDocument.retain_until.is_not(None), UsageDocument.retain_until < now,
            UsageDocument.purged_at.is_(None)).limit(1000))).all()
    purged = 0
    for row_id, key in rows:
        try:
            await portal.archive.delete(key)
        except StorageError as exc:
            log.warning("archived document %s not deleted yet: %s", row_id, type(exc).__name__)
            continue
        async with portal.db.transaction(portal.tenant) as session:
            await session.execute(update(UsageDocument).where(UsageDocument.id == row_id).values(purged_at=now))
        purged += 1
    return purged

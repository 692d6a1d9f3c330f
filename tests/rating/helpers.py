"""Helpers of the rating tests: usage files in the documented layouts, the rating service in a tenant's
transaction."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import session_services

COLUMNS = ("recordId", "origin", "msisdn", "eventTime", "usageType", "quantity", "unit", "calledNumber",
           "visitedCountry", "apn", "sessionId", "partNumber", "lastPart", "direction", "callingNumber",
           "visitedNetwork")
MB = 1024 * 1024


def at(day: int, hour: int = 12, month: int = 11, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def rec(rid: str, number: str, when: datetime, usage_type: str = "data", quantity: int | str = MB,
        **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"recordId": rid, "msisdn": number, "eventTime": when.isoformat(), "usageType": usage_type,
                         "quantity": quantity}
    if usage_type in ("voice", "sms") and "calledNumber" not in extra:
        r["calledNumber"] = "+33142000000"
    r.update(extra)
    return r


def csv_file(records: Iterable[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(r)
    return out.getvalue().encode()


def jsonl_file(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def ctx_of(session: Any, tenant: str) -> Any:
    from openbss.charging import service

    return service.system_context(session, tenant, "http://testserver")


async def ingest(rt: Any, tenant: str, name: str, data: bytes, source: str = "msc1") -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        return await session_services().rating.service.ingest(ctx_of(session, tenant), name, data, source=source)


async def call(rt: Any, tenant: str, method: str, *args: Any, **kwargs: Any) -> Any:
    async with rt.db.transaction(tenant) as session:
        return await getattr(session_services().rating.service, method)(ctx_of(session, tenant), *args, **kwargs)


async def usage_of(rt: Any, tenant: str, account_id: str) -> list[dict[str, Any]]:
    async with rt.db.transaction(tenant) as session:
        from sqlalchemy import text

        rows = (await session.execute(text(
            "SELECT body, units, allowance_units, amount_minor FROM charging_usage WHERE account_id = :a "
            "ORDER BY usage_date"), {"a": account_id})).all()
    return [{**r.body, "_units": r.units, "_allowance": r.allowance_units, "_minor": r.amount_minor} for r in rows]


def reconciles(report: dict[str, Any]) -> bool:
    return report["received"] == report["rated"] + report["duplicate"] + report["rejected"] + report["suspended"]

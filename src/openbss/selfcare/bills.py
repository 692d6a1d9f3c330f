"""My bills: the signed-in customer's issued bills and credit notes (TMF678), the amount due per billing account,
and each bill's PDF.

The portal reads them from billing's own APIs over HTTP, as the customer (a short-lived token of the ``customer``
role bound to the customer, then to its party): billing returns only the bills whose ``relatedParty`` names them,
so the portal cannot show or download another customer's bill even if asked for its id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import system_context
from openbss.selfcare.portal import Portal
from openbss.selfcare.signin import SessionInfo
from openbss.selfcare.usage import money_text

BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
DOCUMENT = "/billing/v1/customerBill/{id}/document.pdf"
ISSUED = ("validated", "sent", "partiallyPaid", "settled")
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _owners(info: SessionInfo) -> list[str]:
    """Who a bill may name: the customer, then its party."""
    return list(dict.fromkeys(i for i in (info.customer_id, info.party_id) if i))


def _money(m: Any) -> dict[str, Any] | None:
    if not isinstance(m, dict) or m.get("value") is None:
        return None
    unit = str(m.get("unit") or "EUR")
    return {"value": money_text(Decimal(str(m["value"])), unit), "unit": unit}


def _local(value: Any, tz: tzinfo, *, last_day: bool = False) -> str | None:
    """A bill's instant (a local midnight of its account) as the local calendar date ``YYYY-MM-DD``; with
    ``last_day``, the day before (a period's end is exclusive)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    day = moment.astimezone(tz).date()
    return (day - timedelta(days=1) if last_day else day).isoformat()


async def _time_zones(portal: Portal, account_ids: set[str]) -> dict[str, tzinfo]:
    """The time zone of each billing account (its bill cycle's): billing dates are local dates there."""
    out: dict[str, tzinfo] = {}
    ids = sorted(i for i in account_ids if i)
    if not ids:
        return out
    async with portal.db.transaction(portal.tenant) as session:
        ctx = system_context(portal.tenant, session, portal.public_url, "selfcare")
        for account_id in ids:
            try:
                account = await portal.directories.openbss.accounts.get_billing_account(ctx, account_id)
                out[account_id] = ZoneInfo(str((account.get("billCycle") or {}).get("timeZone") or "UTC"))
            except (NotFound, ValueError, KeyError):
                out[account_id] = UTC
    return out


async def my_bills(portal: Portal, info: SessionInfo) -> dict[str, Any]:
    """The customer's issued bills and credit notes, newest first, and per billing account the amount due on its
    latest bill (nothing once that bill is settled) and when."""
    found: dict[str, dict[str, Any]] = {}
    for owner in _owners(info):
        for bill in await portal.charging.list_all(BILLS, {}, party=owner):
            if bill.get("state") in ISSUED:
                found.setdefault(str(bill["id"]), bill)
    bills = sorted(found.values(), key=lambda b: (str(b.get("billDate") or ""), str(b.get("billNo") or "")),
                   reverse=True)
    zones = await _time_zones(portal, {str((b.get("billingAccount") or {}).get("id") or "") for b in bills})
    rows = []
    due: dict[str, dict[str, Any]] = {}
    for b in bills:
        account = b.get("billingAccount") or {}
        period = b.get("billingPeriod") or {}
        tz = zones.get(str(account.get("id") or ""), UTC)
        rows.append({"id": b["id"], "billNo": b.get("billNo"), "category": b.get("category") or "normal",
                     "billDate": _local(b.get("billDate"), tz), "state": b.get("state"),
                     "periodStart": _local(period.get("startDateTime"), tz),
                     "periodEnd": _local(period.get("endDateTime"), tz, last_day=True),
                     "total": _money(b.get("taxIncludedAmount")), "amountDue": _money(b.get("amountDue")),
                     "dueDate": _local(b.get("paymentDueDate"), tz),
                     "account": account.get("name") or account.get("id"),
                     "pdf": f"/selfcare/api/bills/{b['id']}.pdf"})
        key = str(account.get("id") or "")
        if key not in due and (b.get("category") or "normal") != "creditNote":
            settled = b.get("state") == "settled"
            amount = _money(b.get("remainingAmount") or b.get("amountDue"))
            if amount is not None and settled:
                amount["value"] = money_text(Decimal(0), amount["unit"])
            due[key] = {"account": account.get("name") or key, "billNo": b.get("billNo"), "amountDue": amount,
                        "dueDate": None if settled else _local(b.get("paymentDueDate"), tz)}
    return {"bills": rows, "due": list(due.values())}


async def bill_pdf(portal: Portal, info: SessionInfo, bill_id: str) -> bytes:
    """The PDF of one of the customer's issued bills (billing's write-once copy)."""
    if not _ID.match(bill_id):
        raise NotFound("no such bill")
    for owner in _owners(info):
        data = await portal.charging.get_bytes(DOCUMENT.format(id=bill_id), party=owner)
        if data is not None:
            return data
    raise NotFound("no such bill among yours")

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

from openbss.platform.errors import DomainError, NotFound
from openbss.platform.tmf.resource import system_context
from openbss.selfcare.errors import InvalidInput, NothingToPay
from openbss.selfcare.portal import Portal
from openbss.selfcare.signin import SessionInfo
from openbss.selfcare.usage import money_text

BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
DOCUMENT = "/billing/v1/customerBill/{id}/document.pdf"
PROMISES = "/api/collections/v1/promiseToPay"
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
            due_date = None if settled else _local(b.get("paymentDueDate"), tz)
            today = datetime.now(tz).date().isoformat()
            owing = amount is not None and Decimal(amount["value"]) > 0
            overdue = bool(owing and due_date and due_date < today)
            due[key] = {"account": account.get("name") or key, "accountId": key, "billNo": b.get("billNo"),
                        "amountDue": amount, "dueDate": due_date, "overdue": overdue,
                        "daysPastDue": (datetime.fromisoformat(today) - datetime.fromisoformat(due_date)).days
                        if overdue and due_date else 0}
    if any(d["overdue"] for d in due.values()):
        for promise in await _pending_promises(portal, info):
            entry = due.get(str((promise.get("billingAccount") or {}).get("id") or ""))
            if entry is not None:
                entry["promise"] = {"amount": _money(promise.get("amount")),
                                    "promisedDate": promise.get("promisedDate")}
    return {"bills": rows, "due": list(due.values())}


async def _pending_promises(portal: Portal, info: SessionInfo) -> list[dict[str, Any]]:
    """The customer's pending promises to pay (collections' API, as the customer: its own only)."""
    try:
        return await portal.charging.list_all(PROMISES, {"state": "pending"}, party=info.customer_id)
    except DomainError:  # collections refused or is absent: the notice shows no promise
        return []


async def _account_due(portal: Portal, info: SessionInfo, body: Any, known: set[str]) -> dict[str, Any]:
    """The due entry of the billing account a request names, among the customer's own (404 otherwise)."""
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidInput(f"unknown attribute(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    account = body.get("account")
    if not isinstance(account, str) or not _ID.match(account):
        raise InvalidInput("'account' names one of your billing accounts")
    entry = next((d for d in (await my_bills(portal, info))["due"] if d["accountId"] == account), None)
    if entry is None:
        raise NotFound("no such billing account among yours")
    return entry


async def pay_due(portal: Portal, info: SessionInfo, body: Any) -> dict[str, Any]:
    """The pay button of an overdue notice: the amount due on the account's latest bill, charged to the account's
    default payment method through payments (the sandbox gateway in the demo and the tests). A succeeded payment
    closes the account's dunning episode (collections reacts to the payment's event) and lifts what it barred.
    The Idempotency-Key is the account, its bill and the amount: a second click pays once."""
    entry = await _account_due(portal, info, body, {"account"})
    amount = entry.get("amountDue")
    if not amount or Decimal(amount["value"]) <= 0:
        raise NothingToPay("nothing is due on this account")
    payments = portal.directories.openbss.payments
    if payments is None:
        raise NothingToPay("payments are not available here", status=503)
    request = {"account": {"id": entry["accountId"]}, "totalAmount": {"unit": amount["unit"],
                                                                       "value": amount["value"]},
               "description": f"Self-care payment of bill {entry.get('billNo') or ''}".strip(),
               "channel": {"name": "selfcare"}}
    outcome = await payments.pay(portal.system_principal(), request,
                                 f"selfcare:{entry['accountId']}:{entry.get('billNo')}:{amount['value']}",
                                 base_url=portal.public_url)
    payment = outcome.resource
    return {"payment": {"id": payment.get("id"), "status": payment.get("status"),
                        "amount": _money(payment.get("totalAmount")),
                        "reason": payment.get("statusReason")}}


async def promise_to_pay(portal: Portal, info: SessionInfo, body: Any) -> dict[str, Any]:
    """The promise-to-pay form: recorded by collections as the customer (collections itself accepts it for the
    customer's own accounts only, pausing the reminders and the barring until the date)."""
    entry = await _account_due(portal, info, body, {"account", "amount", "promisedDate"})
    unit = (entry.get("amountDue") or {}).get("unit") or "EUR"
    try:
        value = Decimal(str(body.get("amount")))
    except ArithmeticError as exc:
        raise InvalidInput("'amount' is the amount you will pay (e.g. 25.00)") from exc
    if not value.is_finite() or value <= 0:
        raise InvalidInput("'amount' must be more than 0")
    created = await portal.charging.post_json(PROMISES, {
        "billingAccount": {"id": entry["accountId"]}, "amount": {"unit": unit, "value": float(value)},
        "promisedDate": str(body.get("promisedDate") or "")}, party=info.customer_id)
    return {"promise": {"id": created.get("id"), "state": created.get("state"),
                        "amount": _money(created.get("amount")), "promisedDate": created.get("promisedDate")}}


async def bill_pdf(portal: Portal, info: SessionInfo, bill_id: str) -> bytes:
    """The PDF of one of the customer's issued bills (billing's write-once copy)."""
    if not _ID.match(bill_id):
        raise NotFound("no such bill")
    for owner in _owners(info):
        data = await portal.charging.get_bytes(DOCUMENT.format(id=bill_id), party=owner)
        if data is not None:
            return data
    raise NotFound("no such bill among yours")

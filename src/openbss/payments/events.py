"""Events of payments, and its reaction to billing's.

Payments emits, through the TMF kit, on the TMF670 hub ``PaymentMethod{Create,AttributeValueChange,StateChange,
Delete}Event`` and on the TMF676 hub ``Payment…Event`` / ``Refund…Event`` (``PaymentStateChangeEvent`` at every
transition of a payment: what dunning and collections react to).

It reacts to billing's ``CustomerBillStateChangeEvent``: an issued bill becomes a receivable of payments (once),
is posted to the ledger (once per bill), and the account's credit settles it. The handler reads the bill as billing
holds it now, so a late, repeated or out-of-order event changes nothing more.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.billing import events as billing
from openbss.platform.errors import NotFound
from openbss.platform.events.event import Consumer, Event, subscription
from openbss.platform.tmf.resource import system_context

if TYPE_CHECKING:
    from openbss.payments.service import PaymentService

log = logging.getLogger(__name__)

METHOD_API = "paymentMethod"
API = "paymentManagement"
KINDS = ("Create", "AttributeValueChange", "StateChange", "Delete")
EVENT_TYPES = {METHOD_API: tuple(f"PaymentMethod{k}Event" for k in KINDS),
               API: tuple(f"{r}{k}Event" for r in ("Payment", "Refund") for k in KINDS)}
BILL_ISSUED_CONSUMER = "payments.bill-issued"


def bill_issued_consumer(payments: PaymentService, base_url: str) -> Consumer:
    async def handle(session: AsyncSession, event: Event) -> None:
        bill = event.envelope["event"].get("customerBill") or {}
        if bill.get("state") not in ("validated", "sent", "partiallyPaid", "settled") or not bill.get("id"):
            return
        ctx = system_context(event.tenant_id, session, base_url, subject="payments")
        try:
            current = await payments.bills.get_bill(ctx, str(bill["id"]))
        except NotFound:
            log.warning("bill event %s names no bill of the tenant; ignored", event.event_id)
            return
        await payments.bill_issued(ctx, current)

    return subscription("payments", "bill-issued", handle, on=["CustomerBillStateChangeEvent"], apis=[billing.API])

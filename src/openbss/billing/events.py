"""Events billing emits (through the TMF kit) on its hub and the event backbone, and its reaction to ordering's.

``CustomerBillCreateEvent`` when a draft bill is written, ``CustomerBillAttributeValueChangeEvent`` when a draft is
recomputed, ``CustomerBillStateChangeEvent`` when a bill is finalized (``state: validated``, with its number and
amount due: what payments, the ledger and collections react to) and at every later state change.

``TestClockChangeEvent`` when a sandbox tenant's test clock is created, advanced or deleted (``testClock``:
``frozenTime``, ``status`` ``ready`` or ``deleted``): charging follows it (renewals and prepaid fees at the clock's
time).

It reacts to ordering's ``ProductOrderStateChangeEvent`` of a completed (or partial) order: each completed item that
suspends, resumes, changes the offering of or terminates a product is recorded as the product change billing
prorates (``BillingService.record_order_item``), once per order item: a redelivered, replayed or late event
records nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.ordering import events as ordering
from openbss.platform.events.event import Consumer, Event, subscription
from openbss.platform.events.outbox import emit
from openbss.platform.tmf.resource import system_context

if TYPE_CHECKING:
    from openbss.billing.service import BillingService

API = "customerBillManagement"
BILL_FINALIZED_STATE = "validated"
EVENT_TYPES = tuple(f"{r}{kind}Event" for r in ("CustomerBill", "CustomerBillOnDemand")
                    for kind in ("Create", "AttributeValueChange", "StateChange", "Delete"))
ORDER_CHANGES_CONSUMER = "billing.order-changes"
#: test clock changes go on a subject of their own (no TMF hub announces them)
CLOCK_API = "billingTestClock"
CLOCK_EVENT = "TestClockChangeEvent"
CLOCK_KEY = "testClock"
#: the order states whose completed items changed products for good
ORDER_DONE = ("completed", "partial")


async def clock_changed(session: AsyncSession, tenant_id: str, frozen: str | None) -> None:
    """Announce the tenant's test clock (``frozen``: its time, ISO; None: deleted, back to real time)."""
    await emit(session, api=CLOCK_API, event_type=CLOCK_EVENT, resource_key=CLOCK_KEY, resource_type="TestClock",
               resource={"id": tenant_id, "frozenTime": frozen, "status": "ready" if frozen else "deleted"})


def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of an order and the items nested in them."""
    out = []
    for item in items or []:
        out.append(item)
        out.extend(walk(item.get("productOrderItem") or []))
    return out


def order_changes_consumer(billing: BillingService, base_url: str) -> Consumer:
    """Billing prorates the product changes a completed product order made (in its own transaction)."""

    async def handle(session: AsyncSession, event: Event) -> None:
        order = event.envelope["event"].get("productOrder") or {}
        if order.get("state") not in ORDER_DONE or not order.get("id"):
            return
        ctx = system_context(event.tenant_id, session, base_url, subject="billing")
        for item in walk(order.get("productOrderItem") or []):
            if item.get("state") == "completed":
                await billing.record_order_item(ctx, order, item)

    return subscription("billing", "order-changes", handle, on=["ProductOrderStateChangeEvent"], apis=[ordering.API])

"""Events ordering emits, and the reactions of ordering to other domains' events.

Emitted (through the TMF kit, on the hubs and the backbone): TMF663 ``ShoppingCart...Event`` (api
``shoppingCart``), TMF622 ``ProductOrder...Event`` and ``CancelProductOrder...Event`` (api
``productOrderingManagement``) — Create, AttributeValueChange, StateChange, Delete. A product order's
``ProductOrderStateChangeEvent`` with ``state`` completed is what billing starts from.

Consumed: provisioning's ``OrderItemProvisioningStateChangeEvent``: the order's items and state follow what
provisioning did (``ProductOrderService.sync_items``, idempotent: a redelivered or late event changes nothing).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.ordering.service import ProductOrderService
from openbss.platform.errors import NotFound
from openbss.platform.events.consumers import Consumer, Event
from openbss.platform.tmf.resource import system_context
from openbss.provisioning import events as provisioning

log = logging.getLogger(__name__)

KINDS = ("Create", "AttributeValueChange", "StateChange", "Delete")
CART_API = "shoppingCart"
API = "productOrderingManagement"
EVENT_TYPES = {
    CART_API: tuple(f"ShoppingCart{k}Event" for k in KINDS),
    API: tuple(f"{r}{k}Event" for r in ("ProductOrder", "CancelProductOrder") for k in KINDS),
}
ITEM_PROVISIONING_CONSUMER = "ordering-item-provisioning"


def item_provisioning_consumer(orders: ProductOrderService, base_url: str) -> Consumer:
    """The product order follows the provisioning of its items (in its own transaction, once per event)."""

    async def handle(session: AsyncSession, event: Event) -> None:
        item = event.envelope["event"][provisioning.ITEM_KEY]
        ctx = system_context(event.tenant_id, session, base_url, subject="ordering")
        try:
            await orders.sync_items(ctx, str(item["productOrder"]["id"]))
        except NotFound:
            log.warning("provisioning event %s names no product order of the tenant; ignored", event.event_id)

    return Consumer(name=ITEM_PROVISIONING_CONSUMER, handler=handle,
                    event_types=frozenset({provisioning.ITEM_EVENT}), apis=frozenset({provisioning.ITEM_API}))

"""Events customer care emits, and its reactions to other domains' events.

Emitted (through the TMF kit, on the hubs and the backbone): TMF621 ``TroubleTicketCreateEvent``,
``...AttributeValueChangeEvent``, ``...StatusChangeEvent``, ``...ResolvedEvent``, ``...DeleteEvent`` (api
``troubleTicket``) and ``TroubleTicketSlaEscalationEvent`` (an escalation step fired, see ``care.escalation``);
TMF683 ``PartyInteraction...Event`` (api ``partyInteraction``).

Consumed (durable subscriptions, each idempotent: the interaction has a stable id derived from what happened, so a
redelivery or a replay records nothing more):

* ordering's ``ProductOrderCreateEvent`` — an interaction "Product order placed" with the order as its item;
* self-care's ``SelfcareProfileUpdateEvent`` — an interaction "Profile updated in self-care";
* payments' ``Payment…Event`` and ``Refund…Event`` — "Payment received", "Payment failed", "Refund issued", "Refund
  failed" (``care.reactions``: one generic consumer per ``InteractionRule``; dunning's reminders are one more rule).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.care.service import CareService
from openbss.ordering import events as ordering
from openbss.platform.events.consumers import Consumer, Event, subscription
from openbss.platform.tmf.resource import system_context
from openbss.selfcare import events as selfcare

DOMAIN = "care"
KINDS = ("Create", "AttributeValueChange", "StatusChange", "Delete")
TICKET_EVENTS = (*(f"TroubleTicket{k}Event" for k in KINDS), "TroubleTicketResolvedEvent",
                 "TroubleTicketSlaEscalationEvent")
INTERACTION_EVENTS = tuple(f"PartyInteraction{k}Event" for k in KINDS)
ORDER_PLACED = "order-placed-interaction"
PROFILE_UPDATED = "selfcare-profile-interaction"


def _when(event: Event) -> datetime:
    return datetime.fromisoformat(str(event.envelope["eventTime"]).replace("Z", "+00:00"))


def order_placed_consumer(care: CareService, base_url: str) -> Consumer:
    async def handle(session: AsyncSession, event: Event) -> None:
        order = event.envelope["event"]["productOrder"]
        ctx = system_context(event.tenant_id, session, base_url, subject="care")
        await care.record_order_placed(ctx, order, _when(event))

    return subscription(DOMAIN, ORDER_PLACED, handle, on={"ProductOrderCreateEvent"}, apis={ordering.API})


def profile_updated_consumer(care: CareService, base_url: str) -> Consumer:
    async def handle(session: AsyncSession, event: Event) -> None:
        update = event.envelope["event"][selfcare.PROFILE_UPDATE_KEY]
        ctx = system_context(event.tenant_id, session, base_url, subject="care")
        await care.record_profile_update(ctx, update, _when(event))

    return subscription(DOMAIN, PROFILE_UPDATED, handle, on={selfcare.PROFILE_UPDATE_EVENT}, apis={selfcare.API})

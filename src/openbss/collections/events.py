"""Events of collections, and its reactions to other domains' events.

Emitted on the ``/api/collections/v1/hub`` and the backbone (api ``collections``): ``DunningStepExecutedEvent``
(``{"dunningStepExecution": {id, dunningEpisode, billingAccount, step, action, name, state, reason, outcome,
overdueAmount, executionDate}}``: a step was done, failed or skipped), ``DunningEpisodeClosedEvent``
(``{"dunningEpisode": ...}``: the overdue amount was paid, or written off); and through the TMF kit the
``DunningPolicy…``, ``PromiseToPay…``, ``PaymentPlan…`` and ``DunningExclusion…`` create, change and state-change
events.

Consumed (idempotent: a re-evaluation of the account from what the database holds now, so a redelivery changes
nothing more): payments' ``PaymentStateChangeEvent`` (a payment succeeded: the episode may close and the account be
resumed at once) and billing's ``CustomerBillStateChangeEvent`` (a bill issued, paid, or a credit note).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.billing import events as billing
from openbss.payments import events as payments
from openbss.platform.events.event import Consumer, Event, subscription
from openbss.platform.tmf.resource import Context, system_context

API = "collections"
STEP_EXECUTED = "DunningStepExecutedEvent"
EPISODE_CLOSED = "DunningEpisodeClosedEvent"
DOMAIN_EVENTS = (STEP_EXECUTED, EPISODE_CLOSED)


class Reevaluates(Protocol):
    async def account_changed(self, ctx: Context, account_id: str) -> None: ...


def account_changed_consumer(collections: Reevaluates, base_url: str) -> Consumer:
    async def handle(session: AsyncSession, event: Event) -> None:
        body = event.envelope["event"]
        doc = body.get("payment") or body.get("customerBill") or {}
        account = (doc.get("account") or doc.get("billingAccount") or {}).get("id")
        if not account:
            return
        if "payment" in body and doc.get("status") != "succeeded":
            return
        ctx = system_context(event.tenant_id, session, base_url, subject="collections")
        await collections.account_changed(ctx, str(account))

    return subscription("collections", "account-changed", handle,
                        on=["PaymentStateChangeEvent", "CustomerBillStateChangeEvent"],
                        apis=[payments.API, billing.API])

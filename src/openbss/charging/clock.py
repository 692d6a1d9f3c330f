"""Online charging under a sandbox tenant's test clock (``billing.clock``).

A test clock lets an operator's team rehearse months of subscriptions in minutes. Billing owns the clock; charging
asks it (``TestClocks``, wired by the composition root: charging does not import billing) and follows it:

* on billing's ``TestClockChangeEvent`` (the clock created or advanced), the allowances of every period up to the
  clock's time are renewed and the prepaid lines' periodic fees of those periods taken from their money, each
  period as at its start (as the hourly renewal would have done had the time really passed: a period the money does
  not cover is recorded unpaid and grants nothing until a top-up pays it), in the reaction's transaction. The
  reaction reads the clock's time when it runs, not the event's: renewals are idempotent per period, so a
  redelivered or late event changes nothing;
* the hourly renewal job renews such a tenant at the clock's time, not real time
  (``service.renew_due_allowances``); once the clock is deleted, at real time again.

Credit-control requests keep real time (their reservations and validity are the network's); usage rated from
files follows each record's event time anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.charging import repository as repo
from openbss.charging import service
from openbss.charging.service import TestClocks
from openbss.platform.events.event import Consumer, Event, subscription

CONSUMER = "test-clock"
#: billing's ``events.CLOCK_API`` and ``CLOCK_EVENT`` (named here: billing already depends on ordering, which
#: depends on charging; a test holds them equal)
CLOCK_API, CLOCK_EVENT = "billingTestClock", "TestClockChangeEvent"


async def renew_to(session: AsyncSession, tenant_id: str, moment: datetime, base_url: str) -> int:
    """Renew, in ``session``, every account's periods that began by ``moment``, each as at its start; how many
    buckets were made."""
    ctx = service.system_context(session, tenant_id, base_url)
    made = 0
    for account_id, ended in await repo.accounts_due_for_renewal(await repo.session_connection(session),
                                                                 moment.timestamp()):
        start = datetime.fromtimestamp(ended, UTC)
        while start <= moment:
            made += await service.renew_allowances(ctx, account_id, start, now=start)
            start = service.add_months(start, 1)
    return made


def clock_consumer(clocks: TestClocks, base_url: str) -> Consumer:
    """Charging follows a sandbox tenant's test clock (in the reaction's transaction)."""

    async def handle(session: AsyncSession, event: Event) -> None:
        moment = await clocks.clock_time(session, event.tenant_id)
        if moment is not None:
            await renew_to(session, event.tenant_id, moment, base_url)

    return subscription("charging", CONSUMER, handle, on=[CLOCK_EVENT], apis=[CLOCK_API])

"""Online charging under a sandbox tenant's test clock (billing's ``TestClockChangeEvent``).

A test clock lets an operator's team rehearse months of subscriptions in minutes (``billing.clock``). Charging keeps
the clock's time in ``charging_settings.clock_time`` and follows it:

* when the clock is created or advanced, the allowances of every period the clock passed are renewed and the
  prepaid lines' periodic fees of those periods taken from their money, each period as at its start (as the hourly
  renewal would have done had the time really passed: a period the money does not cover is recorded unpaid and
  grants nothing until a top-up pays it), in the reaction's transaction;
* the hourly renewal job renews such a tenant at the clock's time, not real time (``service.renew_due_allowances``);
* when the clock is deleted, the tenant is back to real time.

Credit-control requests keep real time (their reservations and validity are the network's); usage rated from
files follows each record's event time anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.charging import repository as repo
from openbss.charging import service
from openbss.charging.models import ChargingSettings
from openbss.platform.events.event import Consumer, Event, subscription

CONSUMER = "test-clock"
#: billing's ``events.CLOCK_API``, ``CLOCK_EVENT`` and ``CLOCK_KEY`` (named here: billing already depends on
#: ordering, which depends on charging; a test holds them equal)
CLOCK_API, CLOCK_EVENT, CLOCK_KEY = "billingTestClock", "TestClockChangeEvent", "testClock"


async def follow(session: AsyncSession, tenant_id: str, frozen: datetime | None, base_url: str) -> int:
    """Keep the tenant's clock (None: real time again) and, at a clock's time, renew what fell due on the way;
    how many buckets were made."""
    stmt = pg_insert(ChargingSettings).values(clock_time=frozen)
    await session.execute(stmt.on_conflict_do_update(index_elements=["tenant_id"], set_={"clock_time": frozen}))
    if frozen is None:
        return 0
    ctx = service.system_context(session, tenant_id, base_url)
    moment = frozen.timestamp()
    made = 0
    for account_id, ended in await repo.accounts_due_for_renewal(await repo.session_connection(session), moment):
        start = datetime.fromtimestamp(ended, UTC)
        while start.timestamp() <= moment:  # each period renewed as at its start, as the hourly renewal would have
            made += await service.renew_allowances(ctx, account_id, start, now=start)
            start = service.add_months(start, 1)
    return made


def clock_consumer(base_url: str) -> Consumer:
    """Charging follows a sandbox tenant's test clock (in the reaction's transaction: once per clock change)."""

    async def handle(session: AsyncSession, event: Event) -> None:
        clock = event.envelope["event"].get(CLOCK_KEY) or {}
        frozen = clock.get("frozenTime") if clock.get("status") == "ready" else None
        await follow(session, event.tenant_id,
                     datetime.fromisoformat(frozen.replace("Z", "+00:00")) if isinstance(frozen, str) else None,
                     base_url)

    return subscription("charging", CONSUMER, handle, on=[CLOCK_EVENT], apis=[CLOCK_API])

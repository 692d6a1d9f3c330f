"""Periodic work of online charging, as a procrastinate blueprint.

* ``charging.release_expired`` (every minute): release reservations past their validity on accounts that saw no
  request since (the credit-control path releases them lazily on the account's next request anyway);
* ``charging.renew_allowances`` (every hour): start the next allowance period of accounts whose period ended
  (with rollover);
* ``charging.purge_finished`` (hourly): drop stored answers, released reservations and closed sessions older than a
  day (usage records stay).

The platform's job app does not load domain blueprints yet; register this one where the job app is built
(``platform/jobs.make_job_app``): ``app.add_tasks_from(charging_blueprint(), namespace="charging")``.
"""

from __future__ import annotations

from typing import Any

from procrastinate import Blueprint, JobContext
from sqlalchemy import text

from openbss.charging import repository as repo
from openbss.charging import service

KEEP_FINISHED_SECONDS = 86400


async def _tenants(rt: Any) -> list[str]:
    async with rt.db.transaction(None) as session:  # the tenant registry has no row-level security
        rows = (await session.execute(text("SELECT id FROM tenant WHERE status = 'active'"))).scalars().all()
    return [str(r) for r in rows]


async def release_expired(context: JobContext, timestamp: int) -> int:
    rt = context.additional_context["runtime"]
    return sum([await service.release_expired(rt.db, t, rt.settings.public_url) for t in await _tenants(rt)])


async def purge_finished(context: JobContext, timestamp: int) -> int:
    rt = context.additional_context["runtime"]
    total = 0
    pool = await repo.charging_pool(rt.db)
    for tenant in await _tenants(rt):
        async with repo.tenant_transaction(pool, tenant) as conn:
            total += await repo.purge_finished(conn, KEEP_FINISHED_SECONDS)
    return total


def charging_blueprint(clocks: service.TestClocks | None = None) -> Blueprint:
    """The periodic jobs of charging; renewals follow sandbox tenants' test clocks (``clocks``)."""

    async def renew_allowances(context: JobContext, timestamp: int) -> int:
        rt = context.additional_context["runtime"]
        return sum([await service.renew_due_allowances(rt.db, t, clocks=clocks) for t in await _tenants(rt)])

    bp = Blueprint()
    for name, fn, cron in (("charging.release_expired", release_expired, "* * * * *"),
                           ("charging.renew_allowances", renew_allowances, "7 * * * *"),
                           ("charging.purge_finished", purge_finished, "37 * * * *")):
        task = bp.task(name=name, pass_context=True, queue="maintenance")(fn)
        bp.periodic(cron=cron, periodic_id=name)(task)
    return bp

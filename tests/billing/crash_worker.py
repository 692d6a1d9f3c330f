"""A bill-run worker that stops, forever, in the middle of a partition (after billing ``N`` accounts, before its
commit): the test kills it with SIGKILL there. ``python -m tests.billing.crash_worker <tenant> <run> <N>``."""

from __future__ import annotations

import asyncio
import sys


async def main(tenant: str, run_id: str, stop_after: int) -> None:
    from openbss.billing.runs import work_run
    from openbss.platform.runtime import Runtime
    from openbss.services import build_services
    from openbss.settings import get_settings

    settings = get_settings()
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    billed = 0

    async def after_account(account_id: str) -> None:
        nonlocal billed
        billed += 1
        if billed == stop_after:
            print(f"STOPPED after {account_id}", flush=True)
            await asyncio.Event().wait()  # never set: killed here, mid-transaction

    await work_run(rt.db, tenant, "http://testserver", services.billing.service, run_id, worker="doomed",
                   after_account=after_account)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))

"""``openbss billing run``: a partitioned run worked in the command with a progress bar, then its counts, totals
and failures; the same run through the API's status."""

from __future__ import annotations

import asyncio
from typing import Any

from typer.testing import CliRunner

from openbss.cli import app as cli
from tests.billing.helpers import billing_account, in_tenant, recurring, sell


async def invoke(*args: str) -> Any:
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    return result.exit_code, " ".join(result.output.split())


async def test_billing_run_shows_progress_counts_and_totals(client: Any, rt: Any, tenant: str,
                                                            admin_headers: dict[str, str]) -> None:
    for _ in range(3):
        account = await billing_account(client, admin_headers)
        await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("10.00")])
    code, out = await invoke("billing", "run", "--tenant", tenant, "--as-of", "2027-03-01", "--finalize",
                             "--partition-size", "2")
    assert code == 0, out
    assert "3/3 accounts" in out, out
    assert "accounts ┃ billed ┃ finalized ┃ skipped ┃ failed" in out and "3 │ 3 │ 3 │ 0 │ 0" in out, out
    assert "total EUR: 36.00" in out, out  # 3 × 10.00 + 20 % VAT
    [[issued]] = await in_tenant(rt, tenant, "SELECT count(*) FROM billing_customer_bill WHERE state = 'validated'")
    assert issued == 3
    [[run_id]] = await in_tenant(rt, tenant, "SELECT id FROM billing_run")
    status = (await client.get(f"/billing/v1/billRun/{run_id}", headers=admin_headers)).json()
    assert (status["state"], status["accounts"], status["accountsDone"], status["billed"], status["finalized"],
            status["failed"]) == ("done", 3, 3, 3, 3, [])
    # again: nothing more to bill, all skipped
    code, out = await invoke("billing", "run", "--tenant", tenant, "--as-of", "2027-03-01")
    assert code == 0 and "3 │ 0 │ 0 │ 3 │ 0" in out, out
    code, out = await invoke("billing", "run", "--tenant", tenant, "--as-of", "March")
    assert code == 2 and "--as-of is a date" in out

"""The CLI: ``openbss collections run`` (one round of the scheduler) and ``openbss collections report``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from openbss.cli import app as cli
from tests.collections.helpers import accounts, executions, overdue, policy, reminder
from tests.conftest import bearer, make_tenant


async def invoke(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_run_and_report(rt: Any, client: Any, tmp_path: Path) -> None:
    tenant = await make_tenant(rt, "dcli")
    await policy(client, bearer(tenant, "billing_ops"), [reminder(0, name="First"), reminder(30, name="Second")])
    for a in await accounts(client, tenant, 2):
        await overdue(rt, tenant, a["id"], "15", days=3)
    out = await invoke("collections", "run")
    assert out.exit_code == 0, out.output
    assert [e.state for e in await executions(rt, tenant)] == ["done", "done"]
    out = await invoke("collections", "report", "inCollection", "--tenant", tenant)
    assert out.exit_code == 0 and "Second" in out.output, out.output
    f = tmp_path / "in.csv"
    out = await invoke("collections", "report", "inCollection", "--tenant", tenant, "--out", str(f))
    assert out.exit_code == 0, out.output
    assert f.read_text().splitlines()[1].startswith("1,Second,residential,EUR,2,30")
    out = await invoke("collections", "report", "nope", "--tenant", tenant)
    assert out.exit_code == 2 and "inCollection" in out.output
    out = await invoke("collections", "report", "cureRate", "--tenant", tenant, "--start", "yesterday")
    assert out.exit_code == 2 and "--start" in out.output


async def test_the_finance_report_command_shares_the_report_output(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], tmp_path: Path) -> None:
    """``openbss finance report``: a table, a CSV file, a refused name or date (exit 2) — as the collections one."""
    from tests.payments.helpers import cash, issued_bill, method, pay

    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, cash(account))
    assert (await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])).status_code == 201
    out = await invoke("finance", "report", "trialBalance", "--tenant", tenant, "--as-of", "2027-03-01")
    assert out.exit_code == 0 and "trialBalance as of 2027-03-01" in out.output and "1200" in out.output, out.output
    f = tmp_path / "tb.csv"
    out = await invoke("finance", "report", "trialBalance", "--tenant", tenant, "--out", str(f))
    assert out.exit_code == 0 and "rows written to" in out.output, out.output
    assert f.read_text().splitlines()[0].startswith("account,")
    out = await invoke("finance", "report", "nope", "--tenant", tenant)
    assert out.exit_code == 2 and "trialBalance" in out.output
    out = await invoke("finance", "report", "revenue", "--tenant", tenant, "--start", "soon")
    assert out.exit_code == 2 and "--as-of and --start" in out.output

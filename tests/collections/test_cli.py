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

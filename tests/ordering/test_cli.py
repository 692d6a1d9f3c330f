"""The CLI: SIM stock loading, operator retry and cancel of orders."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from openbss.cli import app as cli
from tests.ordering.helpers import NET, PO, customer, get, mobile_order, run, setup_world, sim_csv


async def invoke(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_load_sims_retry_and_cancel(rt: Any, client: Any, tmp_path: Path) -> None:
    w = await setup_world(rt, client, numbers=20, sims=0)
    h, tenant = w["h"], w["tenant"]
    f = tmp_path / "sims.csv"
    f.write_text(sim_csv(3, start=500))
    out = await invoke("inventory", "load-sims", str(f), "--tenant", tenant)
    assert out.exit_code == 0, out.output
    assert "3 added" in out.output
    assert (await get(client, h, "/api/inventory/v1/poolCount"))["sim"] == {"available": 3}

    c = await customer(client, h)
    await client.put(f"{NET}/simulator/pcrf", json={"rejectSubscriber": ["33612000001"]}, headers=h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, tenant)
    assert (await get(client, h, f"{PO}/{order['id']}"))["state"] == "failed"
    await client.put(f"{NET}/simulator/pcrf", json={}, headers=h)
    out = await invoke("order", "retry", order["id"], "--tenant", tenant)
    assert out.exit_code == 0 and "inProgress" in out.output, out.output
    await run(rt, tenant)
    assert (await get(client, h, f"{PO}/{order['id']}"))["state"] == "completed"
    out = await invoke("order", "retry", order["id"], "--tenant", tenant)
    assert out.exit_code == 1 and "can be retried" in out.output

    other = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    out = await invoke("order", "cancel", other["id"], "--tenant", tenant, "--reason", "duplicate")
    assert out.exit_code == 0 and "done" in out.output, out.output
    assert (await get(client, h, f"{PO}/{other['id']}"))["state"] == "cancelled"

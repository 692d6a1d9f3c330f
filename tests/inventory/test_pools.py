"""Resource pools: golden numbers held back, SIM files, CIDR pools, quarantine, and allocation that stays unique
under concurrency (100 concurrent orders never share an MSISDN, SIM or IP)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from openbss.inventory import pools
from openbss.inventory.errors import PoolExhausted
from openbss.inventory.models import PoolItem
from tests.conftest import bearer
from tests.ordering.helpers import (
    PO,
    PRODUCT,
    RESOURCE,
    customer,
    fiber_item,
    get,
    mobile_order,
    orchestrator,
    run,
    setup_world,
    sim_csv,
)


def test_golden_numbers() -> None:
    for n in ("33612347777", "33612341234", "33612349876", "33612344545", "33612345000"):
        assert pools.is_golden(n), n
    for n in ("33612345671", "33612340417", "33612341243"):
        assert not pools.is_golden(n), n


async def test_pools_load_and_refuse_bad_input(client: Any, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    r = await client.post("/api/inventory/v1/numberRange", json={"from": "33700000000", "to": "33700000099"},
                          headers=h)
    assert r.status_code == 201 and r.json()["added"] == 100 and r.json()["golden"] > 0
    again = await client.post("/api/inventory/v1/numberRange", json={"from": "33700000000", "to": "33700000009"},
                              headers=h)
    assert again.json()["added"] == 0  # loading twice adds nothing
    r = await client.post("/api/inventory/v1/simBatch", json={"csv": sim_csv(5)}, headers=h)
    assert r.json() == {"read": 5, "added": 5}
    bad = "iccid,imsi,ki_ref\n8933010000000000001,208011234567890,ref\n12,2080,x\n"
    r = await client.post("/api/inventory/v1/simBatch", json={"csv": bad}, headers=h)
    assert r.status_code == 400 and "line 3" in r.json()["message"]
    r = await client.post("/api/inventory/v1/simBatch", json={"csv": "iccid,imsi\n1,2\n"}, headers=h)
    assert r.status_code == 400 and "ki_ref" in r.json()["message"]
    r = await client.post("/api/inventory/v1/ipv4Pool", json={"cidr": "10.1.0.0/29"}, headers=h)
    assert r.json()["added"] == 5  # 6 hosts, the first is the gateway
    r = await client.post("/api/inventory/v1/ipv4Pool", json={"cidr": "10.1.0.1/29"}, headers=h)
    assert r.status_code == 400
    r = await client.post("/api/inventory/v1/numberRange", json={"from": "33700000099", "to": "33700000000"},
                          headers=h)
    assert r.status_code == 400
    counts = await get(client, h, "/api/inventory/v1/poolCount")
    assert counts["msisdn"]["available"] + counts["msisdn"]["held"] == 100
    assert await get(client, bearer(tenant, "csr_agent"), RESOURCE) == []
    r = await client.post("/api/inventory/v1/ont", json={"serialNumber": ["ab"]}, headers=h)
    assert r.status_code == 400


async def test_concurrent_allocations_are_unique_golden_held_quarantine(rt: Any, tenant: str) -> None:
    async with rt.db.transaction(tenant) as s:
        await pools.add_number_range(s, "33610000000", "33610000199")
        golden = await s.scalar(text("SELECT count(*) FROM inventory_pool_item WHERE golden"))

    async def take(i: int) -> str | None:
        try:
            async with rt.db.transaction(tenant) as s:
                return (await pools.allocate(s, "msisdn", f"k{i}", f"o{i}")).value
        except PoolExhausted:
            return None

    got = await asyncio.gather(*(take(i) for i in range(220)))
    values = [g for g in got if g]
    assert len(values) == 200 - golden and len(set(values)) == len(values)
    assert not any(pools.is_golden(v) for v in values)
    # the same key returns the same number (a key that found the pool exhausted has none: any that won one)
    won = next(i for i, g in enumerate(got) if g)
    async with rt.db.transaction(tenant) as s:
        assert (await pools.allocate(s, "msisdn", f"k{won}", f"o{won}")).value == got[won]
        # a golden number only on request
        assert (await pools.allocate(s, "msisdn", "gold", "vip", value="33610000123")).value == "33610000123"
        # a terminated number is quarantined, then free again after the period
        assert await pools.release(s, f"k{won}", quarantine=timedelta(days=90))
        with pytest.raises(PoolExhausted):
            async with s.begin_nested():
                await pools.allocate(s, "msisdn", "again", "o")
        await s.execute(update(PoolItem).where(PoolItem.value == got[won])
                        .values(quarantine_until=text("now() - interval '1 second'")))
        assert (await pools.allocate(s, "msisdn", "again", "o")).value == got[won]


async def test_100_concurrent_orders_never_share_a_resource(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=150, sims=120)
    h, offers = w["h"], w["offers"]
    r = await client.post("/api/inventory/v1/ont", json={"serialNumber": [f"ZTEG{i:08d}" for i in range(100)]},
                          headers=h)
    assert r.status_code == 201
    c = await customer(client, h)

    async def order(i: int) -> str:
        body = mobile_order(c, offers["Mobile M"])
        body["productOrderItem"].append(fiber_item(offers["Fiber 1 Gbps"]))
        r = await client.post(PO, json=body, headers=h)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    ids = await asyncio.gather(*(order(i) for i in range(100)))
    # two workers orchestrate at once (each mobile line also opens its charging account: a budget for a shared CI
    # machine, not a performance target)
    await asyncio.gather(orchestrator(rt).run_until_idle(w["tenant"], max_seconds=240),
                         orchestrator(rt).run_until_idle(w["tenant"], max_seconds=240))
    await run(rt, w["tenant"])  # the orders follow their items
    orders = await get(client, h, PO, limit=1000, fields="state")
    assert len(orders) == 100 and {o["state"] for o in orders} == {"completed"}, {o["state"] for o in orders}
    assert len(set(ids)) == 100
    resources = await get(client, h, RESOURCE, limit=1000)
    values: dict[str, list[str]] = {}
    for res in resources:
        values.setdefault(res["category"], []).append(res["resourceCharacteristic"][0]["value"])
    for kind in ("msisdn", "sim", "ipv4", "ont"):
        assert len(values[kind]) == 100 and len(set(values[kind])) == 100, kind
    assert len(await get(client, h, PRODUCT, limit=1000, fields="status")) == 200

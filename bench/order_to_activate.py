"""Benchmark: orders taken from cart to active product per second, and the p95 time to activate.

Each order: POST shoppingCart (live pricing) → POST shoppingCart/{id}/checkout (validation against catalog,
customer and account; decomposition into service order and steps) → orchestration (MSISDN + SIM allocation,
HSS, PCRF, OCS on the simulators at zero latency) → active product in the inventory → the product order completed
(ordering reacts to provisioning's item events, delivered by the outbox relay). Orders are placed through the HTTP
API in process (httpx ASGI transport) by ``--concurrency`` clients while ``--workers`` orchestrator loops and one
outbox relay (embedded mode: in-process consumers) run; time to activate = order ``completionDate`` − ``orderDate``.

    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/ord_bench \
        .venv/bin/python bench/order_to_activate.py --orders 500 --concurrency 32 --workers 2

``--relay process`` (default) runs the outbox relay and its consumers in a second process, as ``openbss worker``
does next to ``openbss serve``; ``--relay inline`` runs it in the benchmark's process (the embedded mode of
``openbss demo``: API, orchestrators and relay on one event loop). ``--no-hubs`` leaves the notification hubs'
fan-out out of the relay (the domains' reactions only): the fan-out of every event to the tenant's hub
subscriptions is the same work with or without reactions, and measuring it apart shows what each costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import httpx

os.environ.setdefault("OPENBSS_DEMO_MODE", "true")  # development keys unless the caller configured secrets


async def relay_only(hubs: bool) -> None:
    """The worker's outbox relay and event consumers, alone, until SIGTERM."""
    from openbss.platform.events.relay import OutboxRelay
    from openbss.platform.runtime import Runtime
    from openbss.platform.worker import install_stop_signals
    from openbss.services import build_services, wire_worker
    from openbss.settings import get_settings

    settings = get_settings()
    rt = Runtime.build(settings)
    wire_worker(build_services(settings, rt), rt)
    if not hubs:
        rt.consumers.unregister("hub-fanout")
    stop = asyncio.Event()
    install_stop_signals(stop)
    bus = rt.make_bus()
    print("relay ready", flush=True)
    await asyncio.gather(bus.run_consumers(stop), OutboxRelay(
        rt.db, bus, batch_size=settings.relay_batch_size, poll_seconds=settings.relay_poll_seconds).run(stop))
    await rt.close()


async def main(orders: int, concurrency: int, workers: int, fiber: bool, relay: str, hubs: bool) -> None:
    from sqlalchemy import text

    from openbss.app import create_app
    from openbss.cli import upgrade_database
    from openbss.demo.catalog import seed_catalog
    from openbss.inventory import pools
    from openbss.platform.auth import issue_token
    from openbss.platform.events.relay import OutboxRelay
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import create_tenant
    from openbss.services import build_services, wire_worker
    from openbss.settings import get_settings

    upgrade_database()
    settings = get_settings().model_copy(update={"db_pool_size": 30, "db_max_overflow": 20})
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    wire_worker(services, rt)  # the event consumers (the worker's loops are the ones started below)
    if not hubs:
        rt.consumers.unregister("hub-fanout")
    tenant = f"bench-{int(time.time())}"
    async with rt.db.transaction(None) as s:
        await create_tenant(s, tenant, tenant)
    await seed_catalog(services, rt.db, tenant, "http://bench")
    async with rt.db.transaction(tenant) as s:
        await pools.add_number_range(s, "33690000000", str(33690000000 + orders * 2))
        sims = "\n".join(["iccid,imsi,ki_ref"] + [f"8933019000{i:010d},20819{i:010d},hsm://b/{i}"
                                                  for i in range(orders + 10)])
        await pools.load_sims(s, sims + "\n")
        await pools.add_onts(s, [f"BNCH{i:08d}" for i in range(orders + 10)])
    app = create_app(settings, services=services, runtime=rt)
    h = {"Authorization": f"Bearer {issue_token(tenant, ['admin'])}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 timeout=120) as c:
        offers = {o["name"]: o for o in (await c.get("/tmf-api/productCatalogManagement/v4/productOffering",
                                                     params={"limit": 100}, headers=h)).json()}
        party = (await c.post("/tmf-api/party/v4/individual", json={"givenName": "Bench", "familyName": "Mark"},
                              headers=h)).json()
        cust = (await c.post("/tmf-api/customerManagement/v4/customer", json={
            "name": "Bench Mark", "engagedParty": {"id": party["id"], "@referredType": "Individual"}},
            headers=h)).json()
        rp = [{"id": cust["id"], "@referredType": "Customer", "role": "customer", "name": "Bench Mark"}]
        account = (await c.post("/tmf-api/accountManagement/v4/billingAccount", json={
            "name": "Bench", "state": "active", "relatedParty": rp}, headers=h)).json()
        items = [{"id": "1", "action": "add", "productOffering": {"id": offers["Mobile M"]["id"]}}]
        if fiber:
            items.append({"id": "2", "action": "add", "productOffering": {"id": offers["Fiber 1 Gbps"]["id"]}})

        stop = asyncio.Event()
        loops = [asyncio.create_task(services.provisioning.orchestrator(settings).run(stop, poll=0.01))
                 for _ in range(workers)]
        if relay == "inline":
            loops.append(asyncio.create_task(OutboxRelay(
                rt.db, rt.make_bus(), batch_size=settings.relay_batch_size,
                poll_seconds=settings.relay_poll_seconds).run(stop)))
        else:
            worker = subprocess.Popen([sys.executable, __file__, "--relay-only", *([] if hubs else ["--no-hubs"])],
                                      stdout=subprocess.PIPE, text=True)
            assert worker.stdout is not None and worker.stdout.readline().strip() == "relay ready"
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(orders):
            queue.put_nowait(i)
        ids: list[str] = []

        async def client_loop() -> None:
            while not queue.empty():
                queue.get_nowait()
                cart = (await c.post("/tmf-api/shoppingCart/v4/shoppingCart",
                                     json={"relatedParty": rp, "cartItem": items}, headers=h)).json()
                r = await c.post(f"/tmf-api/shoppingCart/v4/shoppingCart/{cart['id']}/checkout",
                                 json={"billingAccount": {"id": account["id"]}, "channel": [{"id": "web"}]},
                                 headers=h)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        taken = time.perf_counter() - started
        orch = services.provisioning.orchestrator(settings)

        async def open_orders() -> int:
            async with rt.db.transaction(tenant) as s:
                return int(await s.scalar(text(
                    "SELECT count(*) FROM ordering_product_order WHERE body->>'state' NOT IN "
                    "('completed', 'failed', 'partial', 'cancelled')")) or 0)

        while await orch.busy(tenant) or await open_orders():
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*loops)
        if relay != "inline":
            worker.terminate()
            worker.wait(10)
        docs: list[dict[str, Any]] = []
        for offset in range(0, orders, 1000):
            docs += (await c.get("/tmf-api/productOrderingManagement/v4/productOrder", headers=h,
                                 params={"limit": 1000, "offset": offset,
                                         "fields": "state,orderDate,completionDate"})).json()
    states = {d["state"] for d in docs}
    lat = sorted((datetime.fromisoformat(d["completionDate"]) - datetime.fromisoformat(d["orderDate"]))
                 .total_seconds() for d in docs if d.get("completionDate"))
    p95 = lat[int(len(lat) * 0.95) - 1] if lat else float("nan")
    print(f"orders={orders} items/order={len(items)} concurrency={concurrency} workers={workers} relay={relay} "
          f"hubs={hubs} states={states}")
    print(f"taken (cart+checkout): {orders / taken:.1f} orders/s; cart to active: {orders / elapsed:.1f} orders/s "
          f"({elapsed:.1f} s)")
    print(f"time to activate: p50={statistics.median(lat) * 1000:.0f} ms p95={p95 * 1000:.0f} ms "
          f"max={lat[-1] * 1000:.0f} ms")
    await rt.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fiber", action="store_true", help="a mobile and a fiber line per order")
    ap.add_argument("--relay", choices=("process", "inline"), default="process",
                    help="the outbox relay in a worker process of its own, or in the benchmark's process")
    ap.add_argument("--no-hubs", dest="hubs", action="store_false",
                    help="leave the notification hubs' fan-out out of the relay (the domains' reactions only)")
    ap.add_argument("--relay-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    asyncio.run(relay_only(a.hubs) if a.relay_only else
                main(a.orders, a.concurrency, a.workers, a.fiber, a.relay, a.hubs))

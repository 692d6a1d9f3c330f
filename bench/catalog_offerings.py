"""Product catalog benchmark: 10,000 product offerings in one tenant, list/filter p95 over real HTTP.

    # 1. generate (through the catalog service, so every offering is validated like a POST; ~1-2 min on 2 cores)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench \\
        .venv/bin/python bench/catalog_offerings.py generate --count 10000
    # 2. measure: starts `openbss serve` on the database and runs each query of the mix sequentially
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench \\
        .venv/bin/python bench/catalog_offerings.py run --requests 300

The database must be migrated (``openbss db upgrade``). Offerings are spread over 5 categories, 3 customer
segments, 4 sales channels and the lifecycle statuses (70% Active, 20% Retired, 10% In design), each with two
prices (recurring + usage with an allowance) from a pool of 50 Active prices and a product specification.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

from support import api_server, free_port, percentile

TENANT = "bench-catalog"
QUERIES = {
    "list (page of 20)": "/productOffering?limit=20",
    "list (page of 100)": "/productOffering?limit=100",
    "lifecycleStatus=Active": "/productOffering?lifecycleStatus=Active&limit=20",
    "marketSegment+channel": "/productOffering?marketSegment.id=enterprise&channel.id=b2bSales&limit=20",
    "category.id": "/productOffering?category.id={category}&lifecycleStatus=Active&limit=20",
    "name (exact)": "/productOffering?name={name}",
    "sort=name, fields": "/productOffering?sort=name&fields=name,lifecycleStatus&limit=20",
    "deep page offset=5000": "/productOffering?offset=5000&limit=20",
}




async def generate(count: int, seed: int) -> None:
    from sqlalchemy import func, select

    from openbss.catalog.models import ProductOffering
    from openbss.platform.auth import Principal, permissions_for
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import ensure_tenant
    from openbss.platform.tmf.resource import Context
    from openbss.services import build_services
    from openbss.settings import get_settings

    rng = random.Random(seed)
    rt = Runtime.build(get_settings())
    REGISTRY = build_services(rt.settings, rt).catalog.catalog
    db = rt.db
    async with db.transaction(None) as session:
        await ensure_tenant(session, TENANT, "Catalog benchmark")
    principal = Principal("bench", TENANT, ("admin",), permissions=permissions_for(("admin",)))
    base = get_settings().public_url.rstrip("/")
    async with db.transaction(TENANT) as session:
        existing = int(await session.scalar(select(func.count()).select_from(ProductOffering)) or 0)
        ctx = Context(principal=principal, session=session, base_url=base)
        cats = [await REGISTRY["category"].create(ctx, {"name": f"Category {i}", "lifecycleStatus": "Active"})
                for i in range(5)] if existing == 0 else []
        spec = await REGISTRY["productSpecification"].create(ctx, {"name": "Bench spec", "lifecycleStatus": "Active"})
        prices = []
        for i in range(50):
            prices.append(await REGISTRY["productOfferingPrice"].create(ctx, REGISTRY[
                "productOfferingPrice"].validate_create({
                    "name": f"Fee {i}", "priceType": "recurring", "lifecycleStatus": "Active",
                    "price": {"unit": "EUR", "value": 5 + i}})))
            prices.append(await REGISTRY["productOfferingPrice"].create(ctx, REGISTRY[
                "productOfferingPrice"].validate_create({
                    "name": f"Data {i}", "priceType": "usage", "lifecycleStatus": "Active", "usageType": "data",
                    "price": {"unit": "EUR", "value": 0.01}, "unitOfMeasure": {"amount": 1, "units": "MB"},
                    "allowance": [{"quantity": {"amount": 1 + i, "units": "GB"}, "period": "month"}]})))
    if existing >= count:
        print(f"tenant {TENANT} already has {existing} offerings")
        await db.dispose()
        return
    segments = [[{"id": "consumer"}], [{"id": "enterprise"}, {"id": "smb"}], []]
    channels = [[{"id": "web"}, {"id": "retail"}], [{"id": "b2bSales"}], [{"id": "callCenter"}], []]
    started = time.perf_counter()
    batch = 500
    done = existing
    while done < count:
        async with db.transaction(TENANT) as session:
            ctx = Context(principal=principal, session=session, base_url=base)
            svc = REGISTRY["productOffering"]
            for _ in range(min(batch, count - done)):
                r = rng.random()
                status = "Active" if r < 0.7 else ("Retired" if r < 0.9 else "In design")
                fee, usage = rng.randrange(50), rng.randrange(50)
                cat = rng.choice(cats) if cats else None
                doc = {
                    "name": f"Offer {done:05d}", "description": f"Benchmark offering number {done}",
                    "lifecycleStatus": status, "isBundle": False, "isSellable": True,
                    "productSpecification": {"id": spec["id"], "name": spec["name"]},
                    "productOfferingPrice": [{"id": prices[2 * fee]["id"], "name": prices[2 * fee]["name"]},
                                             {"id": prices[2 * usage + 1]["id"],
                                              "name": prices[2 * usage + 1]["name"]}],
                    "marketSegment": rng.choice(segments), "channel": rng.choice(channels),
                    "productOfferingTerm": [{"name": "Commitment",
                                             "duration": {"amount": rng.choice((1, 12, 24)), "units": "month"}}],
                }
                if cat:
                    doc["category"] = [{"id": cat["id"], "name": cat["name"]}]
                await svc.create(ctx, svc.validate_create(doc), any_status=True)
                done += 1
        print(f"\r{done}/{count} offerings ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()
    await db.dispose()


async def _measure(base: str, token: str, requests: int, params: dict[str, str]) -> dict[str, list[float]]:
    import httpx

    out: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for label, path in QUERIES.items():
            url = "/tmf-api/productCatalogManagement/v4" + path.format(**params)
            for _ in range(10):  # warm-up
                r = await client.get(url)
                assert r.status_code == 200, r.text
            lat = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = await client.get(url)
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            out[f"{label} [{r.headers['X-Total-Count']} match]"] = lat
    return out




def run(requests: int, port: int | None) -> None:
    import httpx

    from openbss.platform.auth import issue_token

    port = port or free_port()
    with api_server(port) as base:
        token = issue_token(TENANT, ["csr_agent"], subject="bench")
        h = {"Authorization": f"Bearer {token}"}
        api = f"{base}/tmf-api/productCatalogManagement/v4"
        cat = httpx.get(f"{api}/category?limit=1", headers=h).json()[0]["id"]
        name = httpx.get(f"{api}/productOffering?limit=1&offset=4321", headers=h).json()[0]["name"]
        lat = asyncio.run(_measure(base, token, requests, {"category": cat, "name": name}))
    every = [v for vs in lat.values() for v in vs]
    print(f"{'query':<48}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean':>8}")
    for kind, vs in [*lat.items(), ("all", every)]:
        print(f"{kind:<48}{len(vs):>6}{percentile(vs, 50):>9.1f}{percentile(vs, 95):>9.1f}{percentile(vs, 99):>9.1f}"
              f"{statistics.fmean(vs):>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--count", type=int, default=10_000)
    g.add_argument("--seed", type=int, default=620)
    r = sub.add_parser("run")
    r.add_argument("--requests", type=int, default=300)
    r.add_argument("--port", type=int)
    args: Any = parser.parse_args()
    if args.command == "generate":
        asyncio.run(generate(args.count, args.seed))
    else:
        run(args.requests, args.port)


if __name__ == "__main__":
    main()

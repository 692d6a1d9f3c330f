"""Billing account filters benchmark: 100,000 TMF666 billing accounts with encrypted names, TMF630 filters p95.

    # 1. generate (COPY; ~2 min on 2 cores)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_accounts \\
        .venv/bin/python bench/account_search.py generate --count 100000
    # 2. measure: starts `openbss serve` on the database and runs each query of the mix sequentially
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_accounts \\
        .venv/bin/python bench/account_search.py run --requests 300

Accounts are written the way the API writes them: the name (a holder's full name and a label, e.g. ``Amelia
Carlin Home``), the related parties' names and the contacts sealed with the tenant's data key, and the search
entries the kit computes for them (``SearchIndex.entries``: a blind-index digest of the normalized name, the plain
state, owner, dates, …). Each account belongs to a customer (two accounts per customer on average); states are
70% active, 20% defined, 10% closed. The query mix is what a billing or care agent sends: the exact name of an
account, a name with a state, the accounts of a customer, the active ones (page of 20), and a date range.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from support import api_server, free_port, percentile

TENANT = "bench-accounts"
BA = "/tmf-api/accountManagement/v4/billingAccount"
GIVEN = ("Amelia Olivia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Willow Freya Florence Emily Ella Noah "
         "Oliver George Arthur Muhammad Leo Harry Oscar Archie Henry Theodore Freddie Jack Charlie Theo Kenji Wei "
         "Mei Ana Pedro Joao Maria Jose Carlos Lucia Mateo Hugo Elena Giulia Marco Chiara Lina Leon Paul Olga Ivan "
         "Fatima Omar Amina Chidi Kwame Priya Arjun Diya").split()
SYL = ("an bar ber bo bra ca car cha co da del den dor el en er fa fer ford gar gen ha har hen hol in ja ka kin la "
       "lan lee ler li lin lo ma man mar mer mi mon mor na nel ni no par per ra ran ri ro sa san sen ser sha son ta "
       "ten ter tho ton tor va van ver vi wa wal wen wil win ya yo za zel").split()
LABELS = ("Home", "Office", "Mobile", "Family", "Business")
QUERIES = {
    "name (exact)": {"name": "{name}"},
    "name + state": {"name": "{name}", "state": "{state}"},
    "relatedParty.id (a customer's)": {"relatedParty.id": "{customer}"},
    "state=active, page of 20": {"state": "active", "limit": "20"},
    "lastModified range, page of 20": {"lastModified.gte": "{since}", "lastModified.lt": "{until}", "limit": "20"},
}


def _copy_value(v: Any) -> str:
    if v is None:
        return "\\N"
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


async def _keys() -> tuple[str, bytes, bytes]:
    from openbss.platform.crypto import DATA, key_service
    from openbss.platform.db import Database
    from openbss.platform.tenancy import ensure_tenant
    from openbss.settings import get_settings

    db = Database.from_settings(get_settings())
    try:
        async with db.transaction(None) as s:
            await ensure_tenant(s, TENANT, "Accounts benchmark")
        async with db.transaction(TENANT) as s:
            kid, key = await key_service().active(s, TENANT, DATA)
            return kid, key, await key_service().index_key(s, TENANT)
    finally:
        await db.dispose()


def generate(count: int, seed: int, batch: int) -> None:
    import psycopg

    from openbss.cli import upgrade_database
    from openbss.platform.crypto import aad_for, seal
    from openbss.platform.db import json_dumps, libpq_conninfo, owner_url
    from openbss.platform.personal_data import transform_at
    from openbss.platform.tmf.search import indexes_of
    from openbss.platform.tmf.spec import format_datetime
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    upgrade_database()
    kid, key, index_key = asyncio.run(_keys())
    api = next(a for a in tmf_apis(get_settings()) if a.name == "accountManagement")
    resource = api.resource("billingAccount")
    codec = resource.codec
    index = next(ix for ix in indexes_of([api]) if ix.resource_type == "BillingAccount")
    rng = random.Random(seed)
    start_time = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(libpq_conninfo(owner_url()), autocommit=True) as conn:
        existing = conn.execute("SELECT count(*) FROM billing_account WHERE tenant_id = %s", (TENANT,)).fetchone()
        n = int(existing[0]) if existing else 0
        if n >= count:
            print(f"{n} accounts already there")
            return
        t0 = time.perf_counter()
        customer: tuple[str, str] | None = None
        while n < count:
            accounts, entries = [], []
            for _ in range(min(batch, count - n)):
                if customer is None or rng.random() < 0.5:
                    holder = f"{rng.choice(GIVEN)} {''.join(rng.choice(SYL) for _ in range(2)).capitalize()}"
                    customer = (str(uuid.uuid4()), holder)
                cid, holder = customer
                aid = str(uuid.uuid4())
                r = rng.random()
                state = "active" if r < 0.7 else ("defined" if r < 0.9 else "closed")
                modified = format_datetime(start_time + timedelta(minutes=5 * n + rng.randrange(5)))
                doc = {"id": aid, "@type": "BillingAccount", "name": f"{holder} {rng.choice(LABELS)}",
                       "state": state, "accountType": "postpaid", "currency": "EUR", "paymentTermsDays": 30,
                       "lastModified": modified,
                       "billCycle": {"billingDay": 1 + n % 28, "frequency": "monthly", "timeZone": "Europe/Paris"},
                       "relatedParty": [{"id": cid, "@referredType": "Customer", "name": holder,
                                         "role": "customer"}],
                       "contact": [{"contactType": "primary", "contactName": holder, "contactMedium": [
                           {"mediumType": "email", "characteristic": {
                               "emailAddress": f"{holder.replace(' ', '.').lower()}.{n}@example.net"}}]}]}
                sealed = json.loads(json.dumps(doc))
                aad = aad_for(TENANT, "BillingAccount", aid)
                for path in codec.personal:
                    transform_at(sealed, path.split("."), lambda v, aad=aad: seal(kid, key, v, aad))
                accounts.append("\t".join(_copy_value(v) for v in (aid, TENANT, json_dumps(sealed), modified,
                                                                   modified, 1)))
                for e in index.entries(aid, doc, index_key):
                    entries.append("\t".join(_copy_value(v) for v in (
                        TENANT, e["resource_type"], e["attribute"], e["value"], e["resource_id"],
                        "t" if e["is_unique"] else "f")))
                n += 1
            with conn.cursor() as cur:
                with cur.copy("COPY billing_account (id, tenant_id, body, created_at, last_update, revision) "
                              "FROM STDIN") as copy:
                    copy.write("\n".join(accounts) + "\n")
                with cur.copy("COPY search_entry (tenant_id, resource_type, attribute, value, resource_id, "
                              "is_unique) FROM STDIN") as copy:
                    copy.write(io.StringIO("\n".join(entries) + "\n").getvalue())
            print(f"\r{n:>9,} accounts  {(n) / (time.perf_counter() - t0):,.0f}/s", end="", flush=True)
        print()
        conn.execute("VACUUM ANALYZE billing_account")
        conn.execute("VACUUM ANALYZE search_entry")
        print(f"done in {time.perf_counter() - t0:.0f}s")


async def _measure(base: str, token: str, requests: int, samples: dict[str, list[str]],
                   seed: int) -> dict[str, list[float]]:
    import httpx

    rng = random.Random(seed)
    out: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for label, template in QUERIES.items():
            lat: list[float] = []
            matches: list[int] = []
            for i in range(requests + 10):
                k = rng.randrange(len(samples["name"]))
                values = {"name": samples["name"][k], "state": samples["state"][k],
                          "customer": samples["customer"][k], "since": samples["since"][k],
                          "until": samples["until"][k]}
                params = {p: v.format(**values) for p, v in template.items()}
                t0 = time.perf_counter()
                r = await client.get(BA, params=params)
                elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, r.text
                if i >= 10:  # the first ten warm up
                    lat.append(elapsed)
                    matches.append(int(r.headers["X-Total-Count"]))
                    if label.startswith("name"):
                        assert matches[-1] >= 1 and all(a["name"] == values["name"] for a in r.json())
            out[f"{label} [{statistics.mean(matches):.0f} match]"] = lat
    return out


def run(requests: int, port: int | None, seed: int) -> None:
    import httpx

    from openbss.platform.auth import issue_token

    port = port or free_port()
    rng = random.Random(seed)
    with api_server(port) as base:
        token = issue_token(TENANT, ["csr_agent"], subject="bench")
        h = {"Authorization": f"Bearer {token}"}
        total = int(httpx.get(f"{base}{BA}?limit=1", headers=h).headers["X-Total-Count"])
        samples: dict[str, list[str]] = {"name": [], "state": [], "customer": [], "since": [], "until": []}
        for _ in range(50):  # accounts picked at random: their exact name, state, owner and modification time
            acc = httpx.get(f"{base}{BA}?limit=1&offset={rng.randrange(total)}", headers=h).json()[0]
            samples["name"].append(acc["name"])
            samples["state"].append(acc["state"])
            samples["customer"].append(acc["relatedParty"][0]["id"])
            since = datetime.fromisoformat(acc["lastModified"].replace("Z", "+00:00"))
            samples["since"].append(since.isoformat())
            samples["until"].append((since + timedelta(hours=6)).isoformat())
        lat = asyncio.run(_measure(base, token, requests, samples, seed))
    every = [v for vs in lat.values() for v in vs]
    print(f"{total:,} billing accounts")
    print(f"{'query':<48}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean':>8}")
    for kind, vs in [*lat.items(), ("all", every)]:
        print(f"{kind:<48}{len(vs):>6}{percentile(vs, 50):>9.1f}{percentile(vs, 95):>9.1f}{percentile(vs, 99):>9.1f}"
              f"{statistics.fmean(vs):>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--count", type=int, default=100_000)
    g.add_argument("--seed", type=int, default=666)
    g.add_argument("--batch", type=int, default=5000)
    r = sub.add_parser("run")
    r.add_argument("--requests", type=int, default=300)
    r.add_argument("--port", type=int)
    r.add_argument("--seed", type=int, default=7)
    args: Any = parser.parse_args()
    if args.command == "generate":
        generate(args.count, args.seed, args.batch)
    else:
        run(args.requests, args.port, args.seed)


if __name__ == "__main__":
    main()

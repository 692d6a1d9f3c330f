"""Customer search benchmark: generate N customers (encrypted PII, blind index) and measure the search endpoint.

    # 1. generate (a dedicated database; ~15 min for 1,000,000 customers on 2 cores)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench \\
        .venv/bin/python bench/customer_search.py generate --count 1000000
    # 2. measure: starts `openbss serve` on the database and runs the query mix
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench \\
        .venv/bin/python bench/customer_search.py run --requests 3000 --concurrency 4

Data is written the way the API writes it (same codecs: AES-GCM sealed personal attributes; the search entries
the kit computes, with HMAC blind-index digests of personal values and name prefixes), but with COPY instead of
one POST per customer. Each customer is an individual
party, a TMF629 customer and a TMF666 billing account. The query mix is what an agent types: a family-name prefix
with a given-name prefix, an e-mail, a phone number (MSISDN), a national id, an account id.
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
from pathlib import Path
from typing import Any

from support import api_server, percentile

SAMPLES = Path(__file__).parent / ".data" / "customer_search_samples.json"
TENANT = "bench"

GIVEN = """Amelia Olivia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Willow Freya Florence Emily Ella Poppy Evie
Elsie Charlotte Evelyn Sienna Sofia Daisy Phoebe Sophie Alice Harper Matilda Ruby Emilia Maya Millie Isabelle Lucy
Jessica Layla Esme Eva Chloe Mila Maria Hannah Nora Zara Aisha Leah Amara Noah Oliver George Arthur Muhammad Leo
Harry Oscar Archie Henry Theodore Freddie Jack Charlie Theo Alfie Jacob Thomas Finley Arlo William Lucas Roman Tommy
Isaac Teddy Alexander Luca Edward James Joshua Albie Elijah Max Mohammed Reuben Mason Sebastian Rory Jude Louie Benjamin
Ethan Adam Hugo Joseph Reggie Ronnie Louis Frankie Lucas Kenji Hiroshi Yuki Sakura Wei Mei Li Chen Ana Pedro Joao
Maria Jose Carlos Sofia Lucia Mateo Hugo Pablo Alvaro Elena Paula Carmen Giulia Francesco Alessandro Chiara Marco
Matteo Lorenzo Aurora Ginevra Emma Louise Jade Gabriel Raphael Arthur Jules Lina Rose Anna Leon Paul Ben Finn Mia
Hanna Lea Lena Emil Anton Olga Ivan Dmitri Katarina Nikolai Fatima Omar Yusuf Amina Ibrahim Zainab Chidi Ngozi Emeka
Adaeze Kwame Akosua Kofi Abena Priya Arjun Aarav Ananya Rohan Diya Saanvi Vihaan Ishaan Aditi""".split()
SYL = ("an bar ber bo bra ca car cha co da del den dor el en er fa fer ford gar gen ha har hen hol in ja ka kin la "
       "lan lee ler li lin lo ma man mar mer mi mon mor na nel ni no o par per ra ran ri ro rod ros sa san sen ser "
       "sha son ta ten ter tho ton tor va van ver vi wa wal well wen wil win ya yo za zel").split()
CITIES = [("London", "GB", "+44 7"), ("Paris", "FR", "+33 6"), ("Milano", "IT", "+39 3"), ("Madrid", "ES", "+34 6"),
          ("Berlin", "DE", "+49 15"), ("Lagos", "NG", "+234 80"), ("Tokyo", "JP", "+81 90")]
SEGMENTS = [("residential", 0.85), ("sme", 0.12), ("corporate", 0.03)]


def family_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYL) for _ in range(rng.choice((2, 2, 3)))).capitalize()


def make_customer(rng: random.Random, n: int) -> dict[str, Any]:
    given, family = rng.choice(GIVEN), family_name(rng)
    city, country, prefix = rng.choice(CITIES)
    phone = f"{prefix}{n:08d}"
    email = f"{given.lower()}.{family.lower()}.{n}@example.net"
    ident = f"{country}{n:09d}"
    segment = rng.choices([s for s, _ in SEGMENTS], [w for _, w in SEGMENTS])[0]
    return {"given": given, "family": family, "city": city, "country": country, "phone": phone, "email": email,
            "ident": ident, "segment": segment, "birth": f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}T00:00:00.000Z"}


async def _keys(tenant: str) -> tuple[str, bytes, bytes]:
    from openbss.platform.crypto import DATA, key_service
    from openbss.platform.db import Database
    from openbss.platform.tenancy import ensure_tenant
    from openbss.settings import get_settings

    db = Database.from_settings(get_settings())
    try:
        async with db.transaction(None) as s:
            await ensure_tenant(s, tenant, "Benchmark Telecom")
        async with db.transaction(tenant) as s:
            ks = key_service()
            kid, key = await ks.active(s, tenant, DATA)
            ikey = await ks.index_key(s, tenant)
        return kid, key, ikey
    finally:
        await db.dispose()


def _copy_value(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bytes):
        return "\\\\x" + v.hex()
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def generate(count: int, seed: int, batch: int) -> None:
    import psycopg

    from openbss.account.codecs import billing_account_codec
    from openbss.cli import upgrade_database
    from openbss.customer.codecs import customer_codec
    from openbss.party.codecs import individual_codec
    from openbss.platform.crypto import aad_for, seal
    from openbss.platform.db import json_dumps, libpq_conninfo, owner_url
    from openbss.platform.personal_data import transform_at
    from openbss.platform.tmf.search import indexes_of
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    upgrade_database()
    kid, key, ikey = asyncio.run(_keys(TENANT))
    conninfo = libpq_conninfo(owner_url())
    tables = ["party_individual", "customer", "billing_account", "search_entry"]
    indexes = {ix.resource_type: ix for ix in indexes_of(tmf_apis(get_settings()))}
    rng = random.Random(seed)
    samples: dict[str, list[str]] = {"name": [], "email": [], "phone": [], "identification": [], "accountId": []}

    with psycopg.connect(conninfo, autocommit=True) as conn:
        existing = conn.execute("SELECT count(*) FROM customer WHERE tenant_id = %s", (TENANT,)).fetchone()
        start = int(existing[0]) if existing else 0
        if start >= count:
            print(f"{start} customers already there")
            return
        indexdefs = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE 'pk_%%'",
            (tables,)).fetchall()
        print(f"dropping {len(indexdefs)} secondary indexes for the load")
        for name, _ in indexdefs:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')

        def sealed(codec: Any, rid: str, doc: dict[str, Any]) -> dict[str, Any]:
            aad = aad_for(TENANT, codec.resource_type, rid)
            out = json.loads(json.dumps(doc))
            for path in codec.personal:
                transform_at(out, path.split("."), lambda v: seal(kid, key, v, aad))
            return out

        def index_rows(codec: Any, rid: str, doc: dict[str, Any]) -> list[str]:
            return ["\t".join(_copy_value(v) for v in (
                TENANT, e["resource_type"], e["attribute"], e["value"], rid, "t" if e["is_unique"] else "f"))
                    for e in indexes[codec.resource_type].entries(rid, doc, ikey)]

        t0 = time.perf_counter()
        now = "2026-01-01T00:00:00.000Z"
        n = start
        while n < count:
            bufs: dict[str, list[str]] = {t: [] for t in tables}
            for _ in range(min(batch, count - n)):
                c = make_customer(rng, n)
                pid, cid, aid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
                full = f"{c['given']} {c['family']}"
                ind = {"id": pid, "@type": "Individual", "givenName": c["given"], "familyName": c["family"],
                       "fullName": full, "birthDate": c["birth"], "status": "validated",
                       "contactMedium": [
                           {"mediumType": "email", "preferred": True,
                            "characteristic": {"emailAddress": c["email"], "contactType": "personal"}},
                           {"mediumType": "phone", "characteristic": {"phoneNumber": c["phone"],
                                                                      "contactType": "mobile"}},
                           {"mediumType": "postalAddress", "characteristic": {
                               "street1": f"{rng.randint(1, 200)} High Street", "city": c["city"],
                               "country": c["country"]}}],
                       "individualIdentification": [{"identificationType": "nationalId",
                                                     "identificationId": c["ident"]}]}
                acc_ref = {"id": aid, "name": f"{full} billing", "@referredType": "BillingAccount"}
                cust = {"id": cid, "@type": "Customer", "name": full, "status": "active",
                        "engagedParty": {"id": pid, "@referredType": "Individual", "name": full},
                        "characteristic": [{"name": "segment", "valueType": "string", "value": c["segment"]}],
                        "account": [acc_ref]}
                acc = {"id": aid, "@type": "BillingAccount", "name": f"{full} billing", "state": "active",
                       "currency": "EUR", "paymentTermsDays": 30, "lastModified": now,
                       "billCycle": {"billingDay": 1 + n % 28, "frequency": "monthly", "timeZone": "Europe/Paris"},
                       "relatedParty": [{"id": cid, "@referredType": "Customer", "name": full, "role": "customer"},
                                        {"id": pid, "@referredType": "Individual", "name": full, "role": "owner"}]}
                for table, codec, rid, doc, extra in (
                        ("party_individual", individual_codec, pid, ind, []),
                        ("customer", customer_codec, cid, cust, [pid]),
                        ("billing_account", billing_account_codec, aid, acc, [])):
                    body = json_dumps(sealed(codec, rid, doc))
                    bufs[table].append("\t".join(_copy_value(v) for v in (
                        rid, TENANT, body, now, now, 1, *extra)))
                    bufs["search_entry"] += index_rows(codec, rid, doc)
                if rng.random() < 0.002 and len(samples["email"]) < 2000:
                    samples["name"].append(f"{c['family'][:rng.randint(4, 6)]} {c['given'][:3]}")
                    samples["email"].append(c["email"])
                    samples["phone"].append(c["phone"].replace(" ", ""))
                    samples["identification"].append(c["ident"])
                    samples["accountId"].append(aid)
                n += 1
            with conn.cursor() as cur:
                for table, lines in bufs.items():
                    cols = {"search_entry": "(tenant_id, resource_type, attribute, value, resource_id, is_unique)",
                            "customer": "(id, tenant_id, body, created_at, last_update, revision, engaged_party_id)"
                            }.get(table, "(id, tenant_id, body, created_at, last_update, revision)")
                    with cur.copy(f"COPY {table} {cols} FROM STDIN") as copy:
                        copy.write(io.StringIO("\n".join(lines) + "\n").getvalue())
            rate = (n - start) / (time.perf_counter() - t0)
            print(f"\r{n:>9,} customers  {rate:,.0f}/s", end="", flush=True)
        print()
        print("re-creating indexes…")
        for name, ddl in indexdefs:
            t1 = time.perf_counter()
            conn.execute(ddl)
            print(f"  {name}: {time.perf_counter() - t1:.0f}s")
        conn.execute("VACUUM ANALYZE")  # sets the visibility map: index-only scans without heap fetches
    SAMPLES.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(SAMPLES.read_text()) if SAMPLES.exists() else {}
    for k, v in samples.items():
        old.setdefault(k, [])
        old[k] += v
    SAMPLES.write_text(json.dumps(old))
    print(f"done in {time.perf_counter() - t0:.0f}s; samples in {SAMPLES}")


async def _measure(base: str, token: str, requests: int, concurrency: int, seed: int) -> dict[str, list[float]]:
    import httpx

    samples = json.loads(SAMPLES.read_text())
    rng = random.Random(seed)
    kinds = list(samples)
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    totals: dict[str, list[int]] = {k: [] for k in kinds}
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for _ in range(requests):
        kind = rng.choice(kinds)
        queue.put_nowait((kind, rng.choice(samples[kind])))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for kind in kinds:  # warm-up
            await client.get("/tmf-api/customerManagement/v4/customerSearch", params={kind: samples[kind][0]})

        async def worker() -> None:
            while not queue.empty():
                kind, value = queue.get_nowait()
                t = time.perf_counter()
                r = await client.get("/tmf-api/customerManagement/v4/customerSearch",
                                     params={kind: value, "limit": "20"})
                lat[kind].append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
                totals[kind].append(int(r.headers["x-total-count"]))
                if kind != "name":
                    assert r.headers["x-total-count"] == "1", (kind, value, r.headers["x-total-count"])

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    for kind in kinds:
        print(f"  {kind}: mean matches {statistics.mean(totals[kind]):.1f}")
    return lat




def run(requests: int, concurrency: int, port: int, seed: int, workers: int = 1) -> None:

    from openbss.platform.auth import issue_token

    with api_server(port, *(["--workers", str(workers)] if workers > 1 else [])) as base:
        token = issue_token(TENANT, ["csr_agent"], subject="bench")
        lat = asyncio.run(_measure(base, token, requests, concurrency, seed))
    every = [v for vs in lat.values() for v in vs]
    print(f"{'query':<16}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for kind, vs in [*lat.items(), ("all", every)]:
        print(f"{kind:<16}{len(vs):>6}{percentile(vs, 50):>9.1f}{percentile(vs, 95):>9.1f}{percentile(vs, 99):>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--count", type=int, default=1_000_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--batch", type=int, default=5000)
    r = sub.add_parser("run")
    r.add_argument("--requests", type=int, default=3000)
    r.add_argument("--concurrency", type=int, default=4)
    r.add_argument("--port", type=int, default=8765)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--workers", type=int, default=1, help="API processes (openbss serve --workers)")
    a = ap.parse_args()
    if a.cmd == "generate":
        generate(a.count, a.seed, a.batch)
    else:
        run(a.requests, a.concurrency, a.port, a.seed, a.workers)


if __name__ == "__main__":
    main()

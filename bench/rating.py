"""Batch rating benchmarks, with a generator of realistic usage.

``core``: the rating core — guided records in memory → rated amounts — on the vectorized path (Polars):
destination zone by longest prefix over a table of ``--prefixes`` prefixes, rate per zone, rating increments,
setup charges, a data allowance per subscriber consumed in event-time order, exact integer money. And the scalar
path (``rater.rate_record``, what single records and today's file pipeline use) on a sample, for comparison.

``file``: file → rated → stored in PostgreSQL, end to end through ``RatingService.ingest`` (CSV parse, validation,
guiding, dedup, rating, COPY), over ``--subscribers`` charging accounts it opens first; the columnar pipeline, or
with ``--no-columnar`` the record-by-record one.

``core --processes 2``: the core over account partitions (subscriber modulo 2) in two processes at once.

    .venv/bin/python bench/rating.py core --records 10000000 --subscribers 1000000 --prefixes 50000
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_rating \\
        .venv/bin/python bench/rating.py file --records 100000 --subscribers 1000
    OPENBSS_DATABASE_URL=... OPENBSS_NATS_URL=nats://127.0.0.1:4222 \\
        .venv/bin/python bench/rating.py queue --records 100000 --subscribers 1000 --workers 2

``queue``: the same file submitted to the JetStream work queue (``rating/queue.py``) and rated by ``--workers``
processes running the work-queue loop.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import psutil
from sqlalchemy import text

from openbss.pricing.usage import UnitRate
from openbss.rating.vectorized import PrefixIntervals, longest_prefix, rate_frame

COUNTRY_CODES = ["33", "44", "49", "34", "39", "1", "7", "86", "91", "81", "55", "52", "61", "27", "234", "20",
                 "90", "48", "31", "32", "41", "43", "46", "47", "45", "351", "353", "358", "30", "36", "40", "420"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def destination_table(count: int, zones: int, seed: int = 7) -> dict[str, str]:
    """``count`` distinct prefixes (country code + 1 to 5 digits: operators, ranges) in ``zones`` zones."""
    rnd = random.Random(seed)
    out: dict[str, str] = {cc: f"Z{i % zones:03d}" for i, cc in enumerate(COUNTRY_CODES)}
    while len(out) < count:
        cc = rnd.choice(COUNTRY_CODES)
        p = cc + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 5)))
        out.setdefault(p, f"Z{rnd.randrange(zones):03d}")
    return out


def zone_rates(zones: int, seed: int = 11) -> list[UnitRate]:
    rnd = random.Random(seed)
    return [UnitRate("EUR", Decimal(rnd.randint(1, 250)) / 100, Decimal(60), initial=rnd.choice([1, 30, 60]),
                     subsequent=rnd.choice([1, 30, 60]), setup=Decimal(rnd.choice([0, 0, 0, 5])) / 100)
            for _ in range(zones)]


def generate(records: int, subscribers: int, prefixes: dict[str, str]) -> pl.DataFrame:
    """Guided records: 55 % voice (seconds, destination by prefix), 35 % data (bytes, drawing on the subscriber's
    monthly allowance), 10 % SMS; over one month; called numbers under the table's prefixes."""
    table = list(prefixes)
    i = pl.int_range(0, records, dtype=pl.Int64, eager=True)
    h1 = (i * 2654435761 + 97) % 4294967291
    h2 = (i * 40503 + h1 * 7919) % 1000003
    kind = h1 % 100
    frame = pl.DataFrame({"i": i, "h1": h1, "h2": h2, "kind": kind}).with_columns(
        (pl.col("h1") % subscribers).alias("subscriber"),
        pl.when(pl.col("kind") < 55).then(pl.lit("voice")).when(pl.col("kind") < 90).then(pl.lit("data"))
        .otherwise(pl.lit("sms")).alias("usage_type"),
        pl.when(pl.col("kind") < 55).then(pl.col("h2") % 900 + 1)
        .when(pl.col("kind") < 90).then((pl.col("h2") % 50_000) * 1024).otherwise(1).alias("quantity"),
        (pl.lit(START) + pl.duration(seconds=pl.col("h1") % (30 * 86400))).alias("event_time"),
        pl.Series("p", table).gather(pl.Series(h2.to_list()) % len(table)).alias("prefix_drawn"),
    ).with_columns(
        (pl.col("prefix_drawn") + (pl.col("h1") % 10**8).cast(pl.String).str.zfill(8)).alias("called"),
        pl.col("i").cast(pl.String).alias("key"),
    )
    return frame.select("key", "subscriber", "usage_type", "quantity", "event_time", "called")


def rate_core(frame: pl.DataFrame, intervals: PrefixIntervals, rates: list[UnitRate], data_rate: UnitRate,
              sms_rate: UnitRate, allowance: int) -> pl.DataFrame:
    """Zone → rate index for voice, fixed rates for data and SMS, the data allowance counter, then the core."""
    n = len(rates)
    guided = frame.with_columns(intervals.lookup(frame["called"]).alias("zone")).with_columns(
        pl.when(pl.col("usage_type") == "voice").then(pl.col("zone"))
        .when(pl.col("usage_type") == "data").then(pl.lit(n, dtype=pl.Int32))
        .otherwise(pl.lit(n + 1, dtype=pl.Int32)).alias("rate"),
        pl.when(pl.col("usage_type") == "data").then(pl.col("subscriber")).alias("counter"),
        pl.when(pl.col("usage_type") == "data").then(pl.lit(allowance, dtype=pl.Int64)).alias("allowance"),
    )
    return rate_frame(guided, [*rates, data_rate, sms_rate])


def _core_partition(args: argparse.Namespace, part: int, barrier: Any, results: Any) -> None:
    """One process of ``core --processes N``: the records of the subscribers of partition ``part`` (subscriber
    modulo N: an account's records in one process, as the work queue partitions them), rated ``--repeat`` times,
    each time started with the other processes (a barrier)."""
    prefixes = destination_table(args.prefixes, args.zones)
    rates = zone_rates(args.zones)
    data_rate = UnitRate("EUR", Decimal("0.01"), Decimal(1048576), initial=1024, subsequent=1024)
    sms_rate = UnitRate("EUR", Decimal("0.08"))
    frame = generate(args.records, args.subscribers, prefixes)
    frame = frame.filter(pl.col("subscriber") % args.processes == part).rechunk()
    intervals = PrefixIntervals(prefixes, {f"Z{z:03d}": z for z in range(args.zones)})
    for _ in range(args.repeat):
        barrier.wait()
        t, c = time.perf_counter(), time.process_time()
        out = rate_core(frame, intervals, rates, data_rate, sms_rate, 2 * 1024**3)
        results.put((part, frame.height, time.perf_counter() - t, time.process_time() - c,
                     int(out["amount_minor"].sum()), int(out["allowance_units"].sum())))


def core_processes(args: argparse.Namespace) -> None:
    """The core over account partitions in ``--processes`` processes at once (each with ``--threads`` Polars
    threads): records/s = all records / the slowest process's time of the same round."""
    import multiprocessing
    import os

    os.environ["POLARS_MAX_THREADS"] = str(args.threads)  # read by polars when the spawned processes import it
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(args.processes), spawn.Queue()
    procs = [spawn.Process(target=_core_partition, args=(args, k, barrier, results)) for k in range(args.processes)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    rounds: list[list[tuple[int, int, float, float, int, int]]] = [[] for _ in range(args.repeat)]
    for i in range(args.repeat * args.processes):
        rounds[i // args.processes].append(results.get())
    for p in procs:
        p.join()
    best = min(rounds, key=lambda r: max(x[2] for x in r))
    wall = max(x[2] for x in best)
    cpu = sum(x[3] for x in best)
    print(f"vectorized core, {args.processes} processes x {args.threads} Polars thread(s), partitioned by "
          f"subscriber: {args.records / wall:,.0f} records/s ({wall:.2f} s, the slowest process of the best of "
          f"{args.repeat} rounds; {time.perf_counter() - t0:.0f} s in all with generation); "
          f"{sum(x[4] for x in best) / 100:,.2f} EUR rated, {sum(x[5] for x in best):,} allowance bytes; CPU "
          f"{cpu / args.records * 1e9:,.0f} ns per record (load average {open('/proc/loadavg').read().strip()})")


def core(args: argparse.Namespace) -> None:
    if args.processes > 1:
        core_processes(args)
        return
    prefixes = destination_table(args.prefixes, args.zones)
    rates = zone_rates(args.zones)
    data_rate = UnitRate("EUR", Decimal("0.01"), Decimal(1048576), initial=1024, subsequent=1024)
    sms_rate = UnitRate("EUR", Decimal("0.08"))
    t0 = time.perf_counter()
    frame = generate(args.records, args.subscribers, prefixes).rechunk()
    t1 = time.perf_counter()
    print(f"generated {args.records:,} records over {args.subscribers:,} subscribers, {len(prefixes):,} prefixes "
          f"in {args.zones} zones: {t1 - t0:.1f} s")
    t = time.perf_counter()
    intervals = PrefixIntervals(prefixes, {f"Z{z:03d}": z for z in range(args.zones)})
    print(f"destination table compiled to {len(intervals.starts):,} intervals: {time.perf_counter() - t:.1f} s")
    best, cpu = float("inf"), float("inf")
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        out = rate_core(frame, intervals, rates, data_rate, sms_rate, 2 * 1024**3)
        best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
    unrated = out["amount_minor"].null_count()
    print(f"vectorized core: {args.records / best:,.0f} records/s ({best:.2f} s best of {args.repeat}); "
          f"{out['amount_minor'].sum() / 100:,.2f} EUR rated, {out['allowance_units'].sum():,} allowance bytes, "
          f"{unrated} unrated; CPU {cpu / args.records * 1e9:,.0f} ns per record (all threads; load average "
          f"{open('/proc/loadavg').read().strip()})")
    if not args.scalar_sample:
        return
    # the scalar path on a sample
    from openbss.rating.layouts import UsageRecord
    from openbss.rating.rater import Line, rate_record

    sample = frame.head(args.scalar_sample)
    zone_of = dict(zip(sample["key"].to_list(), sample.select(longest_prefix(pl.col("called"), prefixes)[1])
                       .to_series().to_list(), strict=True))
    docs = [{"currency": r.currency, "price": str(r.price), "per": str(r.per), "initial": r.initial,
             "subsequent": r.subsequent, "setup": str(r.setup), "tiers": [], "priceId": "v"} for r in rates]
    data_doc = {"currency": "EUR", "price": "0.01", "per": "1048576", "initial": 1024, "subsequent": 1024,
                "tiers": [], "priceId": "d"}
    sms_doc = {"currency": "EUR", "price": "0.08", "per": "1", "tiers": [], "priceId": "s"}
    lines = {}
    consumed: dict[tuple[str, str, str], int] = {}
    records = []
    for row in sample.iter_rows(named=True):
        sub = row["subscriber"]
        if sub not in lines:
            lines[sub] = Line(account_id=str(sub), msisdn=str(sub), product_id=None, offering_id=None,
                              billing_account_id=None, party_id=None, party_type="Individual", currency="EUR",
                              time_zone="UTC", plan={"data": {"priceId": "d", "allowances": [
                                  {"quantity": {"amount": 2, "units": "GB"}}]}})
        rec = UsageRecord(key=row["key"], record_id=row["key"], origin="b", msisdn=str(sub),
                          event_time=row["event_time"], usage_type=row["usage_type"], quantity=row["quantity"])
        kind = row["usage_type"]
        doc = docs[int(zone_of[row["key"]][1:])] if kind == "voice" else data_doc if kind == "data" else sms_doc
        records.append((rec, lines[sub], doc))
    t = time.perf_counter()
    for rec, line, doc in records:
        rate_record(rec, line, doc, consumed)
    took = time.perf_counter() - t
    print(f"scalar core: {len(records) / took:,.0f} records/s ({len(records):,} records, {took:.2f} s)")


# --- end to end: file -> rated -> stored ---------------------------------------------------------------------
def csv_cdrs(records: int, numbers: list[str], seed: int = 3) -> bytes:
    rnd = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["recordId", "origin", "msisdn", "eventTime", "usageType", "quantity", "unit", "calledNumber"])
    for i in range(records):
        kind = rnd.random()
        when = (START + timedelta(seconds=rnd.randrange(30 * 86400))).isoformat()
        n = rnd.choice(numbers)
        if kind < 0.55:
            w.writerow([f"r{i}", "msc1", n, when, "voice", rnd.randint(1, 900), "", f"+3361{rnd.randrange(10**7):07d}"])
        elif kind < 0.9:
            w.writerow([f"r{i}", "pgw1", n, when, "data", rnd.randrange(50_000) * 1024, "", ""])
        else:
            w.writerow([f"r{i}", "smsc1", n, when, "sms", 1, "", f"+3362{rnd.randrange(10**7):07d}"])
    return out.getvalue().encode()


async def end_to_end(args: argparse.Namespace) -> None:
    from openbss.charging import service as charging
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import create_tenant
    from openbss.services import build_services
    from openbss.settings import get_settings

    settings = get_settings()
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    plan = {"data": {"priceId": "d", "name": "Data", "currency": "EUR", "price": "0.01", "per": "1048576",
                     "tiers": [], "allowances": [{"quantity": {"amount": 2, "units": "GB"}}]},
            "voice": {"priceId": "v", "name": "Voice", "currency": "EUR", "price": "0.60", "per": "60", "tiers": [],
                      "allowances": []},
            "sms": {"priceId": "s", "name": "SMS", "currency": "EUR", "price": "0.08", "per": "1", "tiers": [],
                    "allowances": []}}
    try:
        async with rt.db.transaction(None) as session:
            await create_tenant(session, "Rating benchmark", tenant)
        numbers = [f"+3369{i:07d}" for i in range(args.subscribers)]
        t = time.perf_counter()
        for chunk in range(0, len(numbers), 500):
            async with rt.db.transaction(tenant) as session:
                ctx = charging.system_context(session, tenant, "http://bench")
                for n in numbers[chunk:chunk + 500]:
                    await services.charging.service.open_account(ctx, subscriber=n, payment_type="postpaid",
                                                                 currency="EUR", plan=plan, party_id=f"p{n[1:]}")
        print(f"opened {len(numbers):,} charging accounts in {time.perf_counter() - t:.1f} s")
        data = csv_cdrs(args.records, numbers)
        profile = None
        if args.profile:
            import cProfile

            profile = cProfile.Profile()
        async with rt.db.transaction(tenant) as session:
            backend = psutil.Process(int(await session.scalar(text("SELECT pg_backend_pid()"))))
            pg0, py0 = backend.cpu_times(), time.process_time()
            t = time.perf_counter()
            if profile is not None:
                profile.enable()
            ctx = charging.system_context(session, tenant, "http://bench")
            services.rating.service.columnar = not args.no_columnar
            report = await services.rating.service.ingest(ctx, "bench.csv", data, source="bench")
        took = time.perf_counter() - t
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        py = time.process_time() - py0
        pg1 = backend.cpu_times() if backend.is_running() else pg0
        pg = (pg1.user + pg1.system) - (pg0.user + pg0.system)
        print(f"file -> rated -> stored: {args.records / took:,.0f} records/s ({args.records:,} records, "
              f"{len(data) / 1e6:.1f} MB, {took:.1f} s): {report['rated']:,} rated, {report['amounts']}")
        print(f"CPU per record: Python {py / args.records * 1e6:.1f} µs, PostgreSQL backend "
              f"{pg / args.records * 1e6:.1f} µs (user+sys; load average {open('/proc/loadavg').read().strip()})")
    finally:
        await rt.close()


def _queue_worker(stream: str) -> None:
    """One rating worker process of ``queue``: the work-queue loop only (no other worker loop)."""
    import os

    os.environ["OPENBSS_NATS_STREAM"] = stream

    async def run() -> None:
        from openbss.platform.runtime import Runtime
        from openbss.rating.queue import WorkQueue
        from openbss.services import build_services
        from openbss.settings import get_settings

        settings = get_settings()
        rt = Runtime.build(settings)
        services = build_services(settings, rt)
        try:
            await WorkQueue(rt.db, settings, services.rating.service).run(asyncio.Event())
        finally:
            await rt.close()

    asyncio.run(run())


async def queued(args: argparse.Namespace) -> None:
    """file -> submitted in chunks to the JetStream work queue -> rated and stored by ``--workers`` processes."""
    import multiprocessing
    import os

    from openbss.charging import service as charging
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import create_tenant
    from openbss.rating.queue import WorkQueue
    from openbss.services import build_services
    from openbss.settings import get_settings

    stream = f"BENCH{uuid.uuid4().hex[:8].upper()}"
    os.environ["OPENBSS_NATS_STREAM"] = stream
    get_settings.cache_clear()
    settings = get_settings()
    if not settings.nats_url:
        raise SystemExit("set OPENBSS_NATS_URL (the work queue runs on NATS JetStream)")
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    plan = {"data": {"priceId": "d", "name": "Data", "currency": "EUR", "price": "0.01", "per": "1048576",
                     "tiers": [], "allowances": [{"quantity": {"amount": 2, "units": "GB"}}]},
            "voice": {"priceId": "v", "name": "Voice", "currency": "EUR", "price": "0.60", "per": "60", "tiers": [],
                      "allowances": []},
            "sms": {"priceId": "s", "name": "SMS", "currency": "EUR", "price": "0.08", "per": "1", "tiers": [],
                    "allowances": []}}
    procs = []
    queue = WorkQueue(rt.db, settings)
    try:
        async with rt.db.transaction(None) as session:
            await create_tenant(session, "Rating benchmark", tenant)
        numbers = [f"+3369{i:07d}" for i in range(args.subscribers)]
        for chunk in range(0, len(numbers), 500):
            async with rt.db.transaction(tenant) as session:
                ctx = charging.system_context(session, tenant, "http://bench")
                for n in numbers[chunk:chunk + 500]:
                    await services.charging.service.open_account(ctx, subscriber=n, payment_type="postpaid",
                                                                 currency="EUR", plan=plan, party_id=f"p{n[1:]}")
        await queue.connect()  # the stream and its consumers exist before the workers start
        spawn = multiprocessing.get_context("spawn")
        procs = [spawn.Process(target=_queue_worker, args=(stream,), daemon=True) for _ in range(args.workers)]
        for p in procs:
            p.start()
        await asyncio.sleep(8)  # the workers import and connect
        data = csv_cdrs(args.records, numbers)
        t = time.perf_counter()
        async with rt.db.transaction(tenant) as session:
            ctx = charging.system_context(session, tenant, "http://bench")
            report = await services.rating.service.submit(ctx, "bench.csv", data, source="bench",
                                                          partitions=settings.rating_partitions,
                                                          chunk_records=settings.rating_chunk_records)
        submitted = time.perf_counter() - t
        await queue.publish(tenant, report["id"], report["workItems"])
        while True:
            async with rt.db.transaction(tenant) as session:
                ctx = charging.system_context(session, tenant, "http://bench")
                now = next(f for f in await services.rating.service.files(ctx) if f["id"] == report["id"])
            if now["status"] == "rated":
                break
            await asyncio.sleep(0.2)
        took = time.perf_counter() - t
        print(f"file -> work queue -> rated -> stored ({args.workers} worker processes): "
              f"{args.records / took:,.0f} records/s ({args.records:,} records, {report['chunks']} chunks, "
              f"{took:.1f} s, of which submit {submitted:.1f} s): {now['rated']:,} rated, {now['amounts']}")
    finally:
        for p in procs:
            p.terminate()
        js = await queue.connect()
        await js.delete_stream(queue.stream)
        await queue.close()
        await rt.close()


def ber(args: argparse.Namespace) -> None:
    """ASN.1 BER decoding (pycrate, 3GPP TS 32.298): records/s on one core, PGW partial records, MO calls, MO SMS."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.rating.cdr_ber import mo_call, mo_sms, pgw

    from openbss.rating.asn1 import read_ber

    distinct = []
    for i in range(200):
        when = START + timedelta(seconds=i * 37)
        n = f"+3369{i:07d}"
        if i % 3 == 0:
            distinct.append(pgw(charging_id=i, msisdn=n, imsi=f"20801{i:010d}", start=when, uplink=i * 1000,
                                downlink=i * 5000, sequence=1 + i % 4, cause=0 if i % 4 == 3 else 16))
        elif i % 3 == 1:
            distinct.append(mo_call(reference=i, msisdn=n, imsi=f"20801{i:010d}", called="+33142000000",
                                    answer=when, duration=1 + i % 900))
        else:
            distinct.append(mo_sms(reference=i % 256, msisdn=n, imsi=f"20801{i:010d}", destination="+33698765432",
                                   sent=when))
    data = b"".join(distinct) * (args.records // len(distinct))
    read_ber(distinct[0])  # the 3GPP modules imported once
    for workers in (1, 2):
        t = time.perf_counter()
        out = read_ber(data, workers=workers)
        took = time.perf_counter() - t
        bad = sum(1 for _, r in out if isinstance(r, str))
        print(f"BER decode ({workers} process{'es' if workers > 1 else ''}): {len(out) / took:,.0f} records/s "
              f"({len(out):,} records, {len(data) / 1e6:.1f} MB, {took:.1f} s, {bad} refused)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("core")
    c.add_argument("--records", type=int, default=2_000_000)
    c.add_argument("--subscribers", type=int, default=1_000_000)
    c.add_argument("--prefixes", type=int, default=50_000)
    c.add_argument("--zones", type=int, default=300)
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--scalar-sample", type=int, default=200_000)
    c.add_argument("--processes", type=int, default=1,
                   help="rate account partitions in this many processes at once (the scalar sample is skipped)")
    c.add_argument("--threads", type=int, default=1, help="Polars threads per process with --processes")
    f = sub.add_parser("file")
    f.add_argument("--records", type=int, default=100_000)
    f.add_argument("--subscribers", type=int, default=1_000)
    f.add_argument("--profile", help="write a cProfile of the ingest to this file")
    f.add_argument("--no-columnar", action="store_true",
                   help="the record-by-record pipeline (parse_file, process, _store), as before")
    q = sub.add_parser("queue")
    q.add_argument("--records", type=int, default=100_000)
    q.add_argument("--subscribers", type=int, default=1_000)
    q.add_argument("--workers", type=int, default=2)
    b = sub.add_parser("ber")
    b.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    if args.command == "core":
        core(args)
    elif args.command == "ber":
        ber(args)
    elif args.command == "queue":
        asyncio.run(queued(args))
    else:
        asyncio.run(end_to_end(args))


if __name__ == "__main__":
    main()

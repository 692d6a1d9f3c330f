"""Performance-management benchmark: pushed measurements stored in the day-partitioned KPI store with their
5-minute rollup, evaluated against threshold jobs, then rolled up to hours and days.

    .venv/bin/python bench/assurance_kpi.py --objects 200 --indicators 5 --points 48 --batch 1000

Against the configured database (``OPENBSS_DATABASE_URL``; migrations applied), in a fresh tenant: ``--objects`` ×
``--indicators`` series of ``--points`` measurements 5 minutes apart (one day of 5-minute points for 288), stored
through ``KpiStore.store`` in transactions of ``--batch`` measurements with the threshold engine's evaluation (one
job with one rule on the first indicator, watching every object, values that never cross; ``--no-thresholds``:
none), then the hour and day
rollups of the span. Reports measurements/s for the stores and the rollup time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from openbss.assurance.performance import Measurement
from openbss.cli import upgrade_database
from openbss.platform.runtime import Runtime
from openbss.platform.tenancy import create_tenant
from openbss.platform.tmf.resource import system_context
from openbss.services import build_services
from openbss.settings import get_settings

BASE = "http://bench"


async def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    upgrade_database()
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    tenant = f"bench-kpi-{uuid.uuid4().hex[:8]}"
    try:
        async with rt.db.transaction(None) as session:
            await create_tenant(session, "KPI benchmark", tenant)
        perf, thr = services.assurance.performance_api, services.assurance.threshold_api
        async with rt.db.transaction(tenant) as session:
            ctx = system_context(tenant, session, BASE, "bench")
            kpis = [await services.assurance.resources["performanceIndicatorSpecification"].create(
                ctx, {"name": f"kpi-{i}", "collectionType": "gauge"}) for i in range(args.indicators)]
            rule = await services.assurance.resources["thresholdRule"].create(ctx, {
                "@type": "SimpleThresholdRule", "name": "high", "condition": "Raise", "severity": "MAJOR",
                "measurement": {"id": kpis[0]["id"], "@type": "PerformanceMeasurementRef"},
                "conformanceTargetUpper": 1_000_000})
            threshold = await services.assurance.resources["threshold"].create(ctx, {
                "@type": "Threshold", "name": "t", "thresholdRule": [{"id": rule["id"], "@type": "ThresholdRuleRef"}]})
            if not args.no_thresholds:
                await services.assurance.resources["thresholdJob"].create(ctx, {
                    "@type": "ThresholdJob", "granularity": "G_5MN", "monitoredObjectsCriteria": [
                        {"monitoredObjectFilter": "*"}], "performanceThreshold": {"id": threshold["id"],
                                                                                 "@type": "ThresholdRef"}})
        assert perf and thr
        start = datetime(2026, 11, 1, tzinfo=UTC)
        series = [(f"ne-{o:04d}", f"kpi-{i}") for o in range(args.objects) for i in range(args.indicators)]
        points = [Measurement(obj, kpi, start + timedelta(minutes=5 * p), Decimal(o % 97 + p))
                  for p in range(args.points) for o, (obj, kpi) in enumerate(series)]
        kpi_store, collector = services.assurance.kpis, services.assurance.collector
        await kpi_store.ensure_partitions(rt.db, tenant, {m.time.date() for m in points})
        began = time.perf_counter()
        for i in range(0, len(points), args.batch):
            batch = points[i:i + args.batch]
            async with rt.db.transaction(tenant) as session:
                ctx = system_context(tenant, session, BASE, "bench")
                await kpi_store.store(session, batch)
                for listener in collector.listeners:
                    await listener(ctx, batch)
        stored = time.perf_counter() - began
        began = time.perf_counter()
        async with rt.db.transaction(tenant) as session:
            built = await kpi_store.rollup(session, start, start + timedelta(minutes=5 * args.points))
        rolled = time.perf_counter() - began
        watched = 0 if args.no_thresholds else args.objects
        print(f"kpi store: {len(points):,} measurements ({len(series):,} series × {args.points} points, batches of "
              f"{args.batch}, thresholds evaluated on {watched:,} series) in {stored:.2f} s = "
              f"{len(points) / stored:,.0f} measurements/s; rollup to {built['hour']:,} hour and {built['day']:,} "
              f"day buckets in {rolled:.2f} s; load average {os.getloadavg()}")
    finally:
        await rt.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--indicators", type=int, default=5)
    parser.add_argument("--points", type=int, default=48)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--no-thresholds", action="store_true", help="no threshold job: the store alone")
    asyncio.run(main(parser.parse_args()))

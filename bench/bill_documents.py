"""Bill documents benchmark: PDFs of realistic issued bills, rendering only and rendered then stored write-once.

    # rendering only (this process, then worker processes), then render + store (billing.archive into the
    # platform's filesystem object store, a temporary directory) the way a batch of issued bills gets its documents
    .venv/bin/python bench/bill_documents.py --bills 200
    # where the time goes: rendering 200 bills under cProfile
    .venv/bin/python bench/bill_documents.py --bills 200 --profile

The bills are built in memory (no database): each has one to three products (a monthly plan billed in advance with
its prorated first piece, an activation fee on one in four, an in-arrears option on one in five), VAT at 20 %, and
one in three has postpaid usage (voice, data, SMS) on its plan. CPU per document is the process time (user + sys of
this process and its worker processes) over the documents: independent of the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from typing import Any


def _money(value: str) -> dict[str, Any]:
    return {"unit": "EUR", "value": value}


def _line(n: int, bill_no: str, name: str, product: dict[str, Any], start: str, end: str, amount: float,
          chars: dict[str, Any]) -> dict[str, Any]:
    tax = round(amount * 0.2, 2)
    return {"@type": "AppliedCustomerBillingRate", "id": f"{bill_no}-{n}", "name": name, "isBilled": True,
            "type": "appliedBillingCharge", "billingAccount": {"id": "acc"},
            "periodCoverage": {"startDateTime": start, "endDateTime": end},
            "taxExcludedAmount": _money(f"{amount:.2f}"), "taxIncludedAmount": _money(f"{amount + tax:.2f}"),
            "appliedTax": [{"taxCategory": "VAT/standard", "taxRate": "20", "taxAmount": _money(f"{tax:.2f}")}],
            "characteristic": [{"name": k, "value": v} for k, v in chars.items()], "product": product}


def realistic_bill(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``i``-th bill of the mix: a rendered TMF678 CustomerBill and its lines."""
    bill_no = f"INV-2027-03-{i + 1:06d}"
    lines: list[dict[str, Any]] = []
    products = 1 + (i % 3 == 0) + (i % 5 == 0)
    for p in range(products):
        product = {"id": f"prod-{i}-{p}", "name": ["Mobile plan 20 GB", "Home fibre 1 Gb/s", "Roaming option"][p]}
        fee = 19.99 + (i % 20) + 10 * p
        lines.append(_line(len(lines), bill_no, "Monthly fee (prorated)", product, "2027-01-14T23:00:00Z",
                           "2027-01-31T23:00:00Z", round(fee * 17 / 31, 2), {"chargeType": "recurringCharge"}))
        lines.append(_line(len(lines), bill_no, "Monthly fee", product, "2027-01-31T23:00:00Z",
                           "2027-02-28T23:00:00Z", fee, {"chargeType": "recurringCharge"}))
        if (i + p) % 4 == 0:
            lines.append(_line(len(lines), bill_no, "Activation", product, "2027-01-14T23:00:00Z",
                               "2027-01-14T23:00:00Z", 10.0, {"chargeType": "oneTimeCharge"}))
        if p == 0 and i % 3 == 0:
            for usage, units, records, price in (("voice", "342 min", 57, 0.0), ("data", "23.4 GB", 412, 17.5),
                                                 ("sms", "120", 120, 6.0)):
                lines.append(_line(len(lines), bill_no, f"Usage {usage}", product, "2027-01-31T23:00:00Z",
                                   "2027-02-28T23:00:00Z", price, {"chargeType": "usageCharge", "units": units,
                                                                   "usageType": usage, "records": records}))
    excluded = sum(float(ln["taxExcludedAmount"]["value"]) for ln in lines)
    tax = sum(float(ln["appliedTax"][0]["taxAmount"]["value"]) for ln in lines)
    bill = {"id": f"bill-{i}", "@type": "CustomerBill", "billNo": bill_no, "category": "normal",
            "state": "validated", "billDate": "2027-02-28T23:00:00Z",
            "billingAccount": {"id": f"acc-{i}", "name": f"Account {i} — Dupont & Fils"},
            "billingPeriod": {"startDateTime": "2027-01-31T23:00:00Z", "endDateTime": "2027-02-28T23:00:00Z"},
            "paymentDueDate": "2027-03-14T23:00:00Z", "previousBalance": _money("0.00"),
            "taxExcludedAmount": _money(f"{excluded:.2f}"), "taxIncludedAmount": _money(f"{excluded + tax:.2f}"),
            "taxItem": [{"taxCategory": "VAT/standard", "taxRate": "20", "taxAmount": _money(f"{tax:.2f}")}],
            "creditApplied": _money("0.00"), "amountDue": _money(f"{excluded + tax:.2f}")}
    return bill, lines


def _cpu() -> float:
    """CPU seconds (user + sys) of this process and its child processes, running (the render workers) or ended."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    live = sum(c.cpu_times().user + c.cpu_times().system for c in me.children(recursive=True))
    return t.user + t.system + t.children_user + t.children_system + live


async def measure(n: int, workers: int | None) -> None:
    from openbss.billing import document
    from openbss.billing.archive import DueDocument, store_documents
    from openbss.platform.storage import FilesystemObjectStore

    bills = [realistic_bill(i) for i in range(n)]
    jobs: list[document.Job] = [(bill, lines, "Bench Telecom", None, None) for bill, lines in bills]
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}")
    print(f"load average before: {open('/proc/loadavg').read().strip()}")
    lines = sum(len(ls) for _, ls in bills)
    print(f"{n} bills, {lines} lines ({lines / n:.1f} per bill)")
    document.render(*bills[0][:2], operator="Bench Telecom")  # imports and fonts loaded before timing

    wall, cpu = time.perf_counter(), _cpu()
    for bill, ls in bills:
        document.render(bill, ls, operator="Bench Telecom")
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    print(f"render, one process: {n} in {wall:.2f} s → {n / wall:.0f} documents/s; CPU {1000 * cpu / n:.1f} ms per "
          "document")

    document.render_many(jobs[:64], workers=workers)  # the worker processes started and warm before timing
    wall, cpu = time.perf_counter(), _cpu()
    pdfs = document.render_many(jobs, workers=workers)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    print(f"render_many ({workers or 'default'} workers): {n} in {wall:.2f} s → {n / wall:.0f} documents/s; CPU "
          f"{1000 * cpu / n:.1f} ms per document")

    with tempfile.TemporaryDirectory() as root:
        store = FilesystemObjectStore(root)
        due = [DueDocument(f"billing/bench/{bill['id']}.pdf", {"bill-no": bill["billNo"], "tenant": "bench"}, job)
               for (bill, _), job in zip(bills, jobs, strict=True)]
        wall, cpu = time.perf_counter(), _cpu()
        stored = await store_documents(store, due)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        print(f"render + store write-once (billing.archive.store_documents, filesystem store): {n} in {wall:.2f} s "
              f"→ {n / wall:.0f} documents/s; CPU {1000 * cpu / n:.1f} ms per document; "
              f"{sum(s.size for s in stored) / n / 1024:.1f} KiB per document")
        assert [await store.get(d.key) for d in due] == pdfs  # the same bytes as rendered alone
    print(f"load average after: {open('/proc/loadavg').read().strip()}")


def profile(n: int, top: int) -> None:
    import cProfile
    import pstats

    from openbss.billing import document

    bills = [realistic_bill(i) for i in range(n)]
    document.render(*bills[0], operator="Bench Telecom")
    prof = cProfile.Profile()
    prof.enable()
    for bill, ls in bills:
        document.render(bill, ls, operator="Bench Telecom")
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bills", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    if args.profile:
        profile(args.bills, args.top)
    else:
        asyncio.run(measure(args.bills, args.workers))


if __name__ == "__main__":
    main()

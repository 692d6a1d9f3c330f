"""Demo data of batch rating: the watched directory ``<data_dir>/cdr-inbox`` that ``openbss demo`` collects, and a
file of the day's usage records for the postpaid line (a call, data at home and roaming, an SMS), with one record
of a number nobody uses, which lands in the suspense queue with its reason.

The file of a day has stable record ids: dropped again (a second ``make demo`` the same day) its records are
duplicates and change nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openbss.demo.charging import POSTPAID

INBOX = "cdr-inbox"
UNKNOWN = "+33600009999"
COLUMNS = ("recordId", "origin", "msisdn", "eventTime", "usageType", "quantity", "unit", "calledNumber",
           "visitedCountry", "apn")


def demo_records(now: datetime) -> list[dict[str, str]]:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tag = day.strftime("%Y%m%d")

    def at(hours: int) -> str:
        return (day + timedelta(hours=hours)).isoformat()

    return [
        {"recordId": f"{tag}-1", "origin": "msc-paris-1", "msisdn": POSTPAID, "eventTime": at(8),
         "usageType": "voice", "quantity": "185", "calledNumber": "+33142685300"},
        {"recordId": f"{tag}-2", "origin": "pgw-paris-1", "msisdn": POSTPAID, "eventTime": at(9),
         "usageType": "data", "quantity": "350", "unit": "MB", "apn": "internet.demo"},
        {"recordId": f"{tag}-3", "origin": "pgw-paris-1", "msisdn": POSTPAID, "eventTime": at(10),
         "usageType": "data", "quantity": "40", "unit": "MB", "visitedCountry": "ES", "apn": "internet.demo"},
        {"recordId": f"{tag}-4", "origin": "smsc-1", "msisdn": POSTPAID, "eventTime": at(11), "usageType": "sms",
         "quantity": "1", "calledNumber": "+33612345678"},
        {"recordId": f"{tag}-5", "origin": "msc-paris-1", "msisdn": UNKNOWN, "eventTime": at(12),
         "usageType": "voice", "quantity": "60", "calledNumber": "+33142685300"},
    ]


def drop_demo_file(inbox: Path, now: datetime | None = None) -> Path:
    """Write the day's demo usage file into the watched directory (as ``.part``, then renamed: never half-read)."""
    now = now or datetime.now(UTC)
    inbox.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(demo_records(now))
    target = inbox / f"demo-cdr-{now.astimezone(UTC):%Y%m%d}.csv"
    partial = target.with_name(target.name + ".part")
    partial.write_text(out.getvalue())
    partial.rename(target)
    return target

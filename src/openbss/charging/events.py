"""Events online charging emits: TMF654 balance actions (through the TMF kit: ``TopupBalanceCreateEvent`` ...),
bucket thresholds and low balance (``BucketThresholdEvent``: 80 % and 100 % of an allowance consumed, money
below the account's low-balance threshold), on the notification hubs and the event backbone."""

from __future__ import annotations

from typing import Any

from openbss.charging import repository as repo
from openbss.platform.db import utcnow
from openbss.platform.tmf.spec import format_datetime

API = "prepayBalanceManagement"
USAGE_API = "usageManagement"
THRESHOLD_EVENT = "BucketThresholdEvent"
LOW_BALANCE_EVENT = "BucketLowBalanceEvent"
EXTRA_EVENT_TYPES = frozenset({THRESHOLD_EVENT, LOW_BALANCE_EVENT})


def bucket_event(account: dict[str, Any], bucket_id: str, unit: str, level: int, remaining: int, initial: int,
                 base_url: str) -> dict[str, Any]:
    """An outbox row: an allowance reached ``level`` % consumed, or (level 0) money fell below the threshold."""
    from openbss.charging.service import UNITS_OF, units_quantity

    resource = {
        "id": bucket_id, "href": f"{base_url}/tmf-api/{API}/v4/bucket/{bucket_id}", "@type": "Bucket",
        "usageType": "monetary" if unit == "money" else unit,
        "remainingValue": units_quantity(remaining, unit, account["currency"]),
        "logicalResource": [{"id": account["subscriber"], "name": "MSISDN", "@referredType": "MSISDN"}],
    }
    if account.get("product_id"):
        resource["product"] = [{"id": account["product_id"], "@referredType": "Product"}]
    if unit != "money":
        resource["threshold"] = {"percentage": level, "initialValue": {"amount": initial,
                                                                       "units": UNITS_OF.get(unit)}}
    kind = LOW_BALANCE_EVENT if unit == "money" else THRESHOLD_EVENT
    return repo.event_row(API, kind, "bucket", resource, format_datetime(utcnow()), "Bucket")

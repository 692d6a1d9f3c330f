"""Events online charging emits: TMF654 balance actions (through the TMF kit: ``TopupBalanceCreateEvent`` ...),
bucket thresholds and low balance (``BucketThresholdEvent``: 80 % and 100 % of an allowance consumed, money
below the account's low-balance threshold; built by ``service.bucket_event``), on the notification hubs and the event
backbone."""

from __future__ import annotations

API = "prepayBalanceManagement"
USAGE_API = "usageManagement"
THRESHOLD_EVENT = "BucketThresholdEvent"
LOW_BALANCE_EVENT = "BucketLowBalanceEvent"
EXTRA_EVENT_TYPES = frozenset({THRESHOLD_EVENT, LOW_BALANCE_EVENT})

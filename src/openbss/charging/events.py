"""Events online charging emits: TMF654 balance actions (through the TMF kit: ``TopupBalanceCreateEvent`` ...; a
cancelled action also ``TopupBalanceCancelEvent``, ``AdjustBalanceCancelEvent``, ``TransferBalanceCancelEvent``,
``ReserveBalanceCancelEvent`` as TMF654 declares them),
bucket thresholds and low balance (``BucketThresholdEvent``: 80 % and 100 % of an allowance consumed, money
below the account's low-balance threshold; built by ``service.bucket_event``), prepaid renewal fees
(``RenewalFeeEvent``: paid, or unpaid and the period's allowances waiting; ``service.fee_event``), on the
notification hubs and the event backbone."""

from __future__ import annotations

API = "prepayBalanceManagement"
USAGE_API = "usageManagement"
THRESHOLD_EVENT = "BucketThresholdEvent"
LOW_BALANCE_EVENT = "BucketLowBalanceEvent"
#: a prepaid line's periodic fee was taken from its money at renewal (``status: paid``), or could not be (``unpaid``:
#: the period's allowances wait for the money)
RENEWAL_FEE_EVENT = "RenewalFeeEvent"
#: what TMF654 announces when a balance action is cancelled (reversed)
CANCEL_EVENT_TYPES = frozenset(f"{action}CancelEvent" for action in ("TopupBalance", "AdjustBalance",
                                                                      "TransferBalance", "ReserveBalance"))
EXTRA_EVENT_TYPES = frozenset({THRESHOLD_EVENT, LOW_BALANCE_EVENT, RENEWAL_FEE_EVENT}) | CANCEL_EVENT_TYPES

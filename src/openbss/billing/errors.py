"""Typed errors of the billing domain."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class InvalidBilling(BadRequest):
    code = "INVALID_BILLING"
    reason = "Invalid billing request"


class BillIssued(Conflict):
    code = "BILL_ISSUED"
    reason = "The bill is issued: it cannot change"

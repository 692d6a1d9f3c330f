"""Typed errors of the customer domain."""

from __future__ import annotations

from openbss.platform.errors import BadRequest


class InvalidSegment(BadRequest):
    code = "INVALID_SEGMENT"
    reason = "Unknown customer segment"


class InvalidSearch(BadRequest):
    code = "INVALID_QUERY"
    reason = "Invalid search"

"""Typed errors of the inventory domain."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class PoolExhausted(Conflict):
    code = "POOL_EXHAUSTED"
    reason = "No resource available"


class InvalidPoolInput(BadRequest):
    code = "INVALID_POOL_INPUT"
    reason = "Invalid resource pool input"


class PoolManaged(Conflict):
    code = "POOL_MANAGED"
    reason = "Resource managed by a resource pool"


class InvalidResource(BadRequest):
    code = "INVALID_RESOURCE"
    reason = "Invalid resource"

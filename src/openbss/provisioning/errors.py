"""Typed errors of provisioning."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class NotRetryable(Conflict):
    code = "NOT_RETRYABLE"
    reason = "Nothing to retry"


class InvalidSimulatorConfig(BadRequest):
    code = "INVALID_SIMULATOR_CONFIG"
    reason = "Invalid simulator configuration"


class Undecomposable(BadRequest):
    code = "UNDECOMPOSABLE"
    reason = "The product cannot be decomposed into network steps"

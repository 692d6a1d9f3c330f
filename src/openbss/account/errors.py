"""Typed errors of the account domain."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class InvalidAccount(BadRequest):
    code = "INVALID_ACCOUNT"
    reason = "Invalid account"


class OpenBalance(Conflict):
    code = "OPEN_BALANCE"
    reason = "The account has an open balance"


class AccountInUse(Conflict):
    code = "ACCOUNT_IN_USE"
    reason = "The account cannot be deleted"

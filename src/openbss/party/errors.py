"""Typed errors of the party domain."""

from __future__ import annotations

from openbss.platform.errors import BadRequest


class InvalidContactMedium(BadRequest):
    code = "INVALID_CONTACT_MEDIUM"
    reason = "Invalid contact medium"


class InvalidReference(BadRequest):
    code = "INVALID_REFERENCE"
    reason = "Invalid reference"

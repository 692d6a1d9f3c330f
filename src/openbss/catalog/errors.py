"""Typed errors of the catalog: each names the offending attribute and carries a stable code."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict, DomainError, InvalidStateTransition


class InvalidPrice(BadRequest):
    code = "INVALID_PRICE"
    reason = "Invalid product offering price"


class PriceNotUsable(DomainError):
    """A price written without everything billing needs (TMF620 requires only its name) is used: ordered, quoted,
    rated or charged."""

    status = 422
    code = "PRICE_INCOMPLETE"
    reason = "Product offering price incomplete"


class InvalidPriceTiers(BadRequest):
    code = "INVALID_PRICE_TIERS"
    reason = "Invalid price tiers"


class InvalidBundle(BadRequest):
    code = "INVALID_BUNDLE"
    reason = "Invalid bundle"


class InvalidCharacteristic(BadRequest):
    code = "INVALID_CHARACTERISTIC"
    reason = "Invalid characteristic"


class InvalidLifecycleStatus(BadRequest):
    code = "INVALID_LIFECYCLE_STATUS"
    reason = "Invalid lifecycle status"


class InvalidValidity(BadRequest):
    code = "INVALID_VALID_FOR"
    reason = "Invalid validity period"


class UnknownReference(BadRequest):
    code = "UNKNOWN_REFERENCE"
    reason = "Referenced catalog object not found"


class InvalidTariff(BadRequest):
    code = "INVALID_TARIFF"
    reason = "Invalid tariff"


class InvalidImport(BadRequest):
    code = "INVALID_IMPORT"
    reason = "Invalid catalog import"


class InUse(Conflict):
    code = "IN_USE"
    reason = "Catalog object in use"


class VersionFrozen(Conflict):
    code = "VERSION_FROZEN"
    reason = "Catalog version frozen"


class NotOrderable(Conflict):
    code = "NOT_ORDERABLE"
    reason = "Product offering not orderable"


class ForbiddenTransition(InvalidStateTransition):
    code = "INVALID_LIFECYCLE_TRANSITION"

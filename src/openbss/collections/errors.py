"""Typed errors of collections."""

from __future__ import annotations

from openbss.platform.errors import BadRequest, Conflict


class InvalidCollections(BadRequest):
    code = "INVALID_COLLECTIONS_REQUEST"
    reason = "Invalid collections request"


class CollectionsConflict(Conflict):
    code = "COLLECTIONS_CONFLICT"
    reason = "The request conflicts with the account's collection"

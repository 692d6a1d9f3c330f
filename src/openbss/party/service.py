"""Business rules of parties and their named actions."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from openbss.party.errors import InvalidContactMedium
from openbss.platform.tmf.resource import Context, ResourceHooks

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_contact_media(doc: dict[str, Any]) -> None:
    for i, medium in enumerate(doc.get("contactMedium") or []):
        ch = medium.get("characteristic") or {}
        email = ch.get("emailAddress")
        if email is not None and not EMAIL.match(email):
            raise InvalidContactMedium(
                f"'contactMedium[{i}].characteristic.emailAddress': '{email}' is not an email address")


class IndividualRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = {
        "initialized": {"validated", "deceased"},
        "validated": {"deceased"},
        "deceased": set(),
    }

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        check_contact_media(doc)
        if "fullName" not in doc:
            doc["fullName"] = " ".join(p for p in (doc.get("givenName"), doc.get("middleName"),
                                                   doc.get("familyName")) if p)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        check_contact_media(merged)


class OrganizationRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = {
        "initialized": {"validated", "closed"},
        "validated": {"closed"},
        "closed": set(),
    }

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        check_contact_media(doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        check_contact_media(merged)


class PartyService:
    """Named actions other domains call (never the party tables directly)."""

    def __init__(self, services: dict[str, Any]) -> None:
        self._individuals = services["individual"]
        self._organizations = services["organization"]

    async def get_individual(self, ctx: Context, party_id: str) -> dict[str, Any]:
        return await self._individuals.get(ctx, party_id)

    async def get_organization(self, ctx: Context, party_id: str) -> dict[str, Any]:
        return await self._organizations.get(ctx, party_id)

    async def validate_individual(self, ctx: Context, party_id: str) -> dict[str, Any]:
        return await self._individuals.set_state(ctx, party_id, "validated")

    async def create_individual(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._individuals.create(ctx, self._individuals.validate_create(payload))

    async def create_organization(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._organizations.create(
            ctx, self._organizations.validate_create(payload))

"""Business rules of parties and party roles, and the party domain's named actions for other domains."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from openbss.party.errors import InvalidContactMedium, InvalidReference
from openbss.platform.errors import Forbidden, NotFound
from openbss.platform.personal_data import ERASED, normalize_phone
from openbss.platform.tmf.query import Filter, ListQuery
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
PARTY_TYPES = ("Individual", "Organization")


def check_contact_media(doc: dict[str, Any], prefix: str = "") -> None:
    """E-mail addresses must look like one; phone and fax numbers must be E.164 (``+`` country code and number;
    spaces, dashes, dots and parentheses are accepted as separators)."""
    for i, medium in enumerate(doc.get("contactMedium") or []):
        ch = medium.get("characteristic") or {}
        where = f"{prefix}contactMedium[{i}].characteristic"
        email = ch.get("emailAddress")
        if email is not None and not EMAIL.match(email):
            raise InvalidContactMedium(f"'{where}.emailAddress': '{email}' is not an email address")
        for attr in ("phoneNumber", "faxNumber"):
            number = ch.get(attr)
            if number is not None and not E164.match(normalize_phone(number)):
                raise InvalidContactMedium(
                    f"'{where}.{attr}': '{number}' is not an E.164 number (e.g. +33612345678)")


class IndividualRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = {
        "initialized": {"validated", "deceaded"},
        "validated": {"deceaded"},
        "deceaded": set(),
    }

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        check_contact_media(doc)
        if "fullName" not in doc:
            doc["fullName"] = " ".join(p for p in (doc.get("givenName"), doc.get("middleName"),
                                                   doc.get("familyName")) if p)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        check_contact_media(merged)
        name_parts = ("givenName", "middleName", "familyName")
        if "fullName" not in changes and any(k in changes for k in name_parts):
            merged["fullName"] = " ".join(p for p in (merged.get(k) for k in name_parts) if p)


#: the role of a relatedParty entry that lets a customer administer an organization (granted by the operator)
ADMINISTRATOR = "administrator"


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

    async def authorize_customer_change(self, ctx: Context, current: dict[str, Any], merged: dict[str, Any]) -> None:
        """A person related to an organization reads it; only one the operator made its administrator (a
        ``relatedParty`` entry with role ``administrator``) changes it, and never its related parties."""
        party = ctx.principal.party_id
        if not any(isinstance(rp, dict) and rp.get("id") == party and rp.get("role") == ADMINISTRATOR
                   for rp in current.get("relatedParty") or []):
            raise Forbidden(f"organization '{current.get('id')}': only its administrators change it (a relatedParty "
                            f"with role '{ADMINISTRATOR}', granted by the operator)", code="CUSTOMER_FORBIDDEN")
        if (merged.get("relatedParty") or []) != (current.get("relatedParty") or []):
            raise Forbidden(f"organization '{current.get('id')}': its relatedParty (who administers it) is changed "
                            "by the operator", code="CUSTOMER_FORBIDDEN")


class PartyRoleRules(ResourceHooks):
    """TMF669: a role a party plays (reseller, supplier, partner...). The engaged party must exist."""

    transitions: ClassVar[dict[str, set[str]] | None] = {
        "initialized": {"validated", "active", "closed"},
        "validated": {"active", "closed"},
        "active": {"suspended", "closed"},
        "suspended": {"active", "closed"},
        "closed": set(),
    }

    def __init__(self, parties: PartyService) -> None:
        self.parties = parties

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        check_contact_media(doc)
        if doc.get("engagedParty"):
            await self.parties.require_party(ctx, doc["engagedParty"], "engagedParty")

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        check_contact_media(merged)
        if "engagedParty" in changes and merged.get("engagedParty"):
            await self.parties.require_party(ctx, merged["engagedParty"], "engagedParty")


def query(service: ResourceService, where: Mapping[str, Sequence[str]], limit: int = 1000) -> ListQuery:
    """A list query matching exact values (OR within an attribute, AND across), built without parsing text: an
    id containing ',' or '&' stays one value."""
    definition = service.resource.read_definition or service.resource.type
    filters = []
    for path, values in where.items():
        attr = service.resource.extra_attributes.get(path) or service.api.spec.attribute(definition, path)
        if attr is None:
            raise ValueError(f"'{path}' is not an attribute of {definition}")
        filters.append(Filter(path, "eq", tuple(values), attr))
    return ListQuery(limit=limit, filters=filters)


async def list_all(ctx: Context, service: ResourceService, where: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Every resource matching exact attribute values (paged through)."""
    out: list[dict[str, Any]] = []
    lq = query(service, where)
    while True:
        items, total = await service.list(ctx, lq)
        out += items
        if not items or len(out) >= total:
            return out
        lq.offset += len(items)


class PartyService:
    """Named actions other domains call (never the party tables directly). ``roles`` (TMF669) is set by the
    domain's wiring once the role API, whose rules check parties through this service, is built."""

    def __init__(self, individuals: ResourceService, organizations: ResourceService,
                 roles: ResourceService | None = None) -> None:
        self._individuals = individuals
        self._organizations = organizations
        self.roles = roles

    async def get_individual(self, ctx: Context, party_id: str) -> dict[str, Any]:
        return await self._individuals.get(ctx, party_id)

    async def get_organization(self, ctx: Context, party_id: str) -> dict[str, Any]:
        return await self._organizations.get(ctx, party_id)

    async def validate_individual(self, ctx: Context, party_id: str) -> dict[str, Any]:
        return await self._individuals.set_state(ctx, party_id, "validated")

    async def create_individual(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._individuals.create(ctx, self._individuals.validate_create(payload))

    async def create_organization(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._organizations.create(ctx, self._organizations.validate_create(payload))

    async def create_party_role(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.roles is not None
        return await self.roles.create(ctx, self.roles.validate_create(payload))

    async def set_contact_media(self, ctx: Context, party_id: str, contact_medium: list[dict[str, Any]],
                                referred_type: str = "Individual") -> dict[str, Any]:
        """Replace a party's contact media (validated, encrypted, audited and evented like any party change)."""
        service = self._organizations if referred_type == "Organization" else self._individuals
        return await service.patch(ctx, party_id, {"contactMedium": contact_medium})

    async def find_party(self, ctx: Context, party_id: str, referred_type: str | None = None) -> dict[str, Any] | None:
        """The individual or organization with this id in the caller's tenant (and scope), or None."""
        services = {"Individual": self._individuals, "Organization": self._organizations}
        kinds = [referred_type] if referred_type in services else list(services)
        for kind in kinds:
            try:
                return await services[kind].get(ctx, party_id)
            except NotFound:
                continue
        return None

    async def require_party(self, ctx: Context, ref: dict[str, Any], field: str) -> dict[str, Any]:
        """Check a reference to a party (``{"id", "@referredType"}``) names one of the tenant's parties."""
        referred = ref.get("@referredType")
        if referred is not None and referred not in PARTY_TYPES:
            raise InvalidReference(f"'{field}.@referredType': '{referred}' is not one of {', '.join(PARTY_TYPES)}")
        party = await self.find_party(ctx, str(ref.get("id")), referred)
        if party is None:
            raise InvalidReference(f"'{field}.id': party '{ref.get('id')}' does not exist")
        return party

    async def party_ids_matching(self, ctx: Context, attribute: str, value: str) -> Any:
        """A subquery of the ids of parties whose indexed ``attribute`` (email, phone, identification) equals the
        value (normalized like the index: case, punctuation, separators)."""
        from sqlalchemy import union

        from openbss.party.codecs import EMAIL, IDENTIFICATION, PHONE

        subqueries = []
        for service in (self._individuals, self._organizations):
            path = {"email": EMAIL, "phone": PHONE}.get(attribute) or IDENTIFICATION[service.resource.type]
            subqueries.append(await service.store.index.matching_ids(ctx, path, [value]))
        return union(*subqueries)

    async def roles_of(self, ctx: Context, party_id: str) -> list[dict[str, Any]]:
        if self.roles is None:
            return []
        return await list_all(ctx, self.roles, {"engagedParty.id": [party_id]})

    # --- GDPR ----------------------------------------------------------------------------------------------
    async def export_party(self, ctx: Context, party_id: str) -> dict[str, Any] | None:
        party = await self.find_party(ctx, party_id)
        return party

    async def export_roles(self, ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await self.roles_of(ctx, party_id)

    async def erase_party(self, ctx: Context, party_id: str) -> int:
        party = await self.find_party(ctx, party_id)
        if party is None:
            return 0
        changes: dict[str, Any] = {"contactMedium": None, "externalReference": None}
        if party.get("@type", "Individual") == "Individual" and "givenName" in party:
            service = self._individuals
            changes |= {k: None for k in (
                "middleName", "formattedName", "legalName", "preferredGivenName", "familyNamePrefix", "otherName",
                "birthDate", "placeOfBirth", "deathDate", "individualIdentification", "disability", "gender",
                "nationality", "countryOfBirth", "maritalStatus", "title", "aristocraticTitle", "generation",
                "languageAbility", "skill", "location", "partyCharacteristic", "taxExemptionCertificate")}
            changes |= {"givenName": ERASED, "familyName": ERASED, "fullName": ERASED}
        else:
            service = self._organizations
        if party.get("relatedParty"):
            changes["relatedParty"] = [{**rp, "name": ERASED} if rp.get("name") else rp
                                       for rp in party["relatedParty"]]
        await service.patch(ctx, party_id, changes)
        return 1

    async def erase_roles(self, ctx: Context, party_id: str) -> int:
        roles = await self.roles_of(ctx, party_id)
        for role in roles:
            changes: dict[str, Any] = {"contactMedium": None}
            if role.get("engagedParty", {}).get("name"):
                changes["engagedParty"] = {**role["engagedParty"], "name": ERASED}
            assert self.roles is not None
            await self.roles.patch(ctx, role["id"], changes)
        return len(roles)

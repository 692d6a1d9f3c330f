"""Business rules of customers and the customer domain's named actions: segment, search, the 360 view, GDPR."""

from __future__ import annotations

from typing import Any, ClassVar

from openbss.customer import repository
from openbss.customer.codecs import EMAIL, PHONE
from openbss.customer.errors import InvalidSearch, InvalidSegment
from openbss.customer.schemas import SEGMENT, SEGMENTS
from openbss.party.service import PartyService, check_contact_media, list_all
from openbss.platform.errors import NotFound
from openbss.platform.personal_data import ERASED, PersonalDataRegistry
from openbss.platform.tmf.query import MAX_LIMIT
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService


def segment_of(customer: dict[str, Any]) -> str | None:
    for ch in customer.get("characteristic") or []:
        if ch.get("name") == SEGMENT:
            return str(ch.get("value"))
    return None


def check_segment(doc: dict[str, Any]) -> None:
    for i, ch in enumerate(doc.get("characteristic") or []):
        if ch.get("name") == SEGMENT and ch.get("value") not in SEGMENTS:
            raise InvalidSegment(f"'characteristic[{i}].value': segment '{ch.get('value')}' is not one of "
                                 f"{', '.join(SEGMENTS)}")


class CustomerRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = {
        "initialized": {"approved", "active", "closed"},
        "approved": {"active", "closed"},
        "active": {"suspended", "closed"},
        "suspended": {"active", "closed"},
        "closed": set(),
    }

    def __init__(self, parties: PartyService) -> None:
        self.parties = parties

    async def _check(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        if not str(doc.get("name", "")).strip():
            raise InvalidSegment("'name': a customer needs a name", code="INVALID_BODY")
        check_contact_media(doc)
        check_segment(doc)
        party = await self.parties.require_party(ctx, doc["engagedParty"], "engagedParty")
        ref = doc["engagedParty"]
        ref.setdefault("@referredType", party.get("@type", "Individual"))
        if not ref.get("name"):
            ref["name"] = party.get("fullName") or party.get("tradingName") or party.get("name") or doc["name"]
        return party

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        party = await self._check(ctx, doc)
        if segment_of(doc) is None:
            default = "residential" if party.get("@type", "Individual") == "Individual" else "sme"
            doc["characteristic"] = [*(doc.get("characteristic") or []),
                                     {"name": SEGMENT, "valueType": "string", "value": default}]

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        if "engagedParty" in changes and (changes["engagedParty"] or {}).get("id") != current["engagedParty"]["id"]:
            raise InvalidSegment("'engagedParty.id': the engaged party of a customer cannot change",
                                 code="IMMUTABLE_ATTRIBUTE")
        await self._check(ctx, merged)


SEARCH_PARAMS = ("name", "email", "phone", "identification", "accountId", "segment", "status")


class CustomerService:
    """Named actions other domains call."""

    def __init__(self, customers: ResourceService, parties: PartyService,
                 personal_data: PersonalDataRegistry) -> None:
        self._customers = customers
        self.parties = parties
        self.personal_data = personal_data  # the 360 view's sections come from the domains that add them

    async def get_customer(self, ctx: Context, customer_id: str) -> dict[str, Any]:
        return await self._customers.get(ctx, customer_id)

    async def find_customer(self, ctx: Context, customer_id: str) -> dict[str, Any] | None:
        try:
            return await self._customers.get(ctx, customer_id)
        except NotFound:
            return None

    async def create_customer(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._customers.create(ctx, self._customers.validate_create(payload))

    async def customers_of_party(self, ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await list_all(ctx, self._customers, {"engagedParty.id": [party_id]})

    async def link_account(self, ctx: Context, customer_id: str, account: dict[str, Any]) -> None:
        """Record an account (``{"id", "name", "@referredType"}``) on the customer, once."""
        customer = await self._customers.get(ctx, customer_id)
        refs = list(customer.get("account") or [])
        if any(r.get("id") == account["id"] for r in refs):
            return
        await self._customers.patch(ctx, customer_id, {"account": [*refs, account]})

    async def set_status(self, ctx: Context, customer_id: str, status: str) -> dict[str, Any]:
        """Approve, activate, suspend or close a customer (the lifecycle's transitions apply)."""
        return await self._customers.set_state(ctx, customer_id, status)

    async def find_by_characteristic(self, ctx: Context, name: str, value: str) -> list[dict[str, Any]]:
        """Customers carrying the characteristic ``name`` with ``value`` (e.g. an external directory's id)."""
        found = await list_all(ctx, self._customers, {"characteristic.value": [value]})
        return [c for c in found if any(ch.get("name") == name and ch.get("value") == value
                                        for ch in c.get("characteristic") or [])]

    async def set_characteristic(self, ctx: Context, customer_id: str, name: str, value: Any,
                                 value_type: str = "object") -> dict[str, Any]:
        """Add or replace one characteristic (audited and evented like any customer change)."""
        customer = await self._customers.get(ctx, customer_id)
        chars = [ch for ch in customer.get("characteristic") or [] if ch.get("name") != name]
        chars.append({"name": name, "valueType": value_type, "value": value})
        return await self._customers.patch(ctx, customer_id, {"characteristic": chars})

    # --- search ------------------------------------------------------------------------------------------
    async def search(self, ctx: Context, params: dict[str, str], offset: int = 0,
                     limit: int = 20) -> tuple[list[dict[str, Any]], int]:
        unknown = sorted(set(params) - set(SEARCH_PARAMS))
        if unknown:
            raise InvalidSearch(f"unknown search parameter(s) {', '.join(unknown)}; use {', '.join(SEARCH_PARAMS)}")
        given = {k: v.strip() for k, v in params.items() if v and v.strip()}
        if not given:
            raise InvalidSearch(f"give at least one of {', '.join(SEARCH_PARAMS)}")
        if limit < 1 or limit > MAX_LIMIT or offset < 0:
            raise InvalidSearch(f"'limit' must be 1..{MAX_LIMIT} and 'offset' at least 0")
        criteria: list[Any] = []  # subqueries of customer ids, each served by an index
        conds: list[Any] = []  # conditions on the matching customers' rows
        index = self._customers.store.index
        if "name" in given:
            criteria.append(await index.prefix_match(ctx, "name", given["name"]))
        for attr, path in (("email", EMAIL), ("phone", PHONE)):
            if attr in given:
                parties = await self.parties.party_ids_matching(ctx, attr, given[attr])
                own = await index.matching_ids(ctx, path, [given[attr]])
                criteria.append(repository.by_engaged_party(parties, own))
        if "identification" in given:
            parties = await self.parties.party_ids_matching(ctx, "identification", given["identification"])
            criteria.append(repository.by_engaged_party(parties))
        if "accountId" in given:
            criteria.append(await index.matching_ids(ctx, "account.id", [given["accountId"].strip()]))
        if "segment" in given:
            segments = given["segment"].split(",")
            bad = [s for s in segments if s not in SEGMENTS]
            if bad:
                raise InvalidSegment(f"'segment': '{bad[0]}' is not one of {', '.join(SEGMENTS)}")
            conds.append(repository.segment_condition(segments))
        if "status" in given:
            conds.append(repository.status_condition(given["status"].split(",")))
        owner = self._customers.store.owner_condition(ctx.principal)
        if owner is not None:
            conds.append(owner)
        rows, total = await repository.search(ctx, criteria, conds, offset, limit, broad="name" in given)
        return await self._customers.store.render_all(ctx, rows), total  # type: ignore[arg-type]

    # --- 360 -----------------------------------------------------------------------------------------------
    async def view_360(self, ctx: Context, customer_id: str) -> dict[str, Any]:
        customer = await self._customers.get(ctx, customer_id)
        ref = customer.get("engagedParty") or {}
        out: dict[str, Any] = {
            "id": customer["id"], "customer": customer,
            "party": await self.parties.find_party(ctx, ref.get("id", ""), ref.get("@referredType")),
            "segment": segment_of(customer),
        }
        out.update(await self.personal_data.customer_sections(ctx, customer))
        return out

    # --- GDPR ----------------------------------------------------------------------------------------------
    async def export_customers(self, ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await self.customers_of_party(ctx, party_id)

    async def erase_customers(self, ctx: Context, party_id: str) -> int:
        customers = await self.customers_of_party(ctx, party_id)
        for c in customers:
            changes: dict[str, Any] = {"name": ERASED, "contactMedium": None, "creditProfile": None,
                                       "engagedParty": {**c["engagedParty"], "name": ERASED}}
            if c.get("relatedParty"):
                changes["relatedParty"] = [{**rp, "name": ERASED} if rp.get("name") else rp
                                           for rp in c["relatedParty"]]
            await self._customers.patch(ctx, c["id"], changes)
        return len(customers)

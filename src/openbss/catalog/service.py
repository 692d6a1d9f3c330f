"""The catalog's business rules and named actions: lifecycle, versions, references, deletion, orderability.

**Versioning model.** TMF620 carries a ``version`` attribute but its reference types (``ProductOfferingRef``,
``ProductOfferingPriceRef`` in TMF622/TMF637) carry only an id. OpenBSS therefore gives **every version of an
offering, price or tariff its own id**: a version's content never changes once it is Active, so a product that
was sold with offering ``o1`` and price ``p1`` is billed with exactly what it bought, forever, from the ids alone.

* ``PATCH`` on an *In design*/*In test* object edits it in place.
* ``PATCH`` that changes the content of an *Active* offering/price/tariff creates a **new version** (new id,
  ``version`` "2.0", "3.0", ...; same lineage), returned by the PATCH. By default the new version is Active at
  once and the previous one becomes Retired (``validFor.endDateTime`` = now), so it can no longer be ordered but
  stays readable for the products that use it. With ``"lifecycleStatus": "In design"`` in the same PATCH the new
  version is a draft; the previous version stays Active until the draft is activated.
* References follow the new version: Active offerings using a superseded price (or bundles using a superseded
  offering, prices using a superseded tariff) get a new version themselves; drafts are updated in place; Retired
  ones keep pointing at what they were sold with.
* Retired and Obsolete versions are frozen (only their lifecycle moves on).
* ``GET /api/catalog/v1/{productOffering|productOfferingPrice|tariff}/{id}/versions`` lists a lineage.

Catalogs, categories and specifications are edited in place (their ``version`` is the caller's).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from openbss.catalog import repository, rules
from openbss.catalog.errors import ForbiddenTransition, InUse, InvalidBundle, NotOrderable, VersionFrozen
from openbss.catalog.lifecycle import (
    ACTIVE,
    CREATABLE,
    FROZEN,
    IN_DESIGN,
    OBSOLETE,
    RETIRED,
    TRANSITIONS,
    next_version,
    normalize_status,
)
from openbss.catalog.models import (
    Catalog,
    Category,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    ResourceSpecification,
    ServiceSpecification,
    Tariff,
)
from openbss.catalog.schemas import PRICE_EXTENSION
from openbss.catalog.tariff import CompiledTariff, compile_tariff, validate_tariff
from openbss.platform.db import utcnow
from openbss.platform.errors import BadRequest, Conflict
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.resource import (
    Context,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfResource,
    merge_patch,
)
from openbss.platform.tmf.spec import format_datetime

#: the tables of the catalog's resources, by path
TABLES: dict[str, type[TmfDocument]] = {
    "catalog": Catalog, "category": Category, "productSpecification": ProductSpecification,
    "productOffering": ProductOffering, "productOfferingPrice": ProductOfferingPrice, "tariff": Tariff,
    "serviceSpecification": ServiceSpecification, "resourceSpecification": ResourceSpecification,
}

#: who references whom: target path -> [(referrer path, attribute, attribute is an array of refs)]
REFERRERS: dict[str, list[tuple[str, str, bool]]] = {
    "productOfferingPrice": [("productOffering", "productOfferingPrice", True),
                             ("productOfferingPrice", "bundledPopRelationship", True),
                             ("productOfferingPrice", "popRelationship", True)],
    "tariff": [("productOfferingPrice", "tariff", False)],
    "productOffering": [("productOffering", "bundledProductOffering", True),
                        ("productOffering", "productOfferingRelationship", True),
                        ("category", "productOffering", True)],
    "productSpecification": [("productOffering", "productSpecification", False),
                             ("productSpecification", "bundledProductSpecification", True),
                             ("productSpecification", "productSpecificationRelationship", True)],
    "category": [("productOffering", "category", True), ("catalog", "category", True),
                 ("category", "subCategory", True)],
    "serviceSpecification": [("productSpecification", "serviceSpecification", True),
                             ("serviceSpecification", "serviceSpecRelationship", True)],
    "resourceSpecification": [("productSpecification", "resourceSpecification", True),
                              ("serviceSpecification", "resourceSpecification", True),
                              ("resourceSpecification", "resourceSpecRelationship", True)],
}
#: references that follow a new version (the others stay on what they name)
CASCADED = {("productOffering", "productOfferingPrice"), ("productOfferingPrice", "tariff"),
            ("productOffering", "bundledProductOffering"), ("category", "productOffering"),
            ("productOfferingPrice", "bundledPopRelationship")}


class SoldProducts(Protocol):
    """What the catalog asks before deleting an offering, a price or a product specification: how many live
    products (subscriptions) were sold with it. The product inventory answers."""

    async def live_products_using(self, ctx: Context, resource_type: str, resource_id: str) -> int: ...


# --- rules per resource ---------------------------------------------------------------------------------------
class CatalogRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = TRANSITIONS

    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        rules.check_valid_for(doc)


def _table(path: str) -> type[TmfDocument]:
    return TABLES[path]


class CatalogObjectRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        await rules.check_refs(ctx, _table("category"), "Category", rules.ref_list(doc, "category"))


class CategoryRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        parent = doc.get("parentId")
        if parent is not None:
            if parent == self_id:
                raise BadRequest("'parentId': a category cannot be its own parent", code="INVALID_CATEGORY")
            await rules.check_refs(ctx, _table("category"), "Category", [("parentId", {"id": parent})])
            cursor, seen = parent, set()
            while cursor and cursor not in seen:
                seen.add(cursor)
                body = (await repository.bodies_by_id(ctx.session, _table("category"), [cursor])).get(cursor, {})
                cursor = body.get("parentId")
                if cursor is not None and cursor == self_id:
                    raise BadRequest("'parentId': this would make the category its own ancestor",
                                     code="INVALID_CATEGORY")
        if doc.get("isRoot") and parent:
            raise BadRequest("'isRoot': a root category has no parentId", code="INVALID_CATEGORY")
        await rules.check_refs(ctx, _table("category"), "Category", rules.ref_list(doc, "subCategory"))
        await rules.check_refs(ctx, _table("productOffering"), "ProductOffering",
                               rules.ref_list(doc, "productOffering"))


class ProductSpecificationRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        rules.check_characteristics(doc.get("productSpecCharacteristic") or [], "productSpecCharacteristic",
                                    "productSpecCharacteristicValue")
        await rules.check_refs(ctx, _table("serviceSpecification"), "ServiceSpecification",
                               rules.ref_list(doc, "serviceSpecification"))
        await rules.check_refs(ctx, _table("resourceSpecification"), "ResourceSpecification",
                               rules.ref_list(doc, "resourceSpecification"))
        for attr in ("bundledProductSpecification", "productSpecificationRelationship"):
            refs = rules.ref_list(doc, attr)
            if self_id and any(r.get("id") == self_id for _, r in refs):
                raise InvalidBundle(f"'{attr}': a product specification cannot refer to itself")
            await rules.check_refs(ctx, _table("productSpecification"), "ProductSpecification", refs)


class ProductOfferingPriceRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        rules.check_price(doc)
        PRICE_EXTENSION.mark_if_extended(doc, ctx.base_url)
        if doc.get("priceType") not in ("discount", None) and not doc.get("isBundle") and not doc.get("tax"):
            doc["tax"] = [{"taxCategory": "standard"}]
        if doc.get("tariff"):
            found = await rules.check_refs(ctx, _table("tariff"), "Tariff", [("tariff", doc["tariff"])])
            tariff = found[doc["tariff"]["id"]]
            if doc.get("usageType") and doc["usageType"] != tariff.get("usageType"):
                raise rules.InvalidPrice(f"'tariff': tariff '{tariff.get('name')}' rates {tariff.get('usageType')}, "
                                         f"not {doc['usageType']}")
            doc.setdefault("usageType", tariff.get("usageType"))
            bands = {b.get("name") for b in tariff.get("timeBand") or []}
            for i, a in enumerate(doc.get("allowance") or []):
                for band in a.get("timeBand") or []:
                    if band not in bands:
                        raise rules.InvalidPrice(f"'allowance[{i}].timeBand': tariff '{tariff.get('name')}' has no "
                                                 f"time band '{band}' (it has {', '.join(sorted(bands)) or 'none'})")
        for attr in ("popRelationship", "bundledPopRelationship"):
            refs = rules.ref_list(doc, attr)
            if self_id and any(r.get("id") == self_id for _, r in refs):
                raise rules.InvalidPrice(f"'{attr}': a price cannot refer to itself")
            found = await rules.check_refs(ctx, _table("productOfferingPrice"), "ProductOfferingPrice", refs)
            if doc.get("lifecycleStatus") == ACTIVE and attr == "bundledPopRelationship":
                for path, ref in refs:
                    if found[ref["id"]].get("lifecycleStatus") != ACTIVE:
                        raise rules.InvalidPrice(f"'{path}.id': an Active price can only bundle Active prices")


class ProductOfferingRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        active = doc.get("lifecycleStatus") == ACTIVE
        spec_body = None
        if doc.get("productSpecification"):
            found = await rules.check_refs(ctx, _table("productSpecification"), "ProductSpecification",
                                           [("productSpecification", doc["productSpecification"])])
            spec_body = found[doc["productSpecification"]["id"]]
        rules.check_char_value_use(doc.get("prodSpecCharValueUse") or [], spec_body)
        price_refs = []
        for i, pop in enumerate(doc.get("productOfferingPrice") or []):
            if pop.get("id"):
                price_refs.append((f"productOfferingPrice[{i}]", pop))
            else:
                rules.check_price(pop, f"productOfferingPrice[{i}]")
                PRICE_EXTENSION.mark_if_extended(pop, ctx.base_url)
        prices = await rules.check_refs(ctx, _table("productOfferingPrice"), "ProductOfferingPrice", price_refs)
        if active:
            for path, ref in price_refs:
                status = prices[ref["id"]].get("lifecycleStatus")
                if status != ACTIVE:
                    raise rules.InvalidPrice(f"'{path}.id': price '{prices[ref['id']].get('name')}' is {status}; "
                                             f"an Active offering uses Active prices")
        rules.check_bundle_options(doc)
        children = rules.ref_list(doc, "bundledProductOffering")
        found_children = await rules.check_refs(ctx, _table("productOffering"), "ProductOffering", children)
        await rules.check_no_bundle_cycle(ctx, _table("productOffering"), self_id, [r["id"] for _, r in children])
        if active:
            for path, ref in children:
                status = found_children[ref["id"]].get("lifecycleStatus")
                if status != ACTIVE:
                    raise InvalidBundle(f"'{path}.id': offering '{found_children[ref['id']].get('name')}' is "
                                        f"{status}; an Active bundle contains Active offerings")
        await rules.check_refs(ctx, _table("category"), "Category", rules.ref_list(doc, "category"))
        await rules.check_refs(ctx, _table("productOffering"), "ProductOffering",
                               rules.ref_list(doc, "productOfferingRelationship"))
        for i, term in enumerate(doc.get("productOfferingTerm") or []):
            d = term.get("duration")
            if d is not None and (not d.get("amount") or d["amount"] < 1 or d.get("units") not in rules.PERIODS):
                raise BadRequest(f"'productOfferingTerm[{i}].duration': a positive amount of "
                                 f"{', '.join(rules.PERIODS)} is required", code="INVALID_TERM")


class TariffRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        validate_tariff(doc)


SERVICE_SPEC_TYPES = ("CustomerFacingServiceSpecification", "ResourceFacingServiceSpecification",
                      "ServiceSpecification")
RESOURCE_SPEC_TYPES = ("LogicalResourceSpecification", "PhysicalResourceSpecification", "ResourceSpecification")


class ServiceSpecificationRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        if doc.get("@type") not in SERVICE_SPEC_TYPES:
            raise BadRequest(f"'@type': '{doc.get('@type')}' is not one of {', '.join(SERVICE_SPEC_TYPES)}",
                             code="INVALID_TYPE")
        rules.check_characteristics(doc.get("serviceSpecCharacteristic") or [], "serviceSpecCharacteristic",
                                    "characteristicValueSpecification")
        refs = rules.ref_list(doc, "serviceSpecRelationship")
        if self_id and any(r.get("id") == self_id for _, r in refs):
            raise BadRequest("'serviceSpecRelationship': a specification cannot relate to itself",
                             code="INVALID_RELATIONSHIP")
        await rules.check_refs(ctx, _table("serviceSpecification"), "ServiceSpecification", refs)
        await rules.check_refs(ctx, _table("resourceSpecification"), "ResourceSpecification",
                               rules.ref_list(doc, "resourceSpecification"))


class ResourceSpecificationRules(CatalogRules):
    async def validate(self, ctx: Context, doc: dict[str, Any], self_id: str | None) -> None:
        await super().validate(ctx, doc, self_id)
        if doc.get("@type") not in RESOURCE_SPEC_TYPES:
            raise BadRequest(f"'@type': '{doc.get('@type')}' is not one of {', '.join(RESOURCE_SPEC_TYPES)}",
                             code="INVALID_TYPE")
        rules.check_characteristics(doc.get("resourceSpecCharacteristic") or [], "resourceSpecCharacteristic",
                                    "characteristicValueSpecification")
        refs = rules.ref_list(doc, "resourceSpecRelationship")
        if self_id and any(r.get("id") == self_id for _, r in refs):
            raise BadRequest("'resourceSpecRelationship': a specification cannot relate to itself",
                             code="INVALID_RELATIONSHIP")
        await rules.check_refs(ctx, _table("resourceSpecification"), "ResourceSpecification", refs)


# --- the service of one catalog resource -------------------------------------------------------------------
_IGNORED_FOR_CONTENT = ("lifecycleStatus", "statusReason", "lastUpdate", "id", "href")


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _IGNORED_FOR_CONTENT}


def rewrite_ref(body: dict[str, Any], attr: str, old_id: str, new_ref: dict[str, Any], many: bool) -> dict[str, Any]:
    out = dict(body)

    def swap(ref: dict[str, Any]) -> dict[str, Any]:
        if ref.get("id") != old_id:
            return ref
        updated = dict(ref, id=new_ref["id"], href=new_ref["href"])
        for key in ("name", "version"):
            if key in ref and new_ref.get(key) is not None:
                updated[key] = new_ref[key]
        return updated

    out[attr] = [swap(r) for r in body.get(attr) or []] if many else swap(body[attr])
    return out


class CatalogService(ResourceService):
    """A catalog resource: the kit's CRUD plus lifecycle, versions, reference integrity and events.

    ``siblings`` are the catalog's services by path (the same mapping for all of them, filled by the domain's
    wiring): a new version makes the objects referring to the old one follow it, and deletion checks referrers.
    ``models``: the (create, update) models with OpenBSS extension attributes, where the resource has them."""

    def __init__(self, api: TmfApi, resource: TmfResource, *, siblings: Mapping[str, CatalogService],
                 sold: SoldProducts, models: tuple[type[BaseModel], type[BaseModel]] | None = None) -> None:
        super().__init__(api, resource)
        if models:
            self.create_model, self.update_model = models
        assert isinstance(resource.hooks, CatalogRules), f"{resource.type} needs CatalogRules"
        self.rules: CatalogRules = resource.hooks
        self.versioned = hasattr(resource.table, "lineage_id")
        self.siblings = siblings
        self.sold = sold

    @property
    def state_field(self) -> str:
        return self.resource.state_field or "lifecycleStatus"

    def shape(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The document as the specification (plus extensions) types it."""
        keep = {k: doc[k] for k in ("lastUpdate",) if k in doc}
        candidate = {k: v for k, v in doc.items() if k not in ("id", "href", "lastUpdate")}
        try:
            shaped: dict[str, Any] = self.create_model.model_validate(candidate).to_doc()  # type: ignore[attr-defined]
        except ValidationError as exc:
            raise BadRequest(validation_message(exc), code="INVALID_BODY") from exc
        return {**shaped, **keep}

    # --- create -------------------------------------------------------------------------------------------
    async def create(self, ctx: Context, doc: dict[str, Any], *, any_status: bool = False,
                     lineage_id: str | None = None) -> dict[str, Any]:
        r = self.resource
        doc = dict(doc)
        doc.setdefault("@type", r.type)
        sf = self.state_field
        status = normalize_status(doc.get(sf, IN_DESIGN))
        if not any_status and status not in CREATABLE:
            raise ForbiddenTransition(f"a new {r.type} starts {', '.join(CREATABLE)}, not {status}")
        doc[sf] = status
        doc.setdefault("version", "1.0")
        doc["lastUpdate"] = format_datetime(utcnow())
        await self.rules.validate(ctx, doc, None)
        resource_id = r.id_factory()
        doc["id"] = resource_id
        rendered = await self.record(ctx, doc, columns={"lineage_id": lineage_id or resource_id}
                                     if self.versioned else None)
        if status == ACTIVE and lineage_id is not None:
            await self._activated(ctx, resource_id, lineage_id, doc)
        return rendered

    # --- patch ------------------------------------------------------------------------------------------------
    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        sf = self.state_field
        changes = dict(changes)
        if changes.get(sf) is not None:
            changes[sf] = normalize_status(changes[sf])
        row = await self.store.get(ctx, resource_id, for_update=True)
        current = dict(row.body)
        merged = self.shape(merge_patch(current, changes))
        old, new = current.get(sf), merged.get(sf)
        content_changed = _content(merged) != _content(self.shape(current))
        if content_changed and old in FROZEN:
            if not self.versioned:
                if old in (RETIRED, OBSOLETE):
                    raise VersionFrozen(f"{self.resource.type} '{resource_id}' is {old}: it can no longer change")
            elif old != ACTIVE:
                raise VersionFrozen(f"{self.resource.type} '{resource_id}' is {old}: its content is frozen "
                                    f"(products sold with it keep it); change the Active version instead")
            else:
                target = changes.get(sf) or ACTIVE
                if target not in CREATABLE:
                    raise ForbiddenTransition(
                        f"changing an Active {self.resource.type} creates a new version, which starts "
                        f"{', '.join(CREATABLE)}, not {target}; retire it without other changes")
                return await self.new_version(ctx, row, merged, target, explicit_version=changes.get("version"),
                                              explicit_start="startDateTime" in (changes.get("validFor") or {}))
        if old != new:
            self.check_transition(old, new)
        return await self._replace(ctx, row, merged, old_state=old)

    def check_transition(self, old: Any, new: Any) -> None:
        if old is None:
            return
        allowed = TRANSITIONS.get(old, set())
        if new not in allowed:
            raise ForbiddenTransition(
                f"{self.resource.type} cannot go from '{old}' to '{new}' "
                f"(allowed from {old}: {', '.join(sorted(allowed)) or 'none'})")

    async def _replace(self, ctx: Context, row: Any, merged: dict[str, Any], *, old_state: Any = None,
                       validate: bool = True) -> dict[str, Any]:
        """Write ``merged`` as the new document of ``row`` (a locked row of this resource), unless its content and
        state did not change."""
        sf = self.state_field
        current = dict(row.body)
        old_state = current.get(sf) if old_state is None else old_state
        merged = dict(merged)
        merged["id"] = row.id
        if validate:
            await self.rules.validate(ctx, merged, row.id)
        if merged.get(sf) == old_state and _content(self.shape(merged)) == _content(self.shape(current)):
            return await self.store.render(ctx, row)

        def replace(doc: dict[str, Any]) -> None:
            doc.clear()
            doc.update(merged)

        rendered = await self.change(ctx, row.id, replace)
        if merged.get(sf) != old_state and merged.get(sf) == ACTIVE and self.versioned:
            await self._activated(ctx, row.id, row.lineage_id or row.id, merged)
        return rendered

    # --- versions -----------------------------------------------------------------------------------------------
    async def new_version(self, ctx: Context, row: Any, merged: dict[str, Any], status: str, *,
                          explicit_version: str | None = None, explicit_start: bool = False) -> dict[str, Any]:
        lineage = row.lineage_id or row.id
        versions = [r.body.get("version") for r in await repository.lineage_rows(ctx.session, self.resource.table,
                                                                                 lineage)]
        doc = {k: v for k, v in merged.items() if k not in ("id", "href", "lastUpdate")}
        if explicit_version is not None and explicit_version != row.body.get("version"):
            if explicit_version in versions:
                raise Conflict(f"{self.resource.type} version '{explicit_version}' already exists",
                               code="VERSION_EXISTS")
            doc["version"] = explicit_version
        else:
            doc["version"] = next_version([str(v) for v in versions])
        doc[self.state_field] = status
        if status == ACTIVE and not explicit_start:
            doc["validFor"] = {**(doc.get("validFor") or {}), "startDateTime": format_datetime(utcnow())}
            end = doc["validFor"].get("endDateTime")
            if end and end <= doc["validFor"]["startDateTime"]:
                doc["validFor"].pop("endDateTime")
        return await self.create(ctx, doc, any_status=True, lineage_id=lineage)

    async def _activated(self, ctx: Context, version_id: str, lineage_id: str, doc: dict[str, Any]) -> None:
        """A version became Active: the lineage's previous Active version retires, references follow."""
        if not self.versioned:
            return
        now = format_datetime(utcnow())
        start = (doc.get("validFor") or {}).get("startDateTime")
        at = start if start and start <= now else now
        for other in await repository.lineage_rows(ctx.session, self.resource.table, lineage_id, for_update=True):
            if other.id != version_id and other.body.get(self.state_field) == ACTIVE:
                await self.retire(ctx, other, at=at)
                await self._cascade(ctx, other.id, version_id, doc)

    async def retire(self, ctx: Context, row: Any, *, at: str | None = None) -> dict[str, Any]:
        """Retire a version (no longer orderable, still supported), its validity ending ``at`` (default now)."""
        body = dict(row.body)
        now = at or format_datetime(utcnow())
        body[self.state_field] = RETIRED
        vf = dict(body.get("validFor") or {})
        if not vf.get("endDateTime") or vf["endDateTime"] > now:
            vf["endDateTime"] = now
        if vf.get("startDateTime") and vf["startDateTime"] >= vf["endDateTime"]:
            vf["startDateTime"] = vf["endDateTime"]
            vf.pop("endDateTime")
        body["validFor"] = vf
        return await self._replace(ctx, row, body, validate=False)

    async def _cascade(self, ctx: Context, old_id: str, new_id: str, new_doc: dict[str, Any]) -> None:
        new_ref = {"id": new_id, "href": self.store.href(ctx.base_url, new_id),
                   "name": new_doc.get("name"), "version": new_doc.get("version")}
        for path, attr, many in REFERRERS.get(self.resource.path, []):
            if (path, attr) not in CASCADED or path not in self.siblings:
                continue
            referrer = self.siblings[path]
            for ref_row in await repository.referencing(ctx.session, referrer.resource.table, attr, old_id,
                                                        many=many, for_update=True):
                status = ref_row.body.get("lifecycleStatus")
                if status in (RETIRED, OBSOLETE) or ref_row.id == new_id:
                    continue
                body = rewrite_ref(ref_row.body, attr, old_id, new_ref, many)
                if referrer.versioned and status == ACTIVE:
                    await referrer.new_version(ctx, ref_row, body, ACTIVE)
                else:
                    await referrer._replace(ctx, ref_row, body)

    async def versions(self, ctx: Context, resource_id: str) -> list[dict[str, Any]]:
        row = await self.store.get(ctx, resource_id)
        if not self.versioned:
            return [await self.store.render(ctx, row)]
        rows = await repository.lineage_rows(ctx.session, self.resource.table,
                                             getattr(row, "lineage_id", None) or row.id)
        return await self.store.render_all(ctx, rows)

    # --- delete ---------------------------------------------------------------------------------------------------
    async def delete(self, ctx: Context, resource_id: str) -> None:
        r = self.resource
        row = await self.store.get(ctx, resource_id, for_update=True)
        status = row.body.get(self.state_field)
        if self.versioned and status == ACTIVE:
            raise Conflict(f"{r.type} '{resource_id}' is Active: retire it (lifecycleStatus Retired) instead of "
                           f"deleting it", code="RETIRE_FIRST")
        await self.check_unused(ctx, row)
        await super().delete(ctx, resource_id)

    async def check_unused(self, ctx: Context, row: Any) -> None:
        r = self.resource
        for path, attr, many in REFERRERS.get(r.path, []):
            if path not in self.siblings:
                continue
            referrer = self.siblings[path]
            users = [u for u in await repository.referencing(ctx.session, referrer.resource.table, attr, row.id,
                                                             many=many) if u.id != row.id]
            if users:
                u = users[0]
                raise InUse(f"{r.type} '{row.id}' is used by {referrer.resource.type} '{u.body.get('name')}' "
                            f"({u.id}, {attr}); it cannot be deleted"
                            f"{', only retired' if self.versioned else ''}")
        if r.path == "category":
            children = await repository.referencing_value(ctx.session, r.table, "parentId", row.id)
            if children:
                raise InUse(f"Category '{row.id}' is the parent of category '{children[0].body.get('name')}'")
        live = await self.sold.live_products_using(ctx, r.type, row.id)
        if live:
            raise InUse(f"{live} live product(s) use {r.type} '{row.id}': it cannot be deleted, only retired")


# --- what other domains call -------------------------------------------------------------------------------------
class ProductCatalog:
    """The catalog's public operations for ordering, inventory, charging, rating and billing."""

    def __init__(self, services: Mapping[str, CatalogService]) -> None:
        self.services = services

    def get_service(self, path: str) -> CatalogService:
        return self.services[path]

    async def get_offering(self, ctx: Context, offering_id: str) -> dict[str, Any]:
        """Any version, including Retired ones (what a sold product refers to)."""
        return await self.services["productOffering"].get(ctx, offering_id)

    async def get_price(self, ctx: Context, price_id: str) -> dict[str, Any]:
        return await self.services["productOfferingPrice"].get(ctx, price_id)

    async def get_usable_price(self, ctx: Context, price_id: str) -> dict[str, Any]:
        """A price about to be used (ordered, quoted, rated, charged): TMF620 lets a price be written with only its
        name, so its completeness is checked here, when it is used. Raises ``PriceNotUsable`` (422) naming the price
        and what it lacks."""
        price = await self.get_price(ctx, price_id)
        rules.check_usable_price(price)
        return price

    async def get_product_specification(self, ctx: Context, spec_id: str) -> dict[str, Any]:
        return await self.services["productSpecification"].get(ctx, spec_id)

    async def compiled_tariff(self, ctx: Context, tariff_id: str) -> CompiledTariff:
        return compile_tariff(await self.services["tariff"].get(ctx, tariff_id))

    async def tariff_versions(self, ctx: Context, tariff_id: str) -> list[str]:
        """The ids of every version of the tariff's lineage (the tariff itself included)."""
        return [doc["id"] for doc in await self.services["tariff"].versions(ctx, tariff_id)]

    async def orderability(self, ctx: Context, offering_id: str, *, at: datetime | None = None,
                           channel: str | None = None, market_segment: str | None = None) -> list[str]:
        """Why the offering cannot be ordered now through ``channel`` by a customer of ``market_segment``
        (empty when it can)."""
        offering = await self.get_offering(ctx, offering_id)
        moment = format_datetime(at or utcnow())
        reasons: list[str] = []
        status = offering.get("lifecycleStatus")
        if status != ACTIVE:
            reasons.append(f"lifecycleStatus is {status}; only Active offerings can be ordered")
        if offering.get("isSellable") is False:
            reasons.append("not sellable on its own (only within a bundle)")
        vf = offering.get("validFor") or {}
        if vf.get("startDateTime") and vf["startDateTime"] > moment:
            reasons.append(f"not valid before {vf['startDateTime']}")
        if vf.get("endDateTime") and vf["endDateTime"] <= moment:
            reasons.append(f"no longer valid since {vf['endDateTime']}")
        for attr, value, label in (("channel", channel, "sales channel"),
                                   ("marketSegment", market_segment, "customer segment")):
            allowed = [c.get("id") for c in offering.get(attr) or []]
            if value is not None and allowed and value not in allowed:
                reasons.append(f"not offered to {label} '{value}' (only {', '.join(map(str, allowed))})")
        children = [b["id"] for b in offering.get("bundledProductOffering") or []]
        if children:
            bodies = await repository.bodies_by_id(ctx.session, TABLES["productOffering"], children)
            for cid in children:
                if bodies.get(cid, {}).get("lifecycleStatus") != ACTIVE:
                    reasons.append(f"bundled offering '{bodies.get(cid, {}).get('name', cid)}' is not Active")
        return reasons

    async def check_orderable(self, ctx: Context, offering_id: str, *, at: datetime | None = None,
                              channel: str | None = None, market_segment: str | None = None) -> dict[str, Any]:
        reasons = await self.orderability(ctx, offering_id, at=at, channel=channel, market_segment=market_segment)
        if reasons:
            raise NotOrderable(f"ProductOffering '{offering_id}' cannot be ordered: {'; '.join(reasons)}")
        return await self.get_offering(ctx, offering_id)

    async def orderable_offerings(self, ctx: Context, *, at: datetime | None = None, channel: str | None = None,
                                  market_segment: str | None = None, offset: int = 0, limit: int = 100,
                                  ) -> tuple[list[dict[str, Any]], int]:
        svc = self.services["productOffering"]
        rows, total = await repository.orderable_offerings(ctx.session, format_datetime(at or utcnow()), channel,
                                                           market_segment, offset, limit)
        return await svc.store.render_all(ctx, list[Any](rows)), total

    async def check_characteristic_values(self, ctx: Context, offering_id: str,
                                          values: list[tuple[str, Any]]) -> None:
        """Characteristic values chosen when ordering: unknown names or values not allowed are refused (400)."""
        offering = await self.get_offering(ctx, offering_id)
        ref = offering.get("productSpecification")
        if not ref:
            if values:
                raise rules.InvalidCharacteristic(f"offering '{offering.get('name')}' has no characteristics")
            return
        spec = await self.get_product_specification(ctx, ref["id"])
        uses = {u.get("name"): u for u in offering.get("prodSpecCharValueUse") or []}
        rules.check_characteristic_values(values, spec)
        for name, value in values:
            use = uses.get(name)
            if use and use.get("productSpecCharacteristicValue"):
                restricted = {"valueType": None,
                              "productSpecCharacteristicValue": use["productSpecCharacteristicValue"]}
                if not rules.allowed_value(value, restricted):
                    raise rules.InvalidCharacteristic(
                        f"{value!r} is not offered for characteristic '{name}' by '{offering.get('name')}'")

    async def decomposition(self, ctx: Context, product_spec_id: str) -> dict[str, Any]:
        """What the OSS builds for a product: its customer-facing services, the resource-facing services they
        rely on, and the resources each needs."""
        ps = await self.get_product_specification(ctx, product_spec_id)
        services, resources = self.services["serviceSpecification"], self.services["resourceSpecification"]

        def ref(body: dict[str, Any], href: str) -> dict[str, Any]:
            return {k: body[k] for k in ("id", "name", "version", "@type") if k in body} | {"href": href}

        async def resource_nodes(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            bodies = await repository.bodies_by_id(ctx.session, resources.resource.table, [r["id"] for r in refs])
            return [ref(bodies[r["id"]], resources.store.href(ctx.base_url, r["id"])) for r in refs
                    if r["id"] in bodies]

        async def service_nodes(refs: list[dict[str, Any]], seen: frozenset[str]) -> list[dict[str, Any]]:
            ids = [r["id"] for r in refs if r["id"] not in seen]
            bodies = await repository.bodies_by_id(ctx.session, services.resource.table, ids)
            out = []
            for sid in ids:
                if sid not in bodies:
                    continue
                body = bodies[sid]
                node = ref(body, services.store.href(ctx.base_url, sid))
                node["resourceSpecification"] = await resource_nodes(body.get("resourceSpecification") or [])
                node["serviceSpecification"] = await service_nodes(body.get("serviceSpecRelationship") or [],
                                                                   seen | {sid})
                out.append(node)
            return out

        return {
            "productSpecification": ref(ps, ps["href"]),
            "serviceSpecification": await service_nodes(ps.get("serviceSpecification") or [], frozenset()),
            "resourceSpecification": await resource_nodes(ps.get("resourceSpecification") or []),
        }

"""Personal data: encryption at rest of a resource's personal attributes, their blind index, and the registry
through which domains contribute to the customer 360 view, to GDPR exports and erasures, and to the checks that
refuse them (open balance, active product) — without editing each other. The registry is built once per process
by the composition root (``openbss.services``), which adds each domain's contributions.

``PersonalDataCodec`` is the TMF kit's ``DocumentCodec`` for resources holding personal data. It is declared with
dotted paths (arrays crossed transparently, like list filters):

* ``personal``: values sealed with the tenant's data key (``platform/crypto.py``); the rest of the document stays
  plain JSON, so ordinary filters, owner scoping and the GIN index keep working on it.
* ``indexed``: personal paths that can be searched by exact value (normalized: case, accents, phone punctuation)
  through keyed digests in ``personal_data_index``; ``prefix`` ones also by the prefixes (2..12 characters) of
  each word, for name search. Filters and sorts on other personal paths are refused with 400 naming them.
* ``unique``: values that must be unique per tenant (external ids); a duplicate is refused with 409.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

import copy
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    and_,
    delete,
    false,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, aliased, mapped_column

from openbss.platform import audit
from openbss.platform.auth import Principal
from openbss.platform.crypto import (
    DATA,
    EncryptedTable,
    KeyService,
    aad_for,
    blind_digest,
    is_sealed,
    key_service,
    seal,
    sealed_key_id,
    unseal,
)
from openbss.platform.db import TENANT_GUC, Base, TenantScoped, utcnow
from openbss.platform.errors import BadRequest, Conflict, Forbidden, NotFound
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import Context, DocumentCodec, TmfDocument, TmfJSONResponse, unit_of_work
from openbss.platform.tmf.spec import format_datetime
from openbss.settings import Settings

PREFIX_MIN, PREFIX_MAX = 2, 12
ERASED = "[erased]"


class PersonalDataIndex(TenantScoped, Base):
    """Keyed digests of searchable personal values (never the values)."""

    __tablename__ = "personal_data_index"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "resource", "attribute", "digest", "resource_id"),
        Index("ix_personal_data_index_owner", "tenant_id", "resource", "resource_id"),
        Index("uq_personal_data_index_unique", "tenant_id", "resource", "attribute", "digest", unique=True,
              postgresql_where=text("is_unique")),
    )

    # the tenant leads the primary key; no separate tenant index on this large table
    tenant_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("tenant.id"), server_default=text(f"current_setting('{TENANT_GUC}', true)"))
    resource: Mapped[str] = mapped_column(String(40))
    attribute: Mapped[str] = mapped_column(String(40))
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    resource_id: Mapped[str] = mapped_column(String(64))
    is_unique: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# --- normalization -------------------------------------------------------------------------------------------
def normalize_name(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain.casefold()).split())


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    v = re.sub(r"[\s\-().]", "", value.strip())
    if v.startswith("00"):
        v = "+" + v[2:]
    return v


def normalize_identifier(value: str) -> str:
    return re.sub(r"[\s\-./]", "", value.strip()).upper()


def normalize_exact(value: str) -> str:
    return value.strip()


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "name": normalize_name, "email": normalize_email, "phone": normalize_phone,
    "identifier": normalize_identifier, "exact": normalize_exact,
}


def name_prefixes(normalized: str) -> set[str]:
    out: set[str] = set()
    for word in normalized.split():
        for n in range(PREFIX_MIN, min(len(word), PREFIX_MAX) + 1):
            out.add(word[:n])
    return out


def query_prefixes(raw: str) -> list[str]:
    """The indexed prefix of each word of a name query (words longer than the indexed prefixes are cut)."""
    return [w[:PREFIX_MAX] for w in normalize_name(raw).split() if len(w) >= PREFIX_MIN]


@dataclass(frozen=True)
class Searchable:
    attribute: str  # short name in the index, e.g. "email"
    kind: str = "exact"  # a NORMALIZERS key
    prefix: bool = False  # also index word prefixes (attribute + "*")


# --- paths ---------------------------------------------------------------------------------------------------
def values_at(doc: Any, parts: list[str]) -> list[Any]:
    current = [doc]
    for part in parts:
        nxt: list[Any] = []
        for item in current:
            for it in item if isinstance(item, list) else [item]:
                if isinstance(it, dict) and it.get(part) is not None:
                    nxt.append(it[part])
        current = nxt
    flat: list[Any] = []
    for item in current:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


def transform_at(doc: Any, parts: list[str], fn: Callable[[Any], Any]) -> None:
    """Apply ``fn`` in place to the value(s) at a dotted path (lists crossed)."""
    items = doc if isinstance(doc, list) else [doc]
    for it in items:
        if not isinstance(it, dict) or it.get(parts[0]) is None:
            continue
        if len(parts) == 1:
            it[parts[0]] = fn(it[parts[0]])
        else:
            transform_at(it[parts[0]], parts[1:], fn)


def _walk(value: Any, fn: Callable[[str], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    if is_sealed(value):
        return fn(value)
    return value


def _reject_tokens(value: Any, path: str = "") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _reject_tokens(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _reject_tokens(v, f"{path}[{i}]")
    elif is_sealed(value):
        raise BadRequest(f"'{path}': values starting with 'pii:1:' are reserved", code="INVALID_BODY")


UniqueExtractor = Callable[[dict[str, Any]], list[tuple[str, str, str]]]  # -> (attribute, value, field label)


# --- the codec -----------------------------------------------------------------------------------------------
class PersonalDataCodec(DocumentCodec):
    def __init__(self, resource_type: str, table: type[TmfDocument], personal: tuple[str, ...],
                 indexed: dict[str, Searchable] | None = None, unique: UniqueExtractor | None = None,
                 keys: Callable[[], KeyService] = key_service) -> None:
        self.resource_type = resource_type
        self.table = table
        self.personal = tuple(dict.fromkeys(personal))
        self.indexed = indexed or {}
        self.unique = unique
        self._keys = keys
        self._roots = {p.split(".")[0] for p in self.personal}

    def with_personal(self, extra: Sequence[str]) -> "PersonalDataCodec":
        """This codec with more attributes treated as personal data (an operator's ``OPENBSS_PII_ATTRIBUTES``)."""
        if not extra or set(extra) <= set(self.personal):
            return self
        other = copy.copy(self)
        other.personal = tuple(dict.fromkeys((*self.personal, *extra)))
        other._roots = {p.split(".")[0] for p in other.personal}
        return other

    # which attributes are personal
    def encrypted_path(self, path: str) -> bool:
        return any(path == p or path.startswith(p + ".") for p in self.personal)

    def is_personal(self, attribute: str) -> bool:
        return attribute in self._roots

    def sortable(self, path: str) -> bool:
        return not self.encrypted_path(path)

    # write
    async def encode(self, ctx: Context, resource_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        _reject_tokens(doc)
        tenant = ctx.principal.tenant_id
        keys = self._keys()
        key_id, key = await keys.active(ctx.session, tenant, DATA)
        aad = aad_for(tenant, self.resource_type, resource_id)
        stored = copy.deepcopy(doc)
        for path in self.personal:
            transform_at(stored, path.split("."), lambda v: seal(key_id, key, v, aad))
        await self.reindex(ctx, resource_id, doc)
        return stored

    def index_entries(self, doc: dict[str, Any]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for path, spec in self.indexed.items():
            for value in values_at(doc, path.split(".")):
                if not isinstance(value, str):
                    continue
                norm = NORMALIZERS[spec.kind](value)
                if not norm:
                    continue
                out.add((spec.attribute, norm))
                if spec.prefix:
                    out |= {(spec.attribute + "*", p) for p in name_prefixes(norm)}
        return out

    async def reindex(self, ctx: Context, resource_id: str, doc: dict[str, Any]) -> None:
        tenant = ctx.principal.tenant_id
        index_key = await self._keys().index_key(ctx.session, tenant)
        await self.forget(ctx, resource_id)
        rows = [
            {"tenant_id": tenant, "resource": self.resource_type, "attribute": attr, "resource_id": resource_id,
             "digest": blind_digest(index_key, self.resource_type, attr, norm), "is_unique": False}
            for attr, norm in sorted(self.index_entries(doc))
        ]
        if rows:
            await ctx.session.execute(insert(PersonalDataIndex).values(rows).on_conflict_do_nothing())
        for attr, value, label in (self.unique(doc) if self.unique else []):
            digest = blind_digest(index_key, self.resource_type, attr, value)
            got = await ctx.session.execute(
                insert(PersonalDataIndex)
                .values(tenant_id=tenant, resource=self.resource_type, attribute=attr, digest=digest,
                        resource_id=resource_id, is_unique=True)
                .on_conflict_do_nothing(index_elements=["tenant_id", "resource", "attribute", "digest"],
                                        index_where=text("is_unique"))
                .returning(PersonalDataIndex.resource_id)
            )
            if got.first() is None:
                raise Conflict(f"'{label}': '{value}' is already used by another {self.resource_type}",
                               code="DUPLICATE_EXTERNAL_ID")

    async def forget(self, ctx: Context, resource_id: str) -> None:
        await ctx.session.execute(delete(PersonalDataIndex).where(
            PersonalDataIndex.resource == self.resource_type, PersonalDataIndex.resource_id == resource_id))

    # read
    async def decode(self, ctx: Context, rows: list[TmfDocument]) -> list[dict[str, Any]]:
        tenant = ctx.principal.tenant_id
        keys = self._keys()
        out: list[dict[str, Any]] = []
        for row in rows:
            tokens: dict[str, Any] = {}
            _collect(row.body, tokens)
            if not tokens:
                out.append(row.body)
                continue
            aad = aad_for(tenant, self.resource_type, row.id)
            for tok in tokens:
                tokens[tok] = unseal(await keys.data_key(ctx.session, tenant, sealed_key_id(tok)), tok, aad)
            out.append(_walk(row.body, tokens.__getitem__))
        return out

    # search
    async def digests(self, ctx: Context, attribute: str, values: list[str]) -> list[bytes]:
        key = await self._keys().index_key(ctx.session, ctx.principal.tenant_id)
        return [blind_digest(key, self.resource_type, attribute, v) for v in values]

    async def matching_ids(self, ctx: Context, attribute: str, normalized: list[str]) -> Any:
        """A subquery of the ids whose ``attribute`` has one of the normalized values."""
        return select(PersonalDataIndex.resource_id).where(
            PersonalDataIndex.resource == self.resource_type, PersonalDataIndex.attribute == attribute,
            PersonalDataIndex.digest.in_(await self.digests(ctx, attribute, normalized)))

    async def filter_condition(self, ctx: Context, flt: Any, table: Any) -> Any | None:
        spec = self.indexed.get(flt.path)
        if spec is not None:
            if flt.op != "eq":
                raise BadRequest(f"filter '{flt.path}.{flt.op}': '{flt.path}' is stored encrypted and supports "
                                 "exact match only", code="INVALID_FILTER")
            norm = [NORMALIZERS[spec.kind](str(v)) for v in flt.values]
            return table.id.in_(await self.matching_ids(ctx, spec.attribute, norm))
        if self.encrypted_path(flt.path):
            searchable = ", ".join(sorted(self.indexed)) or "none"
            raise BadRequest(f"cannot filter by '{flt.path}': it is stored encrypted and not searchable "
                             f"(searchable personal attributes: {searchable})", code="INVALID_FILTER")
        return None


def _collect(value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _collect(v, out)
    elif isinstance(value, list):
        for v in value:
            _collect(v, out)
    elif is_sealed(value):
        out[value] = None


async def prefix_match(ctx: Context, codec: PersonalDataCodec, attribute: str, query: str) -> Any:
    """A query of the ids whose ``attribute`` has a word starting with each word of ``query`` (AND).

    One index range per word, joined on the id: the planner drives from the rarest prefix (the digests' statistics
    tell it which) and probes the others through the primary key."""
    words = list(dict.fromkeys(query_prefixes(query)))
    if not words:
        raise BadRequest(f"'{attribute}': give at least {PREFIX_MIN} characters", code="INVALID_QUERY")
    digests = await codec.digests(ctx, attribute + "*", words)
    tables = [aliased(PersonalDataIndex) for _ in words]
    first = tables[0]
    stmt = select(first.resource_id).where(first.resource == codec.resource_type,
                                           first.attribute == attribute + "*", first.digest == digests[0])
    for t, digest in zip(tables[1:], digests[1:], strict=True):
        stmt = stmt.join(t, and_(t.resource == codec.resource_type, t.attribute == attribute + "*",
                                 t.digest == digest, t.resource_id == first.resource_id))
    return stmt


# --- what the composition root configures --------------------------------------------------------------------
def configured(codec: DocumentCodec, settings: Settings) -> DocumentCodec:
    """A resource's codec with the operator's extra personal attributes for its resource type."""
    if isinstance(codec, PersonalDataCodec):
        return codec.with_personal(settings.pii_attributes.get(codec.resource_type, ()))
    return codec


def encrypted_tables(resources: Iterable[Any]) -> list[EncryptedTable]:
    """The tables holding sealed values (for key rotation), from the declared TMF resources."""
    out: dict[str, EncryptedTable] = {}
    for r in resources:
        if isinstance(r.codec, PersonalDataCodec):
            out.setdefault(r.table.__tablename__, EncryptedTable(r.table, r.codec.resource_type))
    return list(out.values())


# --- the registry of the domains' contributions --------------------------------------------------------------
PartyFn = Callable[[Context, str], Awaitable[Any]]
Customer360Provider = Callable[[Context, dict[str, Any]], Awaitable[Any]]


class ErasureRefused(Conflict):
    code = "ERASURE_REFUSED"


@dataclass
class PersonalDataRegistry:
    """What each domain holds on a party, built by the composition root: sections of the customer 360 view,
    GDPR exporters and erasers, and the guards that refuse an erasure (open balance, active product)."""

    customer_views: dict[str, Customer360Provider] = field(default_factory=dict)
    exporters: dict[str, PartyFn] = field(default_factory=dict)
    erasure_guards: dict[str, PartyFn] = field(default_factory=dict)
    erasers: list[tuple[int, str, PartyFn]] = field(default_factory=list)

    def add_customer_view(self, name: str, provider: Customer360Provider) -> None:
        """A section of the customer 360 view: ``await provider(ctx, customer)`` -> JSON (e.g. "products")."""
        self.customer_views[name] = provider

    def add_exporter(self, name: str, exporter: PartyFn) -> None:
        """A section of a party's GDPR export: ``await exporter(ctx, party_id)`` -> JSON, or None/[] when empty."""
        self.exporters[name] = exporter

    def add_erasure_guard(self, name: str, guard: PartyFn) -> None:
        """``await guard(ctx, party_id)`` -> a reason to refuse erasure (e.g. "active product"), or None."""
        self.erasure_guards[name] = guard

    def add_eraser(self, name: str, eraser: PartyFn, order: int = 100) -> None:
        """``await eraser(ctx, party_id)`` anonymizes the domain's personal data of the party (financial records
        stay); returns the number of records changed. Lower ``order`` runs first."""
        self.erasers = sorted([e for e in self.erasers if e[1] != name] + [(order, name, eraser)])

    async def customer_sections(self, ctx: Context, customer: dict[str, Any]) -> dict[str, Any]:
        return {name: await provider(ctx, customer) for name, provider in self.customer_views.items()}

    async def export(self, ctx: Context, party_id: str) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for name, exporter in self.exporters.items():
            data = await exporter(ctx, party_id)
            if data:
                sections[name] = data
        if not sections:
            raise NotFound(f"party '{party_id}' not found", code="NOT_FOUND")
        await audit.record(ctx.session, ctx.principal, resource_type="Party", resource_id=party_id,
                           action="gdpr-export", changes={"sections": {"old": None, "new": sorted(sections)}})
        return {"partyId": party_id, "tenant": ctx.principal.tenant_id, "exportedAt": format_datetime(utcnow()),
                "personalData": sections}

    async def erase(self, ctx: Context, party_id: str) -> dict[str, Any]:
        reasons = [r for guard in self.erasure_guards.values() if (r := await guard(ctx, party_id))]
        if reasons:
            raise ErasureRefused(f"party '{party_id}' cannot be erased: {'; '.join(reasons)}")
        counts: dict[str, int] = {}
        for _, name, eraser in self.erasers:
            counts[name] = int(await eraser(ctx, party_id) or 0)
        if not any(counts.values()):
            raise NotFound(f"party '{party_id}' not found", code="NOT_FOUND")
        await audit.record(ctx.session, ctx.principal, resource_type="Party", resource_id=party_id,
                           action="gdpr-erase", changes={"records": {"old": None, "new": counts}})
        return {"partyId": party_id, "erasedAt": format_datetime(utcnow()), "anonymizedRecords": counts}


# --- HTTP ----------------------------------------------------------------------------------------------------
def _may_export(principal: Principal, party_id: str) -> bool:
    if principal.is_customer:
        return principal.party_id == party_id
    return "admin" in principal.roles or (principal.can("party", "write") and principal.can("customer", "read"))


def privacy_router(registry: PersonalDataRegistry) -> APIRouter:
    """``GET /privacy/v1/party/{id}/personalData`` (export) and ``POST .../erasure``, over the registry."""
    router = APIRouter(prefix="/privacy/v1", tags=["Privacy (GDPR)"])

    async def export_route(request: Request, partyId: str,
                           principal: Principal = Depends(authenticate)) -> Any:
        if not _may_export(principal, partyId):
            raise Forbidden("only the party itself, administrators and customer agents can export personal data",
                            code="PRIVACY_FORBIDDEN")
        async with unit_of_work(request, principal) as ctx:
            # a customer's reads stay scoped to its own party, which is what it may export
            out = await registry.export(ctx, partyId)
        return TmfJSONResponse(out)

    async def erase_route(request: Request, partyId: str,
                          principal: Principal = Depends(authenticate)) -> Any:
        if "admin" not in principal.roles:
            raise Forbidden("only administrators can erase personal data", code="ADMIN_ONLY")
        async with unit_of_work(request, principal) as ctx:
            out = await registry.erase(ctx, partyId)
        return TmfJSONResponse(out)

    router.add_api_route("/party/{partyId}/personalData", export_route, methods=["GET"],
                         summary="Export every personal datum held on a party")
    router.add_api_route("/party/{partyId}/erasure", erase_route, methods=["POST"],
                         summary="Anonymize a party's personal data (right to erasure)")
    return router


__all__ = [
    "ERASED",
    "ErasureRefused",
    "PersonalDataCodec",
    "PersonalDataIndex",
    "PersonalDataRegistry",
    "Searchable",
    "configured",
    "encrypted_tables",
    "normalize_email",
    "normalize_identifier",
    "normalize_name",
    "normalize_phone",
    "prefix_match",
    "privacy_router",
]

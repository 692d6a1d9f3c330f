"""Personal data: encryption at rest of a resource's personal attributes, and the registry through which domains
contribute to the customer 360 view, to GDPR exports and erasures, and to the checks that refuse them (open
balance, active product) — without editing each other. The registry is built once per process by the composition
root (``openbss.services``), which adds each domain's contributions.

``PersonalDataCodec`` is the TMF kit's ``DocumentCodec`` for resources holding personal data. It is declared with
the dotted paths (arrays crossed transparently, like list filters) of the ``personal`` values, sealed with the
tenant's data key (``platform/crypto.py``); the rest of the document stays plain JSON, so ordinary filters, owner
scoping and the GIN index keep working on it. Which sealed attributes can be searched (by exact value after
normalization, through keyed blind-index digests) is the resource's ``searchable`` declaration, served by the
kit's search index (``platform/tmf/search.py``); filters and sorts on other personal paths are refused with 400
naming them.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from openbss.platform import audit
from openbss.platform.auth import Principal
from openbss.platform.crypto import (
    DATA,
    EncryptedTable,
    KeyService,
    aad_for,
    is_sealed,
    key_service,
    seal,
    sealed_key_id,
    unseal,
)
from openbss.platform.db import utcnow
from openbss.platform.errors import BadRequest, Conflict, Forbidden, NotFound
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import Context, DocumentCodec, TmfDocument, TmfJSONResponse, unit_of_work
from openbss.platform.tmf.search import (
    normalize_email,
    normalize_identifier,
    normalize_name,
    normalize_phone,
    values_at,
)
from openbss.platform.tmf.spec import format_datetime
from openbss.settings import Settings

log = logging.getLogger(__name__)

ERASED = "[erased]"


# --- paths ---------------------------------------------------------------------------------------------------
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


# --- the codec -----------------------------------------------------------------------------------------------
class PersonalDataCodec(DocumentCodec):
    def __init__(self, resource_type: str, table: type[TmfDocument], personal: tuple[str, ...],
                 keys: Callable[[], KeyService] = key_service) -> None:
        self.resource_type = resource_type
        self.table = table
        self.personal = tuple(dict.fromkeys(personal))
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

    def sealed(self, path: str) -> bool:
        return self.encrypted_path(path)

    def is_personal(self, attribute: str) -> bool:
        return attribute in self._roots

    def sortable(self, path: str) -> bool:
        return not self.encrypted_path(path)

    def personal_paths(self) -> tuple[str, ...]:
        return self.personal

    async def index_key(self, ctx: Context) -> bytes | None:
        return await self._keys().index_key(ctx.session, ctx.principal.tenant_id)

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
        return stored

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


def _collect(value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _collect(v, out)
    elif isinstance(value, list):
        for v in value:
            _collect(v, out)
    elif is_sealed(value):
        out[value] = None


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
        """Every section; one whose domain fails (an error, a database statement refused) is answered
        ``{"unavailable": true, "reason": ...}`` and named in ``unavailableSections``, the others as usual: each
        section runs in a savepoint, so a failed one leaves the request's transaction usable."""
        out: dict[str, Any] = {}
        unavailable: list[str] = []
        for name, provider in self.customer_views.items():
            try:
                async with ctx.session.begin_nested():
                    out[name] = await provider(ctx, customer)
            except Exception as exc:  # a domain's failure must not fail the whole view
                log.warning("customer 360: section %s failed (%s)", name, type(exc).__name__, exc_info=True)
                out[name] = {"unavailable": True,
                             "reason": f"the {name} section could not be read ({type(exc).__name__})"}
                unavailable.append(name)
        out["unavailableSections"] = unavailable
        return out

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
    "PersonalDataRegistry",
    "configured",
    "encrypted_tables",
    "normalize_email",
    "normalize_identifier",
    "normalize_name",
    "normalize_phone",
    "privacy_router",
    "transform_at",
    "values_at",
]

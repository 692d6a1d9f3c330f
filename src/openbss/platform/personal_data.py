"""Personal data: encryption at rest of a resource's personal attributes, and the registries through which domains
contribute to the customer 360 view, to GDPR exports and erasures, and to the checks that refuse them (open
balance, active product) — without editing each other.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
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
from openbss.settings import get_settings

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
ENCRYPTED_TABLES: list[EncryptedTable] = []


class PersonalDataCodec(DocumentCodec):
    def __init__(self, resource_type: str, table: type[TmfDocument], personal: tuple[str, ...],
                 keys: Callable[[], KeyService] = key_service) -> None:
        extra = tuple(get_settings().pii_attributes.get(resource_type, ()))
        self.resource_type = resource_type
        self.table = table
        self.personal = tuple(dict.fromkeys(personal + extra))
        self._keys = keys
        self._roots = {p.split(".")[0] for p in self.personal}
        ENCRYPTED_TABLES.append(EncryptedTable(table, resource_type))

    # which attributes are personal
    def encrypted_path(self, path: str) -> bool:
        return any(path == p or path.startswith(p + ".") for p in self.personal)

    def sealed(self, path: str) -> bool:
        return self.encrypted_path(path)

    def is_personal(self, attribute: str) -> bool:
        return attribute in self._roots

    def sortable(self, path: str) -> bool:
        return not self.encrypted_path(path)

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


# --- registries ----------------------------------------------------------------------------------------------
PartyFn = Callable[[Context, str], Awaitable[Any]]
Customer360Provider = Callable[[Context, dict[str, Any]], Awaitable[Any]]
BalanceProvider = Callable[[Context, str], Awaitable[Decimal]]


@dataclass
class Registry:
    customer_views: dict[str, Customer360Provider] = field(default_factory=dict)
    exporters: dict[str, PartyFn] = field(default_factory=dict)
    erasure_guards: dict[str, PartyFn] = field(default_factory=dict)
    erasers: list[tuple[int, str, PartyFn]] = field(default_factory=list)
    balances: dict[str, BalanceProvider] = field(default_factory=dict)


registry = Registry()


def register_customer_view(name: str, provider: Customer360Provider) -> None:
    """A section of the customer 360 view: ``await provider(ctx, customer)`` -> JSON (e.g. "products")."""
    registry.customer_views[name] = provider


def register_exporter(name: str, exporter: PartyFn) -> None:
    """A section of a party's GDPR export: ``await exporter(ctx, party_id)`` -> JSON, or None/[] when empty."""
    registry.exporters[name] = exporter


def register_erasure_guard(name: str, guard: PartyFn) -> None:
    """``await guard(ctx, party_id)`` -> a reason to refuse erasure (e.g. "active product"), or None."""
    registry.erasure_guards[name] = guard


def register_eraser(name: str, eraser: PartyFn, order: int = 100) -> None:
    """``await eraser(ctx, party_id)`` anonymizes the domain's personal data of the party (financial records
    stay); returns the number of records changed. Lower ``order`` runs first."""
    registry.erasers = sorted([e for e in registry.erasers if e[1] != name] + [(order, name, eraser)])


def register_balance_provider(name: str, provider: BalanceProvider) -> None:
    """``await provider(ctx, billing_account_id)`` -> the amount the account owes (billing, payments)."""
    registry.balances[name] = provider


async def open_balance(ctx: Context, account_id: str) -> Decimal:
    """What a billing account owes, summed over the registered providers (zero until billing registers one)."""
    total = Decimal(0)
    for provider in registry.balances.values():
        total += Decimal(await provider(ctx, account_id))
    return total


class ErasureRefused(Conflict):
    code = "ERASURE_REFUSED"


async def export_personal_data(ctx: Context, party_id: str) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for name, exporter in registry.exporters.items():
        data = await exporter(ctx, party_id)
        if data:
            sections[name] = data
    if not sections:
        raise NotFound(f"party '{party_id}' not found", code="NOT_FOUND")
    await audit.record(ctx.session, ctx.principal, resource_type="Party", resource_id=party_id,
                       action="gdpr-export", changes={"sections": {"old": None, "new": sorted(sections)}})
    return {"partyId": party_id, "tenant": ctx.principal.tenant_id, "exportedAt": format_datetime(utcnow()),
            "personalData": sections}


async def erase_personal_data(ctx: Context, party_id: str) -> dict[str, Any]:
    reasons = [r for guard in registry.erasure_guards.values() if (r := await guard(ctx, party_id))]
    if reasons:
        raise ErasureRefused(f"party '{party_id}' cannot be erased: {'; '.join(reasons)}")
    counts: dict[str, int] = {}
    for _, name, eraser in registry.erasers:
        counts[name] = int(await eraser(ctx, party_id) or 0)
    if not any(counts.values()):
        raise NotFound(f"party '{party_id}' not found", code="NOT_FOUND")
    await audit.record(ctx.session, ctx.principal, resource_type="Party", resource_id=party_id,
                       action="gdpr-erase", changes={"records": {"old": None, "new": counts}})
    return {"partyId": party_id, "erasedAt": format_datetime(utcnow()), "anonymizedRecords": counts}


# --- HTTP ----------------------------------------------------------------------------------------------------
privacy_router = APIRouter(prefix="/privacy/v1", tags=["Privacy (GDPR)"])


def _may_export(principal: Principal, party_id: str) -> bool:
    if principal.is_customer:
        return principal.party_id == party_id
    return "admin" in principal.roles or (principal.can("party", "write") and principal.can("customer", "read"))


@privacy_router.get("/party/{partyId}/personalData", summary="Export every personal datum held on a party")
async def export_route(request: Request, partyId: str,
                       principal: Principal = Depends(authenticate)) -> Any:
    if not _may_export(principal, partyId):
        raise Forbidden("only the party itself, administrators and customer agents can export personal data",
                        code="PRIVACY_FORBIDDEN")
    async with unit_of_work(request, principal) as ctx:
        # a customer's reads stay scoped to its own party, which is what it may export
        out = await export_personal_data(ctx, partyId)
    return TmfJSONResponse(out)


@privacy_router.post("/party/{partyId}/erasure", summary="Anonymize a party's personal data (right to erasure)")
async def erase_route(request: Request, partyId: str,
                      principal: Principal = Depends(authenticate)) -> Any:
    if "admin" not in principal.roles:
        raise Forbidden("only administrators can erase personal data", code="ADMIN_ONLY")
    async with unit_of_work(request, principal) as ctx:
        out = await erase_personal_data(ctx, partyId)
    return TmfJSONResponse(out)


__all__ = [
    "ENCRYPTED_TABLES",
    "ERASED",
    "ErasureRefused",
    "PersonalDataCodec",
    "erase_personal_data",
    "export_personal_data",
    "normalize_email",
    "normalize_identifier",
    "normalize_name",
    "normalize_phone",
    "open_balance",
    "privacy_router",
    "register_balance_provider",
    "register_customer_view",
    "register_eraser",
    "register_erasure_guard",
    "register_exporter",
    "registry",
    "transform_at",
    "values_at",
]

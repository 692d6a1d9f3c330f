"""The TMF API kit: declare a resource once, get its TMF630 REST endpoints, events and hub.

A domain declares a table (a ``TmfDocument``), the specification definitions of its Create/Update/read shapes,
and optionally hooks with its business rules. The kit provides POST (201 + Location), GET by id, list with
paging/filters/sort/fields, PATCH (JSON merge patch), DELETE, the events of each change in the outbox, and the
authorization (permission per route, customers restricted to their own party in the query).
"""
# No ``from __future__ import annotations`` here: FastAPI reads the generated handlers' annotations at runtime.

import builtins
import copy
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import DateTime, Index, Integer, String, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from openbss.platform import audit
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.db import TenantScoped, json_dumps, utcnow
from openbss.platform.errors import BadRequest, DomainError, Forbidden, InvalidStateTransition, NotFound
from openbss.platform.events.outbox import emit
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.query import ListQuery, parse_list_query, project, sql_condition, sql_sort_key
from openbss.platform.tmf.spec import AttributeType, Spec, format_datetime


class TmfJSONResponse(JSONResponse):
    """JSON with exact decimals rendered as numbers."""

    def render(self, content: Any) -> bytes:
        return json_dumps(content).encode()


class TmfDocument(TenantScoped):
    """Mixin for the table of a TMF resource: the resource's JSON document plus bookkeeping columns."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_update: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (Index(f"ix_{name}_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),)


def camel(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass
class Context:
    """One request's unit of work: who asks, in which transaction, at which base URL."""

    principal: Principal
    session: AsyncSession
    base_url: str
    request: Request | None = None


class ResourceHooks:
    """Business rules of a resource. Override what applies; each hook may raise a ``DomainError``."""

    #: allowed state transitions (state -> next states); None means free
    transitions: ClassVar[dict[str, set[str]] | None] = None

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        return None

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        return None

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        return None


class DocumentCodec:
    """How a resource's document is stored. The default stores it as it is; a domain with personal data plugs
    in encryption here (encode before writing, decode after reading, blind-index conditions for filters)."""

    async def encode(self, ctx: "Context", resource_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        return doc

    async def decode(self, ctx: "Context", rows: "list[TmfDocument]") -> list[dict[str, Any]]:
        return [row.body for row in rows]

    async def filter_condition(self, ctx: "Context", flt: Any, table: Any) -> Any | None:
        """A SQL condition for ``flt`` when the codec owns the attribute (e.g. a blind index); else None."""
        return None

    def sortable(self, path: str) -> bool:
        return True

    def owner_condition(self, party_id: str, table: Any) -> Any | None:
        """A SQL condition selecting the party's rows through an indexed column, when the domain keeps one (the
        owner paths of the JSON document are not index-assisted under row-level security); else None."""
        return None

    def is_personal(self, attribute: str) -> bool:
        """Whether a top-level attribute holds personal data (masked in the audit trail)."""
        return False

    async def forget(self, ctx: "Context", resource_id: str) -> None:
        """Called when a resource is deleted (e.g. to drop its search index entries)."""
        return None


@dataclass
class TmfResource:
    path: str  # URL segment, e.g. "individual"
    type: str  # TMF @type, e.g. "Individual"
    table: builtins.type[TmfDocument]
    hooks: ResourceHooks = field(default_factory=ResourceHooks)
    create_definition: str | None = None
    update_definition: str | None = None
    read_definition: str | None = None
    state_field: str | None = None
    initial_state: str | None = None
    #: dotted paths naming the owning party; a customer principal sees only rows where one equals its party
    owner_paths: tuple[str, ...] = ()
    operations: frozenset[str] = frozenset({"create", "list", "get", "patch", "delete"})
    customer_operations: frozenset[str] = frozenset({"list", "get", "patch"})
    id_factory: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    #: a ResourceService subclass when the resource needs more than hooks (e.g. versioning)
    service_class: builtins.type["ResourceService"] | None = None
    codec: DocumentCodec = field(default_factory=DocumentCodec)
    #: filterable attributes beyond the specification's (documented extensions), by dotted path
    extra_attributes: dict[str, AttributeType] = field(default_factory=dict)
    #: record creates, updates and deletes in the audit trail
    audited: bool = True

    def __post_init__(self) -> None:
        self.create_definition = self.create_definition or f"{self.type}_Create"
        self.update_definition = self.update_definition or f"{self.type}_Update"
        self.read_definition = self.read_definition or self.type

    @property
    def event_key(self) -> str:
        return camel(self.type)


@dataclass
class TmfApi:
    name: str  # apiName of the base path, e.g. "party"
    title: str
    spec_file: str
    permission: str  # permission scope, e.g. "party"
    resources: list[TmfResource] = field(default_factory=list)
    base_path: str | None = None

    def __post_init__(self) -> None:
        self.spec = Spec.__new__(Spec)
        from openbss.platform.tmf.spec import load_spec

        self.spec = load_spec(self.spec_file)
        self.base_path = self.base_path or f"/tmf-api/{self.name}/v4"

    def resource(self, path: str) -> TmfResource:
        for r in self.resources:
            if r.path == path:
                return r
        raise KeyError(path)

    def event_types(self) -> set[str]:
        out = set()
        for r in self.resources:
            out |= {f"{r.type}{k}Event" for k in ("Create", "AttributeValueChange", "StateChange", "Delete")}
        return out


# --- JSON merge patch (RFC 7386) ------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- the store: every query of a TMF document table ------------------------------------------------------
class DocumentStore:
    def __init__(self, api: TmfApi, resource: TmfResource) -> None:
        self.api = api
        self.resource = resource
        self.table = resource.table
        self._by_id: Any = None

    def href(self, base_url: str, resource_id: str) -> str:
        return f"{base_url}{self.api.base_path}/{self.resource.path}/{resource_id}"

    def shape(self, base_url: str, resource_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        """The representation: id and href first, then the attributes."""
        return {"id": resource_id, "href": self.href(base_url, resource_id),
                **{k: v for k, v in doc.items() if k != "id"}}

    async def documents(self, ctx: Context, rows: list[TmfDocument]) -> list[dict[str, Any]]:
        """The plain documents of rows (decoded by the resource's codec)."""
        return await self.resource.codec.decode(ctx, rows)

    async def render(self, ctx: Context, row: TmfDocument) -> dict[str, Any]:
        return self.shape(ctx.base_url, row.id, (await self.documents(ctx, [row]))[0])

    async def render_all(self, ctx: Context, rows: list[TmfDocument]) -> list[dict[str, Any]]:
        docs = await self.documents(ctx, rows)
        return [self.shape(ctx.base_url, row.id, doc) for row, doc in zip(rows, docs, strict=True)]

    def _owner_condition(self, principal: Principal) -> Any:
        if not principal.is_customer:
            return None
        if not self.resource.owner_paths:
            raise Forbidden(f"customers cannot access {self.resource.path}", code="CUSTOMER_FORBIDDEN")
        party = principal.party_id or ""
        indexed = self.resource.codec.owner_condition(party, self.table)
        if indexed is not None:
            return indexed
        conds = []
        spec = self.api.spec
        from openbss.platform.tmf.query import Filter

        for path in self.resource.owner_paths:
            if path == "id":
                conds.append(self.table.id == party)
            else:
                attr = spec.attribute(self.resource.read_definition or self.resource.type, path)
                assert attr is not None, f"owner path {path} not in the specification"
                conds.append(sql_condition(Filter(path, "eq", (party,), attr), self.table.body))
        return or_(*conds)

    def _scoped(self, principal: Principal) -> Any:
        stmt = select(self.table)
        cond = self._owner_condition(principal)
        return stmt.where(cond) if cond is not None else stmt

    async def get(self, ctx: Context, resource_id: str, *, for_update: bool = False) -> TmfDocument:
        if ctx.principal.is_customer or for_update:
            stmt = self._scoped(ctx.principal).where(self.table.id == resource_id)
            if for_update:
                stmt = stmt.with_for_update()
            row = (await ctx.session.execute(stmt)).scalars().first()
        else:  # the statement is built once: building it cost a tenth of a GET by id
            if self._by_id is None:
                self._by_id = select(self.table).where(self.table.id == bindparam("resource_id"))
            row = (await ctx.session.execute(self._by_id, {"resource_id": resource_id})).scalars().first()
        if row is None:
            raise NotFound(f"{self.resource.type} '{resource_id}' not found", code="NOT_FOUND")
        return row

    async def list(self, ctx: Context, q: ListQuery) -> tuple[list[TmfDocument], int]:
        stmt = self._scoped(ctx.principal)
        codec = self.resource.codec
        for flt in q.filters:
            cond = await codec.filter_condition(ctx, flt, self.table)
            if cond is None:
                if flt.path in ("id", "href") and flt.op == "eq":
                    cond = self.table.id.in_([str(v).rstrip("/").rsplit("/", 1)[-1] for v in flt.values])
                else:
                    cond = sql_condition(flt, self.table.body)
            stmt = stmt.where(cond)
        for path, _ in q.sort:
            if not codec.sortable(path):
                raise BadRequest(f"cannot sort by '{path}': it is stored encrypted", code="INVALID_SORT")
        total = await ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        order: list[Any] = []
        for path, desc in q.sort:
            key = sql_sort_key(path, self.table.body)
            order.append(key.desc().nulls_last() if desc else key.asc().nulls_last())
        order.append(self.table.created_at.desc() if not q.sort else self.table.created_at.asc())
        order.append(self.table.id)
        rows = (await ctx.session.execute(stmt.order_by(*order).offset(q.offset).limit(q.limit))).scalars().all()
        return list(rows), int(total)

    async def insert(self, ctx: Context, resource_id: str, doc: dict[str, Any]) -> TmfDocument:
        stored = await self.resource.codec.encode(ctx, resource_id, doc)
        row = self.table(id=resource_id, body=stored, last_update=utcnow())  # type: ignore[call-arg]
        ctx.session.add(row)
        await ctx.session.flush()
        return row

    async def replace(self, ctx: Context, row: TmfDocument, doc: dict[str, Any]) -> TmfDocument:
        row.body = await self.resource.codec.encode(ctx, row.id, doc)
        row.last_update = utcnow()
        row.revision = row.revision + 1
        await ctx.session.flush()
        return row

    async def delete(self, ctx: Context, row: TmfDocument) -> None:
        await ctx.session.delete(row)
        await self.resource.codec.forget(ctx, row.id)
        await ctx.session.flush()


# --- the generic service: named CRUD actions with validation, state rules and events ---------------------
class ResourceService:
    def __init__(self, api: TmfApi, resource: TmfResource) -> None:
        self.api = api
        self.resource = resource
        self.store = DocumentStore(api, resource)
        spec = api.spec
        self.create_model: type[BaseModel] = spec.model(resource.create_definition or "")
        self.update_model: type[BaseModel] = spec.model(resource.update_definition or "")
        read_props, _ = spec._properties(spec.definitions[resource.read_definition or resource.type])
        self.read_properties = set(read_props)

    def validate_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            model = self.create_model.model_validate(payload)
        except ValidationError as exc:
            raise BadRequest(validation_message(exc), code="INVALID_BODY") from exc
        return model.to_doc()  # type: ignore[attr-defined]

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        r = self.resource
        doc = dict(doc)
        doc.setdefault("@type", r.type)
        now = format_datetime(utcnow())
        if "lastUpdate" in self.read_properties:
            doc["lastUpdate"] = now
        if "creationDate" in self.read_properties and "creationDate" not in doc:
            doc["creationDate"] = now
        if r.state_field and r.initial_state and r.state_field not in doc:
            doc[r.state_field] = r.initial_state
        await r.hooks.before_create(ctx, doc)
        resource_id = r.id_factory()
        doc["id"] = resource_id
        await self.store.insert(ctx, resource_id, doc)
        rendered = self.store.shape(ctx.base_url, resource_id, doc)
        await self._audit(ctx, resource_id, "create", None, doc)
        await self._emit(ctx, f"{r.type}CreateEvent", rendered)
        return rendered

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        r = self.resource
        row = await self.store.get(ctx, resource_id, for_update=True)
        current = dict((await self.store.documents(ctx, [row]))[0])
        merged = merge_patch(current, changes)
        # the result must still be a valid resource (mandatory attributes, types)
        candidate = {k: v for k, v in merged.items() if k not in ("id", "href", "lastUpdate", "creationDate")}
        try:
            validated = self.create_model.model_validate(candidate).to_doc()  # type: ignore[attr-defined]
        except ValidationError as exc:
            raise BadRequest(validation_message(exc), code="INVALID_BODY") from exc
        merged = {**validated, **{k: merged[k] for k in ("lastUpdate", "creationDate") if k in merged}}
        merged["id"] = row.id
        old_state = current.get(r.state_field) if r.state_field else None
        new_state = merged.get(r.state_field) if r.state_field else None
        if r.state_field and old_state != new_state:
            self.check_transition(old_state, new_state)
        await r.hooks.before_update(ctx, current, changes, merged)
        if merged == current:
            return self.store.shape(ctx.base_url, row.id, current)
        if "lastUpdate" in self.read_properties:
            merged["lastUpdate"] = format_datetime(utcnow())
        await self.store.replace(ctx, row, merged)
        rendered = self.store.shape(ctx.base_url, row.id, merged)
        await self._audit(ctx, row.id, "update", current, merged)
        await self._emit(ctx, f"{r.type}AttributeValueChangeEvent", rendered)
        if r.state_field and old_state != new_state:
            await self._emit(ctx, f"{r.type}StateChangeEvent", rendered)
        return rendered

    def check_transition(self, old: Any, new: Any) -> None:
        transitions = self.resource.hooks.transitions
        if transitions is None or old is None:
            return
        if new not in transitions.get(old, set()):
            allowed = ", ".join(sorted(transitions.get(old, set()))) or "none"
            raise InvalidStateTransition(
                f"{self.resource.type} cannot go from '{old}' to '{new}' (allowed: {allowed})"
            )

    async def set_state(self, ctx: Context, resource_id: str, new_state: str,
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A named state change (e.g. validate an individual): checks the transition, writes the events."""
        assert self.resource.state_field
        return await self.patch(ctx, resource_id, {self.resource.state_field: new_state, **(extra or {})})

    async def delete(self, ctx: Context, resource_id: str) -> None:
        r = self.resource
        row = await self.store.get(ctx, resource_id, for_update=True)
        rendered = await self.store.render(ctx, row)
        await r.hooks.before_delete(ctx, rendered)
        await self.store.delete(ctx, row)
        await self._audit(ctx, row.id, "delete", rendered, None)
        await self._emit(ctx, f"{r.type}DeleteEvent", rendered)

    async def get(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        return await self.store.render(ctx, await self.store.get(ctx, resource_id))

    async def list(self, ctx: Context, q: ListQuery) -> tuple[list[dict[str, Any]], int]:
        rows, total = await self.store.list(ctx, q)
        return [project(doc, q.fields) for doc in await self.store.render_all(ctx, rows)], total

    async def _audit(self, ctx: Context, resource_id: str, action: str, before: dict[str, Any] | None,
                     after: dict[str, Any] | None) -> None:
        if not self.resource.audited:
            return
        changes = audit.diff(before, after, self.resource.codec.is_personal)
        await audit.record(ctx.session, ctx.principal, resource_type=self.resource.type, resource_id=resource_id,
                           action=action, changes=changes)

    async def _emit(self, ctx: Context, event_type: str, rendered: dict[str, Any]) -> None:
        await emit(ctx.session, api=self.api.name, event_type=event_type, resource_key=self.resource.event_key,
                   resource=rendered, resource_type=self.resource.type)


# --- HTTP ---------------------------------------------------------------------------------------------------
def base_url(request: Request) -> str:
    return runtime(request).settings.public_url.rstrip("/")


@asynccontextmanager
async def unit_of_work(request: Request, principal: Principal) -> AsyncIterator[Context]:
    """The request's single transaction, bound to the principal's tenant; commits when the block succeeds."""
    rt = runtime(request)
    async with rt.db.transaction(principal.tenant_id) as session:
        yield Context(principal=principal, session=session, base_url=base_url(request), request=request)


def require_json_body(request: Request, *, patch: bool = False) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = {"application/json", "application/merge-patch+json"} if patch else {"application/json"}
    if ctype not in allowed:
        from openbss.platform.errors import UnsupportedMediaType

        raise UnsupportedMediaType(
            f"Content-Type must be {' or '.join(sorted(allowed))}, got '{ctype or 'none'}'"
        )


def json_content(request: Request) -> None:
    require_json_body(request)


def json_or_merge_patch_content(request: Request) -> None:
    require_json_body(request, patch=True)


def _list_params(
    offset: int | None = Query(None, ge=0, le=2**63 - 1, description="Index of the first result"),
    limit: int | None = Query(None, ge=1, le=1000, description="Maximum number of results"),
    fields: str | None = Query(None, description="Comma-separated attributes to return"),
    sort: str | None = Query(None, description="Comma-separated attributes, '-' for descending"),
) -> None:
    return None


def build_router(api: TmfApi, extra: Callable[[APIRouter, dict[str, ResourceService]], None] | None = None,
                 ) -> tuple[APIRouter, dict[str, ResourceService]]:
    """The router of one TMF API: every declared resource's endpoints and the API's notification hub."""
    from openbss.platform.tmf.hub import add_hub_routes

    router = APIRouter(prefix=api.base_path or "", tags=[f"{api.title}"])
    services = {r.path: (r.service_class or ResourceService)(api, r) for r in api.resources}
    for resource in api.resources:
        _add_resource_routes(router, api, services[resource.path])
    if extra:
        extra(router, services)
    add_hub_routes(router, api)
    return router, services


def _authorize(principal: Principal, api: TmfApi, resource: TmfResource, action: str, op: str) -> None:
    principal.require(api.permission, action)
    if principal.is_customer and op not in resource.customer_operations:
        raise Forbidden(f"customers cannot {op} {resource.path}", code="CUSTOMER_FORBIDDEN")


def _add_resource_routes(router: APIRouter, api: TmfApi, service: ResourceService) -> None:
    r = service.resource
    ReadModel = api.spec.model(r.read_definition or r.type)
    CreateModel = service.create_model
    UpdateModel = service.update_model
    path = f"/{r.path}"
    item = f"/{r.path}/{{id}}"
    err: dict[int | str, dict[str, Any]] = {400: {"description": "Bad request"}, 401: {"description": "Unauthorized"},
           403: {"description": "Forbidden"}, 404: {"description": "Not found"}}

    if "create" in r.operations:
        async def create(request: Request, body: CreateModel = Body(...),  # type: ignore[valid-type]
                         principal: Principal = Depends(authenticate),
                         _ct: None = Depends(json_content)) -> Response:
            _authorize(principal, api, r, WRITE, "create")
            require_json_body(request)
            doc = body.to_doc()  # type: ignore[attr-defined]
            async with unit_of_work(request, principal) as ctx:
                out = await service.create(ctx, doc)
            return TmfJSONResponse(out, status_code=201, headers={"Location": out["href"]})

        router.add_api_route(path, create, methods=["POST"], status_code=201, name=f"create{r.type}",
                             summary=f"Creates a {r.type}",
                             responses={201: {"model": ReadModel}, **err}, response_class=TmfJSONResponse)

    if "list" in r.operations:
        async def list_(request: Request, _: None = Depends(_list_params),
                        principal: Principal = Depends(authenticate)) -> Response:
            _authorize(principal, api, r, READ, "list")
            q = parse_list_query(request.url.query, api.spec, r.read_definition or r.type, r.extra_attributes)
            async with unit_of_work(request, principal) as ctx:
                items, total = await service.list(ctx, q)
            return TmfJSONResponse(items, status_code=200, headers={
                "X-Total-Count": str(total), "X-Result-Count": str(len(items))})

        router.add_api_route(path, list_, methods=["GET"], name=f"list{r.type}",
                             summary=f"List or find {r.type} objects",
                             responses={200: {"model": list[ReadModel]}, **err},  # type: ignore[valid-type]
                             response_class=TmfJSONResponse)

    if "get" in r.operations:
        async def retrieve(request: Request, id: str, fields: str | None = Query(None),
                           principal: Principal = Depends(authenticate)) -> Response:
            _authorize(principal, api, r, READ, "get")
            q = parse_list_query(f"fields={fields}" if fields else "", api.spec, r.read_definition or r.type,
                                 r.extra_attributes)
            async with unit_of_work(request, principal) as ctx:
                out = await service.get(ctx, id)
            return TmfJSONResponse(project(out, q.fields))

        router.add_api_route(item, retrieve, methods=["GET"], name=f"retrieve{r.type}",
                             summary=f"Retrieves a {r.type} by ID",
                             responses={200: {"model": ReadModel}, **err}, response_class=TmfJSONResponse)

    if "patch" in r.operations:
        async def patch(request: Request, id: str,
                        body: UpdateModel = Body(..., media_type="application/merge-patch+json"),  # type: ignore[valid-type]
                        principal: Principal = Depends(authenticate),
                        _ct: None = Depends(json_or_merge_patch_content)) -> Response:
            _authorize(principal, api, r, WRITE, "patch")
            require_json_body(request, patch=True)
            changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)  # type: ignore[attr-defined]
            async with unit_of_work(request, principal) as ctx:
                out = await service.patch(ctx, id, changes)
            return TmfJSONResponse(out)

        router.add_api_route(item, patch, methods=["PATCH"], name=f"patch{r.type}",
                             summary=f"Updates partially a {r.type}",
                             responses={200: {"model": ReadModel}, **err}, response_class=TmfJSONResponse)

    if "delete" in r.operations:
        async def delete(request: Request, id: str,
                         principal: Principal = Depends(authenticate)) -> Response:
            _authorize(principal, api, r, WRITE, "delete")
            async with unit_of_work(request, principal) as ctx:
                await service.delete(ctx, id)
            return Response(status_code=204)

        router.add_api_route(item, delete, methods=["DELETE"], status_code=204, name=f"delete{r.type}",
                             summary=f"Deletes a {r.type}", responses=err)


__all__ = [
    "Context", "DocumentStore", "DomainError", "ResourceHooks", "ResourceService", "TmfApi", "TmfDocument",
    "TmfJSONResponse", "TmfResource", "build_router", "merge_patch", "unit_of_work",
]

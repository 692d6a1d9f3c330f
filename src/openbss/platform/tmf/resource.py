"""The TMF API kit: declare a resource once, get its TMF630 REST endpoints, events and hub.

A domain declares a table (a ``TmfDocument``), the specification definitions of its Create/Update/read shapes,
and optionally hooks with its business rules. The kit provides POST (201 + Location), GET by id, list with
paging/filters/sort/fields, PATCH (JSON merge patch), DELETE, the events of each change in the outbox, and the
authorization (permission per route, customers restricted to their own party in the query).
"""
# No ``from __future__ import annotations`` here: FastAPI reads the generated handlers' annotations at runtime.

import builtins
import copy
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import DateTime, Index, Integer, String, bindparam, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from openbss.platform import audit
from openbss.platform.auth import READ, WRITE, Principal, permissions_for
from openbss.platform.db import MAX_OFFSET, TenantScoped, insert_rows, json_dumps, utcnow
from openbss.platform.errors import BadRequest, DomainError, Forbidden, InvalidStateTransition, NotFound
from openbss.platform.events.outbox import emit, emit_many
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.query import ListQuery, parse_list_query, project, sql_condition, sql_sort_key
from openbss.platform.tmf.references import PARTY_NAME_COPIES, without
from openbss.platform.tmf.search import Searchable, SearchIndex
from openbss.platform.tmf.spec import AttributeType, Spec, format_datetime, load_spec


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
        # the GIN index serves document path filters; the other one the lists' default order (newest first)
        return (Index(f"ix_{name}_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
                Index(f"ix_{name}_recent", "tenant_id", literal_column("created_at DESC"), "id"))


def camel(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass
class Context:
    """One request's unit of work: who asks, in which transaction, at which base URL."""

    principal: Principal
    session: AsyncSession
    base_url: str
    request: Request | None = None


def system_context(tenant_id: str, session: AsyncSession, base_url: str, subject: str = "system") -> Context:
    """The unit of work of a system-made change (a job, a consumer, the orchestrator, a seed): the ``system`` role
    of ``tenant_id``, acting as ``subject`` (what the audit trail names)."""
    principal = Principal(subject, tenant_id, ("system",), permissions=permissions_for(("system",)))
    return Context(principal=principal, session=session, base_url=base_url.rstrip("/"))


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

    async def authorize_customer_change(self, ctx: Context, current: dict[str, Any], merged: dict[str, Any]) -> None:
        """A customer's change of a resource of its party (the kit checked that the party owns the resource before
        and after the change): raise ``Forbidden`` where this resource asks more (e.g. an operator-granted role)."""
        return None


class DocumentCodec:
    """How a resource's document is stored. The default stores it as it is; a domain with personal data plugs
    in encryption here (encode before writing, decode after reading; which paths are sealed, and the key of
    their blind index in the search entries)."""

    async def encode(self, ctx: "Context", resource_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        return doc

    async def decode(self, ctx: "Context", rows: "list[TmfDocument]") -> list[dict[str, Any]]:
        return [row.body for row in rows]

    def sealed(self, path: str) -> bool:
        """Whether the values at a dotted path are stored sealed (searchable only through blind-index digests)."""
        return False

    async def index_key(self, ctx: "Context") -> bytes | None:
        """The tenant's blind-index key, for resources with sealed values."""
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

    def personal_paths(self) -> tuple[str, ...]:
        """The dotted paths of personal values (sealed at rest; never carried by events)."""
        return ()


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
    codec: DocumentCodec = field(default_factory=DocumentCodec)
    #: filterable attributes beyond the specification's (documented extensions), by dotted path
    extra_attributes: dict[str, AttributeType] = field(default_factory=dict)
    #: the attributes served by the search index (default: the specification's first-level ones)
    searchable: Searchable = field(default_factory=Searchable)
    #: personal values this resource carries outside a codec (dotted paths, e.g. an MSISDN): never in its events,
    #: masked in the audit trail (on top of the codec's personal paths and the party names of references)
    event_withheld: tuple[str, ...] = ()
    #: the name of the event of a state change, as the specification has it (``StateChange``; TMF621 and TMF683
    #: say ``StatusChange``: ``TroubleTicketStatusChangeEvent``)
    state_change_event: str = "StateChange"
    #: the permission scope of this resource's writes when it differs from its API's (e.g. configuration that
    #: only supervisors change in an API whose other resources agents write); None: the API's permission
    write_permission: str | None = None

    def __post_init__(self) -> None:
        self.create_definition = self.create_definition or f"{self.type}_Create"
        self.update_definition = self.update_definition or f"{self.type}_Update"
        self.read_definition = self.read_definition or self.type

    @property
    def event_key(self) -> str:
        return camel(self.type)

    def name_copies(self) -> tuple[str, ...]:
        """The references' party-name paths this resource does not keep (its codec does not seal them); worked out
        once (asked for every document written)."""
        copies: tuple[str, ...] | None = self.__dict__.get("_name_copies")
        if copies is None:
            copies = self.__dict__["_name_copies"] = tuple(p for p in PARTY_NAME_COPIES if not self.codec.sealed(p))
        return copies

    def event_withheld_paths(self) -> tuple[str, ...]:
        """What this resource's events leave out: its personal paths, the party names of its references and the
        values it declares (``platform/tmf/references.py``)."""
        return tuple(dict.fromkeys((*self.codec.personal_paths(), *PARTY_NAME_COPIES, *self.event_withheld)))


@dataclass
class TmfApi:
    name: str  # apiName of the base path, e.g. "party"
    title: str
    spec_file: str
    permission: str  # permission scope, e.g. "party"
    resources: list[TmfResource] = field(default_factory=list)
    base_path: str | None = None
    #: the TMF630 extension subtypes its resources may be rendered as (``platform/tmf/extensions.py``)
    extensions: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spec: Spec = load_spec(self.spec_file)
        self.base_path = self.base_path or f"/tmf-api/{self.name}/v4"

    def resource(self, path: str) -> TmfResource:
        for r in self.resources:
            if r.path == path:
                return r
        raise KeyError(path)

    def event_types(self) -> set[str]:
        out = set()
        for r in self.resources:
            out |= {f"{r.type}{k}Event" for k in ("Create", "AttributeValueChange", r.state_change_event, "Delete")}
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


def owner_values(doc: Any, path: str) -> set[str]:
    """The values at a dotted path of a document, through arrays (``relatedParty.id`` → every related party's id)."""
    head, _, rest = path.partition(".")
    if isinstance(doc, list):
        return set().union(*(owner_values(item, path) for item in doc)) if doc else set()
    if not isinstance(doc, dict) or head not in doc:
        return set()
    value = doc[head]
    if rest:
        return owner_values(value, rest)
    if isinstance(value, list):
        return {str(v) for v in value if isinstance(v, str | int)}
    return {str(value)} if isinstance(value, str | int) else set()


# --- the store: every query of a TMF document table ------------------------------------------------------
class DocumentStore:
    def __init__(self, api: TmfApi, resource: TmfResource) -> None:
        self.api = api
        self.resource = resource
        self.table = resource.table
        self.index = SearchIndex(resource.type, resource.table, resource.searchable, api.spec,
                                 resource.read_definition or resource.type, resource.codec,
                                 resource.extra_attributes)
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

    def owner_condition(self, principal: Principal) -> Any:
        """The condition restricting a customer principal to its own party's rows (None for staff)."""
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
            ids = self.index.owner_ids(path, party)
            if path == "id":
                conds.append(self.table.id == party)
            elif ids is not None:
                conds.append(self.table.id.in_(ids))
            else:
                attr = spec.attribute(self.resource.read_definition or self.resource.type, path)
                assert attr is not None, f"owner path {path} not in the specification"
                conds.append(sql_condition(Filter(path, "eq", (party,), attr), self.table.body))
        return or_(*conds)

    def _scoped(self, principal: Principal) -> Any:
        stmt = select(self.table)
        cond = self.owner_condition(principal)
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
        owner = self.owner_condition(ctx.principal)
        stmt = select(self.table) if owner is None else select(self.table).where(owner)
        codec = self.resource.codec
        compiled = await self.index.compile(ctx, q.filters)
        stmt = stmt.where(*compiled.conditions)
        for path, _ in q.sort:
            if not codec.sortable(path):
                raise BadRequest(f"cannot sort by '{path}': it is stored encrypted", code="INVALID_SORT")
        if compiled.countable() and owner is None:
            # every filter is answered by the search entries, written with the documents: count them, not the rows
            first = compiled.id_sets[0].subquery()
            ids = first.c[0]
            counted = (select(func.count() if compiled.unique_first else func.count(func.distinct(ids)))
                       .select_from(first).where(*[ids.in_(other) for other in compiled.id_sets[1:]]))
            total = await ctx.session.scalar(counted) or 0
        else:
            total = await ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        order: list[Any] = []
        for path, desc in q.sort:
            key = sql_sort_key(path, self.table.body)
            order.append(key.desc().nulls_last() if desc else key.asc().nulls_last())
        order.append(self.table.created_at.desc() if not q.sort else self.table.created_at.asc())
        order.append(self.table.id)
        rows = (await ctx.session.execute(stmt.order_by(*order).offset(q.offset).limit(q.limit))).scalars().all()
        return list(rows), int(total)

    async def insert(self, ctx: Context, resource_id: str, doc: dict[str, Any], **columns: Any) -> TmfDocument:
        stored = await self.resource.codec.encode(ctx, resource_id, doc)
        row = self.table(id=resource_id, body=stored, last_update=utcnow(), **columns)  # type: ignore[call-arg]
        ctx.session.add(row)
        await self.index.write(ctx, resource_id, doc, replace=False)
        await ctx.session.flush()
        return row

    async def insert_many(self, ctx: Context, items: "builtins.list[tuple[str, dict[str, Any], Mapping[str, Any]]]",
                          ) -> None:
        """``insert`` for many documents (``(id, doc, columns)`` each): multi-row inserts of the rows and of their
        search entries. Rows of one call set the same columns (``revision`` among them, else 1)."""
        now = utcnow()
        rows = [{"id": resource_id, "body": await self.resource.codec.encode(ctx, resource_id, doc),
                 "last_update": now, "revision": 1, **columns} for resource_id, doc, columns in items]
        await insert_rows(ctx.session, self.table, rows)
        await self.index.write_many(ctx, [(resource_id, doc) for resource_id, doc, _ in items], replace=False)

    async def replace(self, ctx: Context, row: TmfDocument, doc: dict[str, Any]) -> TmfDocument:
        row.body = await self.resource.codec.encode(ctx, row.id, doc)
        row.last_update = utcnow()
        row.revision = row.revision + 1
        await ctx.session.flush()  # one UPDATE (before the index's statements would flush part of it)
        await self.index.write(ctx, row.id, doc, replace=True)
        return row

    async def delete(self, ctx: Context, row: TmfDocument) -> None:
        await ctx.session.delete(row)
        await self.index.forget(ctx, row.id)
        await ctx.session.flush()


# --- the generic service: named CRUD actions with validation, state rules, audit and events -----------------
#: changes a resource's document in place (``ResourceService.change``); may be a coroutine function
Mutation = Callable[[dict[str, Any]], Awaitable[None] | None]
_BOOKKEEPING = ("lastUpdate",)


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _BOOKKEEPING}


class ResourceService:
    """What the kit does for one resource. Every write goes through three primitives, each of which stores,
    audits and announces in the caller's transaction:

    * ``record(ctx, doc)``: a creation (the document as given; ``create`` runs the business rules first);
    * ``change(ctx, id, mutate)``: load for update, mutate, check the state transition, write, audit, emit
      ``...AttributeValueChangeEvent`` (and ``...StateChangeEvent`` when the state moved) — what named actions and
      system-made changes use (``patch`` is a change too);
    * ``delete(ctx, id)``.
    """

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

    # --- the write primitives ------------------------------------------------------------------------------
    async def record(self, ctx: Context, doc: dict[str, Any], *, columns: Mapping[str, Any] | None = None,
                     ) -> dict[str, Any]:
        """Store a new resource as given (its ``id``, else a new one; ``@type`` defaulted), audit the creation and
        emit its ``...CreateEvent``. ``columns`` sets bookkeeping columns of the row (e.g. a version lineage).
        The caller has applied the business rules (``create`` does, for requests)."""
        r = self.resource
        doc = without(dict(doc), r.name_copies())  # copies of a party's name: the reference only
        doc.setdefault("@type", r.type)
        resource_id = str(doc.get("id") or r.id_factory())
        doc["id"] = resource_id
        if "@type" not in self.read_properties:  # a resource whose specification has no @type (TMF638 Service)
            doc.pop("@type", None)
        await self.store.insert(ctx, resource_id, doc, **dict(columns or {}))
        rendered = self.store.shape(ctx.base_url, resource_id, doc)
        await self._audit(ctx, resource_id, "create", None, doc)
        await self._emit(ctx, f"{r.type}CreateEvent", rendered)
        return rendered

    def prepare(self, given: dict[str, Any]) -> dict[str, Any]:
        """A new resource's document as ``record`` stores it (a copy): copies of a party's name left out, ``@type``
        defaulted, its ``id`` (a new one when it has none)."""
        r = self.resource
        doc = without(dict(given), r.name_copies())
        doc.setdefault("@type", r.type)
        doc["id"] = str(doc.get("id") or r.id_factory())
        if "@type" not in self.read_properties:
            doc.pop("@type", None)
        return doc

    async def record_many(self, ctx: Context, items: "builtins.list[tuple[dict[str, Any], Mapping[str, Any] | None]]",
                          ) -> "builtins.list[dict[str, Any]]":
        """``record`` for many new resources at once (``(doc, columns)`` each, every item setting the same
        columns): the same documents, audit records and ``...CreateEvent`` as one ``record`` per item, written in
        multi-row inserts (rows, search entries, audit, outbox). Returns the representations, in order."""
        r = self.resource
        prepared: builtins.list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        for given, columns in items:
            doc = self.prepare(given)
            prepared.append((doc["id"], doc, dict(columns or {})))
        if not prepared:
            return []
        await self.store.insert_many(ctx, prepared)
        rendered = [self.store.shape(ctx.base_url, resource_id, doc) for resource_id, doc, _ in prepared]
        await audit.record_many(ctx.session, ctx.principal, resource_type=r.type, records=[
            (resource_id, "create", self._changes(None, doc)) for resource_id, doc, _ in prepared])
        await self._emit_many(ctx, [(f"{r.type}CreateEvent", out) for out in rendered])
        return rendered

    async def record_changed_many(
            self, ctx: Context, items: "builtins.list[tuple[dict[str, Any], dict[str, Any], Mapping[str, Any]]]", *,
            action: str) -> "builtins.list[dict[str, Any]]":
        """``record_many`` of new resources followed, in the same transaction, by ``change_many`` of each — with each
        document written once, as changed. ``(recorded, changed, columns)`` each: ``recorded`` as ``prepare``
        returns it, ``changed`` the document it becomes (another dict: ``recorded`` is not changed in place),
        ``columns`` the row's (every item setting the same). What is written is what the two calls would leave:
        the changed document (``lastUpdate`` stamped, revision 2) and its search entries; the audit records
        ``create`` (the recorded document) then ``action`` (what changed); the ``...CreateEvent`` of the recorded
        document, then the ``...AttributeValueChangeEvent`` (and ``...StateChangeEvent`` when the state moved) of
        the changed one. The state change is checked against the resource's transitions. Returns the changed
        representations, in order."""
        r = self.resource
        if not items:
            return []
        stamp = format_datetime(utcnow())
        rows: builtins.list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        unchanged: builtins.list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []
        created: builtins.list[tuple[str, str, dict[str, Any]]] = []
        changed: builtins.list[tuple[str, str, dict[str, Any]]] = []
        events: builtins.list[tuple[str, dict[str, Any]]] = []
        later: builtins.list[tuple[str, dict[str, Any]]] = []
        out: builtins.list[dict[str, Any]] = []
        for recorded, given, columns in items:
            resource_id = str(recorded["id"])
            doc = without(given, r.name_copies())
            if doc is given:
                doc = dict(given)
            doc["id"] = resource_id
            created.append((resource_id, "create", self._changes(None, recorded)))
            events.append((f"{r.type}CreateEvent", self.store.shape(ctx.base_url, resource_id, recorded)))
            if _content(doc) == _content(recorded):  # nothing changed: recorded only
                unchanged.append((resource_id, recorded, columns))
                out.append(self.store.shape(ctx.base_url, resource_id, recorded))
                continue
            old_state = recorded.get(r.state_field) if r.state_field else None
            new_state = doc.get(r.state_field) if r.state_field else None
            if old_state != new_state:
                self.check_transition(old_state, new_state)
            if "lastUpdate" in self.read_properties:
                doc["lastUpdate"] = stamp
            rows.append((resource_id, doc, {**columns, "revision": 2}))
            changed.append((resource_id, action, self._changes(recorded, doc)))
            rendered = self.store.shape(ctx.base_url, resource_id, doc)
            out.append(rendered)
            later.append((f"{r.type}AttributeValueChangeEvent", rendered))
            if old_state != new_state:
                later.append((f"{r.type}{r.state_change_event}Event", rendered))
        if rows:
            await self.store.insert_many(ctx, rows)
        if unchanged:
            await self.store.insert_many(ctx, unchanged)
        await audit.record_many(ctx.session, ctx.principal, resource_type=r.type, records=created + changed)
        await self._emit_many(ctx, events + later)
        return out

    async def change_many(self, ctx: Context, mutations: Mapping[str, Mutation], *, action: str = "update",
                          ) -> dict[str, dict[str, Any]]:
        """``change`` for many resources at once (``{id: mutate}``): the rows locked in one query (in id order,
        so that concurrent batches cannot deadlock), each mutated and checked like ``change``, the changed ones
        written, audited and announced in bulk. Returns the representations by id."""
        r = self.resource
        ids = sorted(mutations)
        if not ids:
            return {}
        rows: builtins.list[TmfDocument] = []
        for start in range(0, len(ids), 10000):
            stmt = self.store._scoped(ctx.principal).where(self.store.table.id.in_(ids[start:start + 10000]))
            rows += (await ctx.session.execute(stmt.order_by(self.store.table.id).with_for_update()
                                               .execution_options(populate_existing=True))).scalars().all()
        if len(rows) != len(ids):
            missing = sorted(set(ids) - {row.id for row in rows})
            raise NotFound(f"{r.type} '{missing[0]}' not found", code="NOT_FOUND")
        currents = await self.store.documents(ctx, rows)
        out: dict[str, dict[str, Any]] = {}
        written: builtins.list[tuple[TmfDocument, dict[str, Any], dict[str, Any]]] = []
        for row, current in zip(rows, currents, strict=True):
            doc = copy.deepcopy(current)
            outcome = mutations[row.id](doc)
            if inspect.isawaitable(outcome):
                await outcome
            doc = without(doc, r.name_copies())
            doc["id"] = row.id
            if _content(doc) == _content(current):
                out[row.id] = self.store.shape(ctx.base_url, row.id, current)
                continue
            old_state = current.get(r.state_field) if r.state_field else None
            new_state = doc.get(r.state_field) if r.state_field else None
            if old_state != new_state:
                self.check_transition(old_state, new_state)
            if "lastUpdate" in self.read_properties:
                doc["lastUpdate"] = format_datetime(utcnow())
            written.append((row, current, doc))
        now = utcnow()
        for row, _, doc in written:
            row.body = await r.codec.encode(ctx, row.id, doc)
            row.last_update = now
            row.revision = row.revision + 1
        await ctx.session.flush()
        # only the search entries that changed (a bill issued: its state, number and document, not its account)
        await self.store.index.rewrite_many(ctx, [(row.id, current, doc) for row, current, doc in written])
        events: builtins.list[tuple[str, dict[str, Any]]] = []
        for row, current, doc in written:
            rendered = out[row.id] = self.store.shape(ctx.base_url, row.id, doc)
            events.append((f"{r.type}AttributeValueChangeEvent", rendered))
            if r.state_field and current.get(r.state_field) != doc.get(r.state_field):
                events.append((f"{r.type}{r.state_change_event}Event", rendered))
        await audit.record_many(ctx.session, ctx.principal, resource_type=r.type, records=[
            (row.id, action, self._changes(current, doc)) for row, current, doc in written])
        await self._emit_many(ctx, events)
        return out

    async def change(self, ctx: Context, resource_id: str, mutate: Mutation, *, action: str = "update",
                     locked: TmfDocument | None = None) -> dict[str, Any]:
        """Change one resource in one call: lock its row, let ``mutate(doc)`` change the (decoded) document in
        place — it may raise a ``DomainError`` to refuse —, check a state change against the resource's
        transitions, then write the document (``lastUpdate`` stamped where the resource has one), audit it and
        emit its events. A document left unchanged writes nothing. Returns the representation. ``locked``: the
        row, when the caller has already read it ``FOR UPDATE`` in this transaction (it is not read again; column
        values the caller set on it are written with the document)."""
        r = self.resource
        if locked is not None and locked.id == resource_id:
            row = locked
        else:
            row = await self.store.get(ctx, resource_id, for_update=True)
        current = (await self.store.documents(ctx, [row]))[0]
        doc = copy.deepcopy(current)
        outcome = mutate(doc)
        if inspect.isawaitable(outcome):
            await outcome
        doc = without(doc, r.name_copies())  # copies of a party's name: the reference only
        doc["id"] = row.id
        if _content(doc) == _content(current):
            return self.store.shape(ctx.base_url, row.id, current)
        old_state = current.get(r.state_field) if r.state_field else None
        new_state = doc.get(r.state_field) if r.state_field else None
        if old_state != new_state:
            self.check_transition(old_state, new_state)
        if "lastUpdate" in self.read_properties:
            doc["lastUpdate"] = format_datetime(utcnow())
        await self.store.replace(ctx, row, doc)
        rendered = self.store.shape(ctx.base_url, row.id, doc)
        await self._audit(ctx, row.id, action, current, doc)
        events = [(f"{r.type}AttributeValueChangeEvent", rendered)]
        if old_state != new_state:
            events.append((f"{r.type}{r.state_change_event}Event", rendered))
        await self._emit_many(ctx, events)
        return rendered

    async def delete(self, ctx: Context, resource_id: str) -> None:
        r = self.resource
        row = await self.store.get(ctx, resource_id, for_update=True)
        rendered = await self.store.render(ctx, row)
        await r.hooks.before_delete(ctx, rendered)
        await self.store.delete(ctx, row)
        await self._audit(ctx, row.id, "delete", rendered, None)
        await self._emit(ctx, f"{r.type}DeleteEvent", rendered)

    # --- requests ----------------------------------------------------------------------------------------------
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        r = self.resource
        doc = dict(doc)
        if "@type" in self.read_properties:
            doc.setdefault("@type", r.type)
        now = format_datetime(utcnow())
        if "lastUpdate" in self.read_properties:
            doc["lastUpdate"] = now
        if "creationDate" in self.read_properties and "creationDate" not in doc:
            doc["creationDate"] = now
        if r.state_field and r.initial_state and r.state_field not in doc:
            doc[r.state_field] = r.initial_state
        await r.hooks.before_create(ctx, doc)
        doc["id"] = r.id_factory()
        return await self.record(ctx, doc)

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        r = self.resource

        async def apply(doc: dict[str, Any]) -> None:
            current = dict(doc)
            merged = merge_patch(current, changes)
            # the result must still be a valid resource (mandatory attributes, types)
            candidate = {k: v for k, v in merged.items() if k not in ("id", "href", "lastUpdate", "creationDate")}
            try:
                validated = self.create_model.model_validate(candidate).to_doc()  # type: ignore[attr-defined]
            except ValidationError as exc:
                raise BadRequest(validation_message(exc), code="INVALID_BODY") from exc
            merged = {**validated, **{k: merged[k] for k in ("lastUpdate", "creationDate") if k in merged}}
            merged["id"] = resource_id
            old_state = current.get(r.state_field) if r.state_field else None
            new_state = merged.get(r.state_field) if r.state_field else None
            if r.state_field and old_state != new_state:
                self.check_transition(old_state, new_state)
            if ctx.principal.is_customer:
                await self.authorize_customer_change(ctx, current, merged)
            await r.hooks.before_update(ctx, current, changes, merged)
            doc.clear()
            doc.update(merged)

        return await self.change(ctx, resource_id, apply)

    async def authorize_customer_change(self, ctx: Context, current: dict[str, Any], merged: dict[str, Any]) -> None:
        """A customer changes only what its own party owns, and the result stays its own: its party is at one of the
        resource's owner paths before and after the change (it cannot hand the resource to another party, nor
        take one over); then the resource's own rule (``ResourceHooks.authorize_customer_change``)."""
        r = self.resource
        party = ctx.principal.party_id or ""
        for doc, when in ((current, "is"), (merged, "would be")):
            if not any(party in owner_values(doc, path) for path in r.owner_paths):
                raise Forbidden(f"{r.type} '{current.get('id')}' {when} not your party's: a customer changes only "
                                f"its own party's resources ({', '.join(r.owner_paths)})", code="CUSTOMER_FORBIDDEN")
        await r.hooks.authorize_customer_change(ctx, current, merged)

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

    async def get(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        return await self.store.render(ctx, await self.store.get(ctx, resource_id))

    async def list(self, ctx: Context, q: ListQuery) -> tuple[list[dict[str, Any]], int]:
        rows, total = await self.store.list(ctx, q)
        return [project(doc, q.fields) for doc in await self.store.render_all(ctx, rows)], total

    def _changes(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
        copies = self.resource.name_copies()  # a name a document kept from before references were bare is not
        return audit.diff(without(before, copies) if before else before,  # audited either
                          without(after, copies) if after else after, self._masked)

    def _masked(self, key: str) -> bool:
        """Whether the audit trail masks a top-level attribute (personal, or withheld from events); each attribute
        worked out once."""
        masked: dict[str, bool] | None = self.__dict__.get("_masked_keys")
        if masked is None:
            masked = self.__dict__["_masked_keys"] = {}
        hidden = masked.get(key)
        if hidden is None:
            r = self.resource
            hidden = masked[key] = bool(r.codec.is_personal(key)) or key in {p.split(".")[0] for p in r.event_withheld}
        return hidden

    async def _audit(self, ctx: Context, resource_id: str, action: str, before: dict[str, Any] | None,
                     after: dict[str, Any] | None) -> None:
        await audit.record(ctx.session, ctx.principal, resource_type=self.resource.type, resource_id=resource_id,
                           action=action, changes=self._changes(before, after))

    def _announced(self, event_type: str, rendered: dict[str, Any]) -> bool:
        """Whether a change is announced (every path that writes events asks): a resource may damp its
        notifications (e.g. a flapping alarm) — the change is still written and audited."""
        return True

    async def _emit_many(self, ctx: Context, events: "builtins.list[tuple[str, dict[str, Any]]]") -> None:
        withheld = self.resource.event_withheld_paths()
        await emit_many(ctx.session, api=self.api.name, resource_key=self.resource.event_key,
                        events=[(kind, without(rendered, withheld)) for kind, rendered in events
                                if self._announced(kind, rendered)],
                        resource_type=self.resource.type)

    async def _emit(self, ctx: Context, event_type: str, rendered: dict[str, Any]) -> None:
        if not self._announced(event_type, rendered):
            return
        # the event carries no personal value: a consumer or subscriber reads the resource by its href
        await emit(ctx.session, api=self.api.name, event_type=event_type, resource_key=self.resource.event_key,
                   resource=without(rendered, self.resource.event_withheld_paths()),
                   resource_type=self.resource.type)


def resource_services(api: TmfApi, custom: Mapping[str, ResourceService] | None = None,
                      ) -> dict[str, ResourceService]:
    """One service per resource of ``api`` (by path): the domain's own where it has one (``custom``), else the
    kit's. Built once per process by the composition root; the API's router mounts them."""
    given = dict(custom or {})
    unknown = set(given) - {r.path for r in api.resources}
    assert not unknown, f"{api.name} has no resource {sorted(unknown)}"
    return {r.path: given.get(r.path) or ResourceService(api, r) for r in api.resources}


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
    offset: int | None = Query(None, ge=0, le=MAX_OFFSET, description="Index of the first result"),
    limit: int | None = Query(None, ge=1, le=1000, description="Maximum number of results"),
    fields: str | None = Query(None, description="Comma-separated attributes to return"),
    sort: str | None = Query(None, description="Comma-separated attributes, '-' for descending"),
) -> None:
    return None


def _authorizer(api: TmfApi, resource: TmfResource, action: str, op: str) -> Callable[..., Awaitable[Principal]]:
    """The route's principal, authorized (a dependency: the permission is checked before the request's body is
    validated, so a caller without it learns nothing from validation errors)."""
    async def authorized(principal: Principal = Depends(authenticate)) -> Principal:
        _authorize(principal, api, resource, action, op)
        return principal

    return authorized


def _authorize(principal: Principal, api: TmfApi, resource: TmfResource, action: str, op: str) -> None:
    scope = resource.write_permission if action == WRITE and resource.write_permission else api.permission
    principal.require(scope, action)
    if principal.is_customer and op not in resource.customer_operations:
        raise Forbidden(f"customers cannot {op} {resource.path}", code="CUSTOMER_FORBIDDEN")


def add_resource_routes(router: APIRouter, api: TmfApi, service: ResourceService) -> None:
    """The TMF630 endpoints of one resource (those its ``operations`` allow), over its service."""
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
                         principal: Principal = Depends(_authorizer(api, r, WRITE, "create")),
                         _ct: None = Depends(json_content)) -> Response:
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
                        principal: Principal = Depends(_authorizer(api, r, READ, "list"))) -> Response:
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
                           principal: Principal = Depends(_authorizer(api, r, READ, "get"))) -> Response:
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
                        principal: Principal = Depends(_authorizer(api, r, WRITE, "patch")),
                        _ct: None = Depends(json_or_merge_patch_content)) -> Response:
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
                         principal: Principal = Depends(_authorizer(api, r, WRITE, "delete"))) -> Response:
            async with unit_of_work(request, principal) as ctx:
                await service.delete(ctx, id)
            return Response(status_code=204)

        router.add_api_route(item, delete, methods=["DELETE"], status_code=204, name=f"delete{r.type}",
                             summary=f"Deletes a {r.type}", responses=err)


__all__ = [
    "Context", "DocumentStore", "DomainError", "Mutation", "ResourceHooks", "ResourceService", "TmfApi",
    "TmfDocument", "TmfJSONResponse", "TmfResource", "add_resource_routes", "merge_patch", "resource_services",
    "system_context", "unit_of_work",
]

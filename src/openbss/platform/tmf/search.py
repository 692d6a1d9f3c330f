"""Searchable attributes: one B-tree side table serving the TMF630 filters of every resource, encrypted or not.

Why a side table. Resources are JSONB documents with a GIN (``jsonb_path_ops``) index, and a filter compiles to
``body @? '<jsonpath>'``. Under row-level security PostgreSQL cannot use that index: ``@?`` is not LEAKPROOF, so it
must run after the policy's tenant check, on every row of the tenant (measured: ~8 ms per scan of 10,000 catalog
offerings, twice per list for the count and the page). And a value sealed at rest (personal data) cannot be
compared at all. So the kit keeps, in ``search_entry``, one row per (resource type, attribute, value, resource id)
of the attributes people filter on, under the same tenant policy as every business table (``tenant_id`` leads the
primary key). A filter on such an attribute becomes ``id IN (SELECT resource_id FROM search_entry WHERE
resource_type = :t AND attribute = :a AND value IN (...))``: text equalities and comparisons, all LEAKPROOF, served
by the B-tree.

What is stored as ``value`` (``text COLLATE "C"``: byte order, i.e. code-point order, like jsonpath comparisons):

* plain strings as they are (TMF630 equality is exact); date-times in the kit's fixed-width UTC form
  (``YYYY-MM-DDTHH:MM:SS.mmmZ``) so that ``.gt/.gte/.lt/.lte`` are string ranges; booleans as ``true``/``false``;
* for a value the resource's codec seals (encrypted personal data): a blind index, i.e. the base64url of a keyed
  HMAC (the tenant's index key, ``platform/crypto.py``) of the value after normalization (names: case, accents and
  punctuation; e-mails: case; phones: punctuation, ``00`` -> ``+``; identifiers: separators and case). Equal values
  match, ranges and sorting cannot, and the server says so (400 naming the attribute);
* with ``prefix``: also every word prefix of 2..12 characters (attribute ``<path>*``), for name search
  (``customerSearch``);
* ``unique`` values (external ids) in a partial unique index: a duplicate is refused with 409.

Which attributes: ``TmfResource.searchable`` (a ``Searchable``). By default, from the specification: every
first-level attribute holding a string, an enumeration, a date-time or a boolean (``name``, ``status``/``state``/
``lifecycleStatus``, ``@type``, ``externalId``, dates, …), the ``id`` of every first-level reference
(``relatedParty.id``, ``productOffering.id``, ``billingAccount.id``, …) and the resource's documented extension
attributes; not ``description`` and other free text. ``include`` adds nested paths (e-mails, phones), ``exclude``
removes some, ``columns`` serves attributes from typed columns of the resource's own table instead (tables written
outside the kit, e.g. charging's hot path, declare ``side_table=False``). Filters on other attributes keep the
document path filter (correct, not index-assisted); a filter on a sealed attribute that is not indexed is refused
with 400.

The kit writes the entries in the transaction that writes the document (``DocumentStore.insert/replace/delete``).
Key rotation re-encrypts values but keeps the index key, so digests stay valid. ``rebuild_sync`` (re)builds the
entries of existing rows: the migration that introduced the table runs it, and so must one that changes a
declaration.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    and_,
    delete,
    false,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from openbss.platform.crypto import blind_digest
from openbss.platform.db import TENANT_GUC, Base, insert_rows
from openbss.platform.errors import BadRequest, Conflict
from openbss.platform.tmf.query import Filter, sql_condition
from openbss.platform.tmf.spec import AttributeType, Spec


class Context(Protocol):
    """What the index needs of a unit of work (the kit's ``resource.Context``): its transaction."""

    session: AsyncSession


class DocumentCodec(Protocol):
    """What the index needs of a resource's codec (the kit's ``resource.DocumentCodec``)."""

    def sealed(self, path: str) -> bool: ...

    async def index_key(self, ctx: Any) -> bytes | None: ...


#: entries written per INSERT (six bound values each: well under the driver's 32,767 per statement)
INSERT_BATCH = 4000
MAX_VALUE = 200  # longer plain values are not indexed (an equality filter on them reads the documents)
PREFIX_MIN, PREFIX_MAX = 2, 12
INDEXED_KINDS = ("string", "datetime", "boolean")
#: first-level attributes not indexed by default: identity (served by the primary key) and free text
NOT_BY_DEFAULT = frozenset({"id", "href", "description", "@schemaLocation", "errorLog"})


class SearchEntry(Base):
    """One searchable value of one resource (a blind-index digest for sealed values; never a sealed plaintext)."""

    __tablename__ = "search_entry"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "resource_type", "attribute", "value", "resource_id"),
        Index("ix_search_entry_resource", "tenant_id", "resource_id"),
        Index("uq_search_entry_unique", "tenant_id", "resource_type", "attribute", "value", unique=True,
              postgresql_where=text("is_unique")),
    )

    # the tenant leads the primary key (row-level security's condition is its first column): no separate index.
    # No foreign key to ``tenant``: row-level security binds each entry to the transaction's tenant, the document
    # an entry indexes is written in the same transaction under its own foreign key, and a check per entry (tens
    # per bill) costs a lookup of the tenant row each.
    tenant_id: Mapped[str] = mapped_column(
        String(63), server_default=text(f"current_setting('{TENANT_GUC}', true)"))
    resource_type: Mapped[str] = mapped_column(String(40))
    attribute: Mapped[str] = mapped_column(String(80))
    value: Mapped[str] = mapped_column(Text(collation="C"))
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


def default_normalizer(path: str) -> str:
    """How a sealed value is normalized before hashing, from the attribute's name."""
    leaf = path.rsplit(".", 1)[-1].lower()
    if "email" in leaf:
        return "email"
    if "phone" in leaf or leaf in ("faxnumber", "msisdn"):
        return "phone"
    if leaf.endswith("identificationid"):
        return "identifier"
    if leaf.endswith("name") or leaf in ("title", "placeofbirth"):
        return "name"
    return "exact"


def name_prefixes(normalized: str) -> set[str]:
    out: set[str] = set()
    for word in normalized.split():
        for n in range(PREFIX_MIN, min(len(word), PREFIX_MAX) + 1):
            out.add(word[:n])
    return out


def query_prefixes(raw: str) -> list[str]:
    """The indexed prefix of each word of a name query (words longer than the indexed prefixes are cut)."""
    return [w[:PREFIX_MAX] for w in normalize_name(raw).split() if len(w) >= PREFIX_MIN]


# --- declarations --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Indexed:
    """A searchable attribute declared explicitly (a nested path, or options)."""

    path: str
    #: normalization of sealed values before hashing (a ``NORMALIZERS`` key); default from the attribute's name
    normalize: str | None = None
    #: also index the word prefixes (name search); prefixes of sealed values are hashed too
    prefix: bool = False


#: ``(filter) -> condition`` over typed columns of the resource's table (None: not served, use the document)
ColumnFilter = Callable[[Filter], "ColumnElement[bool] | None"]
#: ``(document) -> [(attribute, value, field label)]``: values that must be unique per tenant
UniqueExtractor = Callable[[dict[str, Any]], list[tuple[str, str, str]]]


@dataclass(frozen=True)
class Searchable:
    """Which attributes of a resource the kit indexes for filters (see the module's documentation)."""

    include: tuple[str | Indexed, ...] = ()
    exclude: tuple[str, ...] = ()
    #: start from the specification's first-level attributes (see ``default_paths``)
    defaults: bool = True
    #: attributes served by typed columns of the resource's table (before the side table)
    columns: Mapping[str, ColumnFilter] = field(default_factory=dict)
    #: False when the table is written outside the kit (only ``columns`` then serve filters)
    side_table: bool = True
    unique: UniqueExtractor | None = None
    #: attributes no filter can serve (e.g. computed when read), with the reason given in the 400
    unsupported: Mapping[str, str] = field(default_factory=dict)


def default_paths(spec: Spec, definition: str, extra: Mapping[str, AttributeType] | None = None) -> list[str]:
    """The first-level attributes a client filters on: scalars (strings, enumerations, date-times, booleans),
    the ``id`` of references, and the documented extension attributes."""
    props, _ = spec._properties(spec.definitions[definition])
    out: list[str] = []
    for name in props:
        if name in NOT_BY_DEFAULT:
            continue
        attr = spec.attribute(definition, name)
        if attr is None:
            continue
        if attr.kind in INDEXED_KINDS:
            out.append(name)
        elif attr.kind in ("object", "any"):
            ref = spec.attribute(definition, f"{name}.id")
            if ref is not None and ref.kind == "string":
                out.append(f"{name}.id")
    for path, attr in (extra or {}).items():
        if attr.kind in INDEXED_KINDS and path not in out:
            out.append(path)
    return out


@dataclass(frozen=True)
class IndexedAttribute:
    path: str
    kind: str  # string | datetime | boolean
    sealed: bool
    normalize: str | None  # a NORMALIZERS key; None: the exact value
    prefix: bool = False

    def normalized(self, value: Any) -> str | None:
        """The value as indexed (before hashing, for sealed ones); None when it is not indexed."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, str):
            return None
        norm = NORMALIZERS[self.normalize](value) if self.normalize else value
        if self.sealed:
            return norm or None
        return norm if len(norm) <= MAX_VALUE else None


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def values_at(doc: Any, parts: Sequence[str]) -> list[Any]:
    """The values at a dotted path (arrays crossed)."""
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


@dataclass
class Compiled:
    """A list's filters compiled: the conditions on the resource's table and, when ``served`` (every filter
    answered by the side table), the subqueries of matching ids (``unique_first``: the first lists each id once)."""

    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    id_sets: list[Any] = field(default_factory=list)
    served: bool = True
    unique_first: bool = False

    def countable(self) -> bool:
        return self.served and bool(self.id_sets)


# --- one resource's index ------------------------------------------------------------------------------------
class SearchIndex:
    """The searchable attributes of one resource, resolved against its specification and codec."""

    def __init__(self, resource_type: str, table: Any, declaration: Searchable, spec: Spec, definition: str,
                 codec: DocumentCodec, extra: Mapping[str, AttributeType] | None = None) -> None:
        self.resource_type = resource_type
        self.table = table
        self.declaration = declaration
        self.codec = codec
        self.columns = dict(declaration.columns)
        self.side_table = declaration.side_table
        wanted: dict[str, Indexed] = {}
        if declaration.defaults:
            wanted = {p: Indexed(p) for p in default_paths(spec, definition, extra)}
        for item in declaration.include:
            ix = item if isinstance(item, Indexed) else Indexed(item)
            wanted[ix.path] = ix
        for path in declaration.exclude:
            wanted.pop(path, None)
        self.attributes: dict[str, IndexedAttribute] = {}
        for path, ix in wanted.items():
            attr = (extra or {}).get(path) or spec.attribute(definition, path)
            if attr is None:
                raise ValueError(f"{resource_type}: searchable attribute '{path}' is not in the specification")
            if attr.kind not in INDEXED_KINDS:
                raise ValueError(f"{resource_type}: '{path}' is a {attr.kind}; only strings, date-times and "
                                 "booleans are indexed")
            if path in self.columns:
                continue
            sealed = codec.sealed(path)
            normalize = ix.normalize or (default_normalizer(path) if sealed and attr.kind == "string" else None)
            if ix.normalize and ix.normalize not in NORMALIZERS:
                raise ValueError(f"{resource_type}: '{path}': unknown normalization '{ix.normalize}'")
            self.attributes[path] = IndexedAttribute(path, attr.kind, sealed, normalize, ix.prefix)

    @property
    def sealed_paths(self) -> list[str]:
        return sorted(p for p, a in self.attributes.items() if a.sealed)

    # --- entries ------------------------------------------------------------------------------------------
    def plain_entries(self, doc: dict[str, Any]) -> list[tuple[str, str, bool, bool]]:
        """``(attribute, value, to_hash, unique)`` of a plain (decoded) document, before hashing."""
        if not self.side_table:
            return []
        out: dict[tuple[str, str], tuple[str, str, bool, bool]] = {}
        for path, attr in self.attributes.items():
            for raw in values_at(doc, path.split(".")):
                value = attr.normalized(raw)
                if value is None:
                    continue
                out[(path, value)] = (path, value, attr.sealed, False)
                if attr.prefix and isinstance(raw, str):
                    for p in name_prefixes(normalize_name(raw)):
                        out[(path + "*", p)] = (path + "*", p, attr.sealed, False)
        for attribute, value, field_label in (self.declaration.unique(doc) if self.declaration.unique else []):
            if len(value) > MAX_VALUE:
                raise BadRequest(f"'{field_label}': at most {MAX_VALUE} characters", code="INVALID_BODY")
            label = f"unique:{attribute}"
            out[(label, value)] = (label, value, self.codec.sealed(attribute), True)
        return list(out.values())

    def entries(self, resource_id: str, doc: dict[str, Any], index_key: bytes | None) -> list[dict[str, Any]]:
        """The rows of ``search_entry`` for a plain document (sealed values hashed with the tenant's index key)."""
        rows = []
        for attribute, value, to_hash, unique in self.plain_entries(doc):
            if to_hash:
                if index_key is None:
                    raise RuntimeError(f"{self.resource_type}: no index key to hash '{attribute}'")
                value = self.digest(index_key, attribute, value)
            rows.append({"resource_type": self.resource_type, "attribute": attribute, "value": value,
                         "resource_id": resource_id, "is_unique": unique})
        return rows

    def digest(self, index_key: bytes, attribute: str, normalized: str) -> str:
        return _b64(blind_digest(index_key, self.resource_type, attribute, normalized))

    def needs_key(self) -> bool:
        return any(a.sealed for a in self.attributes.values()) or self.declaration.unique is not None

    async def write(self, ctx: Context, resource_id: str, doc: dict[str, Any], *, replace: bool) -> None:
        """Record a document's entries (in the caller's transaction), replacing the old ones on update."""
        if not self.side_table:
            return
        if replace:
            await self.forget(ctx, resource_id)
        key = await self.codec.index_key(ctx) if self.needs_key() else None
        rows = self.entries(resource_id, doc, key)
        # one statement of arrays (not a multi-row VALUES, compiled again for every number of rows)
        await insert_rows(ctx.session, SearchEntry, [r for r in rows if not r["is_unique"]],
                          on_conflict_do_nothing=True)
        labels = {f"unique:{a}": (v, lbl) for a, v, lbl in (
            self.declaration.unique(doc) if self.declaration.unique else [])}
        for row in (r for r in rows if r["is_unique"]):
            got = await ctx.session.execute(
                insert(SearchEntry).values(row)
                .on_conflict_do_nothing(index_elements=["tenant_id", "resource_type", "attribute", "value"],
                                        index_where=text("is_unique"))
                .returning(SearchEntry.resource_id))
            if got.first() is None:
                value, label = labels[row["attribute"]]
                raise Conflict(f"'{label}': '{value}' is already used by another {self.resource_type}",
                               code="DUPLICATE_EXTERNAL_ID")

    async def write_many(self, ctx: Context, docs: Sequence[tuple[str, dict[str, Any]]], *, replace: bool) -> None:
        """``write`` for many documents at once: the old entries dropped in one statement (on update), the plain
        entries of all of them in multi-row inserts; unique entries are claimed one by one (each may conflict)."""
        if not self.side_table or not docs:
            return
        if replace:
            ids = [resource_id for resource_id, _ in docs]
            for start in range(0, len(ids), INSERT_BATCH):
                await ctx.session.execute(delete(SearchEntry).where(
                    SearchEntry.resource_type == self.resource_type,
                    SearchEntry.resource_id.in_(ids[start:start + INSERT_BATCH])))
        if self.declaration.unique is not None:
            for resource_id, doc in docs:
                await self.write(ctx, resource_id, doc, replace=False)
            return
        key = await self.codec.index_key(ctx) if self.needs_key() else None
        plain = [r for resource_id, doc in docs for r in self.entries(resource_id, doc, key)]
        await insert_rows(ctx.session, SearchEntry, plain, on_conflict_do_nothing=True)

    async def rewrite_many(self, ctx: Context, docs: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        """``write_many(replace=True)`` of changed documents (``(id, before, after)`` each) writing only the entries
        that differ: those of the old document the new one has not are deleted, the new ones inserted (a change of
        no indexed attribute writes nothing). Resources with unique entries are rewritten whole."""
        if not self.side_table or not docs:
            return
        if self.declaration.unique is not None:
            await self.write_many(ctx, [(resource_id, after) for resource_id, _, after in docs], replace=True)
            return
        key = await self.codec.index_key(ctx) if self.needs_key() else None
        gone: list[tuple[str, str, str]] = []
        added: list[dict[str, Any]] = []
        for resource_id, before, after in docs:
            old = {(r["attribute"], r["value"]) for r in self.entries(resource_id, before, key)}
            rows = self.entries(resource_id, after, key)
            new = {(r["attribute"], r["value"]) for r in rows}
            gone += [(resource_id, attribute, value) for attribute, value in sorted(old - new)]
            added += [r for r in rows if (r["attribute"], r["value"]) not in old]
        for start in range(0, len(gone), INSERT_BATCH):
            chunk = gone[start:start + INSERT_BATCH]
            await ctx.session.execute(text(
                "DELETE FROM search_entry e USING unnest(CAST(:ids AS text[]), CAST(:attributes AS text[]), "
                "CAST(:values AS text[])) AS u(resource_id, attribute, value) WHERE e.resource_type = :type "
                "AND e.attribute = u.attribute AND e.value = u.value AND e.resource_id = u.resource_id"),
                {"ids": [c[0] for c in chunk], "attributes": [c[1] for c in chunk],
                 "values": [c[2] for c in chunk], "type": self.resource_type})
        await insert_rows(ctx.session, SearchEntry, added, on_conflict_do_nothing=True)

    async def forget(self, ctx: Context, resource_id: str) -> None:
        if not self.side_table:
            return
        await ctx.session.execute(delete(SearchEntry).where(
            SearchEntry.resource_type == self.resource_type, SearchEntry.resource_id == resource_id))

    async def _index_key(self, ctx: Context) -> bytes:
        key = await self.codec.index_key(ctx)
        if key is None:
            raise RuntimeError(f"{self.resource_type}: the codec seals values but gives no index key")
        return key

    # --- queries ------------------------------------------------------------------------------------------
    def _ids(self, attribute: str, cond: Any) -> Any:
        return select(SearchEntry.resource_id).where(
            SearchEntry.resource_type == self.resource_type, SearchEntry.attribute == attribute, cond)

    async def matching_ids(self, ctx: Context, path: str, values: Iterable[Any]) -> Any:
        """A subquery of the ids whose indexed ``path`` equals one of ``values`` (normalized like the index)."""
        attr = self.attributes[path]
        normalized = [n for v in values if (n := attr.normalized(v)) is not None]
        if attr.sealed:
            key = await self._index_key(ctx)
            normalized = [self.digest(key, path, n) for n in normalized]
        return self._ids(path, SearchEntry.value.in_(normalized))

    async def prefix_match(self, ctx: Context, path: str, query: str) -> Any:
        """A query of the ids whose ``path`` (declared with ``prefix``) has a word starting with each word of
        ``query`` (AND). One index range per word, joined on the id: the planner drives from the rarest prefix."""
        attr = self.attributes[path]
        words = list(dict.fromkeys(query_prefixes(query)))
        if not words:
            raise BadRequest(f"'{path}': give at least {PREFIX_MIN} characters", code="INVALID_QUERY")
        label = path + "*"
        if attr.sealed:
            key = await self._index_key(ctx)
            words = [self.digest(key, label, w) for w in words]
        tables = [aliased(SearchEntry) for _ in words]
        first = tables[0]
        stmt = select(first.resource_id).where(first.resource_type == self.resource_type,
                                               first.attribute == label, first.value == words[0])
        for t, word in zip(tables[1:], words[1:], strict=True):
            stmt = stmt.join(t, and_(t.resource_type == self.resource_type, t.attribute == label,
                                     t.value == word, t.resource_id == first.resource_id))
        return stmt

    async def compile(self, ctx: Context, filters: Sequence[Filter]) -> Compiled:
        """The SQL conditions of a list's filters (AND), and — when every one is answered by the side table — the
        subqueries of matching ids, from which the list can be counted without reading the documents. The range
        filters of one date-time attribute (``a.gte=…&a.lt=…``) become one index range."""
        out = Compiled()
        ranges: dict[str, list[Filter]] = {}
        for flt in filters:
            attr = self.attributes.get(flt.path) if self.side_table else None
            if (flt.op != "eq" and attr is not None and not attr.sealed and attr.kind == "datetime"
                    and flt.path not in self.columns and flt.path not in self.declaration.unsupported):
                ranges.setdefault(flt.path, []).append(flt)
                continue
            cond, ids = await self._condition(ctx, flt)
            out.conditions.append(cond)
            if ids is None:
                out.served = False
            elif flt.op == "eq" and len(flt.values) == 1 and not out.unique_first:
                # one value: its entries are unique per resource (the primary key), so it counts without DISTINCT
                out.id_sets.insert(0, ids)
                out.unique_first = True
            else:
                out.id_sets.append(ids)
        compare = {"gt": SearchEntry.value.__gt__, "gte": SearchEntry.value.__ge__,
                   "lt": SearchEntry.value.__lt__, "lte": SearchEntry.value.__le__}
        for path, group in ranges.items():
            await self._custom_plans(ctx)
            ids = self._ids(path, and_(*[compare[f.op](f.values[0]) for f in group]))
            out.conditions.append(self.table.id.in_(ids))
            out.id_sets.append(ids)
        return out

    async def condition(self, ctx: Context, flt: Filter) -> ColumnElement[bool]:
        """The SQL condition of one filter: a typed column, the side table, or the document path filter."""
        return (await self._condition(ctx, flt))[0]

    async def _condition(self, ctx: Context, flt: Filter) -> tuple[ColumnElement[bool], Any | None]:
        table = self.table
        reason = self.declaration.unsupported.get(flt.path)
        if reason is not None:
            raise BadRequest(f"cannot filter by '{flt.path}': {reason}", code="INVALID_FILTER")
        if flt.path in ("id", "href") and flt.op == "eq":
            return table.id.in_([str(v).rstrip("/").rsplit("/", 1)[-1] for v in flt.values]), None
        column = self.columns.get(flt.path)
        if column is not None:
            cond = column(flt)
            if cond is not None:
                return cond, None
        attr = self.attributes.get(flt.path) if self.side_table else None
        if attr is not None:
            if attr.sealed:
                if flt.op != "eq":
                    raise BadRequest(f"filter '{flt.path}.{flt.op}': '{flt.path}' is stored encrypted and "
                                     "supports exact match only", code="INVALID_FILTER")
                await self._custom_plans(ctx)
                ids = await self.matching_ids(ctx, flt.path, flt.values)
                return table.id.in_(ids), ids
            values = [attr.normalized(v) for v in flt.values]
            if all(v is not None for v in values):
                if flt.op == "eq":
                    await self._custom_plans(ctx)
                    ids = self._ids(flt.path, SearchEntry.value.in_(values))
                    return table.id.in_(ids), ids
                if attr.kind == "datetime":  # fixed-width UTC strings: string order is time order
                    await self._custom_plans(ctx)
                    compare = {"gt": SearchEntry.value.__gt__, "gte": SearchEntry.value.__ge__,
                               "lt": SearchEntry.value.__lt__, "lte": SearchEntry.value.__le__}[flt.op]
                    ids = self._ids(flt.path, compare(values[0]))
                    return table.id.in_(ids), ids
        elif self.codec.sealed(flt.path):
            searchable = ", ".join(self.sealed_paths) or "none"
            raise BadRequest(f"cannot filter by '{flt.path}': it is stored encrypted and not searchable "
                             f"(searchable encrypted attributes: {searchable})", code="INVALID_FILTER")
        return sql_condition(flt, table.body), None

    async def _custom_plans(self, ctx: Context) -> None:
        # How many rows an entry matches depends on the value ('Active': most offerings, a name: one), so a generic
        # plan of the prepared statement (estimated for one row) is badly wrong for common values: plan this
        # transaction's statements with their actual values.
        if ctx.session.info.get("search_custom_plans"):
            return
        await ctx.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        ctx.session.info["search_custom_plans"] = True

    def owner_ids(self, path: str, party_id: str) -> Any | None:
        """The ids of the rows whose plain indexed ``path`` is ``party_id`` (owner scoping), when indexed."""
        attr = self.attributes.get(path) if self.side_table else None
        if attr is None or attr.sealed:
            return None
        return self._ids(path, SearchEntry.value == party_id)


# --- typed columns -------------------------------------------------------------------------------------------
def column_filter(column: Any, convert: Callable[[Any], Any] | None = None) -> ColumnFilter:
    """A ``ColumnFilter`` comparing a column of the resource's table (``convert`` maps a filter value to the
    column's type, e.g. a date-time string to a ``datetime``)."""

    def build(flt: Filter) -> ColumnElement[bool] | None:
        values = [convert(v) if convert else v for v in flt.values]
        if flt.op == "eq":
            return column.in_(values)
        compare = {"gt": column.__gt__, "gte": column.__ge__, "lt": column.__lt__, "lte": column.__le__}[flt.op]
        return compare(values[0])

    return build


def datetime_column(column: Any) -> ColumnFilter:
    """A ``ColumnFilter`` for a timestamp column rendered in the kit's millisecond form: compares as the rendered
    value does (the column's sub-millisecond part ignored), with conditions the column's index serves."""
    from datetime import datetime, timedelta

    ms = timedelta(milliseconds=1)

    def moment(value: Any) -> datetime:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    def build(flt: Filter) -> ColumnElement[bool] | None:
        values = [moment(v) for v in flt.values]
        if flt.op == "eq":
            return or_(*[and_(column >= v, column < v + ms) for v in values])
        v = values[0]
        conds = {"gt": column >= v + ms, "gte": column >= v, "lt": column < v, "lte": column < v + ms}
        return conds[flt.op]

    return build


# --- (re)building the entries of existing rows -----------------------------------------------------------------
def rebuild_sync(connection: Any, indexes: Iterable[SearchIndex], *, keyring: Any | None = None,
                 batch: int = 1000, log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Rebuild the entries of ``indexes`` from the stored documents of every tenant, on a synchronous connection
    (the migrations' own, in their transaction). Sealed values are decrypted with the tenants' data keys (the
    master keyring of the settings, unless given) and hashed with their index keys. Returns entries per type."""
    from sqlalchemy import delete as sql_delete
    from sqlalchemy import inspect

    from openbss.platform.crypto import MasterKeyring, aad_for, is_sealed, tenant_keys_sync, unseal_document
    from openbss.settings import get_settings

    # a resource declared by the code but whose table a later migration creates has nothing to rebuild yet
    existing = set(inspect(connection).get_table_names())
    targets = [ix for ix in indexes if ix.side_table and ix.table.__table__.name in existing]
    counts = {ix.resource_type: 0 for ix in targets}
    tenants = [r[0] for r in connection.execute(text("SELECT id FROM tenant ORDER BY id"))]
    for tenant in tenants:
        connection.execute(text(f"SELECT set_config('{TENANT_GUC}', :t, true)"), {"t": tenant})
        keys: tuple[dict[str, bytes], bytes] | None = None
        for ix in targets:
            connection.execute(sql_delete(SearchEntry).where(SearchEntry.tenant_id == tenant,
                                                             SearchEntry.resource_type == ix.resource_type))
            table = ix.table.__table__
            last = ""
            while True:
                rows = connection.execute(select(table.c.id, table.c.body).where(
                    table.c.tenant_id == tenant, table.c.id > last).order_by(table.c.id).limit(batch)).all()
                if not rows:
                    break
                last = rows[-1][0]
                entries: list[dict[str, Any]] = []
                for rid, body in rows:
                    needs = ix.needs_key() or _has_sealed(body, is_sealed)
                    if needs and keys is None:
                        if keyring is None:
                            keyring = MasterKeyring(get_settings())
                        keys = tenant_keys_sync(connection, keyring, tenant)
                    doc = unseal_document(body, keys[0], aad_for(tenant, ix.resource_type, rid)) if (
                        keys is not None and _has_sealed(body, is_sealed)) else body
                    entries += [{**e, "tenant_id": tenant}
                                for e in ix.entries(rid, doc, keys[1] if keys is not None else None)]
                if entries:
                    connection.execute(insert(SearchEntry).on_conflict_do_nothing(), entries)
                    counts[ix.resource_type] += len(entries)
            if log:
                log(f"{tenant} {ix.resource_type}: {counts[ix.resource_type]} entries so far")
    return counts


def _has_sealed(value: Any, is_sealed: Callable[[Any], bool]) -> bool:
    if isinstance(value, dict):
        return any(_has_sealed(v, is_sealed) for v in value.values())
    if isinstance(value, list):
        return any(_has_sealed(v, is_sealed) for v in value)
    return is_sealed(value)


def indexes_of(apis: Iterable[Any]) -> list[SearchIndex]:
    """The search index of every resource of ``apis`` (``TmfApi`` declarations)."""
    return [SearchIndex(r.type, r.table, r.searchable, api.spec, r.read_definition or r.type, r.codec,
                        r.extra_attributes) for api in apis for r in api.resources]


__all__ = [
    "NORMALIZERS",
    "ColumnFilter",
    "Indexed",
    "IndexedAttribute",
    "SearchEntry",
    "SearchIndex",
    "Searchable",
    "UniqueExtractor",
    "column_filter",
    "datetime_column",
    "default_paths",
    "indexes_of",
    "name_prefixes",
    "normalize_email",
    "normalize_identifier",
    "normalize_name",
    "normalize_phone",
    "query_prefixes",
    "rebuild_sync",
    "values_at",
]

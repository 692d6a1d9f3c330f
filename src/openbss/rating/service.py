"""Mediation and batch rating: a usage file in, rated TMF635 usage out, each record exactly once.

``ingest`` registers the file once by (source, name, SHA-256) — the same file again is a duplicate and changes
nothing — then, in the caller's transaction: validates and normalizes every record (``layouts``), guides each to
the subscription that used the number at the event time (``rating_number_assignment``; a number without history is
guided to its current charging account), locks the accounts concerned (one rater per account at a time, so
allowances are consumed once), drops records already rated or already waiting in suspense (stable record key),
rates the rest in event-time order with the ``pricing`` functions (``rater``), stores the rated usage as TMF635
``usage`` with ``COPY`` (through online charging's service) and the others in the suspense queue with their reason.
The file's counts always reconcile: received = rated + duplicate + rejected + suspended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import polars as pl
from sqlalchemy import String, any_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert

from openbss.catalog.service import CompiledTariff
from openbss.platform.db import utcnow
from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import Context, ResourceService
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.usage import BASE_UNIT, from_minor, unit_rate
from openbss.rating import columnar, layouts
from openbss.rating.errors import (
    ConcurrentRating,
    InvalidNumberAssignment,
    InvalidRerate,
    InvalidUsageRecord,
    RerateJobConflict,
    SuspendedRecordNotFound,
    UnreadableUsageFile,
)
from openbss.rating.layouts import LayoutError, Rejection, UsageRecord
from openbss.rating.models import (
    AllowanceConsumption,
    FileChunk,
    ImsiAssignment,
    NumberAssignment,
    RerateJob,
    SuspendedRecord,
    UsageFile,
)
from openbss.rating.models import UsageSpecification as UsageSpecificationRow
from openbss.rating.rater import Line, Rated, Unratable, in_event_order, period_of, resolve_rate
from openbss.rating.specifications import default_specifications, specification_name
from openbss.rating.vectorized import VectorizedRateError, _applicable, _prepare, rate_batch, rate_frame

USAGE_PATH = "/tmf-api/usageManagement/v4"


class ChargingAccounts(Protocol):
    """What rating asks online charging: the accounts (subscriptions) usage is charged to, and the TMF635 usage
    store."""

    async def get_account(self, ctx: Context, account_id: str | None = None, *, subscriber: str | None = None,
                          product_id: str | None = None) -> dict[str, Any]: ...

    async def accounts_for_rating(self, ctx: Context, *, subscribers: list[str] | None = None,
                                  account_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """The accounts of these subscribers (MSISDN digits; ``subscriber`` in each) or with these ids, at once."""
        ...

    async def store_batch_usage(self, ctx: Context, rows: list[dict[str, Any]]) -> set[str]: ...

    async def store_batch_usage_columns(self, ctx: Context, data: bytes, columns: list[tuple[str, str]], body: str,
                                        args: list[Any]) -> int: ...

    async def batch_usage_present(self, ctx: Context, keys: list[str]) -> set[str]: ...

    async def batch_usage_rows(self, ctx: Context, account_ids: list[str], since: datetime, before: datetime,
                               ) -> list[dict[str, Any]]: ...

    async def batch_usage_accounts(self, ctx: Context, since: datetime, before: datetime) -> list[str]: ...

    async def batch_usage_later(self, ctx: Context, earliest: dict[str, datetime], before: datetime) -> set[str]: ...

    async def charging_settings(self, ctx: Context) -> dict[str, Any]:
        """The tenant's charging conventions (``bandChange``: how a call crossing a time-band change is rated)."""
        ...


class TariffCatalog(Protocol):
    async def compiled_tariff(self, ctx: Context, tariff_id: str) -> CompiledTariff: ...

    async def tariff_versions(self, ctx: Context, tariff_id: str) -> list[str]: ...


@dataclass
class Outcome:
    """What became of the records of one batch (a file, or re-processed suspense)."""

    rated: list[Rated] = field(default_factory=list)
    duplicate: list[UsageRecord] = field(default_factory=list)
    suspended: list[tuple[UsageRecord, str]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)  # the TMF635 usage stored, in rating order
    #: parts of sessions still incomplete (filed in suspense as ``partial``)
    waiting: list[UsageRecord] = field(default_factory=list)
    #: assembled session key -> the parts of this batch it was made of
    expansions: dict[str, list[UsageRecord]] = field(default_factory=dict)
    #: assembled session key -> suspense rows of earlier parts it consumed
    consumed_parts: dict[str, list[int]] = field(default_factory=dict)
    #: records rated before that got a new version because a late record of their period came in this batch
    resequenced: int = 0

    def parts_of(self, record: UsageRecord) -> list[UsageRecord]:
        """The received records an outcome record stands for (the parts of an assembled session)."""
        return self.expansions.get(record.key, [record])

    def amounts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.rated:
            out[r.currency] += r.amount_minor
        return dict(out)


def _any(values: Iterable[str]) -> Any:
    """``= ANY(array)``: one parameter however many values (an IN list is limited to 32,767 parameters)."""
    return any_(bindparam(None, list(values), type_=ARRAY(String)))


CHUNK = 2000  # rows per multi-row INSERT (each row's columns are parameters)
STORE_CHUNK = 20_000  # rated usage stored per COPY while the next chunk's documents are built
COLUMN_STORE_CHUNK = 50_000  # the same, for the columnar pipeline
YIELD_EVERY = 1000


def prepaid_reason(msisdn: str, account_id: str) -> str:
    """Why a record of a prepaid line is not rated from a file: online charging takes a prepaid line's usage from
    its balance as it happens; a record of it rated again here would be money counted (as prepaid revenue) that no
    balance paid."""
    return (f"number {msisdn} is a prepaid line (charging account '{account_id}'): its usage is charged online, "
            "not rated from files")


def _line_of(acc: Mapping[str, Any], msisdn: str) -> Line:
    return Line(account_id=acc["id"], msisdn=msisdn, product_id=acc.get("product_id"),
                offering_id=acc.get("offering_id"), billing_account_id=acc.get("billing_account_id"),
                party_id=acc.get("party_id"), party_type=acc.get("party_type") or "Individual",
                currency=acc["currency"], time_zone=acc.get("time_zone") or "UTC", plan=acc.get("plan") or {})


def _record_of(key: str, row: Mapping[str, Any]) -> UsageRecord:
    """The usage record a stored usage was rated from (its characteristics)."""
    chars = {c["name"]: c.get("value") for c in row["body"].get("usageCharacteristic") or []}
    return UsageRecord(key=key, record_id=str(chars.get("recordId")), origin=str(chars.get("origin")),
                       msisdn=str(chars.get("subscriber") or ""), event_time=row["usage_date"],
                       usage_type=row["usage_type"], quantity=int(chars.get("quantity") or 0),
                       called_number=chars.get("calledParty"), visited_country=chars.get("visitedCountry"),
                       apn=chars.get("apn"), imsi=chars.get("imsi"), direction=chars.get("direction") or "originating",
                       calling_number=chars.get("callingParty"), visited_network=chars.get("visitedNetwork"))


#: the characteristics of a stored usage that describe the record itself (what ``_record_of`` reads), not its rating
_RECORD_CHARACTERISTICS = frozenset({"recordId", "origin", "subscriber", "quantity", "unit", "calledParty",
                                     "callingParty", "direction", "visitedNetwork", "visitedCountry", "apn", "imsi",
                                     "usageFile"})


def _not_rated(row: Mapping[str, Any]) -> bool:
    """Whether a stored version is one that is not rated (a record that could not be rated again: ``_void_rows``)."""
    return any(c.get("name") == "notRated" for c in row["body"].get("usageCharacteristic") or [])


def _uuids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs at once: one ``os.urandom`` call instead of one per record."""
    raw = bytearray(os.urandom(16 * n))
    for i in range(6, 16 * n, 16):
        raw[i] = (raw[i] & 0x0F) | 0x40
        raw[i + 2] = (raw[i + 2] & 0x3F) | 0x80
    h = raw.hex()
    return [f"{h[j:j + 8]}-{h[j + 8:j + 12]}-{h[j + 12:j + 16]}-{h[j + 16:j + 20]}-{h[j + 20:j + 32]}"
            for j in range(0, 32 * n, 32)]


def partition_of(msisdn: str, partitions: int) -> int:
    """The work-queue partition of a subscriber's records (stable across processes and versions: CRC-32)."""
    return zlib.crc32(msisdn.encode()) % partitions


def _raw_of(record: UsageRecord) -> dict[str, Any]:
    raw: dict[str, Any] = {"recordId": record.record_id, "origin": record.origin, "msisdn": record.msisdn,
                           "eventTime": format_datetime(record.event_time), "usageType": record.usage_type,
                           "quantity": record.quantity, "unit": BASE_UNIT[record.usage_type]}
    for name, value in (("calledNumber", record.called_number), ("visitedCountry", record.visited_country),
                        ("apn", record.apn), ("imsi", record.imsi), ("sessionId", record.session_id),
                        ("partNumber", record.part_number), ("callingNumber", record.calling_number),
                        ("visitedNetwork", record.visited_network)):
        if value is not None:
            raw[name] = value
    if record.session_id is not None:
        raw["lastPart"] = record.last_part
    if record.direction != "originating":
        raw["direction"] = record.direction
    return raw


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _records_of(frame: pl.DataFrame) -> list[UsageRecord]:
    """Records read as columns (``columnar.COLUMNS``), as the scalar pipeline takes them."""
    return [UsageRecord(key=r["key"], record_id=r["record_id"], origin=r["origin"], msisdn=r["msisdn"],
                        event_time=r["event_time"].astimezone(UTC), usage_type=r["usage_type"],
                        quantity=r["quantity"], called_number=r["called_number"],
                        visited_country=r["visited_country"], apn=r["apn"], imsi=r["imsi"],
                        direction=r["direction"], calling_number=r["calling_number"],
                        visited_network=r["visited_network"])
            for r in frame.select(columnar.COLUMNS).iter_rows(named=True)]


class RatingService:
    def __init__(self, charging: ChargingAccounts, catalog: TariffCatalog) -> None:
        self.charging = charging
        self.catalog = catalog
        #: the TMF635 usageSpecification resource (built with the usage API by the composition root)
        self.specifications: ResourceService | None = None
        self._tariffs: dict[tuple[str, str], CompiledTariff] = {}
        #: rate with the vectorized core where it applies (False: record by record, the scalar path alone)
        self.vectorize = True
        #: CSV files: the plainly valid records kept as columns from the reader to storage (``_ingest_columns``)
        self.columnar = True

    # --- usage specifications --------------------------------------------------------------------------------
    async def specification_refs(self, ctx: Context) -> dict[str, dict[str, Any]]:
        """name -> reference of the tenant's usage specifications, creating the default ones that are missing."""
        async def read() -> dict[Any, tuple[str, dict[str, Any]]]:
            rows = (await ctx.session.execute(select(UsageSpecificationRow.id, UsageSpecificationRow.body))).all()
            return {r.body.get("name"): (r.id, r.body) for r in rows}

        by_name = await read()
        defaults = default_specifications()
        if self.specifications is not None and any(spec["name"] not in by_name for spec in defaults):
            # one creator at a time (two first files of a tenant at once would create them twice)
            await ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('rating-specifications'))"))
            by_name = await read()
            for spec in defaults:
                if spec["name"] not in by_name:
                    doc = await self.specifications.record(ctx, spec)
                    by_name[spec["name"]] = (doc["id"], doc)
        return {name: {"id": sid, "href": f"{ctx.base_url}{USAGE_PATH}/usageSpecification/{sid}", "name": name,
                       "@referredType": "UsageSpecification"} for name, (sid, _) in by_name.items()}

    # --- guiding ---------------------------------------------------------------------------------------------
    async def assign_number(self, ctx: Context, msisdn: str, account_id: str, valid_from: datetime) -> None:
        """Record that ``msisdn`` is used by the subscription of charging account ``account_id`` from
        ``valid_from`` on; the previous assignment of the number ends then."""
        if valid_from.tzinfo is None:
            raise InvalidNumberAssignment("'valid_from' must carry a time zone")
        try:
            number = layouts.normalize_number(msisdn)
        except ValueError as exc:
            raise InvalidNumberAssignment(str(exc)) from exc
        try:
            await self.charging.get_account(ctx, account_id)
        except NotFound as exc:
            raise InvalidNumberAssignment(f"charging account '{account_id}' not found") from exc
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('rating-number:' || :n))"),
                                  {"n": number})
        later = await ctx.session.scalar(select(func.count()).select_from(NumberAssignment).where(
            NumberAssignment.msisdn == number, NumberAssignment.valid_from >= valid_from))
        if later:
            raise InvalidNumberAssignment(f"number {number} already has an assignment from {valid_from.isoformat()} "
                                          "or later")
        await ctx.session.execute(update(NumberAssignment).where(
            NumberAssignment.msisdn == number, NumberAssignment.valid_to.is_(None)).values(valid_to=valid_from))
        ctx.session.add(NumberAssignment(msisdn=number, account_id=account_id, valid_from=valid_from))
        await ctx.session.flush()

    async def assign_imsi(self, ctx: Context, imsi: str, account_id: str, valid_from: datetime) -> None:
        """Record that the SIM ``imsi`` is used by the subscription of charging account ``account_id`` from
        ``valid_from`` on; its previous assignment ends then. Records carrying this IMSI are guided by it."""
        if valid_from.tzinfo is None:
            raise InvalidNumberAssignment("'valid_from' must carry a time zone")
        imsi = imsi.strip()
        if not (imsi.isascii() and imsi.isdigit() and 6 <= len(imsi) <= 15):
            raise InvalidNumberAssignment(f"IMSI '{imsi}' is not 6 to 15 digits")
        try:
            await self.charging.get_account(ctx, account_id)
        except NotFound as exc:
            raise InvalidNumberAssignment(f"charging account '{account_id}' not found") from exc
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('rating-imsi:' || :n))"), {"n": imsi})
        later = await ctx.session.scalar(select(func.count()).select_from(ImsiAssignment).where(
            ImsiAssignment.imsi == imsi, ImsiAssignment.valid_from >= valid_from))
        if later:
            raise InvalidNumberAssignment(f"IMSI {imsi} already has an assignment from {valid_from.isoformat()} "
                                          "or later")
        await ctx.session.execute(update(ImsiAssignment).where(
            ImsiAssignment.imsi == imsi, ImsiAssignment.valid_to.is_(None)).values(valid_to=valid_from))
        ctx.session.add(ImsiAssignment(imsi=imsi, account_id=account_id, valid_from=valid_from))
        await ctx.session.flush()

    async def _lines(self, ctx: Context, records: Iterable[UsageRecord],
                     ) -> tuple[dict[str, Line], list[tuple[UsageRecord, str]]]:
        """record key -> guided line; and the records that cannot be guided, with the reason."""
        records = list(records)
        numbers = sorted({r.msisdn for r in records})
        history: dict[str, list[tuple[datetime, datetime | None, str]]] = defaultdict(list)
        for row in (await ctx.session.execute(select(NumberAssignment).where(
                NumberAssignment.msisdn == _any(numbers)))).scalars():
            history[row.msisdn].append((row.valid_from, row.valid_to, row.account_id))
        sims: dict[str, list[tuple[datetime, datetime | None, str]]] = defaultdict(list)
        imsis = sorted({r.imsi for r in records if r.imsi})
        if imsis:
            for sim in (await ctx.session.execute(select(ImsiAssignment).where(
                    ImsiAssignment.imsi == _any(imsis)))).scalars():
                sims[sim.imsi].append((sim.valid_from, sim.valid_to, sim.account_id))
        # the accounts concerned, read together: by number (no assignment history) and by id (from the histories)
        plain = sorted({r.msisdn for r in records if r.msisdn not in history and not (r.imsi and r.imsi in sims)})
        by_subscriber = {a["subscriber"]: a for a in await self.charging.accounts_for_rating(ctx, subscribers=plain)}
        accounts: dict[str, dict[str, Any] | None] = {a["id"]: a for a in by_subscriber.values()}
        # (numbers are E.164 digits, as charging keys its subscribers: a number not found has no subscription)
        current: dict[str, str | None] = {n: by_subscriber[n]["id"] if n in by_subscriber else None for n in plain}
        assigned = {a for h in (*history.values(), *sims.values()) for _, _, a in h} - set(accounts)
        if assigned:
            accounts.update({a["id"]: a for a in await self.charging.accounts_for_rating(
                ctx, account_ids=sorted(assigned))})

        async def account(account_id: str | None = None, subscriber: str | None = None) -> dict[str, Any] | None:
            try:
                return await self.charging.get_account(ctx, account_id, subscriber=subscriber)
            except NotFound:
                return None

        guided: dict[str, Line] = {}
        lines_of: dict[tuple[str, str], Line] = {}  # one line per subscription and number (lines are immutable)
        failed: list[tuple[UsageRecord, str]] = []
        for r in records:
            if r.imsi is not None and r.imsi in sims:  # the SIM's history decides (a number may have moved)
                found = [a for f, t, a in sims[r.imsi] if f <= r.event_time and (t is None or r.event_time < t)]
                if not found:
                    failed.append((r, f"IMSI {r.imsi} was not assigned to a subscription at "
                                      f"{format_datetime(r.event_time)}"))
                    continue
                account_id = found[0]
            elif r.msisdn in history:
                found = [a for f, t, a in history[r.msisdn] if f <= r.event_time and (t is None or r.event_time < t)]
                if not found:
                    failed.append((r, f"number {r.msisdn} was not assigned to a subscription at "
                                      f"{format_datetime(r.event_time)}"))
                    continue
                account_id = found[0]
            else:
                if r.msisdn not in current:
                    acc = await account(subscriber=r.msisdn)
                    current[r.msisdn] = acc["id"] if acc else None
                    if acc:
                        accounts[acc["id"]] = acc
                known = current[r.msisdn]
                if known is None:
                    failed.append((r, f"unknown number {r.msisdn}: no subscription uses it"))
                    continue
                account_id = known
            if account_id not in accounts:
                accounts[account_id] = await account(account_id)
            acc = accounts[account_id]
            if acc is None:
                failed.append((r, f"charging account '{account_id}' of number {r.msisdn} not found"))
                continue
            if acc.get("payment_type") == "prepaid":
                failed.append((r, prepaid_reason(r.msisdn, account_id)))
                continue
            line = lines_of.get((account_id, r.msisdn))
            if line is None:
                line = lines_of[(account_id, r.msisdn)] = _line_of(acc, r.msisdn)
            guided[r.key] = line
        return guided, failed

    async def _tariffs_for(self, ctx: Context, lines: Iterable[Line]) -> dict[str, CompiledTariff]:
        out: dict[str, CompiledTariff] = {}
        for line in lines:
            for entry in line.plan.values():
                tid = entry.get("tariffId") if isinstance(entry, Mapping) else None
                if not tid or tid in out:
                    continue
                key = (ctx.principal.tenant_id, tid)
                if key not in self._tariffs:
                    try:
                        self._tariffs[key] = await self.catalog.compiled_tariff(ctx, tid)
                    except NotFound:
                        continue
                out[tid] = self._tariffs[key]
        return out

    # --- the pipeline ----------------------------------------------------------------------------------------
    async def process(self, ctx: Context, records: list[UsageRecord], file_id: str | None,
                      pending_keys: Iterable[str] = ()) -> Outcome:
        """Guide, deduplicate, rate and store ``records``; what cannot be guided or rated is returned as suspended
        (the caller files it). ``pending_keys``: suspended records being re-processed (not duplicates of
        themselves)."""
        out = Outcome()
        seen: set[str] = set()
        unique: list[UsageRecord] = []
        for r in records:
            if r.key in seen:
                out.duplicate.append(r)
            else:
                seen.add(r.key)
                unique.append(r)
        lines, failed = await self._lines(ctx, unique)
        # one rater per account at a time (allowances consumed exactly once), locks taken in a fixed order
        for account_id in sorted({line.account_id for line in lines.values()}):
            await ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('rating-account:' || :a))"),
                                      {"a": account_id})
        keys = [r.key for r in unique]
        done = await self.charging.batch_usage_present(ctx, [f"cdr:{k}" for k in keys])
        pending_keys = set(pending_keys)
        waiting = set((await ctx.session.execute(select(SuspendedRecord.record_key).where(
            SuspendedRecord.status.in_(("pending", "assembled")), SuspendedRecord.record_key == _any(keys)))).scalars())
        waiting -= pending_keys
        fresh = []
        for r in unique:
            if f"cdr:{r.key}" in done or r.key in waiting:
                out.duplicate.append(r)
            else:
                fresh.append(r)
        fresh_keys = {r.key for r in fresh}
        out.suspended.extend((r, reason) for r, reason in failed if r.key in fresh_keys)
        parts = [r for r in fresh if r.session_id is not None and r.key in lines]
        fresh = [r for r in fresh if r.session_id is None] + await self._assemble(ctx, parts, lines, pending_keys, out)
        guided = in_event_order((r, lines[r.key]) for r in fresh if r.key in lines)
        tariffs = await self._tariffs_for(ctx, {g[1].account_id: g[1] for g in guided}.values())
        consumed = await self._consumption(ctx, guided)
        # late records: the records already rated after them in their account's period are rated again with them,
        # in event-time order, the period's allowances consumed from its start (new versions where figures change)
        earlier = await self._resequence(ctx, guided, consumed)
        before = dict(consumed)
        band_change = (await self.charging.charging_settings(ctx))["bandChange"] if guided else "start"
        together = in_event_order([*guided, *((r, line) for r, line, _ in earlier)]) if earlier else guided
        rated, unratable = rate_batch(together, tariffs, band_change, consumed, vectorize=self.vectorize)
        versions: list[dict[str, Any]] = []
        specs = await self.specification_refs(ctx)
        now = utcnow()
        if earlier:
            old_rows = {r.key: row for r, _, row in earlier}
            again = [x for x in rated if x.record.key in old_rows]
            rated = [x for x in rated if x.record.key not in old_rows]
            why = f"late records of file {file_id or 'api'}"
            for x in again:
                versions.extend(self._version_rows(ctx, old_rows[x.record.key], x, specs, format_datetime(now), why,
                                                   "resequencedBy"))
            # a record rated before that cannot be rated now is reversed whole (its allowance included: the period's
            # consumption is rebuilt without it)
            for r, reason in unratable:
                if r.key in old_rows:
                    versions.extend(self._void_rows(ctx, old_rows[r.key], reason, format_datetime(now), why,
                                                    "resequencedBy"))
            unratable = [(r, reason) for r, reason in unratable if r.key not in old_rows]
            out.resequenced = len(versions) // 2
        out.rated.extend(rated)
        out.suspended.extend(unratable)
        rows, stored = await self._store(ctx, out.rated, specs, format_datetime(now), file_id)
        out.documents = [row["body"] for row in rows]
        if len(stored) != len(rows):  # cannot happen under the account locks; a guard against double rating
            raise ConcurrentRating("usage records were stored concurrently by another rater; deliver the file again")
        if versions:
            done_versions = await self.charging.store_batch_usage(ctx, versions)
            if len(done_versions) != len({v["key"] for v in versions}):
                raise ConcurrentRating("usage was re-rated concurrently; deliver the file again")
        used = [i for ids in out.consumed_parts.values() for i in ids]
        if used:
            await ctx.session.execute(update(SuspendedRecord).where(SuspendedRecord.id.in_(used)).values(
                status="assembled", resolved_at=utcnow()))
        # the parts of this batch that went into a session are remembered too: delivered again, they are duplicates
        remembered = [{"file_id": file_id, "line": None, "record_key": p.key, "category": "partial",
                       "reason": f"part {p.part_number} of session {p.session_id}: assembled", "raw": _raw_of(p),
                       "status": "assembled", "resolved_at": now}
                      for key, new in out.expansions.items() for p in new if p.key not in pending_keys]
        for i in range(0, len(remembered), CHUNK):
            await ctx.session.execute(insert(SuspendedRecord).values(remembered[i:i + CHUNK]))
        changed = [(k, v) for k, v in consumed.items() if before.get(k) != v]
        for i in range(0, len(changed), CHUNK):
            await ctx.session.execute(insert(AllowanceConsumption).values([
                {"account_id": a, "period": p, "allowance_key": key, "consumed": v}
                for (a, p, key), v in changed[i:i + CHUNK]
            ]).on_conflict_do_update(index_elements=["tenant_id", "account_id", "period", "allowance_key"],
                                     set_={"consumed": insert(AllowanceConsumption).excluded.consumed}))
        return out

    async def _resequence(self, ctx: Context, guided: list[tuple[UsageRecord, Line]],
                          consumed: dict[tuple[str, str, str], int],
                          ) -> list[tuple[UsageRecord, Line, dict[str, Any]]]:
        """The current versions of the records already rated after the earliest new record of each account, in the
        same billing period, when there are some (the new record is late); ``consumed`` of those periods is reset
        to their start (the whole period is consumed again, in event-time order)."""
        earliest: dict[str, datetime] = {}
        line_of: dict[str, Line] = {}
        periods: dict[str, set[str]] = defaultdict(set)
        for r, line in guided:
            if not any(isinstance(e, Mapping) and e.get("allowances") for e in line.plan.values()):
                continue  # without allowances, rating does not depend on the order of the records
            if line.account_id not in earliest or r.event_time < earliest[line.account_id]:
                earliest[line.account_id] = r.event_time
            line_of[line.account_id] = line
            periods[line.account_id].add(period_of(r.event_time, line.time_zone))
        if not earliest:
            return []
        latest = max(r.event_time for r, line in guided if line.account_id in earliest)
        horizon = latest + timedelta(days=32)  # records after the batch's latest period cannot share a period
        late = await self.charging.batch_usage_later(ctx, earliest, horizon)
        if not late:
            return []
        since = min(earliest[a] for a in late) - timedelta(days=32)
        rows = await self.charging.batch_usage_rows(ctx, sorted(late), since, horizon)
        current: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["rating_group"] == 0 and (row["session_id"] not in current
                                             or row["request_number"] > current[row["session_id"]]["request_number"]):
                current[row["session_id"]] = row
        new_keys = {r.key for r, _ in guided}
        out: list[tuple[UsageRecord, Line, dict[str, Any]]] = []
        for key, row in current.items():
            line = line_of[row["account_id"]]
            record = _record_of(key[len("cdr:"):], row)
            if record.key in new_keys or period_of(record.event_time, line.time_zone) not in periods[line.account_id]:
                continue
            out.append((record, replace(line, msisdn=record.msisdn), row))
        touched = {(line.account_id, period_of(r.event_time, line.time_zone)) for r, line, _ in out}
        if touched:
            for k in list(consumed):
                if (k[0], k[1]) in touched:
                    consumed[k] = 0
        return out

    def _version_rows(self, ctx: Context, old: dict[str, Any], r: Rated, specs: Mapping[str, dict[str, Any]],
                      now: str, why: str, characteristic: str, description: str | None = None,
                      ) -> list[dict[str, Any]]:
        """A record rated again: nothing when its figures are unchanged, else a reversal of its current version and
        the new version (status ``rerated``), under its key with request number = version."""
        if (int(old["amount_minor"]), int(old["allowance_units"]), old["currency"]) == \
                (r.amount_minor, r.allowance_units, r.currency) and not _not_rated(old):
            return []
        version = int(old["request_number"]) + 1
        reversal_id, new_id = _uuids(2)
        reversal = self._reversal(ctx, old, reversal_id, now, why, characteristic, description)
        new = self._usage_row(ctx, r, specs, now, None, new_id)
        new["body"]["status"] = "rerated"
        new["body"]["usageCharacteristic"] += [
            {"name": "replaces", "valueType": "string", "value": old["id"]},
            {"name": "version", "valueType": "integer", "value": version},
            {"name": characteristic, "valueType": "string", "value": why}]
        new.update(key=old["session_id"], request_number=version, rating_group=0)
        return [reversal, new]

    def _void_rows(self, ctx: Context, old: dict[str, Any], reason: str, now: str, why: str, characteristic: str,
                   description: str | None = None) -> list[dict[str, Any]]:
        """A record that cannot be rated any more: its current version reversed whole (amount, units and allowance)
        and a new version that is not rated (status ``rejected``, characteristic ``notRated`` with the reason, no
        amount, no units, no allowance), under its key with request number = version; nothing when the current
        version is already one that is not rated. A later re-rate or re-sequencing rates it again from it."""
        if _not_rated(old):
            return []
        version = int(old["request_number"]) + 1
        reversal_id, new_id = _uuids(2)
        reversal = self._reversal(ctx, old, reversal_id, now, why, characteristic, description)
        kept = [c for c in old["body"].get("usageCharacteristic", []) if c.get("name") in _RECORD_CHARACTERISTICS]
        body = {k: v for k, v in old["body"].items() if k != "ratedProductUsage"}
        body.update(id=new_id, href=f"{ctx.base_url}{USAGE_PATH}/usage/{new_id}", status="rejected",
                    description=f"not rated: {reason} ({description or why})",
                    usageCharacteristic=[*kept,
                                         {"name": "notRated", "valueType": "string", "value": reason},
                                         {"name": "replaces", "valueType": "string", "value": old["id"]},
                                         {"name": "version", "valueType": "integer", "value": version},
                                         {"name": characteristic, "valueType": "string", "value": why}])
        return [reversal, {"id": new_id, "key": old["session_id"], "body": body, "account_id": old["account_id"],
                           "usage_type": old["usage_type"], "units": 0, "allowance_units": 0, "amount_minor": 0,
                           "currency": old["currency"], "usage_date": old["usage_date"], "request_number": version,
                           "rating_group": 0}]

    @staticmethod
    def _reversal(ctx: Context, old: dict[str, Any], reversal_id: str, now: str, why: str, characteristic: str,
                  description: str | None) -> dict[str, Any]:
        """The row that reverses ``old`` (its amount, units and allowance negated), of the next version."""
        version = int(old["request_number"]) + 1
        reversal = dict(old["body"])
        reversal.update(id=reversal_id, href=f"{ctx.base_url}{USAGE_PATH}/usage/{reversal_id}", status="rerated",
                        description=f"reversal of usage {old['id']} ({description or why})")
        reversal["usageCharacteristic"] = [*old["body"].get("usageCharacteristic", []),
                                           {"name": "reverses", "valueType": "string", "value": old["id"]},
                                           {"name": characteristic, "valueType": "string", "value": why}]
        reversal["ratedProductUsage"] = [{**pu, "ratingDate": now, "taxExcludedRatingAmount": {
            "unit": old["currency"], "value": -from_minor(int(old["amount_minor"]), old["currency"])}}
            for pu in old["body"].get("ratedProductUsage", [])]
        return {"id": reversal_id, "key": old["session_id"], "body": reversal, "account_id": old["account_id"],
                "usage_type": old["usage_type"], "units": -int(old["units"]),
                "allowance_units": -int(old["allowance_units"]), "amount_minor": -int(old["amount_minor"]),
                "currency": old["currency"], "usage_date": old["usage_date"], "request_number": version,
                "rating_group": 1}

    async def _store(self, ctx: Context, rated: list[Rated], specs: Mapping[str, dict[str, Any]], rating_date: str,
                     file_id: str | None) -> tuple[list[dict[str, Any]], set[str]]:
        """Build the TMF635 usage rows and store them, in chunks: while PostgreSQL inserts one chunk (the store
        runs as a task on the same connection, one statement at a time), the next chunk's documents are built —
        the database's work overlaps this process's."""
        ids = _uuids(len(rated))
        rows: list[dict[str, Any]] = []
        stored: set[str] = set()
        pending: asyncio.Future[set[str]] | None = None
        try:
            for start in range(0, len(rated), STORE_CHUNK):
                chunk: list[dict[str, Any]] = []
                for i in range(start, min(start + STORE_CHUNK, len(rated))):
                    chunk.append(self._usage_row(ctx, rated[i], specs, rating_date, file_id, ids[i]))
                    if pending is not None and i % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # the store task sends its next statement
                if pending is not None:
                    stored |= await pending
                pending = asyncio.ensure_future(self.charging.store_batch_usage(ctx, chunk))
                await asyncio.sleep(0)
                rows.extend(chunk)
            if pending is not None:
                stored |= await pending
                pending = None
        finally:
            if pending is not None and not pending.done():  # building a document failed: stop the store too
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
        return rows, stored

    async def _assemble(self, ctx: Context, parts: list[UsageRecord], lines: dict[str, Line],
                        pending_keys: set[str], out: Outcome) -> list[UsageRecord]:
        """Partial records: a session whose parts 1..N (N flagged ``lastPart``) are all known becomes one record
        (quantity summed, the first part's time and fields; the direction and the called and calling parties of its
        parts), rated under the session's key with the line of its earliest part in this batch; the parts of
        incomplete sessions wait in suspense, a session whose parts disagree on direction or parties is suspended
        whole."""
        sessions: dict[str, list[UsageRecord]] = defaultdict(list)
        for r in parts:
            sessions[r.session_key or ""].append(r)
        assembled: list[UsageRecord] = []
        for session_key, new in sessions.items():
            first = new[0]
            rows = (await ctx.session.execute(select(SuspendedRecord).where(
                SuspendedRecord.status == "pending", SuspendedRecord.category == "partial",
                SuspendedRecord.raw["sessionId"].astext == first.session_id,
                SuspendedRecord.raw["origin"].astext == first.origin))).scalars().all()
            earlier: list[tuple[int, UsageRecord]] = []
            for row in rows:
                if row.record_key in pending_keys:
                    continue
                try:
                    earlier.append((row.id, layouts.normalize(row.raw, first.origin)))
                except ValueError:
                    continue
            by_number: dict[int, UsageRecord] = {}
            for r in [*(r for _, r in earlier), *new]:
                by_number.setdefault(r.part_number or 0, r)
            last = [n for n, r in by_number.items() if r.last_part]
            if not last or sorted(by_number) != list(range(1, min(last) + 1)):
                out.waiting.extend(new)
                continue
            ordered = [by_number[n] for n in sorted(by_number)]
            head = ordered[0]
            # the session keeps the direction and the parties of its parts (a received call is rated as received,
            # by its calling party); parts that disagree on them leave the session in suspense (either way is a guess)
            called = [r.called_number for r in ordered if r.called_number is not None]
            calling = [r.calling_number for r in ordered if r.calling_number is not None]
            disagree = [name for name, values in (("direction", [r.direction for r in ordered]),
                                                  ("calledNumber", called), ("callingNumber", calling))
                        if len(set(values)) > 1]
            whole = UsageRecord(key=session_key, record_id=f"session:{head.session_id}", origin=head.origin,
                                msisdn=head.msisdn, event_time=head.event_time, usage_type=head.usage_type,
                                quantity=sum(r.quantity for r in ordered), called_number=next(iter(called), None),
                                visited_country=head.visited_country, apn=head.apn, imsi=head.imsi,
                                visited_network=head.visited_network, direction=head.direction,
                                calling_number=next(iter(calling), None))
            out.expansions[session_key] = new
            out.consumed_parts[session_key] = [i for i, _ in earlier]
            if disagree:
                out.suspended.append((whole, f"the parts of session {head.session_id} disagree on "
                                             f"{', '.join(disagree)}"))
                continue
            lines[session_key] = lines[min(new, key=lambda r: r.part_number or 0).key]
            assembled.append(whole)
        if assembled:
            done = await self.charging.batch_usage_present(ctx, [f"cdr:{r.key}" for r in assembled])
            for r in [r for r in assembled if f"cdr:{r.key}" in done]:
                assembled.remove(r)
                out.duplicate.extend(out.expansions.pop(r.key))
                out.consumed_parts.pop(r.key)
        return assembled

    async def _consumption(self, ctx: Context, guided: list[tuple[UsageRecord, Line]],
                           ) -> dict[tuple[str, str, str], int]:
        from openbss.rating.rater import period_of

        pairs = {(line.account_id, period_of(r.event_time, line.time_zone)) for r, line in guided}
        if not pairs:
            return {}
        accounts = sorted({a for a, _ in pairs})
        rows = (await ctx.session.execute(select(AllowanceConsumption).where(
            AllowanceConsumption.account_id == _any(accounts)))).scalars()
        return {(row.account_id, row.period, row.allowance_key): int(row.consumed) for row in rows
                if (row.account_id, row.period) in pairs}

    def _usage_row(self, ctx: Context, rated: Rated, specs: Mapping[str, dict[str, Any]], rating_date: str,
                   file_id: str | None, usage_id: str) -> dict[str, Any]:
        r, line, rate = rated.record, rated.line, rated.rate
        unit = BASE_UNIT[r.usage_type]
        chars: list[dict[str, Any]] = [
            {"name": "recordId", "valueType": "string", "value": r.record_id},
            {"name": "origin", "valueType": "string", "value": r.origin},
            {"name": "subscriber", "valueType": "string", "value": r.msisdn},
            {"name": "quantity", "valueType": "integer", "value": r.quantity},
            {"name": "unit", "valueType": "string", "value": unit},
            {"name": "billableQuantity", "valueType": "integer", "value": rated.billable_units},
            {"name": "allowanceQuantity", "valueType": "integer", "value": rated.allowance_units},
            {"name": "billingPeriod", "valueType": "string", "value": rated.period},
            {"name": "unitPrice", "valueType": "string",
             "value": f"{rate.get('price')} {rated.currency} per {rate.get('per', '1')} {unit}"},
        ]
        for name, value in (("calledParty", r.called_number), ("callingParty", r.calling_number),
                            ("direction", r.direction if r.direction != "originating" else None),
                            ("visitedNetwork", r.visited_network), ("visitedCountry", r.visited_country),
                            ("apn", r.apn), ("imsi", r.imsi), ("usageFile", file_id),
                            ("destinationZone", rate.get("zone")), ("timeBand", rate.get("band")),
                            ("roamingZone", rate.get("roaming")), ("destinationPrefix", rate.get("prefix"))):
            if value:
                chars.append({"name": name, "valueType": "string", "value": value})
        if rated.allowance_units and not rated.amount_minor:
            tag = "included usage"
        elif rated.allowance_units:
            tag = "non included usage"
        else:
            tag = "usage"
        product_usage: dict[str, Any] = {
            "@type": "RatedProductUsage", "ratingDate": rating_date, "usageRatingTag": tag,
            "isBilled": False, "ratingAmountType": "total", "offerTariffType": rate.get("band") or "flat",
            "taxExcludedRatingAmount": {"unit": rated.currency,
                                        "value": from_minor(rated.amount_minor, rated.currency)},
        }
        if line.product_id:
            product_usage["productRef"] = {"id": line.product_id, "@referredType": "Product"}
        doc: dict[str, Any] = {
            "id": usage_id, "href": f"{ctx.base_url}{USAGE_PATH}/usage/{usage_id}", "@type": "Usage",
            "usageDate": format_datetime(r.event_time), "usageType": r.usage_type, "status": "rated",
            "description": f"{r.usage_type} {r.quantity} {unit}", "usageCharacteristic": chars,
            "ratedProductUsage": [product_usage],
        }
        spec = specs.get(specification_name(r))
        if spec is not None:
            doc["usageSpecification"] = spec
        if line.party_id:
            doc["relatedParty"] = [{"id": line.party_id, "role": "customer", "@referredType": line.party_type}]
        return {"id": usage_id, "key": f"cdr:{r.key}", "body": doc, "account_id": line.account_id,
                "usage_type": r.usage_type, "units": r.quantity, "allowance_units": rated.allowance_units,
                "amount_minor": rated.amount_minor, "currency": rated.currency, "usage_date": r.event_time}

    # --- files -----------------------------------------------------------------------------------------------
    async def ingest(self, ctx: Context, name: str, data: bytes, *, source: str = "files",
                     progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Mediate and rate one usage file; returns its report (``duplicateFile`` when it was seen before)."""
        digest = layouts.sha256(data)
        cols: columnar.CsvColumns | None = None
        records: list[UsageRecord] = []
        rejections: list[Rejection] = []
        try:
            layout = layouts.detect_layout(name, data)
            if layout == "csv" and self.columnar and self.vectorize:
                cols = columnar.read_csv(data, source)
            if cols is None:
                records, rejections = layouts.parse_file(name, data, source)
        except LayoutError as exc:
            raise UnreadableUsageFile(str(exc)) from exc
        file_id = str(uuid.uuid4())
        got = await ctx.session.execute(insert(UsageFile).values(
            id=file_id, source=source, name=name, sha256=digest, layout=layout, size=len(data), received=0, rated=0,
            duplicate=0, rejected=0, suspended=0).on_conflict_do_nothing().returning(UsageFile.id))
        if got.scalar() is None:
            row = (await ctx.session.execute(select(UsageFile).where(
                UsageFile.source == source, UsageFile.name == name, UsageFile.sha256 == digest))).scalar_one()
            return {**self._file_report(row), "duplicateFile": True}
        if cols is not None:
            counts, amounts, resequenced = await self._ingest_columns(ctx, file_id, cols, source)
        else:
            out = await self.process(ctx, records, file_id)
            await self._file_suspense(ctx, file_id, rejections, out.suspended, out.waiting)
            counts = {"received": len(records) + len(rejections),
                      "rated": sum(len(out.parts_of(r.record)) for r in out.rated),
                      "duplicate": len(out.duplicate), "rejected": len(rejections),
                      "suspended": sum(len(out.parts_of(r)) for r, _ in out.suspended) + len(out.waiting)}
            amounts, resequenced = out.amounts(), out.resequenced
        await ctx.session.execute(update(UsageFile).where(UsageFile.id == file_id).values(
            **counts, amounts=amounts))
        if progress is not None:
            progress(counts["received"])
        row = (await ctx.session.execute(select(UsageFile).where(UsageFile.id == file_id))).scalar_one()
        await ctx.session.refresh(row)
        return {**self._file_report(row), "duplicateFile": False, "resequenced": resequenced}

    # --- the columnar file pipeline --------------------------------------------------------------------------
    async def _ingest_columns(self, ctx: Context, file_id: str, cols: columnar.CsvColumns, source: str,
                              ) -> tuple[dict[str, int], dict[str, int], int]:
        """Mediate and rate a CSV file read as columns (``columnar.read_csv``): its records kept as Polars columns
        from the reader through guiding (a join of the numbers with their charging accounts), deduplication,
        rating (``vectorized.rate_frame``) and storage (the TMF635 documents written as JSON text by Polars,
        ``columnar.store_frame``, COPY'd with typed columns, then one ``INSERT … SELECT`` per chunk). What needs
        the record-by-record pipeline goes to ``process``, **by account** (an account's records are rated by one
        path, allowances consumed in event-time order): the lines the columnar
        reader leaves to ``layouts.normalize``, partial records, numbers or SIMs with an assignment history,
        unknown numbers, plan entries with a tariff or rates the vectorized core does not take, more than one
        applicable allowance, and accounts with late records (re-sequencing). Returns the file's counts, its
        amounts by currency (minor units) and the number of records re-sequenced."""
        frame = cols.frame
        received = frame.height + len(cols.others)
        # the other lines: the scalar reader, with the reasons of its rejections
        slow: list[tuple[int, UsageRecord]] = []
        rejections: list[Rejection] = []
        for line, raw in cols.others:
            got, refused = layouts.parse_lines([(line, raw)], source)
            slow.extend((line, r) for r in got)
            rejections.extend(refused)
        # the same record twice in the file: the first occurrence is rated, the others are duplicates
        order = pl.concat([frame.select("line", "key"),
                           pl.DataFrame({"line": [n for n, _ in slow], "key": [r.key for _, r in slow]},
                                        schema={"line": pl.Int64, "key": pl.String})]).sort("line")
        first = order.filter(pl.col("key").is_first_distinct())["line"]
        duplicate = order.height - len(first)
        frame = frame.filter(pl.col("line").is_in(first))
        firsts = set(first.to_list()) if len(slow) else set()
        scalar: list[tuple[int, UsageRecord]] = [(n, r) for n, r in slow if n in firsts]
        # guiding: numbers (and SIMs) without assignment history are their current charging account's
        numbers = frame["msisdn"].unique().to_list()
        history = set((await ctx.session.execute(select(NumberAssignment.msisdn).where(
            NumberAssignment.msisdn == _any(numbers)).distinct())).scalars()) if numbers else set()
        imsis = frame["imsi"].drop_nulls().unique().to_list()
        sims = set((await ctx.session.execute(select(ImsiAssignment.imsi).where(
            ImsiAssignment.imsi == _any(imsis)).distinct())).scalars()) if imsis else set()
        plain = frame.filter(~pl.col("msisdn").is_in(list(history))
                             & ~pl.col("imsi").is_in(list(sims)).fill_null(False))
        accounts = await self.charging.accounts_for_rating(
            ctx, subscribers=plain["msisdn"].unique().to_list()) if plain.height else []
        by_id = {a["id"]: a for a in accounts}
        owners = pl.DataFrame({"msisdn": [a["subscriber"] for a in accounts],
                               "account_id": [a["id"] for a in accounts]},
                              schema={"msisdn": pl.String, "account_id": pl.String})
        guided = plain.join(owners, on="msisdn", how="inner")
        moved = frame.join(guided.select("line"), on="line", how="anti")  # histories, unknown numbers
        scalar.extend(zip(moved["line"].to_list(), _records_of(moved), strict=True))
        scalar_accounts = set()
        if scalar:
            lines, _ = await self._lines(ctx, [r for _, r in scalar])
            scalar_accounts = {line.account_id for line in lines.values()}
        # one rater per account at a time, locks taken in a fixed order (the scalar pipeline's, C collation)
        locked = sorted(set(guided["account_id"].unique().to_list()) | scalar_accounts)
        if locked:
            await ctx.session.execute(text(
                "SELECT count(pg_advisory_xact_lock(hashtext('rating-account:' || a))) FROM "
                "(SELECT a FROM unnest(CAST(:a AS text[])) AS a ORDER BY a COLLATE \"C\") AS s"), {"a": locked})
        # records already rated, or waiting in suspense, are duplicates
        keys = guided["key"].to_list()
        done = await self.charging.batch_usage_present(ctx, [f"cdr:{k}" for k in keys]) if keys else set()
        waiting = set((await ctx.session.execute(select(SuspendedRecord.record_key).where(
            SuspendedRecord.status.in_(("pending", "assembled")), SuspendedRecord.record_key == _any(keys)))
        ).scalars()) if keys else set()
        if done or waiting:
            seen = [k[len("cdr:"):] for k in done] + list(waiting)
            before = guided.height
            guided = guided.filter(~pl.col("key").is_in(seen))
            duplicate += before - guided.height
        # the rate of each account's usage type and direction: flat plan entries the vectorized core takes
        band_change = (await self.charging.charging_settings(ctx))["bandChange"] if guided.height else "start"
        bad = set(scalar_accounts)
        rates: list[dict[str, Any]] = []
        by_json: dict[str, int] = {}
        line_of: dict[str, Line] = {}
        groups: list[dict[str, Any]] = []
        for account_id, usage_type, direction in guided.select("account_id", "usage_type", "direction").unique(
                ).sort("account_id", "usage_type", "direction").iter_rows():
            if account_id in bad:
                continue
            acc = by_id[account_id]
            if acc.get("payment_type") == "prepaid":  # record by record, to suspense (``_lines``)
                bad.add(account_id)
                continue
            acc_line = line_of.get(account_id) or line_of.setdefault(account_id, _line_of(acc, acc["subscriber"]))
            entry = acc_line.plan.get(usage_type)
            probe = UsageRecord(key="", record_id="", origin="", msisdn=acc_line.msisdn, event_time=_EPOCH,
                                usage_type=usage_type, quantity=0, direction=direction)
            try:
                if not isinstance(entry, Mapping) or entry.get("tariffId"):
                    raise Unratable("rated record by record")
                rate = resolve_rate(probe, acc_line, {}, band_change)
                prep = _prepare(rate, rates, by_json)
                applicable = _applicable(probe, acc_line, rate)
            except Unratable:
                bad.add(account_id)
                continue
            if prep is None or len(applicable) > 1:
                bad.add(account_id)
                continue
            slot, total = applicable[0] if applicable else (None, None)
            groups.append({"account_id": account_id, "usage_type": usage_type, "direction": direction,
                           "rate": prep.index, "slot": slot, "total": total})
        # late records: accounts with allowances and usage rated after their earliest record go record by record
        # (re-sequencing, ``_resequence``)
        with_allowances = [a for a in line_of if a not in bad and any(
            isinstance(e, Mapping) and e.get("allowances") for e in line_of[a].plan.values())]
        if with_allowances:
            span = (guided.filter(pl.col("account_id").is_in(with_allowances)).group_by("account_id")
                    .agg(pl.col("event_time").min().alias("first"), pl.col("event_time").max().alias("last")))
            earliest = dict(zip(span["account_id"].to_list(), span["first"].to_list(), strict=True))
            latest: datetime = span["last"].max()  # type: ignore[assignment]
            bad |= await self.charging.batch_usage_later(ctx, earliest, latest + timedelta(days=32))
        if bad:
            moved = guided.filter(pl.col("account_id").is_in(list(bad)))
            guided = guided.filter(~pl.col("account_id").is_in(list(bad)))
            scalar.extend(zip(moved["line"].to_list(), _records_of(moved), strict=True))
        amounts: dict[str, int] = defaultdict(int)
        rated = 0
        if guided.height:
            try:
                stored, by_currency = await self._rate_store_columns(ctx, file_id, guided, groups, rates, line_of)
            except VectorizedRateError:  # quantities too large for 63-bit integers: record by record
                scalar.extend(zip(guided["line"].to_list(), _records_of(guided), strict=True))
            else:
                rated = stored
                for currency, minor in by_currency.items():
                    amounts[currency] += minor
        out = Outcome()
        if scalar:
            out = await self.process(ctx, [r for _, r in sorted(scalar, key=lambda x: x[0])], file_id)
        await self._file_suspense(ctx, file_id, rejections, out.suspended, out.waiting)
        for currency, minor in out.amounts().items():
            amounts[currency] += minor
        counts = {"received": received, "rated": rated + sum(len(out.parts_of(r.record)) for r in out.rated),
                  "duplicate": duplicate + len(out.duplicate), "rejected": len(rejections),
                  "suspended": sum(len(out.parts_of(r)) for r, _ in out.suspended) + len(out.waiting)}
        return counts, dict(amounts), out.resequenced

    async def _rate_store_columns(self, ctx: Context, file_id: str, guided: pl.DataFrame,
                                  groups: list[dict[str, Any]], rates: list[dict[str, Any]],
                                  line_of: Mapping[str, Line]) -> tuple[int, dict[str, int]]:
        """Rate guided records given as columns with the vectorized core, store them (the TMF635 documents built in
        SQL) and the allowances they consumed; returns how many were stored and the amounts by currency."""
        units = [unit_rate(r) for r in rates]
        def js(value: Any) -> str | None:
            return orjson.dumps(value).decode() if value else None

        accounts = pl.DataFrame([{
            "account_id": a, "time_zone": line.time_zone or "UTC", "party_json": js(line.party_id),
            "party_type_json": js(line.party_type), "product_json": js(line.product_id)}
            for a, line in line_of.items()],
            schema={"account_id": pl.String, "time_zone": pl.String, "party_json": pl.String,
                    "party_type_json": pl.String, "product_json": pl.String})
        work = (guided.join(pl.DataFrame(groups, schema={"account_id": pl.String, "usage_type": pl.String,
                                                          "direction": pl.String, "rate": pl.Int32,
                                                          "slot": pl.String, "total": pl.Int64}),
                            on=["account_id", "usage_type", "direction"], how="inner")
                .join(accounts, on="account_id", how="left"))
        if work.height != guided.height:  # every account rated here has the rate of each of its usage types
            raise RuntimeError("columnar rating lost records between guiding and rating")
        local = [pl.when(pl.col("time_zone") == tz).then(pl.col("event_time").dt.convert_time_zone(tz)
                                                         .dt.strftime("%Y-%m"))
                 for tz in work["time_zone"].unique().to_list()]
        work = work.with_columns(pl.coalesce(local).alias("period")).with_columns(
            pl.when(pl.col("slot").is_not_null()).then(
                pl.concat_str([pl.col("account_id"), pl.col("period"), pl.col("slot")], separator="\x1f"))
            .alias("counter"))
        accounts_with = work.filter(pl.col("slot").is_not_null())["account_id"].unique().to_list()
        consumed = pl.DataFrame(
            [{"counter": f"{row.account_id}\x1f{row.period}\x1f{row.allowance_key}", "consumed": int(row.consumed)}
             for row in (await ctx.session.execute(select(AllowanceConsumption).where(
                 AllowanceConsumption.account_id == _any(accounts_with)))).scalars()] if accounts_with else [],
            schema={"counter": pl.String, "consumed": pl.Int64})
        work = work.join(consumed, on="counter", how="left").with_columns(
            pl.when(pl.col("counter").is_not_null()).then(pl.col("total") - pl.col("consumed").fill_null(0))
            .alias("allowance"))
        work = rate_frame(work, units)
        currency = [u.currency for u in units]
        work = work.with_columns(
            pl.col("rate").replace_strict(list(range(len(units))), currency, return_dtype=pl.String).alias("currency"),
            pl.col("rate").alias("rate_ix"),
            pl.col("usage_type").replace_strict(BASE_UNIT, return_dtype=pl.String).alias("unit"),
            pl.when(pl.col("usage_type") == "data").then(
                pl.when(pl.col("visited_country").is_not_null() | pl.col("visited_network").is_not_null())
                .then(pl.lit("roamingData")).otherwise(pl.lit("data")))
            .when(pl.col("usage_type") == "event").then(pl.lit("content")).otherwise(pl.col("usage_type"))
            .alias("spec"))
        specs = await self.specification_refs(ctx)
        rating_date = format_datetime(utcnow())
        unit_prices = [f"{r.get('price')} {u.currency} per {r.get('per', '1')}" for r, u in zip(rates, units,
                                                                                                strict=True)]

        def render(chunk: pl.DataFrame) -> bytes:
            return columnar.store_frame(
                chunk, ids=_uuids(chunk.height), href=f"{ctx.base_url}{USAGE_PATH}/usage/", rating_date=rating_date,
                file_id=file_id, specs=specs, rates=rates, unit_prices=unit_prices,
                minor_digits=[MINOR_UNITS[u.currency] for u in units])

        # in chunks (memory stays bounded): while PostgreSQL inserts one, the next one's documents are written
        # (Polars, in a thread: it releases the GIL)
        stored = 0
        pending: asyncio.Task[int] | None = None
        try:
            for start in range(0, work.height, COLUMN_STORE_CHUNK):
                data = await asyncio.to_thread(render, work.slice(start, COLUMN_STORE_CHUNK))
                if pending is not None:
                    stored += await pending
                pending = asyncio.ensure_future(self.charging.store_batch_usage_columns(
                    ctx, data, columnar.STORE_COLUMNS, columnar.BODY_SQL, []))
            if pending is not None:
                stored += await pending
                pending = None
        finally:
            if pending is not None and not pending.done():  # rendering failed: stop the store too
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
        if stored != work.height:  # cannot happen under the account locks; a guard against double rating
            raise ConcurrentRating("usage records were stored concurrently by another rater; deliver the file again")
        taken = (work.filter(pl.col("allowance_units") > 0).group_by("account_id", "period", "slot", "consumed")
                 .agg(pl.col("allowance_units").sum()))
        changed = [{"account_id": a, "period": p, "allowance_key": k, "consumed": (c or 0) + n}
                   for a, p, k, c, n in taken.iter_rows()]
        for i in range(0, len(changed), CHUNK):
            await ctx.session.execute(insert(AllowanceConsumption).values(changed[i:i + CHUNK]).on_conflict_do_update(
                index_elements=["tenant_id", "account_id", "period", "allowance_key"],
                set_={"consumed": insert(AllowanceConsumption).excluded.consumed}))
        totals = work.group_by("currency").agg(pl.col("amount_minor").sum())
        return stored, dict(zip(totals["currency"].to_list(), totals["amount_minor"].to_list(), strict=True))

    # --- the work queue: a file cut into chunks, rated by any number of workers ------------------------------
    async def submit(self, ctx: Context, name: str, data: bytes, *, source: str = "files", partitions: int = 8,
                     chunk_records: int = 5000) -> dict[str, Any]:
        """Register a usage file and cut its valid records into work items (``rating_file_chunk``) for the work
        queue: records are partitioned by subscriber (a stable hash of the MSISDN, so that one subscription's
        records are in one partition, rated in order by one worker at a time), sorted by event time within each
        partition, and cut into chunks of at most ``chunk_records``. Invalid records are filed in suspense now.
        The caller publishes the returned ``chunks`` after the commit (``rating/queue.py``); each is rated by
        ``rate_chunk``. A file seen before is a duplicate (nothing changes, no chunk)."""
        if partitions < 1 or chunk_records < 1:
            raise ValueError("partitions and chunk_records must be positive")
        digest = layouts.sha256(data)
        try:
            layout = layouts.detect_layout(name, data)
            records, rejections = layouts.parse_file(name, data, source)
        except LayoutError as exc:
            raise UnreadableUsageFile(str(exc)) from exc
        file_id = str(uuid.uuid4())
        got = await ctx.session.execute(insert(UsageFile).values(
            id=file_id, source=source, name=name, sha256=digest, layout=layout, size=len(data),
            received=len(records) + len(rejections), rated=0, duplicate=0, rejected=len(rejections), suspended=0,
            status="queued").on_conflict_do_nothing().returning(UsageFile.id))
        if got.scalar() is None:
            row = (await ctx.session.execute(select(UsageFile).where(
                UsageFile.source == source, UsageFile.name == name, UsageFile.sha256 == digest))).scalar_one()
            return {**self._file_report(row), "duplicateFile": True, "workItems": []}
        await self._file_suspense(ctx, file_id, rejections, [], [])
        by_partition: dict[int, list[UsageRecord]] = defaultdict(list)
        for r in records:
            by_partition[partition_of(r.msisdn, partitions)].append(r)
        chunks: list[tuple[int, int]] = []
        rows: list[dict[str, Any]] = []
        for p in sorted(by_partition):
            part = sorted(by_partition[p], key=lambda r: (r.event_time, r.key))
            for i in range(0, len(part), chunk_records):
                n = len(chunks)
                chunks.append((n, p))
                rows.append({"file_id": file_id, "chunk": n, "partition": p, "received": len(part[i:i + chunk_records]),
                             "records": [_raw_of(r) for r in part[i:i + chunk_records]]})
        for i in range(0, len(rows), 50):
            await ctx.session.execute(insert(FileChunk).values(rows[i:i + 50]))
        await ctx.session.execute(update(UsageFile).where(UsageFile.id == file_id).values(
            chunks=len(chunks), status="queued" if chunks else "rated"))
        row = (await ctx.session.execute(select(UsageFile).where(UsageFile.id == file_id))).scalar_one()
        await ctx.session.refresh(row)
        return {**self._file_report(row), "duplicateFile": False, "workItems": chunks}

    async def queued_chunks(self, ctx: Context, older_than: float | None = None) -> list[tuple[str, int, int]]:
        """(file, chunk, partition) of the chunks not rated yet (to publish again after a crash of the submitter or
        a failed publication); with ``older_than``, only those of files registered more than that many seconds
        ago."""
        stmt = select(FileChunk.file_id, FileChunk.chunk, FileChunk.partition).where(FileChunk.status == "queued")
        if older_than is not None:
            stmt = stmt.join(UsageFile, UsageFile.id == FileChunk.file_id).where(
                UsageFile.registered_at < func.now() - timedelta(seconds=older_than))
        rows = await ctx.session.execute(stmt.order_by(FileChunk.file_id, FileChunk.chunk))
        return [(r.file_id, r.chunk, r.partition) for r in rows]

    async def rate_chunk(self, ctx: Context, file_id: str, chunk: int) -> dict[str, Any] | None:
        """Rate one work item of a submitted file, in the caller's transaction; ``None`` when it was rated already
        (a redelivered message: nothing changes) or does not exist. The file's counts grow by the chunk's, and
        the file is ``rated`` when its last chunk is."""
        row = (await ctx.session.execute(select(FileChunk).where(
            FileChunk.file_id == file_id, FileChunk.chunk == chunk).with_for_update())).scalar_one_or_none()
        if row is None or row.status == "done":
            return None
        records: list[UsageRecord] = []
        rejected: list[Rejection] = []
        for raw in row.records:
            try:
                records.append(layouts.normalize(raw, str(raw.get("origin") or "files")))
            except ValueError as exc:  # cannot happen: the records were normalized when submitted
                rejected.append(Rejection(line=0, key=None, reason=str(exc), raw=raw))
        out = await self.process(ctx, records, file_id)
        await self._file_suspense(ctx, file_id, rejected, out.suspended, out.waiting)
        counts = {"rated": sum(len(out.parts_of(r.record)) for r in out.rated),
                  "duplicate": len(out.duplicate),
                  "suspended": sum(len(out.parts_of(r)) for r, _ in out.suspended) + len(out.waiting) + len(rejected)}
        row.status, row.records, row.done_at = "done", [], utcnow()
        row.rated, row.duplicate, row.suspended = counts["rated"], counts["duplicate"], counts["suspended"]
        row.deliveries += 1
        f = (await ctx.session.execute(select(UsageFile).where(UsageFile.id == file_id).with_for_update())
             ).scalar_one()
        amounts = dict(f.amounts or {})
        for currency, minor in out.amounts().items():
            amounts[currency] = int(amounts.get(currency, 0)) + minor
        f.rated += counts["rated"]
        f.duplicate += counts["duplicate"]
        f.suspended += counts["suspended"]
        f.amounts = amounts
        f.chunks_done += 1
        if f.chunks_done >= f.chunks:
            f.status = "rated"
        await ctx.session.flush()
        return {"file": file_id, "chunk": chunk, "received": row.received, **counts}

    async def _file_suspense(self, ctx: Context, file_id: str, rejections: list[Rejection],
                             suspended: list[tuple[UsageRecord, str]], waiting: list[UsageRecord]) -> None:
        rows = [{"file_id": file_id, "line": rj.line, "record_key": rj.key, "category": "rejected",
                 "reason": rj.reason, "raw": rj.raw} for rj in rejections]
        rows += [{"file_id": file_id, "line": None, "record_key": r.key, "category": "suspended", "reason": reason,
                  "raw": _raw_of(r)} for r, reason in suspended]
        rows += [{"file_id": file_id, "line": None, "record_key": r.key, "category": "partial",
                  "reason": f"part {r.part_number} of session {r.session_id}: waiting for the other parts",
                  "raw": _raw_of(r)} for r in waiting]
        for i in range(0, len(rows), CHUNK):
            await ctx.session.execute(insert(SuspendedRecord).values(rows[i:i + CHUNK]).on_conflict_do_nothing())

    @staticmethod
    def _file_report(row: UsageFile) -> dict[str, Any]:
        return {"id": row.id, "source": row.source, "name": row.name, "sha256": row.sha256, "layout": row.layout,
                "received": row.received, "rated": row.rated, "duplicate": row.duplicate, "rejected": row.rejected,
                "suspended": row.suspended, "amounts": {c: str(from_minor(int(v), c)) for c, v in row.amounts.items()},
                "registeredAt": format_datetime(row.registered_at), "status": row.status, "chunks": row.chunks,
                "chunksDone": row.chunks_done}

    async def files(self, ctx: Context, limit: int = 100) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(UsageFile).order_by(UsageFile.registered_at.desc(), UsageFile.id)
                                          .limit(limit))).scalars()
        return [self._file_report(r) for r in rows]

    # --- suspense --------------------------------------------------------------------------------------------
    async def suspense(self, ctx: Context, status: str = "pending", limit: int = 100) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(SuspendedRecord).where(SuspendedRecord.status == status)
                                          .order_by(SuspendedRecord.created_at, SuspendedRecord.id)
                                          .limit(limit))).scalars()
        now = utcnow()
        return [{"id": r.id, "file": r.file_id, "line": r.line, "category": r.category, "reason": r.reason,
                 "record": r.raw, "status": r.status, "attempts": r.attempts,
                 "ageHours": round((now - r.created_at).total_seconds() / 3600, 1)} for r in rows]

    async def reprocess(self, ctx: Context, ids: list[int] | None = None,
                        corrections: Mapping[int, Mapping[str, Any]] | None = None) -> dict[str, int]:
        """Run pending suspended records through the pipeline again (all, or ``ids``), with field corrections per
        record; each ends rated, duplicate, or stays pending with its new reason."""
        corrections = corrections or {}
        stmt = select(SuspendedRecord).where(SuspendedRecord.status == "pending").with_for_update(skip_locked=True)
        if ids is not None:
            stmt = stmt.where(SuspendedRecord.id.in_(ids))
            known = set((await ctx.session.execute(select(SuspendedRecord.id).where(
                SuspendedRecord.id.in_(ids), SuspendedRecord.status == "pending"))).scalars())
            missing = sorted(set(ids) - known)
            if missing:
                raise SuspendedRecordNotFound(f"no pending suspended record {', '.join(map(str, missing))}")
        rows = list((await ctx.session.execute(stmt.order_by(SuspendedRecord.id))).scalars())
        by_key: dict[str, SuspendedRecord] = {}
        records: list[UsageRecord] = []
        result = {"rated": 0, "duplicate": 0, "pending": 0}
        for row in rows:
            raw = {**row.raw, **corrections.get(row.id, {})}
            try:
                record = layouts.normalize(raw, str(raw.get("origin") or "files"))
            except ValueError as exc:
                row.reason, row.category, row.raw = str(exc), "rejected", dict(raw)
                row.attempts += 1
                result["pending"] += 1
                continue
            if record.key in by_key:  # two suspended copies of one record: the later one is a duplicate
                self._resolve(row, "duplicate")
                result["duplicate"] += 1
                continue
            row.raw, row.record_key = dict(raw), record.key
            by_key[record.key] = row
            records.append(record)
        await ctx.session.flush()
        out = await self.process(ctx, records, None, pending_keys=set(by_key))
        for rated in out.rated:
            for part in out.parts_of(rated.record):
                self._resolve(by_key[part.key], "rated" if part.key == rated.record.key else "assembled")
                result["rated"] += 1
        for dup in out.duplicate:
            self._resolve(by_key[dup.key], "duplicate")
            result["duplicate"] += 1
        for record, reason in out.suspended:
            for part in out.parts_of(record):
                row = by_key[part.key]
                if part.key != record.key:  # a part of an assembled session that is suspended as a whole
                    self._resolve(row, "assembled")
                else:
                    row.reason, row.category = reason, "suspended"
                    row.attempts += 1
            if record.key not in by_key:
                ctx.session.add(SuspendedRecord(file_id=None, line=None, record_key=record.key,
                                                category="suspended", reason=reason, raw=_raw_of(record)))
            result["pending"] += 1
        for part in out.waiting:
            by_key[part.key].attempts += 1
            result["pending"] += 1
        await ctx.session.flush()
        return result

    @staticmethod
    def _resolve(row: SuspendedRecord, status: str) -> None:
        row.status = status
        row.resolved_at = utcnow()

    async def discard(self, ctx: Context, record_id: int) -> None:
        row = await ctx.session.get(SuspendedRecord, record_id, with_for_update=True)
        if row is None or row.status != "pending":
            raise SuspendedRecordNotFound(f"no pending suspended record {record_id}")
        self._resolve(row, "discarded")
        await ctx.session.flush()

    async def report(self, ctx: Context) -> dict[str, Any]:
        """Per-file reconciliation and the suspense queue by age and reason."""
        files = await self.files(ctx, limit=1000)
        age = func.extract("epoch", func.now() - SuspendedRecord.created_at) / 3600
        bucket = func.width_bucket(age, [0, 24, 24 * 7, 24 * 30])
        by_age = {int(b): int(n) for b, n in (await ctx.session.execute(
            select(bucket, func.count()).where(SuspendedRecord.status == "pending").group_by(bucket))).all()}
        reasons = [{"category": c, "reason": r, "count": int(n)} for c, r, n in (await ctx.session.execute(
            select(SuspendedRecord.category, SuspendedRecord.reason, func.count())
            .where(SuspendedRecord.status == "pending")
            .group_by(SuspendedRecord.category, SuspendedRecord.reason).order_by(func.count().desc()).limit(50)))]
        return {"files": files,
                "suspense": {"under1Day": by_age.get(1, 0), "1To7Days": by_age.get(2, 0),
                             "7To30Days": by_age.get(3, 0), "over30Days": by_age.get(4, 0),
                             "byReason": reasons}}

    # --- re-rating -------------------------------------------------------------------------------------------
    async def rerate(self, ctx: Context, job_id: str, period: str, *, account_id: str | None = None,
                     tariff_id: str | None = None) -> dict[str, Any]:
        """Re-rate the batch-rated usage of billing period ``period`` (YYYY-MM, in each account's time zone) of one
        charging account, with its plan and tariffs as they are now (after a correction), or of every account whose
        plan uses a version of tariff ``tariff_id``'s lineage, rated with that version (the corrected one: a
        correction of an Active tariff is a new version, docs/catalog.md). Every record whose figures change gets
        a new version: a reversal of the
        current one (its amounts negated, ``rerated``) and the new one; nothing is edited in place. The period's
        allowances are consumed again from the start, in event-time order; a record that cannot be rated now is
        reversed whole (amount and allowance) and its new version is not rated. A job runs once: the same ``job_id``
        again returns the first run's report (``alreadyRun``) and writes nothing."""
        job_id = (job_id or "").strip()
        if not job_id or len(job_id) > 100:
            raise InvalidRerate("'id' (the re-rate job's id, 1 to 100 characters) is required")
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period or ""):
            raise InvalidRerate(f"'period' '{period}' is not a month (YYYY-MM)")
        if (account_id is None) == (tariff_id is None):
            raise InvalidRerate("give either 'accountId' or 'tariffId' (what to re-rate)")
        if account_id is not None:
            try:
                await self.charging.get_account(ctx, account_id)
            except NotFound as exc:
                raise InvalidRerate(f"charging account '{account_id}' not found") from exc
        lineage: set[str] = set()
        if tariff_id is not None:
            try:
                await self.catalog.compiled_tariff(ctx, tariff_id)
                lineage = set(await self.catalog.tariff_versions(ctx, tariff_id))
            except NotFound as exc:
                raise InvalidRerate(f"tariff '{tariff_id}' not found") from exc
        got = await ctx.session.execute(insert(RerateJob).values(
            id=job_id, period=period, account_id=account_id, tariff_id=tariff_id).on_conflict_do_nothing()
            .returning(RerateJob.id))
        if got.scalar() is None:
            job = (await ctx.session.execute(select(RerateJob).where(RerateJob.id == job_id))).scalar_one()
            if (job.period, job.account_id, job.tariff_id) != (period, account_id, tariff_id):
                raise RerateJobConflict(f"re-rate job '{job_id}' was run for another period or scope")
            return {**job.report, "alreadyRun": True}
        year, month = int(period[:4]), int(period[5:])
        since = datetime(year, month, 1, tzinfo=UTC) - timedelta(days=1)  # a period is a month in local time
        before = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) + timedelta(days=1)
        if account_id is not None:
            candidates = [account_id]
        else:
            candidates = await self._accounts_with_tariff(ctx, lineage, since, before)
        for acc_id in sorted(candidates):  # one rater per account at a time, as ingest
            await ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('rating-account:' || :a))"),
                                      {"a": acc_id})
        lines: dict[str, Line] = {}
        for acc_id in candidates:
            acc = await self.charging.get_account(ctx, acc_id)
            if tariff_id is not None:  # every version of the tariff's lineage rated with the one given
                acc = {**acc, "plan": {k: {**e, "tariffId": tariff_id} if isinstance(e, Mapping)
                                       and e.get("tariffId") in lineage else e
                                       for k, e in (acc.get("plan") or {}).items()}}
            lines[acc_id] = _line_of(acc, acc.get("subscriber") or "")
        rows = await self.charging.batch_usage_rows(ctx, sorted(lines), since, before)
        current: dict[str, dict[str, Any]] = {}  # record key -> its current version (rating group 0, latest)
        for row in rows:
            if row["rating_group"] == 0 and (row["session_id"] not in current
                                             or row["request_number"] > current[row["session_id"]]["request_number"]):
                current[row["session_id"]] = row
        guided: list[tuple[UsageRecord, Line]] = []
        versions: dict[str, dict[str, Any]] = {}
        for key, row in current.items():
            line = lines[row["account_id"]]
            record = _record_of(key[len("cdr:"):], row)
            if period_of(record.event_time, line.time_zone) != period:
                continue
            versions[record.key] = row
            guided.append((record, replace(line, msisdn=record.msisdn)))
        self._tariffs = {k: v for k, v in self._tariffs.items() if k[0] != ctx.principal.tenant_id}  # corrected
        tariffs = await self._tariffs_for(ctx, lines.values())
        band_change = (await self.charging.charging_settings(ctx))["bandChange"] if guided else "start"
        consumed: dict[tuple[str, str, str], int] = {}  # the period's allowances, consumed again from the start
        rated, unratable = rate_batch(in_event_order(guided), tariffs, band_change, consumed)
        specs = await self.specification_refs(ctx)
        now = format_datetime(utcnow())
        before_minor: dict[str, int] = defaultdict(int)
        after_minor: dict[str, int] = defaultdict(int)
        out_rows: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for r in rated:
            old = versions[r.record.key]
            before_minor[old["currency"]] += int(old["amount_minor"])
            after_minor[r.currency] += r.amount_minor
            rows_of = self._version_rows(ctx, old, r, specs, now, job_id, "rerateJob",
                                         description=f"re-rate job {job_id}")
            if not rows_of:
                continue
            out_rows.extend(rows_of)
            version, new_id = rows_of[1]["request_number"], rows_of[1]["id"]
            changed.append({"recordId": r.record.record_id, "origin": r.record.origin, "accountId": old["account_id"],
                            "usageDate": format_datetime(r.record.event_time), "version": version,
                            "replaces": old["id"], "usageId": new_id, "currency": r.currency,
                            "before": str(from_minor(int(old["amount_minor"]), old["currency"])),
                            "after": str(from_minor(r.amount_minor, r.currency)),
                            "difference": str(from_minor(r.amount_minor - int(old["amount_minor"]), r.currency))})
        # a record that cannot be rated now is reversed whole (amount and allowance: the period's consumption is
        # rebuilt without it) and its new version is not rated; a later re-rate rates it again
        for rec, why in unratable:
            old = versions[rec.key]
            before_minor[old["currency"]] += int(old["amount_minor"])
            rows_of = self._void_rows(ctx, old, why, now, job_id, "rerateJob", description=f"re-rate job {job_id}")
            if not rows_of:
                continue
            out_rows.extend(rows_of)
            changed.append({"recordId": rec.record_id, "origin": rec.origin, "accountId": old["account_id"],
                            "usageDate": format_datetime(rec.event_time), "version": rows_of[1]["request_number"],
                            "replaces": old["id"], "usageId": rows_of[1]["id"], "currency": old["currency"],
                            "before": str(from_minor(int(old["amount_minor"]), old["currency"])),
                            "after": str(from_minor(0, old["currency"])),
                            "difference": str(from_minor(-int(old["amount_minor"]), old["currency"])),
                            "notRated": why})
        stored = await self.charging.store_batch_usage(ctx, out_rows)
        if len(stored) != len({row["key"] for row in out_rows}):
            raise ConcurrentRating("usage was re-rated concurrently; run the job again")
        # the period's allowance consumption is what the re-rated usage consumed
        await ctx.session.execute(delete(AllowanceConsumption).where(
            AllowanceConsumption.account_id == _any(sorted(lines)), AllowanceConsumption.period == period))
        if consumed:
            await ctx.session.execute(insert(AllowanceConsumption).values([
                {"account_id": a, "period": p, "allowance_key": k, "consumed": v}
                for (a, p, k), v in consumed.items()]))
        currencies = sorted(set(before_minor) | set(after_minor))
        report = {"id": job_id, "period": period, "accountId": account_id, "tariffId": tariff_id,
                  "accounts": len(lines), "records": len(guided), "changed": len(changed),
                  "before": {c: str(from_minor(before_minor[c], c)) for c in currencies},
                  "after": {c: str(from_minor(after_minor[c], c)) for c in currencies},
                  "difference": {c: str(from_minor(after_minor[c] - before_minor[c], c)) for c in currencies},
                  "unrated": [{"recordId": rec.record_id, "origin": rec.origin, "reason": why}
                              for rec, why in unratable],
                  "changes": changed[:1000]}
        await ctx.session.execute(update(RerateJob).where(RerateJob.id == job_id).values(report=report))
        return {**report, "alreadyRun": False}

    async def _accounts_with_tariff(self, ctx: Context, lineage: set[str], since: datetime, before: datetime,
                                    ) -> list[str]:
        """The charging accounts with batch usage around the period whose plan rates with a version of the
        tariff."""
        with_usage = await self.charging.batch_usage_accounts(ctx, since, before)
        out = []
        for acc_id in with_usage:
            acc = await self.charging.get_account(ctx, acc_id)
            plan = acc.get("plan") or {}
            if any(isinstance(e, Mapping) and e.get("tariffId") in lineage for e in plan.values()):
                out.append(acc_id)
        return out

    # --- single records (TMF635 POST /usage) -----------------------------------------------------------------
    async def rate_one(self, ctx: Context, raw: dict[str, Any], source: str = "api") -> dict[str, Any]:
        """Mediate and rate one record; returns the stored usage, or raises (nothing is written for a record that
        cannot be rated: the caller is told why)."""
        try:
            record = layouts.normalize(raw, source)
        except ValueError as exc:
            raise InvalidUsageRecord(str(exc)) from exc
        if record.session_id is not None:
            raise InvalidUsageRecord("partial records (sessionId, partNumber) are taken in usage files only")
        out = await self.process(ctx, [record], None)
        if out.duplicate:
            raise InvalidUsageRecord(f"record '{record.record_id}' of '{record.origin}' was already received",
                                     code="DUPLICATE_USAGE_RECORD", status=409)
        if out.suspended:
            raise InvalidUsageRecord(out.suspended[0][1], code="USAGE_RECORD_NOT_RATED", status=422)
        return out.documents[0]

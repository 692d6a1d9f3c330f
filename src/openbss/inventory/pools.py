"""Resource pools: number ranges (golden numbers held back), SIM cards, static IPv4 addresses, ONTs.

Allocation is one atomic statement: the first free item is locked with ``FOR UPDATE SKIP LOCKED`` and marked in use
in the same ``UPDATE ... RETURNING``, so concurrent orders never receive the same item and never wait on each other.
Every allocation carries a key (the orchestration step's id): allocating again with the same key returns the same
item, so a retried step never takes a second number.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.inventory.errors import InvalidPoolInput, PoolExhausted
from openbss.inventory.models import PoolItem

KINDS = ("msisdn", "sim", "ipv4", "ont")
MAX_RANGE = 1_000_000
E164_DIGITS = re.compile(r"^\d{6,15}$")


@dataclass(frozen=True)
class Allocated:
    kind: str
    value: str
    pool: str
    attributes: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "pool": self.pool, **self.attributes}


def is_golden(msisdn: str) -> bool:
    """Memorable numbers sold apart: the last 4 digits all equal (…7777), a run up or down (…1234, …9876),
    a repeated pair (…4545), or ending in 000."""
    tail = msisdn[-4:]
    if len(tail) < 4:
        return False
    if len(set(tail)) == 1 or msisdn.endswith("000"):
        return True
    steps = {int(b) - int(a) for a, b in itertools.pairwise(tail)}
    if steps in ({1}, {-1}):
        return True
    return tail[:2] == tail[2:]


async def _bulk_insert(session: AsyncSession, rows: list[dict[str, Any]], chunk: int = 5000) -> int:
    added = 0
    for i in range(0, len(rows), chunk):
        res = await session.execute(
            insert(PoolItem).values(rows[i:i + chunk]).on_conflict_do_nothing().returning(PoolItem.id))
        added += len(res.all())
    return added


async def add_number_range(session: AsyncSession, first: str, last: str, pool: str = "default") -> dict[str, int]:
    if not (E164_DIGITS.match(first) and E164_DIGITS.match(last)) or len(first) != len(last):
        raise InvalidPoolInput("'from' and 'to' must be MSISDNs of the same length, digits only (e.g. 33612000000)")
    lo, hi = int(first), int(last)
    if hi < lo or hi - lo + 1 > MAX_RANGE:
        raise InvalidPoolInput(f"the range must be ascending and at most {MAX_RANGE} numbers")
    rows = []
    golden = 0
    for n in range(lo, hi + 1):
        value = str(n).zfill(len(first))
        g = is_golden(value)
        golden += g
        rows.append({"kind": "msisdn", "pool": pool, "value": value, "golden": g,
                     "status": "held" if g else "available"})
    added = await _bulk_insert(session, rows)
    return {"added": added, "golden": golden}


async def add_ipv4_pool(session: AsyncSession, cidr: str, pool: str = "default") -> dict[str, int]:
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise InvalidPoolInput(f"'cidr': {exc}") from exc
    if net.num_addresses > MAX_RANGE:
        raise InvalidPoolInput(f"'cidr': at most {MAX_RANGE} addresses per pool")
    hosts = list(net.hosts()) if net.prefixlen < 31 else list(net)
    rows = [{"kind": "ipv4", "pool": pool, "value": str(ip),
             "attributes": {"prefixLength": net.prefixlen, "gateway": str(hosts[0]) if hosts else None}}
            for ip in hosts[1:]]  # the first host address is the gateway
    return {"added": await _bulk_insert(session, rows)}


async def add_onts(session: AsyncSession, serials: Iterable[str], pool: str = "default",
                   model: str | None = None) -> dict[str, int]:
    rows = []
    for s in serials:
        s = s.strip().upper()
        if not re.match(r"^[A-Z0-9]{8,20}$", s):
            raise InvalidPoolInput(f"'{s}' is not an ONT serial number (8-20 letters and digits)")
        rows.append({"kind": "ont", "pool": pool, "value": s, "attributes": {"model": model} if model else {}})
    return {"added": await _bulk_insert(session, rows)}


def parse_sim_csv(content: str, pool: str = "default") -> list[dict[str, Any]]:
    """SIM cards from a vendor file: columns ``iccid,imsi,ki_ref`` (a reference to the Ki in the HSM/AuC — the
    key itself never enters the BSS), optional ``pool`` and ``form`` (physical, eSIM)."""
    reader = csv.DictReader(io.StringIO(content))
    need = {"iccid", "imsi", "ki_ref"}
    if not reader.fieldnames or not need <= {f.strip().lower() for f in reader.fieldnames}:
        raise InvalidPoolInput(f"the SIM file needs the columns {', '.join(sorted(need))}")
    rows = []
    for line, raw in enumerate(reader, start=2):
        r = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        if not re.match(r"^89\d{16,20}$", r["iccid"]):
            raise InvalidPoolInput(f"line {line}: ICCID '{r['iccid']}' must be 18-22 digits starting with 89")
        if not re.match(r"^\d{14,15}$", r["imsi"]):
            raise InvalidPoolInput(f"line {line}: IMSI '{r['imsi']}' must be 14-15 digits")
        if not r["ki_ref"]:
            raise InvalidPoolInput(f"line {line}: ki_ref is empty")
        rows.append({"kind": "sim", "pool": r.get("pool") or pool, "value": r["iccid"],
                     "attributes": {"iccid": r["iccid"], "imsi": r["imsi"], "kiRef": r["ki_ref"],
                                    "form": r.get("form") or "physical"}})
    return rows


async def load_sims(session: AsyncSession, content: str, pool: str = "default") -> dict[str, int]:
    rows = parse_sim_csv(content, pool)
    added = await _bulk_insert(session, rows)
    return {"read": len(rows), "added": added}


def _free_condition() -> Any:
    return (PoolItem.status == "available") | (
        (PoolItem.status == "quarantined") & (PoolItem.quarantine_until <= func.now()))


async def allocate(session: AsyncSession, kind: str, key: str, assigned_to: str, *, pool: str | None = None,
                   value: str | None = None) -> Allocated:
    """Take one free item of ``kind`` for ``assigned_to``; the same ``key`` always returns the same item.
    ``value`` asks for a given item (a golden number sold to the customer, the ONT a technician installed)."""
    if kind not in KINDS:
        raise InvalidPoolInput(f"unknown resource kind '{kind}'")
    existing = (await session.execute(select(PoolItem).where(PoolItem.allocation_key == key))).scalars().first()
    if existing is not None:
        return Allocated(existing.kind, existing.value, existing.pool, dict(existing.attributes))
    candidate = select(PoolItem.id).where(PoolItem.kind == kind)
    if value is not None:
        candidate = candidate.where(PoolItem.value == value,
                                    _free_condition() | (PoolItem.status == "held"))
    else:
        candidate = candidate.where(_free_condition(), PoolItem.golden.is_(False))
        if pool:
            candidate = candidate.where(PoolItem.pool == pool)
    locked = candidate.order_by(PoolItem.id).limit(1).with_for_update(skip_locked=True).scalar_subquery()
    row = (await session.execute(
        update(PoolItem).where(PoolItem.id == locked)
        .values(status="inUse", allocation_key=key, assigned_to=assigned_to, quarantine_until=None,
                updated_at=func.now())
        .returning(PoolItem.kind, PoolItem.value, PoolItem.pool, PoolItem.attributes))).first()
    if row is None:
        what = f"{kind} '{value}'" if value else f"{kind} in pool '{pool or 'any'}'"
        raise PoolExhausted(f"no free {what}")
    return Allocated(row.kind, row.value, row.pool, dict(row.attributes))


async def release(session: AsyncSession, key: str, *, quarantine: timedelta | None = None,
                  retire: bool = False) -> bool:
    """Give back the item allocated with ``key``: straight back to the pool (an order that never went live), into
    quarantine (a terminated number), or retired (a used SIM card)."""
    values: dict[str, Any] = {"allocation_key": None, "assigned_to": None, "updated_at": func.now()}
    if retire:
        values["status"] = "retired"
    elif quarantine:
        values |= {"status": "quarantined", "quarantine_until": func.now() + quarantine}
    else:
        values |= {"status": text("CASE WHEN golden THEN 'held' ELSE 'available' END")}
    res = await session.execute(update(PoolItem).where(PoolItem.allocation_key == key).values(**values)
                                .returning(PoolItem.id))
    return res.first() is not None


async def counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    rows = (await session.execute(select(PoolItem.kind, PoolItem.status, func.count())
                                  .group_by(PoolItem.kind, PoolItem.status))).all()
    out: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        out.setdefault(kind, {})[status] = int(n)
    return out


async def find(session: AsyncSession, kind: str, value: str) -> PoolItem | None:
    """The pool item of ``kind`` whose value is ``value`` (ONT serials compare in capitals), if a pool holds it."""
    if kind not in KINDS:
        return None
    wanted = value.strip().upper() if kind == "ont" else value.strip()
    return (await session.execute(select(PoolItem).where(PoolItem.kind == kind, PoolItem.value == wanted))
            ).scalars().first()

"""Monthly range partitions of time-partitioned tables: created ahead, dropped after the retention.

A partitioned table (``charging_usage``, by month of ``usage_date``) has one partition per calendar month (UTC),
named ``<table>_pYYYYMM``, and a default partition ``<table>_pdefault`` that takes any row no monthly partition covers
(so that no write is ever refused because the maintenance did not run). ``maintain`` creates the partitions of the
previous and the current month and of the ``ahead`` next ones, moving into a new partition the rows the default
partition already holds for its month, and drops the monthly partitions that ended more than ``retention_months``
months ago (``retention_months`` 0: keep everything).

Partitions hold every tenant's rows, so retention is a setting of the installation (``usage_retention_months``),
not of a tenant. Creating and dropping partitions needs the table's owner: ``maintain`` runs with the migrating
role's connection (``openbss db partitions``). Every partition inherits the parent's row-level security when read
through the parent (the application only reads and writes the parent); the partitions themselves get row-level
security enabled and forced too, with no policy, so that a query naming a partition directly sees nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Connection, text

#: the tables partitioned by month, and the column they are partitioned by
PARTITIONED = {"charging_usage": "usage_date"}

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_NAME = re.compile(r"^(?P<table>\w+)_p(?P<ym>\d{6})$")


def month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


@dataclass
class Maintenance:
    created: list[str] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)  # partition -> rows moved out of the default partition
    dropped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"created": self.created, "moved": self.moved, "dropped": self.dropped}


def create_sql(table: str, month: date) -> list[str]:
    """Statements that create the partition of ``month`` (attached at once; no row of it is in the default)."""
    name = partition_name(table, month)
    nxt = month_start(month.year, month.month + 1)
    return [f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
            f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{nxt.isoformat()} 00:00:00+00')",
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY", f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY"]


def default_sql(table: str) -> list[str]:
    name = f"{table}_pdefault"
    return [f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} DEFAULT",
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY", f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY"]


def partitions(conn: Connection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t ORDER BY c.relname"), {"t": table})]


def _create(conn: Connection, table: str, column: str, month: date, out: Maintenance) -> None:
    name = partition_name(table, month)
    nxt = month_start(month.year, month.month + 1)
    lo, hi = f"{month.isoformat()} 00:00:00+00", f"{nxt.isoformat()} 00:00:00+00"
    default = f"{table}_pdefault"
    # rows of that month already in the default partition (the maintenance was late) are moved into the new one:
    # PostgreSQL refuses a partition whose rows the default partition holds
    conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
    waiting = conn.execute(text(
        f"SELECT count(*) FROM {default} WHERE {column} >= :lo AND {column} < :hi"),  # noqa: S608 - identifiers
        {"lo": datetime.fromisoformat(lo), "hi": datetime.fromisoformat(hi)}).scalar_one()
    if waiting:
        conn.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        conn.execute(text(f"WITH moved AS (DELETE FROM {default} WHERE {column} >= :lo AND {column} < :hi "  # noqa: S608
                          f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"),
                     {"lo": datetime.fromisoformat(lo), "hi": datetime.fromisoformat(hi)})
        conn.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')"))
        for stmt in create_sql(table, month)[1:]:
            conn.execute(text(stmt))
        out.moved[name] = int(waiting)
    else:
        for stmt in create_sql(table, month):
            conn.execute(text(stmt))
    out.created.append(name)


def maintain(conn: Connection, *, ahead: int = 3, retention_months: int = 0, now: datetime | None = None,
             tables: dict[str, str] | None = None) -> Maintenance:
    """Create the monthly partitions from the previous month to ``ahead`` months after the current one; drop those
    that ended more than ``retention_months`` months before the current month (never the current or the previous
    month)."""
    if ahead < 0:
        raise ValueError("'ahead' must be 0 or more months")
    if retention_months < 0:
        raise ValueError("'retention_months' must be 0 (keep everything) or more months")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    out = Maintenance()
    for table, column in (tables or PARTITIONED).items():
        if not (_IDENT.match(table) and _IDENT.match(column)):
            raise ValueError(f"'{table}.{column}' is not a plain table and column name")
        existing = set(partitions(conn, table))
        if f"{table}_pdefault" not in existing:
            for stmt in default_sql(table):
                conn.execute(text(stmt))
        for i in range(-1, ahead + 1):  # the previous month too: its late usage keeps coming in
            month = month_start(now.year, now.month + i)
            if partition_name(table, month) not in existing:
                _create(conn, table, column, month, out)
        if retention_months:
            oldest_kept = month_start(now.year, now.month - max(retention_months, 2))
            for name in sorted(existing):
                m = _NAME.match(name)
                if m and m["table"] == table:
                    ym = m["ym"]
                    if date(int(ym[:4]), int(ym[4:]), 1) < oldest_kept:
                        conn.execute(text(f"DROP TABLE {name}"))
                        out.dropped.append(name)
    return out

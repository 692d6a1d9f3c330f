"""charging_usage partitioned by month of usage_date (rated usage, online and batch)

The table is rebuilt as a range-partitioned table: monthly partitions ``charging_usage_pYYYYMM`` from the month of
the oldest row (at the latest the previous month) to three months ahead, a default partition, the rows copied over.
The primary key and the unique key include ``usage_date`` (PostgreSQL requires the partition key in them). Later
partitions are created ahead, and old ones dropped, by ``openbss db partitions`` (``openbss.platform.partitions``).

Revision ID: c7d2e9f4a611
Revises: c7d2e9a41f60
Create Date: 2026-12-04 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from openbss.platform.db import tenant_rls_sql
from openbss.platform.partitions import create_sql, default_sql, month_start

revision: str = 'c7d2e9f4a611'
down_revision: str | None = "c7d2e9a41f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("account_id, session_id, request_number, rating_group, usage_type, units, allowance_units, amount_minor, "
           "currency, usage_date, id, body, created_at, last_update, revision, tenant_id")

CREATE = """
CREATE TABLE charging_usage (
  account_id varchar(64) NOT NULL,
  session_id varchar(255) NOT NULL,
  request_number integer NOT NULL,
  rating_group bigint NOT NULL,
  usage_type varchar(10) NOT NULL,
  units bigint NOT NULL,
  allowance_units bigint NOT NULL,
  amount_minor bigint NOT NULL,
  currency varchar(3) NOT NULL,
  usage_date timestamptz NOT NULL,
  id varchar(64) NOT NULL,
  body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_update timestamptz NOT NULL DEFAULT now(),
  revision integer NOT NULL DEFAULT 1,
  tenant_id varchar(63) NOT NULL DEFAULT current_setting('openbss.tenant_id', true),
  CONSTRAINT pk_charging_usage PRIMARY KEY (id, usage_date),
  CONSTRAINT {uq} UNIQUE (session_id, request_number, rating_group, tenant_id, usage_date),
  CONSTRAINT fk_charging_usage_account_id_charging_account FOREIGN KEY (account_id) REFERENCES charging_account (id),
  CONSTRAINT fk_charging_usage_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES tenant (id)
) PARTITION BY RANGE (usage_date)"""

UNIQUE = "uq_charging_usage_session_id_request_number_rating_grou_0890"
OLD_UNIQUE = "uq_charging_usage_session_id_request_number_rating_grou_98e5"


def _months(first: datetime | None, ahead: int = 3) -> list:
    now = datetime.now(UTC)
    start = first.astimezone(UTC) if first is not None else now
    months = []
    m = min(month_start(start.year, start.month), month_start(now.year, now.month - 1))
    last = month_start(now.year, now.month + ahead)
    while m <= last:
        months.append(m)
        m = month_start(m.year, m.month + 1)
    return months


def upgrade() -> None:
    op.execute("ALTER TABLE charging_usage RENAME TO charging_usage_unpartitioned")
    for stmt in (f"ALTER TABLE charging_usage_unpartitioned DROP CONSTRAINT {OLD_UNIQUE}",
                 "ALTER TABLE charging_usage_unpartitioned DROP CONSTRAINT pk_charging_usage",
                 "DROP INDEX ix_charging_usage_account_date", "DROP INDEX ix_charging_usage_tenant_id"):
        op.execute(stmt)
    op.execute(CREATE.format(uq=UNIQUE))
    op.execute("CREATE INDEX ix_charging_usage_account_date ON charging_usage (account_id, usage_date)")
    op.execute("CREATE INDEX ix_charging_usage_tenant_id ON charging_usage (tenant_id)")
    bind = op.get_bind()
    first = bind.execute(text("SELECT min(usage_date) FROM charging_usage_unpartitioned")).scalar()
    for month in _months(first):
        for stmt in create_sql("charging_usage", month):
            op.execute(stmt)
    for stmt in default_sql("charging_usage"):
        op.execute(stmt)
    op.execute(f"INSERT INTO charging_usage ({COLUMNS}) SELECT {COLUMNS} FROM charging_usage_unpartitioned")  # noqa: S608
    op.execute("DROP TABLE charging_usage_unpartitioned")
    for stmt in tenant_rls_sql("charging_usage"):
        op.execute(stmt)


def downgrade() -> None:
    op.execute("ALTER TABLE charging_usage RENAME TO charging_usage_partitioned")
    op.execute("ALTER INDEX ix_charging_usage_account_date RENAME TO ix_charging_usage_account_date_p")
    op.execute("ALTER INDEX ix_charging_usage_tenant_id RENAME TO ix_charging_usage_tenant_id_p")
    op.execute(f"ALTER TABLE charging_usage_partitioned DROP CONSTRAINT {UNIQUE}")
    op.execute("ALTER TABLE charging_usage_partitioned DROP CONSTRAINT pk_charging_usage")
    op.execute(CREATE.format(uq=OLD_UNIQUE).replace("PRIMARY KEY (id, usage_date)", "PRIMARY KEY (id)")
               .replace(", usage_date),\n  CONSTRAINT fk_charging_usage_account", "),\n  CONSTRAINT fk_charging_usage_account")
               .replace(" PARTITION BY RANGE (usage_date)", ""))
    op.execute("CREATE INDEX ix_charging_usage_account_date ON charging_usage (account_id, usage_date)")
    op.execute("CREATE INDEX ix_charging_usage_tenant_id ON charging_usage (tenant_id)")
    op.execute(f"INSERT INTO charging_usage ({COLUMNS}) SELECT {COLUMNS} FROM charging_usage_partitioned")  # noqa: S608
    op.execute("DROP TABLE charging_usage_partitioned CASCADE")
    for stmt in tenant_rls_sql("charging_usage"):
        op.execute(stmt)

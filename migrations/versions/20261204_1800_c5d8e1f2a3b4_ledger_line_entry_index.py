"""ledger: the lines' entry index also carries the tenant (the balance check at commit reads one entry's lines)

Under row-level security the ledger's per-line balance check (``ledger_entry_balanced``, run at commit) selects an
entry's lines with the tenant's policy condition too; with an index on ``entry_id`` alone PostgreSQL could combine
it with the tenant index, reading every line of the tenant for each line checked (quadratic: 4,000 lines took
2.4 s to check in a tenant of 200,000 lines). An index on ``(entry_id, tenant_id)`` answers both conditions.

Revision ID: c5d8e1f2a3b4
Revises: b4e7a2c9d158
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'c5d8e1f2a3b4'
down_revision: str | None = "b4e7a2c9d158"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_ledger_line_entry', table_name='ledger_line')
    op.create_index('ix_ledger_line_entry', 'ledger_line', ['entry_id', 'tenant_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ledger_line_entry', table_name='ledger_line')
    op.create_index('ix_ledger_line_entry', 'ledger_line', ['entry_id'], unique=False)

"""payments: refunds in two phases (the janitor finds the stale refunds of every tenant: system scope), disputes
(chargebacks), write-offs, top-ups, revenue recognition

Revision ID: e41b9d7c2a58
Revises: c7d2e8a1f4b3
Create Date: 2026-12-04 14:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = 'e41b9d7c2a58'
down_revision: str | None = 'c7d2e8a1f4b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_payments_refund_stale', 'payments_refund', ['state', 'last_update'], unique=False,
                    postgresql_where=sa.text("state IN ('pending', 'unknown')"))
    # the refund janitor reads the stale refunds of every tenant in one query, in the system scope
    op.execute("DROP POLICY tenant_isolation ON payments_refund")
    op.execute(tenant_rls_sql('payments_refund', system_access=True)[-1])


def downgrade() -> None:
    op.execute("DROP POLICY tenant_isolation ON payments_refund")
    op.execute(tenant_rls_sql('payments_refund')[-1])
    op.drop_index('ix_payments_refund_stale', table_name='payments_refund',
                  postgresql_where=sa.text("state IN ('pending', 'unknown')"))

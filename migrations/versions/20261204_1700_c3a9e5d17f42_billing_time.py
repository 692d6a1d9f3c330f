"""billing time: back-dating limit and alignment settings, sandbox tenants, test clocks

Revision ID: c3a9e5d17f42
Revises: c7d2e9a4b318
Create Date: 2026-12-04 17:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = 'c3a9e5d17f42'
down_revision: str | None = "c7d2e9a4b318"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('tenant', sa.Column('sandbox', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('billing_settings', sa.Column('backdate_days', sa.Integer(), nullable=True))
    op.add_column('billing_settings', sa.Column('alignment', sa.String(length=12), server_default='calendar',
                                                nullable=False))
    op.create_table(
        'billing_test_clock',
        sa.Column('now', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('tenant_id', sa.String(length=63),
                  server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_billing_test_clock_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_billing_test_clock')),
    )
    op.create_index(op.f('ix_billing_test_clock_tenant_id'), 'billing_test_clock', ['tenant_id'], unique=False)
    for statement in tenant_rls_sql('billing_test_clock'):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table('billing_test_clock')
    op.drop_column('billing_settings', 'alignment')
    op.drop_column('billing_settings', 'backdate_days')
    op.drop_column('tenant', 'sandbox')

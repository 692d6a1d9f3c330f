"""billing: product changes (upgrade, downgrade, cancel, suspend, resume, transfer) with their effective dates

Revision ID: e4b7a2c9d013
Revises: 5e1b9c3a7d24
Create Date: 2026-12-04 15:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = 'e4b7a2c9d013'
down_revision: str | None = "5e1b9c3a7d24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'billing_product_change',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('product_id', sa.String(length=64), nullable=False),
        sa.Column('billing_account_id', sa.String(length=64), nullable=False),
        sa.Column('to_account_id', sa.String(length=64), nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('effective_date', sa.Date(), nullable=False),
        sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('tenant_id', sa.String(length=63),
                  server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'],
                                name=op.f('fk_billing_product_change_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_product_change')),
    )
    for column in ('product_id', 'billing_account_id', 'to_account_id', 'tenant_id'):
        op.create_index(op.f(f'ix_billing_product_change_{column}'), 'billing_product_change', [column],
                        unique=False)
    for statement in tenant_rls_sql('billing_product_change'):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table('billing_product_change')

"""charging settings (how a call crossing a time-band change is rated) and prepaid renewal fees

Revision ID: 5e1b9c3a7d24
Revises: c7d2e8a1f4b3
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = '5e1b9c3a7d24'
down_revision: str | None = 'c7d2e8a1f4b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('charging_settings',
    sa.Column('band_change', sa.String(length=10), server_default='start', nullable=False),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_charging_settings_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_charging_settings'))
    )
    op.create_index(op.f('ix_charging_settings_tenant_id'), 'charging_settings', ['tenant_id'], unique=False)
    op.create_table('charging_renewal_fee',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('usage_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['charging_account.id'], name=op.f('fk_charging_renewal_fee_account_id_charging_account')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_charging_renewal_fee_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charging_renewal_fee')),
    sa.UniqueConstraint('account_id', 'period_start', 'tenant_id', name=op.f('uq_charging_renewal_fee_account_id_period_start_tenant_id'))
    )
    op.create_index(op.f('ix_charging_renewal_fee_tenant_id'), 'charging_renewal_fee', ['tenant_id'], unique=False)
    for table in ('charging_settings', 'charging_renewal_fee'):
        for statement in tenant_rls_sql(table):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table('charging_renewal_fee')
    op.drop_table('charging_settings')

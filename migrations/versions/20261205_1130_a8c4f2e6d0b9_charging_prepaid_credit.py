"""charging: money credited to prepaid lines that no payment funded, for the ledger's prepaid liability

Revision ID: a8c4f2e6d0b9
Revises: d5a9e3c7b1f4
Create Date: 2026-12-05 11:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = 'a8c4f2e6d0b9'
down_revision: str | None = 'd5a9e3c7b1f4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'charging_prepaid_credit',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.String(length=64), nullable=False),
        sa.Column('funding', sa.String(length=20), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('tenant_id', sa.String(length=63),
                  server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['charging_account.id'],
                                name=op.f('fk_charging_prepaid_credit_account_id_charging_account')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_charging_prepaid_credit_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_charging_prepaid_credit')),
    )
    op.create_index('ix_charging_prepaid_credit_created_at', 'charging_prepaid_credit', ['created_at'], unique=False)
    op.create_index(op.f('ix_charging_prepaid_credit_tenant_id'), 'charging_prepaid_credit', ['tenant_id'],
                    unique=False)
    for statement in tenant_rls_sql('charging_prepaid_credit'):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table('charging_prepaid_credit')

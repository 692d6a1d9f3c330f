"""payments: refunds in two phases (the janitor finds the stale refunds of every tenant: system scope), disputes
(chargebacks), write-offs, top-ups, revenue recognition

Revision ID: e41b9d7c2a58
Revises: 5e1b9d3c7a24
Create Date: 2026-12-04 14:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

TENANT = sa.text("current_setting('openbss.tenant_id', true)")


def _tenant(table: str) -> list[sa.SchemaItem]:
    return [sa.Column('tenant_id', sa.String(length=63), server_default=TENANT, nullable=False),
            sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f(f'fk_{table}_tenant_id_tenant'))]

revision: str = 'e41b9d7c2a58'
down_revision: str | None = '5e1b9d3c7a24'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payments_dispute',
    sa.Column('gateway', sa.String(length=30), nullable=False),
    sa.Column('dispute_id', sa.String(length=100), nullable=False),
    sa.Column('payment_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('fee', sa.Numeric(precision=20, scale=6), server_default='0', nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    *_tenant('payments_dispute'),
    sa.PrimaryKeyConstraint('tenant_id', 'gateway', 'dispute_id', name=op.f('pk_payments_dispute'))
    )
    op.create_index(op.f('ix_payments_dispute_tenant_id'), 'payments_dispute', ['tenant_id'], unique=False)
    op.create_index('ix_payments_dispute_payment', 'payments_dispute', ['payment_id'], unique=False)
    op.create_table('payments_topup',
    sa.Column('payment_id', sa.String(length=64), nullable=False),
    sa.Column('charging_account_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('credited_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    *_tenant('payments_topup'),
    sa.PrimaryKeyConstraint('tenant_id', 'payment_id', name=op.f('pk_payments_topup'))
    )
    op.create_index(op.f('ix_payments_topup_tenant_id'), 'payments_topup', ['tenant_id'], unique=False)
    op.create_table('payments_write_off',
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('billing_account_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('settled', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    *_tenant('payments_write_off'),
    sa.PrimaryKeyConstraint('tenant_id', 'reference', name=op.f('pk_payments_write_off'))
    )
    op.create_index(op.f('ix_payments_write_off_tenant_id'), 'payments_write_off', ['tenant_id'], unique=False)
    op.create_index('ix_payments_write_off_account', 'payments_write_off', ['billing_account_id'], unique=False)
    op.create_table('ledger_deferral',
    sa.Column('line_id', sa.String(length=64), nullable=False),
    sa.Column('bill_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('revenue_account', sa.String(length=20), nullable=False),
    sa.Column('recognized', sa.Numeric(precision=20, scale=6), server_default='0', nullable=False),
    sa.Column('recognized_through', sa.Date(), nullable=True),
    *_tenant('ledger_deferral'),
    sa.PrimaryKeyConstraint('tenant_id', 'line_id', name=op.f('pk_ledger_deferral'))
    )
    op.create_index(op.f('ix_ledger_deferral_tenant_id'), 'ledger_deferral', ['tenant_id'], unique=False)
    op.create_table('ledger_revenue',
    sa.Column('bill_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('product_name', sa.String(length=200), nullable=True),
    sa.Column('tax_rate', sa.String(length=20), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('tax', sa.Numeric(precision=20, scale=6), nullable=False),
    *_tenant('ledger_revenue'),
    sa.PrimaryKeyConstraint('tenant_id', 'bill_id', 'seq', name=op.f('pk_ledger_revenue'))
    )
    op.create_index(op.f('ix_ledger_revenue_tenant_id'), 'ledger_revenue', ['tenant_id'], unique=False)
    op.create_index('ix_ledger_revenue_period', 'ledger_revenue', ['period'], unique=False)
    op.create_index('ix_ledger_deferral_open', 'ledger_deferral', ['start_date'], unique=False,
                    postgresql_where=sa.text('recognized <> amount'))
    op.create_index('ix_payments_refund_stale', 'payments_refund', ['state', 'last_update'], unique=False,
                    postgresql_where=sa.text("state IN ('pending', 'unknown')"))
    # the refund janitor reads the stale refunds of every tenant in one query, in the system scope
    op.execute("DROP POLICY tenant_isolation ON payments_refund")
    op.execute(tenant_rls_sql('payments_refund', system_access=True)[-1])
    for table in ('payments_dispute', 'payments_topup', 'payments_write_off', 'ledger_deferral', 'ledger_revenue'):
        for statement in tenant_rls_sql(table):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table('ledger_revenue')
    op.drop_table('ledger_deferral')
    op.drop_table('payments_write_off')
    op.drop_table('payments_topup')
    op.drop_table('payments_dispute')
    op.execute("DROP POLICY tenant_isolation ON payments_refund")
    op.execute(tenant_rls_sql('payments_refund')[-1])
    op.drop_index('ix_payments_refund_stale', table_name='payments_refund',
                  postgresql_where=sa.text("state IN ('pending', 'unknown')"))

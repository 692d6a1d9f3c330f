"""care: agents' bill-adjustment limits and supervisors' approvals

Revision ID: e41b7c9a2d56
Revises: 162e20675270
Create Date: 2026-12-04 15:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = 'e41b7c9a2d56'
down_revision: str | None = '162e20675270'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = sa.text("current_setting('openbss.tenant_id', true)")


def upgrade() -> None:
    op.create_table('care_adjustment_limit',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('tenant_id', sa.String(length=63), server_default=TENANT, nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_care_adjustment_limit_amount')),
    sa.CheckConstraint("kind IN ('role', 'agent')", name=op.f('ck_care_adjustment_limit_kind')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_care_adjustment_limit_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_adjustment_limit')),
    sa.UniqueConstraint('tenant_id', 'kind', 'principal',
                        name=op.f('uq_care_adjustment_limit_tenant_id_kind_principal'))
    )
    op.create_index(op.f('ix_care_adjustment_limit_tenant_id'), 'care_adjustment_limit', ['tenant_id'], unique=False)
    op.create_table('care_approval',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('bill_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requester_limit', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('credit_note_id', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.String(length=63), server_default=TENANT, nullable=False),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f('ck_care_approval_status')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_care_approval_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_approval'))
    )
    op.create_index('ix_care_approval_status', 'care_approval', ['tenant_id', 'status', 'requested_at'], unique=False)
    op.create_index(op.f('ix_care_approval_tenant_id'), 'care_approval', ['tenant_id'], unique=False)
    for table in ('care_adjustment_limit', 'care_approval'):
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)


def downgrade() -> None:
    op.drop_index(op.f('ix_care_approval_tenant_id'), table_name='care_approval')
    op.drop_index('ix_care_approval_status', table_name='care_approval')
    op.drop_table('care_approval')
    op.drop_index(op.f('ix_care_adjustment_limit_tenant_id'), table_name='care_adjustment_limit')
    op.drop_table('care_adjustment_limit')

"""rating: IMSI assignment history (guiding by IMSI) and re-rate jobs

Revision ID: b4e7a2c9d158
Revises: e41b9d7c2a58
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = 'b4e7a2c9d158'
down_revision: str | None = 'e41b9d7c2a58'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("rating_imsi_assignment", "rating_rerate")


def upgrade() -> None:
    op.create_table('rating_imsi_assignment',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('imsi', sa.String(length=15), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_rating_imsi_assignment_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rating_imsi_assignment'))
    )
    op.create_index('ix_rating_imsi_assignment_imsi', 'rating_imsi_assignment', ['tenant_id', 'imsi', 'valid_from'], unique=False)
    op.create_index(op.f('ix_rating_imsi_assignment_tenant_id'), 'rating_imsi_assignment', ['tenant_id'], unique=False)
    op.create_table('rating_rerate',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('tariff_id', sa.String(length=64), nullable=True),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_rating_rerate_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_rating_rerate'))
    )
    op.create_index(op.f('ix_rating_rerate_tenant_id'), 'rating_rerate', ['tenant_id'], unique=False)
    for table in TABLES:
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)


def downgrade() -> None:
    op.drop_table('rating_rerate')
    op.drop_table('rating_imsi_assignment')

"""assurance: TMF628 on-demand collections and tracking records, TMF656 service problem event records

Revision ID: e4b1c8d2f9a7
Revises: c7d2e9f4a1b3
Create Date: 2026-12-04 20:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = 'e4b1c8d2f9a7'
down_revision: str | None = "c7d2e9f4a1b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_DEFAULT = sa.text("current_setting('openbss.tenant_id', true)")
TABLES = ('on_demand_collection', 'performance_tracking_record', 'service_problem_event_record')


def upgrade() -> None:
    for table in TABLES:
        extra = []
        if table == 'on_demand_collection':
            extra = [sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True)]
        op.create_table(
            table,
            *extra,
            sa.Column('id', sa.String(length=64), nullable=False),
            sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
            sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('last_update', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
            sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
            sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f(f'fk_{table}_tenant_id_tenant')),
            sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
        )
        op.create_index(f'ix_{table}_body', table, ['body'], unique=False, postgresql_using='gin',
                        postgresql_ops={'body': 'jsonb_path_ops'})
        op.create_index(f'ix_{table}_recent', table, ['tenant_id', sa.literal_column('created_at DESC'), 'id'],
                        unique=False)
        op.create_index(op.f(f'ix_{table}_tenant_id'), table, ['tenant_id'], unique=False)
    op.create_index('ix_on_demand_collection_due', 'on_demand_collection', ['tenant_id', 'next_run_at'],
                    unique=False, postgresql_where=sa.text('next_run_at IS NOT NULL'))
    for table in TABLES:
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)

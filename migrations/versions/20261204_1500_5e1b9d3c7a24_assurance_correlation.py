"""assurance: correlation rules, TMF656 service problems (one open per root object), alarms grouped into problems

Revision ID: 5e1b9d3c7a24
Revises: b83f0d6e2a19
Create Date: 2026-12-04 15:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = '5e1b9d3c7a24'
down_revision: str | None = 'b83f0d6e2a19'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_DEFAULT = sa.text("current_setting('openbss.tenant_id', true)")


def upgrade() -> None:
    op.drop_table('alarm_problem')
    op.add_column('alarm', sa.Column('problem_id', sa.String(length=64), nullable=True))
    op.create_index('ix_alarm_problem', 'alarm', ['tenant_id', 'problem_id'], unique=False,
                    postgresql_where=sa.text('is_open'))
    op.create_index('ix_alarm_reduction_key', 'alarm', ['tenant_id', 'reduction_key', 'created_at'], unique=False)
    op.create_table(
        'service_problem',
        sa.Column('root_object', sa.String(length=300), nullable=True),
        sa.Column('ticket_id', sa.String(length=64), nullable=True),
        sa.Column('is_open', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_update', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_service_problem_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_service_problem')),
    )
    op.create_index('ix_service_problem_body', 'service_problem', ['body'], unique=False, postgresql_using='gin',
                    postgresql_ops={'body': 'jsonb_path_ops'})
    op.create_index('ix_service_problem_recent', 'service_problem',
                    ['tenant_id', sa.literal_column('created_at DESC'), 'id'], unique=False)
    op.create_index(op.f('ix_service_problem_tenant_id'), 'service_problem', ['tenant_id'], unique=False)
    op.create_index('uq_service_problem_open_root', 'service_problem', ['tenant_id', 'root_object'], unique=True,
                    postgresql_where=sa.text('is_open'))
    op.create_table(
        'correlation_rule',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('priority', sa.Integer(), server_default='100', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_correlation_rule_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_correlation_rule')),
    )
    op.create_index(op.f('ix_correlation_rule_tenant_id'), 'correlation_rule', ['tenant_id'], unique=False)
    for table in ('service_problem', 'correlation_rule'):
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)


def downgrade() -> None:
    op.drop_table('correlation_rule')
    op.drop_table('service_problem')
    op.drop_index('ix_alarm_reduction_key', table_name='alarm')
    op.drop_index('ix_alarm_problem', table_name='alarm')
    op.drop_column('alarm', 'problem_id')
    op.create_table(
        'alarm_problem',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('object_type', sa.String(length=20), nullable=False),
        sa.Column('object_id', sa.String(length=256), nullable=False),
        sa.Column('ticket_id', sa.String(length=64), nullable=True),
        sa.Column('is_open', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_alarm_problem_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_problem')),
    )
    op.create_index(op.f('ix_alarm_problem_tenant_id'), 'alarm_problem', ['tenant_id'], unique=False)
    op.create_index('uq_alarm_problem_open_object', 'alarm_problem', ['tenant_id', 'object_type', 'object_id'],
                    unique=True, postgresql_where=sa.text('is_open'))
    for stmt in tenant_rls_sql('alarm_problem'):
        op.execute(stmt)

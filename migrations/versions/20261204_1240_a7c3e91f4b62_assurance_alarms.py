"""assurance: TMF642 alarms (open alarms unique per reduction key), their operation tasks, problems per managed object

Revision ID: a7c3e91f4b62
Revises: a9c3e1f47b20
Create Date: 2026-12-04 12:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = 'a7c3e91f4b62'
down_revision: str | None = 'a9c3e1f47b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_DEFAULT = sa.text("current_setting('openbss.tenant_id', true)")
DOCUMENTS = ('alarm', 'alarm_ack_task', 'alarm_unack_task', 'alarm_clear_task', 'alarm_comment_task')


def _document_table(name: str, *extra: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_update', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
        *extra,
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f(f'fk_{name}_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    )
    op.create_index(f'ix_{name}_body', name, ['body'], unique=False, postgresql_using='gin',
                    postgresql_ops={'body': 'jsonb_path_ops'})
    op.create_index(f'ix_{name}_recent', name, ['tenant_id', sa.literal_column('created_at DESC'), 'id'],
                    unique=False)
    op.create_index(op.f(f'ix_{name}_tenant_id'), name, ['tenant_id'], unique=False)


def upgrade() -> None:
    _document_table('alarm', sa.Column('reduction_key', sa.String(length=512), nullable=False),
                    sa.Column('is_open', sa.Boolean(), server_default='true', nullable=False))
    op.create_index('uq_alarm_open_reduction_key', 'alarm', ['tenant_id', 'reduction_key'], unique=True,
                    postgresql_where=sa.text('is_open'))
    for name in DOCUMENTS[1:]:
        _document_table(name)
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
    for table in (*DOCUMENTS, 'alarm_problem'):
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)


def downgrade() -> None:
    op.drop_table('alarm_problem')
    for name in reversed(DOCUMENTS):
        op.drop_table(name)

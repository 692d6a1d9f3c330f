"""rating: files submitted to the JetStream work queue, cut into chunks (work items)

Revision ID: d3a8f1c5b720
Revises: c7d2e9f4a611
Create Date: 2026-12-04 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = 'd3a8f1c5b720'
down_revision: str | None = "c7d2e9f4a611"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rating_file_chunk',
    sa.Column('file_id', sa.String(length=64), nullable=False),
    sa.Column('chunk', sa.Integer(), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('records', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='queued', nullable=False),
    sa.Column('received', sa.Integer(), nullable=False),
    sa.Column('rated', sa.Integer(), server_default='0', nullable=False),
    sa.Column('duplicate', sa.Integer(), server_default='0', nullable=False),
    sa.Column('suspended', sa.Integer(), server_default='0', nullable=False),
    sa.Column('deliveries', sa.Integer(), server_default='0', nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_rating_file_chunk_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', 'file_id', 'chunk', name=op.f('pk_rating_file_chunk'))
    )
    op.create_index(op.f('ix_rating_file_chunk_tenant_id'), 'rating_file_chunk', ['tenant_id'], unique=False)
    op.add_column('rating_file', sa.Column('status', sa.String(length=10), server_default='rated', nullable=False))
    op.add_column('rating_file', sa.Column('chunks', sa.Integer(), server_default='0', nullable=False))
    op.add_column('rating_file', sa.Column('chunks_done', sa.Integer(), server_default='0', nullable=False))
    for stmt in tenant_rls_sql('rating_file_chunk'):
        op.execute(stmt)


def downgrade() -> None:
    op.drop_column('rating_file', 'chunks_done')
    op.drop_column('rating_file', 'chunks')
    op.drop_column('rating_file', 'status')
    op.drop_index(op.f('ix_rating_file_chunk_tenant_id'), table_name='rating_file_chunk')
    op.drop_table('rating_file_chunk')

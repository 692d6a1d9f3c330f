"""care: a trouble ticket's queue and status as generated columns, indexed for the queues' work lists

Revision ID: b83f0d6e2a19
Revises: e41b7c9a2d56
Create Date: 2026-12-04 15:10:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b83f0d6e2a19'
down_revision: str | None = 'e41b7c9a2d56'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('trouble_ticket', sa.Column('queue_id', sa.String(length=64), sa.Computed(
        "(body -> 'queue') ->> 'id'", persisted=True), nullable=True))
    op.add_column('trouble_ticket', sa.Column('status', sa.String(length=20), sa.Computed(
        "body ->> 'status'", persisted=True), nullable=True))
    op.create_index('ix_trouble_ticket_queue_recent', 'trouble_ticket',
                    ['tenant_id', 'queue_id', sa.literal_column('created_at DESC'), 'id'], unique=False)
    op.create_index('ix_trouble_ticket_queue_status', 'trouble_ticket', ['tenant_id', 'queue_id', 'status'],
                    unique=False)
    # the columns serve these filters now: their search entries are no longer written nor read
    op.execute("DELETE FROM search_entry WHERE resource_type = 'TroubleTicket' AND attribute IN ('queue.id', 'status')")


def downgrade() -> None:
    op.drop_index('ix_trouble_ticket_queue_status', table_name='trouble_ticket')
    op.drop_index('ix_trouble_ticket_queue_recent', table_name='trouble_ticket')
    op.drop_column('trouble_ticket', 'status')
    # the two filters are the search entries' again (plain values, as the kit writes them)
    op.execute("INSERT INTO search_entry (tenant_id, resource_type, attribute, value, resource_id, is_unique) "
               "SELECT tenant_id, 'TroubleTicket', 'queue.id', queue_id, id, false FROM trouble_ticket "
               "WHERE queue_id IS NOT NULL ON CONFLICT DO NOTHING")
    op.execute("INSERT INTO search_entry (tenant_id, resource_type, attribute, value, resource_id, is_unique) "
               "SELECT tenant_id, 'TroubleTicket', 'status', status, id, false FROM trouble_ticket "
               "WHERE status IS NOT NULL ON CONFLICT DO NOTHING")
    op.drop_column('trouble_ticket', 'queue_id')

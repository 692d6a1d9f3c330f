"""outbox dead letters: events the relay cannot publish are set aside with their error

Revision ID: c7d2e8a1f4b3
Revises: a3c9e2f41b07
Create Date: 2026-12-04 12:20:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c7d2e8a1f4b3'
down_revision: str | None = 'a3c9e2f41b07'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('outbox_event', sa.Column('dead_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('outbox_event', sa.Column('last_error', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('outbox_event', 'last_error')
    op.drop_column('outbox_event', 'dead_at')

"""billing: whether a suspension by collections (non-payment) stops the recurring charges (a tenant setting)

Revision ID: c3e7a1d9f5b2
Revises: a8c4f2e6d0b9
Create Date: 2026-12-05 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3e7a1d9f5b2'
down_revision: str | None = 'a8c4f2e6d0b9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('billing_settings', sa.Column('dunning_suspension', sa.String(length=12),
                                                server_default='stopsCharges', nullable=False))


def downgrade() -> None:
    op.drop_column('billing_settings', 'dunning_suspension')

"""charging account: the services barred while it stays active (a partial bar placed by collections' restrict step
through a modify order)

Revision ID: c7d2e9a4b318
Revises: c5d8e1f2a3b4
Create Date: 2026-12-04 18:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c7d2e9a4b318'
down_revision: str | None = "c5d8e1f2a3b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('charging_account', sa.Column('barred', postgresql.ARRAY(sa.String(length=20)), nullable=True))


def downgrade() -> None:
    op.drop_column('charging_account', 'barred')

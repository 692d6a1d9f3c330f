"""charging bucket: the services (usage types) and time bands a bucket may pay for (None: all), next to its
destination zones

Revision ID: 8d3f6b2a9c41
Revises: 8c1d2e3f4a5b
Create Date: 2026-12-04 12:10:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '8d3f6b2a9c41'
down_revision: str | None = '8c1d2e3f4a5b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('charging_bucket', sa.Column('services', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('charging_bucket', sa.Column('bands', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('charging_bucket', 'bands')
    op.drop_column('charging_bucket', 'services')

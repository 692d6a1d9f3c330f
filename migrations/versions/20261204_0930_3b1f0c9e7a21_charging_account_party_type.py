"""charging account: the kind of party (Individual or Organization) its buckets and usage records refer to

Revision ID: 3b1f0c9e7a21
Revises: cfb0af6580ae
Create Date: 2026-12-04 09:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3b1f0c9e7a21'
down_revision: str | None = 'cfb0af6580ae'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('charging_account', sa.Column('party_type', sa.String(length=20), server_default='Individual',
                                                nullable=False))


def downgrade() -> None:
    op.drop_column('charging_account', 'party_type')

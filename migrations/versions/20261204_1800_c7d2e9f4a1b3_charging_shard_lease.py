"""charging: shard leases of the charging nodes

Revision ID: c7d2e9f4a1b3
Revises: c5a8e2f7b391
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c7d2e9f4a1b3'
down_revision: str | None = "c5a8e2f7b391"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('charging_shard_lease',
    sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('renewed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('shard', name=op.f('pk_charging_shard_lease'))
    )


def downgrade() -> None:
    op.drop_table('charging_shard_lease')

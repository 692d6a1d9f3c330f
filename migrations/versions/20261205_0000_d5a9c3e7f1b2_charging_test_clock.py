"""charging: the time of a sandbox tenant's test clock, as charging follows it (renewals and prepaid fees)

Revision ID: d5a9c3e7f1b2
Revises: b8e4d1f6c2a9
Create Date: 2026-12-05 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd5a9c3e7f1b2'
down_revision: str | None = "b8e4d1f6c2a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("charging_settings", sa.Column("clock_time", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("charging_settings", "clock_time")

"""care: supervisors' approvals of prepaid top-ups above an agent's limit

Revision ID: c7d2e9a41f60
Revises: c3a9e5d17f42
Create Date: 2026-12-04 17:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c7d2e9a41f60'
down_revision: str | None = "c3a9e5d17f42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('care_approval', sa.Column('subscriber', sa.String(length=40), nullable=True))
    op.alter_column('care_approval', 'bill_id', existing_type=sa.String(length=64), nullable=True)
    op.create_check_constraint(
        op.f('ck_care_approval_target'), 'care_approval',
        "(kind = 'billAdjustment' AND bill_id IS NOT NULL) OR (kind = 'topUp' AND subscriber IS NOT NULL)")


def downgrade() -> None:
    op.execute("DELETE FROM care_approval WHERE kind = 'topUp'")
    op.drop_constraint(op.f('ck_care_approval_target'), 'care_approval', type_='check')
    op.alter_column('care_approval', 'bill_id', existing_type=sa.String(length=64), nullable=False)
    op.drop_column('care_approval', 'subscriber')

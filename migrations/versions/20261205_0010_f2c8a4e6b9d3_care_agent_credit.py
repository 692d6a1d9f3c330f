"""care: the credits agents make on their own authority (their limit applies to any 24 hours)

Revision ID: f2c8a4e6b9d3
Revises: b8e4d1f6c2a9
Create Date: 2026-12-05 00:10:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = 'f2c8a4e6b9d3'
down_revision: str | None = "b8e4d1f6c2a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_DEFAULT = sa.text("current_setting('openbss.tenant_id', true)")


def upgrade() -> None:
    op.create_table(
        "care_agent_credit",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(18, 4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_care_agent_credit_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_agent_credit")),
    )
    op.create_index("ix_care_agent_credit_agent", "care_agent_credit", ["tenant_id", "agent", "created_at"],
                    unique=False)
    op.create_index(op.f("ix_care_agent_credit_tenant_id"), "care_agent_credit", ["tenant_id"], unique=False)
    for statement in tenant_rls_sql("care_agent_credit"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("care_agent_credit")

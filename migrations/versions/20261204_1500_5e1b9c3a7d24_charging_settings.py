"""charging settings: how a call crossing a time-band change is rated

Revision ID: 5e1b9c3a7d24
Revises: c7d2e8a1f4b3
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = '5e1b9c3a7d24'
down_revision: str | None = 'c7d2e8a1f4b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('charging_settings',
    sa.Column('band_change', sa.String(length=10), server_default='start', nullable=False),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_charging_settings_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_charging_settings'))
    )
    op.create_index(op.f('ix_charging_settings_tenant_id'), 'charging_settings', ['tenant_id'], unique=False)
    for statement in tenant_rls_sql('charging_settings'):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table('charging_settings')

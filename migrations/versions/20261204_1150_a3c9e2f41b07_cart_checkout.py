"""cart checkout: a shopping cart is checked out once

Revision ID: a3c9e2f41b07
Revises: a7c3e91f4b62
Create Date: 2026-12-04 11:50:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = 'a3c9e2f41b07'
down_revision: str | None = 'a7c3e91f4b62'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ordering_cart_checkout',
    sa.Column('cart_id', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_ordering_cart_checkout_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', 'cart_id', name=op.f('pk_ordering_cart_checkout'))
    )
    op.create_index(op.f('ix_ordering_cart_checkout_tenant_id'), 'ordering_cart_checkout', ['tenant_id'], unique=False)
    for stmt in tenant_rls_sql('ordering_cart_checkout'):
        op.execute(stmt)


def downgrade() -> None:
    op.drop_index(op.f('ix_ordering_cart_checkout_tenant_id'), table_name='ordering_cart_checkout')
    op.drop_table('ordering_cart_checkout')

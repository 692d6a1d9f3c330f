"""collections and billing's manual charges: dunning policies (versioned), episodes (one open per account), step executions (once per
episode and step), exclusions, promises to pay, payment plans

Revision ID: 162e20675270
Revises: e4b7a2c9d013
Create Date: 2026-12-04 15:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = '162e20675270'
down_revision: str | None = 'e4b7a2c9d013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_DEFAULT = sa.text("current_setting('openbss.tenant_id', true)")
MONEY = sa.Numeric(20, 6)


def _tenant(name: str) -> list[sa.SchemaItem]:
    return [sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
            sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f(f'fk_{name}_tenant_id_tenant'))]


def _document_table(name: str, *extra: sa.SchemaItem) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_update', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
        *extra,
        *_tenant(name),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    )
    op.create_index(f'ix_{name}_body', name, ['body'], unique=False, postgresql_using='gin',
                    postgresql_ops={'body': 'jsonb_path_ops'})
    op.create_index(f'ix_{name}_recent', name, ['tenant_id', sa.literal_column('created_at DESC'), 'id'],
                    unique=False)
    op.create_index(op.f(f'ix_{name}_tenant_id'), name, ['tenant_id'], unique=False)


def upgrade() -> None:
    _document_table('collections_dunning_policy',
                    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
                    sa.Column('segment', sa.String(length=50), nullable=True),
                    sa.Column('category', sa.String(length=50), nullable=True),
                    sa.Column('is_default', sa.Boolean(), server_default='false', nullable=False),
                    sa.Column('active', sa.Boolean(), server_default='true', nullable=False))
    op.create_table(
        'collections_policy_version',
        sa.Column('policy_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('steps', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        *_tenant('collections_policy_version'),
        sa.ForeignKeyConstraint(['policy_id'], ['collections_dunning_policy.id'],
                                name=op.f('fk_collections_policy_version_policy_id_collections_dunning_policy')),
        sa.PrimaryKeyConstraint('policy_id', 'version', name=op.f('pk_collections_policy_version')),
    )
    op.create_index(op.f('ix_collections_policy_version_tenant_id'), 'collections_policy_version', ['tenant_id'])
    op.create_table(
        'collections_policy_assignment',
        sa.Column('billing_account_id', sa.String(length=64), nullable=False),
        sa.Column('policy_id', sa.String(length=64), nullable=False),
        *_tenant('collections_policy_assignment'),
        sa.ForeignKeyConstraint(['policy_id'], ['collections_dunning_policy.id'],
                                name=op.f('fk_collections_policy_assignment_policy_id_collections_dunning_policy')),
        sa.PrimaryKeyConstraint('tenant_id', 'billing_account_id', name=op.f('pk_collections_policy_assignment')),
    )
    op.create_index(op.f('ix_collections_policy_assignment_tenant_id'), 'collections_policy_assignment',
                    ['tenant_id'])
    _document_table('collections_episode',
                    sa.Column('billing_account_id', sa.String(length=64), nullable=False),
                    sa.Column('policy_id', sa.String(length=64), nullable=False),
                    sa.Column('policy_version', sa.Integer(), nullable=False),
                    sa.Column('state', sa.String(length=10), server_default='open', nullable=False),
                    sa.Column('currency', sa.String(length=3), nullable=False),
                    sa.Column('overdue_amount', MONEY, nullable=False),
                    sa.Column('peak_amount', MONEY, nullable=False),
                    sa.Column('oldest_due_date', sa.Date(), nullable=False),
                    sa.Column('segment', sa.String(length=50), nullable=True),
                    sa.Column('next_step', sa.Integer(), server_default='0', nullable=False),
                    sa.Column('paused_until', sa.Date(), nullable=True),
                    sa.Column('next_check', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                              nullable=False),
                    sa.Column('opened_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                              nullable=False),
                    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('close_reason', sa.String(length=20), nullable=True))
    op.create_index('uq_collections_episode_open', 'collections_episode', ['tenant_id', 'billing_account_id'],
                    unique=True, postgresql_where=sa.text("state = 'open'"))
    op.create_index('ix_collections_episode_due', 'collections_episode', ['tenant_id', 'next_check'],
                    postgresql_where=sa.text("state = 'open'"))
    op.create_table(
        'collections_step_execution',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('episode_id', sa.String(length=64), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='1', nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('amount', MONEY, nullable=True),
        sa.Column('outcome', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        *_tenant('collections_step_execution'),
        sa.ForeignKeyConstraint(['episode_id'], ['collections_episode.id'],
                                name=op.f('fk_collections_step_execution_episode_id_collections_episode')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_collections_step_execution')),
        sa.UniqueConstraint('episode_id', 'step', name='uq_collections_step_once'),
    )
    op.create_index(op.f('ix_collections_step_execution_tenant_id'), 'collections_step_execution', ['tenant_id'])
    op.create_index(op.f('ix_collections_step_execution_episode_id'), 'collections_step_execution',
                    ['episode_id'])
    op.create_index('ix_collections_step_claimed', 'collections_step_execution', ['lease_until'],
                    postgresql_where=sa.text("state = 'claimed'"))
    op.create_index('ix_collections_step_claimed_episode', 'collections_step_execution', ['episode_id'],
                    postgresql_where=sa.text("state = 'claimed'"))
    op.create_index('ix_collections_step_executed', 'collections_step_execution', ['tenant_id', 'finished_at'])
    _document_table('collections_exclusion',
                    sa.Column('billing_account_id', sa.String(length=64), nullable=False),
                    sa.Column('reason', sa.String(length=20), nullable=False),
                    sa.Column('valid_until', sa.Date(), nullable=True))
    op.create_index('ix_collections_exclusion_account', 'collections_exclusion', ['tenant_id', 'billing_account_id'])
    _document_table('collections_promise',
                    sa.Column('billing_account_id', sa.String(length=64), nullable=False),
                    sa.Column('episode_id', sa.String(length=64), nullable=True),
                    sa.Column('state', sa.String(length=10), server_default='pending', nullable=False),
                    sa.Column('promised_date', sa.Date(), nullable=False),
                    sa.Column('amount', MONEY, nullable=False),
                    sa.Column('received_before', MONEY, server_default='0', nullable=False))
    op.create_index('ix_collections_promise_pending', 'collections_promise', ['tenant_id', 'promised_date'],
                    postgresql_where=sa.text("state = 'pending'"))
    _document_table('collections_payment_plan',
                    sa.Column('billing_account_id', sa.String(length=64), nullable=False),
                    sa.Column('episode_id', sa.String(length=64), nullable=True),
                    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
                    sa.Column('received_before', MONEY, server_default='0', nullable=False),
                    sa.Column('next_due_date', sa.Date(), nullable=True))
    op.create_index('ix_collections_payment_plan_active', 'collections_payment_plan',
                    ['tenant_id', 'billing_account_id'], postgresql_where=sa.text("state = 'active'"))
    op.create_table(
        'billing_manual_charge',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('billing_account_id', sa.String(length=64), nullable=False),
        sa.Column('amount', MONEY, nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reason_code', sa.String(length=50), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('charge_date', sa.Date(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        *_tenant('billing_manual_charge'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_manual_charge')),
        sa.UniqueConstraint('tenant_id', 'reference', name='uq_billing_manual_charge_reference'),
    )
    op.create_index(op.f('ix_billing_manual_charge_tenant_id'), 'billing_manual_charge', ['tenant_id'])
    op.create_index('ix_billing_manual_charge_account', 'billing_manual_charge', ['billing_account_id', 'charge_date'])
    for stmt in tenant_rls_sql('billing_manual_charge'):
        op.execute(stmt)
    # the scheduler finds the tenants with a policy in the system scope; the rest is the tenant's only
    for stmt in tenant_rls_sql('collections_dunning_policy', system_access=True):
        op.execute(stmt)
    for table in ('collections_policy_version', 'collections_policy_assignment', 'collections_episode',
                  'collections_step_execution', 'collections_exclusion', 'collections_promise',
                  'collections_payment_plan'):
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)


def downgrade() -> None:
    op.drop_table('billing_manual_charge')
    for table in ('collections_payment_plan', 'collections_promise', 'collections_exclusion',
                  'collections_step_execution', 'collections_episode', 'collections_policy_assignment',
                  'collections_policy_version', 'collections_dunning_policy'):
        op.drop_table(table)

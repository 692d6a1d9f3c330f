"""assurance: TMF628 performance management — indicator specifications, measurement collection jobs, KPI samples
(range-partitioned by day) with 5-minute, hourly and daily rollups, counter readings; TMF649 threshold rules,
thresholds, threshold jobs and their state per object; SLA definitions and their evaluations per period; the TMF656 task resources

Revision ID: c5a8e2f7b391
Revises: d3a8f1c5b720
Create Date: 2026-12-04 17:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openbss.platform.db import tenant_rls_sql

revision: str = 'c5a8e2f7b391'
down_revision: str | None = "d3a8f1c5b720"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_DEFAULT = sa.text("current_setting('openbss.tenant_id', true)")

#: the day partitions of kpi_sample are made (ahead of the data) and dropped (retention) by these functions, which
#: run with the owner's rights so that the application role needs no DDL privilege
PARTITION_FUNCTIONS = [
    """CREATE FUNCTION assurance_kpi_partition(day date) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        name text := 'kpi_sample_p' || to_char(day, 'YYYYMMDD');
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('kpi_sample_partition'));
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF kpi_sample FOR VALUES FROM (%L) TO (%L)', name,
                               (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
                -- reached through kpi_sample, whose policy applies; a direct read of the partition sees nothing
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
                EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
            EXCEPTION WHEN check_violation THEN
                -- the default partition already holds rows of that day (written while the day had no
                -- partition): they stay there, and so do the day's next rows
                NULL;
            END;
        END IF;
    END $$""",
    """CREATE FUNCTION assurance_kpi_drop_partitions(before date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        part record;
        dropped integer := 0;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('kpi_sample_partition'));
        FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'kpi_sample'::regclass AND c.relname ~ '^kpi_sample_p[0-9]{8}$'
                      AND to_date(substr(c.relname, 13), 'YYYYMMDD') < before LOOP
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END LOOP;
        RETURN dropped;
    END $$""",
]


def upgrade() -> None:
    for table in ('performance_indicator_spec', 'performance_indicator_group_spec', 'measurement_collection_job',
                  'threshold_rule', 'threshold', 'threshold_job', 'problem_ack_task', 'problem_unack_task',
                  'problem_group_task', 'problem_ungroup_task'):
        extra = []
        if table == 'performance_indicator_spec':
            extra = [sa.Column('name', sa.String(length=200), nullable=False)]
        elif table == 'measurement_collection_job':
            extra = [sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True)]
        op.create_table(
            table,
            *extra,
            sa.Column('id', sa.String(length=64), nullable=False),
            sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
            sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('last_update', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
            sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
            sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f(f'fk_{table}_tenant_id_tenant')),
            sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
        )
        op.create_index(f'ix_{table}_body', table, ['body'], unique=False, postgresql_using='gin',
                        postgresql_ops={'body': 'jsonb_path_ops'})
        op.create_index(f'ix_{table}_recent', table, ['tenant_id', sa.literal_column('created_at DESC'), 'id'],
                        unique=False)
        op.create_index(op.f(f'ix_{table}_tenant_id'), table, ['tenant_id'], unique=False)
    op.create_index('uq_performance_indicator_spec_name', 'performance_indicator_spec', ['tenant_id', 'name'],
                    unique=True)
    op.create_index('ix_measurement_collection_job_due', 'measurement_collection_job', ['tenant_id', 'next_run_at'],
                    unique=False, postgresql_where=sa.text('next_run_at IS NOT NULL'))
    op.create_table(
        'kpi_sample',
        sa.Column('object_id', sa.String(length=300), nullable=False),
        sa.Column('indicator', sa.String(length=200), nullable=False),
        sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('value', sa.Numeric(precision=30, scale=6), nullable=False),
        sa.Column('job_id', sa.String(length=64), nullable=True),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_kpi_sample_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('tenant_id', 'object_id', 'indicator', 'observed_at', name=op.f('pk_kpi_sample')),
        postgresql_partition_by='RANGE (observed_at)',
    )
    op.create_index(op.f('ix_kpi_sample_tenant_id'), 'kpi_sample', ['tenant_id'], unique=False)
    # measurements of a day without its partition (made ahead, so normally none) are kept, not refused
    op.execute("CREATE TABLE kpi_sample_default PARTITION OF kpi_sample DEFAULT")
    op.execute("ALTER TABLE kpi_sample_default ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE kpi_sample_default FORCE ROW LEVEL SECURITY")
    op.create_table(
        'kpi_rollup',
        sa.Column('object_id', sa.String(length=300), nullable=False),
        sa.Column('indicator', sa.String(length=200), nullable=False),
        sa.Column('granularity', sa.String(length=8), nullable=False),
        sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
        sa.Column('samples', sa.BigInteger(), nullable=False),
        sa.Column('total', sa.Numeric(precision=38, scale=6), nullable=False),
        sa.Column('minimum', sa.Numeric(precision=30, scale=6), nullable=False),
        sa.Column('maximum', sa.Numeric(precision=30, scale=6), nullable=False),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_kpi_rollup_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('tenant_id', 'object_id', 'indicator', 'granularity', 'bucket',
                                name=op.f('pk_kpi_rollup')),
    )
    op.create_index('ix_kpi_rollup_age', 'kpi_rollup', ['granularity', 'bucket'], unique=False)
    op.create_index(op.f('ix_kpi_rollup_tenant_id'), 'kpi_rollup', ['tenant_id'], unique=False)
    op.create_table(
        'kpi_counter',
        sa.Column('job_id', sa.String(length=64), nullable=False),
        sa.Column('object_id', sa.String(length=300), nullable=False),
        sa.Column('indicator', sa.String(length=200), nullable=False),
        sa.Column('reading', sa.Numeric(precision=30, scale=0), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_kpi_counter_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('tenant_id', 'job_id', 'object_id', 'indicator', name=op.f('pk_kpi_counter')),
    )
    op.create_index(op.f('ix_kpi_counter_tenant_id'), 'kpi_counter', ['tenant_id'], unique=False)
    op.create_table(
        'threshold_state',
        sa.Column('job_id', sa.String(length=64), nullable=False),
        sa.Column('rule_id', sa.String(length=64), nullable=False),
        sa.Column('object_id', sa.String(length=300), nullable=False),
        sa.Column('raised', sa.Boolean(), server_default='false', nullable=False),
        sa.Column('crossings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column('last_value', sa.Numeric(precision=30, scale=6), nullable=True),
        sa.Column('last_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_threshold_state_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('tenant_id', 'job_id', 'rule_id', 'object_id', name=op.f('pk_threshold_state')),
    )
    op.create_index(op.f('ix_threshold_state_tenant_id'), 'threshold_state', ['tenant_id'], unique=False)
    op.create_table(
        'sla',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('offering_id', sa.String(length=64), nullable=False),
        sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_sla_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sla')),
    )
    op.create_index(op.f('ix_sla_tenant_id'), 'sla', ['tenant_id'], unique=False)
    op.create_table(
        'sla_evaluation',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('sla_id', sa.String(length=64), nullable=False),
        sa.Column('product_id', sa.String(length=64), nullable=False),
        sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('violated', sa.Boolean(), nullable=False),
        sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('tenant_id', sa.String(length=63), server_default=TENANT_DEFAULT, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_sla_evaluation_tenant_id_tenant')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_evaluation')),
        sa.UniqueConstraint('tenant_id', 'sla_id', 'product_id', 'period_start', name='uq_sla_evaluation_period'),
    )
    op.create_index('ix_sla_evaluation_customer', 'sla_evaluation', ['tenant_id', 'customer_id', 'period_start'],
                    unique=False)
    op.create_index(op.f('ix_sla_evaluation_tenant_id'), 'sla_evaluation', ['tenant_id'], unique=False)
    for table in ('performance_indicator_spec', 'performance_indicator_group_spec', 'measurement_collection_job',
                  'kpi_sample', 'kpi_rollup', 'kpi_counter', 'threshold_rule', 'threshold', 'threshold_job',
                  'threshold_state', 'sla', 'sla_evaluation', 'problem_ack_task', 'problem_unack_task',
                  'problem_group_task', 'problem_ungroup_task'):
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)
    for stmt in PARTITION_FUNCTIONS:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("DROP FUNCTION assurance_kpi_drop_partitions(date)")
    op.execute("DROP FUNCTION assurance_kpi_partition(date)")
    for table in ('problem_ungroup_task', 'problem_group_task', 'problem_unack_task', 'problem_ack_task',
                  'sla_evaluation', 'sla', 'threshold_state', 'threshold_job', 'threshold', 'threshold_rule', 'kpi_counter', 'kpi_rollup', 'kpi_sample', 'measurement_collection_job',
                  'performance_indicator_group_spec', 'performance_indicator_spec'):
        op.drop_table(table)

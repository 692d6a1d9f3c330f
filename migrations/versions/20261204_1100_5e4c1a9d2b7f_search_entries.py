"""search entries: one searchable-attribute index for every TMF resource

Replaces ``catalog_search_entry`` (plain values of catalog offerings and prices) and ``personal_data_index``
(blind-index digests of personal data) with ``search_entry``, under the same tenant row-level security, and builds
it from the stored documents of every tenant (sealed values are decrypted with the tenants' data keys, so the
master keys must be configured as for the server: ``OPENBSS_MASTER_KEYS``).

Revision ID: 5e4c1a9d2b7f
Revises: 4a7b510450e8
Create Date: 2026-12-04 11:00:00.000000+00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from openbss.platform.db import tenant_rls_sql

revision: str = '5e4c1a9d2b7f'
down_revision: str | None = '4a7b510450e8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# TMF document tables: an index for the lists' default order (newest first), which filtered lists walk to find
# their first page among many matches (catalog_product_offering had one already)
RECENT = ('bill_format', 'bill_presentation_media', 'billing_account', 'billing_cycle_specification', 'catalog_catalog', 'catalog_category', 'catalog_export_job', 'catalog_import_job', 'catalog_product_offering_price', 'catalog_product_specification', 'catalog_resource_specification', 'catalog_service_specification', 'catalog_tariff', 'charging_adjust_balance', 'charging_balance_action', 'charging_reserve_balance', 'charging_transfer_balance', 'customer', 'financial_account', 'inventory_product', 'inventory_resource', 'inventory_service', 'ordering_cancel_product_order', 'ordering_product_order', 'ordering_shopping_cart', 'party_account', 'party_individual', 'party_organization', 'party_role', 'provisioning_service_order', 'settlement_account')


def upgrade() -> None:
    op.create_table('search_entry',
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('attribute', sa.String(length=80), nullable=False),
    sa.Column('value', sa.Text(collation='C'), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('is_unique', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_search_entry_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', 'resource_type', 'attribute', 'value', 'resource_id', name=op.f('pk_search_entry'))
    )
    op.create_index('ix_search_entry_resource', 'search_entry', ['tenant_id', 'resource_id'], unique=False)
    op.create_index('uq_search_entry_unique', 'search_entry', ['tenant_id', 'resource_type', 'attribute', 'value'], unique=True, postgresql_where=sa.text('is_unique'))
    for stmt in tenant_rls_sql('search_entry'):
        op.execute(stmt)
    for table in RECENT:
        op.create_index(f'ix_{table}_recent', table, ['tenant_id', sa.literal_column('created_at DESC'), 'id'], unique=False)

    # The entries of the documents already stored (every declared attribute of every resource, every tenant).
    from openbss.platform.tmf.search import indexes_of, rebuild_sync
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    # the resources of later migrations have no table yet (and no document): their entries are written as created
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    indexes = [ix for ix in indexes_of(tmf_apis(get_settings())) if ix.table.__tablename__ in existing]
    counts = rebuild_sync(op.get_bind(), indexes, log=log.debug)
    log.info("search entries built: %s", {k: v for k, v in counts.items() if v})

    op.drop_index('ix_catalog_search_entry_lookup', table_name='catalog_search_entry')
    op.drop_index(op.f('ix_catalog_search_entry_tenant_id'), table_name='catalog_search_entry')
    op.drop_table('catalog_search_entry')
    op.drop_index('uq_personal_data_index_unique', table_name='personal_data_index', postgresql_where=sa.text('is_unique'))
    op.drop_index('ix_personal_data_index_owner', table_name='personal_data_index')
    op.drop_table('personal_data_index')


def downgrade() -> None:
    # The old tables come back empty: searching personal data and catalog filters need the entries rebuilt by
    # upgrading again.
    op.create_table('personal_data_index',
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.Column('resource', sa.String(length=40), nullable=False),
    sa.Column('attribute', sa.String(length=40), nullable=False),
    sa.Column('digest', sa.LargeBinary(), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('is_unique', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_personal_data_index_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('tenant_id', 'resource', 'attribute', 'digest', 'resource_id', name=op.f('pk_personal_data_index'))
    )
    op.create_index('ix_personal_data_index_owner', 'personal_data_index', ['tenant_id', 'resource', 'resource_id'], unique=False)
    op.create_index('uq_personal_data_index_unique', 'personal_data_index', ['tenant_id', 'resource', 'attribute', 'digest'], unique=True, postgresql_where=sa.text('is_unique'))
    op.create_table('catalog_search_entry',
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('attribute', sa.String(length=60), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=63), server_default=sa.text("current_setting('openbss.tenant_id', true)"), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_catalog_search_entry_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('resource_type', 'resource_id', 'attribute', 'value', name=op.f('pk_catalog_search_entry'))
    )
    op.create_index('ix_catalog_search_entry_lookup', 'catalog_search_entry', ['tenant_id', 'resource_type', 'attribute', 'value', 'resource_id'], unique=False)
    op.create_index(op.f('ix_catalog_search_entry_tenant_id'), 'catalog_search_entry', ['tenant_id'], unique=False)
    for table in ('personal_data_index', 'catalog_search_entry'):
        for stmt in tenant_rls_sql(table):
            op.execute(stmt)
    for table in RECENT:
        op.drop_index(f'ix_{table}_recent', table_name=table)
    op.drop_index('uq_search_entry_unique', table_name='search_entry', postgresql_where=sa.text('is_unique'))
    op.drop_index('ix_search_entry_resource', table_name='search_entry')
    op.drop_table('search_entry')

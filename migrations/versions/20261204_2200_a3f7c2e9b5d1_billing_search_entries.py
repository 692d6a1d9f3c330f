"""billing search entries: fewer attributes of bills and lines; no foreign-key check per search entry

Bills and their lines now keep only the search entries of the filters a billing team lists them by (lines: date,
type, product; bills: dates, number, category, parties, state; the account and the bill of a line are served by
the tables' own columns), so their entries are rebuilt from the stored documents. The foreign key from
``search_entry.tenant_id`` to ``tenant`` is dropped: it cascaded nothing (no tenant is deleted, and a tenant
with rows in the business tables could not be deleted anyway, through their own foreign keys), while costing a
lookup of the tenant row for each entry inserted — about 60 per account billed. Row-level security binds every
entry to the transaction's tenant (its WITH CHECK), and an entry is only written with the document it indexes,
whose table keeps its foreign key to the tenant.

Revision ID: a3f7c2e9b5d1
Revises: e4b1c8d2f9a7
Create Date: 2026-12-04 22:00:00.000000+00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op

revision: str = 'a3f7c2e9b5d1'
down_revision: str | None = 'e4b1c8d2f9a7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

BILLING = ("CustomerBill", "AppliedCustomerBillingRate")


def _rebuild(declared: bool) -> None:
    """Rebuild the entries of bills and lines: as declared now, or (``declared=False``) as before this revision
    (every default attribute of the specification)."""
    from openbss.platform.tmf.search import Searchable, SearchIndex, rebuild_sync
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    indexes = [SearchIndex(r.type, r.table, r.searchable if declared else Searchable(), api.spec,
                           r.read_definition or r.type, r.codec, r.extra_attributes)
               for api in tmf_apis(get_settings()) for r in api.resources if r.type in BILLING]
    counts = rebuild_sync(op.get_bind(), indexes, log=log.debug)
    log.info("billing search entries rebuilt: %s", counts)


def upgrade() -> None:
    op.drop_constraint('fk_search_entry_tenant_id_tenant', 'search_entry', type_='foreignkey')
    _rebuild(declared=True)


def downgrade() -> None:
    _rebuild(declared=False)
    op.create_foreign_key('fk_search_entry_tenant_id_tenant', 'search_entry', 'tenant', ['tenant_id'], ['id'])

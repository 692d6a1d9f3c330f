"""charging: the lines activated by orders name their product

Activation opened a line's charging account before the product was recorded, and the account never learnt its
product: billing could not tell prepaid lines (their monthly fee, taken by charging from the balance, was billed on
the bill as well) and rated usage named no product. The orchestrator now links them (``product_recorded``); this
revision links the accounts opened before it, from the activation records (the OCS create step's ``accountId`` and
the item run's product), tenant by tenant (row-level security). Downgrade leaves the links: they are true.

Revision ID: d5a9e3c7b1f4
Revises: f2c8a4e6b9d3
Create Date: 2026-12-05 11:00:00+00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd5a9e3c7b1f4'
down_revision: str | None = 'f2c8a4e6b9d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

LINK = sa.text("""
UPDATE charging_account a SET product_id = r.product_id, version = a.version + 1
FROM provisioning_step s JOIN provisioning_item_run r ON r.id = s.item_run_id AND r.tenant_id = s.tenant_id
WHERE a.product_id IS NULL AND s.tenant_id = a.tenant_id AND s.adapter = 'ocs' AND s.operation LIKE 'create%'
  AND s.phase = 'forward' AND s.state = 'done' AND r.product_id IS NOT NULL
  AND s.result -> 'response' ->> 'accountId' = a.id
""")


def upgrade() -> None:
    bind = op.get_bind()
    linked = 0
    for (tenant,) in bind.execute(sa.text("SELECT id FROM tenant ORDER BY id")).all():
        bind.execute(sa.text("SELECT set_config('openbss.tenant_id', :t, true)"), {"t": tenant})
        linked += bind.execute(LINK).rowcount or 0
    bind.execute(sa.text("SELECT set_config('openbss.tenant_id', '', true)"))
    log.info("charging accounts linked to their products: %d", linked)


def downgrade() -> None:
    pass

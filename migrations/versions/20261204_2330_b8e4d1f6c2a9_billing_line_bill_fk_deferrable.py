"""billing: the foreign key from a line to its bill may be checked at the end of the transaction

A bill run issues a bill whose grace period is over in the transaction that writes it, with its number, written
once (not drafted, then rewritten issued). A line may not be added to an issued bill (``billing_line_guard``), so
the lines of such a bill are inserted just before it, in the same transaction: the key from
``billing_applied_rate.bill_id`` to ``billing_customer_bill`` becomes ``DEFERRABLE INITIALLY IMMEDIATE``. It is
still checked at once by default; only the run's writing of new bills defers it (``SET CONSTRAINTS``), and sets it
back to immediate (checking what was deferred) before going on.

Revision ID: b8e4d1f6c2a9
Revises: a3f7c2e9b5d1
Create Date: 2026-12-04 23:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'b8e4d1f6c2a9'
down_revision: str | None = 'a3f7c2e9b5d1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_billing_applied_rate_bill_id_billing_customer_bill"


def upgrade() -> None:
    op.execute(f"ALTER TABLE billing_applied_rate ALTER CONSTRAINT {FK} DEFERRABLE INITIALLY IMMEDIATE")


def downgrade() -> None:
    op.execute(f"ALTER TABLE billing_applied_rate ALTER CONSTRAINT {FK} NOT DEFERRABLE")

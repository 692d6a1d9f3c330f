"""Tables of the customer domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String, event, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base
from openbss.platform.tmf.resource import TmfDocument


class Customer(TmfDocument, Base):
    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
        Index("ix_customer_engaged_party", "tenant_id", "engaged_party_id"),
        Index("ix_customer_recent", "tenant_id", literal_column("created_at DESC"), "id"),
    )

    #: the engaged party's id, copied from the document on every write (search by a party's email/phone/id)
    engaged_party_id: Mapped[str | None] = mapped_column(String(64))


@event.listens_for(Customer, "before_insert")
@event.listens_for(Customer, "before_update")
def _copy_engaged_party(mapper: Any, connection: Any, target: Customer) -> None:
    ref = (target.body or {}).get("engagedParty") or {}
    target.engaged_party_id = ref.get("id")

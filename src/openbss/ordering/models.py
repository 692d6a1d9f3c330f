"""Tables of ordering."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, PrimaryKeyConstraint, String, func
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class ShoppingCart(TmfDocument, Base):
    __tablename__ = "ordering_shopping_cart"


class ProductOrder(TmfDocument, Base):
    __tablename__ = "ordering_product_order"


class CancelProductOrder(TmfDocument, Base):
    __tablename__ = "ordering_cancel_product_order"


class IdempotencyKey(TenantScoped, Base):
    """An ``Idempotency-Key`` a client sent with a POST that creates an order: a retry returns the same order."""

    __tablename__ = "ordering_idempotency_key"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "key"),)

    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CartCheckout(TenantScoped, Base):
    """A shopping cart's checkout: at most one per cart (the primary key), naming the product order it made."""

    __tablename__ = "ordering_cart_checkout"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "cart_id"),)

    cart_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

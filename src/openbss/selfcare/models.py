"""Tables of the self-care portal: linked identities, sign-in attempts, sessions, email changes, archived PDFs.

Secrets are never stored: session tokens, browser bindings and one-time codes are kept as SHA-256 digests (a code
as an HMAC under the tenant's index key, since six digits are cheap to enumerate). A pending new email address is
sealed with the tenant's data key like any other personal data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped


class SelfcareIdentity(TenantScoped, Base):
    """An external identity (provider + subject) linked to one customer."""

    __tablename__ = "selfcare_identity"
    __table_args__ = (UniqueConstraint("provider", "subject", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    party_id: Mapped[str] = mapped_column(String(64), index=True)
    segment: Mapped[str] = mapped_column(String(20))
    #: the corporate directory's id of the customer (corporate segment only)
    directory_id: Mapped[str | None] = mapped_column(String(64))
    linked_by: Mapped[str] = mapped_column(String(10))  # email | msisdn
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SelfcareLogin(TenantScoped, Base):
    """One sign-in attempt: the authorization request (state, nonce, PKCE verifier) and, when the identity is not
    linked yet, the MSISDN one-time-code challenge. Bound to the browser by a cookie whose digest is ``id``."""

    __tablename__ = "selfcare_login"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(50))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(12))  # authorize | link | done
    subject: Mapped[str | None] = mapped_column(String(255))
    masked_email: Mapped[str | None] = mapped_column(String(254))
    # the MSISDN challenge: the customer it would link, the code's digest, attempts used
    candidate_customer_id: Mapped[str | None] = mapped_column(String(64))
    candidate_party_id: Mapped[str | None] = mapped_column(String(64))
    candidate_segment: Mapped[str | None] = mapped_column(String(20))
    candidate_directory_id: Mapped[str | None] = mapped_column(String(64))
    code_digest: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    codes_sent: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SelfcareSession(TenantScoped, Base):
    """A signed-in portal session; ``id`` is the SHA-256 of the token the browser holds."""

    __tablename__ = "selfcare_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    identity_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    party_id: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(20))
    directory_id: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(50))
    csrf_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SelfcareEmailChange(TenantScoped, Base):
    """A new email address waiting for the code sent to it (one pending change per customer)."""

    __tablename__ = "selfcare_email_change"
    __table_args__ = (UniqueConstraint("customer_id", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    sealed_email: Mapped[str] = mapped_column(String(1000))
    code_digest: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UsageDocument(TenantScoped, Base):
    """An itemized usage PDF in the archive. ``final`` documents (closed months) are served instead of a new one;
    at most one per customer and month."""

    __tablename__ = "selfcare_usage_document"
    __table_args__ = (
        Index("uq_selfcare_usage_document_final", "customer_id", "month", "tenant_id", unique=True,
              postgresql_where="final"),
        Index("ix_selfcare_usage_document_customer", "customer_id", "month"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))
    final: Mapped[bool] = mapped_column(Boolean)
    object_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retain_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # deleted after its retention

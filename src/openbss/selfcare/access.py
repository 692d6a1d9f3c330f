"""Resetting a customer's self-care access, on an agent's request (the agent console).

The portal keeps no password: a customer signs in at their identity provider, and the portal links that external
identity to the customer (by a verified email, or by a one-time code sent to one of the customer's lines). What the
portal holds for a customer is therefore its **links** (``selfcare_identity``), its **sessions**
(``selfcare_session``), sign-ins in progress that would link to it (``selfcare_login``) and a pending email change
(``selfcare_email_change``). A reset, in the caller's transaction:

* ends every live session of the customer (``revoked_at``; a process serving a session from memory stops within
  ``selfcare_cache_seconds``);
* unlinks every identity linked to the customer, so the next sign-in proves again who it is (a verified email that
  matches exactly one customer, or a code sent to one of the customer's lines) — an identity somebody else linked
  by mistake loses its access;
* forgets sign-ins in progress that would link to the customer and a pending email change;
* sends the customer a sign-in link through platform messaging (email when the party has one, else an SMS to its
  mobile number), queued in the same transaction (the outbox: it leaves only if the reset commits);
* audits the reset (``SelfcareAccess``, action ``reset``) with the caller's identity.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update

from openbss.platform import audit, messaging
from openbss.platform.db import utcnow
from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import Context
from openbss.selfcare.models import SelfcareEmailChange, SelfcareIdentity, SelfcareLogin, SelfcareSession
from openbss.selfcare.signin import mask_email, mask_msisdn
from openbss.selfcare.wiring import SelfcareServices
from openbss.settings import Settings

PURPOSE = "selfcare-access-reset"


def _medium(media: list[dict[str, Any]], *kinds: str) -> str | None:
    for kind in kinds:
        for m in media:
            if m.get("mediumType") == kind:
                ch = m.get("characteristic") or {}
                value = ch.get("emailAddress") if kind == "email" else ch.get("phoneNumber")
                if value:
                    return str(value)
    return None


class SelfcareAccess:
    """``reset_access``: what an agent's "Reset self-care access" does (care's ``SelfcareAccess`` protocol)."""

    def __init__(self, services: SelfcareServices, settings: Settings) -> None:
        self.services = services
        self.settings = settings

    @property
    def sign_in_url(self) -> str:
        return f"{(self.settings.selfcare_public_url or self.settings.public_url).rstrip('/')}/selfcare/"

    async def reset_access(self, ctx: Context, customer_id: str, reason: str | None = None) -> dict[str, Any]:
        customer = await self.services.customers.find_customer(ctx, customer_id)
        if customer is None:
            raise NotFound(f"customer '{customer_id}' not found", code="CUSTOMER_NOT_FOUND")
        party_ref = customer.get("engagedParty") or {}
        party = await self.services.parties.find_party(ctx, str(party_ref.get("id") or ""),
                                                       party_ref.get("@referredType")) if party_ref.get("id") else None
        media = list((party or {}).get("contactMedium") or []) + list(customer.get("contactMedium") or [])
        email, phone = _medium(media, "email"), _medium(media, "mobile", "phone")
        now = utcnow()
        s = ctx.session
        revoked = await s.execute(update(SelfcareSession).where(
            SelfcareSession.customer_id == customer_id, SelfcareSession.revoked_at.is_(None),
            SelfcareSession.expires_at > now).values(revoked_at=now))
        unlinked = await s.execute(delete(SelfcareIdentity).where(SelfcareIdentity.customer_id == customer_id))
        logins = await s.execute(delete(SelfcareLogin).where(SelfcareLogin.candidate_customer_id == customer_id))
        await s.execute(delete(SelfcareEmailChange).where(SelfcareEmailChange.customer_id == customer_id))
        brand, url = self.settings.selfcare_brand_name, self.sign_in_url
        notified: dict[str, Any] | None = None
        if email:
            await messaging.send(s, messaging.EMAIL, email, (
                f"Hello,\n\nat your request our customer service reset your access to {brand} self-care: you were "
                f"signed out everywhere. Sign in again at {url} — the first time, we will check it is you (your "
                f"verified email address or a code sent to your mobile line).\n\nIf you did not ask for this, call "
                f"us."), subject=f"{brand}: your self-care access was reset", purpose=PURPOSE, settings=self.settings)
            notified = {"channel": "email", "to": mask_email(email)}
        elif phone:
            await messaging.send(s, messaging.SMS, phone, (
                f"{brand}: your self-care access was reset by our customer service. Sign in again at {url}"),
                purpose=PURPOSE, settings=self.settings)
            notified = {"channel": "sms", "to": mask_msisdn(phone)}
        out = {"customer": {"id": customer_id}, "resetAt": now.isoformat(), "resetBy": ctx.principal.subject,
               "sessionsRevoked": int(getattr(revoked, "rowcount", 0) or 0),
               "identitiesUnlinked": int(getattr(unlinked, "rowcount", 0) or 0),
               "signInsCancelled": int(getattr(logins, "rowcount", 0) or 0),
               "signInLink": url, "notified": notified}
        await audit.record(s, ctx.principal, resource_type="SelfcareAccess", resource_id=customer_id,
                           action="reset", changes={"access": {"old": None, "new": {
                               **{k: out[k] for k in ("sessionsRevoked", "identitiesUnlinked", "signInsCancelled",
                                                      "notified")}, "reason": reason}}})
        return out


__all__ = ["SelfcareAccess"]

"""Signing in: the authorization request, the callback, linking a new identity to a customer (by a verified email
that matches exactly one customer, otherwise by a one-time code sent by SMS to one of the customer's lines), and
portal sessions (create, resolve with a bounded cache, sign out).

Tokens handed to the browser are random; the database keeps their SHA-256. Every step is bound to the browser
that started it (the ``sc_login`` cookie) and expires.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from openbss.platform import messaging
from openbss.platform.db import utcnow
from openbss.platform.personal_data import normalize_phone
from openbss.platform.tmf.resource import Context
from openbss.selfcare import codes
from openbss.selfcare.directory import CustomerRef
from openbss.selfcare.errors import InvalidCode, InvalidInput, NoPendingLink, NotSignedIn, SignInFailed, TooManyRequests
from openbss.selfcare.models import SelfcareEmailChange, SelfcareIdentity, SelfcareLogin, SelfcareSession
from openbss.selfcare.portal import Portal
from openbss.selfcare.security import digest, hit

LOGIN_TTL = timedelta(minutes=15)
MAX_CODES_PER_LOGIN = 3
LAST_SEEN_GRANULARITY = timedelta(seconds=60)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(frozen=True)
class SessionInfo:
    id: str  # digest of the token
    identity_id: str
    customer_id: str
    party_id: str
    segment: str
    directory_id: str | None
    provider: str
    csrf_digest: str
    expires_at: datetime

    @property
    def ref(self) -> CustomerRef:
        return CustomerRef(self.customer_id, self.party_id, self.segment, self.directory_id)


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf: str
    info: SessionInfo


@dataclass(frozen=True)
class CallbackOutcome:
    session: NewSession | None  # signed in; None: the identity is not linked yet (ask for the MSISDN)


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def mask_msisdn(msisdn: str) -> str:
    return f"{msisdn[:3]}•••••{msisdn[-2:]}"


# --- the authorization request -------------------------------------------------------------------------------
async def start(portal: Portal, provider_id: str) -> tuple[str, str]:
    """Returns (the provider's authorization URL, the browser-binding token for the ``sc_login`` cookie)."""
    portal.providers.get(provider_id)
    browser = secrets.token_urlsafe(32)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(64)
    url = await portal.providers.authorization_url(provider_id, redirect_uri=portal.redirect_uri, state=state,
                                                   nonce=nonce, code_verifier=verifier)
    async with portal.db.transaction(portal.tenant) as session:
        session.add(SelfcareLogin(id=digest(browser), state=state, provider=provider_id, nonce=nonce,
                                  code_verifier=verifier, stage="authorize", expires_at=utcnow() + LOGIN_TTL))
    return url, browser


async def _login(session: Any, browser: str | None, stage: str) -> SelfcareLogin:
    if not browser:
        raise (NoPendingLink("no sign-in in progress in this browser") if stage == "link"
               else SignInFailed("no sign-in in progress in this browser (cookies disabled or expired)",
                                 code="NO_SIGN_IN"))
    row = (await session.execute(select(SelfcareLogin).where(SelfcareLogin.id == digest(browser))
                                 .with_for_update())).scalar_one_or_none()
    if row is None or row.stage != stage or row.expires_at <= utcnow():
        if stage == "link":
            raise NoPendingLink("no identity waiting to be linked in this browser; sign in again")
        raise SignInFailed("this sign-in attempt is unknown, used or expired; start again", code="NO_SIGN_IN")
    return row


async def callback(portal: Portal, browser: str | None, *, state: str, code: str) -> CallbackOutcome:
    async with portal.db.transaction(portal.tenant) as session:
        row = await _login(session, browser, "authorize")
        row.stage = "used"  # single use, whatever happens next (committed even when the state does not match)
        state_ok = hmac.compare_digest(row.state.encode(), state.encode())
        provider, nonce, verifier = row.provider, row.nonce, row.code_verifier
    if not state_ok:
        raise SignInFailed("the sign-in response does not belong to this browser's attempt", code="STATE_MISMATCH")
    identity = await portal.providers.exchange(provider, code=code, redirect_uri=portal.redirect_uri,
                                               code_verifier=verifier, nonce=nonce)
    trusted_email = identity.email if identity.email_verified and identity.email else None
    corporate_ids = await portal.directories.corporate_ids_by_email(trusted_email) if trusted_email else []
    async with portal.db.transaction(portal.tenant) as session:
        linked = (await session.execute(select(SelfcareIdentity).where(
            SelfcareIdentity.provider == provider, SelfcareIdentity.subject == identity.subject))).scalar_one_or_none()
        if linked is None and trusted_email:
            ctx = Context(principal=portal.system_principal(), session=session, base_url=portal.public_url)
            matches = await portal.directories.match_email(ctx, trusted_email, corporate_ids)
            if len({m.customer_id for m in matches}) == 1:
                linked = await _link(session, provider, identity.subject, matches[0], "email")
        if linked is not None:
            return CallbackOutcome(await _new_session(portal, session, linked))
        row = await _login_by_id(session, browser)
        row.stage, row.subject, row.masked_email = "link", identity.subject, mask_email(identity.email)
        row.expires_at = utcnow() + LOGIN_TTL
        return CallbackOutcome(None)


async def _login_by_id(session: Any, browser: str | None) -> SelfcareLogin:
    row = (await session.execute(select(SelfcareLogin).where(SelfcareLogin.id == digest(browser or ""))
                                 .with_for_update())).scalar_one_or_none()
    if row is None:  # removed by housekeeping while the provider was answering
        raise SignInFailed("this sign-in attempt expired; start again", code="NO_SIGN_IN")
    return row


async def _link(session: Any, provider: str, subject: str, ref: CustomerRef, how: str) -> SelfcareIdentity:
    await session.execute(insert(SelfcareIdentity).values(
        id=str(uuid.uuid4()), provider=provider, subject=subject, customer_id=ref.customer_id,
        party_id=ref.party_id, segment=ref.segment, directory_id=ref.directory_id, linked_by=how,
    ).on_conflict_do_nothing(index_elements=["provider", "subject", "tenant_id"]))
    row: SelfcareIdentity = (await session.execute(select(SelfcareIdentity).where(
        SelfcareIdentity.provider == provider, SelfcareIdentity.subject == subject))).scalar_one()
    return row


# --- linking by MSISDN ---------------------------------------------------------------------------------------
async def pending_link(portal: Portal, browser: str | None) -> dict[str, Any]:
    async with portal.db.transaction(portal.tenant) as session:
        row = await _login(session, browser, "link")
        label = portal.providers.configs[row.provider].label if row.provider in portal.providers.configs else None
        return {"provider": row.provider, "providerLabel": label or row.provider, "email": row.masked_email}


def normalize_msisdn(raw: str) -> str:
    msisdn = normalize_phone(raw or "")
    if not E164.match(msisdn):
        raise InvalidInput(f"'msisdn': '{raw}' is not a mobile number in international format (e.g. +33600000101)")
    return msisdn


async def send_code(portal: Portal, browser: str | None, raw_msisdn: str) -> dict[str, Any]:
    """Send a one-time code to the line if it is a customer's. The answer, and the work done, are the same either
    way: the portal does not reveal which numbers are customers'. Codes per number are rate-limited too (a sign-in
    cannot be used to flood somebody's phone)."""
    msisdn = normalize_msisdn(raw_msisdn)
    ttl = portal.settings.selfcare_otp_ttl_seconds
    async with portal.db.transaction(portal.tenant) as session:
        await _login(session, browser, "link")
    await hit(portal, "code-to", msisdn, portal.settings.selfcare_rate_limit_codes)
    directory_id, party_id = await portal.directories.line_owner(msisdn)  # network: no transaction open
    async with portal.db.transaction(portal.tenant) as session:
        ctx = Context(principal=portal.system_principal(), session=session, base_url=portal.public_url)
        ref = await portal.directories.match_line(ctx, directory_id, party_id)
    async with portal.db.transaction(portal.tenant) as session:
        row = await _login(session, browser, "link")
        if row.codes_sent >= MAX_CODES_PER_LOGIN:
            raise TooManyRequests("too many codes requested for this sign-in; sign in again", code="TOO_MANY_CODES")
        row.codes_sent += 1
        row.attempts = 0
        row.code_expires_at = utcnow() + timedelta(seconds=ttl)
        code = codes.new_code()
        row.code_digest = await codes.digest(session, portal.tenant, "selfcare-otp", row.id, code)
        row.candidate_customer_id = ref.customer_id if ref else None
        row.candidate_party_id = ref.party_id if ref else None
        row.candidate_segment = ref.segment if ref else None
        row.candidate_directory_id = ref.directory_id if ref else None
        if ref is not None:
            text = (f"{portal.settings.selfcare_brand_name}: your sign-in code is {code}. It expires in "
                    f"{ttl // 60} minutes. Never share it.")
            await messaging.send(session, messaging.SMS, msisdn, text, purpose="selfcare-link")
    return {"message": f"If {mask_msisdn(msisdn)} is one of our customers' lines, a code was sent to it by SMS.",
            "expiresInSeconds": ttl}


async def verify_code(portal: Portal, browser: str | None, code: str) -> NewSession:
    code = codes.check_format(code)
    max_attempts = portal.settings.selfcare_otp_attempts
    failure: Exception | None = None
    async with portal.db.transaction(portal.tenant) as session:
        row = await _login(session, browser, "link")
        if row.attempts >= max_attempts:
            raise TooManyRequests("too many wrong codes; request a new code", code="CODE_LOCKED")
        live = row.code_expires_at is not None and row.code_expires_at > utcnow()
        given = await codes.digest(session, portal.tenant, "selfcare-otp", row.id, code)
        if not (codes.matches(row.code_digest, given) and live and row.candidate_customer_id is not None):
            row.attempts += 1  # committed: the failure counts even though the request fails
            left = max_attempts - row.attempts
            # one answer for a wrong, an expired and a never-sent code
            failure = InvalidCode(f"the code is wrong or has expired; {left} attempt{'s' if left != 1 else ''} "
                                  "left", details={"attemptsLeft": left})
        else:
            ref = CustomerRef(row.candidate_customer_id, row.candidate_party_id or "", row.candidate_segment or "",
                              row.candidate_directory_id)
            assert row.subject is not None
            identity = await _link(session, row.provider, row.subject, ref, "msisdn")
            row.stage = "done"
            return await _new_session(portal, session, identity)
    assert failure is not None
    raise failure


# --- sessions ------------------------------------------------------------------------------------------------
async def _new_session(portal: Portal, session: Any, identity: SelfcareIdentity) -> NewSession:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = utcnow()
    expires = now + timedelta(hours=portal.settings.selfcare_session_hours)
    row = SelfcareSession(id=digest(token), identity_id=identity.id, customer_id=identity.customer_id,
                          party_id=identity.party_id, segment=identity.segment, directory_id=identity.directory_id,
                          provider=identity.provider, csrf_digest=digest(csrf), expires_at=expires, last_seen_at=now)
    session.add(row)
    await session.execute(update(SelfcareIdentity).where(SelfcareIdentity.id == identity.id)
                          .values(last_sign_in_at=now))
    return NewSession(token, csrf, _info(row))


def _info(row: SelfcareSession) -> SessionInfo:
    return SessionInfo(row.id, row.identity_id, row.customer_id, row.party_id, row.segment, row.directory_id,
                       row.provider, row.csrf_digest, row.expires_at)


async def resolve(portal: Portal, token: str | None) -> SessionInfo:
    """The live session of a token; raises NotSignedIn. Served from memory for at most ``selfcare_cache_seconds``
    (so a sign-out in another process takes effect within that bound; in this process at once)."""
    if not token or len(token) > 200:
        raise NotSignedIn("sign in to use the portal")
    key = digest(token)
    info: SessionInfo = await portal.sessions.get_or_compute(key, lambda: _load_session(portal, key))
    if info.expires_at <= utcnow():
        portal.sessions.drop(key)
        raise NotSignedIn("your session has expired; sign in again", code="SESSION_EXPIRED")
    return info


async def _load_session(portal: Portal, key: str) -> SessionInfo:
    now = utcnow()
    idle = timedelta(minutes=portal.settings.selfcare_session_idle_minutes)
    async with portal.db.transaction(portal.tenant) as session:
        row = (await session.execute(select(SelfcareSession).where(SelfcareSession.id == key))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now:
            raise NotSignedIn("your session has expired; sign in again", code="SESSION_EXPIRED")
        if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
            await session.execute(update(SelfcareSession).where(SelfcareSession.id == key).values(last_seen_at=now))
        return _info(row)


async def sign_out(portal: Portal, info: SessionInfo) -> None:
    async with portal.db.transaction(portal.tenant) as session:
        await session.execute(update(SelfcareSession).where(SelfcareSession.id == info.id)
                              .values(revoked_at=utcnow()))
    portal.sessions.drop(info.id)


async def purge_expired(portal: Portal) -> int:
    """Delete finished sign-in attempts and sessions past their lifetime (a periodic job)."""
    from sqlalchemy import delete

    now = utcnow()
    async with portal.db.transaction(portal.tenant) as session:
        logins = await session.execute(delete(SelfcareLogin).where(SelfcareLogin.expires_at < now))
        sessions = await session.execute(delete(SelfcareSession).where(
            SelfcareSession.expires_at < now - timedelta(days=1)))
    return int(getattr(logins, "rowcount", 0) or 0) + int(getattr(sessions, "rowcount", 0) or 0)


# --- personal data (GDPR export and erasure of a party) --------------------------------------------------------
async def export_identities(ctx: Context, party_id: str) -> list[dict[str, Any]]:
    rows = (await ctx.session.execute(select(SelfcareIdentity).where(SelfcareIdentity.party_id == party_id)))\
        .scalars().all()
    return [{"provider": r.provider, "subject": r.subject, "customerId": r.customer_id, "linkedBy": r.linked_by,
             "linkedAt": r.created_at.isoformat(), "lastSignInAt": r.last_sign_in_at.isoformat()
             if r.last_sign_in_at else None} for r in rows]


async def erase_identities(ctx: Context, party_id: str) -> int:
    """Unlink every external identity of the party, end its portal sessions and forget sign-ins in progress that
    would link to it (their masked email and code challenge)."""
    from sqlalchemy import delete

    customers = select(SelfcareIdentity.customer_id).where(SelfcareIdentity.party_id == party_id)
    await ctx.session.execute(delete(SelfcareEmailChange).where(SelfcareEmailChange.customer_id.in_(customers)))
    await ctx.session.execute(delete(SelfcareLogin).where(SelfcareLogin.candidate_party_id == party_id))
    await ctx.session.execute(delete(SelfcareSession).where(SelfcareSession.party_id == party_id))
    result = await ctx.session.execute(delete(SelfcareIdentity).where(SelfcareIdentity.party_id == party_id))
    return int(getattr(result, "rowcount", 0) or 0)

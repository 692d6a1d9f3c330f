"""The four operations of the portal for a signed-in customer: RetrieveCustomerInformation,
UpdateCustomerInformation (with email re-verification), RetrieveCurrentBalance and RetrieveItemizedUsage.

Every operation works on the session's own customer only: no operation takes a customer id from the request.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import delete, select

from openbss.platform import messaging
from openbss.platform.crypto import aad_for, key_service, seal, sealed_key_id, unseal
from openbss.platform.db import utcnow
from openbss.platform.personal_data import normalize_email, normalize_phone
from openbss.platform.tmf.resource import Context
from openbss.selfcare import codes, usage
from openbss.selfcare.directory import CORPORATE, e164
from openbss.selfcare.errors import InvalidCode, InvalidInput, TooManyRequests
from openbss.selfcare.events import announce_profile_update
from openbss.selfcare.models import SelfcareEmailChange
from openbss.selfcare.portal import Cached, Portal
from openbss.selfcare.security import hit
from openbss.selfcare.signin import E164, SessionInfo
from openbss.selfcare.statement import StatementCustomer

LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = rf"^[^@\s]{{1,64}}@{LABEL}(?:\.{LABEL})+$"
LANGUAGES = ("en", "fr", "de", "es", "it")
UNITS = {"monetary": "money", "data": "data", "voice": "voice", "sms": "sms"}
UNLIMITED_NAME = "unlimited"


# --- UpdateCustomerInformation: what may change, validated -----------------------------------------------------
class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    street1: str = Field(min_length=1, max_length=200)
    street2: str = Field("", max_length=200)
    postCode: str = Field(min_length=2, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$")
    city: str = Field(min_length=1, max_length=100)
    stateOrProvince: str = Field("", max_length=100)
    country: str = Field(pattern=r"^[A-Za-z]{2}$")

    @field_validator("street1", "street2", "city", "stateOrProvince")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool | None = None
    sms: bool | None = None
    post: bool | None = None
    language: str | None = Field(None, pattern="^(" + "|".join(LANGUAGES) + ")$")


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str | None = Field(None, max_length=254, pattern=EMAIL)
    phone: str | None = Field(None, max_length=32)
    address: AddressIn | None = None
    preferences: PreferencesIn | None = None

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        number = normalize_phone(value)
        if not E164.match(number):
            raise ValueError(f"'{value}' is not an E.164 number (e.g. +33612345678)")
        return number


def parse_update(body: Any) -> tuple[CustomerUpdate, set[str]]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    if not body:
        raise InvalidInput("nothing to change: give email, phone, address or preferences")
    try:
        update = CustomerUpdate.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = "is not an attribute you can change" if err["type"] == "extra_forbidden" else err["msg"]
        raise InvalidInput(f"'{where}': {message}") from exc
    if "email" in body and update.email is None:
        raise InvalidInput("'email': an email address is required (it cannot be removed)")
    return update, set(body)


# --- operations ------------------------------------------------------------------------------------------------
def _ctx(portal: Portal, info: SessionInfo, session: Any) -> Context:
    return Context(principal=portal.customer_principal(info.identity_id, info.party_id), session=session,
                   base_url=portal.public_url)


async def customer_information(portal: Portal, info: SessionInfo) -> Cached:
    """The profile, served from memory for at most ``selfcare_cache_seconds``."""

    async def load() -> Cached:
        # the other systems first, outside the transaction: the corporate directory, or the charging system's lines
        corporate = info.segment == CORPORATE
        profile = await portal.directories.corporate_profile(info.ref) if corporate else None
        buckets = [] if corporate else await portal.charging.buckets(info.party_id)
        async with portal.db.transaction(portal.tenant) as session:
            if profile is None:
                profile = await portal.directories.openbss_profile(_ctx(portal, info, session), info.ref, buckets)
            pending = (await session.execute(select(SelfcareEmailChange).where(
                SelfcareEmailChange.customer_id == info.customer_id))).scalar_one_or_none()
            if pending is not None and pending.expires_at > utcnow():
                profile["pendingEmail"] = await _unseal_email(portal, session, pending)
        return Cached.of(profile)

    found: Cached = await portal.profiles.get_or_compute(info.customer_id, load)
    return found


async def update_customer_information(portal: Portal, info: SessionInfo, body: Any) -> Cached:
    update, given = parse_update(body)
    changes: dict[str, Any] = {}
    if "phone" in given:
        changes["phone"] = update.phone
    if "address" in given:
        changes["address"] = update.address.model_dump() if update.address else None
    if update.preferences is not None:
        changes["preferences"] = update.preferences.model_dump(exclude_none=True)
    email = normalize_email(update.email) if update.email is not None else None
    if email is not None:  # checked before anything is written (the limiter may be a Redis server)
        await hit(portal, "code-to", email, portal.settings.selfcare_rate_limit_codes)
        await hit(portal, "code-for", info.customer_id, portal.settings.selfcare_rate_limit_codes)
    async with portal.db.transaction(portal.tenant) as session:
        ctx = _ctx(portal, info, session)
        if changes:
            await portal.directories.update(ctx, info.ref, changes)
        if email is not None:
            await _start_email_change(portal, session, info, email)
        if changes or email is not None:
            await announce_profile_update(session, info.customer_id, info.party_id,
                                          [*changes, *(["email"] if email is not None else [])])
    portal.profiles.drop(info.customer_id)
    return await customer_information(portal, info)


async def _unseal_email(portal: Portal, session: Any, row: SelfcareEmailChange) -> str:
    key = await key_service().data_key(session, portal.tenant, sealed_key_id(row.sealed_email))
    return str(unseal(key, row.sealed_email, aad_for(portal.tenant, "SelfcareEmailChange", row.customer_id)))


async def _start_email_change(portal: Portal, session: Any, info: SessionInfo, email: str) -> None:
    code = codes.new_code()
    key_id, key = await key_service().active(session, portal.tenant, "data")
    sealed = seal(key_id, key, email, aad_for(portal.tenant, "SelfcareEmailChange", info.customer_id))
    await session.execute(delete(SelfcareEmailChange).where(SelfcareEmailChange.customer_id == info.customer_id))
    ttl = portal.settings.selfcare_otp_ttl_seconds
    session.add(SelfcareEmailChange(id=str(uuid.uuid4()), customer_id=info.customer_id, sealed_email=sealed,
                                    code_digest=await codes.digest(session, portal.tenant, "selfcare-email",
                                                                   info.customer_id, code),
                                    expires_at=utcnow() + timedelta(seconds=ttl)))
    brand = portal.settings.selfcare_brand_name
    await messaging.send(session, messaging.EMAIL, email,
                         f"Hello,\n\nyour code to confirm this address for {brand} is {code}. It expires in "
                         f"{ttl // 60} minutes.\n\nIf you did not ask for this, ignore this message.",
                         subject=f"{brand}: confirm your email address", purpose="selfcare-email")


async def confirm_email(portal: Portal, info: SessionInfo, code: str) -> Cached:
    code = codes.check_format(code, "the confirmation code")
    failure: Exception | None = None
    async with portal.db.transaction(portal.tenant) as session:
        row = (await session.execute(select(SelfcareEmailChange).where(
            SelfcareEmailChange.customer_id == info.customer_id).with_for_update())).scalar_one_or_none()
        if row is None or row.expires_at <= utcnow():
            raise InvalidCode("no email change is waiting for confirmation (or it expired); change it again")
        if row.attempts >= portal.settings.selfcare_otp_attempts:
            raise TooManyRequests("too many wrong codes; change the email again to get a new code",
                                  code="CODE_LOCKED")
        given = await codes.digest(session, portal.tenant, "selfcare-email", info.customer_id, code)
        if not codes.matches(row.code_digest, given):
            row.attempts += 1
            left = portal.settings.selfcare_otp_attempts - row.attempts
            failure = InvalidCode(f"wrong code; {left} attempt{'s' if left != 1 else ''} left")
        else:
            email = await _unseal_email(portal, session, row)
            await portal.directories.update(_ctx(portal, info, session), info.ref,
                                            {"email": email, "emailVerified": True})
            await session.delete(row)
    if failure is not None:
        raise failure
    portal.profiles.drop(info.customer_id)
    return await customer_information(portal, info)


# --- RetrieveCurrentBalance ----------------------------------------------------------------------------------
def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


async def current_balance(portal: Portal, info: SessionInfo) -> Cached:
    """Money and allowances of every line, served from memory for at most ``selfcare_cache_seconds``."""
    found: Cached = await portal.balances.get_or_compute(info.party_id, lambda: _load_balance(portal, info))
    return found


async def _load_balance(portal: Portal, info: SessionInfo) -> Cached:
    buckets = await portal.charging.buckets(info.party_id)
    lines: dict[str, dict[str, Any]] = {}
    for b in buckets:
        if b.get("status") == "expired":
            continue
        msisdn = str(((b.get("logicalResource") or [{}])[0]).get("id") or "")
        line = lines.setdefault(msisdn, {"msisdn": e164(msisdn), "paymentType": None, "status": "active",
                                         "money": None, "allowances": []})
        unit = UNITS.get(str(b.get("usageType")), "other")
        remaining = b.get("remainingValue") or {}
        name = str(b.get("name") or "")
        if unit == "money" and name.startswith("Main balance"):
            line["paymentType"] = "postpaid" if "postpaid" in name else "prepaid"
            currency = str(remaining.get("units") or "EUR")
            line["money"] = {"remaining": usage.money_text(_amount(remaining.get("amount")), currency),
                             "currency": currency,
                             "reserved": usage.money_text(_amount((b.get("reservedValue") or {}).get("amount")),
                                                          currency),
                             "creditLimit": None}
            continue
        initial = b.get("initialValue") or {}
        left, size = _amount(remaining.get("amount")), _amount(initial.get("amount"))
        unlimited = b.get("remainingValueName") == UNLIMITED_NAME
        used = max(size - left, Decimal(0))
        line["allowances"].append({
            "id": b.get("id"), "name": name, "unit": unit,
            "remaining": int(left) if unit != "money" else f"{left:.2f}",
            "initial": int(size) if unit != "money" else f"{size:.2f}",
            "used": int(used) if unit != "money" else f"{used:.2f}",
            "remainingDisplay": "Unlimited" if unlimited else b.get("remainingValueName"),
            "initialDisplay": "Unlimited" if unlimited else b.get("initialValueName"),
            "percentUsed": 0.0 if unlimited or size <= 0 else round(float(used / size * 100), 1),
            "validTo": (b.get("validFor") or {}).get("endDateTime"),
        })
    for line in lines.values():
        line["allowances"].sort(key=lambda a: (a["unit"], a["validTo"] or "9999", a["name"]))
    return Cached.of({"asOf": utcnow().isoformat().replace("+00:00", "Z"),
                      "freshnessSeconds": portal.settings.selfcare_cache_seconds,
                      "lines": [lines[k] for k in sorted(lines)]})


# --- RetrieveItemizedUsage -----------------------------------------------------------------------------------
async def usage_page(portal: Portal, info: SessionInfo, month: str) -> Cached:
    """A month's usage as JSON for the page, served from memory for at most ``selfcare_cache_seconds``."""
    usage.check_month(portal, month)

    async def load() -> Cached:
        return Cached.of(await usage.usage_json(portal, info.party_id, month))

    found: Cached = await portal.usage.get_or_compute((info.party_id, month), load)
    return found


async def itemized_usage_pdf(portal: Portal, info: SessionInfo, month: str) -> usage.UsageDocumentFile:
    """The month's PDF: a closed month's archived statement when there is one (no other system is asked), else a
    new one (rate-limited per customer: rendering costs CPU and every document is archived)."""
    usage.check_month(portal, month)
    key = (info.customer_id, month)
    if usage.is_closed(portal, month):
        cached: usage.UsageDocumentFile | None = portal.documents.get(key)
        if cached is not None:
            return cached
        archived = await usage.archived_final(portal, info.customer_id, month)
        if archived is not None:
            portal.documents.put(key, archived)
            return archived
    await hit(portal, "documents", info.customer_id, portal.settings.selfcare_rate_limit_documents)
    profile = (await customer_information(portal, info)).value
    name = profile["name"]
    address = profile.get("address") or {}
    address_lines = tuple(x for x in (address.get("street1"), address.get("street2"),
                                      " ".join(v for v in (address.get("postCode"), address.get("city")) if v),
                                      address.get("country")) if x)
    display = name.get("organization") or name.get("fullName") or ""
    if name.get("organization") and name.get("fullName"):
        display = f"{name['organization']} (attn. {name['fullName']})"
    customer = StatementCustomer(name=display, customer_id=info.customer_id, address_lines=address_lines,
                                 segment=info.segment,
                                 lines=tuple(p["msisdn"] for p in profile.get("products") or []))
    doc = await usage.usage_pdf(portal, customer, info.party_id, month)
    if doc.final:
        portal.documents.put(key, doc)
    return doc

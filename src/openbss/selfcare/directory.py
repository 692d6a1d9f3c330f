"""Where a customer's data lives, by segment: residential and SME customers in OpenBSS (party and customer
management, through their services), corporate customers in the operator's corporate directory (MariaDB, through
``corporate.CorporateDirectory``). Both answer in the portal's one profile shape (docs/selfcare.md).

A corporate customer also exists in OpenBSS (segment ``corporate``, characteristic ``corporateDirectoryId``): that
record owns the lines and balances; its contact data is the directory's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from openbss.customer.service import segment_of
from openbss.platform import audit
from openbss.platform.errors import NotFound
from openbss.platform.observability import request_id_var
from openbss.platform.personal_data import normalize_email
from openbss.platform.tmf.resource import Context
from openbss.selfcare.charging_client import ChargingClient
from openbss.selfcare.errors import UpstreamUnavailable
from openbss.selfcare.wiring import SelfcareServices

log = logging.getLogger(__name__)

CORPORATE = "corporate"
DIRECTORY_ID = "corporateDirectoryId"
PREFERENCES = "communicationPreferences"
EMAIL_VERIFIED = "emailVerified"
DEFAULT_PREFERENCES = {"email": True, "sms": False, "post": False, "language": "en"}
ADDRESS_FIELDS = ("street1", "street2", "postCode", "city", "stateOrProvince", "country")


@dataclass(frozen=True)
class CustomerRef:
    customer_id: str
    party_id: str
    segment: str
    directory_id: str | None = None


def _segment(customer: dict[str, Any]) -> str:
    return segment_of(customer) or "residential"


def _characteristic(customer: dict[str, Any], name: str) -> Any:
    for ch in customer.get("characteristic") or []:
        if ch.get("name") == name:
            return ch.get("value")
    return None


def ref_of(customer: dict[str, Any]) -> CustomerRef:
    segment = _segment(customer)
    directory_id = _characteristic(customer, DIRECTORY_ID) if segment == CORPORATE else None
    return CustomerRef(customer["id"], customer["engagedParty"]["id"], segment,
                       str(directory_id) if directory_id else None)


class _Guarded:
    """The corporate directory with its failures turned into the portal's own errors: a customer is told the
    service is unavailable, never where the directory is (that goes to the log, without personal data)."""

    def __init__(self, directory: Any) -> None:
        self.directory = directory

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.directory, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            from openbss.selfcare.corporate import DirectoryUnavailable

            try:
                return await method(*args, **kwargs)
            except DirectoryUnavailable as exc:
                log.warning("corporate directory unavailable during %s: %s", name, exc)
                raise UpstreamUnavailable("the corporate customer directory is temporarily unavailable; "
                                          "try again in a few minutes") from exc

        return call


class Directories:
    """``openbss``: the OpenBSS services residential and SME customers' data is read from and written to."""

    def __init__(self, tenant: str, charging: ChargingClient, corporate: Any | None, openbss: SelfcareServices, *,
                 require_verified_email: bool = True) -> None:
        self.tenant = tenant
        self.openbss = openbss
        self.charging = charging
        self.corporate = _Guarded(corporate) if corporate is not None else None
        self.require_verified_email = require_verified_email

    def _corporate(self) -> Any:
        if self.corporate is None:
            raise UpstreamUnavailable("the corporate customer directory is not configured")
        return self.corporate

    # --- finding the customer of an identity ---------------------------------------------------------------
    # Each lookup comes in two steps: what the other systems say (network, no database transaction open), then
    # the OpenBSS customer it designates (inside the caller's transaction).
    async def corporate_ids_by_email(self, email: str) -> list[str]:
        """Directory ids of the corporate customers whose verified email is ``email``."""
        if self.corporate is None:
            return []
        try:  # a directory that is down must not lock residential customers out
            records = await self.corporate.find_by_email(self.tenant, normalize_email(email))
        except UpstreamUnavailable:
            return []
        return [str(r["customerId"]) for r in records if r.get("emailVerified")]

    async def match_email(self, ctx: Context, email: str, corporate_ids: list[str]) -> list[CustomerRef]:
        """Customers whose email is ``email``: OpenBSS's (blind index; the operator's record must be verified too
        unless configured otherwise) and the corporate ones found by ``corporate_ids_by_email``."""
        found, _ = await self.openbss.customers.search(ctx, {"email": email}, limit=5)
        refs = [ref_of(c) for c in found if _segment(c) != CORPORATE
                and (not self.require_verified_email or _characteristic(c, EMAIL_VERIFIED) is True)]
        for directory_id in corporate_ids:
            ref = await self._corporate_ref(ctx, directory_id)
            if ref is not None:
                refs.append(ref)
        return refs

    async def line_owner(self, msisdn: str) -> tuple[str | None, str | None]:
        """Who holds the line ``msisdn``: (corporate directory id, None), (None, charging party id) or neither."""
        if self.corporate is not None:
            try:
                record = await self.corporate.find_by_msisdn(self.tenant, msisdn)
            except UpstreamUnavailable:
                record = None
            if record is not None:
                return str(record["customerId"]), None
        return None, await self.charging.party_of_line(msisdn)

    async def match_line(self, ctx: Context, directory_id: str | None, party_id: str | None) -> CustomerRef | None:
        """The customer of a line, from what ``line_owner`` found."""
        if directory_id is not None:
            return await self._corporate_ref(ctx, directory_id)
        if party_id is None:
            return None
        customers = await self.openbss.customers.customers_of_party(ctx, party_id)
        return ref_of(customers[0]) if customers else None

    async def _corporate_ref(self, ctx: Context, directory_id: str) -> CustomerRef | None:
        found = await self.openbss.customers.find_by_characteristic(ctx, DIRECTORY_ID, directory_id)
        return ref_of(found[0]) if found else None

    # --- RetrieveCustomerInformation ---------------------------------------------------------------------------
    async def corporate_profile(self, ref: CustomerRef) -> dict[str, Any]:
        """A corporate customer's profile, from the directory (network; no OpenBSS transaction needed)."""
        record = await self._corporate().get(self.tenant, ref.directory_id)
        if record is None:
            raise NotFound("your customer record is not in the corporate directory", code="CUSTOMER_NOT_FOUND")
        out = {k: v for k, v in record.items() if k != "version"}
        out["customerId"] = ref.customer_id
        out["pendingEmail"] = None
        return out

    async def openbss_profile(self, ctx: Context, ref: CustomerRef, buckets: list[dict[str, Any]]) -> dict[str, Any]:
        """A residential or SME customer's profile from OpenBSS; ``buckets`` are the charging system's buckets of
        the customer's lines (fetched by the caller before its transaction)."""
        customers, parties, accounts = self.openbss.customers, self.openbss.parties, self.openbss.accounts
        customer = await customers.get_customer(ctx, ref.customer_id)
        party = await parties.find_party(ctx, ref.party_id) or {}
        media = party.get("contactMedium") or []
        email = _medium(media, "email").get("emailAddress")
        address = _medium(media, "postalAddress")
        states = [a.get("state") for a in await accounts.customer_accounts(ctx, customer)]
        organization = party.get("tradingName") or party.get("name") if party.get("@type") == "Organization" \
            else None
        return {
            "customerId": customer["id"], "segment": ref.segment,
            "name": {"givenName": party.get("givenName") or "", "familyName": party.get("familyName") or "",
                     "fullName": party.get("fullName") or customer.get("name") or "", "organization": organization},
            "email": email, "emailVerified": bool(email) and _characteristic(customer, EMAIL_VERIFIED) is True,
            "pendingEmail": None,
            "phone": _medium(media, _phone_kind(media)).get("phoneNumber"),
            "address": {f: str(address.get(f) or "") for f in ADDRESS_FIELDS} if address else None,
            "preferences": {**DEFAULT_PREFERENCES, **(_characteristic(customer, PREFERENCES) or {})},
            "accountState": states[0] if states else customer.get("status"),
            "products": await self._products(ctx, buckets),
        }

    async def _products(self, ctx: Context, buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The customer's lines as the charging system knows them, named from the product inventory."""
        inventory = self.openbss.inventory
        lines: dict[str, str | None] = {}
        for bucket in buckets:
            for resource in bucket.get("logicalResource") or []:
                product = (bucket.get("product") or [{}])[0].get("id")
                lines.setdefault(e164(str(resource.get("id"))), product)
        out = []
        for msisdn, product_id in sorted(lines.items()):
            name, status = "Mobile line", "active"
            if product_id:
                try:
                    product = await inventory.get_product(ctx, product_id)
                    name, status = product.get("name") or name, product.get("status") or status
                except NotFound:
                    pass
            out.append({"id": product_id or msisdn, "name": name, "status": status, "msisdn": msisdn})
        return out

    # --- UpdateCustomerInformation -----------------------------------------------------------------------------
    async def update(self, ctx: Context, ref: CustomerRef, changes: dict[str, Any]) -> None:
        """Apply validated changes (email only once verified) where the customer's data lives; audited."""
        if ref.segment == CORPORATE:
            # the audit row is written (and flushed) first and the directory last: a failure of the directory
            # rolls the audit back; only a failed PostgreSQL commit after the directory's could lose it
            await audit.record(ctx.session, ctx.principal, resource_type="CorporateCustomer",
                               resource_id=ref.customer_id, action="selfcare-update",
                               changes={k: {"old": audit.MASK, "new": audit.MASK} for k in sorted(changes)})
            await ctx.session.flush()
            await self._corporate().update(self.tenant, ref.directory_id, changes, actor=ctx.principal.subject,
                                           request_id=request_id_var.get())
            return
        customers, parties = self.openbss.customers, self.openbss.parties
        contact: dict[str, Any] = {k: changes[k] for k in ("email", "phone", "address") if k in changes}
        if contact:
            party = await parties.find_party(ctx, ref.party_id)
            if party is None:
                raise NotFound("your party record does not exist", code="CUSTOMER_NOT_FOUND")
            media = _replace_media(party.get("contactMedium") or [], contact)
            await parties.set_contact_media(ctx, ref.party_id, media, party.get("@type", "Individual"))
        if "emailVerified" in changes:
            await customers.set_characteristic(ctx, ref.customer_id, EMAIL_VERIFIED, bool(changes["emailVerified"]),
                                               "boolean")
        if "preferences" in changes:
            customer = await customers.get_customer(ctx, ref.customer_id)
            merged = {**DEFAULT_PREFERENCES, **(_characteristic(customer, PREFERENCES) or {}),
                      **changes["preferences"]}
            await customers.set_characteristic(ctx, ref.customer_id, PREFERENCES, merged)


def e164(number: str) -> str:
    """The charging system keys lines by their E.164 digits; the portal shows them with the ``+``."""
    return number if not number or number.startswith("+") else f"+{number}"


def _phone_kind(media: list[dict[str, Any]]) -> str:
    """The contact medium that holds the customer's phone number, read and written alike: a "mobile" one when the
    party has it, else "phone"."""
    return "mobile" if any(m.get("mediumType") == "mobile" for m in media) else "phone"


def _medium(media: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    for m in media:
        if m.get("mediumType") == kind:
            return dict(m.get("characteristic") or {})
    return {}


def _replace_media(media: list[dict[str, Any]], contact: dict[str, Any]) -> list[dict[str, Any]]:
    out = [dict(m) for m in media]

    def put(kind: str, characteristic: dict[str, Any] | None, **extra: Any) -> None:
        nonlocal out
        index = next((i for i, m in enumerate(out) if m.get("mediumType") == kind), None)
        if characteristic is None:
            out = [m for i, m in enumerate(out) if i != index]
            return
        if index is None:
            out.append({"mediumType": kind, **extra, "characteristic": characteristic})
        else:
            kept = {k: v for k, v in (out[index].get("characteristic") or {}).items() if k == "contactType"}
            out[index] = {**out[index], "characteristic": {**kept, **characteristic}}

    if "email" in contact:
        put("email", {"emailAddress": contact["email"]} if contact["email"] else None, preferred=True)
    if "phone" in contact:
        kind = _phone_kind(out)
        put(kind, {"phoneNumber": contact["phone"], **({"contactType": "mobile"} if kind == "phone" else {})}
            if contact["phone"] else None)
    if "address" in contact:
        address = contact["address"]
        put("postalAddress", {k: v for k, v in address.items() if v} if address else None)
    return out

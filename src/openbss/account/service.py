"""Business rules of accounts and the account domain's named actions (activate, suspend, resume, close)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from openbss.account.errors import AccountInUse, InvalidAccount, OpenBalance
from openbss.account.schemas import ACCOUNT_EXTENSION, FREQUENCIES, PRESENTATION_MEDIA
from openbss.customer.service import CustomerService
from openbss.party.service import PARTY_TYPES, PartyService, check_contact_media, list_all
from openbss.platform.db import utcnow
from openbss.platform.personal_data import ERASED
from openbss.platform.tmf.extensions import base_type
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.vat import InvalidVatNumber, check_vat_number, is_vat_exemption
from openbss.settings import Settings

CURRENCY = re.compile(r"^[A-Z]{3}$")
ACCOUNT_TRANSITIONS: dict[str, set[str]] = {
    "defined": {"active", "closed"},
    "active": {"suspended", "closed"},
    "suspended": {"active", "closed"},
    "closed": set(),
}


class OpenBalances(Protocol):
    """What a billing account owes (invoiced and not paid, plus charges not yet invoiced where the billing domain
    counts them). Closing an account and erasing its holder are refused while it owes money. The billing domain
    provides it; until it exists, the composition root declares that nothing is owed."""

    async def open_balance(self, ctx: Context, billing_account_id: str) -> Decimal: ...


def _money(value: Any, field: str, currency: str | None) -> Decimal:
    if not isinstance(value, dict) or value.get("value") is None:
        raise InvalidAccount(f"'{field}.value' is mandatory")
    try:
        amount = Decimal(str(value["value"]))
    except InvalidOperation as exc:
        raise InvalidAccount(f"'{field}.value': not a number") from exc
    if amount < 0:
        raise InvalidAccount(f"'{field}.value': must not be negative")
    if currency and value.get("unit") not in (None, currency):
        raise InvalidAccount(f"'{field}.unit': '{value.get('unit')}' differs from the account currency '{currency}'")
    return amount


class PartyAccountRules(ResourceHooks):
    """Accounts owned by parties (party, settlement, billing): related parties must exist in the tenant; the
    owning party is added when the account names only a customer; states follow defined → active → suspended →
    closed; closing is refused while the account owes money; lastModified is the server's."""

    transitions: ClassVar[dict[str, set[str]] | None] = ACCOUNT_TRANSITIONS

    def __init__(self, parties: PartyService, customers: CustomerService, balances: OpenBalances) -> None:
        self.parties = parties
        self.customers = customers
        self.balances = balances

    async def check_related_parties(self, ctx: Context, doc: dict[str, Any]) -> None:
        refs = list(doc.get("relatedParty") or [])
        ids = {r.get("id") for r in refs}
        for i, ref in enumerate(list(refs)):
            kind = ref.get("@referredType")
            if kind == "Customer":
                customer = await self.customers.find_customer(ctx, str(ref.get("id")))
                if customer is None:
                    raise InvalidAccount(f"'relatedParty[{i}].id': customer '{ref.get('id')}' does not exist",
                                         code="INVALID_REFERENCE")
                party = customer.get("engagedParty") or {}
                if party.get("id") and party["id"] not in ids:
                    refs.append({"id": party["id"], "@referredType": party.get("@referredType", "Individual"),
                                 "name": party.get("name") or customer.get("name"), "role": "owner"})
                    ids.add(party["id"])
            elif kind in PARTY_TYPES:
                await self.parties.require_party(ctx, ref, f"relatedParty[{i}]")
            else:
                raise InvalidAccount(f"'relatedParty[{i}].@referredType': '{kind}' is not one of Customer, "
                                     f"{', '.join(PARTY_TYPES)}", code="INVALID_REFERENCE")
        if refs:
            doc["relatedParty"] = refs
        for i, contact in enumerate(doc.get("contact") or []):
            check_contact_media(contact, prefix=f"contact[{i}].")

    def check_state(self, doc: dict[str, Any], creating: bool) -> None:
        state = doc.get("state")
        if state not in ACCOUNT_TRANSITIONS:
            raise InvalidAccount(f"'state': '{state}' is not one of {', '.join(ACCOUNT_TRANSITIONS)}",
                                 code="INVALID_STATE")
        if creating and state not in ("defined", "active"):
            raise InvalidAccount(f"'state': an account is created 'defined' or 'active', not '{state}'",
                                 code="INVALID_STATE")

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        self.check_state(doc, creating=True)
        await self.check_related_parties(ctx, doc)
        self.check_money(doc)
        doc["lastModified"] = format_datetime(utcnow())

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        self.check_state(merged, creating=False)
        if "relatedParty" in changes or "contact" in changes:
            await self.check_related_parties(ctx, merged)
        self.check_money(merged)
        if merged.get("state") == "closed" and current.get("state") != "closed":
            balance = await self.balances.open_balance(ctx, current["id"])
            if balance > 0:
                raise OpenBalance(f"account '{current['id']}' cannot be closed: it owes {balance} "
                                  f"{merged.get('currency', '')}".rstrip())
        merged["lastModified"] = format_datetime(utcnow())

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        if current.get("state") != "defined":
            raise AccountInUse(f"account '{current['id']}' is '{current.get('state')}': only a never-activated "
                               "account can be deleted; close it instead")

    def check_money(self, doc: dict[str, Any]) -> None:
        if doc.get("creditLimit") is not None:
            _money(doc["creditLimit"], "creditLimit", None)


class BillingAccountRules(PartyAccountRules):
    """Billing accounts: currency, bill cycle, payment terms, credit limit, presentation media."""

    def __init__(self, parties: PartyService, customers: CustomerService, balances: OpenBalances,
                 settings: Settings) -> None:
        super().__init__(parties, customers, balances)
        self.settings = settings

    def apply_defaults(self, doc: dict[str, Any]) -> None:
        s = self.settings
        limit_unit = (doc.get("creditLimit") or {}).get("unit")
        doc.setdefault("currency", limit_unit or s.default_currency)
        doc.setdefault("paymentTermsDays", s.default_payment_terms_days)
        cycle = doc.setdefault("billCycle", {"billingDay": 1})
        cycle.setdefault("frequency", "monthly")
        cycle.setdefault("timeZone", "UTC")

    def check_billing(self, doc: dict[str, Any], creating: bool = False) -> None:
        currency = doc.get("currency")
        if not isinstance(currency, str) or not CURRENCY.match(currency):
            raise InvalidAccount(f"'currency': '{currency}' is not an ISO 4217 code (e.g. EUR)")
        if doc.get("creditLimit") is not None:
            _money(doc["creditLimit"], "creditLimit", currency)
            doc["creditLimit"].setdefault("unit", currency)
        cycle = doc.get("billCycle") or {}
        day = cycle.get("billingDay")
        if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 31:
            raise InvalidAccount(f"'billCycle.billingDay': {day} is not a day between 1 and 31 (shorter months are "
                                 "billed on their last day)")
        if cycle.get("frequency") not in FREQUENCIES:
            raise InvalidAccount(f"'billCycle.frequency': one of {', '.join(FREQUENCIES)}")
        try:
            ZoneInfo(str(cycle.get("timeZone")))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidAccount(f"'billCycle.timeZone': '{cycle.get('timeZone')}' is not a time zone") from exc
        terms = doc.get("paymentTermsDays")
        if not isinstance(terms, int) or not 0 <= terms <= 365:
            raise InvalidAccount(f"'paymentTermsDays': {terms} is not between 0 and 365")
        media = (doc.get("billStructure") or {}).get("presentationMedia") or []
        for i, m in enumerate(media):
            if m.get("name") not in PRESENTATION_MEDIA:
                raise InvalidAccount(f"'billStructure.presentationMedia[{i}].name': '{m.get('name')}' is not one of "
                                     f"{', '.join(PRESENTATION_MEDIA)}")
        if creating and any(m.get("name") == "email" for m in media) and not _has_email(doc):
            raise InvalidAccount("'contact': e-mail bill presentation needs a contact with an emailAddress")
        for i, ex in enumerate(doc.get("taxExemption") or []):
            if not str(ex.get("issuingJurisdiction", "")).strip():
                raise InvalidAccount(f"'taxExemption[{i}].issuingJurisdiction' is mandatory")
            if is_vat_exemption(ex):
                try:
                    check_vat_number(ex.get("certificateNumber"), f"taxExemption[{i}].certificateNumber")
                except InvalidVatNumber as exc:
                    raise InvalidAccount(str(exc)) from exc
        if doc.get("vatNumber") is not None:
            try:
                check_vat_number(doc["vatNumber"])
            except InvalidVatNumber as exc:
                raise InvalidAccount(str(exc)) from exc

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        self.apply_defaults(doc)
        self.check_billing(doc, creating=True)
        ACCOUNT_EXTENSION.mark(doc, ctx.base_url)
        await super().before_create(ctx, doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        changed_currency = "currency" in changes and changes["currency"] != current.get("currency")
        if changed_currency and current.get("state") != "defined":
            raise InvalidAccount("'currency': the currency of an activated account cannot change",
                                 code="IMMUTABLE_ATTRIBUTE")
        self.apply_defaults(merged)
        self.check_billing(merged)
        ACCOUNT_EXTENSION.mark(merged, ctx.base_url)
        await super().before_update(ctx, current, changes, merged)

    def check_money(self, doc: dict[str, Any]) -> None:
        return None  # done in check_billing, against the account currency


def _has_email(doc: dict[str, Any]) -> bool:
    return any((m.get("characteristic") or {}).get("emailAddress")
               for c in doc.get("contact") or [] for m in c.get("contactMedium") or [])


class BillingCycleRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        self._check(doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        self._check(merged)

    def _check(self, doc: dict[str, Any]) -> None:
        if doc.get("frequency") is not None and doc["frequency"] not in FREQUENCIES:
            raise InvalidAccount(f"'frequency': '{doc['frequency']}' is not one of {', '.join(FREQUENCIES)}")
        shift = doc.get("billingDateShift")
        if shift is not None and not 0 <= shift <= 27:
            raise InvalidAccount(f"'billingDateShift': {shift} is not between 0 and 27")


class PresentationMediaRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        if doc.get("name") not in PRESENTATION_MEDIA:
            raise InvalidAccount(f"'name': '{doc.get('name')}' is not one of {', '.join(PRESENTATION_MEDIA)}")


class OwnedAccountService(ResourceService):
    """After an account naming a customer is created, the customer lists it (TMF629 ``account``)."""

    def __init__(self, api: TmfApi, resource: TmfResource, customers: CustomerService) -> None:
        super().__init__(api, resource)
        self.customers = customers

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        out = await super().create(ctx, doc)
        ref = {"id": out["id"], "href": out["href"], "name": out["name"], "@referredType": self.resource.type}
        for rp in out.get("relatedParty") or []:
            if rp.get("@referredType") == "Customer":
                await self.customers.link_account(ctx, rp["id"], ref)
        return out


class AccountService:
    """Named actions other domains call (collections suspends and resumes, billing reads)."""

    def __init__(self, services: dict[str, ResourceService], customers: CustomerService,
                 balances: OpenBalances) -> None:
        self._billing = services["billingAccount"]
        self._owned = [services[p] for p in ("billingAccount", "partyAccount", "settlementAccount",
                                             "financialAccount")]
        self.customers = customers
        self.balances = balances

    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return await self._billing.get(ctx, account_id)

    async def get_billing_accounts(self, ctx: Context, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Several billing accounts at once (one query), by id; the ones that do not exist are absent."""
        store = self._billing.store
        stmt = select(store.table).where(store.table.id.in_(set(account_ids)))
        owner = store.owner_condition(ctx.principal)
        if owner is not None:
            stmt = stmt.where(owner)
        rows = list((await ctx.session.execute(stmt)).scalars().all())
        return {d["id"]: d for d in await store.render_all(ctx, rows)}

    async def billing_account_ids(self, ctx: Context, *, after: str = "", limit: int = 1000) -> list[str]:
        """The tenant's billing account ids in id order, a page after ``after`` (what a bill run walks)."""
        table = self._billing.store.table
        rows = await ctx.session.execute(select(table.id).where(table.id > after).order_by(table.id).limit(limit))
        return [r[0] for r in rows]

    async def create_billing_account(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._billing.create(ctx, self._billing.validate_create(payload))

    async def activate(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return await self._billing.set_state(ctx, account_id, "active")

    async def suspend(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return await self._billing.set_state(ctx, account_id, "suspended")

    async def resume(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return await self._billing.set_state(ctx, account_id, "active")

    async def close(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return await self._billing.set_state(ctx, account_id, "closed")

    async def accounts_of(self, ctx: Context, ids: list[str]) -> list[dict[str, Any]]:
        """Every account (billing, party, settlement, financial) related to one of these parties/customers."""
        ids = [i for i in dict.fromkeys(ids) if i]
        if not ids:
            return []
        out: list[dict[str, Any]] = []
        for service in self._owned:
            out += await list_all(ctx, service, {"relatedParty.id": ids})
        return out

    async def customer_accounts(self, ctx: Context, customer: dict[str, Any]) -> list[dict[str, Any]]:
        """The customer 360 section: accounts of the customer or its party, each with its open balance."""
        accounts = await self.accounts_of(ctx, [customer["id"], (customer.get("engagedParty") or {}).get("id", "")])
        for a in accounts:
            if base_type(a) == "BillingAccount":
                a["openBalance"] = {"unit": a.get("currency"),
                                    "value": await self.balances.open_balance(ctx, a["id"])}
        return accounts

    async def _party_and_customers(self, ctx: Context, party_id: str) -> list[str]:
        customers = await self.customers.customers_of_party(ctx, party_id)
        return [party_id, *(c["id"] for c in customers)]

    async def export_accounts(self, ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await self.accounts_of(ctx, await self._party_and_customers(ctx, party_id))

    async def erasure_guard(self, ctx: Context, party_id: str) -> str | None:
        for account in await self.accounts_of(ctx, await self._party_and_customers(ctx, party_id)):
            if base_type(account) == "BillingAccount":
                balance = await self.balances.open_balance(ctx, account["id"])
                if balance > 0:
                    return f"billing account '{account['id']}' has an open balance of {balance}"
        return None

    async def erase_accounts(self, ctx: Context, party_id: str) -> int:
        """Anonymize names and contacts; financial data (balances, limits, tax exemptions) is kept."""
        accounts = await self.accounts_of(ctx, await self._party_and_customers(ctx, party_id))
        services = {s.resource.type: s for s in self._owned}
        for a in accounts:
            changes: dict[str, Any] = {"contact": None,
                                       "relatedParty": [{**rp, "name": ERASED} for rp in a.get("relatedParty") or []]}
            await services[base_type(a)].patch(ctx, a["id"], changes)
        return len(accounts)

"""The OCS adapter backed by the charging domain (its ``ChargingService``): an activated mobile line gets its
charging account (main balance and this period's allowance buckets from the offering), suspend/resume/terminate
change the account's status, a plan change re-rates with the new offering, a ``barring`` bars some of its services
(a partial bar: ``[]`` lifts it).

The default (``OPENBSS_PROVISIONING_OCS=charging``; ``simulator`` lets the network simulator play the OCS, for its own
tests): the composition root plugs it in as the ``ocs`` element. The charging account lives in the same
database, so each call is one transaction of the tenant (outside the orchestrator's). Idempotent per subscriber: an
account that already exists for the same subscriber and billing account answers a repeated create without opening
a second one.
"""

from __future__ import annotations

from typing import Any, Protocol

from openbss.platform.db import Database
from openbss.platform.errors import DomainError
from openbss.platform.tmf.resource import Context, system_context
from openbss.provisioning.adapters import AdapterError, verb_of
from openbss.settings import Settings


class ChargingAccounts(Protocol):
    """What activation does in online charging: open the line's account, read it, change its status or plan."""

    async def get_account(self, ctx: Context, account_id: str | None = None, *, subscriber: str | None = None,
                          product_id: str | None = None) -> dict[str, Any]: ...

    async def open_account(self, ctx: Context, *, subscriber: str, payment_type: str,
                           offering_id: str | None = None, billing_account_id: str | None = None,
                           product_prices: list[dict[str, Any]] | None = None) -> dict[str, Any]: ...

    async def set_status(self, ctx: Context, account_id: str, status: str) -> None: ...

    async def change_offering(self, ctx: Context, account_id: str, offering_id: str) -> None: ...

    async def set_barring(self, ctx: Context, account_id: str, barred: list[str]) -> None: ...

    async def link_product(self, ctx: Context, account_id: str, product_id: str) -> None: ...

    async def retire_subscriber(self, ctx: Context, account_id: str) -> None: ...

    async def move_to_billing_account(self, ctx: Context, account_id: str, billing_account_id: str) -> None: ...


class ChargingOcs:
    element = "ocs"

    def __init__(self, db: Database, settings: Settings, charging: ChargingAccounts) -> None:
        self.db = db
        self.base_url = settings.public_url.rstrip("/")
        self.charging = charging

    async def product_recorded(self, ctx: Context, answer: dict[str, Any], product: dict[str, Any]) -> None:
        """The product an activation recorded (after this element's steps, in the activation's transaction): the
        line's charging account (the ``accountId`` of the create answer) names it."""
        if answer.get("accountId"):
            await self.charging.link_product(ctx, str(answer["accountId"]), str(product["id"]))

    async def call(self, tenant_id: str, operation: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
        charging = self.charging
        verb = verb_of(operation)
        msisdn = str(params.get("msisdn") or "")
        if not msisdn:
            raise AdapterError(f"ocs: {operation} without msisdn", retryable=False)
        try:
            async with self.db.transaction(tenant_id) as session:
                ctx = system_context(tenant_id, session, self.base_url, subject="provisioning")
                if verb == "create":
                    try:
                        existing = await charging.get_account(ctx, subscriber=msisdn)
                    except DomainError:
                        existing = None
                    if existing is not None and existing.get("status") == "closed":
                        # a number back from its quarantine: the terminated line's account lets it go
                        await charging.retire_subscriber(ctx, existing["id"])
                        existing = None
                    if existing is not None:
                        if existing.get("billing_account_id") != params.get("billingAccount"):
                            raise AdapterError(f"ocs: subscriber '{msisdn}' already has a charging account",
                                               retryable=False)
                        return {"resultCode": 2001, "accountId": existing["id"], "replayed": True}
                    account = await charging.open_account(
                        ctx, subscriber=msisdn, payment_type=str(params.get("paymentType") or "postpaid"),
                        offering_id=params.get("offering"), billing_account_id=params.get("billingAccount"),
                        product_prices=params.get("productPrice"))
                    return {"resultCode": 2001, "accountId": account["id"]}
                account = await charging.get_account(ctx, subscriber=msisdn)
                previous = {"status": "suspended" if account.get("status") == "suspended" else "active",
                            "profile": {"offering": account.get("offering_id"),
                                        "barring": list(account.get("barred") or []),
                                        "billingAccount": account.get("billing_account_id")}}
                if verb in ("suspend", "resume", "delete"):
                    status = {"suspend": "suspended", "resume": "active", "delete": "closed"}[verb]
                    await charging.set_status(ctx, account["id"], status)
                else:
                    if params.get("offering"):
                        await charging.change_offering(ctx, account["id"], str(params["offering"]))
                    if params.get("barring") is not None:  # a partial bar placed or lifted ([])
                        await charging.set_barring(ctx, account["id"], list(params["barring"]))
                    if params.get("billingAccount") and params["billingAccount"] != account.get("billing_account_id"):
                        await charging.move_to_billing_account(ctx, account["id"], str(params["billingAccount"]))
                return {"resultCode": 2001, "accountId": account["id"], "previous": previous}
        except AdapterError:
            raise
        except DomainError as exc:
            raise AdapterError(f"ocs: {operation} refused by charging: {exc.message}", retryable=False) from exc

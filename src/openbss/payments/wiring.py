"""How payments is put together: TMF670 (payment methods), TMF676 (payments, refunds), the gateway (the built-in
sandbox), the payment service and its reaction to billing, built once per process by the composition root."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import ClassVar

from sqlalchemy import text

from openbss.payments import events
from openbss.payments.gateway import Gateway, SandboxGateway
from openbss.payments.models import Payment, PaymentMethod, Refund
from openbss.payments.service import (
    BillingAccounts,
    Bills,
    Customers,
    MethodResourceService,
    MethodRules,
    PaymentService,
    PrepaidBalances,
)
from openbss.payments.stripe_gateway import StripeGateway
from openbss.platform.db import Database, utcnow
from openbss.platform.events.event import Consumer
from openbss.platform.tmf.resource import ResourceHooks, ResourceService, TmfApi, TmfResource
from openbss.settings import Settings

log = logging.getLogger(__name__)


async def active_tenants(db: Database) -> list[str]:
    async with db.transaction(None) as session:  # the tenant registry has no row-level security
        rows = (await session.execute(text("SELECT id FROM tenant WHERE status = 'active'"))).scalars().all()
    return [str(r) for r in rows]

METHOD_SPEC = "TMF670-PaymentMethod-v4.0.0.swagger.json"
PAYMENT_SPEC = "TMF676-Payment-v4.0.0.swagger.json"
READ = frozenset({"list", "get"})


class PaymentStates(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = {
        "initiated": {"pending", "succeeded", "failed", "unknown"}, "pending": {"succeeded", "failed", "unknown"},
        "unknown": {"pending", "succeeded", "failed"}, "succeeded": {"chargeback"}, "failed": set(),
        "chargeback": {"succeeded"}}  # a dispute opened; a dispute won


@dataclass(frozen=True)
class PaymentServices:
    service: PaymentService
    #: the built-in sandbox (what the demo and the tests drive; the service's gateway unless Stripe is configured)
    gateway: SandboxGateway
    method_api: TmfApi
    payment_api: TmfApi
    methods: dict[str, ResourceService]
    resources: dict[str, ResourceService]
    settings: Settings
    #: the day the daily postings were last made by this process's loop
    _daily: dict[str, date] = field(default_factory=dict)

    @property
    def apis(self) -> list[TmfApi]:
        return [self.method_api, self.payment_api]

    def consumers(self) -> list[Consumer]:
        return [events.bill_issued_consumer(self.service, self.settings.public_url)]

    async def loop(self, stop: asyncio.Event) -> None:
        """The worker's loop: settle the sandbox's charges (delivering its webhooks) and run the janitor."""
        after = timedelta(seconds=self.settings.payments_janitor_after_seconds)
        while not stop.is_set():
            try:
                if self.service.gateway is self.gateway:
                    await self.gateway.settle()
                await self.service.janitor(None, after)  # every tenant's stale payments, one query
                await self.service.refund_janitor(None, after)  # and refunds
                yesterday = utcnow().date() - timedelta(days=1)
                if self._daily.get("day") != yesterday:  # the daily postings, once a day per process
                    tenants = await active_tenants(self.service.db)
                    await self.service.recognize_prepaid_usage(tenants, yesterday)
                    await self.service.recognize_revenue_of(tenants, yesterday + timedelta(days=1))
                    self._daily["day"] = yesterday
            except Exception:
                log.exception("payments loop failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.payments_loop_seconds)
            except TimeoutError:
                pass


def build(settings: Settings, db: Database, *, accounts: BillingAccounts, bills: Bills,
          prepaid: PrepaidBalances | None = None, customers: Customers | None = None) -> PaymentServices:
    method_api = TmfApi(name=events.METHOD_API, title="TMF670 Payment Method", spec_file=METHOD_SPEC,
                        permission="payments", resources=[
                            TmfResource(path="paymentMethod", type="PaymentMethod", table=PaymentMethod,
                                        state_field="status", owner_paths=("relatedParty.id",),
                                        operations=frozenset({"list", "get", "patch"}),
                                        customer_operations=frozenset())])
    payment_api = TmfApi(name=events.API, title="TMF676 Payment Management", spec_file=PAYMENT_SPEC,
                         permission="payments", resources=[
                             TmfResource(path="payment", type="Payment", table=Payment, hooks=PaymentStates(),
                                         update_definition="Payment_Create",
                                         state_field="status", operations=READ, customer_operations=frozenset()),
                             TmfResource(path="refund", type="Refund", table=Refund, state_field="status",
                                         update_definition="Refund_Create",
                                         operations=READ, customer_operations=frozenset())])
    rules = MethodRules(method_api.spec, accounts)
    method_resource = method_api.resource("paymentMethod")
    method_resource.hooks = rules
    method_service = MethodResourceService(method_api, method_resource)
    method_service.rules = rules
    payments = ResourceService(payment_api, payment_api.resource("payment"))
    refunds = ResourceService(payment_api, payment_api.resource("refund"))
    sandbox = SandboxGateway(secret=settings.payments_sandbox_secret)
    gateway: Gateway = sandbox
    if settings.payments_gateway == "stripe":
        if not settings.payments_stripe_api_key or not settings.payments_stripe_webhook_secret:
            raise ValueError("OPENBSS_PAYMENTS_GATEWAY=stripe needs OPENBSS_PAYMENTS_STRIPE_API_KEY and "
                             "OPENBSS_PAYMENTS_STRIPE_WEBHOOK_SECRET")
        gateway = StripeGateway(settings.payments_stripe_api_key, settings.payments_stripe_webhook_secret,
                                settings.payments_stripe_api_base)
    service = PaymentService(db, settings.public_url, gateway, bills, accounts, payments, refunds, prepaid,
                             other_revenue=settings.payments_ledger_other_revenue_account, customers=customers)

    async def deliver(body: bytes, signature: str) -> None:
        await service.handle_webhook(body, signature)

    sandbox.deliver = deliver
    return PaymentServices(service=service, gateway=sandbox, method_api=method_api, payment_api=payment_api,
                           methods={"paymentMethod": method_service},
                           resources={"payment": payments, "refund": refunds}, settings=settings)

"""The composition root: every domain's services, built once per process from the settings and the platform's
runtime, typed. The HTTP app (``app.create_app``), the worker, the CLI, the demo, the benchmarks and the tests all
take them from here; nothing is registered at import time.

A domain plugs in here in three places (docs/architecture.md, "Adding a domain"):

1. ``build_services``: its ``wiring.build(...)`` gets the settings and the services it needs from the domains
   built before it (typed: another domain's service class, or a ``Protocol`` the domain declares), and its bundle
   becomes an attribute of ``Services``; what it adds to the personal-data registry is added there too;
2. ``Services.consumers``: its reactions to other domains' events (``Consumer``\\ s with idempotent handlers);
3. ``app.create_app``: its ``api.routers(services.<domain>)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from openbss.account import wiring as account_wiring
from openbss.account.models import BillingAccount
from openbss.account.service import OpenBalances
from openbss.account.wiring import AccountServices
from openbss.assurance import wiring as assurance_wiring
from openbss.assurance.wiring import AssuranceServices
from openbss.billing import wiring as billing_wiring
from openbss.billing.models import TestClock
from openbss.billing.runs import billing_loop
from openbss.billing.wiring import BillingServices
from openbss.care import wiring as care_wiring
from openbss.care.wiring import CareServices
from openbss.catalog import wiring as catalog_wiring
from openbss.catalog.wiring import CatalogServices
from openbss.charging import service as charging_service
from openbss.charging import wiring as charging_wiring
from openbss.charging.errors import ChargingAccountNotFound
from openbss.charging.jobs import charging_blueprint
from openbss.charging.wiring import ChargingServices
from openbss.collections import wiring as collections_wiring
from openbss.collections.wiring import CollectionsServices
from openbss.customer import wiring as customer_wiring
from openbss.customer.models import Customer
from openbss.customer.wiring import CustomerServices
from openbss.inventory import wiring as inventory_wiring
from openbss.inventory.wiring import InventoryServices
from openbss.ordering import wiring as ordering_wiring
from openbss.ordering.wiring import OrderingServices
from openbss.party import wiring as party_wiring
from openbss.party.wiring import PartyServices
from openbss.payments import wiring as payments_wiring
from openbss.payments.overdue import OverdueQueries
from openbss.payments.service import AccountBalances
from openbss.payments.wiring import PaymentServices
from openbss.platform.audit import AuditRecord
from openbss.platform.crypto import EncryptedTable
from openbss.platform.db import Database, make_url
from openbss.platform.erasure import CopyEraser, recent_referring, referring
from openbss.platform.events.consumers import Consumer
from openbss.platform.messaging import forget_messages, messages_to, messaging_loop
from openbss.platform.personal_data import PersonalDataRegistry, encrypted_tables
from openbss.platform.runtime import Runtime
from openbss.platform.tmf.resource import Context, TmfApi
from openbss.platform.worker import register_platform_consumers
from openbss.provisioning import wiring as provisioning_wiring
from openbss.provisioning.adapters import AdapterFactory, NetworkAdapter
from openbss.provisioning.models import ItemRun
from openbss.provisioning.ocs import ChargingOcs
from openbss.provisioning.runner import orchestrate, provisioning_blueprint
from openbss.provisioning.wiring import ProvisioningServices
from openbss.rating import wiring as rating_wiring
from openbss.rating.wiring import RatingServices
from openbss.selfcare import signin
from openbss.selfcare.access import SelfcareAccess
from openbss.selfcare.housekeeping import housekeeping
from openbss.selfcare.usage import archived_statements
from openbss.selfcare.wiring import SelfcareServices
from openbss.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    party: PartyServices
    customer: CustomerServices
    account: AccountServices
    catalog: CatalogServices
    inventory: InventoryServices
    provisioning: ProvisioningServices
    ordering: OrderingServices
    charging: ChargingServices
    rating: RatingServices
    selfcare: SelfcareServices
    care: CareServices
    billing: BillingServices
    payments: PaymentServices
    assurance: AssuranceServices
    collections: CollectionsServices
    #: what each domain holds on a party: customer 360 sections, GDPR exporters, erasers and erasure guards
    personal_data: PersonalDataRegistry

    @property
    def apis(self) -> list[TmfApi]:
        """Every TMF API of the process, in documentation order."""
        return [*self.party.apis, *self.customer.apis, *self.account.apis, *self.catalog.apis,
                *self.charging.apis, *self.ordering.apis, *self.provisioning.apis, *self.inventory.apis,
                *self.care.apis, *self.billing.apis, *self.payments.apis, *self.assurance.apis,
                *self.collections.apis]

    def encrypted_tables(self) -> list[EncryptedTable]:
        """The tables holding personal data sealed at rest (what key rotation re-encrypts)."""
        return encrypted_tables(r for api in self.apis for r in api.resources)

    def consumers(self) -> list[Consumer]:
        """The domains' reactions to other domains' events."""
        return [*self.ordering.consumers(), *self.charging.consumers(), *self.care.consumers(),
                *self.billing.consumers(), *self.payments.consumers(), *self.collections.consumers()]


class BillingTestClocks:
    """Charging's question to billing (``charging.service.TestClocks``): the time of a sandbox tenant's test clock
    (``billing.clock``), None without one."""

    async def clock_time(self, session: Any, tenant_id: str) -> datetime | None:
        row = await session.get(TestClock, tenant_id)
        return row.now if row is not None else None


class AccountProfiles:
    """``(billing_account_id, segment, category)`` for collections' choice of a dunning policy: the segment of the
    account's customer (its ``segment`` characteristic) and the account's ``accountType`` as its category."""

    def profile_select(self) -> Select[Any]:
        party = func.jsonb_array_elements(BillingAccount.body["relatedParty"]).table_valued("value").lateral()
        customer_id = (select(party.c.value.op("->>")("id")).select_from(party)
                       .where(party.c.value.op("->>")("@referredType") == "Customer").limit(1).scalar_subquery())
        ch = func.jsonb_array_elements(Customer.body["characteristic"]).table_valued("value").lateral()
        segment = (select(ch.c.value.op("->>")("value")).select_from(Customer).join(ch, ch.c.value.is_not(None))
                   .where(Customer.id == customer_id, ch.c.value.op("->>")("name") == "segment")
                   .limit(1).scalar_subquery())
        return select(BillingAccount.id.label("billing_account_id"), segment.label("segment"),
                      BillingAccount.body["accountType"].astext.label("category"))


def build_services(settings: Settings, runtime: Runtime, *, open_balances: OpenBalances | None = None) -> Services:
    """Every domain's services for this process. ``open_balances`` replaces billing's open balances (tests)."""
    registry = PersonalDataRegistry()
    party = party_wiring.build(settings)
    balances = AccountBalances()  # billed (billing) less received (payments)
    customer = customer_wiring.build(settings, party.service, registry)
    account = account_wiring.build(settings, party.service, customer.service, open_balances or balances)
    inventory = inventory_wiring.build(settings)
    catalog = catalog_wiring.build(settings, sold=inventory.service)
    charging = charging_wiring.build(settings, catalog.service, account.service,
                                     usage_resources=[rating_wiring.usage_specification_resource()],
                                     clocks=BillingTestClocks())
    rating = rating_wiring.build(settings, charging.service, catalog.service, charging.usage["usageSpecification"])
    network: dict[str, AdapterFactory] = {}
    if settings.provisioning_ocs == "charging":
        def charging_ocs(db: Database, s: Settings) -> NetworkAdapter:
            return ChargingOcs(db, s, charging.service)

        network["ocs"] = charging_ocs
    provisioning = provisioning_wiring.build(settings, runtime.db, catalog.service, inventory.service, network)
    ordering = ordering_wiring.build(settings, catalog.service, customer.service, account.service,
                                     inventory.service, provisioning.service)
    billing = billing_wiring.build(settings, accounts=account.service, products=inventory.service,
                                   catalog=catalog.service, usage=charging.service, balances=balances)
    ordering.service.effective_dates = billing.service  # back-dated orders: billing's back-dating limit
    payments = payments_wiring.build(settings, runtime.db, accounts=account.service, bills=billing.service,
                                     prepaid=charging.service, customers=customer.service)
    selfcare = SelfcareServices(customer.service, party.service, account.service, inventory.service,
                                payments=payments.service)
    registry.add_customer_view("accounts", account.service.customer_accounts)
    registry.add_customer_view("products", inventory.service.customer_products)
    care = care_wiring.build(settings, customer.service, billing.service, charging.service, account.service,
                             selfcare_access=SelfcareAccess(selfcare, settings))
    registry.add_customer_view("tickets", care.service.customer_tickets)
    registry.add_customer_view("interactions", care.service.customer_interactions)
    registry.add_customer_view("bills", billing.service.customer_bills)

    async def balances_360(ctx: Context, c: dict[str, Any]) -> list[dict[str, Any]]:
        """The live charging balances of the customer's lines: the charging account of each live product's MSISDN
        (the product's realizing resource the orchestrator names "MSISDN <number>")."""
        out = []
        for product in await inventory.service.customer_products(ctx, c):
            for ref in product.get("realizingResource") or []:
                name = str(ref.get("name") or "")
                if not name.startswith("MSISDN "):
                    continue
                try:
                    a = await charging_service.get_account(ctx, subscriber=name.removeprefix("MSISDN "))
                except ChargingAccountNotFound:
                    continue  # a line whose OCS is not the charging domain
                out.append({"subscriber": a.get("subscriber"), "paymentType": a.get("payment_type"),
                            "status": a.get("status"), "currency": a.get("currency"), "balance": a.get("balance"),
                            "available": a.get("available"), "productId": product["id"],
                            "buckets": [{"id": b.get("id"), "unit": b.get("unit"), "remaining": b.get("remaining"),
                                         "reserved": b.get("reserved")} for b in a.get("buckets") or []]})
        return out

    async def usage_360(ctx: Context, c: dict[str, Any]) -> list[dict[str, Any]]:
        """The 20 most recent usage records of the customer's party."""
        return await recent_referring(ctx, charging.usage["usage"], [(c.get("engagedParty") or {}).get("id")], 20)

    async def orders_360(ctx: Context, c: dict[str, Any]) -> list[dict[str, Any]]:
        """The customer's product orders not yet completed (the 20 most recent)."""
        return await recent_referring(ctx, ordering.orders["productOrder"],
                                      [c.get("id"), (c.get("engagedParty") or {}).get("id")], 20,
                                      exclude_states=("completed", "cancelled", "failed", "rejected"))

    registry.add_customer_view("balances", balances_360)
    registry.add_customer_view("usage", usage_360)
    registry.add_customer_view("ordersInFlight", orders_360)
    assurance = assurance_wiring.build(settings, inventory.service, care.service.tickets, credits=billing.service)
    collections = collections_wiring.build(
        settings, runtime.db, overdue=OverdueQueries(), profiles=AccountProfiles(), accounts=account.service,
        products=inventory.service, orders=ordering.service, payments=payments.service, charges=billing.service,
        write_offs=payments.service, store=billing.documents)
    registry.add_customer_view("problems", assurance.service.problems.customer_problems)

    async def payments_360(ctx: Context, c: dict[str, Any]) -> dict[str, Any]:
        """The 20 most recent payments of the customer's billing accounts and their payment methods (masked)."""
        accounts = await account.service.customer_accounts(ctx, c)
        return await payments.service.customer_payments(ctx, [str(a["id"]) for a in accounts])

    async def dunning_360(ctx: Context, c: dict[str, Any]) -> list[dict[str, Any]]:
        """Each billing account's dunning state (collections' episode and step)."""
        return await collections.service.dunning_state(ctx, await account.service.customer_accounts(ctx, c))

    registry.add_customer_view("payments", payments_360)
    registry.add_customer_view("dunning", dunning_360)
    registry.add_exporter("party", party.service.export_party)
    registry.add_exporter("partyRoles", party.service.export_roles)
    registry.add_exporter("customers", customer.service.export_customers)
    registry.add_exporter("accounts", account.service.export_accounts)
    registry.add_exporter("selfcareIdentities", signin.export_identities)
    registry.add_erasure_guard("open balance", account.service.erasure_guard)
    registry.add_erasure_guard("active product", inventory.service.erasure_guard)
    registry.add_eraser("selfcareIdentities", signin.erase_identities, order=50)
    registry.add_eraser("accounts", account.service.erase_accounts, order=100)
    registry.add_eraser("customers", customer.service.erase_customers, order=500)
    registry.add_eraser("partyRoles", party.service.erase_roles, order=800)
    registry.add_eraser("party", party.service.erase_party, order=900)

    async def related_ids(ctx: Context, party_id: str) -> set[str]:
        """The ids whose ``name`` is the party's personal data in other records: its own, its customers' and its
        accounts' (a party role's name is the role's: "referrer")."""
        ids = {party_id}
        for records in (await customer.service.export_customers(ctx, party_id),
                        await account.service.export_accounts(ctx, party_id)):
            ids |= {str(r["id"]) for r in records if r.get("id")}
        return ids

    async def contacts(ctx: Context, party_id: str) -> set[str]:
        """The party's email addresses and phone numbers (on its record and its customers'): where messages went."""
        found: set[str] = set()
        records = [await party.service.export_party(ctx, party_id) or {},
                   *await customer.service.export_customers(ctx, party_id)]
        for record in records:
            for medium in record.get("contactMedium") or []:
                ch = medium.get("characteristic") or {}
                found |= {str(ch[k]) for k in ("emailAddress", "phoneNumber") if ch.get(k)}
        return found

    async def customer_ids(ctx: Context, party_id: str) -> list[str]:
        return [c["id"] for c in await customer.service.export_customers(ctx, party_id)]

    async def export_orders(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await referring(ctx, ordering.orders["productOrder"], [party_id, *await customer_ids(ctx, party_id)])

    async def export_carts(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await referring(ctx, ordering.carts["shoppingCart"], [party_id, *await customer_ids(ctx, party_id)])

    async def export_products(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await referring(ctx, inventory.resources["product"], [party_id, *await customer_ids(ctx, party_id)])

    async def export_service_orders(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await referring(ctx, provisioning.resources["serviceOrder"],
                               [party_id, *await customer_ids(ctx, party_id)])

    async def export_usage(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await referring(ctx, charging.usage["usage"], [party_id])

    async def export_statements(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await archived_statements(ctx.session, await customer_ids(ctx, party_id))

    async def export_messages(ctx: Context, party_id: str) -> list[dict[str, Any]]:
        return await messages_to(ctx.session, await contacts(ctx, party_id))

    async def erase_messages(ctx: Context, party_id: str) -> int:
        return await forget_messages(ctx.session, await contacts(ctx, party_id))

    registry.add_exporter("productOrders", export_orders)
    registry.add_exporter("shoppingCarts", export_carts)
    registry.add_exporter("products", export_products)
    registry.add_exporter("serviceOrders", export_service_orders)
    registry.add_exporter("chargingAccounts", charging_service.accounts_of_party)
    registry.add_exporter("usage", export_usage)
    registry.add_exporter("archivedStatements", export_statements)
    registry.add_exporter("messages", export_messages)
    registry.add_eraser("messages", erase_messages, order=40)  # before the party's contacts are erased
    resources = [r for bundle in (party, customer, account, catalog, charging, ordering, provisioning, inventory)
                 for api in bundle.apis for r in api.resources]
    registry.add_eraser("copies", CopyEraser(resources, related_ids, json_columns=(
        (AuditRecord, "changes"), (ItemRun, "context"))), order=1000)
    return Services(settings=settings, party=party, customer=customer, account=account, catalog=catalog,
                    inventory=inventory, provisioning=provisioning, ordering=ordering, charging=charging,
                    rating=rating, selfcare=selfcare, care=care, billing=billing, payments=payments,
                    assurance=assurance, collections=collections,
                    personal_data=registry)


def tmf_apis(settings: Settings) -> list[TmfApi]:
    """Every TMF API declaration of the server, without a running process (the search index's migration and
    rebuild read the resources' searchable declarations from them): a pool that is never opened stands in for the
    database, so this works before any connection setting exists (``openbss db check`` on a scratch database)."""
    never_opened = Database(make_url("postgresql://declarations-only/none"))
    return build_services(settings, Runtime.build(settings, db=never_opened)).apis


def wire_worker(services: Services, runtime: Runtime) -> None:
    """What a worker process runs next to the outbox relay: the platform's and the domains' event consumers, the
    domains' long-running loops and their job blueprints."""
    for consumer in services.consumers():  # first: an event's reactions run before its hub fan-out
        runtime.consumers.register(consumer)
    register_platform_consumers(runtime, services.apis)
    s, db = services.settings, runtime.db
    runtime.background_loops.append(lambda stop: orchestrate(services.provisioning, stop))
    runtime.background_loops.append(lambda stop: housekeeping(s, db, services.selfcare, stop))
    runtime.background_loops.append(lambda stop: messaging_loop(db, s, stop))
    runtime.background_loops.append(services.care.escalation(db).run)
    runtime.background_loops.append(lambda stop: billing_loop(db, s.public_url, services.billing.service, stop,
                                                                   documents=services.billing.documents))
    runtime.background_loops.append(services.payments.loop)
    runtime.background_loops.append(services.collections.loop)
    if s.nats_url:  # batch rating's work queue: every worker rates chunks of submitted usage files
        from openbss.rating.queue import WorkQueue

        runtime.background_loops.append(WorkQueue(db, s, services.rating.service).run)
    if s.assurance_syslog_port is not None:
        runtime.background_loops.append(services.assurance.syslog_listener(db).run)
    if s.assurance_snmp_port is not None:
        runtime.background_loops.append(services.assurance.snmp_listener(db).run)
    runtime.background_loops.append(services.assurance.performance_loop(db))
    runtime.job_blueprints.append(("provisioning", provisioning_blueprint(services.provisioning)))
    runtime.job_blueprints.append(("charging", charging_blueprint(services.charging.clocks)))


def run_listener_process(index: int, options: dict[str, Any], ready: Any, results: Any) -> None:
    """One alarm listener process of a ``ListenerPool`` (``openbss assurance listen --processes N``): the syslog
    (or, with ``protocol="snmp"``, trap) listener on the shared port (``SO_REUSEPORT``) with its own database
    connections, until ``SIGTERM``/``SIGINT``; then what it received is applied and its statistics put on
    ``results``."""
    import asyncio
    import os
    from dataclasses import asdict

    from openbss.platform.worker import install_stop_signals
    from openbss.settings import get_settings

    async def run() -> None:
        settings = get_settings()
        rt = Runtime.build(settings)
        services = build_services(settings, rt)
        stop = asyncio.Event()
        install_stop_signals(stop)
        make = (services.assurance.snmp_listener if options.get("protocol") == "snmp"
                else services.assurance.syslog_listener)
        listener = make(rt.db, port=int(options["port"]), tenant=options.get("tenant"),
                        window=float(options.get("window", 0.1)), reuse_port=True)
        task = asyncio.create_task(listener.run(stop))
        try:
            await asyncio.wait({task, asyncio.ensure_future(listener.ready.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if listener.ready.is_set():
                ready.put(index)
            await task
        finally:
            results.put({"index": index, "pid": os.getpid(), **asdict(listener.stats)})
            await rt.close()

    asyncio.run(run())


__all__ = ["Services", "build_services", "run_listener_process", "wire_worker"]

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
from decimal import Decimal

from openbss.account import wiring as account_wiring
from openbss.account.service import OpenBalances
from openbss.account.wiring import AccountServices
from openbss.assurance import wiring as assurance_wiring
from openbss.assurance.wiring import AssuranceServices
from openbss.care import wiring as care_wiring
from openbss.care.wiring import CareServices
from openbss.catalog import wiring as catalog_wiring
from openbss.catalog.wiring import CatalogServices
from openbss.charging import wiring as charging_wiring
from openbss.charging.jobs import charging_blueprint
from openbss.charging.wiring import ChargingServices
from openbss.customer import wiring as customer_wiring
from openbss.customer.wiring import CustomerServices
from openbss.inventory import wiring as inventory_wiring
from openbss.inventory.wiring import InventoryServices
from openbss.ordering import wiring as ordering_wiring
from openbss.ordering.wiring import OrderingServices
from openbss.party import wiring as party_wiring
from openbss.party.wiring import PartyServices
from openbss.platform.crypto import EncryptedTable
from openbss.platform.db import Database, make_url
from openbss.platform.events.consumers import Consumer
from openbss.platform.messaging import messaging_loop
from openbss.platform.personal_data import PersonalDataRegistry, encrypted_tables
from openbss.platform.runtime import Runtime
from openbss.platform.tmf.resource import Context, TmfApi
from openbss.platform.worker import register_platform_consumers
from openbss.provisioning import wiring as provisioning_wiring
from openbss.provisioning.adapters import AdapterFactory, NetworkAdapter
from openbss.provisioning.ocs import ChargingOcs
from openbss.provisioning.runner import orchestrate, provisioning_blueprint
from openbss.provisioning.wiring import ProvisioningServices
from openbss.selfcare import signin
from openbss.selfcare.housekeeping import housekeeping
from openbss.selfcare.wiring import SelfcareServices
from openbss.settings import Settings


class NothingOwed:
    """The open balance of every billing account until the billing domain provides its own: nothing is owed, so
    closing an account and erasing its holder are not refused for money. Declared here and only here."""

    async def open_balance(self, ctx: Context, billing_account_id: str) -> Decimal:
        return Decimal(0)


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
    selfcare: SelfcareServices
    care: CareServices
    assurance: AssuranceServices
    #: what each domain holds on a party: customer 360 sections, GDPR exporters, erasers and erasure guards
    personal_data: PersonalDataRegistry

    @property
    def apis(self) -> list[TmfApi]:
        """Every TMF API of the process, in documentation order."""
        return [*self.party.apis, *self.customer.apis, *self.account.apis, *self.catalog.apis,
                *self.charging.apis, *self.ordering.apis, *self.provisioning.apis, *self.inventory.apis,
                *self.care.apis, *self.assurance.apis]

    def encrypted_tables(self) -> list[EncryptedTable]:
        """The tables holding personal data sealed at rest (what key rotation re-encrypts)."""
        return encrypted_tables(r for api in self.apis for r in api.resources)

    def consumers(self) -> list[Consumer]:
        """The domains' reactions to other domains' events."""
        return [*self.ordering.consumers(), *self.care.consumers()]


def build_services(settings: Settings, runtime: Runtime, *, open_balances: OpenBalances | None = None) -> Services:
    """Every domain's services for this process. ``open_balances`` replaces the declaration that nothing is owed
    (what the billing domain will pass)."""
    registry = PersonalDataRegistry()
    party = party_wiring.build(settings)
    customer = customer_wiring.build(settings, party.service, registry)
    account = account_wiring.build(settings, party.service, customer.service, open_balances or NothingOwed())
    inventory = inventory_wiring.build(settings)
    catalog = catalog_wiring.build(settings, sold=inventory.service)
    charging = charging_wiring.build(settings, catalog.service, account.service)
    network: dict[str, AdapterFactory] = {}
    if settings.provisioning_ocs == "charging":
        def charging_ocs(db: Database, s: Settings) -> NetworkAdapter:
            return ChargingOcs(db, s, charging.service)

        network["ocs"] = charging_ocs
    provisioning = provisioning_wiring.build(settings, runtime.db, catalog.service, inventory.service, network)
    ordering = ordering_wiring.build(settings, catalog.service, customer.service, account.service,
                                     inventory.service, provisioning.service)
    selfcare = SelfcareServices(customer.service, party.service, account.service, inventory.service)
    registry.add_customer_view("accounts", account.service.customer_accounts)
    registry.add_customer_view("products", inventory.service.customer_products)
    care = care_wiring.build(settings, customer.service)
    registry.add_customer_view("tickets", care.service.customer_tickets)
    registry.add_customer_view("interactions", care.service.customer_interactions)
    assurance = assurance_wiring.build(settings, inventory.service, care.service.tickets)
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
    return Services(settings=settings, party=party, customer=customer, account=account, catalog=catalog,
                    inventory=inventory, provisioning=provisioning, ordering=ordering, charging=charging,
                    selfcare=selfcare, care=care, assurance=assurance,
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
    if s.assurance_syslog_port is not None:
        runtime.background_loops.append(services.assurance.syslog_listener(db).run)
    if s.assurance_snmp_port is not None:
        runtime.background_loops.append(services.assurance.snmp_listener(db).run)
    runtime.job_blueprints.append(("provisioning", provisioning_blueprint(services.provisioning)))
    runtime.job_blueprints.append(("charging", charging_blueprint()))


__all__ = ["NothingOwed", "Services", "build_services", "wire_worker"]

"""How provisioning is put together: TMF641 service orders, the provisioning service, the network adapters and the
orchestrator, built once per process by the composition root (``openbss.services``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from openbss.platform.db import Database
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.provisioning import events
from openbss.provisioning.adapters import AdapterFactory, NetworkAdapter, build_adapters
from openbss.provisioning.models import ServiceOrder
from openbss.provisioning.orchestrator import Orchestrator
from openbss.provisioning.schemas import SPEC_FILE
from openbss.provisioning.service import ProductDecomposition, ProductInventory, ProvisioningService
from openbss.settings import Settings


@dataclass(frozen=True)
class ProvisioningServices:
    service: ProvisioningService
    api: TmfApi
    resources: dict[str, ResourceService]  # serviceOrder
    db: Database
    settings: Settings
    inventory: ProductInventory
    #: real network elements plugged in by the composition root (element -> factory); the others are simulated
    adapter_factories: Mapping[str, AdapterFactory] = field(default_factory=dict)

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api]

    def orchestrator(self, settings: Settings | None = None, *, adapters: dict[str, NetworkAdapter] | None = None,
                     worker_id: str | None = None) -> Orchestrator:
        """An orchestrator over this process's services (``settings`` may tune timeouts and backoffs)."""
        s = settings or self.settings
        return Orchestrator(self.db, s, self.service, self.inventory,
                            adapters or build_adapters(self.db, s, self.adapter_factories), worker_id=worker_id)


def build(settings: Settings, db: Database, catalog: ProductDecomposition, inventory: ProductInventory,
          adapter_factories: Mapping[str, AdapterFactory] | None = None) -> ProvisioningServices:
    api = TmfApi(
        name=events.API, title="TMF641 Service Ordering", spec_file=SPEC_FILE, permission="provisioning",
        resources=[TmfResource(path="serviceOrder", type="ServiceOrder", table=ServiceOrder, state_field="state",
                               operations=frozenset({"list", "get"}), customer_operations=frozenset())])
    resources = resource_services(api)
    service = ProvisioningService(resources["serviceOrder"], catalog, settings)
    return ProvisioningServices(service=service, api=api, resources=resources, db=db, settings=settings,
                                inventory=inventory, adapter_factories=dict(adapter_factories or {}))

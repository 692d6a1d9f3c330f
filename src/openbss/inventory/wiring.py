"""How the inventory is put together: TMF637 products, TMF638 services, TMF639 resources, and the inventory
service over them, built once per process by the composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.inventory.models import Product, Resource, Service
from openbss.inventory.resources import ResourceRules
from openbss.inventory.schemas import PRODUCT_SPEC, RESOURCE_SPEC, SERVICE_SPEC
from openbss.inventory.service import InventoryService
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.platform.tmf.spec import AttributeType
from openbss.settings import Settings

READ_ONLY = frozenset({"list", "get"})
#: the identifiers of TMF639's resource subtypes (LogicalResource's value, PhysicalResource's serial number): a
#: client finds a resource by them (no resource carried them before resources could be recorded through the API,
#: so the search index needs no rebuild for them)
SUBTYPE_FILTERS = {"value": AttributeType("string"), "serialNumber": AttributeType("string")}


@dataclass(frozen=True)
class InventoryServices:
    service: InventoryService
    product_api: TmfApi
    service_api: TmfApi
    resource_api: TmfApi
    resources: dict[str, ResourceService]  # product, service, resource

    @property
    def apis(self) -> list[TmfApi]:
        return [self.product_api, self.service_api, self.resource_api]

    def services_of(self, api: TmfApi) -> dict[str, ResourceService]:
        return {r.path: self.resources[r.path] for r in api.resources}


def build(settings: Settings) -> InventoryServices:
    product_api = TmfApi(
        name="productInventory", title="TMF637 Product Inventory", spec_file=PRODUCT_SPEC, permission="inventory",
        resources=[TmfResource(path="product", type="Product", table=Product, state_field="status",
                               owner_paths=("relatedParty.id",), operations=READ_ONLY,
                               customer_operations=READ_ONLY)])
    service_api = TmfApi(
        name="serviceInventory", title="TMF638 Service Inventory", spec_file=SERVICE_SPEC, permission="inventory",
        resources=[TmfResource(path="service", type="Service", table=Service, state_field="state",
                               operations=READ_ONLY, customer_operations=frozenset())])
    resource_api = TmfApi(
        name="resourceInventoryManagement", title="TMF639 Resource Inventory", spec_file=RESOURCE_SPEC,
        permission="inventory",
        resources=[TmfResource(path="resource", type="Resource", table=Resource, state_field="resourceStatus",
                               create_definition="OpenBSSResource_Create",
                               update_definition="OpenBSSResource_Update", hooks=ResourceRules(),
                               extra_attributes=SUBTYPE_FILTERS, customer_operations=frozenset())])
    resources = {**resource_services(product_api), **resource_services(service_api),
                 **resource_services(resource_api)}
    service = InventoryService(resources["product"], resources["service"], resources["resource"])
    return InventoryServices(service=service, product_api=product_api, service_api=service_api,
                             resource_api=resource_api, resources=resources)

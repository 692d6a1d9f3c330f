"""How the catalog is put together: TMF620 (catalogs, categories, specifications, offerings, prices, import and
export jobs), the service and resource specification catalogs, the OpenBSS extensions (tariffs), and the services
over them, built once per process by the composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openbss.catalog.events import API, EXTENSION_API, RESOURCE_CATALOG_API, SERVICE_CATALOG_API
from openbss.catalog.models import (
    Catalog,
    Category,
    ExportJob,
    ImportJob,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    ResourceSpecification,
    ServiceSpecification,
    Tariff,
)
from openbss.catalog.schemas import (
    EXT_SPEC_FILE,
    PRICE_EXTENSION,
    SPEC_FILE,
    ExportJobCreate,
    ProductOfferingPriceCreate,
    ProductOfferingPriceUpdate,
)
from openbss.catalog.service import (
    CatalogObjectRules,
    CatalogService,
    CategoryRules,
    ProductCatalog,
    ProductOfferingPriceRules,
    ProductOfferingRules,
    ProductSpecificationRules,
    ResourceSpecificationRules,
    ServiceSpecificationRules,
    SoldProducts,
    TariffRules,
)
from openbss.catalog.transfer import JobService
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.platform.tmf.spec import AttributeType
from openbss.settings import Settings

STAFF_ONLY: frozenset[str] = frozenset()
#: filterable extension attributes of prices (documented in catalog/schemas.py)
PRICE_EXTENSION_FILTERS = {
    name: AttributeType("string") for name in ("billingTiming", "prorationPolicy", "chargeCategory", "usageType",
                                               "tierType")
} | {"tariff.id": AttributeType("string")}
LIFECYCLE: dict[str, Any] = {"state_field": "lifecycleStatus", "initial_state": "In design",
                             "customer_operations": STAFF_ONLY}
JOB_OPERATIONS = frozenset({"create", "list", "get", "delete"})


@dataclass(frozen=True)
class CatalogServices:
    service: ProductCatalog
    catalog_api: TmfApi
    service_catalog_api: TmfApi
    resource_catalog_api: TmfApi
    extension_api: TmfApi
    #: every catalog resource's service by path (TMF620, specifications, tariffs)
    catalog: dict[str, CatalogService]
    jobs: dict[str, ResourceService] = field(default_factory=dict)  # importJob, exportJob

    @property
    def apis(self) -> list[TmfApi]:
        return [self.catalog_api, self.service_catalog_api, self.resource_catalog_api, self.extension_api]

    def services_of(self, api: TmfApi) -> dict[str, ResourceService]:
        """The services of one of the catalog's APIs, by path (what its router mounts)."""
        every: dict[str, ResourceService] = {**self.catalog, **self.jobs}
        return {r.path: every[r.path] for r in api.resources}


def build(settings: Settings, sold: SoldProducts) -> CatalogServices:
    catalog_api = TmfApi(
        name=API, title="TMF620 Product Catalog Management", spec_file=SPEC_FILE, permission="catalog",
        extensions=[PRICE_EXTENSION],
        resources=[
            TmfResource(path="catalog", type="Catalog", table=Catalog, hooks=CatalogObjectRules(), **LIFECYCLE),
            TmfResource(path="category", type="Category", table=Category, hooks=CategoryRules(), **LIFECYCLE),
            TmfResource(path="productSpecification", type="ProductSpecification", table=ProductSpecification,
                        hooks=ProductSpecificationRules(), **LIFECYCLE),
            TmfResource(path="productOffering", type="ProductOffering", table=ProductOffering,
                        hooks=ProductOfferingRules(), **LIFECYCLE),
            TmfResource(path="productOfferingPrice", type="ProductOfferingPrice", table=ProductOfferingPrice,
                        hooks=ProductOfferingPriceRules(), extra_attributes=PRICE_EXTENSION_FILTERS, **LIFECYCLE),
            TmfResource(path="importJob", type="ImportJob", table=ImportJob, update_definition="ImportJob_Create",
                        operations=JOB_OPERATIONS, customer_operations=STAFF_ONLY),
            TmfResource(path="exportJob", type="ExportJob", table=ExportJob, update_definition="ExportJob_Create",
                        operations=JOB_OPERATIONS, customer_operations=STAFF_ONLY),
        ],
    )
    service_catalog_api = TmfApi(
        name=SERVICE_CATALOG_API, title="TMF633 Service Catalog (specifications)", spec_file=EXT_SPEC_FILE,
        permission="catalog",
        resources=[TmfResource(path="serviceSpecification", type="ServiceSpecification",
                               table=ServiceSpecification, hooks=ServiceSpecificationRules(), **LIFECYCLE)],
    )
    resource_catalog_api = TmfApi(
        name=RESOURCE_CATALOG_API, title="TMF634 Resource Catalog (specifications)", spec_file=EXT_SPEC_FILE,
        permission="catalog",
        resources=[TmfResource(path="resourceSpecification", type="ResourceSpecification",
                               table=ResourceSpecification, hooks=ResourceSpecificationRules(), **LIFECYCLE)],
    )
    extension_api = TmfApi(
        name=EXTENSION_API, title="OpenBSS catalog extensions (tariffs, versions, eligibility)",
        spec_file=EXT_SPEC_FILE, permission="catalog", base_path="/api/catalog/v1",
        resources=[TmfResource(path="tariff", type="Tariff", table=Tariff, hooks=TariffRules(), **LIFECYCLE)],
    )
    catalog: dict[str, CatalogService] = {}
    extended = {"ProductOfferingPrice": (ProductOfferingPriceCreate, ProductOfferingPriceUpdate)}
    for api in (catalog_api, service_catalog_api, resource_catalog_api, extension_api):
        for r in api.resources:
            if r.path not in ("importJob", "exportJob"):
                catalog[r.path] = CatalogService(api, r, siblings=catalog, sold=sold, models=extended.get(r.type))
    jobs = resource_services(catalog_api, {
        **{r.path: catalog[r.path] for r in catalog_api.resources if r.path in catalog},
        "importJob": JobService(catalog_api, catalog_api.resource("importJob"), catalog),
        "exportJob": JobService(catalog_api, catalog_api.resource("exportJob"), catalog,
                                create_model=ExportJobCreate),
    })
    return CatalogServices(
        service=ProductCatalog(catalog), catalog_api=catalog_api, service_catalog_api=service_catalog_api,
        resource_catalog_api=resource_catalog_api, extension_api=extension_api, catalog=catalog,
        jobs={p: jobs[p] for p in ("importJob", "exportJob")})

"""Events the catalog emits (through the TMF kit) on its hubs and the event backbone.

TMF620 (api ``productCatalogManagement``): Create / AttributeValueChange / StateChange / Delete events of
catalog, category, productSpecification, productOffering, productOfferingPrice, importJob and exportJob. A new
version of an offering or price is a ``...CreateEvent`` of the new id followed by the ``...StateChangeEvent`` of
the previous version (Retired). Tariffs (api ``catalogExtension``), service specifications
(``serviceCatalogManagement``) and resource specifications (``resourceCatalogManagement``) emit the same four
kinds on their own hubs.
"""

from __future__ import annotations

KINDS = ("Create", "AttributeValueChange", "StateChange", "Delete")
API = "productCatalogManagement"
EXTENSION_API = "catalogExtension"
SERVICE_CATALOG_API = "serviceCatalogManagement"
RESOURCE_CATALOG_API = "resourceCatalogManagement"
EVENT_TYPES = {
    API: tuple(f"{r}{k}Event" for r in ("Catalog", "Category", "ProductSpecification", "ProductOffering",
                                        "ProductOfferingPrice", "ImportJob", "ExportJob") for k in KINDS),
    EXTENSION_API: tuple(f"Tariff{k}Event" for k in KINDS),
    SERVICE_CATALOG_API: tuple(f"ServiceSpecification{k}Event" for k in KINDS),
    RESOURCE_CATALOG_API: tuple(f"ResourceSpecification{k}Event" for k in KINDS),
}

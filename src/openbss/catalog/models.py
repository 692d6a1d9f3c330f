"""Tables of the catalog. Each holds one TMF document per row (``TmfDocument``); versioned objects (offerings,
prices, tariffs) also carry the ``lineage_id`` shared by all versions of one object, and export jobs keep the
exported document."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base
from openbss.platform.tmf.resource import TmfDocument


class Versioned:
    #: the id of the first version; every version of the object shares it
    lineage_id: Mapped[str | None] = mapped_column(String(64), index=True)


class Catalog(TmfDocument, Base):
    __tablename__ = "catalog_catalog"


class Category(TmfDocument, Base):
    __tablename__ = "catalog_category"


class ProductSpecification(TmfDocument, Base):
    __tablename__ = "catalog_product_specification"


class ProductOffering(Versioned, TmfDocument, Base):
    __tablename__ = "catalog_product_offering"


class ProductOfferingPrice(Versioned, TmfDocument, Base):
    __tablename__ = "catalog_product_offering_price"


class Tariff(Versioned, TmfDocument, Base):
    __tablename__ = "catalog_tariff"


class ServiceSpecification(TmfDocument, Base):
    __tablename__ = "catalog_service_specification"


class ResourceSpecification(TmfDocument, Base):
    __tablename__ = "catalog_resource_specification"


class ImportJob(TmfDocument, Base):
    __tablename__ = "catalog_import_job"


class ExportJob(TmfDocument, Base):
    __tablename__ = "catalog_export_job"

    content: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

"""How batch rating is put together: the rating service over online charging (accounts, the TMF635 usage store)
and the catalog (tariffs), and the TMF635 ``usageSpecification`` resource, served by the usage management API next
to ``usage`` (the composition root hands the declaration to charging's wiring, which owns that API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfResource
from openbss.rating.errors import InvalidUsageRecord
from openbss.rating.models import UsageSpecification
from openbss.rating.queue import WorkQueue
from openbss.rating.service import ChargingAccounts, RatingService, TariffCatalog
from openbss.settings import Settings


class UsageSpecificationRules(ResourceHooks):
    """A usage specification is named (records are mapped to it by name)."""

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        if not str(doc.get("name") or "").strip():
            raise InvalidUsageRecord("'name' is required: usage records refer to their specification by name",
                                     code="INVALID_USAGE_SPECIFICATION")
        doc.setdefault("lifecycleStatus", "Active")

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        if "name" in changes and not str(changes.get("name") or "").strip():
            raise InvalidUsageRecord("'name' cannot be emptied", code="INVALID_USAGE_SPECIFICATION")


def usage_specification_resource() -> TmfResource:
    return TmfResource(path="usageSpecification", type="UsageSpecification", table=UsageSpecification,
                       hooks=UsageSpecificationRules(), customer_operations=frozenset({"list", "get"}))


@dataclass
class RatingServices:
    service: RatingService
    #: with NATS, the work queue that received files are submitted to (publishing side only: the workers consume
    #: it, ``services.wire_worker``); ``None`` without NATS — files are then rated by the process that receives them
    queue: WorkQueue | None = None


def build(settings: Settings, charging: ChargingAccounts, catalog: TariffCatalog,
          specifications: ResourceService) -> RatingServices:
    service = RatingService(charging, catalog)
    service.specifications = specifications
    queue = WorkQueue(None, settings) if settings.nats_url else None  # connects on first use, never here
    return RatingServices(service=service, queue=queue)

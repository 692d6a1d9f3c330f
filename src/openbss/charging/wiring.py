"""How online charging is put together: TMF654 prepay balances, TMF635 usage, and the charging service, built
once per process by the composition root (``openbss.services``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openbss.charging import clock
from openbss.charging.balances import (
    BUCKET_EXTENSION,
    BUCKET_SEARCH,
    TOPUP_EXTENSION,
    USAGE_SEARCH,
    AdjustRules,
    BalanceActionService,
    BucketCodec,
    ChargingTmfApi,
    ReserveRules,
    TopupRules,
    TransferRules,
    UsageCodec,
)
from openbss.charging.events import API, USAGE_API
from openbss.charging.models import (
    AdjustBalance,
    BalanceActionHistory,
    Bucket,
    ReserveBalance,
    TopupBalance,
    TransferBalance,
    Usage,
)
from openbss.charging.schemas import SPEC_FILE, USAGE_SPEC_FILE
from openbss.charging.service import BillingAccounts, ChargingService, RatingCatalog, TestClocks
from openbss.platform.events.consumers import Consumer
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.settings import Settings

ACTION_OPS = frozenset({"create", "list", "get", "patch", "delete"})
READ_OPS = frozenset({"list", "get"})
OWNED = ("relatedParty.id",)
#: the subscriber's and the receiver's MSISDN: never in an event (the bucket or action is read by its href)
MSISDN_REFS = ("logicalResource", "receiverLogicalResource")


@dataclass(frozen=True)
class ChargingServices:
    service: ChargingService
    prepay_api: TmfApi
    usage_api: TmfApi
    balances: dict[str, ResourceService]  # bucket, the balance actions, balanceActionHistory
    usage: dict[str, ResourceService]  # usage

    base_url: str = ""
    #: billing's test clocks (``charging.clock``); None: charging keeps real time
    clocks: TestClocks | None = None

    @property
    def apis(self) -> list[TmfApi]:
        return [self.prepay_api, self.usage_api]

    def consumers(self) -> list[Consumer]:
        """Charging's reactions to other domains' events: a sandbox tenant's test clock (``charging.clock``)."""
        return [clock.clock_consumer(self.clocks, self.base_url)] if self.clocks is not None else []


def build(settings: Settings, catalog: RatingCatalog, accounts: BillingAccounts,
          usage_resources: Sequence[TmfResource] = (), clocks: TestClocks | None = None) -> ChargingServices:
    """``usage_resources``: other TMF635 resources served by the usage API (batch rating's
    ``usageSpecification``)."""
    prepay_api = ChargingTmfApi(name=API, title="TMF654 Prepay Balance Management", spec_file=SPEC_FILE,
                                permission="charging", extensions=[BUCKET_EXTENSION, TOPUP_EXTENSION])
    history_resource = TmfResource(
        path="balanceActionHistory", type="BalanceActionHistory", table=BalanceActionHistory,
        create_definition="BalanceActionHistory", update_definition="BalanceActionHistory", operations=READ_OPS,
        customer_operations=READ_OPS, owner_paths=OWNED, event_withheld=MSISDN_REFS)
    history = ResourceService(prepay_api, history_resource)
    prepay_api.resources = [
        TmfResource(path="bucket", type="Bucket", table=Bucket, create_definition="Bucket",
                    update_definition="Bucket", operations=READ_OPS, customer_operations=READ_OPS,
                    owner_paths=OWNED, codec=BucketCodec(), searchable=BUCKET_SEARCH, event_withheld=MSISDN_REFS),
        TmfResource(path="topupBalance", type="TopupBalance", table=TopupBalance, hooks=TopupRules(history),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=OWNED, event_withheld=MSISDN_REFS),
        TmfResource(path="adjustBalance", type="AdjustBalance", table=AdjustBalance, hooks=AdjustRules(history),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=OWNED, event_withheld=MSISDN_REFS),
        TmfResource(path="transferBalance", type="TransferBalance", table=TransferBalance,
                    hooks=TransferRules(history), operations=ACTION_OPS, customer_operations=READ_OPS,
                    owner_paths=OWNED, event_withheld=MSISDN_REFS),
        TmfResource(path="reserveBalance", type="ReserveBalance", table=ReserveBalance, hooks=ReserveRules(history),
                    operations=ACTION_OPS, customer_operations=READ_OPS, owner_paths=OWNED, event_withheld=MSISDN_REFS),
        history_resource,
    ]
    usage_api = TmfApi(
        name=USAGE_API, title="TMF635 Usage Management", spec_file=USAGE_SPEC_FILE, permission="charging",
        resources=[TmfResource(path="usage", type="Usage", table=Usage, operations=READ_OPS, codec=UsageCodec(),
                               searchable=USAGE_SEARCH, customer_operations=READ_OPS, owner_paths=OWNED),
                   *usage_resources],
    )
    actions = {r.path: BalanceActionService(prepay_api, r) for r in prepay_api.resources
               if r.path in ("topupBalance", "adjustBalance", "transferBalance", "reserveBalance")}
    return ChargingServices(
        service=ChargingService(catalog, accounts), prepay_api=prepay_api, usage_api=usage_api,
        balances=resource_services(prepay_api, {"balanceActionHistory": history, **actions}),
        usage=resource_services(usage_api), base_url=settings.public_url, clocks=clocks)

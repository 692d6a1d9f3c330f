"""How billing is put together: TMF678 (customer bills, their lines, bills on demand) and the billing service,
built once per process by the composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from openbss.billing import events
from openbss.billing.errors import InvalidBilling
from openbss.billing.events import API
from openbss.billing.models import AppliedRate, BillOnDemand, CustomerBill
from openbss.billing.service import (
    Balances,
    BillingAccounts,
    BillingService,
    CatalogPrices,
    RatedUsageSource,
    SoldProducts,
)
from openbss.platform.errors import BadRequest
from openbss.platform.events.event import Consumer
from openbss.platform.storage import ObjectStore, object_store_from_url
from openbss.platform.tmf.query import Filter
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.search import ColumnFilter, Searchable
from openbss.settings import Settings

SPEC_FILE = "TMF678-CustomerBill-v4.0.0.swagger.json"
READ_OPS = frozenset({"list", "get"})
OWNED = ("relatedParty.id",)


def equal_to(column: Any) -> ColumnFilter:
    """A filter served by a typed column for equality (one value or several); other operators (ranges on an id)
    keep the document path filter, whose comparison is the specification's."""

    def build(flt: Filter) -> Any:
        return column.in_([str(v) for v in flt.values]) if flt.op == "eq" else None

    return build


#: What the search index keeps of bills and of their lines: the filters a billing team lists them by. A bill run
#: writes these entries for every bill and line, so they are few; the account and the bill a line belongs to are
#: served by the tables' own indexed columns (no entry at all). A filter on another attribute (``name``,
#: ``nextBillDate``, ``@type``…) still works: the kit falls back to the document path filter (exact, not
#: index-assisted).
BILL_SEARCH = Searchable(
    defaults=False,
    include=("billDate", "billNo", "category", "paymentDueDate", "relatedParty.id", "state"),
    columns={"billingAccount.id": equal_to(CustomerBill.billing_account_id)})
LINE_SEARCH = Searchable(
    defaults=False,
    include=("date", "type", "product.id"),
    columns={"bill.id": equal_to(AppliedRate.bill_id), "billingAccount.id": equal_to(AppliedRate.billing_account_id)})


class BillRules(ResourceHooks):
    """The states of a bill: drafts (``new``, ``onHold``) until finalized (``validated``), then sent and paid."""

    transitions: ClassVar[dict[str, set[str]] | None] = {
        "new": {"onHold", "validated"}, "onHold": {"new", "validated"}, "validated": {"sent", "partiallyPaid",
                                                                                      "settled"},
        "sent": {"partiallyPaid", "settled"}, "partiallyPaid": {"settled", "sent"},
        "settled": {"partiallyPaid", "sent"}}  # back: a payment charged back by its payer (payments' dispute)


class BillResourceService(ResourceService):
    """PATCH of a customer bill changes its state only, through the billing service (finalization numbers it)."""

    billing: BillingService | None = None

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        others = sorted(set(changes) - {"state", "@type", "@baseType", "@schemaLocation"})
        if others or "state" not in changes:
            raise BadRequest(f"only 'state' of a customer bill can change (not {', '.join(others) or 'nothing'})",
                             code="INVALID_BODY")
        assert self.billing is not None
        await self.store.get(ctx, resource_id)  # 404 before anything else
        self.check_transition(await self._state(ctx, resource_id), changes["state"])
        return await self.billing.set_state(ctx, resource_id, str(changes["state"]))

    async def _state(self, ctx: Context, resource_id: str) -> str:
        return str((await self.get(ctx, resource_id)).get("state"))


class OnDemandRules(ResourceHooks):
    """A bill on demand answers with the account's next bill as it stands, computed by the bill run's code and
    written nowhere (the request is kept, with its answer)."""

    def __init__(self) -> None:
        self.billing: BillingService | None = None

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        account_id = (doc.get("billingAccount") or {}).get("id")
        if not account_id:
            raise InvalidBilling("'billingAccount.id' is mandatory: the account whose bill is asked")
        assert self.billing is not None
        preview = await self.billing.preview(ctx, account_id)
        doc["@type"] = "OpenBSSCustomerBillOnDemand"
        doc["@baseType"] = "CustomerBillOnDemand"
        doc["@schemaLocation"] = f"{ctx.base_url}/billing/v1/schema/OpenBSSCustomerBillOnDemand.json"
        doc["state"] = "done"
        doc["billPreview"] = preview


@dataclass(frozen=True)
class BillingServices:
    service: BillingService
    balances: Balances
    api: TmfApi
    resources: dict[str, ResourceService]
    settings: Settings
    #: where bill PDFs are kept (the platform's write-once archive, as the self-care statements)
    documents: ObjectStore

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api]

    def consumers(self) -> list[Consumer]:
        """Billing's reactions to other domains' events: the product changes of completed product orders."""
        return [events.order_changes_consumer(self.service, self.settings.public_url)]


def build(settings: Settings, *, accounts: BillingAccounts, products: SoldProducts, catalog: CatalogPrices,
          usage: RatedUsageSource, balances: Balances) -> BillingServices:
    on_demand = OnDemandRules()
    api = TmfApi(name=API, title="TMF678 Customer Bill Management", spec_file=SPEC_FILE, permission="billing",
                 resources=[
                     TmfResource(path="customerBill", type="CustomerBill", table=CustomerBill, hooks=BillRules(),
                                 create_definition="CustomerBill", state_field="state", searchable=BILL_SEARCH,
                                 operations=frozenset({"list", "get", "patch"}), customer_operations=READ_OPS,
                                 owner_paths=OWNED),
                     TmfResource(path="appliedCustomerBillingRate", type="AppliedCustomerBillingRate",
                                 table=AppliedRate, create_definition="AppliedCustomerBillingRate",
                                 update_definition="AppliedCustomerBillingRate", operations=READ_OPS,
                                 searchable=LINE_SEARCH,
                                 customer_operations=frozenset()),
                     TmfResource(path="customerBillOnDemand", type="CustomerBillOnDemand", table=BillOnDemand,
                                 hooks=on_demand, update_definition="CustomerBillOnDemand_Create",
                                 operations=frozenset({"create", "list", "get"}),
                                 customer_operations=frozenset()),
                 ])
    bills = BillResourceService(api, api.resource("customerBill"))
    lines = ResourceService(api, api.resource("appliedCustomerBillingRate"))
    resources = {"customerBill": bills, "appliedCustomerBillingRate": lines,
                 "customerBillOnDemand": ResourceService(api, api.resource("customerBillOnDemand"))}
    service = BillingService(accounts, products, catalog, usage, balances, bills, lines)
    bills.billing = service
    on_demand.billing = service
    archive_url = settings.selfcare_archive_url or str((settings.data_dir / "archive").resolve())
    documents = object_store_from_url(archive_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                                      access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                                      object_lock=settings.s3_object_lock)
    return BillingServices(service=service, balances=balances, api=api, resources=resources, settings=settings,
                           documents=documents)

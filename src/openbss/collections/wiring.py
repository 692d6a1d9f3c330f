"""How collections is put together: its API (dunning policies, episodes, promises to pay, payment plans,
exclusions, in the TMF conventions over ``OpenBSS-Collections-v1.swagger.json``), the scheduler, its consumer and
its loop, built once per process by the composition root."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from openbss.collections import events
from openbss.collections.models import DunningPolicy, Episode, Exclusion, PaymentPlan, Promise
from openbss.collections.service import (
    AccountProfiles,
    BillingAccounts,
    Charges,
    CollectionsService,
    EpisodeService,
    ExclusionService,
    Orders,
    Overdue,
    Payments,
    PlanRules,
    PlanService,
    PolicyRules,
    PolicyService,
    Products,
    PromiseRules,
    PromiseService,
    WriteOffs,
)
from openbss.platform.db import Database
from openbss.platform.events.event import Consumer
from openbss.platform.storage import ObjectStore
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.search import Searchable, column_filter
from openbss.settings import Settings

log = logging.getLogger(__name__)

SPEC_FILE = "OpenBSS-Collections-v1.swagger.json"
BASE_PATH = "/api/collections/v1"
READ = frozenset({"list", "get"})
#: episodes are written set-based by the scheduler, not through the kit: typed columns serve their filters
EPISODE_SEARCH = Searchable(side_table=False, columns={
    "state": column_filter(Episode.state),
    "billingAccount.id": column_filter(Episode.billing_account_id),
    "dunningPolicy.id": column_filter(Episode.policy_id),
    "policyVersion": column_filter(Episode.policy_version),
}, unsupported={"pausedUntil": "it is computed when read (from the promises and plans of the episode)",
                "overdueAmount.value": "it is computed when read (what is overdue now)"})
EDIT = frozenset({"create", "list", "get", "patch"})


class CollectionsApi(TmfApi):
    """The kit's API, announcing collections' own events too (hub subscriptions may filter on them)."""

    def event_types(self) -> set[str]:
        return super().event_types() | set(events.DOMAIN_EVENTS)


@dataclass(frozen=True)
class CollectionsServices:
    service: CollectionsService
    api: TmfApi
    resources: dict[str, ResourceService]
    settings: Settings

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api]

    def consumers(self) -> list[Consumer]:
        return [events.account_changed_consumer(self.service, self.settings.public_url)]

    async def loop(self, stop: asyncio.Event) -> None:
        """The worker's dunning scheduler: every tenant evaluated, its due steps claimed and taken, on a timer."""
        worker = f"{socket.gethostname()}:{os.getpid()}"
        while not stop.is_set():
            try:
                await self.service.run(worker=worker)
            except Exception:
                log.exception("collections round failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.collections_loop_seconds)
            except TimeoutError:
                pass


def build(settings: Settings, db: Database, *, overdue: Overdue, profiles: AccountProfiles,
          accounts: BillingAccounts, products: Products, orders: Orders, payments: Payments,
          charges: Charges | None, write_offs: WriteOffs | None, store: ObjectStore) -> CollectionsServices:
    api = CollectionsApi(name=events.API, title="Collections (dunning)", spec_file=SPEC_FILE, permission="collections",
                 base_path=BASE_PATH, resources=[
                     TmfResource(path="dunningPolicy", type="DunningPolicy", table=DunningPolicy,
                                 hooks=PolicyRules(), operations=EDIT, customer_operations=frozenset(),
                                 write_permission="collectionsconfig"),
                     TmfResource(path="dunningEpisode", type="DunningEpisode", table=Episode, state_field="state",
                                 create_definition="DunningEpisode", update_definition="DunningEpisode",
                                 operations=READ, customer_operations=frozenset(), searchable=EPISODE_SEARCH),
                     # a customer (self-care) records and reads its own accounts' promises: the account is looked
                     # up as the customer (another's is not found), the promise names the account's customer
                     TmfResource(path="promiseToPay", type="PromiseToPay", table=Promise, hooks=PromiseRules(),
                                 state_field="state", operations=EDIT, owner_paths=("relatedParty.id",),
                                 customer_operations=frozenset({"create", "list", "get"})),
                     TmfResource(path="paymentPlan", type="PaymentPlan", table=PaymentPlan, hooks=PlanRules(),
                                 state_field="state", operations=EDIT, customer_operations=frozenset()),
                     TmfResource(path="dunningExclusion", type="DunningExclusion", table=Exclusion,
                                 operations=frozenset({"create", "list", "get", "patch", "delete"}),
                                 customer_operations=frozenset(), write_permission="collectionsconfig"),
                 ])
    policies = PolicyService(api, api.resource("dunningPolicy"))
    policies.accounts = accounts
    policies.write_off_available = write_offs is not None
    policies.late_fee_available = charges is not None
    episodes = EpisodeService(api, api.resource("dunningEpisode"))
    promises = PromiseService(api, api.resource("promiseToPay"))
    plans = PlanService(api, api.resource("paymentPlan"))
    exclusions = ExclusionService(api, api.resource("dunningExclusion"))
    for scoped in (promises, plans, exclusions):
        scoped.accounts = accounts
        scoped.overdue = overdue
    service = CollectionsService(db, settings, overdue=overdue, profiles=profiles, accounts=accounts,
                                 products=products, orders=orders, payments=payments, charges=charges,
                                 write_offs=write_offs, store=store, episodes=episodes, promises=promises,
                                 plans=plans)
    resources: dict[str, ResourceService] = {"dunningPolicy": policies, "dunningEpisode": episodes,
                                             "promiseToPay": promises, "paymentPlan": plans,
                                             "dunningExclusion": exclusions}
    return CollectionsServices(service=service, api=api, resources=resources, settings=settings)

"""How customer care is put together: TMF621 trouble tickets, TMF683 party interactions, the SLA clock and its
escalation scheduler, the supervisors' configuration, built once per process by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.care import events
from openbss.care.adjustments import Adjustments, Bills
from openbss.care.attachments import AttachmentStore
from openbss.care.escalation import ESCALATION_EVENT, EscalationScheduler
from openbss.care.models import PartyInteraction, TroubleTicket
from openbss.care.reactions import (
    DUNNING_RULES,
    PAYMENT_RULES,
    BillingAccounts,
    InteractionRule,
    interaction_consumer,
)
from openbss.care.schemas import INTERACTION_SPEC, TICKET_SPEC, TICKET_TYPE
from openbss.care.selfcare_access import SelfcareAccess, SelfcareReset
from openbss.care.service import (
    INTERACTION_API,
    TICKET_API,
    CareConfiguration,
    CareService,
    Customers,
    InteractionRules,
    InteractionService,
    TicketRules,
    TicketService,
)
from openbss.care.sla import SlaClock
from openbss.care.topup import PrepaidBalances, PrepaidTopUp
from openbss.platform.db import Database
from openbss.platform.events.consumers import Consumer
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.platform.tmf.search import Indexed, Searchable, column_filter
from openbss.settings import Settings

STAFF_READ = frozenset({"list", "get"})
RESOLVED_EVENT = "TroubleTicketResolvedEvent"


class TroubleTicketApi(TmfApi):
    """TMF621 with its events beyond the kit's: ``TroubleTicketResolvedEvent`` (the specification's) and
    ``TroubleTicketSlaEscalationEvent`` (an escalation step fired): hub subscriptions may name them."""

    def event_types(self) -> set[str]:
        return super().event_types() | {RESOLVED_EVENT, ESCALATION_EVENT}


@dataclass(frozen=True)
class CareServices:
    service: CareService
    clock: SlaClock
    ticket_api: TmfApi
    interaction_api: TmfApi
    resources: dict[str, ResourceService]  # troubleTicket, partyInteraction
    settings: Settings
    adjustments: Adjustments
    topups: PrepaidTopUp
    accounts: BillingAccounts
    selfcare_reset: SelfcareReset
    #: the events recorded as interactions (payments and refunds, dunning reminders)
    interaction_rules: tuple[InteractionRule, ...] = PAYMENT_RULES + DUNNING_RULES

    @property
    def apis(self) -> list[TmfApi]:
        return [self.ticket_api, self.interaction_api]

    def services_of(self, api: TmfApi) -> dict[str, ResourceService]:
        return {r.path: self.resources[r.path] for r in api.resources}

    def consumers(self) -> list[Consumer]:
        base = self.settings.public_url
        return [events.order_placed_consumer(self.service, base), events.profile_updated_consumer(self.service, base),
                *(interaction_consumer(self.service, self.accounts, rule, base) for rule in self.interaction_rules)]

    def escalation(self, db: Database) -> EscalationScheduler:
        return EscalationScheduler(db, self.service.tickets, self.clock, self.settings.public_url,
                                   batch=self.settings.care_escalation_batch,
                                   interval=self.settings.care_escalation_interval_seconds)


def build(settings: Settings, customers: Customers, bills: Bills, balances: PrepaidBalances,
          accounts: BillingAccounts, selfcare_access: SelfcareAccess | None = None) -> CareServices:
    clock = SlaClock()
    rules = TicketRules(clock, AttachmentStore(settings))
    ticket = TmfResource(
        path="troubleTicket", type="TroubleTicket", table=TroubleTicket, hooks=rules, state_field="status",
        initial_state="acknowledged", create_definition=f"{TICKET_TYPE}_Create",
        update_definition=f"{TICKET_TYPE}_Update", read_definition=TICKET_TYPE, owner_paths=("relatedParty.id",),
        customer_operations=frozenset({"list", "get", "create"}), state_change_event="StatusChange",
        searchable=Searchable(include=(Indexed("sla.status"), Indexed("sla.resolutionBreached"),
                                       Indexed("sla.firstResponseBreached")),
                              columns={"queue.id": column_filter(TroubleTicket.queue_id),
                                       "status": column_filter(TroubleTicket.status)}))
    ticket_api = TroubleTicketApi(name=TICKET_API, title="TMF621 Trouble Ticket", spec_file=TICKET_SPEC,
                                  permission="care", resources=[ticket])
    interaction = TmfResource(
        path="partyInteraction", type="PartyInteraction", table=PartyInteraction, hooks=InteractionRules(),
        state_field="status", owner_paths=("relatedParty.id",), customer_operations=STAFF_READ,
        state_change_event="StatusChange")
    interaction_api = TmfApi(name=INTERACTION_API, title="TMF683 Party Interaction", spec_file=INTERACTION_SPEC,
                             permission="care", resources=[interaction])
    tickets = TicketService(ticket_api, ticket, rules, customers)
    interactions = InteractionService(interaction_api, interaction)
    resources = {**resource_services(ticket_api, {"troubleTicket": tickets}),
                 **resource_services(interaction_api, {"partyInteraction": interactions})}
    service = CareService(tickets, interactions, CareConfiguration())
    topups = PrepaidTopUp(balances, interactions)
    return CareServices(service=service, clock=clock, ticket_api=ticket_api, interaction_api=interaction_api,
                        resources=resources, settings=settings, adjustments=Adjustments(bills, topups),
                        topups=topups, accounts=accounts,
                        selfcare_reset=SelfcareReset(selfcare_access, interactions, customers))

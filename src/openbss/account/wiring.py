"""How the account domain is put together: TMF666 and the account service over it, built once per process by the
composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.account import events, models
from openbss.account.codecs import (
    billing_account_codec,
    financial_account_codec,
    party_account_codec,
    settlement_account_codec,
)
from openbss.account.schemas import ACCOUNT_EXTENSION, SPEC_FILE
from openbss.account.service import (
    AccountService,
    BillingAccountRules,
    BillingCycleRules,
    OpenBalances,
    OwnedAccountService,
    PartyAccountRules,
    PresentationMediaRules,
)
from openbss.customer.service import CustomerService
from openbss.party.service import PartyService
from openbss.platform.personal_data import configured
from openbss.platform.tmf.resource import (
    DocumentCodec,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfResource,
    resource_services,
)
from openbss.settings import Settings

OWNED = ("billingAccount", "partyAccount", "settlementAccount")


@dataclass(frozen=True)
class AccountServices:
    service: AccountService
    api: TmfApi
    resources: dict[str, ResourceService]

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api]


def _owned(path: str, type_: str, table: type[TmfDocument], codec: DocumentCodec, hooks: ResourceHooks,
           create_definition: str | None = None, read_definition: str | None = None) -> TmfResource:
    return TmfResource(path=path, type=type_, table=table, hooks=hooks, state_field="state",
                       initial_state="defined", owner_paths=("relatedParty.id",), codec=codec,
                       customer_operations=frozenset({"list", "get"}), create_definition=create_definition,
                       read_definition=read_definition, update_definition=f"OpenBSS{type_}_Update")


def build(settings: Settings, parties: PartyService, customers: CustomerService,
          balances: OpenBalances) -> AccountServices:
    owned_rules = PartyAccountRules(parties, customers, balances)
    api = TmfApi(
        name=events.API, title="TMF666 Account Management", spec_file=SPEC_FILE, permission="account",
        extensions=[ACCOUNT_EXTENSION],
        resources=[
            _owned("billingAccount", "BillingAccount", models.BillingAccount,
                   configured(billing_account_codec, settings),
                   BillingAccountRules(parties, customers, balances, settings),
                   create_definition="OpenBSSBillingAccount_Create", read_definition="OpenBSSBillingAccount"),
            _owned("partyAccount", "PartyAccount", models.PartyAccount, configured(party_account_codec, settings),
                   owned_rules),
            _owned("settlementAccount", "SettlementAccount", models.SettlementAccount,
                   configured(settlement_account_codec, settings), owned_rules),
            TmfResource(path="financialAccount", type="FinancialAccount", table=models.FinancialAccount,
                        hooks=owned_rules, state_field="state", initial_state="defined",
                        owner_paths=("relatedParty.id",), codec=configured(financial_account_codec, settings),
                        customer_operations=frozenset({"list", "get"}),
                        update_definition="OpenBSSFinancialAccount_Update"),
            TmfResource(path="billingCycleSpecification", type="BillingCycleSpecification",
                        table=models.BillingCycleSpecification, hooks=BillingCycleRules(),
                        update_definition="OpenBSSBillingCycleSpecification_Update"),
            TmfResource(path="billFormat", type="BillFormat", table=models.BillFormat,
                        update_definition="OpenBSSBillFormat_Update"),
            TmfResource(path="billPresentationMedia", type="BillPresentationMedia",
                        table=models.BillPresentationMedia, hooks=PresentationMediaRules(),
                        update_definition="OpenBSSBillPresentationMedia_Update"),
        ],
    )
    resources = resource_services(api, {
        r.path: OwnedAccountService(api, r, customers) for r in api.resources if r.path in OWNED})
    return AccountServices(service=AccountService(resources, customers, balances), api=api, resources=resources)

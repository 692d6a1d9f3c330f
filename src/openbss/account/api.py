"""TMF666 Account Management at /tmf-api/accountManagement/v4/: billingAccount, partyAccount, settlementAccount,
financialAccount, billingCycleSpecification, billFormat, billPresentationMedia — with hub and events."""

from __future__ import annotations

from openbss.account import models
from openbss.account.codecs import (
    billing_account_codec,
    financial_account_codec,
    party_account_codec,
    settlement_account_codec,
)
from openbss.account.schemas import SPEC_FILE
from openbss.account.service import (
    AccountService,
    BillingAccountRules,
    BillingCycleRules,
    OwnedAccountService,
    PartyAccountRules,
    PresentationMediaRules,
)
from openbss.customer.service import get_customer_service
from openbss.party.service import get_party_service
from openbss.platform import personal_data
from openbss.platform.tmf.resource import ResourceHooks, TmfApi, TmfDocument, TmfResource, build_router

_parties = get_party_service()
_customers = get_customer_service()


class _LinkingService(OwnedAccountService):
    customers = _customers


def _owned(path: str, type_: str, table: type[TmfDocument], codec: personal_data.PersonalDataCodec,
           hooks: ResourceHooks, create_definition: str | None = None, read_definition: str | None = None,
           ) -> TmfResource:
    return TmfResource(path=path, type=type_, table=table, hooks=hooks, state_field="state",
                       initial_state="defined", owner_paths=("relatedParty.id",), codec=codec,
                       service_class=_LinkingService, customer_operations=frozenset({"list", "get"}),
                       create_definition=create_definition, read_definition=read_definition,
                       update_definition=f"OpenBSS{type_}_Update")


account_api = TmfApi(
    name="accountManagement",
    title="TMF666 Account Management",
    spec_file=SPEC_FILE,
    permission="account",
    resources=[
        _owned("billingAccount", "BillingAccount", models.BillingAccount, billing_account_codec,
               BillingAccountRules(_parties, _customers), create_definition="OpenBSSBillingAccount_Create",
               read_definition="OpenBSSBillingAccount"),
        _owned("partyAccount", "PartyAccount", models.PartyAccount, party_account_codec,
               PartyAccountRules(_parties, _customers)),
        _owned("settlementAccount", "SettlementAccount", models.SettlementAccount, settlement_account_codec,
               PartyAccountRules(_parties, _customers)),
        TmfResource(path="financialAccount", type="FinancialAccount", table=models.FinancialAccount,
                    hooks=PartyAccountRules(_parties, _customers), state_field="state", initial_state="defined",
                    owner_paths=("relatedParty.id",), codec=financial_account_codec,
                    customer_operations=frozenset({"list", "get"}), update_definition="OpenBSSFinancialAccount_Update"),
        TmfResource(path="billingCycleSpecification", type="BillingCycleSpecification",
                    table=models.BillingCycleSpecification, hooks=BillingCycleRules(),
                    update_definition="OpenBSSBillingCycleSpecification_Update"),
        TmfResource(path="billFormat", type="BillFormat", table=models.BillFormat,
                    update_definition="OpenBSSBillFormat_Update"),
        TmfResource(path="billPresentationMedia", type="BillPresentationMedia", table=models.BillPresentationMedia,
                    hooks=PresentationMediaRules(), update_definition="OpenBSSBillPresentationMedia_Update"),
    ],
)

router, services = build_router(account_api)
account_service = AccountService(services, _customers)

personal_data.register_customer_view("accounts", account_service.customer_accounts)
personal_data.register_exporter("accounts", account_service.export_accounts)
personal_data.register_erasure_guard("open balance", account_service.erasure_guard)
personal_data.register_eraser("accounts", account_service.erase_accounts, order=100)

"""How the customer domain is put together: TMF629 (customer) and the customer service over it, built once per
process by the composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.customer import events
from openbss.customer.codecs import customer_codec, customer_search
from openbss.customer.models import Customer
from openbss.customer.schemas import SPEC_FILE
from openbss.customer.service import CustomerRules, CustomerService
from openbss.party.service import PartyService
from openbss.platform.personal_data import PersonalDataCodec, PersonalDataRegistry, configured
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.settings import Settings


@dataclass(frozen=True)
class CustomerServices:
    service: CustomerService
    api: TmfApi
    resources: dict[str, ResourceService]  # customer

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api]


def build(settings: Settings, parties: PartyService, personal_data: PersonalDataRegistry) -> CustomerServices:
    codec = configured(customer_codec, settings)
    assert isinstance(codec, PersonalDataCodec)
    api = TmfApi(
        name=events.API, title="TMF629 Customer Management", spec_file=SPEC_FILE, permission="customer",
        resources=[
            TmfResource(path="customer", type="Customer", table=Customer, hooks=CustomerRules(parties),
                        state_field="status", initial_state="initialized", owner_paths=("engagedParty.id",),
                        codec=codec, searchable=customer_search, customer_operations=frozenset({"list", "get"}),
                        update_definition="OpenBSSCustomer_Update"),
        ],
    )
    resources = resource_services(api)
    service = CustomerService(resources["customer"], parties, personal_data)
    return CustomerServices(service=service, api=api, resources=resources)

"""How the party domain is put together: its TMF APIs (TMF632 parties, TMF669 party roles) and the services
built over them, once per process, by the composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.party import events
from openbss.party.codecs import (
    individual_codec,
    individual_search,
    organization_codec,
    organization_search,
    party_role_codec,
    party_role_search,
)
from openbss.party.models import Individual, Organization, PartyRole
from openbss.party.schemas import ROLE_SPEC_FILE, SPEC_FILE
from openbss.party.service import IndividualRules, OrganizationRules, PartyRoleRules, PartyService
from openbss.platform.personal_data import configured
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.settings import Settings


@dataclass(frozen=True)
class PartyServices:
    service: PartyService
    party_api: TmfApi
    role_api: TmfApi
    parties: dict[str, ResourceService]  # individual, organization
    roles: dict[str, ResourceService]  # partyRole

    @property
    def apis(self) -> list[TmfApi]:
        return [self.party_api, self.role_api]


def build(settings: Settings) -> PartyServices:
    party_api = TmfApi(
        name=events.API, title="TMF632 Party Management", spec_file=SPEC_FILE, permission="party",
        resources=[
            TmfResource(path="individual", type="Individual", table=Individual, hooks=IndividualRules(),
                        state_field="status", initial_state="initialized", owner_paths=("id",),
                        codec=configured(individual_codec, settings), searchable=individual_search),
            TmfResource(path="organization", type="Organization", table=Organization, hooks=OrganizationRules(),
                        state_field="status", initial_state="initialized", owner_paths=("relatedParty.id",),
                        codec=configured(organization_codec, settings), searchable=organization_search),
        ],
    )
    parties = resource_services(party_api)
    service = PartyService(parties["individual"], parties["organization"])
    role_api = TmfApi(
        name=events.ROLE_API, title="TMF669 Party Role Management", spec_file=ROLE_SPEC_FILE,
        permission="party",
        resources=[
            TmfResource(path="partyRole", type="PartyRole", table=PartyRole, hooks=PartyRoleRules(service),
                        state_field="status", initial_state="initialized", owner_paths=("engagedParty.id",),
                        codec=configured(party_role_codec, settings), searchable=party_role_search),
        ],
    )
    roles = resource_services(role_api)
    service.roles = roles["partyRole"]
    return PartyServices(service=service, party_api=party_api, role_api=role_api, parties=parties, roles=roles)

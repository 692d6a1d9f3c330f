"""TMF632 Party Management at /tmf-api/party/v4/ (individual, organization) and TMF669 Party Role Management at
/tmf-api/partyRoleManagement/v4/ (partyRole), with hubs and events. Personal attributes are encrypted at rest."""

from __future__ import annotations

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
from openbss.platform import personal_data
from openbss.platform.tmf.resource import TmfApi, TmfResource, build_router

party_api = TmfApi(
    name="party",
    title="TMF632 Party Management",
    spec_file=SPEC_FILE,
    permission="party",
    resources=[
        TmfResource(path="individual", type="Individual", table=Individual, hooks=IndividualRules(),
                    state_field="status", initial_state="initialized", owner_paths=("id",),
                    codec=individual_codec, searchable=individual_search),
        TmfResource(path="organization", type="Organization", table=Organization, hooks=OrganizationRules(),
                    state_field="status", initial_state="initialized", owner_paths=("relatedParty.id",),
                    codec=organization_codec, searchable=organization_search),
    ],
)

router, services = build_router(party_api)
party_service = PartyService(services)

party_role_api = TmfApi(
    name="partyRoleManagement",
    title="TMF669 Party Role Management",
    spec_file=ROLE_SPEC_FILE,
    permission="party",
    resources=[
        TmfResource(path="partyRole", type="PartyRole", table=PartyRole, hooks=PartyRoleRules(party_service),
                    state_field="status", initial_state="initialized", owner_paths=("engagedParty.id",),
                    codec=party_role_codec, searchable=party_role_search),
    ],
)
role_router, role_services = build_router(party_role_api)
party_service.bind_roles(role_services)

personal_data.register_exporter("party", party_service.export_party)
personal_data.register_exporter("partyRoles", party_service.export_roles)
personal_data.register_eraser("party", party_service.erase_party, order=900)
personal_data.register_eraser("partyRoles", party_service.erase_roles, order=800)

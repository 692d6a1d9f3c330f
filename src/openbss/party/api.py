"""TMF632 Party Management at /tmf-api/party/v4/: individual and organization, with hub and events."""

from __future__ import annotations

from openbss.party.models import Individual, Organization
from openbss.party.schemas import SPEC_FILE
from openbss.party.service import IndividualRules, OrganizationRules, PartyService
from openbss.platform.tmf.resource import TmfApi, TmfResource, build_router

party_api = TmfApi(
    name="party",
    title="TMF632 Party Management",
    spec_file=SPEC_FILE,
    permission="party",
    resources=[
        TmfResource(path="individual", type="Individual", table=Individual, hooks=IndividualRules(),
                    state_field="status", initial_state="initialized", owner_paths=("id",)),
        TmfResource(path="organization", type="Organization", table=Organization, hooks=OrganizationRules(),
                    state_field="status", initial_state="initialized", owner_paths=("relatedParty.id",)),
    ],
)

router, services = build_router(party_api)
party_service = PartyService(services)

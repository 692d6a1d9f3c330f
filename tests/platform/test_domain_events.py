"""Each domain's ``events.py`` declares what its APIs emit: the names another domain subscribes to are the ones the
composition root's APIs really announce (a renamed resource or API breaks this test, not a subscriber in
production)."""

from __future__ import annotations

from typing import Any

from openbss.account import events as account
from openbss.assurance import events as assurance
from openbss.catalog import events as catalog
from openbss.customer import events as customer
from openbss.ordering import events as ordering
from openbss.party import events as party
from openbss.payments import events as payments
from openbss.provisioning import events as provisioning


def test_declared_event_types_are_what_the_apis_emit(services: Any) -> None:
    apis = {api.name: api for api in services.apis}
    declared: dict[str, tuple[str, ...]] = {
        party.API: party.EVENT_TYPES, party.ROLE_API: party.ROLE_EVENT_TYPES,
        customer.API: customer.EVENT_TYPES, account.API: account.EVENT_TYPES,
        provisioning.API: provisioning.EVENT_TYPES, **catalog.EVENT_TYPES, **ordering.EVENT_TYPES,
        **payments.EVENT_TYPES,
        assurance.API: assurance.EVENT_TYPES,
    }
    for name, types in declared.items():
        assert name in apis, f"events.py names an API the root does not build: {name}"
        assert set(types) == apis[name].event_types(), name
    assert provisioning.ITEM_API not in apis  # the backbone-only event of provisioning has no hub

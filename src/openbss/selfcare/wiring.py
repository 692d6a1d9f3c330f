"""How the self-care portal is put together: the OpenBSS services it reads and writes for residential and SME
customers (corporate ones live in the corporate directory), handed over once per process by the composition root
(``openbss.services``); the portal itself (identity providers, caches, archive) is built on first use
(``portal.build_portal``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openbss.account.service import AccountService
from openbss.customer.service import CustomerService
from openbss.inventory.service import InventoryService
from openbss.party.service import PartyService


@dataclass(frozen=True)
class SelfcareServices:
    customers: CustomerService
    parties: PartyService
    accounts: AccountService
    inventory: InventoryService
    #: payments' service (``PaymentService.pay``): the pay button of an overdue notice charges the account's
    #: default payment method through it (the sandbox gateway in the demo and the tests)
    payments: Any = None

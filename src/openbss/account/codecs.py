"""Personal data in accounts (encrypted at rest): the account name (usually the holder's), the names of related
parties and the account contacts. The name stays searchable by exact value (``?name=``) through its blind-index
digest, like every other first-level attribute (the kit's default declaration)."""

from __future__ import annotations

from openbss.account import models
from openbss.platform.personal_data import PersonalDataCodec

PERSONAL = ("name", "relatedParty.name", "contact.contactName", "contact.contactMedium.characteristic",
            "contact.relatedParty.name")

billing_account_codec = PersonalDataCodec("BillingAccount", models.BillingAccount, personal=PERSONAL)
party_account_codec = PersonalDataCodec("PartyAccount", models.PartyAccount, personal=PERSONAL)
settlement_account_codec = PersonalDataCodec("SettlementAccount", models.SettlementAccount, personal=PERSONAL)
financial_account_codec = PersonalDataCodec("FinancialAccount", models.FinancialAccount, personal=PERSONAL)

"""Tables of the account domain."""

from __future__ import annotations

from openbss.platform.db import Base
from openbss.platform.tmf.resource import TmfDocument


class BillingAccount(TmfDocument, Base):
    __tablename__ = "billing_account"


class PartyAccount(TmfDocument, Base):
    __tablename__ = "party_account"


class SettlementAccount(TmfDocument, Base):
    __tablename__ = "settlement_account"


class FinancialAccount(TmfDocument, Base):
    __tablename__ = "financial_account"


class BillingCycleSpecification(TmfDocument, Base):
    __tablename__ = "billing_cycle_specification"


class BillFormat(TmfDocument, Base):
    __tablename__ = "bill_format"


class BillPresentationMedia(TmfDocument, Base):
    __tablename__ = "bill_presentation_media"

"""Tables of the party domain."""

from __future__ import annotations

from openbss.platform.db import Base
from openbss.platform.tmf.resource import TmfDocument


class Individual(TmfDocument, Base):
    __tablename__ = "party_individual"


class Organization(TmfDocument, Base):
    __tablename__ = "party_organization"

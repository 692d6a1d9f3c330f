"""Tables of the party domain. Personal attributes are stored encrypted (see ``codecs.py``)."""

from __future__ import annotations

from openbss.platform.db import Base
from openbss.platform.tmf.resource import TmfDocument


class Individual(TmfDocument, Base):
    __tablename__ = "party_individual"


class Organization(TmfDocument, Base):
    __tablename__ = "party_organization"


class PartyRole(TmfDocument, Base):
    __tablename__ = "party_role"

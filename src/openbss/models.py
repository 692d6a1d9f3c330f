"""Every table of every domain, for migrations (Alembic reads ``Base.metadata`` from here)."""

from __future__ import annotations

import openbss.party.models
import openbss.platform.audit
import openbss.platform.events.consumers
import openbss.platform.events.outbox
import openbss.platform.tenancy
import openbss.platform.tmf.hub  # noqa: F401
from openbss.platform.db import Base

metadata = Base.metadata

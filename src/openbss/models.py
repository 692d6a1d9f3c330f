"""Every table of every domain, for migrations (Alembic reads ``Base.metadata`` from here)."""

from __future__ import annotations

import openbss.account.models
import openbss.assurance.models
import openbss.billing.models
import openbss.care.models
import openbss.catalog.models
import openbss.charging.models
import openbss.collections.models
import openbss.customer.models
import openbss.inventory.models
import openbss.ordering.models
import openbss.party.models
import openbss.payments.models
import openbss.platform.audit
import openbss.platform.crypto
import openbss.platform.events.consumers
import openbss.platform.events.outbox
import openbss.platform.messaging
import openbss.platform.personal_data
import openbss.platform.tenancy
import openbss.platform.tmf.hub
import openbss.platform.tmf.search
import openbss.provisioning.models
import openbss.rating.models
import openbss.selfcare.models  # noqa: F401
from openbss.platform.db import Base

metadata = Base.metadata

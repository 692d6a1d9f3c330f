"""Events the self-care portal emits on the event backbone (not a TMF API: no hub).

``SelfcareProfileUpdateEvent`` (api ``selfcare``): a signed-in customer changed their own profile (phone,
address, preferences, or asked to change their e-mail address). Payload ``{"profileUpdate": {"id", "customer":
{"id"}, "party": {"id", "@referredType"}, "changed": [...], "updateDate"}}``. Customer care records it as an
interaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.platform.db import utcnow
from openbss.platform.events.outbox import emit
from openbss.platform.tmf.spec import format_datetime

API = "selfcare"
PROFILE_UPDATE_EVENT = "SelfcareProfileUpdateEvent"
PROFILE_UPDATE_KEY = "profileUpdate"


async def announce_profile_update(session: AsyncSession, customer_id: str, party_id: str, changed: list[str],
                                  ) -> None:
    """In the transaction of the change."""
    await emit(session, api=API, event_type=PROFILE_UPDATE_EVENT, resource_key=PROFILE_UPDATE_KEY, resource={
        "id": str(uuid.uuid4()), "customer": {"id": customer_id},
        "party": {"id": party_id, "@referredType": "Individual"}, "changed": changed,
        "updateDate": format_datetime(utcnow())}, resource_type="SelfcareProfileUpdate")

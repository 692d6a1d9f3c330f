"""The portal's housekeeping, run by the worker: finished sign-in attempts and old sessions are deleted, and
archived documents past ``selfcare_archive_retention_days`` are removed (never, with the default 0)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from openbss.platform.db import Database
from openbss.selfcare.portal import build_portal
from openbss.selfcare.signin import purge_expired
from openbss.selfcare.usage import purge_expired_documents
from openbss.selfcare.wiring import SelfcareServices
from openbss.settings import Settings

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 3600.0


async def housekeeping(settings: Settings, db: Database, openbss: SelfcareServices, stop: asyncio.Event,
                       interval: float = INTERVAL_SECONDS) -> None:
    portal = await build_portal(settings, db, openbss)
    try:
        while not stop.is_set():
            try:
                removed = await purge_expired(portal)
                documents = await purge_expired_documents(portal)
                if removed or documents:
                    log.info("self-care housekeeping: %d sign-in attempts/sessions, %d documents removed",
                             removed, documents)
            except Exception:
                log.exception("self-care housekeeping failed; retrying at the next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await portal.close()

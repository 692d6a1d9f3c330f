"""What a process shares between requests: the database pool, the token verifier, the tenant directory, the
event consumers and the bus. Built once by the app factory or the worker, reached through ``request.app``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request

from openbss.platform.auth import Principal, TokenVerifier, bearer_token
from openbss.platform.db import Database
from openbss.platform.errors import Unauthorized
from openbss.platform.events.bus import EventBus, InProcessBus, NatsBus
from openbss.platform.events.consumers import ConsumerRegistry
from openbss.platform.events.failures import RetryPolicy
from openbss.platform.tenancy import TenantDirectory
from openbss.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    verifier: TokenVerifier
    tenants: TenantDirectory
    consumers: ConsumerRegistry = field(default_factory=ConsumerRegistry)
    bus: EventBus | None = None
    jobs: Any = None  # the procrastinate App, in processes that defer or run jobs
    #: long-running loops of the domains that the worker runs next to the relay (e.g. the order orchestrator)
    background_loops: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)
    #: the domains' job blueprints, added to the job queue app as (namespace, procrastinate Blueprint)
    job_blueprints: list[tuple[str, Any]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> Runtime:
        db = db or Database.from_settings(settings)
        rt = cls(settings=settings, db=db, verifier=TokenVerifier(settings), tenants=TenantDirectory(db))
        return rt

    def make_bus(self) -> EventBus:
        if self.bus is None:
            s = self.settings
            policy = RetryPolicy.from_settings(s)
            if s.nats_url:
                self.bus = NatsBus(self.db, self.consumers, s.nats_url, s.nats_stream,
                                   ack_wait_seconds=s.nats_ack_wait_seconds,
                                   max_age_seconds=s.outbox_retention_days * 86400.0, policy=policy,
                                   event_max_bytes=s.event_max_bytes)
            else:
                self.bus = InProcessBus(self.db, self.consumers, policy)
        return self.bus

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
        await self.db.dispose()


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the verified principal of the request (401 when absent or invalid)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    rt = runtime(request)
    principal = await rt.verifier.verify(bearer_token(request))
    if not await rt.tenants.is_active(principal.tenant_id):
        raise Unauthorized(f"tenant '{principal.tenant_id}' does not exist or is not active", code="UNKNOWN_TENANT")
    request.state.principal = principal
    return principal


def permitted(scope: str, action: str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency: the principal of the request, holding ``scope:action`` (403 otherwise). Checked before
    the request's body is validated, so a caller without the permission learns nothing from validation errors."""
    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        principal.require(scope, action)
        return principal

    return dependency

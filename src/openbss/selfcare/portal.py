"""What the portal keeps per process: its settings, the identity providers, the routes to customer data, the
charging client, the document archive, the rate limiter and the short-lived caches (``selfcare_cache_seconds``,
the stated freshness bound of sessions, balances and profiles)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request

from openbss.platform.auth import Principal, permissions_for
from openbss.platform.db import Database
from openbss.platform.storage import ObjectStore, object_store_from_url
from openbss.selfcare.charging_client import ChargingClient
from openbss.selfcare.directory import Directories
from openbss.selfcare.oidc import OidcProviders, ProviderConfig
from openbss.selfcare.ratelimit import rate_limiter
from openbss.selfcare.wiring import SelfcareServices
from openbss.settings import Settings


@dataclass(frozen=True)
class Cached:
    """A computed answer and its JSON encoding (encoded once, served many times)."""

    value: Any
    body: bytes

    @classmethod
    def of(cls, value: Any) -> Cached:
        return cls(value, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


FINAL_DOCUMENT_CACHE_SECONDS = 60.0


class _Recompute:
    """What waiters get when the request computing a value was cancelled: they compute it themselves."""


class TtlCache:
    """A bounded per-process cache whose entries live at most ``ttl`` seconds. Concurrent misses of one key share
    one computation (no stampede on a cold or just-expired entry). ``drop`` wins over a computation that was under
    way: its result is handed to the requests that were waiting for it, but not kept, and later requests compute
    again (so an update or a sign-out in this process takes effect at once)."""

    def __init__(self, ttl: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Any, tuple[float, Any]] = {}
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._generation: dict[Any, int] = {}

    async def get_or_compute(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            found = self.get(key)
            if found is not None:
                return found
            pending = self._pending.get(key)
            if pending is None:
                return await self._compute(key, compute)
            value = await asyncio.shield(pending)
            if not isinstance(value, _Recompute):
                return value

    async def _compute(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        generation = self._generation.get(key, 0)
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.set_result(_Recompute())
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must see "never retrieved"
            raise
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]
        if self._generation.get(key, 0) == generation:
            self.put(key, value)
        future.set_result(value)
        return value

    def get(self, key: Any) -> Any | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        if self.ttl <= 0:
            return
        if len(self._data) >= self.max_entries:
            now = time.monotonic()
            self._data = {k: v for k, v in self._data.items() if v[0] >= now}
            if len(self._data) >= self.max_entries:
                self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def drop(self, key: Any) -> None:
        self._data.pop(key, None)
        self._pending.pop(key, None)
        if len(self._generation) >= self.max_entries:
            self._generation.clear()
        self._generation[key] = self._generation.get(key, 0) + 1


@dataclass
class Portal:
    settings: Settings
    db: Database
    tenant: str
    providers: OidcProviders
    charging: ChargingClient
    directories: Directories
    archive: ObjectStore
    limiter: Any  # openbss.selfcare.ratelimit: ProcessRateLimiter or limits' FixedWindowRateLimiter
    sessions: TtlCache
    balances: TtlCache
    profiles: TtlCache
    usage: TtlCache  # a month's usage page (JSON), per party and month
    documents: TtlCache  # final (closed-month) PDFs: they never change
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    corporate: Any = None
    archive_ready: bool = False

    @property
    def public_url(self) -> str:
        return (self.settings.selfcare_public_url or self.settings.public_url).rstrip("/")

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/selfcare/auth/callback"

    def system_principal(self) -> Principal:
        return Principal("selfcare-portal", self.tenant, ("system",), permissions=permissions_for(("system",)))

    def customer_principal(self, identity_id: str, party_id: str) -> Principal:
        """The principal a signed-in customer acts as: the ``customer`` role bound to its own party, so every
        OpenBSS query it makes is restricted to that party by the repositories too."""
        return Principal(f"selfcare:{identity_id}", self.tenant, ("customer",), party_id=party_id,
                         permissions=permissions_for(("customer",)))

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        if self.corporate is not None:
            await self.corporate.close()


async def build_portal(settings: Settings, db: Database, openbss: SelfcareServices, *,
                       charging_transport: httpx.AsyncBaseTransport | None = None) -> Portal:
    tenant = settings.selfcare_tenant
    idp_http = httpx.AsyncClient(timeout=10.0)
    charging_http = httpx.AsyncClient(transport=charging_transport, timeout=settings.selfcare_charging_timeout_seconds,
                                      limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
    charging = ChargingClient(settings, tenant, charging_http)
    corporate = None
    if settings.selfcare_corporate_directory_url:
        from openbss.selfcare.corporate import CorporateDirectory

        # connects on first use: a directory that is down affects corporate customers only
        corporate = CorporateDirectory.from_url(settings.selfcare_corporate_directory_url)
    archive_url = settings.selfcare_archive_url or str((settings.data_dir / "archive").resolve())
    archive = object_store_from_url(archive_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                                    access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                                    object_lock=settings.s3_object_lock)
    ttl = settings.selfcare_cache_seconds
    return Portal(
        settings=settings, db=db, tenant=tenant,
        providers=OidcProviders([ProviderConfig.parse(p) for p in settings.selfcare_identity_providers], idp_http),
        charging=charging,
        directories=Directories(tenant, charging, corporate, openbss,
                                require_verified_email=settings.selfcare_link_requires_verified_email),
        archive=archive,
        limiter=rate_limiter(settings.selfcare_rate_limit_storage), sessions=TtlCache(ttl), balances=TtlCache(ttl),
        profiles=TtlCache(ttl), usage=TtlCache(ttl), documents=TtlCache(FINAL_DOCUMENT_CACHE_SECONDS, 200),
        clients=[idp_http, charging_http], corporate=corporate)


_lock = asyncio.Lock()


async def portal(request: Request) -> Portal:
    """FastAPI dependency: the app's portal, built on first use."""
    found: Portal | None = getattr(request.app.state, "selfcare", None)
    if found is not None:
        return found
    async with _lock:
        found = getattr(request.app.state, "selfcare", None)
        if found is None:
            settings: Settings = request.app.state.settings
            transport = getattr(request.app.state, "selfcare_charging_transport", None)
            found = await build_portal(settings, request.app.state.runtime.db, request.app.state.services.selfcare,
                                       charging_transport=transport)
            request.app.state.selfcare = found
    return found


async def close_portal(app: Any) -> None:
    found: Portal | None = getattr(app.state, "selfcare", None)
    if found is not None:
        app.state.selfcare = None
        await found.close()

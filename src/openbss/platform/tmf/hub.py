"""TMF notification hubs: subscriptions (``POST /tmf-api/<apiName>/v4/hub``, ``DELETE .../hub/{id}``: each API has
its own hub under its base path) and delivery of events to them. Callbacks must reach public addresses unless the
operator allows a network (``platform.callbacks``), checked at registration and at every delivery.

A subscription's ``query`` uses the list-filter syntax over the event: ``eventType=IndividualCreateEvent``,
``event.individual.status=validated``. The ``hub-fanout`` consumer matches each committed event against the
tenant's subscriptions and records one delivery per match; a background job POSTs it to
``{callback}/listener/{eventTypeCamel}``, signed with HMAC-SHA256, retried with exponential backoff, every attempt
recorded.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.callbacks import CallbackRefused, IPNetwork, check_callback, parse_networks
from openbss.platform.db import Base, Database, TenantScoped, utcnow
from openbss.platform.errors import BadRequest, Forbidden, NotFound
from openbss.platform.events.consumers import Consumer, Event
from openbss.platform.observability import HUB_DELIVERIES
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.query import Filter, parse_filter_pairs
from openbss.platform.tmf.references import withheld
from openbss.platform.tmf.resource import TmfApi, TmfJSONResponse, require_json_body, unit_of_work
from openbss.platform.tmf.spec import AttributeType

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OpenBSS-Signature"


class HubSubscription(TenantScoped, Base):
    __tablename__ = "hub_subscription"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api: Mapped[str] = mapped_column(String(100), index=True)
    callback: Mapped[str] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HubDelivery(TenantScoped, Base):
    __tablename__ = "hub_delivery"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("hub_subscription.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(150))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # unique (subscription, event): a redelivered event never notifies twice
        UniqueConstraint("subscription_id", "event_id"),
        {"comment": "one notification of one event to one subscriber"},
    )


class HubDeliveryAttempt(TenantScoped, Base):
    __tablename__ = "hub_delivery_attempt"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("hub_delivery.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


# --- signing ------------------------------------------------------------------------------------------------
def tenant_hub_key(master: str, tenant_id: str) -> bytes:
    """The key a tenant's subscribers verify signatures with (derived from the installation's hub secret)."""
    return hmac.new(master.encode(), f"hub:{tenant_id}".encode(), hashlib.sha256).digest()


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(key: bytes, header: str, body: bytes, tolerance_seconds: int = 300) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(key, ts, body), header)


# --- subscription query -------------------------------------------------------------------------------------
def parse_hub_query(api: TmfApi, query: str | None) -> list[Filter]:
    if not query:
        return []
    event_types = sorted(api.event_types())
    filters: list[Filter] = []
    for key, raw in parse_qsl(query.lstrip("?"), keep_blank_values=True):
        base = key.rsplit(".", 1)[0] if key.rsplit(".", 1)[-1] in ("gt", "gte", "lt", "lte", "eq") else key
        if base == "eventType":
            bad = [v for v in raw.split(",") if v not in event_types]
            if bad:
                raise BadRequest(f"query: unknown eventType '{bad[0]}'; this API emits {', '.join(event_types)}",
                                 code="INVALID_QUERY")
            filters += parse_filter_pairs([(key, raw)], api.spec, "", {"eventType": AttributeType("string")})
            continue
        parts = base.split(".")
        if len(parts) < 3 or parts[0] != "event":
            raise BadRequest(f"query: unknown attribute '{base}' (use eventType or event.<resource>.<attribute>)",
                             code="INVALID_QUERY")
        resource = next((r for r in api.resources if r.event_key == parts[1]), None)
        if resource is None:
            raise BadRequest(f"query: '{parts[1]}' is not a resource of this API", code="INVALID_QUERY")
        inner = [(key[len(f"event.{parts[1]}."):], raw)]
        if withheld(".".join(parts[2:]), resource.event_withheld_paths()):
            raise BadRequest(f"query: '{base}' is personal data, which events do not carry (the subscriber reads the "
                             "resource by its href)", code="INVALID_QUERY")
        for f in parse_filter_pairs(inner, api.spec, resource.read_definition or resource.type):
            filters.append(Filter(f"event.{parts[1]}.{f.path}", f.op, f.values, f.type))
    return filters


class EventSubscriptionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    callback: str = Field(..., min_length=1, max_length=2000, description="The callback being registered.")
    query: str | None = Field(None, max_length=4000, description="Additional data to be passed")

    @field_validator("callback", "query")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("NUL characters are not allowed")
        return value


def _check_callback(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(f"callback '{url}' must be an absolute http(s) URL", code="INVALID_CALLBACK")


async def _check_callback_address(url: str, allow: Sequence[IPNetwork]) -> None:
    try:
        await check_callback(url, allow)
    except CallbackRefused as exc:
        raise BadRequest(f"callback '{url}': {exc}", code="CALLBACK_NOT_ALLOWED") from None


def render_subscription(sub: HubSubscription) -> dict[str, Any]:
    out = {"id": sub.id, "callback": sub.callback}
    if sub.query is not None:
        out["query"] = sub.query
    return out


def add_hub_routes(router: APIRouter, api: TmfApi) -> None:
    def _authorize(principal: Principal) -> None:
        # subscribing needs the right to manage hubs and to read what the API's events carry
        if principal.is_customer:
            raise Forbidden("customers cannot subscribe to notification hubs", code="CUSTOMER_FORBIDDEN")
        principal.require("hub", WRITE)
        principal.require(api.permission, READ)

    async def authorized(principal: Principal = Depends(authenticate)) -> Principal:
        _authorize(principal)  # before the body is validated
        return principal

    async def register_listener(request: Request, body: EventSubscriptionInput = Body(...),
                                principal: Principal = Depends(authorized)) -> Response:
        require_json_body(request)
        _check_callback(body.callback)
        parse_hub_query(api, body.query)
        await _check_callback_address(body.callback, parse_networks(runtime(request).settings.hub_callback_allow))
        async with unit_of_work(request, principal) as ctx:
            sub = HubSubscription(id=str(uuid.uuid4()), api=api.name, callback=body.callback,
                                  query=body.query, created_by=principal.subject)
            ctx.session.add(sub)
            await ctx.session.flush()
            out = render_subscription(sub)
        location = f"{ctx.base_url}{api.base_path}/hub/{sub.id}"
        return TmfJSONResponse(out, status_code=201, headers={"Location": location})

    async def unregister_listener(request: Request, id: str,
                                  principal: Principal = Depends(authorized)) -> Response:
        async with unit_of_work(request, principal) as ctx:
            sub = await ctx.session.scalar(
                select(HubSubscription).where(HubSubscription.id == id, HubSubscription.api == api.name))
            if sub is None:
                raise NotFound(f"hub subscription '{id}' not found")
            await ctx.session.delete(sub)
        return Response(status_code=204)

    async def get_listener(request: Request, id: str,
                           principal: Principal = Depends(authorized)) -> Response:
        async with unit_of_work(request, principal) as ctx:
            sub = await ctx.session.scalar(
                select(HubSubscription).where(HubSubscription.id == id, HubSubscription.api == api.name))
            if sub is None:
                raise NotFound(f"hub subscription '{id}' not found")
            counts = dict((await ctx.session.execute(
                select(HubDelivery.status, func.count()).where(HubDelivery.subscription_id == id)
                .group_by(HubDelivery.status))).tuples().all())
            out = render_subscription(sub) | {"deliveries": {k: int(v) for k, v in counts.items()}}
        return TmfJSONResponse(out)

    router.add_api_route("/hub", register_listener, methods=["POST"], status_code=201, tags=[api.title],
                         name=f"{api.name}RegisterListener", summary="Register a listener",
                         response_class=TmfJSONResponse)
    router.add_api_route("/hub/{id}", unregister_listener, methods=["DELETE"], status_code=204,
                         tags=[api.title], name=f"{api.name}UnregisterListener", summary="Unregister a listener")
    router.add_api_route("/hub/{id}", get_listener, methods=["GET"], tags=[api.title],
                         name=f"{api.name}GetListener", summary="A listener and its delivery counts",
                         response_class=TmfJSONResponse)


# --- fan-out and delivery --------------------------------------------------------------------------------
def listener_url(callback: str, event_type: str) -> str:
    return f"{callback.rstrip('/')}/listener/{event_type[:1].lower()}{event_type[1:]}"


class UnknownApi(RuntimeError):
    """The process evaluating a subscription's query does not know the event's API (not built by its composition
    root)."""


async def fan_out(session: AsyncSession, event: Event, apis: Mapping[str, TmfApi]) -> None:
    api = apis.get(event.api)
    subs = (await session.execute(select(HubSubscription).where(HubSubscription.api == event.api))).scalars().all()
    if not subs:
        return
    from openbss.platform.db import json_dumps

    payload = json_dumps(event.envelope)
    for sub in subs:
        if sub.query and api is None:
            # Never deliver unfiltered: fail, so the event is retried once the process loads the domain APIs.
            raise UnknownApi(f"API '{event.api}' is not loaded in this process; cannot evaluate hub queries")
        try:
            filters = parse_hub_query(api, sub.query) if sub.query and api is not None else []
        except BadRequest:  # accepted when registered, invalid now (the API changed): skip, loudly
            log.warning("hub subscription %s has an invalid query; skipped", sub.id)
            continue
        if not all(f.matches(event.envelope) for f in filters):
            continue
        await session.execute(
            insert(HubDelivery).values(
                subscription_id=sub.id, event_id=uuid.UUID(event.event_id), event_type=event.event_type,
                url=listener_url(sub.callback, event.event_type), payload=payload,
            ).on_conflict_do_nothing()
        )


async def pending_deliveries(db: Database, tenant_id: str | None, event_id: str | None = None,
                             older_than_seconds: float | None = None) -> list[int]:
    async with db.transaction(tenant_id, system=tenant_id is None) as session:
        stmt = select(HubDelivery.id).where(HubDelivery.status == "pending")
        if event_id:
            stmt = stmt.where(HubDelivery.event_id == uuid.UUID(event_id))
        if older_than_seconds is not None:
            stmt = stmt.where(HubDelivery.created_at < func.now() - timedelta(seconds=older_than_seconds))
        return list((await session.execute(stmt.limit(1000))).scalars().all())


class DeliveryFailed(Exception):
    """Raised to let the job queue retry the delivery with backoff."""


async def attempt_delivery(db: Database, delivery_id: int, *, hub_secret: str, http_timeout: float,
                           max_attempts: int, client: httpx.AsyncClient | None = None,
                           allow: Sequence[IPNetwork] = ()) -> str:
    """One attempt to deliver a notification. Returns the delivery's status afterwards; raises ``DeliveryFailed``
    when it should be retried. The HTTP call happens outside any database transaction.

    The callback's host is resolved and checked against the address rule (``platform.callbacks``; ``allow``: the
    networks the operator allows) at every attempt, and the request goes to the checked address: a callback
    whose host now resolves to a refused address fails at once, without retries."""
    async with db.transaction(None, system=True) as session:
        delivery = await session.get(HubDelivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return delivery.status if delivery else "gone"
        tenant, url, body = delivery.tenant_id, delivery.url, delivery.payload.encode()
        attempt = delivery.attempts + 1
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(tenant_hub_key(hub_secret, tenant), int(time.time()), body),
        "X-OpenBSS-Delivery": str(delivery_id),
    }
    refused = False
    try:
        pinned, host, extensions = (await check_callback(url, allow)).pinned()
        headers.update(host)
        if client is None:
            async with httpx.AsyncClient(timeout=http_timeout) as own:
                resp = await own.post(pinned, content=body, headers=headers, extensions=extensions)
        else:
            resp = await client.post(pinned, content=body, headers=headers, timeout=http_timeout,
                                     extensions=extensions)
        status_code = resp.status_code
        if not 200 <= resp.status_code < 300:
            error = f"HTTP {resp.status_code}"
    except CallbackRefused as exc:
        refused = True
        error = f"refused: {exc}"[:500]
        log.warning("hub delivery %s refused: %s", delivery_id, exc)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration = int((time.perf_counter() - started) * 1000)
    ok = error is None
    final = "delivered" if ok else ("failed" if refused or attempt >= max_attempts else "pending")
    async with db.transaction(tenant) as session:
        session.add(HubDeliveryAttempt(delivery_id=delivery_id, attempt=attempt, status_code=status_code,
                                       error=error, duration_ms=duration))
        await session.execute(
            update(HubDelivery).where(HubDelivery.id == delivery_id).values(
                attempts=attempt, status=final, last_status_code=status_code, last_error=error,
                delivered_at=utcnow() if ok else None,
            )
        )
    HUB_DELIVERIES.labels("delivered" if ok else "refused" if refused else
                          ("failed" if final == "failed" else "retry")).inc()
    if final == "pending":
        raise DeliveryFailed(f"delivery {delivery_id} attempt {attempt} failed: {error}")
    return final


def hub_consumer(apis: Iterable[TmfApi], after_commit: Any = None) -> Consumer:
    """The consumer recording the notifications of every event to its tenant's matching subscriptions; ``apis``:
    every TMF API of the process (a subscription's query is evaluated against its API's specification)."""
    by_name = {api.name: api for api in apis}

    async def handle(session: AsyncSession, event: Event) -> None:
        await fan_out(session, event, by_name)

    return Consumer(name="hub-fanout", handler=handle, after_commit=after_commit)


__all__ = ["HubDelivery", "HubDeliveryAttempt", "HubSubscription", "attempt_delivery", "hub_consumer",
           "runtime", "verify_signature"]

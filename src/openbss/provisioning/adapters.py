"""Network-element adapters behind one interface, and the built-in simulators.

An adapter executes one operation on one element for one subscriber, with an idempotency key: calling again with
the same key must not apply the change twice (real HSS/PCRF/AAA/OCS provisioning interfaces are made idempotent by
the adapter — e.g. read-before-write keyed on the subscriber — the simulators do it by the key).

Elements: ``hss`` (HSS/HLR subscriber), ``pcrf`` (PCRF/PCF policy), ``aaa`` (AAA/RADIUS broadband profile),
``ocs`` (online charging account). Operation verbs: create, update, suspend, resume, delete (``createSubscriber``,
``deletePolicy``, ...). An answer to a change of an existing subscriber may carry ``previous``: ``{"status",
"profile"}`` as the element had them before the call, which the orchestrator uses to undo the change.

The simulators keep each element's state and a journal of every call in the database (so that a test, or a demo,
sees what the network saw, across worker processes), and take fault injection per element from the settings
(``OPENBSS_SIMULATOR_FAULTS``) or per tenant from ``PUT /api/provisioning/v1/simulator/{element}``:
``latencyMs`` (before the element acts), ``replyLatencyMs`` (after it acted: a slow or lost answer),
``errorRate`` (transient errors, retried), ``rejectImsi`` / ``rejectSubscriber`` (permanent
rejections), ``timeoutRate``.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from openbss.platform.db import Database
from openbss.provisioning.models import ElementState, NetworkCall, SimulatorConfig
from openbss.settings import Settings

ELEMENTS = ("hss", "pcrf", "aaa", "ocs")
VERBS = ("create", "update", "suspend", "resume", "delete")
FAULT_KEYS = {"latencyMs", "replyLatencyMs", "errorRate", "timeoutRate", "rejectImsi", "rejectSubscriber"}


class AdapterError(Exception):
    """A call failed. ``retryable``: a transient fault (retried with backoff); otherwise a rejection (the step fails
    at once and the order item is compensated)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class NetworkAdapter(Protocol):
    element: str

    async def call(self, tenant_id: str, operation: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
        """Execute ``operation`` (e.g. ``createSubscriber``) with ``params``; return the element's answer."""
        ...


def verb_of(operation: str) -> str:
    m = re.match(r"^(create|update|suspend|resume|delete)[A-Z]", operation)
    if not m:
        raise ValueError(f"unknown network operation '{operation}'")
    return m.group(1)


SUBSCRIBER_PARAM = {"hss": "imsi", "pcrf": "msisdn", "ocs": "msisdn", "aaa": "ontSerialNumber"}


def check_faults(config: dict[str, Any]) -> dict[str, Any]:
    from openbss.provisioning.errors import InvalidSimulatorConfig

    unknown = set(config) - FAULT_KEYS
    if unknown:
        raise InvalidSimulatorConfig(f"unknown fault setting(s) {', '.join(sorted(unknown))}; "
                                     f"use {', '.join(sorted(FAULT_KEYS))}")
    for k in ("errorRate", "timeoutRate"):
        v = config.get(k, 0)
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 1:
            raise InvalidSimulatorConfig(f"'{k}' must be a number between 0 and 1")
    for k in ("latencyMs", "replyLatencyMs"):
        lat = config.get(k, 0)
        if not isinstance(lat, int | float) or isinstance(lat, bool) or not 0 <= lat <= 600_000:
            raise InvalidSimulatorConfig(f"'{k}' must be between 0 and 600000")
    for k in ("rejectImsi", "rejectSubscriber"):
        if not isinstance(config.get(k, []), list):
            raise InvalidSimulatorConfig(f"'{k}' must be a list")
    return config


class Simulator:
    """A simulated network element that stores its state and journal in PostgreSQL."""

    def __init__(self, element: str, db: Database, settings: Settings) -> None:
        self.element = element
        self.db = db
        self.defaults = dict(settings.simulator_faults.get(element, {}))
        self.cache_seconds = settings.simulator_config_cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def faults(self, tenant_id: str) -> dict[str, Any]:
        now = time.monotonic()
        hit = self._cache.get(tenant_id)
        if hit and now - hit[0] < self.cache_seconds:
            return hit[1]
        async with self.db.transaction(tenant_id) as session:
            row = await session.scalar(select(SimulatorConfig.config).where(SimulatorConfig.element == self.element))
        config = {**self.defaults, **(row or {})}
        self._cache[tenant_id] = (now, config)
        return config

    async def _journal(self, tenant_id: str, operation: str, key: str, subscriber: str | None,
                       params: dict[str, Any], outcome: str, response: dict[str, Any] | None) -> None:
        async with self.db.transaction(tenant_id) as session:
            session.add(NetworkCall(element=self.element, operation=operation, idempotency_key=key,
                                    subscriber=subscriber, request=params, response=response, outcome=outcome))

    async def call(self, tenant_id: str, operation: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
        verb = verb_of(operation)
        subscriber = str(params.get(SUBSCRIBER_PARAM[self.element]) or "") or None
        faults = await self.faults(tenant_id)
        latency = float(faults.get("latencyMs") or 0)
        if latency:
            await asyncio.sleep(latency / 1000)
        if faults.get("timeoutRate") and random.random() < float(faults["timeoutRate"]):
            await self._journal(tenant_id, operation, key, subscriber, params, "timeout", None)
            raise AdapterError(f"{self.element}: no answer to {operation}", retryable=True)
        if faults.get("errorRate") and random.random() < float(faults["errorRate"]):
            await self._journal(tenant_id, operation, key, subscriber, params, "error", None)
            raise AdapterError(f"{self.element}: transient error on {operation} (injected)", retryable=True)
        rejected = {str(x) for x in (faults.get("rejectImsi") or []) + (faults.get("rejectSubscriber") or [])}
        if verb == "create" and (str(params.get("imsi")) in rejected or (subscriber and subscriber in rejected)):
            await self._journal(tenant_id, operation, key, subscriber, params, "rejected",
                                {"resultCode": 5004, "reason": "subscriber rejected by the element"})
            raise AdapterError(f"{self.element}: {operation} rejected for subscriber "
                               f"'{params.get('imsi') or subscriber}' (result code 5004)", retryable=False)
        try:
            answer = await self._apply(tenant_id, operation, verb, key, subscriber, params)
        except IntegrityError as exc:  # the same key applied concurrently: the next attempt replays it
            raise AdapterError(f"{self.element}: concurrent {operation} for '{subscriber}'", retryable=True) from exc
        reply = float(faults.get("replyLatencyMs") or 0)
        if reply:  # applied, but the answer is slow (or lost, when the caller gives up or dies meanwhile)
            await asyncio.sleep(reply / 1000)
        return answer

    async def _apply(self, tenant_id: str, operation: str, verb: str, key: str, subscriber: str | None,
                     params: dict[str, Any]) -> dict[str, Any]:
        if not subscriber:
            raise AdapterError(f"{self.element}: {operation} without '{SUBSCRIBER_PARAM[self.element]}'",
                               retryable=False)
        async with self.db.transaction(tenant_id) as session:
            # the same key was applied before: answer as then, apply nothing
            previous = (await session.execute(
                select(NetworkCall.response).where(NetworkCall.element == self.element,
                                                   NetworkCall.idempotency_key == key,
                                                   NetworkCall.outcome == "applied"))).first()
            if previous is not None:
                session.add(NetworkCall(element=self.element, operation=operation, idempotency_key=key,
                                        subscriber=subscriber, request=params, response=previous[0],
                                        outcome="replayed"))
                return dict(previous[0] or {})
            where = (ElementState.element == self.element, ElementState.subscriber == subscriber)
            current = (await session.execute(select(ElementState).where(*where).with_for_update())).scalars().first()
            # what the element had before (taken now: the update below refreshes ``current``)
            before = None if current is None else {"status": current.status, "profile": dict(current.profile or {})}
            if verb == "create":
                if current is not None:
                    raise AdapterError(f"{self.element}: subscriber '{subscriber}' already exists", retryable=False)
                await session.execute(insert(ElementState).values(
                    element=self.element, subscriber=subscriber, status="active", profile=params))
            elif verb == "delete":
                await session.execute(delete(ElementState).where(*where))
            else:
                if current is None:
                    raise AdapterError(f"{self.element}: subscriber '{subscriber}' unknown", retryable=False)
                values: dict[str, Any] = {"profile": {**current.profile, **params}} if verb == "update" else {
                    "status": "suspended" if verb == "suspend" else "active"}
                await session.execute(update(ElementState).where(*where).values(**values))
            response: dict[str, Any] = {"resultCode": 2001, "element": self.element, "operation": operation,
                                        "subscriber": subscriber}
            if before is not None:  # a compensation restores it
                response["previous"] = before
            session.add(NetworkCall(element=self.element, operation=operation, idempotency_key=key,
                                    subscriber=subscriber, request=params, response=response, outcome="applied"))
        return response


AdapterFactory = Callable[[Database, Settings], NetworkAdapter]


def build_adapters(db: Database, settings: Settings,
                   factories: Mapping[str, AdapterFactory] | None = None) -> dict[str, NetworkAdapter]:
    """One adapter per network element: the real element where the composition root plugged one (``factories``,
    e.g. the charging domain's OCS), else the simulator."""
    plugged = dict(factories or {})
    return {e: (plugged[e](db, settings) if e in plugged else Simulator(e, db, settings)) for e in ELEMENTS}

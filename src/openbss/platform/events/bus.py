"""The broker behind one small interface: publish an event; consume durably, one lane per reaction.

``InProcessBus`` (embedded mode) runs the interested consumers in the relay's process right after the relay reads
a committed event; a consumer that fails is retried on its own schedule by ``RetrySweeper`` (``next_attempt_at``),
then dead-lettered, without re-running the others or holding back the relay.

``NatsBus`` uses NATS JetStream: de-duplicated publishes by event id, and one durable pull consumer per *lane*:
per (consumer, event type) for a consumer that names its event types, per consumer otherwise. Each lane filters
on its subject (``<prefix>.<tenant>.<api>.<eventType>``, see ``outbox.subject_for``), so a slow or failing
reaction holds back only itself. A failed attempt is negatively acknowledged with the backoff delay; the last one
(``max_deliver`` = the consumer's ``max_attempts``) records the dead letter and terminates the message. A lane
whose worker died during the last delivery is reported by the server (max-deliveries advisory) and recorded dead
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from openbss.platform.db import Database, json_dumps
from openbss.platform.events.consumers import Consumer, ConsumerRegistry, Event, already_processed
from openbss.platform.events.delivery import Outcome, RetrySweeper, deliver
from openbss.platform.events.failures import RetryPolicy, record_failure
from openbss.platform.events.outbox import subject_for

log = logging.getLogger(__name__)

MAX_DURABLE_NAME = 120


#: what the message adds to an event's envelope (tenant, api, JSON wrapper; headers travel apart but count)
ENVELOPE_OVERHEAD = 4096


class Unpublishable(Exception):
    """Publishing this event cannot succeed by retrying (e.g. it exceeds the broker's maximum message size): the
    relay dead-letters it instead of retrying it forever."""


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    async def run_consumers(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    """Embedded mode: publishing an event runs every interested consumer (each idempotently) right away; a consumer
    that fails is recorded and retried later by ``run_consumers`` (the worker), on its own."""

    def __init__(self, db: Database, registry: ConsumerRegistry, policy: RetryPolicy | None = None) -> None:
        self.db = db
        self.registry = registry
        self.policy = policy or RetryPolicy()
        self.sweeper = RetrySweeper(db, registry, self.policy)

    async def publish(self, event: Event) -> None:
        for consumer in self.registry.interested(event):
            await deliver(self.db, consumer, event, self.policy, attempt=1, broker_retries=False)

    async def run_consumers(self, stop: asyncio.Event) -> None:
        await self.sweeper.run(stop)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Lane:
    """One durable consumer on the broker: a consumer's share of the stream for one event type (or for every
    event it wants, when it names no event types)."""

    consumer: Consumer
    event_type: str | None = None
    api: str | None = None

    @property
    def durable(self) -> str:
        return durable_name(self.consumer.name, self.event_type or self.api)

    def filter_subject(self, prefix: str) -> str:
        if self.event_type is None and self.api is None:
            return f"{prefix}.>"
        return f"{prefix}.*.{self.api or '*'}.{self.event_type or '>'}"


def durable_name(consumer: str, part: str | None = None) -> str:
    """The broker's name for a lane: ``<consumer>`` or ``<consumer>_<eventType>``, with the characters a NATS name
    cannot hold replaced (``billing.start`` -> ``billing-start``), long names shortened with a digest."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", consumer if part is None else f"{consumer}_{part}")
    if len(name) > MAX_DURABLE_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:MAX_DURABLE_NAME - 11]}-{digest}"
    return name


def lanes_of(consumer: Consumer) -> list[Lane]:
    """A consumer's lanes: one per event type (filtered on its API when it names exactly one); without event
    types, one per API it names, or a single lane over every event."""
    single_api = next(iter(consumer.apis)) if consumer.apis is not None and len(consumer.apis) == 1 else None
    if consumer.event_types is not None:
        return [Lane(consumer, t, single_api) for t in sorted(consumer.event_types)]
    if consumer.apis is not None:
        return [Lane(consumer, None, a) for a in sorted(consumer.apis)]
    return [Lane(consumer)]


def decode(data: bytes) -> Event:
    """The event a broker message carries (as ``NatsBus.publish`` wrote it)."""
    body = json.loads(data)
    return Event(body["tenant"], body["api"], body["envelope"]["eventType"], body["envelope"])


def subject_prefix_for(stream: str) -> str:
    """The subjects a stream captures: ``openbss.events`` for the default stream ``OPENBSS``, ``<stream>.events``
    otherwise, so that several streams (an installation's, a test's) never capture each other's subjects."""
    return f"{stream.lower()}.events"


class NatsBus:
    def __init__(self, db: Database, registry: ConsumerRegistry, url: str, stream: str = "OPENBSS",
                 ack_wait_seconds: float = 30.0, subject_prefix: str | None = None,
                 max_age_seconds: float = 0.0, policy: RetryPolicy | None = None,
                 event_max_bytes: int | None = None) -> None:
        self.db = db
        #: the largest event a change may emit (``OPENBSS_EVENT_MAX_BYTES``), checked against the broker's limit
        self.event_max_bytes = event_max_bytes
        self.registry = registry
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix or subject_prefix_for(stream)
        self.ack_wait = ack_wait_seconds
        self.max_age = max_age_seconds  # 0: keep forever
        self.policy = policy or RetryPolicy()
        self.sweeper = RetrySweeper(db, registry, self.policy)
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()

    @property
    def subjects(self) -> str:
        return f"{self.subject_prefix}.>"

    def subject(self, event: Event) -> str:
        return subject_for(event.tenant_id, event.api, event.event_type, prefix=self.subject_prefix)

    async def connect(self) -> Any:
        async with self._lock:
            if self._js is None:
                import nats
                from nats.js.api import StreamConfig

                if self._nc is None:
                    servers = [u.strip() for u in self.url.split(",") if u.strip()]
                    self._nc = await nats.connect(servers=servers, name=f"openbss-{os.getpid()}",
                                                  max_reconnect_attempts=-1)
                    if self.event_max_bytes and self._nc.max_payload < self.event_max_bytes + ENVELOPE_OVERHEAD:
                        log.error("the broker's max_payload (%d bytes) is below OPENBSS_EVENT_MAX_BYTES (%d) plus "
                                  "%d bytes of message wrapper: accepted changes may yield events the broker "
                                  "refuses (outbox dead letters); raise max_payload or lower the setting",
                                  self._nc.max_payload, self.event_max_bytes, ENVELOPE_OVERHEAD)
                js = self._nc.jetstream()
                # Events stay in the stream as long as their processed-event records stay in the database, so
                # that a replay within the retention never runs a handler twice.
                config = StreamConfig(name=self.stream, subjects=[self.subjects], duplicate_window=120.0,
                                      max_age=self.max_age or None)
                try:
                    await js.add_stream(config)
                except Exception:  # already exists with another config: keep the operator's
                    await js.stream_info(self.stream)
                self._js = js
        return self._js

    async def publish(self, event: Event) -> None:
        import nats.errors

        js = await self.connect()
        payload = json_dumps({"tenant": event.tenant_id, "api": event.api, "envelope": event.envelope}).encode()
        limit = self._nc.max_payload
        if len(payload) > limit:
            raise Unpublishable(f"the event is {len(payload)} bytes, over the broker's max_payload of {limit} bytes")
        try:
            await js.publish(self.subject(event), payload, stream=self.stream,
                             headers={"Nats-Msg-Id": event.event_id})
        except nats.errors.MaxPayloadError as exc:
            raise Unpublishable(f"the broker refused the event's size ({len(payload)} bytes): {exc}") from exc

    async def healthy(self) -> bool:
        try:
            js = await self.connect()
            await asyncio.wait_for(js.stream_info(self.stream), 2)
            return True
        except Exception:
            return False

    def lanes(self) -> list[Lane]:
        lanes = [lane for consumer in self.registry.all() for lane in lanes_of(consumer)]
        by_name: dict[str, str] = {}
        for lane in lanes:
            other = by_name.setdefault(lane.durable, lane.consumer.name)
            if other != lane.consumer.name:
                raise ValueError(f"consumers '{other}' and '{lane.consumer.name}' would share the durable consumer "
                                 f"'{lane.durable}' on the broker: rename one")
        return lanes

    def lane_config(self, lane: Lane) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        what = f"{lane.event_type or 'every event'}" + (f" of {lane.api}" if lane.api else "")
        return ConsumerConfig(
            name=lane.durable, durable_name=lane.durable, description=f"{lane.consumer.name}: {what}",
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=self.ack_wait,
            max_deliver=self.policy.for_consumer(lane.consumer).max_attempts,
            filter_subject=lane.filter_subject(self.subject_prefix),
        )

    async def ensure_lane(self, lane: Lane) -> Any:
        """Create the lane's durable consumer, or update the editable settings (ack wait, max deliveries) of an
        existing one; returns its info."""
        js = await self.connect()
        try:
            return await js.add_consumer(self.stream, self.lane_config(lane))
        except Exception:
            log.warning("cannot create or update the durable consumer; using it as it is",
                        extra={"consumer": lane.durable}, exc_info=True)
            return await js.consumer_info(self.stream, lane.durable)

    async def _subscription(self, lane: Lane) -> Any:
        js = await self.connect()
        await self.ensure_lane(lane)
        return await js.pull_subscribe_bind(durable=lane.durable, stream=self.stream)

    async def run_consumers(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._consume(lane, stop), name=f"consumer:{lane.durable}")
                 for lane in self.lanes()]
        tasks.append(asyncio.create_task(self.watch_max_deliveries(stop), name="consumer:max-deliveries"))
        # records left retrying by the in-process bus (an installation that moved from embedded to scaled mode)
        tasks.append(asyncio.create_task(self.sweeper.run(stop), name="consumer:retries"))
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, lane: Lane, stop: asyncio.Event) -> None:
        import nats.errors

        sub = None
        while sub is None and not stop.is_set():
            try:
                sub = await self._subscription(lane)
            except Exception:  # the broker is not there yet: keep trying, loudly
                log.exception("cannot subscribe; retrying", extra={"consumer": lane.durable})
                await asyncio.sleep(1)
        if sub is None:
            return
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch=50, timeout=1)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except Exception:
                    log.exception("fetch failed", extra={"consumer": lane.durable})
                    await asyncio.sleep(1)
                    continue
                for msg in msgs:
                    await self._handle(lane, msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, lane: Lane, msg: Any) -> None:
        consumer = lane.consumer
        try:
            event = decode(msg.data)
        except (ValueError, KeyError, TypeError):
            log.error("malformed event message; dropped", extra={"consumer": lane.durable, "subject": msg.subject})
            await msg.term()
            return
        attempt = max(1, int(msg.metadata.num_delivered or 1))
        try:
            result = await deliver(self.db, consumer, event, self.policy, attempt=attempt, broker_retries=True,
                                   stream_seq=msg.metadata.sequence.stream)
        except Exception:  # the failure could not even be recorded (database down): let the broker redeliver
            log.exception("consumer failed and its failure could not be recorded; the event will be redelivered",
                          extra={"consumer": consumer.name, "event_id": event.event_id})
            await msg.nak(delay=self.policy.for_consumer(consumer).delay(attempt))
            return
        if result.outcome is Outcome.RETRY:
            await msg.nak(delay=result.retry_in)
            return
        if result.outcome is Outcome.DEAD:
            await msg.term()
            return
        if os.environ.get("OPENBSS_FAULT_KILL_BEFORE_ACK") == consumer.name:
            # Fault injection for the crash test: die like kill -9 after the commit, before the ack.
            os.kill(os.getpid(), signal.SIGKILL)
        await msg.ack()

    async def watch_max_deliveries(self, stop: asyncio.Event) -> None:
        """Record as dead the events the server stopped delivering because a lane reached ``max_deliver`` without
        an answer: the worker died (or the handler outlived the ack wait) during the last attempt, so nobody
        recorded the end. Every worker listens; the record is written once."""
        subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.*"
        sub = None
        while sub is None and not stop.is_set():
            try:
                await self.connect()
                sub = await self._nc.subscribe(subject, cb=self._on_max_deliveries)
            except Exception:
                log.exception("cannot listen to max-deliveries advisories; retrying")
                await asyncio.sleep(1)
        try:
            await stop.wait()
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _on_max_deliveries(self, msg: Any) -> None:
        try:
            await self.record_max_deliveries(json.loads(msg.data))
        except Exception:
            log.exception("cannot record an event the broker gave up on", extra={"advisory": msg.data[:500]})

    async def record_max_deliveries(self, advisory: dict[str, Any]) -> int | None:
        """Handle one max-deliveries advisory (``{"stream", "consumer", "stream_seq", "deliveries"}``); returns the
        failure record's id, or None when there is nothing to record (unknown lane, event handled after all)."""
        lane = next((lane for lane in self.lanes() if lane.durable == advisory.get("consumer")), None)
        if lane is None or advisory.get("stream") != self.stream:
            return None
        js = await self.connect()
        seq = int(advisory["stream_seq"])
        raw = await js.get_msg(self.stream, seq)
        event = decode(raw.data)
        if await already_processed(self.db, lane.consumer, event):
            return None  # the last attempt committed; only its acknowledgement was lost
        deliveries = int(advisory.get("deliveries") or 0)
        rec = await record_failure(
            self.db, lane.consumer.name, event, attempt=max(deliveries, 1), max_attempts=max(deliveries, 1),
            error=f"delivered {deliveries} times without an acknowledgement: the worker stopped or the handler took "
                  f"longer than the ack wait ({self.ack_wait:g} s) during the last attempt",
            retry_in=None, stream_seq=seq, only_if_open=True)
        return rec.id

    async def replay(self, from_sequence: int, handle: Callable[[Event, int], Awaitable[None]],
                     until_sequence: int | None = None) -> int:
        """Read the stream from ``from_sequence`` with an ephemeral consumer; returns the events seen."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = await self.connect()
        info = await js.stream_info(self.stream)
        last = min(until_sequence or info.state.last_seq, info.state.last_seq)
        if last < max(from_sequence, info.state.first_seq):
            return 0
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=from_sequence,
                                ack_policy=AckPolicy.EXPLICIT, inactive_threshold=30.0)
        sub = await js.pull_subscribe(self.subjects, stream=self.stream, config=config)
        seen = 0
        try:
            done = False
            while not done:
                try:
                    msgs = await sub.fetch(batch=100, timeout=2)
                except Exception:
                    break
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq > last:
                        done = True
                        break
                    await handle(decode(msg.data), seq)
                    await msg.ack()
                    seen += 1
                    if seq >= last:
                        done = True
                        break
        finally:
            with contextlib.suppress(Exception):
                name = (await sub.consumer_info()).name
                await sub.unsubscribe()
                await js.delete_consumer(self.stream, name)
        return seen

    async def close(self) -> None:
        # Publishes are acknowledged synchronously and the consumers have stopped: nothing is in flight to drain.
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)
            self._nc = None
            self._js = None

"""The broker behind one small interface: publish an event; consume durably by consumer name.

``NatsBus`` uses NATS JetStream (durable pull consumers, at-least-once, de-duplicated publishes by event id);
``InProcessBus`` runs the consumers directly in the relay's process (embedded mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from openbss.platform.db import Database, json_dumps
from openbss.platform.events.consumers import Consumer, ConsumerRegistry, Event, process
from openbss.platform.events.outbox import subject_for

log = logging.getLogger(__name__)


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    async def run_consumers(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    """Embedded mode: publishing an event runs every interested consumer (each idempotently) right away."""

    def __init__(self, db: Database, registry: ConsumerRegistry) -> None:
        self.db = db
        self.registry = registry

    async def publish(self, event: Event) -> None:
        for consumer in self.registry.all():
            await process(self.db, consumer, event)

    async def run_consumers(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def close(self) -> None:
        return None


def subject_prefix_for(stream: str) -> str:
    """The subjects a stream captures: ``openbss.events`` for the default stream ``OPENBSS``, ``<stream>.events``
    otherwise, so that several streams (an installation's, a test's) never capture each other's subjects."""
    return f"{stream.lower()}.events"


class NatsBus:
    def __init__(self, db: Database, registry: ConsumerRegistry, url: str, stream: str = "OPENBSS",
                 ack_wait_seconds: float = 30.0, subject_prefix: str | None = None,
                 max_age_seconds: float = 0.0) -> None:
        self.db = db
        self.registry = registry
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix or subject_prefix_for(stream)
        self.ack_wait = ack_wait_seconds
        self.max_age = max_age_seconds  # 0: keep forever
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
        js = await self.connect()
        payload = json_dumps({"tenant": event.tenant_id, "api": event.api, "envelope": event.envelope})
        await js.publish(self.subject(event), payload.encode(), stream=self.stream,
                         headers={"Nats-Msg-Id": event.event_id})

    async def healthy(self) -> bool:
        try:
            js = await self.connect()
            await asyncio.wait_for(js.stream_info(self.stream), 2)
            return True
        except Exception:
            return False

    def consumer_config(self, consumer: Consumer) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        return ConsumerConfig(
            name=consumer.name, durable_name=consumer.name, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL, ack_wait=self.ack_wait, max_deliver=-1, filter_subject=self.subjects,
        )

    async def _subscription(self, consumer: Consumer) -> Any:
        js = await self.connect()
        try:  # create, or update the editable settings (ack wait) of an existing durable consumer
            await js.add_consumer(self.stream, self.consumer_config(consumer))
        except Exception:
            log.warning("cannot create or update the durable consumer; using it as it is",
                        extra={"consumer": consumer.name}, exc_info=True)
            await js.consumer_info(self.stream, consumer.name)
        return await js.pull_subscribe_bind(durable=consumer.name, stream=self.stream)

    async def run_consumers(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._consume(c, stop), name=f"consumer:{c.name}")
                 for c in self.registry.all()]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, consumer: Consumer, stop: asyncio.Event) -> None:
        import nats.errors

        sub = None
        while sub is None and not stop.is_set():
            try:
                sub = await self._subscription(consumer)
            except Exception:  # the broker is not there yet: keep trying, loudly
                log.exception("cannot subscribe; retrying", extra={"consumer": consumer.name})
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
                    log.exception("fetch failed", extra={"consumer": consumer.name})
                    await asyncio.sleep(1)
                    continue
                for msg in msgs:
                    await self._handle(consumer, msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, consumer: Consumer, msg: Any) -> None:
        try:
            data = json.loads(msg.data)
            event = Event(data["tenant"], data["api"], data["envelope"]["eventType"], data["envelope"])
        except (ValueError, KeyError, TypeError):
            log.error("malformed event message; dropped", extra={"consumer": consumer.name, "subject": msg.subject})
            await msg.term()
            return
        try:
            await process(self.db, consumer, event)
        except Exception:
            log.exception("consumer failed; the event will be redelivered",
                          extra={"consumer": consumer.name, "event_id": event.event_id})
            await msg.nak(delay=2)
            return
        if os.environ.get("OPENBSS_FAULT_KILL_BEFORE_ACK") == consumer.name:
            # Fault injection for the crash test: die like kill -9 after the commit, before the ack.
            os.kill(os.getpid(), signal.SIGKILL)
        await msg.ack()

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
                    data = json.loads(msg.data)
                    await handle(Event(data["tenant"], data["api"], data["envelope"]["eventType"],
                                       data["envelope"]), seq)
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

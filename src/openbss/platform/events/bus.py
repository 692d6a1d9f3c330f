"""The broker behind one small interface: publish an event; consume durably by consumer name.

``NatsBus`` uses NATS JetStream (durable pull consumers, at-least-once, de-duplicated publishes by event id);
``InProcessBus`` runs the consumers directly in the relay's process (embedded mode).
"""

from __future__ import annotations

import asyncio
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


class NatsBus:
    def __init__(self, db: Database, registry: ConsumerRegistry, url: str, stream: str = "OPENBSS",
                 ack_wait_seconds: float = 30.0) -> None:
        self.db = db
        self.registry = registry
        self.url = url
        self.stream = stream
        self.ack_wait = ack_wait_seconds
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()

    async def connect(self) -> Any:
        async with self._lock:
            if self._js is None:
                import nats
                from nats.js.api import StreamConfig

                self._nc = await nats.connect(self.url, name=f"openbss-{os.getpid()}", max_reconnect_attempts=-1)
                self._js = self._nc.jetstream()
                config = StreamConfig(name=self.stream, subjects=["openbss.events.>"], duplicate_window=120.0)
                try:
                    await self._js.add_stream(config)
                except Exception:  # already exists with another config: keep the operator's
                    await self._js.stream_info(self.stream)
        return self._js

    async def publish(self, event: Event) -> None:
        js = await self.connect()
        subject = subject_for(event.tenant_id, event.api, event.event_type)
        payload = json_dumps({"tenant": event.tenant_id, "api": event.api, "envelope": event.envelope})
        await js.publish(subject, payload.encode(), stream=self.stream, headers={"Nats-Msg-Id": event.event_id})

    async def healthy(self) -> bool:
        try:
            js = await self.connect()
            await asyncio.wait_for(js.stream_info(self.stream), 2)
            return True
        except Exception:
            return False

    async def _subscription(self, consumer: Consumer) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = await self.connect()
        config = ConsumerConfig(
            durable_name=consumer.name, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait, max_deliver=-1,
        )
        return await js.pull_subscribe("openbss.events.>", durable=consumer.name, stream=self.stream, config=config)

    async def run_consumers(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._consume(c, stop)) for c in self.registry.all()]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, consumer: Consumer, stop: asyncio.Event) -> None:
        import nats.errors

        sub = await self._subscription(consumer)
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

    async def _handle(self, consumer: Consumer, msg: Any) -> None:
        data = json.loads(msg.data)
        event = Event(data["tenant"], data["api"], data["envelope"]["eventType"], data["envelope"])
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
        last = until_sequence or info.state.last_seq
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=from_sequence,
                                ack_policy=AckPolicy.EXPLICIT, inactive_threshold=30.0)
        sub = await js.pull_subscribe("openbss.events.>", stream=self.stream, config=config)
        seen = 0
        while True:
            try:
                msgs = await sub.fetch(batch=100, timeout=2)
            except Exception:
                break
            done = False
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
            if done:
                break
        await sub.unsubscribe()
        return seen

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None

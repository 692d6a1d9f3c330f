"""Helpers of the charging-node tests: nodes in the test process, leases waited for."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.conftest import session_services

SHARDS = 4


async def start_node(rt: Any, *, wait_for: int | None = SHARDS, **config: Any) -> Any:
    """A charging node in this process over the test database, once it holds ``wait_for`` shards (leases of
    nodes of earlier tests may still run)."""
    from openbss.charging.node import ChargingNode, NodeConfig

    dsn = config.pop("dsn", None)
    cfg = {"shards": SHARDS, "lease_seconds": 2.0, "base_url": "http://testserver", **config}
    node = ChargingNode(session_services().charging.service, rt.db, NodeConfig(**cfg), dsn=dsn)
    await node.start()
    if wait_for:
        await wait_shards(node, wait_for)
    return node


async def wait_shards(node: Any, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(node.owned_shards()) < count:
        assert time.monotonic() < deadline, f"the node holds {node.owned_shards()}, not {count} shards"
        await node._heartbeat()
        await asyncio.sleep(0.1)

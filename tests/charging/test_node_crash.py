"""kill -9 of a charging node (a subprocess, ``openbss charging-node``) under load loses no acknowledged debit and
doubles none; a second node takes its shards over after the lease expires, rebuilds the accounts from PostgreSQL and
answers the network's retries with the stored answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.charging.helpers import OCS, SMS, ccr, group, open_account
from tests.charging.test_crash import free_port
from tests.conftest import bearer

ROOT = Path(__file__).resolve().parents[2]
ENV = {"OPENBSS_CHARGING_SHARDS": "4", "OPENBSS_CHARGING_NODE_LEASE_SECONDS": "5"}


def spawn(node_id: str, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "openbss"
    return subprocess.Popen([str(exe), "charging-node", "--port", str(port), "--node-id", node_id], cwd=ROOT,
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(http: httpx.AsyncClient, shards: int = 4, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            r = await http.get("/health")
            if r.status_code == 200 and len(r.json()["shards"]) == shards:
                return
        assert time.monotonic() < deadline, "the charging node did not take its shards"
        await asyncio.sleep(0.1)


def cycle(client: int, k: int, msisdn: str) -> list[dict[str, Any]]:
    sid = f"crash-{client}-{k}"
    return [ccr("INITIAL_REQUEST", sid, 0, msisdn, groups=[group(1, 60)]),
            ccr("UPDATE_REQUEST", sid, 1, groups=[group(1, 60, used=10)]),
            ccr("TERMINATION_REQUEST", sid, 2, groups=[group(1, used=5)]),
            ccr("EVENT_REQUEST", f"{sid}-sms", 0, msisdn, context=SMS, requestedAction="DIRECT_DEBITING",
                groups=[{"ratingGroup": 3, "requestedServiceUnit": {"serviceSpecificUnits": 1}}])]


async def db_rows(rt: Any, tenant: str, sql: str) -> list[dict[str, Any]]:
    async with rt.db.transaction(tenant) as s:
        return [dict(r) for r in (await s.execute(text(sql))).mappings().all()]


async def check_books(rt: Any, tenant: str, accounts: list[dict[str, Any]]) -> None:
    """Every debit once: each account's money moved exactly by its usage records, and each usage record belongs to a
    stored answer (the same request)."""
    money = {r["account_id"]: int(r["remaining"]) for r in await db_rows(
        rt, tenant, "SELECT account_id, remaining FROM charging_bucket WHERE unit = 'money'")}
    used = {r["account_id"]: int(r["amount"]) for r in await db_rows(
        rt, tenant, "SELECT account_id, sum(amount_minor) AS amount FROM charging_usage GROUP BY account_id")}
    for acc in accounts:
        assert 10000 - money[acc["id"]] == used.get(acc["id"], 0)
    orphans = await db_rows(rt, tenant, "SELECT u.session_id, u.request_number FROM charging_usage u WHERE NOT EXISTS "
                                        "(SELECT 1 FROM charging_request q WHERE q.session_id = u.session_id AND "
                                        "q.request_number = u.request_number)")
    assert orphans == []


@pytest.mark.slow
async def test_kill_9_under_load_then_takeover(rt: Any, tenant: str) -> None:
    accounts = [await open_account(rt, tenant, balance="100.00") for _ in range(8)]
    headers = bearer(tenant, "system")
    port_a, port_b = free_port(), free_port()
    node_a = spawn("crash-node-a", port_a)
    node_b: subprocess.Popen[bytes] | None = None
    acked: list[tuple[dict[str, Any], dict[str, Any]]] = []
    unacked: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}", timeout=10) as http:
            await wait_ready(http)

            async def client(i: int) -> None:
                for k in range(10_000):
                    for body in cycle(i, k, accounts[i]["msisdn"]):
                        try:
                            r = await http.post(OCS, json=body, headers=headers)
                        except httpx.TransportError:
                            unacked.append(body)
                            return
                        assert r.status_code == 200, r.text
                        acked.append((body, r.json()))

            clients = [asyncio.create_task(client(i)) for i in range(len(accounts))]
            deadline = time.monotonic() + 60
            while len(acked) < 100 and time.monotonic() < deadline:  # under load: the node answers
                await asyncio.sleep(0.05)
            node_a.send_signal(signal.SIGKILL)
            node_a.wait(10)
            await asyncio.wait_for(asyncio.gather(*clients), 20)
        assert len(acked) >= 100, len(acked)
        assert [a for _, a in acked if a["resultCode"] != 2001] == []
        # every acknowledged answer is stored as it was given, and nothing is charged twice
        stored = {(r["session_id"], r["request_number"]): json.loads(r["response"]) for r in await db_rows(
            rt, tenant, "SELECT session_id, request_number, response::text AS response FROM charging_request")}
        owners = {a["msisdn"]: a["id"] for a in accounts}
        for body, answer in acked:  # stored with the account it was given to (given again to that one only)
            kept = dict(stored[(body["sessionId"], body["requestNumber"])])
            owner = kept.pop("_account")
            assert kept == answer and owner in owners.values()
            if "subscriptionId" in body:
                assert owner == owners[body["subscriptionId"]["data"]]
        await check_books(rt, tenant, accounts)
        # a second node takes the shards over once the dead node's leases expire
        node_b = spawn("crash-node-b", port_b)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}", timeout=10) as http:
            await wait_ready(http)
            before = await db_rows(rt, tenant, "SELECT count(*) AS n, sum(amount_minor) AS s FROM charging_usage")
            for body, answer in acked[-40:]:  # the network retries what it got answers to: the same answers
                r = await http.post(OCS, json=body, headers=headers)
                assert r.json() == answer
            assert await db_rows(rt, tenant, "SELECT count(*) AS n, sum(amount_minor) AS s FROM charging_usage") \
                == before
            for body in unacked:  # and what it got no answer to: answered once, whether or not it was committed
                first = (await http.post(OCS, json=body, headers=headers)).json()
                assert first["resultCode"] in (2001, 5002, 5004), first
                assert (await http.post(OCS, json=body, headers=headers)).json() == first
        await check_books(rt, tenant, accounts)
        leases = await db_rows(rt, None, "SELECT owner FROM charging_shard_lease")  # type: ignore[arg-type]
        assert {r["owner"] for r in leases} == {"crash-node-b"}
    finally:
        for proc in (node_a, node_b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()

"""The charging node's own guarantees: two nodes never answer for one shard (leases, redirects, fenced commits), a
second node takes over the shards of one that stopped renewing, a node cut off from its database answers 5012 and
charges nothing, a burst beyond the queue is refused at once with 3004, and every answer waits for its commit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.charging.helpers import account_state, ccr, group, open_account
from tests.charging.node_helpers import SHARDS, start_node, wait_shards


def request(body: dict[str, Any]) -> Any:
    from openbss.charging.schemas import CreditControlRequest

    return CreditControlRequest.model_validate(body)


def wire(answer: dict[str, Any]) -> Any:
    """An answer as the network element reads it (JSON numbers)."""
    from openbss.platform.db import json_dumps

    return json.loads(json_dumps(answer))


def shard(msisdn: str) -> int:
    from openbss.charging.node.shards import shard_of
    from openbss.charging.service import subscriber_key

    return shard_of(subscriber_key(msisdn), SHARDS)


async def lease_rows(rt: Any) -> dict[int, dict[str, Any]]:
    async with rt.db.transaction(None) as s:
        from sqlalchemy import text

        rows = (await s.execute(text("SELECT shard, owner, epoch, expires_at > now() AS live "
                                     "FROM charging_shard_lease"))).mappings().all()
    return {r["shard"]: dict(r) for r in rows}


async def test_one_owner_per_shard_redirect_takeover_and_fence(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, balance="10.00")
    a = await start_node(rt, node_id="node-a", address="http://a.example:8086")
    b = await start_node(rt, node_id="node-b", wait_for=None)
    try:
        await b._heartbeat()
        assert a.owned_shards() == list(range(SHARDS)) and b.owned_shards() == []
        # the second node holds nothing: it names the owner and charges nothing
        r = await b.credit_control(tenant, request(ccr("INITIAL_REQUEST", "t1", 0, acc["msisdn"],
                                                       groups=[group(1, 60)])))
        assert r["resultCode"] == 3006 and r["redirectHost"] == "http://a.example:8086", r
        assert "node-a" in r["errorMessage"] and r["shard"] == shard(acc["msisdn"])
        ok = await a.credit_control(tenant, request(ccr("INITIAL_REQUEST", "t1", 0, acc["msisdn"],
                                                        groups=[group(1, 60)])))
        assert ok["resultCode"] == 2001
        epoch = (await lease_rows(rt))[shard(acc["msisdn"])]["epoch"]
        # node a stops renewing its leases (its renewals lost): they run out, b takes the shards with a new epoch
        a.tasks[1].cancel()
        await wait_shards(b, SHARDS)
        rows = await lease_rows(rt)
        assert {r["owner"] for r in rows.values()} == {"node-b"} and rows[shard(acc["msisdn"])]["epoch"] == epoch + 1
        # b rebuilt the account from PostgreSQL: the session a opened continues on b
        u = await b.credit_control(tenant, request(ccr("UPDATE_REQUEST", "t1", 1, groups=[group(1, 60, used=30)])))
        assert u["resultCode"] == 2001, u
        # a, left with its memory: its own clock says its leases ran out, it answers 5012
        stale = await asyncio.wait_for(a.credit_control(tenant, request(ccr(
            "UPDATE_REQUEST", "t1", 2, groups=[group(1, 60, used=60)]))), 10)
        assert stale["resultCode"] == 5012
        # and even if its clock lied, the commit is fenced by the epoch: nothing written, 5012
        a.leases.owned = {s: 1 for s in range(SHARDS)}
        a.leases.valid_until = dict.fromkeys(range(SHARDS), time.monotonic() + 60)
        before = await account_state(rt, tenant, acc["id"])
        zombie = await asyncio.wait_for(a.credit_control(tenant, request(ccr(
            "UPDATE_REQUEST", "t1", 2, groups=[group(1, 60, used=60)]))), 10)
        assert zombie["resultCode"] == 5012, zombie
        after = await account_state(rt, tenant, acc["id"])
        assert after["money"] == before["money"] and after["usage"] == before["usage"]
        assert shard(acc["msisdn"]) not in a.owned_shards()  # the fence told it: it dropped the shard
        t = await b.credit_control(tenant, request(ccr("TERMINATION_REQUEST", "t1", 2, groups=[group(1, used=60)])))
        assert t["resultCode"] == 2001
        st = await account_state(rt, tenant, acc["id"])
        assert st["money"] == 1000 - 90 and st["usage"]["n"] == 2 and st["money_reserved"] == 0
    finally:
        await a.stop()
        await b.stop()


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut (a network partition between node and database)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", 5432)
        self.writers += [writer, up_w]

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_w), copy(up_r, writer))

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    p = Proxy()
    yield p
    if p.server is not None:
        p.cut()


async def test_partition_from_the_database_answers_5012_never_from_memory(rt: Any, tenant: str,
                                                                          proxy: Proxy) -> None:
    acc = await open_account(rt, tenant, balance="10.00")
    port = await proxy.start()
    dsn = rt.db.url.set(drivername="postgresql", host="127.0.0.1", port=port).render_as_string(hide_password=False)
    node = await start_node(rt, dsn=dsn, commit_timeout=1.0)
    try:
        ok = await node.credit_control(tenant, request(ccr("INITIAL_REQUEST", "p1", 0, acc["msisdn"],
                                                           groups=[group(1, 60)])))
        assert ok["resultCode"] == 2001
        proxy.cut()
        answers = await asyncio.wait_for(asyncio.gather(*[
            node.credit_control(tenant, request(ccr("UPDATE_REQUEST", "p1", 1, groups=[group(1, 60, used=10)]))),
            node.credit_control(tenant, request(ccr("EVENT_REQUEST", "p-sms", 0, acc["msisdn"],
                                                    context="32274@3gpp.org", requestedAction="DIRECT_DEBITING",
                                                    groups=[{"ratingGroup": 3,
                                                             "requestedServiceUnit": {"serviceSpecificUnits": 1}}]))),
        ]), 30)
        assert [a["resultCode"] for a in answers] == [5012, 5012], answers
        # the leases run out without renewal: the node drops its shards and answers 5012 at once
        deadline = time.monotonic() + 10
        while node.owned_shards():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        late = await asyncio.wait_for(node.credit_control(tenant, request(ccr(
            "UPDATE_REQUEST", "p1", 1, groups=[group(1, 60, used=10)]))), 10)
        assert late["resultCode"] == 5012
        st = await account_state(rt, tenant, acc["id"])
        assert st["money"] == 1000 and st["usage"]["n"] == 0 and st["money_reserved"] == 60
    finally:
        await node.stop(release=False)


async def test_a_burst_beyond_the_queue_is_refused_at_once_with_3004(rt: Any, tenant: str) -> None:
    accounts = [await open_account(rt, tenant, balance="10.00") for _ in range(5)]
    node = await start_node(rt, max_queue=20, batch_max=10)
    try:
        calls = [asyncio.ensure_future(node.credit_control(tenant, request(ccr(
            "EVENT_REQUEST", f"burst-{i}", 0, accounts[i % 5]["msisdn"], context="32274@3gpp.org",
            requestedAction="DIRECT_DEBITING",
            groups=[{"ratingGroup": 3, "requestedServiceUnit": {"serviceSpecificUnits": 1}}]))))
                 for i in range(200)]
        await asyncio.sleep(0)  # one turn of the loop: nothing has been committed yet
        refused = [c for c in calls if c.done()]
        assert len(refused) == 180 and all(c.result()["resultCode"] == 3004 for c in refused)
        assert refused[0].result()["resultName"] == "DIAMETER_TOO_BUSY"
        answers = await asyncio.gather(*calls)
        assert sum(a["resultCode"] == 2001 for a in answers) == 20
        charged = [await account_state(rt, tenant, a["id"]) for a in accounts]
        assert sum(c["usage"]["n"] for c in charged) == 20 and sum(1000 - c["money"] for c in charged) == 20 * 10
    finally:
        await node.stop()


async def test_answers_wait_for_their_commit_and_repeats_are_answered_alike(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, balance="10.00")
    node = await start_node(rt)
    try:
        body = ccr("INITIAL_REQUEST", "c1", 0, acc["msisdn"], groups=[group(1, 100)])
        first, repeat = await asyncio.gather(node.credit_control(tenant, request(body)),
                                             node.credit_control(tenant, request(body)))
        assert first == repeat and first["resultCode"] == 2001  # the repeat in the same batch: the same answer
        node._evict((tenant, acc["id"]), "test")  # and from the database, once the node forgot it
        assert await node.credit_control(tenant, request(body)) == first
        ev = ccr("EVENT_REQUEST", "c-sms", 0, acc["msisdn"], context="32274@3gpp.org",
                 requestedAction="DIRECT_DEBITING",
                 groups=[{"ratingGroup": 3, "requestedServiceUnit": {"serviceSpecificUnits": 1}}])
        e1 = await node.credit_control(tenant, request(ev))
        node._evict((tenant, acc["id"]), "test")
        assert wire(await node.credit_control(tenant, request(ev))) == wire(e1)
        st = await account_state(rt, tenant, acc["id"])
        assert st["usage"]["n"] == 1 and st["money"] == 990 and st["money_reserved"] == 100
    finally:
        await node.stop()


async def test_front_end_speaks_the_apis_json_and_serves_metrics(rt: Any, tenant: str) -> None:
    import httpx

    from openbss.charging.node.server import FrontEnd
    from tests.conftest import bearer

    acc = await open_account(rt, tenant, balance="10.00")
    node = await start_node(rt)
    front = FrontEnd(node, rt.verifier, rt.tenants)
    port = await front.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            body = ccr("INITIAL_REQUEST", "f1", 0, acc["msisdn"], groups=[group(1, 60)])
            r = await http.post("/ocs/v1/creditControl", json=body, headers=bearer(tenant, "system"))
            assert r.status_code == 200 and r.json()["resultCode"] == 2001
            r = await http.post("/ocs/v1/creditControl", json=body)
            assert r.status_code == 401
            r = await http.post("/ocs/v1/creditControl", json=body, headers=bearer(tenant, "csr_agent"))
            assert r.status_code == 403
            r = await http.post("/ocs/v1/creditControl", content=b"{", headers={
                **bearer(tenant, "system"), "Content-Type": "application/json"})
            assert r.status_code == 400 and r.json()["code"] == "INVALID_CREDIT_CONTROL_REQUEST"
            r = await http.post("/ocs/v1/creditControl", content=b"x", headers={
                **bearer(tenant, "system"), "Content-Type": "text/plain"})
            assert r.status_code == 415
            bad = {**body, "requestNumber": -1}
            r = await http.post("/ocs/v1/creditControl", json=bad, headers=bearer(tenant, "system"))
            assert r.status_code == 400
            metrics = (await http.get("/metrics")).text
            assert 'openbss_charging_node_answers_total{result="2001"}' in metrics
            assert "openbss_charging_node_batch_size_bucket" in metrics
            assert "openbss_charging_node_owned_shards" in metrics
            health = (await http.get("/health")).json()
            assert health["shards"] == list(range(SHARDS))
    finally:
        await front.stop()
        await node.stop()


async def test_a_session_id_of_another_subscriber_is_refused(rt: Any, tenant: str) -> None:
    one, two = await open_account(rt, tenant, balance="10.00"), await open_account(rt, tenant, balance="10.00")
    node = await start_node(rt)
    try:
        first = await node.credit_control(tenant, request(ccr("INITIAL_REQUEST", "dup", 0, one["msisdn"],
                                                              groups=[group(1, 60)])))
        again = await node.credit_control(tenant, request(ccr("INITIAL_REQUEST", "dup", 1, two["msisdn"],
                                                              groups=[group(1, 60)])))
        assert first["resultCode"] == 2001 and again["resultCode"] == 5004, again
        assert (await account_state(rt, tenant, two["id"]))["money_reserved"] == 0
    finally:
        await node.stop()


async def test_diameter_front_end_on_the_node(rt: Any, tenant: str) -> None:
    """The node answers Diameter Gy: a data session and an SMS event over Diameter are decided in the node's memory,
    committed by its group commit (one usage record per debit), and a retransmitted CCR gets the same answer."""
    from openbss.charging.diameter.client import DiameterClient, result_code
    from openbss.charging.diameter.server import DiameterConfig, DiameterServer

    acc = await open_account(rt, tenant, balance="10.00", data_allowance_mb=10)
    node = await start_node(rt)
    front = DiameterServer(node, DiameterConfig(port=0, peer_tenants={"test.example": tenant}))
    await front.start()
    peer = DiameterClient()
    try:
        assert result_code(await peer.connect("127.0.0.1", front.port)) == 2001
        mb = 1024 * 1024
        i = await peer.credit_control(ccr("INITIAL_REQUEST", "dn1", 0, acc["msisdn"], context="32251@3gpp.org",
                                          groups=[group(10, 4 * mb, key="totalOctets")]))
        assert i["resultCode"] == 2001, i
        assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"totalOctets": 4 * mb}
        t = await peer.credit_control(ccr("TERMINATION_REQUEST", "dn1", 1, context="32251@3gpp.org",
                                          groups=[group(10, used=3 * mb, key="totalOctets")]))
        assert t["resultCode"] == 2001, t
        sms = ccr("EVENT_REQUEST", "dn-sms", 0, acc["msisdn"], context="32274@3gpp.org",
                  requestedAction="DIRECT_DEBITING", groups=[group(3, 1, key="serviceSpecificUnits")])
        first = await peer.credit_control(sms)
        again = await peer.credit_control(sms)
        assert first["resultCode"] == again["resultCode"] == 2001 and wire(first) == wire(again)
        st = await account_state(rt, tenant, acc["id"])
        assert st["money"] == 990 and st["money_reserved"] == 0
        assert st["usage"]["n"] == 2  # the data session's usage and one SMS, the repeat charged once
    finally:
        await peer.close()
        await front.close()
        await node.stop()


async def test_one_id_on_two_accounts_in_one_batch_is_answered_as_the_database_path_answers(
        rt: Any, tenant: str) -> None:
    """Two requests of one group commit that reuse a session id or an event id on different accounts: the first is
    answered, the second as the request-per-transaction path answers it; the batch's commit never fails for it."""
    from tests.conftest import session_services

    svc = session_services().charging.service
    sms = {"context": "32274@3gpp.org", "requestedAction": "DIRECT_DEBITING",
           "groups": [{"ratingGroup": 3, "requestedServiceUnit": {"serviceSpecificUnits": 1}}]}
    cases = [("EVENT_REQUEST", sms, "EVENT_REQUEST", sms),
             ("EVENT_REQUEST", sms, "INITIAL_REQUEST", {"groups": [group(1, 60)]}),
             ("INITIAL_REQUEST", {"groups": [group(1, 60)]}, "INITIAL_REQUEST", {"groups": [group(1, 60)]}),
             ("INITIAL_REQUEST", {"groups": [group(1, 60)]}, "EVENT_REQUEST", sms)]
    node = await start_node(rt)
    try:
        for i, (kind1, args1, kind2, args2) in enumerate(cases):
            expected = []
            for path in ("database", "node"):
                one = await open_account(rt, tenant, balance="10.00")
                two = await open_account(rt, tenant, balance="10.00")
                sid = f"dup-{path}-{i}"
                first = request(ccr(kind1, sid, 0, one["msisdn"], **args1))
                second = request(ccr(kind2, sid, 0, two["msisdn"], **args2))
                if path == "database":
                    answers = [await svc.credit_control(rt.db, tenant, first, "http://testserver"),
                               await svc.credit_control(rt.db, tenant, second, "http://testserver")]
                else:
                    answers = list(await asyncio.gather(node.credit_control(tenant, first),
                                                        node.credit_control(tenant, second)))
                one_st = await account_state(rt, tenant, one["id"])
                two_st = await account_state(rt, tenant, two["id"])
                outcome = ([a["resultCode"] for a in answers], one_st["money"] + one_st["money_reserved"],
                           two_st["money"], two_st["money_reserved"], two_st["usage"]["n"])
                if path == "database":
                    expected = outcome
                else:
                    assert answers[0]["resultCode"] == 2001, (kind1, kind2, answers)
                    assert outcome == expected, (kind1, kind2, answers)
    finally:
        await node.stop()


async def test_one_batch_of_two_tenants_commits_each_under_its_own_tenant(rt: Any, tenant: str,
                                                                          other_tenant: str) -> None:
    """A batch with requests of two tenants commits in one transaction, each tenant's writes under its own binding
    (row-level security); the same session id in both tenants is two sessions, and the connections' session-level
    binding follows the tenant of each later batch."""
    acc = await open_account(rt, tenant, balance="10.00")
    other = await open_account(rt, other_tenant, balance="20.00")
    node = await start_node(rt)
    try:
        from prometheus_client import REGISTRY

        def trips() -> float:
            return REGISTRY.get_sample_value("openbss_charging_node_round_trips_total", {"phase": "commit"}) or 0.0

        before = trips()
        one, two = await asyncio.gather(
            node.credit_control(tenant, request(ccr("INITIAL_REQUEST", "m1", 0, acc["msisdn"],
                                                    groups=[group(1, 100)]))),
            node.credit_control(other_tenant, request(ccr("INITIAL_REQUEST", "m1", 0, other["msisdn"],
                                                          groups=[group(1, 100)]))))
        assert one["resultCode"] == 2001 and two["resultCode"] == 2001, (one, two)
        assert trips() - before == 6  # one batch: BEGIN, per tenant its binding and its statement, COMMIT
        # then one tenant per batch: the connections' binding switches from one to the other
        for t in (tenant, other_tenant):
            end = ccr("TERMINATION_REQUEST", "m1", 1, groups=[group(1, used=60)])
            done = await node.credit_control(t, request(end))
            assert done["resultCode"] == 2001, done
        st = await account_state(rt, tenant, acc["id"])
        ot = await account_state(rt, other_tenant, other["id"])
        assert st["money_reserved"] == 0 and ot["money_reserved"] == 0
        assert st["usage"]["n"] == 1 and ot["usage"]["n"] == 1
        assert 2000 - ot["money"] == 1000 - st["money"] > 0  # the same call charged once in each tenant
        node._evict((tenant, acc["id"]), "test")
        node._evict((other_tenant, other["id"]), "test")
        assert await node.credit_control(other_tenant, request(ccr("INITIAL_REQUEST", "m1", 0, other["msisdn"],
                                                                   groups=[group(1, 100)]))) == two
    finally:
        await node.stop()

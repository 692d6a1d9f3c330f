"""The charging node's engine: requests queue, one task decides them in memory and group-commits them.

The loop takes what is queued (up to ``batch_max`` requests), loads the accounts it does not hold yet (one statement
for all), decides each request with ``ChargingService.decide`` on the in-memory state (the same code as the database
path: the writes a decision would make are captured, applied to memory and added to the batch), then writes the
whole batch in one statement that is its own transaction (one round trip; the connection is bound to the tenant at
session level): the shard fence, the conflict and version checks, and the writes of the accounts that pass them
(buckets, sessions, reservations, stored answers, usage records, outbox events), data-modifying CTEs over JSON
arrays. The answers are released only after that statement committed. Requests arriving meanwhile queue for the next
batch (the batch grows with the load).

* a failed commit (the database unreachable, a timeout) answers every request of the batch 5012 and drops the
  batch's accounts from memory (loaded again when used);
* an account changed by another writer since it was loaded (its version moved), a new session whose id exists, an
  answer already stored: that account's requests are left out of the batch, the account is dropped and its requests
  decided again on fresh state in the next batch (then with a lookup of their session and stored answer);
* a shard whose lease was lost (the fence failed): its requests are answered 5012 and its accounts dropped;
* a session or event id that a batch not yet committed uses on another account (ids are unique per tenant): the
  request waits for that batch and is then decided as the database path decides it (the session or stored answer
  of the other account), so that one reused id never fails a whole batch's commit;
* the queue is bounded: beyond ``max_queue`` waiting requests the answer is 3004 (too busy) at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from openbss.charging import errors as rc
from openbss.charging.node import metrics
from openbss.charging.node.shards import OWNERS, Leases, shard_of
from openbss.charging.node.state import COMMIT, IDS, LOAD_BY_ID, LOAD_BY_SUBSCRIBER, LOOKUP, AccountMem, dumps
from openbss.charging.repository import SERVER_SETTINGS, ChargingConnection
from openbss.charging.schemas import CreditControlRequest
from openbss.charging.service import ChargingService, WriteCapture, _answer, precheck, subscriber_key
from openbss.platform.db import SCOPE_GUC, TENANT_GUC, Database
from openbss.platform.events.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

TOO_BUSY = 3004
REDIRECT = 3006
RESULT_NAMES = {TOO_BUSY: "DIAMETER_TOO_BUSY", REDIRECT: "DIAMETER_REDIRECT_INDICATION"}
MAX_ATTEMPTS = 3
OPENING = ("INITIAL_REQUEST", "EVENT_REQUEST")


@dataclass
class NodeConfig:
    node_id: str = field(default_factory=lambda: f"node-{uuid.uuid4().hex[:12]}")
    address: str = ""  # where this node answers (named in redirects)
    shards: int = 64
    lease_seconds: float = 10.0
    wanted: set[int] | None = None  # the shards this node may take (default: any)
    max_shards: int | None = None  # at most this many (default: all it can)
    batch_max: int = 500
    max_queue: int = 5000
    commit_timeout: float = 2.0
    inflight: int = 4  # batches decided and committing at once (a batch waits for those it shares accounts with)
    base_url: str = ""
    answer_memory_seconds: float = 120.0  # closed sessions and their answers stay this long in memory


@dataclass
class Pending:
    tenant_id: str
    ccr: CreditControlRequest
    usage_type: str
    future: asyncio.Future[dict[str, Any]]
    attempts: int = 0
    lookup: bool = False  # decide with the session and stored answer read from the database
    db_session: dict[str, Any] | None = None
    db_stored: dict[str, Any] | None = None
    account_key: tuple[str, str] | None = None
    account: AccountMem | None = None  # the account in memory the decision was made on


class Batch:
    """The writes of one group commit, per tenant and account."""

    def __init__(self) -> None:
        self.ops: dict[tuple[str, str], list[Pending]] = {}  # account -> its requests in this batch
        self.buckets: dict[tuple[str, str], dict[str, list[int | None]]] = {}
        self.sessions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.new_sessions: dict[tuple[str, str], set[str]] = {}
        #: rows as this batch leaves them (copies: a later batch, decided while this one commits, changes memory)
        self.reservations: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        self.answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.usages: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.events: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.results: list[tuple[Pending, dict[str, Any]]] = []
        self.versions: dict[tuple[str, str], int] = {}
        #: the session and event ids this batch uses (tenant, id) and the requests waiting for it to commit: those
        #: that use one of them on another account
        self.claimed: list[tuple[str, str]] = []
        self.deferred: list[Pending] = []

    def touched(self) -> bool:
        return bool(self.versions)


class ChargingNode:
    """Credit control over the accounts of the shards this node holds: ``await node.credit_control(tenant, ccr)``
    (the same request model and answer as ``ChargingService.credit_control``)."""

    def __init__(self, service: ChargingService, db: Database, config: NodeConfig | None = None,
                 dsn: str | None = None) -> None:
        self.service = service
        self.db = db
        self.config = config or NodeConfig()
        self.dsn = dsn or db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        c = self.config
        self.leases = Leases(c.node_id, c.address, c.shards, c.lease_seconds, c.wanted, c.max_shards)
        self.accounts: dict[tuple[str, str], AccountMem] = {}
        self.by_subscriber: dict[tuple[str, str], str] = {}
        self.by_session: dict[tuple[str, str], str] = {}
        self.queue: deque[Pending] = deque()
        self.wakeup = asyncio.Event()
        self.pool: asyncpg.Pool | None = None
        self.lease_conn_lock = asyncio.Lock()
        self.ids: dict[str, list[int]] = {"charging_session": [], "charging_reservation": []}
        self.closed: deque[tuple[float, tuple[str, str], str]] = deque()
        self.tasks: list[asyncio.Task[Any]] = []
        self.running = False
        self.commits: list[tuple[set[tuple[str, str]], asyncio.Task[None]]] = []
        #: (tenant, session or event id) -> the account and the batch that last used it, until that batch committed
        self.claims: dict[tuple[str, str], tuple[tuple[str, str], Batch]] = {}
        self.slots = asyncio.Semaphore(self.config.inflight)

    # --- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=2, max_size=4, server_settings=SERVER_SETTINGS,
                                              command_timeout=self.config.commit_timeout * 2, reset=_reset,
                                              connection_class=ChargingConnection)
        self.running = True
        with contextlib.suppress(Exception):
            await self._heartbeat()
        self.tasks = [asyncio.create_task(self._loop(), name="charging-node-batches"),
                      asyncio.create_task(self._leases_loop(), name="charging-node-leases")]

    async def stop(self, release: bool = True) -> None:
        self.running = False
        self.wakeup.set()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, task in list(self.commits):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        while self.queue:
            p = self.queue.popleft()
            self._resolve(p, self._fail(p.ccr, "the node is stopping"))
        if self.pool is not None:
            if release:
                with contextlib.suppress(Exception):
                    async with self.pool.acquire() as conn:
                        await self.leases.release(conn)
            await self.pool.close()
            self.pool = None

    async def _leases_loop(self) -> None:
        period = self.config.lease_seconds / 3
        while self.running:
            await asyncio.sleep(period)
            try:
                await self._heartbeat()
            except Exception as exc:  # the database unreachable: the leases run out, the node stops answering
                log.warning("charging node %s: lease renewal failed: %s", self.config.node_id, exc)
            self._drop_shards(self.leases.expire_local())

    async def _heartbeat(self) -> None:
        assert self.pool is not None
        async with self.pool.acquire(timeout=self.config.commit_timeout) as conn:
            _gained, lost = await asyncio.wait_for(self.leases.heartbeat(conn), self.config.commit_timeout)
        self._drop_shards(lost)

    def _drop_shards(self, shards: set[int]) -> None:
        if not shards:
            return
        for key in [k for k, a in self.accounts.items() if a.shard in shards]:
            self._evict(key, "shard lost")

    def owned_shards(self) -> list[int]:
        return sorted(s for s in self.leases.owned if self.leases.valid(s))

    # --- the entry point --------------------------------------------------------------------------------------
    async def credit_control(self, tenant_id: str, ccr: CreditControlRequest) -> dict[str, Any]:
        metrics.REQUESTS.inc()
        usage_type, refused = precheck(ccr)
        if refused is not None:
            return self._count(refused)
        assert usage_type is not None
        if len(self.queue) >= self.config.max_queue or not self.running:
            return self._count(_answer(ccr, TOO_BUSY, message="the charging node is overloaded, retry later")
                               | {"resultName": RESULT_NAMES[TOO_BUSY]})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.queue.append(Pending(tenant_id, ccr, usage_type, future))
        metrics.QUEUE_DEPTH.set(len(self.queue))
        self.wakeup.set()
        return await future

    @staticmethod
    def _count(answer: dict[str, Any]) -> dict[str, Any]:
        metrics.ANSWERS.labels(str(answer.get("resultCode"))).inc()
        return answer

    def _resolve(self, p: Pending, answer: dict[str, Any]) -> None:
        if not p.future.done():
            p.future.set_result(self._count(answer))

    @staticmethod
    def _fail(ccr: CreditControlRequest, message: str) -> dict[str, Any]:
        return _answer(ccr, rc.UNABLE_TO_COMPLY, message=message)

    # --- the batch loop ---------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while self.running:
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            batch: list[Pending] = []
            while self.queue and len(batch) < self.config.batch_max:
                batch.append(self.queue.popleft())
            metrics.QUEUE_DEPTH.set(len(self.queue))
            await self.slots.acquire()
            started = False
            try:
                started = await self._process(batch)
            except Exception as exc:  # never leave a request unanswered
                log.exception("charging node batch failed")
                for p in batch:
                    if p.account_key is not None:
                        self._evict(p.account_key, "batch failed")
                    self._resolve(p, self._fail(p.ccr, f"the batch failed: {type(exc).__name__}"))
            finally:
                if not started:
                    self.slots.release()
            self._forget_closed()

    async def _process(self, batch: list[Pending]) -> bool:
        """Decide a batch and start its commit (True), or answer it at once (False: nothing to commit)."""
        now = time.time()
        work: list[Pending] = []
        for p in batch:  # the lease first: answer nothing for a shard the node cannot vouch for
            if p.ccr.requestType in OPENING:
                assert p.ccr.subscriptionId is not None
                shard = shard_of(subscriber_key(p.ccr.subscriptionId.data), self.config.shards)
                if not self.leases.valid(shard):
                    self._resolve(p, await self._not_owner(p, shard))
                    continue
            work.append(p)
        out = Batch()
        try:
            return await self._decide_batch(work, out, now)
        except BaseException:
            self._release(out)
            raise

    async def _decide_batch(self, work: list[Pending], out: Batch, now: float) -> bool:
        await self._load(work)
        for p in work:
            if p.future.done():
                continue
            try:
                await self._decide(p, out, now)
            except Exception as exc:
                log.exception("charging node decision failed")
                if p.account_key is not None:
                    self._evict(p.account_key, "decision failed")
                self._resolve(p, self._fail(p.ccr, f"the decision failed: {type(exc).__name__}"))
        if out.touched() or any(p.account_key is not None for p, _ in out.results):
            keys = {p.account_key for p, _ in out.results if p.account_key is not None}
            after = [task for shared, task in self.commits if shared & keys]
            task = asyncio.create_task(self._commit(out, after))
            entry = (keys, task)
            self.commits.append(entry)

            def done(_: Any) -> None:
                self.commits.remove(entry)
                self.slots.release()
                self._release(out)

            task.add_done_callback(done)
            return True
        for p, answer in out.results:
            self._resolve(p, answer)
        self._release(out)
        return False

    def _release(self, out: Batch) -> None:
        """A batch committed (or failed): the ids it used are free again, the requests that waited for it are decided
        next, first."""
        for claim in out.claimed:
            if (held := self.claims.get(claim)) is not None and held[1] is out:
                del self.claims[claim]
        out.claimed.clear()
        if out.deferred:
            for p in reversed(out.deferred):
                self.queue.appendleft(p)
            out.deferred.clear()
            self.wakeup.set()

    async def _not_owner(self, p: Pending, shard: int) -> dict[str, Any]:
        """A request for a shard another node holds: a redirect naming it; none (or this node's lease lapsed):
        5012, never an answer from state the node cannot vouch for."""
        owner = None
        try:
            assert self.pool is not None
            async with self.pool.acquire(timeout=self.config.commit_timeout) as conn:
                owner = await conn.fetchrow(OWNERS, shard, timeout=self.config.commit_timeout)
        except Exception:
            owner = None
        if owner is not None and owner["live"] and owner["owner"] != self.config.node_id:
            return _answer(p.ccr, REDIRECT, message=f"shard {shard} is owned by charging node '{owner['owner']}'",
                           redirectHost=owner["address"] or owner["owner"], shard=shard) \
                | {"resultName": RESULT_NAMES[REDIRECT]}
        return self._fail(p.ccr, f"shard {shard} has no live owner (this node does not hold its lease)")

    # --- loading ----------------------------------------------------------------------------------------------
    async def _load(self, work: list[Pending]) -> None:
        """Find each request's account in memory, loading what is missing: accounts by subscriber, sessions (and
        stored answers) by id, in a few set-based statements per tenant."""
        lookups: dict[str, list[Pending]] = {}
        loads: dict[str, tuple[set[str], set[str]]] = {}
        for p in work:
            t = p.tenant_id
            if p.ccr.requestType in OPENING:
                assert p.ccr.subscriptionId is not None
                sub = subscriber_key(p.ccr.subscriptionId.data)
                if (t, sub) not in self.by_subscriber:
                    loads.setdefault(t, (set(), set()))[0].add(sub)
                if p.lookup:
                    lookups.setdefault(t, []).append(p)
            else:
                account_id = self.by_session.get((t, p.ccr.sessionId))
                acc = self.accounts.get((t, account_id)) if account_id else None
                session = acc.sessions.get(p.ccr.sessionId) if acc else None
                if p.lookup or acc is None or session is None or (p.ccr.requestNumber <= session["last"]
                                                   and (p.ccr.sessionId, p.ccr.requestNumber) not in acc.answers):
                    lookups.setdefault(t, []).append(p)
        if not loads and not lookups:
            return
        assert self.pool is not None
        # each statement reads in one snapshot and is its own transaction: an account's state is read by one statement
        # (its version with it), and the commit's version check catches a change between two statements
        async with self.pool.acquire(timeout=self.config.commit_timeout) as conn:
            for t in set(loads) | set(lookups):
                await _bind(conn, t, "load")
                subs, ids = loads.get(t, (set(), set()))
                waiting = lookups.get(t, [])
                if waiting:
                    rows = await conn.fetch(LOOKUP, [p.ccr.sessionId for p in waiting],
                                            [p.ccr.requestNumber for p in waiting])
                    metrics.ROUND_TRIPS.labels("load").inc()
                    for p, row in zip(waiting, rows, strict=True):
                        p.db_session = json.loads(row["session"]) if row["session"] else None
                        p.db_stored = json.loads(row["stored"]) if row["stored"] else None
                        if p.db_session is not None and (t, p.db_session["account_id"]) not in self.accounts:
                            ids.add(p.db_session["account_id"])
                rows = []
                if subs:
                    rows.extend(await conn.fetch(LOAD_BY_SUBSCRIBER, sorted(subs)))
                    metrics.ROUND_TRIPS.labels("load").inc()
                if ids:
                    rows.extend(await conn.fetch(LOAD_BY_ID, sorted(ids)))
                    metrics.ROUND_TRIPS.labels("load").inc()
                for row in rows:
                    shard = shard_of(row["subscriber"], self.config.shards)
                    if not self.leases.valid(shard) or (t, row["id"]) in self.accounts:
                        continue
                    self._hold(AccountMem.from_row(t, shard, row))
                    metrics.RELOADS.labels("load").inc()

    def _hold(self, acc: AccountMem) -> None:
        t = acc.tenant_id
        self.accounts[(t, acc.id)] = acc
        self.by_subscriber[(t, acc.account["subscriber"])] = acc.id
        for sid in acc.sessions:
            self.by_session[(t, sid)] = acc.id
        metrics.ACCOUNTS.set(len(self.accounts))

    def _evict(self, key: tuple[str, str], reason: str) -> None:
        acc = self.accounts.pop(key, None)
        if acc is None:
            return
        t = acc.tenant_id
        self.by_subscriber.pop((t, acc.account["subscriber"]), None)
        for sid in acc.sessions:
            if self.by_session.get((t, sid)) == acc.id:
                self.by_session.pop((t, sid), None)
        metrics.RELOADS.labels(reason).inc()
        metrics.ACCOUNTS.set(len(self.accounts))

    def _forget_closed(self) -> None:
        """Closed sessions, their reservations and answers leave memory after a while (the database keeps them)."""
        limit = time.monotonic() - self.config.answer_memory_seconds
        while self.closed and self.closed[0][0] < limit:
            _, key, sid = self.closed.popleft()
            acc = self.accounts.get(key)
            if acc is None:
                continue
            session = acc.sessions.get(sid)
            if session is not None and session["state"] == "open":
                continue
            acc.sessions.pop(sid, None)
            if self.by_session.get((acc.tenant_id, sid)) == acc.id:
                self.by_session.pop((acc.tenant_id, sid), None)
            for k in [k for k in acc.answers if k[0] == sid]:
                acc.answers.pop(k, None)
            if session is not None:
                for rid in [rid for rid, r in acc.reservations.items()
                            if r["session_pk"] == session["id"] and r["state"] != "open"]:
                    acc.reservations.pop(rid, None)

    # --- deciding ---------------------------------------------------------------------------------------------
    async def _decide(self, p: Pending, out: Batch, now: float) -> None:
        ccr, t = p.ccr, p.tenant_id
        if ccr.requestType in OPENING:
            assert ccr.subscriptionId is not None
            account_id = self.by_subscriber.get((t, subscriber_key(ccr.subscriptionId.data)))
            if account_id is None:
                out.results.append((p, _answer(ccr, rc.USER_UNKNOWN, message="unknown subscriber")))
                return
        else:
            account_id = self.by_session.get((t, ccr.sessionId))
            if account_id is None and p.db_session is not None:
                account_id = p.db_session["account_id"]
                shard = shard_of(p.db_session["subscriber"], self.config.shards)
                if not self.leases.valid(shard):
                    out.results.append((p, await self._not_owner(p, shard)))
                    return
            if account_id is None:
                out.results.append((p, _answer(ccr, rc.UNKNOWN_SESSION_ID, message="unknown session")))
                return
        key = (t, account_id)
        acc = self.accounts.get(key)
        if acc is None or not self.leases.valid(acc.shard):
            out.results.append((p, self._fail(ccr, "the account is not held by this node")))
            return
        # one session or event id used on two accounts by batches not yet committed would make a commit fail (the
        # ids are unique per tenant): the second waits for the first's batch, then is decided as the database path
        # decides it (the other account's session or stored answer)
        claim = self.claims.get((t, ccr.sessionId))
        if claim is not None and claim[0] != key:
            claim[1].deferred.append(p)
            return
        if claim is None or claim[1] is not out:
            self.claims[(t, ccr.sessionId)] = (key, out)
            out.claimed.append((t, ccr.sessionId))
        p.account_key = key
        p.account = acc
        session = acc.sessions.get(ccr.sessionId)
        stored = acc.answers.get((ccr.sessionId, ccr.requestNumber))
        owner = self.by_session.get((t, ccr.sessionId))
        if session is None and owner is not None and owner != acc.id and (t, owner) in self.accounts:
            other = self.accounts[(t, owner)]  # a session id of another account, and its stored answers
            session = other.sessions.get(ccr.sessionId)
            stored = stored or other.answers.get((ccr.sessionId, ccr.requestNumber))
        if session is None and p.db_session is not None:
            session = p.db_session
        stored = stored or p.db_stored
        await self._ids()
        capture = WriteCapture()
        answer = await self.service.decide(self.db, t, capture, ccr, p.usage_type, self.config.base_url,
                                           acc.account, acc.state_for(session, stored, now), now)
        out.ops.setdefault(key, []).append(p)
        out.results.append((p, answer))
        for changes in capture.writes:
            self._apply(acc, key, changes, out)

    async def _ids(self) -> None:
        """Keep ids for the sessions and reservations the next decisions create (from the tables' sequences)."""
        need = self.config.batch_max * 2
        for table, ids in self.ids.items():
            if len(ids) < 8:
                assert self.pool is not None
                async with self.pool.acquire(timeout=self.config.commit_timeout) as conn:
                    ids.extend(r["id"] for r in await conn.fetch(IDS, table, need))

    def _apply(self, acc: AccountMem, key: tuple[str, str], ch: dict[str, Any], out: Batch) -> None:
        """Apply one captured write to memory and add it to the batch."""
        if key not in out.versions:  # the version this batch expects; the next batch expects the one after
            out.versions[key] = int(acc.account["version"])
            acc.account["version"] = int(acc.account["version"]) + 1
        deltas = out.buckets.setdefault(key, {})
        for b in ch.get("buckets") or []:
            row = acc.buckets.get(b["id"])
            if row is None:
                continue
            row["remaining"] = int(row["remaining"]) + int(b["dr"])
            row["reserved"] = int(row["reserved"]) + int(b["dq"])
            d = deltas.setdefault(b["id"], [0, 0, None])
            d[0] = int(d[0] or 0) + int(b["dr"])
            d[1] = int(d[1] or 0) + int(b["dq"])
            if b.get("lvl") is not None:
                row["threshold_level"] = int(b["lvl"])
                d[2] = int(b["lvl"])
        session_pk = None
        for s in ch.get("session") or []:
            sid = s["session_id"]
            row = acc.sessions.get(sid)
            if row is None:
                row = {"id": self.ids["charging_session"].pop(), "session_id": sid, "account_id": acc.id,
                       "info": s["info"], "service_context": s["service_context"]}
                acc.sessions[sid] = row
                self.by_session[(acc.tenant_id, sid)] = acc.id
                out.new_sessions.setdefault(key, set()).add(sid)
            row.update(state=s["state"], last=s["last"], expires_at=s["expires_at"])
            out.sessions.setdefault(key, {})[sid] = dict(row)
            session_pk = row["id"]
            if s["state"] != "open":
                self.closed.append((time.monotonic(), key, sid))
        touched = out.reservations.setdefault(key, {})
        for r in ch.get("reservation_updates") or []:
            row = acc.reservations.get(int(r["id"]))
            if row is None:
                continue
            row.update({k: v for k, v in r.items() if k != "rate" or v is not None})
            touched[int(r["id"])] = _snapshot(row)
        for r in ch.get("reservation_inserts") or []:
            rid = self.ids["charging_reservation"].pop()
            row = {**r, "id": rid, "session_pk": r["session_pk"] if r["session_pk"] is not None else session_pk}
            acc.reservations[rid] = row
            touched[rid] = _snapshot(row)
        sid, n = ch.get("session_id") or "", int(ch.get("request_number") or 0)
        if ch.get("response") is not None:
            acc.answers[(sid, n)] = ch["response"]
            out.answers.setdefault(key, []).append({"session_id": sid, "request_number": n,
                                                   "response": ch["response"]})
            if ch.get("session") is None:  # an event: no session row, the answer leaves memory after a while
                self.closed.append((time.monotonic(), key, sid))
        for u in ch.get("usages") or []:
            out.usages.setdefault(key, []).append({**u, "account_id": acc.id, "session_id": sid,
                                                   "request_number": n})
        out.events.setdefault(key, []).extend(ch.get("events") or [])

    # --- group commit -----------------------------------------------------------------------------------------
    async def _commit(self, out: Batch, after: list[asyncio.Task[None]]) -> None:
        """Commit a batch once the batches it shares accounts with have (their writes come first)."""
        if after:
            await asyncio.gather(*after, return_exceptions=True)
        started = time.perf_counter()
        keys = list(out.versions)
        # every answer decided from memory is confirmed by the fence, those that write nothing too (an
        # out-of-order request number, a repeat): a node that lost a shard never answers from its stale state.
        # An account dropped meanwhile (an earlier batch failed or found it changed) is left out: its requests
        # are decided again.
        held = {p.account_key: p.account for p, _ in out.results
                if p.account_key is not None and p.account is not None
                and self.accounts.get(p.account_key) is p.account}
        replaced = {p.account_key for p, _ in out.results if p.account_key is not None and p.account_key not in held}
        shards = sorted({a.shard for a in held.values()})
        stale: set[tuple[str, str]] = set()
        lost: set[int] = set()
        try:
            assert self.pool is not None
            by_tenant: dict[str, list[tuple[str, str]]] = {}
            for k in keys:
                if k in held:
                    by_tenant.setdefault(k[0], []).append(k)
            epochs = [self.leases.owned.get(s, -1) for s in shards]
            timeout = self.config.commit_timeout
            async with self.pool.acquire(timeout=timeout) as conn:
                if len(by_tenant) <= 1:
                    # one tenant (the usual batch): the connection bound to it at session level (a round trip only
                    # when it served another tenant), the batch's one statement is its own transaction
                    for t in by_tenant:
                        await _bind(conn, t, "commit")
                    tkeys = next(iter(by_tenant.values()), [])
                    row = await conn.fetchrow(COMMIT, *self._commit_args(out, tkeys, held, shards, epochs),
                                              timeout=timeout)
                    metrics.ROUND_TRIPS.labels("commit").inc()
                    fenced, written = set(row["fenced"]), set(row["written"])
                else:  # several tenants: one transaction, each tenant's statement under its own binding
                    fenced, written = set(shards), set()
                    async with conn.transaction():
                        for t, tkeys in by_tenant.items():
                            await conn.execute(f"SELECT set_config('{TENANT_GUC}', $1, true), "
                                               f"set_config('{SCOPE_GUC}', '', true)", t, timeout=timeout)
                            row = await conn.fetchrow(COMMIT, *self._commit_args(out, tkeys, held, shards, epochs),
                                                      timeout=timeout)
                            fenced &= set(row["fenced"])
                            written |= set(row["written"])
                            metrics.ROUND_TRIPS.labels("commit").inc(2)
                    metrics.ROUND_TRIPS.labels("commit").inc(2)
                lost = set(shards) - fenced
                stale = {k for ks in by_tenant.values() for k in ks
                         if held[k].shard not in lost and k[1] not in written}
        except Exception as exc:
            log.warning("charging node %s: group commit failed: %s", self.config.node_id, exc)
            for k, acc in held.items():
                if self.accounts.get(k) is acc:
                    self._evict(k, "commit failed")
            for p, _ in out.results:
                self._resolve(p, self._fail(p.ccr, "the charging database did not confirm the decision"))
            return
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(out.results))
        for k in stale | {k for k in keys if k in held and held[k].shard in lost}:
            if self.accounts.get(k) is held.get(k):
                self._evict(k, "stale" if k in stale else "shard lost")
        stale |= replaced
        if lost:
            for s in lost:
                self.leases.owned.pop(s, None)
                self.leases.valid_until.pop(s, None)
            metrics.OWNED_SHARDS.set(len(self.leases.owned))
            self._drop_shards(lost)
        retry: list[Pending] = []
        for p, answer in out.results:
            pk = p.account_key
            if pk is not None and pk in stale:
                p.attempts += 1
                p.lookup = True
                p.db_session = p.db_stored = None
                if p.attempts >= MAX_ATTEMPTS:
                    self._resolve(p, self._fail(p.ccr, "the account kept changing under the decision"))
                else:
                    retry.append(p)
            elif pk is not None and pk in held and held[pk].shard in lost:
                self._resolve(p, self._fail(p.ccr, "this node lost the account's shard"))
            else:
                self._resolve(p, answer)
        for p in reversed(retry):  # decided again first, on fresh state
            self.queue.appendleft(p)
        if retry:
            self.wakeup.set()

    def _commit_args(self, out: Batch, keys: list[tuple[str, str]], held: dict[tuple[str, str], AccountMem],
                     shards: list[int], epochs: list[int]) -> list[Any]:
        """The parameters of ``COMMIT`` for the accounts ``keys`` of one tenant."""
        buckets: list[dict[str, Any]] = []
        sessions: list[dict[str, Any]] = []
        reservations: list[dict[str, Any]] = []
        answers: list[dict[str, Any]] = []
        usages: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for k in keys:
            a = k[1]
            for rid, r in out.reservations.get(k, {}).items():
                reservations.append({"id": rid, "account_id": a, "session_pk": r["session_pk"],
                                     "rating_group": r["rating_group"], "usage_type": r["usage_type"],
                                     "state": r["state"], "holds": r["holds"], "granted": r["granted"],
                                     "used_units": r["used_units"], "allowance_units": r["allowance_units"],
                                     "money_units": r["money_units"], "rate": r["rate"],
                                     "expires_at": r["expires_at"]})
            for bid, (dr, dq, lvl) in out.buckets.get(k, {}).items():
                buckets.append({"id": bid, "dr": dr, "dq": dq, "lvl": lvl, "account_id": a})
            new = out.new_sessions.get(k, ())
            for row in out.sessions.get(k, {}).values():
                sessions.append({"id": row["id"], "session_id": row["session_id"], "account_id": a,
                                 "state": row["state"], "last": row["last"], "service_context": row["service_context"],
                                 "info": row["info"], "expires_at": row["expires_at"],
                                 "new": row["session_id"] in new})
            answers.extend({**q, "account_id": a} for q in out.answers.get(k, ()))
            usages.extend(out.usages.get(k, ()))
            events.extend({**e, "account_id": a} for e in out.events.get(k, ()))
        return [self.config.node_id, shards, epochs, [k[1] for k in keys], [out.versions[k] for k in keys],
                [held[k].shard for k in keys],
                *(dumps(rows).decode() for rows in (buckets, sessions, reservations, answers, usages, events)),
                NOTIFY_CHANNEL]


async def _bind(conn: Any, tenant_id: str, phase: str) -> None:
    """Bind a pool connection to a tenant at session level (row-level security), a round trip only when it served
    another tenant: the node's statements then run without BEGIN and COMMIT, each its own transaction."""
    if getattr(conn, "_bound_tenant", None) != tenant_id:
        await conn.bind_tenant(tenant_id)
        metrics.ROUND_TRIPS.labels(phase).inc()


async def _reset(conn: asyncpg.Connection) -> None:
    """A connection back to the node's pool: only a transaction left open is ended — asyncpg's default reset
    costs a round trip on every release, several per batch. The tenant binding at session level stays on purpose
    (``_bind`` re-binds a connection that served another tenant; no LISTEN, no advisory lock)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _snapshot(row: dict[str, Any]) -> dict[str, Any]:
    """A reservation row as it is now (a call rated per band keeps counters in its rate: copied too)."""
    out = dict(row)
    if isinstance(out.get("rate"), dict) and "lanes" in out["rate"]:
        out["rate"] = copy.deepcopy(out["rate"])
    return out

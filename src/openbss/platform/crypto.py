"""Envelope encryption of personal data at rest, and keyed blind indexes for searching it.

Keys, from the outside in:

* **Master keys** (key-encryption keys) come from the environment: ``OPENBSS_MASTER_KEYS="id:base64,id:base64"``
  (the first one wraps; the others still unwrap, which is what lets a rotation proceed online) or
  ``OPENBSS_MASTER_KEY=base64`` (one key; its id is derived from it). In development, when neither is set, a key is
  generated under ``data_dir/keys/master-keys`` like the JWT signing key. They never reach the database.
* **Tenant data keys**: each tenant has an active AES-256 data key (and older, retired ones) and one blind-index
  key, stored in ``tenant_data_key`` wrapped (AES-GCM) by a master key, with the id of that master key.
* **Values**: an encrypted value is a string ``pii:1:<data key id>:<base64url(nonce | ciphertext+tag)>`` of
  AES-256-GCM over the JSON of the value, with associated data binding it to its tenant, resource type and id (a
  ciphertext copied to another row does not decrypt).
* **Blind index**: HMAC-SHA256 under the tenant's index key of ``resource | attribute | normalized value``,
  truncated to 16 bytes. Equal values give equal digests within one tenant and attribute only.

Rotation (``openbss keys rotate``): re-wrap every tenant key under the current master key, give every tenant a new
data key, and re-encrypt the stored values in small batches (``FOR UPDATE SKIP LOCKED``, one short transaction per
batch) while the API keeps serving: readers decrypt with whichever data key a value names, writers use the active
one. Retired data keys stay (wrapped) so that nothing can become unreadable.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import DateTime, Index, LargeBinary, String, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, Database, TenantScoped, json_dumps, json_loads
from openbss.platform.errors import DomainError
from openbss.settings import Settings, get_settings

TOKEN_PREFIX = "pii:1:"  # noqa: S105 - a format marker, not a secret
DATA, INDEX = "data", "index"
ACTIVE, RETIRED = "active", "retired"
DIGEST_BYTES = 16


class KeyError_(DomainError):
    status = 500
    code = "KEY_UNAVAILABLE"
    reason = "Encryption key unavailable"


class TenantDataKey(TenantScoped, Base):
    """A tenant's data or blind-index key, wrapped by a master key."""

    __tablename__ = "tenant_data_key"
    __table_args__ = (
        Index("uq_tenant_data_key_active", "tenant_id", "purpose", unique=True,
              postgresql_where=text("status = 'active'")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE, server_default=ACTIVE)
    master_key_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    rewrapped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- master keys ---------------------------------------------------------------------------------------------
def _b64decode(value: str) -> bytes:
    value = value.strip()
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


def derived_key_id(key: bytes) -> str:
    return "mk-" + hashlib.sha256(b"openbss-master-key-id" + key).hexdigest()[:12]


def parse_keyring(spec: str) -> list[tuple[str, bytes]]:
    """``id:base64,id:base64`` (a bare ``base64`` gets a derived id). Keys must be 32 bytes."""
    out: list[tuple[str, bytes]] = []
    for item in (p.strip() for p in spec.replace("\n", ",").split(",")):
        if not item:
            continue
        kid, sep, raw = item.partition(":")
        if not sep:
            raw, kid = kid, ""
        try:
            key = _b64decode(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"master key '{kid or '?'}' is not valid base64") from exc
        if len(key) != 32:
            raise ValueError(f"master key '{kid or '?'}' must be 32 bytes (base64 of 32 random bytes)")
        out.append((kid or derived_key_id(key), key))
    if not out:
        raise ValueError("no master key given")
    return out


def new_master_key() -> tuple[str, str]:
    """A fresh master key: (id, base64)."""
    key = secrets.token_bytes(32)
    return f"mk-{secrets.token_hex(6)}", _b64encode(key)


def dev_keyring_path(settings: Settings) -> Path:
    return settings.keys_dir / "master-keys"


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.replace(tmp, path)


def add_dev_master_key(settings: Settings, *, unless_present: bool = False) -> str | None:
    """Development mode: put a new master key first in the local keyring file (old ones kept). Returns its id.
    Processes sharing the file (a worker and an ``openbss keys rotate`` beside it) take turns under a file lock, so
    none loses a key another just added; with ``unless_present`` nothing is added to a file that exists."""
    path = dev_keyring_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if unless_present and path.exists():
            return None
        old = path.read_text() if path.exists() else ""
        kid, b64 = new_master_key()
        _write_private(path, f"{kid}:{b64}\n{old}")
        return kid


class MasterKeyring:
    """The master keys this process knows. The first wraps; every one unwraps."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._load()

    @property
    def from_environment(self) -> bool:
        return bool(self.settings.master_keys or self.settings.master_key)

    def _load(self) -> None:
        s = self.settings
        if s.master_keys:
            ring = parse_keyring(s.master_keys)
        elif s.master_key:
            ring = parse_keyring(s.master_key)
        else:
            path = dev_keyring_path(s)
            if not path.exists():
                with self._lock:
                    add_dev_master_key(s, unless_present=True)
            ring = parse_keyring(path.read_text())
        self.keys = dict(ring)
        self.current = ring[0][0]

    def reload(self) -> None:
        if not self.from_environment:
            self._load()

    def wrap(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        self.reload()
        nonce = secrets.token_bytes(12)
        return self.current, nonce + AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, aad)

    def unwrap(self, master_key_id: str, blob: bytes, aad: bytes) -> bytes:
        if master_key_id not in self.keys:
            self.reload()
        key = self.keys.get(master_key_id)
        if key is None:
            raise KeyError_(f"master key '{master_key_id}' is not configured (OPENBSS_MASTER_KEYS)")
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
        except InvalidTag as exc:
            raise KeyError_(f"a tenant key does not unwrap with master key '{master_key_id}'") from exc


def _wrap_aad(tenant_id: str, key_id: str, purpose: str) -> bytes:
    return f"openbss-tenant-key|{tenant_id}|{key_id}|{purpose}".encode()


# --- tenant keys ---------------------------------------------------------------------------------------------
class KeyService:
    """Tenant data keys, unwrapped on first use and cached in the process (key material never changes for an id)."""

    def __init__(self, keyring: MasterKeyring) -> None:
        self.keyring = keyring
        self._keys: dict[tuple[str, str], bytes] = {}
        self._index: dict[str, bytes] = {}

    async def _create(self, session: AsyncSession, tenant_id: str, purpose: str) -> None:
        key_id = secrets.token_hex(6)
        raw = secrets.token_bytes(32)
        mk, wrapped = self.keyring.wrap(raw, _wrap_aad(tenant_id, key_id, purpose))
        await session.execute(
            insert(TenantDataKey)
            .values(id=key_id, tenant_id=tenant_id, purpose=purpose, status=ACTIVE, master_key_id=mk,
                    wrapped=wrapped)
            .on_conflict_do_nothing(index_elements=["tenant_id", "purpose"], index_where=text("status = 'active'"))
        )

    def _unwrap(self, tenant_id: str, row: TenantDataKey) -> bytes:
        cached = self._keys.get((tenant_id, row.id))
        if cached is None:
            cached = self.keyring.unwrap(row.master_key_id, row.wrapped, _wrap_aad(tenant_id, row.id, row.purpose))
            self._keys[(tenant_id, row.id)] = cached
        return cached

    async def active(self, session: AsyncSession, tenant_id: str, purpose: str) -> tuple[str, bytes]:
        for _ in range(2):
            row = (await session.execute(
                select(TenantDataKey).where(TenantDataKey.purpose == purpose, TenantDataKey.status == ACTIVE)
                .execution_options(populate_existing=True)
            )).scalars().first()
            if row is not None:
                return row.id, self._unwrap(tenant_id, row)
            await self._create(session, tenant_id, purpose)
        raise KeyError_(f"no active {purpose} key for tenant '{tenant_id}'")

    async def data_key(self, session: AsyncSession, tenant_id: str, key_id: str) -> bytes:
        cached = self._keys.get((tenant_id, key_id))
        if cached is not None:
            return cached
        row = (await session.execute(select(TenantDataKey).where(TenantDataKey.id == key_id))).scalars().first()
        if row is None:
            raise KeyError_(f"data key '{key_id}' of tenant '{tenant_id}' does not exist")
        return self._unwrap(tenant_id, row)

    async def index_key(self, session: AsyncSession, tenant_id: str) -> bytes:
        key = self._index.get(tenant_id)
        if key is None:
            _, key = await self.active(session, tenant_id, INDEX)
            self._index[tenant_id] = key
        return key


def tenant_keys_sync(connection: Any, keyring: MasterKeyring, tenant_id: str) -> tuple[dict[str, bytes], bytes]:
    """The tenant's data keys by id and its blind-index key (created when missing), unwrapped, over a synchronous
    connection bound to the tenant (migrations run on one)."""
    t = TenantDataKey.__table__
    rows = connection.execute(select(t.c.id, t.c.purpose, t.c.status, t.c.master_key_id, t.c.wrapped)).all()
    data = {r.id: keyring.unwrap(r.master_key_id, r.wrapped, _wrap_aad(tenant_id, r.id, r.purpose))
            for r in rows if r.purpose == DATA}
    index = [r for r in rows if r.purpose == INDEX and r.status == ACTIVE]
    if index:
        row = index[0]
        return data, keyring.unwrap(row.master_key_id, row.wrapped, _wrap_aad(tenant_id, row.id, INDEX))
    key_id, raw = secrets.token_hex(6), secrets.token_bytes(32)
    mk, wrapped = keyring.wrap(raw, _wrap_aad(tenant_id, key_id, INDEX))
    connection.execute(insert(TenantDataKey).values(id=key_id, tenant_id=tenant_id, purpose=INDEX, status=ACTIVE,
                                                    master_key_id=mk, wrapped=wrapped))
    return data, raw


_service: KeyService | None = None
_service_lock = threading.Lock()


def key_service(settings: Settings | None = None) -> KeyService:
    """The process's key service (built from the settings on first use)."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                _service = KeyService(MasterKeyring(settings or get_settings()))
    return _service


def reset_key_service() -> None:
    """Forget the keyring and cached keys (after the master key configuration changed; tests)."""
    global _service
    _service = None


# --- values --------------------------------------------------------------------------------------------------
def aad_for(tenant_id: str, resource_type: str, resource_id: str) -> bytes:
    return f"{tenant_id}|{resource_type}|{resource_id}".encode()


def seal(key_id: str, key: bytes, value: Any, aad: bytes) -> str:
    nonce = secrets.token_bytes(12)
    ct = AESGCM(key).encrypt(nonce, json_dumps(value).encode(), aad)
    return f"{TOKEN_PREFIX}{key_id}:{_b64encode(nonce + ct)}"


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def sealed_key_id(token: str) -> str:
    return token[len(TOKEN_PREFIX):].split(":", 1)[0]


def unseal(key: bytes, token: str, aad: bytes) -> Any:
    blob = _b64decode(token[len(TOKEN_PREFIX):].split(":", 1)[1])
    try:
        plain = AESGCM(key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag as exc:
        raise KeyError_("an encrypted value does not decrypt (wrong key or tampered)") from exc
    return json_loads(plain)


def blind_digest(index_key: bytes, resource_type: str, attribute: str, normalized: str) -> bytes:
    msg = f"{resource_type}\x1f{attribute}\x1f{normalized}".encode()
    return hmac.new(index_key, msg, hashlib.sha256).digest()[:DIGEST_BYTES]


def unseal_document(body: Any, data_keys: dict[str, bytes], aad: bytes) -> Any:
    """A copy of a stored document with every sealed value decrypted (keys by id)."""
    def plain(token: str) -> Any:
        key = data_keys.get(sealed_key_id(token))
        if key is None:
            raise KeyError_(f"data key '{sealed_key_id(token)}' is not available")
        return unseal(key, token, aad)
    return walk_sealed(body, plain)


def walk_sealed(value: Any, fn: Callable[[str], Any]) -> Any:
    """A copy of a JSON value with ``fn`` applied to every sealed string."""
    if isinstance(value, dict):
        return {k: walk_sealed(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [walk_sealed(v, fn) for v in value]
    if is_sealed(value):
        return fn(value)
    return value


# --- rotation ------------------------------------------------------------------------------------------------
@dataclass
class EncryptedTable:
    """A table whose documents hold sealed values: its ORM class and the resource type in the values' AAD."""

    table: Any
    resource_type: str


@dataclass
class RotationReport:
    tenants: int = 0
    keys_rewrapped: int = 0
    values_reencrypted: int = 0
    rows_reencrypted: int = 0
    master_key_id: str = ""


async def rewrap_tenant_keys(session: AsyncSession, keyring: MasterKeyring, tenant_id: str) -> int:
    rows = (await session.execute(select(TenantDataKey).with_for_update())).scalars().all()
    n = 0
    for row in rows:
        if row.master_key_id == keyring.current:
            continue
        aad = _wrap_aad(tenant_id, row.id, row.purpose)
        raw = keyring.unwrap(row.master_key_id, row.wrapped, aad)
        row.master_key_id, row.wrapped = keyring.wrap(raw, aad)
        row.rewrapped_at = func.now()
        n += 1
    await session.flush()
    return n


async def new_data_key(session: AsyncSession, keys: KeyService, tenant_id: str) -> str:
    """Retire the tenant's active data key and create a new one; returns its id."""
    await session.execute(
        update(TenantDataKey).where(TenantDataKey.purpose == DATA, TenantDataKey.status == ACTIVE)
        .values(status=RETIRED)
    )
    await keys._create(session, tenant_id, DATA)
    key_id, _ = await keys.active(session, tenant_id, DATA)
    return key_id


async def reencrypt_table(db: Database, keys: KeyService, tenant_id: str, target: EncryptedTable,
                          batch_size: int = 500, on_batch: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Re-encrypt every sealed value of the table not under the tenant's active data key. Returns (rows, values).

    Keyset pagination in short transactions; rows a request holds locked are skipped and picked up by the next
    pass, which runs until a pass finds nothing left to do.
    """
    t = target.table
    total_rows = total_values = 0
    while True:
        pass_rows = 0
        last_id = ""
        skipped = False
        while True:
            async with db.transaction(tenant_id) as session:
                active_id, active_key = await keys.active(session, tenant_id, DATA)
                ids = (await session.execute(
                    select(t.id).where(t.id > last_id).order_by(t.id).limit(batch_size)
                )).scalars().all()
                if not ids:
                    break
                last_id = ids[-1]
                rows = (await session.execute(
                    select(t).where(t.id.in_(ids)).with_for_update(skip_locked=True)
                )).scalars().all()
                skipped |= len(rows) < len(ids)
                changed = 0
                for row in rows:
                    aad = aad_for(tenant_id, target.resource_type, row.id)
                    count = 0
                    tokens = [tok for tok in _sealed_strings(row.body) if sealed_key_id(tok) != active_id]
                    if not tokens:
                        continue
                    plain: dict[str, str] = {}
                    for tok in tokens:
                        key = await keys.data_key(session, tenant_id, sealed_key_id(tok))
                        plain[tok] = seal(active_id, active_key, unseal(key, tok, aad), aad)
                        count += 1
                    row.body = walk_sealed(row.body, _replacer(plain))
                    changed += 1
                    total_values += count
                await session.flush()
                pass_rows += changed
                if on_batch:
                    on_batch(len(ids))
        total_rows += pass_rows
        if not skipped:
            return total_rows, total_values


def _replacer(mapping: dict[str, str]) -> Callable[[str], str]:
    return lambda token: mapping.get(token, token)


def _progress(on_progress: Callable[[str, int], None] | None, name: str) -> Callable[[int], None] | None:
    if on_progress is None:
        return None
    return lambda n: on_progress(name, n)


def _sealed_strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _sealed_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _sealed_strings(v)
    elif is_sealed(value):
        yield value


async def tenant_ids(db: Database) -> list[str]:
    from openbss.platform.tenancy import Tenant

    async with db.transaction(None) as session:
        return list((await session.execute(select(Tenant.id).order_by(Tenant.id))).scalars().all())


async def rotate(db: Database, keys: KeyService, tables: list[EncryptedTable], *,
                 tenants: list[str] | None = None, new_data_keys: bool = True,
                 on_progress: Callable[[str, int], None] | None = None) -> RotationReport:
    """Re-wrap every tenant key under the current master key; with ``new_data_keys``, also give each tenant a new
    data key and re-encrypt its stored values under it."""
    keys.keyring.reload()
    report = RotationReport(master_key_id=keys.keyring.current)
    for tenant_id in tenants if tenants is not None else await tenant_ids(db):
        report.tenants += 1
        async with db.transaction(tenant_id) as session:
            report.keys_rewrapped += await rewrap_tenant_keys(session, keys.keyring, tenant_id)
            if new_data_keys:
                await new_data_key(session, keys, tenant_id)
        if new_data_keys:
            for target in tables:
                rows, values = await reencrypt_table(
                    db, keys, tenant_id, target,
                    on_batch=_progress(on_progress, target.resource_type))
                report.rows_reencrypted += rows
                report.values_reencrypted += values
    return report


def describe_keyring(keyring: MasterKeyring) -> dict[str, Any]:
    return {"current": keyring.current, "known": sorted(keyring.keys),
            "source": "environment" if keyring.from_environment else str(dev_keyring_path(keyring.settings))}


__all__ = [
    "EncryptedTable", "KeyService", "MasterKeyring", "RotationReport", "TenantDataKey", "add_dev_master_key",
    "blind_digest", "is_sealed", "key_service", "rotate", "seal", "unseal",
]

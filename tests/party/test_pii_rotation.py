"""Master key rotation: every tenant key re-wrapped, data re-encrypted under a new data key, online."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openbss.platform.crypto import (
    MasterKeyring,
    TenantDataKey,
    is_sealed,
    new_master_key,
    parse_keyring,
    sealed_key_id,
)
from tests.conftest import bearer, session_services
from tests.customer.helpers import CUST, IND, make_billing_account, make_customer, make_individual, raw_rows


async def key_rows(rt: Any, tenant: str) -> list[TenantDataKey]:
    async with rt.db.transaction(tenant) as s:
        return list((await s.execute(select(TenantDataKey).order_by(TenantDataKey.created_at))).scalars())


def sealed_ids(body: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(body, dict):
        for v in body.values():
            out |= sealed_ids(v)
    elif isinstance(body, list):
        for v in body:
            out |= sealed_ids(v)
    elif is_sealed(body):
        out.add(sealed_key_id(body))
    return out


async def test_rotation_is_online(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    from openbss.platform.crypto import add_dev_master_key, key_service, rotate

    ENCRYPTED_TABLES = session_services().encrypted_tables()

    h = bearer(tenant)
    people = [await make_individual(client, h, given=f"G{i}", family=f"F{i}", email=f"p{i}@example.com",
                                    phone=f"+3361234{i:04d}", ident=f"ID{i}") for i in range(30)]
    before = await key_rows(rt, tenant)
    old_data = next(k.id for k in before if k.purpose == "data" and k.status == "active")

    settings = rt.settings
    add_dev_master_key(settings)
    keys = key_service()
    stop = asyncio.Event()
    errors: list[str] = []
    reads = 0

    async def serve() -> None:  # the API keeps serving reads and writes during the rotation
        nonlocal reads
        i = 0
        while not stop.is_set():
            p = people[i % len(people)]
            r = await client.get(f"{IND}/{p['id']}", headers=h)
            if r.status_code != 200 or r.json()["familyName"] != p["familyName"]:
                errors.append(r.text)
            r = await client.patch(f"{IND}/{p['id']}", json={"middleName": f"M{i}"}, headers=h)
            if r.status_code != 200:
                errors.append(r.text)
            reads += 1
            i += 1
            await asyncio.sleep(0)

    async def rotation() -> Any:
        try:
            return await rotate(rt.db, keys, ENCRYPTED_TABLES, tenants=[tenant])
        finally:
            stop.set()

    report, _ = await asyncio.gather(rotation(), serve())
    assert not errors, errors[:3]
    assert reads > 0
    after = await key_rows(rt, tenant)
    current = keys.keyring.current
    assert all(k.master_key_id == current for k in after)
    assert report.keys_rewrapped >= 2 and report.rows_reencrypted >= 20  # the others were rewritten by PATCHes
    new_data = next(k.id for k in after if k.purpose == "data" and k.status == "active")
    assert new_data != old_data and any(k.id == old_data and k.status == "retired" for k in after)
    rows = await raw_rows(rt, "SELECT body FROM party_individual WHERE tenant_id = :t", t=tenant)
    assert all(sealed_ids(b) == {new_data} for (b,) in rows), "every value re-encrypted under the new data key"
    # readable afterwards, and search still works (the index key is kept, re-wrapped)
    r = await client.get(IND, params={"contactMedium.characteristic.emailAddress": "p7@example.com"}, headers=h)
    assert [x["id"] for x in r.json()] == [people[7]["id"]]


async def test_old_master_key_can_be_dropped_after_rotation(tmp_path: Path, client: httpx.AsyncClient, tenant: str,
                                                           rt: Any) -> None:
    """With keys from the environment: rotate to a new first key, then a process knowing only the new key reads."""
    from openbss.platform.crypto import KeyService, rotate
    from openbss.settings import Settings

    ENCRYPTED_TABLES = session_services().encrypted_tables()

    h = bearer(tenant)
    ind = await make_individual(client, h)
    old = rt.settings.keys_dir / "master-keys"
    old_ring = old.read_text().strip().replace("\n", ",")
    kid, b64 = new_master_key()
    both = KeyService(MasterKeyring(Settings(master_keys=f"{kid}:{b64},{old_ring}")))
    await rotate(rt.db, both, ENCRYPTED_TABLES, tenants=[tenant], new_data_keys=False)
    only_new = KeyService(MasterKeyring(Settings(master_keys=f"{kid}:{b64}")))
    async with rt.db.transaction(tenant) as s:
        for k in (await s.execute(select(TenantDataKey))).scalars():
            assert k.master_key_id == kid
            assert len(await only_new.data_key(s, tenant, k.id)) == 32
    r = await client.get(f"{IND}/{ind['id']}", headers=h)
    assert r.status_code == 200 and r.json()["familyName"] == "Lovelace"
    # leave the tenant's keys wrapped by the development key the rest of the session uses
    back = KeyService(MasterKeyring(Settings(master_keys=f"{old_ring},{kid}:{b64}")))
    await rotate(rt.db, back, ENCRYPTED_TABLES, tenants=[tenant], new_data_keys=False)


def test_keyring_configuration() -> None:
    kid, b64 = new_master_key()
    assert parse_keyring(f"{kid}:{b64}") [0][0] == kid
    assert parse_keyring(b64)[0][0].startswith("mk-")
    with pytest.raises(ValueError, match="32 bytes"):
        parse_keyring("k1:c2hvcnQ")
    from openbss.settings import Settings

    ring = MasterKeyring(Settings(master_key=b64))
    mk, blob = ring.wrap(b"x" * 32, b"aad")
    assert ring.unwrap(mk, blob, b"aad") == b"x" * 32
    from openbss.platform.crypto import KeyError_

    with pytest.raises(KeyError_):
        ring.unwrap(mk, blob, b"other")


def _add_keys(data_dir: str, n: int) -> None:
    from openbss.platform.crypto import add_dev_master_key
    from openbss.settings import Settings

    for _ in range(n):
        add_dev_master_key(Settings(data_dir=Path(data_dir)))


def test_development_master_keys_added_at_once_are_all_kept(tmp_path: Path) -> None:
    """Processes sharing a development keyring (a worker and ``openbss keys rotate`` beside it) add keys in turn:
    none is lost, and the file is never seen half written."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from openbss.platform.crypto import dev_keyring_path
    from openbss.settings import Settings

    with ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_add_keys, [str(tmp_path)] * 3, [10] * 3))
    ring = parse_keyring(dev_keyring_path(Settings(data_dir=tmp_path)).read_text())
    assert len(ring) == len({kid for kid, _ in ring}) == 30


@pytest.mark.slow
async def test_cli_keys_rotate(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    h = bearer(tenant)
    ind = await make_individual(client, h)
    customer = await make_customer(client, h, ind)
    await make_billing_account(client, h, customer)
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "openbss"), "keys", "rotate", "--tenant", tenant,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    # the API keeps answering while the CLI rotates
    while proc.returncode is None:
        r = await client.get(f"{CUST}/{customer['id']}", headers=h)
        assert r.status_code == 200 and r.json()["name"] == "Ada Lovelace"
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except TimeoutError:
            pass
    out = (await proc.stdout.read()).decode() if proc.stdout else ""
    assert proc.returncode == 0, out
    assert "rotated" in out and "3 record(s)" in out, out
    r = await client.get(f"{IND}/{ind['id']}", headers=h)
    assert r.status_code == 200 and r.json()["familyName"] == "Lovelace"

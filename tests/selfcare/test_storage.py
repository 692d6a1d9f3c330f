"""Document archive: the filesystem store and the S3 store (against a real moto S3 server on loopback) behave the
same - write-once, SHA-256 kept and checked, keys validated, retention honoured."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from openbss.platform.storage import (
    FilesystemObjectStore,
    ObjectCorrupt,
    ObjectExists,
    ObjectNotFound,
    ObjectRetained,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    StoredObject,
    object_store_from_url,
)

PDF = b"%PDF-1.4\n% an itemized usage statement\n%%EOF\n"
KEY = "selfcare/usage/CUS-000123/2026-10.pdf"
CREDS: dict[str, Any] = {"access_key": "testing", "secret_key": "testing"}


def _bucket() -> str:
    return f"openbss-test-{uuid.uuid4().hex[:16]}"


def _raw_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


async def _s3_store(endpoint: str, **kwargs: Any) -> S3ObjectStore:
    store = S3ObjectStore(_bucket(), kwargs.pop("prefix", "archive"), endpoint_url=endpoint, **CREDS, **kwargs)
    await store.ensure_bucket()
    return store


@pytest.fixture(params=["filesystem", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "filesystem":
        return FilesystemObjectStore(tmp_path / "archive")
    return await _s3_store(request.getfixturevalue("moto_endpoint"))


# --- the same behaviour from both stores ---------------------------------------------------------------------
async def test_put_get_head_keys_delete(store: ObjectStore) -> None:
    obj = await store.put(KEY, PDF, content_type="application/pdf", metadata={"customer-id": "CUS-000123"})
    assert obj == StoredObject(key=KEY, sha256=hashlib.sha256(PDF).hexdigest(), size=len(PDF),
                               content_type="application/pdf", metadata={"customer-id": "CUS-000123"})
    assert await store.get(KEY) == PDF
    assert await store.head(KEY) == obj
    await store.put("selfcare/usage/CUS-000124/2026-10.pdf", b"other", content_type="application/pdf")
    await store.put("invoices/INV-1.pdf", b"invoice", content_type="application/pdf")
    assert await store.keys() == ["invoices/INV-1.pdf", "selfcare/usage/CUS-000123/2026-10.pdf",
                                  "selfcare/usage/CUS-000124/2026-10.pdf"]
    assert await store.keys("selfcare/usage/CUS-000123/") == [KEY]
    assert await store.keys("selfcare/usage/CUS-00012") == [KEY, "selfcare/usage/CUS-000124/2026-10.pdf"]
    assert await store.keys("nothing/") == []

    await store.delete(KEY)
    assert await store.head(KEY) is None
    with pytest.raises(ObjectNotFound):
        await store.get(KEY)
    await store.delete(KEY)  # idempotent
    assert KEY not in await store.keys()
    # a deleted key can be archived again
    again = await store.put(KEY, b"re-issued", content_type="application/pdf")
    assert await store.get(KEY) == b"re-issued"
    assert again.metadata == {}


async def test_write_once(store: ObjectStore) -> None:
    await store.put(KEY, PDF, content_type="application/pdf")
    with pytest.raises(ObjectExists) as err:
        await store.put(KEY, b"a different statement", content_type="application/pdf")
    assert err.value.status == 409 and err.value.code == "OBJECT_EXISTS"
    assert await store.get(KEY) == PDF


async def test_concurrent_puts_exactly_one_wins(store: ObjectStore) -> None:
    bodies = [f"statement version {i}".encode() for i in range(8)]
    results = await asyncio.gather(*(store.put(KEY, body, content_type="application/pdf") for body in bodies),
                                   return_exceptions=True)
    winners = [r for r in results if isinstance(r, StoredObject)]
    losers = [r for r in results if not isinstance(r, StoredObject)]
    assert len(winners) == 1, results
    assert len(losers) == 7 and all(isinstance(e, ObjectExists) for e in losers), losers
    stored = await store.get(KEY)
    assert hashlib.sha256(stored).hexdigest() == winners[0].sha256
    assert await store.keys() == [KEY]


@pytest.mark.parametrize("key", ["../escape.pdf", "a/../../b.pdf", "/etc/passwd", "a\x00b", "", "a//b", "a/",
                                 ".hidden", "a/.b/c", "a/..", "doc.pdf.meta.json", "with space.pdf", "é.pdf",
                                 "a\\b.pdf", "x" * 1025])
async def test_key_validation(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, PDF, content_type="application/pdf")
    with pytest.raises(ValueError):
        await store.get(key)
    with pytest.raises(ValueError):
        await store.head(key)
    with pytest.raises(ValueError):
        await store.delete(key)
    assert await store.keys() == []


@pytest.mark.parametrize("metadata", [{"Customer": "x"}, {"sha256": "x"}, {"retain-until": "x"}, {"a": "é"},
                                      {"a": "line\nbreak"}, {"big": "x" * 3000}])
async def test_metadata_validation(store: ObjectStore, metadata: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        await store.put(KEY, PDF, content_type="application/pdf", metadata=metadata)
    assert await store.head(KEY) is None


async def test_retention(store: ObjectStore) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3650)
    await store.put(KEY, PDF, content_type="application/pdf", retain_until=until)
    head = await store.head(KEY)
    assert head is not None and head.retain_until == until
    with pytest.raises(ObjectRetained):
        await store.delete(KEY)
    assert await store.get(KEY) == PDF

    expired = datetime.now(UTC) - timedelta(seconds=1)
    await store.put("expired.pdf", PDF, content_type="application/pdf", retain_until=expired)
    await store.delete("expired.pdf")
    assert await store.head("expired.pdf") is None

    with pytest.raises(ValueError):
        await store.put("naive.pdf", PDF, content_type="application/pdf", retain_until=datetime(2030, 1, 1))


async def test_empty_and_large_objects(store: ObjectStore) -> None:
    big = bytes(range(256)) * 40_000  # 10 MB
    assert (await store.put("big.bin", big, content_type="application/octet-stream")).size == len(big)
    assert await store.get("big.bin") == big
    assert (await store.put("empty.bin", b"", content_type="application/octet-stream")).size == 0
    assert await store.get("empty.bin") == b""


# --- filesystem specifics ------------------------------------------------------------------------------------------
async def test_filesystem_layout_modes_and_sidecar(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path / "archive")
    until = datetime(2036, 1, 1, tzinfo=UTC)
    await store.put(KEY, PDF, content_type="application/pdf", metadata={"month": "2026-10"}, retain_until=until)
    path = tmp_path / "archive" / KEY
    assert path.read_bytes() == PDF
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    sidecar = json.loads((path.parent / (path.name + ".meta.json")).read_text())
    assert sidecar == {"key": KEY, "sha256": hashlib.sha256(PDF).hexdigest(), "size": len(PDF),
                       "contentType": "application/pdf", "metadata": {"month": "2026-10"},
                       "retainUntil": "2036-01-01T00:00:00+00:00"}
    assert stat.S_IMODE((path.parent / (path.name + ".meta.json")).stat().st_mode) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["2026-10.pdf", "2026-10.pdf.meta.json"]  # no temp files

    # a loser of the race leaves nothing behind either
    for _ in range(3):
        with pytest.raises(ObjectExists):
            await store.put(KEY, b"x", content_type="application/pdf")
    assert sorted(p.name for p in path.parent.iterdir()) == ["2026-10.pdf", "2026-10.pdf.meta.json"]


async def test_filesystem_detects_corruption(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)
    await store.put(KEY, PDF, content_type="application/pdf")
    (tmp_path / KEY).chmod(0o600)
    (tmp_path / KEY).write_bytes(PDF.replace(b"usage", b"USAGE"))
    with pytest.raises(ObjectCorrupt):
        await store.get(KEY)


async def test_filesystem_object_without_sidecar_is_still_readable(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)
    await store.put(KEY, PDF, content_type="application/pdf")
    (tmp_path / (KEY + ".meta.json")).unlink()  # as if the writer died between publishing and the sidecar rename
    head = await store.head(KEY)
    assert head is not None and head.sha256 == hashlib.sha256(PDF).hexdigest() and head.size == len(PDF)
    assert await store.get(KEY) == PDF


async def test_filesystem_keys_on_missing_root(tmp_path: Path) -> None:
    assert await FilesystemObjectStore(tmp_path / "not-yet").keys() == []
    with pytest.raises(ValueError):
        await FilesystemObjectStore(tmp_path).keys("../")


# --- S3 specifics ------------------------------------------------------------------------------------------------
async def test_s3_sha256_metadata_and_checksum(moto_endpoint: str) -> None:
    store = await _s3_store(moto_endpoint, prefix="docs/archive")
    obj = await store.put(KEY, PDF, content_type="application/pdf", metadata={"customer-id": "CUS-000123"})
    raw = _raw_client(moto_endpoint).head_object(Bucket=store.bucket, Key=f"docs/archive/{KEY}",
                                                 ChecksumMode="ENABLED")
    assert raw["Metadata"] == {"sha256": obj.sha256, "customer-id": "CUS-000123"}
    assert raw["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-sha256"] == hashlib.sha256(PDF).hexdigest()
    assert raw["ChecksumSHA256"]  # the server verified the upload against it
    assert raw["ContentType"] == "application/pdf"
    assert await store.head(KEY) == obj


async def test_s3_prefixes_isolate_stores(moto_endpoint: str) -> None:
    a = await _s3_store(moto_endpoint, prefix="tenant-a")
    b = S3ObjectStore(a.bucket, "tenant-b", endpoint_url=moto_endpoint, **CREDS)
    await a.put(KEY, PDF, content_type="application/pdf")
    await b.put(KEY, b"other", content_type="application/pdf")
    assert await a.keys() == [KEY] and await b.keys() == [KEY]
    assert await a.get(KEY) == PDF and await b.get(KEY) == b"other"


async def test_s3_detects_tampering(moto_endpoint: str) -> None:
    store = await _s3_store(moto_endpoint)
    obj = await store.put(KEY, PDF, content_type="application/pdf")
    # an object rewritten behind the store's back, keeping the old sha256 metadata
    _raw_client(moto_endpoint).put_object(Bucket=store.bucket, Key=f"archive/{KEY}", Body=b"forged",
                                          Metadata={"sha256": obj.sha256})
    with pytest.raises(ObjectCorrupt):
        await store.get(KEY)


async def test_s3_head_then_put_fallback(moto_endpoint: str) -> None:
    store = await _s3_store(moto_endpoint, conditional_writes=False)
    await store.put(KEY, PDF, content_type="application/pdf")
    with pytest.raises(ObjectExists):
        await store.put(KEY, b"again", content_type="application/pdf")
    assert await store.get(KEY) == PDF


async def test_s3_object_lock_compliance(moto_endpoint: str) -> None:
    store = await _s3_store(moto_endpoint, object_lock=True)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3650)
    await store.put(KEY, PDF, content_type="application/pdf", retain_until=until)
    client = _raw_client(moto_endpoint)
    raw = client.head_object(Bucket=store.bucket, Key=f"archive/{KEY}")
    assert raw["ObjectLockMode"] == "COMPLIANCE"
    assert raw["ObjectLockRetainUntilDate"] == until
    with pytest.raises(ObjectRetained):
        await store.delete(KEY)
    # the lock holds even against a direct request on the version
    version = client.list_object_versions(Bucket=store.bucket, Prefix=f"archive/{KEY}")["Versions"][0]["VersionId"]
    with pytest.raises(ClientError):
        client.delete_object(Bucket=store.bucket, Key=f"archive/{KEY}", VersionId=version)
    assert await store.get(KEY) == PDF

    # without a retention date the document can be erased, every version of it
    await store.put("unlocked.pdf", PDF, content_type="application/pdf")
    await store.delete("unlocked.pdf")
    assert await store.head("unlocked.pdf") is None
    listing = client.list_object_versions(Bucket=store.bucket, Prefix="archive/unlocked.pdf")
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")


async def test_s3_retention_without_object_lock_is_metadata(moto_endpoint: str) -> None:
    store = await _s3_store(moto_endpoint)
    until = datetime(2036, 1, 1, tzinfo=UTC)
    await store.put(KEY, PDF, content_type="application/pdf", retain_until=until)
    raw = _raw_client(moto_endpoint).head_object(Bucket=store.bucket, Key=f"archive/{KEY}")
    assert raw["Metadata"]["retain-until"] == "2036-01-01T00:00:00+00:00"
    assert "ObjectLockMode" not in raw


async def test_s3_ensure_bucket(moto_endpoint: str) -> None:
    store = await _s3_store(moto_endpoint)
    await store.ensure_bucket()  # idempotent
    locked = S3ObjectStore(store.bucket, endpoint_url=moto_endpoint, object_lock=True, **CREDS)
    with pytest.raises(StorageError, match="Object Lock"):
        await locked.ensure_bucket()


# --- configuration -----------------------------------------------------------------------------------------------
def test_object_store_from_url(tmp_path: Path) -> None:
    fs = object_store_from_url(f"file://{tmp_path}/archive")
    assert isinstance(fs, FilesystemObjectStore) and fs.root == (tmp_path / "archive").resolve()
    plain = object_store_from_url(str(tmp_path / "plain"), endpoint_url="http://ignored")
    assert isinstance(plain, FilesystemObjectStore) and plain.root == (tmp_path / "plain").resolve()
    s3 = object_store_from_url("s3://documents/prod/archive/", endpoint_url="http://127.0.0.1:9", region="eu-west-3",
                               object_lock=True, **CREDS)
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix, s3.region, s3.object_lock) == ("documents", "prod/archive/", "eu-west-3", True)
    assert isinstance(object_store_from_url("s3://documents"), S3ObjectStore)
    assert object_store_from_url("s3://documents").prefix == ""  # type: ignore[attr-defined]
    for bad in ("s3://", "ftp://host/x", "file://remote-host/x", "file:relative", ""):
        with pytest.raises(ValueError):
            object_store_from_url(bad)

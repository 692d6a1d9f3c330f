"""Object storage for archived documents (itemized usage statements, invoices): write-once, kept for good.

Two stores behind one async interface, chosen by URL (``object_store_from_url``):

* ``FilesystemObjectStore`` (``file:///srv/archive`` or a plain path): the embedded/demo default. A document is a
  file under the root; its SHA-256, content type, metadata and retention date sit next to it in
  ``<key>.meta.json``. A write goes to a hidden temporary file in the same directory, is fsynced, and is published
  with ``os.link`` - which fails when the name exists, so of two concurrent writers of one key exactly one wins and
  the other gets ``ObjectExists``; nothing is ever overwritten. (The root must be on a file system with hard
  links: any local POSIX one, NFS.)
* ``S3ObjectStore`` (``s3://bucket/prefix``): any S3-compatible store. Write-once by a conditional put
  (``If-None-Match: *``); the SHA-256 travels as ``x-amz-meta-sha256`` and as the S3 ``SHA256`` checksum, which the
  server verifies on upload and botocore on download. With ``object_lock=True`` (a bucket created with Object Lock)
  a retention date becomes a COMPLIANCE lock that not even the bucket owner can lift.

Keys are relative paths of ``[A-Za-z0-9._-]`` segments separated by ``/`` (e.g.
``selfcare/usage/<customer id>/2026-10.pdf``); a segment may not start with a dot. Metadata keys are lowercase
``[a-z0-9-]``, values printable ASCII (S3's rules, applied to both stores so a key that works on disk works on S3).
Both stores refuse to delete an object before its ``retain_until`` date (``ObjectRetained``) and check the SHA-256
on every read (``ObjectCorrupt``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from openbss.platform.errors import DomainError

__all__ = [
    "FilesystemObjectStore",
    "ObjectCorrupt",
    "ObjectExists",
    "ObjectNotFound",
    "ObjectRetained",
    "ObjectStore",
    "S3ObjectStore",
    "StorageError",
    "StoredObject",
    "object_store_from_url",
    "validate_key",
]

SIDECAR_SUFFIX = ".meta.json"
MAX_KEY_LENGTH = 1024
MAX_METADATA_BYTES = 2000  # S3 allows 2 KB of user metadata; keep room for the store's own entries
RESERVED_METADATA = frozenset({"sha256", "retain-until"})
FILE_MODE = 0o640
DIR_MODE = 0o750

_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PREFIX_RE = re.compile(r"[A-Za-z0-9._/-]*")
_META_KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_META_VALUE_RE = re.compile(r"[\x20-\x7e]*")


# --- errors ---------------------------------------------------------------------------------------------------
class StorageError(DomainError):
    status = 500
    code = "STORAGE_ERROR"
    reason = "Document storage error"


class ObjectExists(StorageError):
    status = 409
    code = "OBJECT_EXISTS"
    reason = "Document already archived"


class ObjectNotFound(StorageError):
    status = 404
    code = "OBJECT_NOT_FOUND"
    reason = "Document not found"


class ObjectRetained(StorageError):
    status = 409
    code = "OBJECT_RETAINED"
    reason = "Document under retention"


class ObjectCorrupt(StorageError):
    status = 500
    code = "OBJECT_CORRUPT"
    reason = "Archived document failed its integrity check"


# --- the interface --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredObject:
    """What the store knows about an archived document."""

    key: str
    sha256: str  # hex
    size: int
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)
    retain_until: datetime | None = None


@runtime_checkable
class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None,
                  retain_until: datetime | None = None) -> StoredObject:
        """Archive ``data`` under ``key``; raises ``ObjectExists`` if the key is taken (write-once)."""
        ...

    async def get(self, key: str) -> bytes:
        """The document's bytes, checked against its SHA-256; raises ``ObjectNotFound``."""
        ...

    async def head(self, key: str) -> StoredObject | None:
        """The document's description, or None."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the document (no-op if absent); raises ``ObjectRetained`` before its retention date."""
        ...

    async def keys(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix``."""
        ...


# --- validation -------------------------------------------------------------------------------------------------
def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ValueError."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if "\x00" in key:
        raise ValueError("object key must not contain NUL")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"object key longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise ValueError(f"object key must be relative: {key!r}")
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"invalid object key {key!r}: use [A-Za-z0-9._-] segments separated by '/', "
                         "no empty segment, no segment starting with '.'")
    if key.endswith(SIDECAR_SUFFIX):
        raise ValueError(f"object key must not end with {SIDECAR_SUFFIX!r}")
    return key


def _validate_prefix(prefix: str) -> str:
    if "\x00" in prefix or prefix.startswith("/") or not _PREFIX_RE.fullmatch(prefix) or ".." in prefix.split("/"):
        raise ValueError(f"invalid key prefix {prefix!r}")
    return prefix


def _validate_put(content_type: str, metadata: dict[str, str] | None,
                  retain_until: datetime | None) -> dict[str, str]:
    if not content_type or not _META_VALUE_RE.fullmatch(content_type):
        raise ValueError(f"invalid content type {content_type!r}")
    meta = dict(metadata or {})
    for k, v in meta.items():
        if not isinstance(k, str) or not _META_KEY_RE.fullmatch(k):
            raise ValueError(f"invalid metadata key {k!r}: use lowercase [a-z0-9-]")
        if k in RESERVED_METADATA:
            raise ValueError(f"metadata key {k!r} is reserved")
        if not isinstance(v, str) or not _META_VALUE_RE.fullmatch(v):
            raise ValueError(f"invalid metadata value for {k!r}: printable ASCII only")
    if sum(len(k) + len(v) for k, v in meta.items()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata larger than {MAX_METADATA_BYTES} bytes")
    if retain_until is not None and retain_until.utcoffset() is None:
        raise ValueError("retain_until must be timezone-aware")
    return meta


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _retained(obj: StoredObject) -> bool:
    return obj.retain_until is not None and obj.retain_until > datetime.now(UTC)


# --- filesystem -----------------------------------------------------------------------------------------------
def _write_new_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), FILE_MODE)  # whatever the umask
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemObjectStore:
    """Documents as files under ``root``, each with a ``<key>.meta.json`` sidecar."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"FilesystemObjectStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + SIDECAR_SUFFIX)

    async def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None,
                  retain_until: datetime | None = None) -> StoredObject:
        path = self._path(key)
        meta = _validate_put(content_type, metadata, retain_until)
        obj = StoredObject(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           content_type=content_type, metadata=meta, retain_until=retain_until)
        await asyncio.to_thread(self._put_sync, path, bytes(data), obj)
        return obj

    def _put_sync(self, path: Path, data: bytes, obj: StoredObject) -> None:
        if path.exists():
            raise ObjectExists(f"object {obj.key!r} already exists")
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        tmp = path.with_name(f".{path.name}.{token}.tmp")
        tmp_meta = path.with_name(f".{path.name}.{token}.meta.tmp")
        sidecar = {"key": obj.key, "sha256": obj.sha256, "size": obj.size, "contentType": obj.content_type,
                   "metadata": obj.metadata, "retainUntil": _iso(obj.retain_until)}
        try:
            _write_new_file(tmp, data)
            _write_new_file(tmp_meta, json.dumps(sidecar, sort_keys=True, indent=1).encode())
            try:
                os.link(tmp, path)  # the commit point: fails if another writer published this key first
            except FileExistsError:
                raise ObjectExists(f"object {obj.key!r} already exists") from None
            # Only the winner gets here; a sidecar left by a deleted predecessor is replaced.
            os.replace(tmp_meta, self._sidecar(path))
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
            tmp_meta.unlink(missing_ok=True)

    def _head_sync(self, key: str, path: Path) -> StoredObject | None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        try:
            raw = json.loads(self._sidecar(path).read_bytes())
        except FileNotFoundError:
            # Published but its sidecar not yet renamed (a writer in its last microseconds, or one that crashed
            # there): describe the bytes themselves.
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            return StoredObject(key=key, sha256=digest, size=size, content_type="application/octet-stream")
        return StoredObject(key=key, sha256=raw["sha256"], size=int(raw["size"]), content_type=raw["contentType"],
                            metadata=dict(raw.get("metadata") or {}), retain_until=_parse_iso(raw.get("retainUntil")))

    def _get_sync(self, key: str, path: Path) -> bytes:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} not found") from None
        obj = self._head_sync(key, path)
        if obj is not None and hashlib.sha256(data).hexdigest() != obj.sha256:
            raise ObjectCorrupt(f"object {key!r} does not match its SHA-256")
        return data

    def _delete_sync(self, key: str, path: Path) -> None:
        obj = self._head_sync(key, path)
        if obj is None:
            return
        if _retained(obj):
            raise ObjectRetained(f"object {key!r} is retained until {_iso(obj.retain_until)}")
        path.unlink(missing_ok=True)
        self._sidecar(path).unlink(missing_ok=True)

    def _keys_sync(self, prefix: str) -> list[str]:
        start = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get_sync, key, self._path(key))

    async def head(self, key: str) -> StoredObject | None:
        return await asyncio.to_thread(self._head_sync, key, self._path(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete_sync, key, self._path(key))

    async def keys(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys_sync, _validate_prefix(prefix))


# --- S3 -----------------------------------------------------------------------------------------------------------
def _error_code(exc: Exception) -> tuple[str, int]:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3ObjectStore:
    """Documents in an S3-compatible bucket, under ``prefix``; one boto3 client per store, calls run in threads.

    Write-once relies on the conditional put (``If-None-Match: *``, AWS since 2024, MinIO, Ceph, moto). A server
    that answers it with 501 is remembered and served by head-then-put instead, which has a race: two writers that
    both see the key absent both write, and the later one wins. Pass ``conditional_writes=False`` for a server that
    silently ignores the header (the same race, but at least not unnoticed).
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1",
                 access_key: str | None = None, secret_key: str | None = None, *, object_lock: bool = False,
                 conditional_writes: bool = True) -> None:
        import boto3
        from botocore.config import Config

        if not bucket:
            raise ValueError("bucket name required")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.region = region
        self.object_lock = object_lock
        self._conditional = conditional_writes
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=region)
        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60,
                        s3={"addressing_style": "path"} if endpoint_url else {})
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    # bucket
    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (with Object Lock when the store uses it)."""
        await asyncio.to_thread(self._ensure_bucket_sync)

    def _ensure_bucket_sync(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
            exists = True
        except ClientError as exc:
            code, status = _error_code(exc)
            if status != 404 and code not in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"bucket {self.bucket!r} unavailable: {code or status}") from exc
            exists = False
        if not exists:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.object_lock:
                kwargs["ObjectLockEnabledForBucket"] = True
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self._client.create_bucket(**kwargs)
            except ClientError as exc:
                if _error_code(exc)[0] != "BucketAlreadyOwnedByYou":
                    raise StorageError(f"cannot create bucket {self.bucket!r}: {_error_code(exc)[0]}") from exc
        if self.object_lock:
            try:
                conf = self._client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError:
                enabled = False
            if not enabled:
                raise StorageError(f"bucket {self.bucket!r} was not created with Object Lock enabled")

    # objects
    async def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None,
                  retain_until: datetime | None = None) -> StoredObject:
        full = self._full(key)
        meta = _validate_put(content_type, metadata, retain_until)
        obj = StoredObject(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           content_type=content_type, metadata=meta, retain_until=retain_until)
        await asyncio.to_thread(self._put_sync, full, bytes(data), obj)
        return obj

    def _put_sync(self, full: str, data: bytes, obj: StoredObject) -> None:
        from botocore.exceptions import ClientError

        s3_meta = {**obj.metadata, "sha256": obj.sha256}
        if obj.retain_until is not None:
            s3_meta["retain-until"] = _iso(obj.retain_until) or ""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": full, "Body": data, "ContentType": obj.content_type,
                                  "Metadata": s3_meta, "ChecksumAlgorithm": "SHA256"}
        if self.object_lock and obj.retain_until is not None:
            kwargs["ObjectLockMode"] = "COMPLIANCE"
            kwargs["ObjectLockRetainUntilDate"] = obj.retain_until.astimezone(UTC)
        for attempt in range(5):
            if self._conditional:
                kwargs["IfNoneMatch"] = "*"
            else:
                kwargs.pop("IfNoneMatch", None)
                if self._head_sync(obj.key, full) is not None:  # racy, see the class docstring
                    raise ObjectExists(f"object {obj.key!r} already exists")
            try:
                self._client.put_object(**kwargs)
                return
            except ClientError as exc:
                code, status = _error_code(exc)
                if status == 412 or code == "PreconditionFailed":
                    raise ObjectExists(f"object {obj.key!r} already exists") from None
                if status == 409 and code == "ConditionalRequestConflict" and attempt < 4:
                    # Another conditional write of this key is in flight; AWS asks to retry, and the retry
                    # then meets the winner's object (412).
                    time.sleep(0.05 * 2**attempt)
                    continue
                if self._conditional and (status == 501 or code == "NotImplemented"):
                    self._conditional = False
                    continue
                raise StorageError(f"cannot archive {obj.key!r}: {code or status}") from exc
        raise StorageError(f"cannot archive {obj.key!r}: conditional write kept conflicting")

    def _head_sync(self, key: str, full: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            r = self._client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"cannot read {key!r}: {code or status}") from exc
        raw_meta: dict[str, str] = {k.lower(): v for k, v in (r.get("Metadata") or {}).items()}
        digest = raw_meta.get("sha256", "")
        checksum = r.get("ChecksumSHA256") or ""
        if not digest and checksum and "-" not in checksum:
            with contextlib.suppress(binascii.Error):
                digest = base64.b64decode(checksum).hex()
        retain = _parse_iso(raw_meta.get("retain-until")) or r.get("ObjectLockRetainUntilDate")
        return StoredObject(key=key, sha256=digest, size=int(r.get("ContentLength", 0)),
                            content_type=r.get("ContentType") or "application/octet-stream",
                            metadata={k: v for k, v in raw_meta.items() if k not in RESERVED_METADATA},
                            retain_until=retain)

    def _get_sync(self, key: str, full: str) -> bytes:
        from botocore.exceptions import ClientError, FlexibleChecksumError

        try:
            r = self._client.get_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
            data: bytes = r["Body"].read()
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(f"object {key!r} not found") from None
            raise StorageError(f"cannot read {key!r}: {code or status}") from exc
        except FlexibleChecksumError as exc:
            raise ObjectCorrupt(f"object {key!r} does not match its checksum") from exc
        expected = {k.lower(): v for k, v in (r.get("Metadata") or {}).items()}.get("sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise ObjectCorrupt(f"object {key!r} does not match its SHA-256")
        return data

    def _delete_sync(self, key: str, full: str) -> None:
        obj = self._head_sync(key, full)
        if obj is None:
            return
        if _retained(obj):
            raise ObjectRetained(f"object {key!r} is retained until {_iso(obj.retain_until)}")
        if not self.object_lock:
            self._client.delete_object(Bucket=self.bucket, Key=full)
            return
        # An Object Lock bucket is versioned: a plain delete would only hide the document behind a delete marker.
        # Its retention is over, so erase every version.
        paginator = self._client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if entry["Key"] == full:
                    self._client.delete_object(Bucket=self.bucket, Key=full, VersionId=entry["VersionId"])

    def _keys_sync(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        out: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            out.extend(entry["Key"][len(self.prefix):] for entry in page.get("Contents", []))
        return sorted(out)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get_sync, key, self._full(key))

    async def head(self, key: str) -> StoredObject | None:
        return await asyncio.to_thread(self._head_sync, key, self._full(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete_sync, key, self._full(key))

    async def keys(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys_sync, _validate_prefix(prefix))


# --- configuration -----------------------------------------------------------------------------------------------
def object_store_from_url(url: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
                          access_key: str | None = None, secret_key: str | None = None,
                          object_lock: bool = False) -> ObjectStore:
    """``file:///abs/path`` or a plain path → filesystem (the S3 options are ignored); ``s3://bucket/prefix`` → S3."""
    if not url:
        raise ValueError("object store URL required")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"s3 URL without a bucket: {url!r}")
        return S3ObjectStore(parts.netloc, unquote(parts.path).strip("/"), endpoint_url=endpoint_url, region=region,
                             access_key=access_key, secret_key=secret_key, object_lock=object_lock)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL must name a local absolute path: {url!r}")
        path = Path(unquote(parts.path))
        if not path.is_absolute():
            raise ValueError(f"file URL must name an absolute path: {url!r}")
        return FilesystemObjectStore(path)
    if "://" in url:
        raise ValueError(f"unsupported object store URL scheme {parts.scheme!r}: use file:// or s3://")
    return FilesystemObjectStore(Path(url))

"""Attachments of trouble tickets, kept in object storage.

TMF621's ``attachment`` is an ``AttachmentRefOrValue``: a client sends either a reference (``url``) or the value
(``content``, base64). OpenBSS stores a value's bytes in the object store (``OPENBSS_CARE_ATTACHMENT_URL``: a
directory or ``s3://bucket/prefix``), write-once under ``care/<tenant>/<ticket>/<attachment id>``, and keeps in the
ticket a reference to it: ``{id, name, mimeType, size: {amount, units: "bytes"}, url}`` where ``url`` downloads it
(``GET /api/care/v1/troubleTicket/{id}/attachment/{attachmentId}``, with the ticket's read rights). Attachments are
only appended, like notes. Bytes written for a request that then fails stay unreferenced in the store (their keys
are random; nothing reads them).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from openbss.care.errors import InvalidTicket
from openbss.platform.errors import PayloadTooLarge
from openbss.platform.storage import ObjectStore, object_store_from_url
from openbss.platform.tmf.resource import Context
from openbss.settings import Settings

_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")


def download_url(base_url: str, ticket_id: str, attachment_id: str) -> str:
    return f"{base_url}/api/care/v1/troubleTicket/{ticket_id}/attachment/{attachment_id}"


@dataclass
class AttachmentStore:
    settings: Settings
    _store: ObjectStore | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> ObjectStore:
        """The object store, built on first use (an S3 client is not made by processes that never attach)."""
        if self._store is None:
            s = self.settings
            url = s.care_attachment_url or str((s.data_dir / "care-attachments").resolve())
            self._store = object_store_from_url(url, endpoint_url=s.s3_endpoint_url, region=s.s3_region,
                                                access_key=s.s3_access_key, secret_key=s.s3_secret_key)
        return self._store

    @staticmethod
    def key(tenant: str, ticket_id: str, attachment_id: str) -> str:
        return f"care/{tenant}/{ticket_id}/{attachment_id}"

    async def append(self, ctx: Context, ticket_id: str, current: list[dict[str, Any]],
                     given: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The ticket's attachments after a write: the existing ones unchanged, the new ones stored (values) or
        kept (references)."""
        by_id = {a.get("id"): a for a in current}
        kept = [a for a in given if a.get("id") in by_id]
        if len(kept) != len(current) or any(by_id[a.get("id")] != a for a in kept):
            raise InvalidTicket("'attachment': attachments are only appended; existing ones cannot be changed or "
                                "removed")
        out = list(current)
        for i, attachment in enumerate(given):
            if attachment.get("id") in by_id:
                continue
            out.append(await self._new(ctx, ticket_id, attachment, f"'attachment[{i}]'"))
        return out

    async def _new(self, ctx: Context, ticket_id: str, attachment: dict[str, Any], where: str) -> dict[str, Any]:
        attachment_id = str(uuid.uuid4())
        content = attachment.get("content")
        if content is None:
            if not attachment.get("url"):
                raise InvalidTicket(f"{where}: give the document's 'content' (base64) or a 'url' to it")
            return {**attachment, "id": attachment_id}
        if not isinstance(content, str):
            raise InvalidTicket(f"{where}.content: base64 text expected")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidTicket(f"{where}.content: not valid base64") from exc
        limit = self.settings.care_attachment_max_bytes
        if len(data) > limit:
            raise PayloadTooLarge(f"{where}: {len(data)} bytes, more than the {limit} an attachment may have")
        mime = str(attachment.get("mimeType") or "application/octet-stream")
        if not _MIME.fullmatch(mime):
            raise InvalidTicket(f"{where}.mimeType: '{mime}' is not a media type (type/subtype)")
        tenant = ctx.principal.tenant_id
        await self.store.put(self.key(tenant, ticket_id, attachment_id), data, content_type=mime,
                             metadata={"ticket": ticket_id})
        out = {k: v for k, v in attachment.items() if k not in ("content", "href", "url", "size")}
        out.update({"id": attachment_id, "mimeType": mime, "size": {"amount": len(data), "units": "bytes"},
                    "url": download_url(ctx.base_url, ticket_id, attachment_id)})
        return out

    async def read(self, ctx: Context, ticket: dict[str, Any], attachment_id: str) -> tuple[bytes, dict[str, Any]]:
        """The bytes of one of the ticket's stored attachments (NotFound for a reference or an unknown id)."""
        from openbss.care.errors import CareNotFound

        for attachment in ticket.get("attachment") or []:
            if attachment.get("id") == attachment_id and attachment.get("url") == download_url(
                    ctx.base_url, ticket["id"], attachment_id):
                data = await self.store.get(self.key(ctx.principal.tenant_id, ticket["id"], attachment_id))
                return data, attachment
        raise CareNotFound(f"trouble ticket '{ticket['id']}' has no stored attachment '{attachment_id}'")


__all__ = ["AttachmentStore", "download_url"]

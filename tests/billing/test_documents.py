"""Bill PDFs: rendered once an issued bill's document is asked, kept write-once in the platform's archive with its
SHA-256, served byte-identical afterwards; a draft has none."""

from __future__ import annotations

import hashlib
import io
from datetime import date
from typing import Any

from pypdf import PdfReader

from tests.billing.helpers import CB, billing_account, one_time, recurring, run, sell
from tests.conftest import session_services


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_an_issued_bill_has_one_pdf_served_byte_identical(client: Any, rt: Any, tenant: str,
                                                                admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-10T00:00:00Z", [recurring("31.00"), one_time("20.00")])
    await run(rt, tenant, date(2027, 2, 1), finalize=False)
    [bill] = (await client.get(f"{CB}/customerBill", headers=admin_headers)).json()
    draft = await client.get(f"/billing/v1/customerBill/{bill['id']}/document.pdf", headers=admin_headers)
    assert draft.status_code == 409 and draft.json()["code"] == "BILL_NOT_ISSUED"
    issued = (await client.patch(f"{CB}/customerBill/{bill['id']}", json={"state": "validated"},
                                 headers=admin_headers)).json()
    [attachment] = issued["billDocument"]
    assert attachment["mimeType"] == "application/pdf" and attachment["name"] == f"{issued['billNo']}.pdf"
    url = attachment["url"].replace("http://testserver", "")
    first = await client.get(url, headers=admin_headers)
    assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
    assert first.content.startswith(b"%PDF")
    assert first.headers["etag"] == f'"{hashlib.sha256(first.content).hexdigest()}"'
    text = _text(first.content)
    assert "Page 1 of 1" in text and issued["billNo"] in text and "Amount due" in text, text
    assert "Please pay 87.60 EUR" in text  # 22 + 31 + 20, plus 20 % VAT
    again = await client.get(url, headers=admin_headers)
    assert again.content == first.content
    stored = await session_services().billing.documents.head(f"billing/{tenant}/{bill['id']}.pdf")
    assert stored is not None and stored.sha256 == hashlib.sha256(first.content).hexdigest()
    assert (await client.get("/billing/v1/customerBill/nope/document.pdf", headers=admin_headers)).status_code == 404

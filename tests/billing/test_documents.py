"""Bill PDFs: rendered once an issued bill's document is asked, kept write-once in the platform's archive with its
SHA-256, served byte-identical afterwards; a draft has none."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from multiprocessing import get_context
from typing import Any
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from openbss.billing.archive import DueDocument, documents_due, store_documents
from openbss.billing.document import Itemized, Job, render, render_many
from openbss.billing.service import bill_pdf
from openbss.platform.storage import FilesystemObjectStore
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import CB, billing_account, one_time, postpaid_line, recurring, run, sell, usage
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


def _bill(lines: int, *, usage: int = 0, product: str = "Mobile plan 20 GB") -> tuple[dict[str, Any], list[Any]]:
    """A rendered bill with ``lines`` charge lines and ``usage`` usage lines, built in memory."""
    def money(v: str) -> dict[str, str]:
        return {"unit": "EUR", "value": v}

    def line(i: int, name: str, chars: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": f"l{i}", "name": name, "product": {"id": "p1", "name": product},
                "periodCoverage": {"startDateTime": "2027-01-31T23:00:00Z", "endDateTime": "2027-02-28T23:00:00Z"},
                "taxExcludedAmount": money("10.00"), "taxIncludedAmount": money("12.00"), "characteristic": chars}

    rows = [line(i, f"Monthly fee {i}", [{"name": "chargeType", "value": "recurringCharge"}]) for i in range(lines)]
    rows += [line(lines + i, f"Usage data {i}", [{"name": "chargeType", "value": "usageCharge"},
                                                 {"name": "units", "value": "2.5 GB"},
                                                 {"name": "usageType", "value": "data"},
                                                 {"name": "records", "value": 41}]) for i in range(usage)]
    total = 10 * (lines + usage)
    bill = {"id": "b1", "billNo": "INV-2027-000042", "category": "normal", "billDate": "2027-02-28T23:00:00Z",
            "billingAccount": {"id": "acc-1", "name": "Dupont & Fils"},
            "billingPeriod": {"startDateTime": "2027-01-31T23:00:00Z", "endDateTime": "2027-02-28T23:00:00Z"},
            "paymentDueDate": "2027-03-14T23:00:00Z", "previousBalance": money("0.00"),
            "taxExcludedAmount": money(f"{total}.00"), "taxIncludedAmount": money(f"{total * 1.2:.2f}"),
            "taxItem": [{"taxCategory": "VAT/standard", "taxRate": "20", "taxAmount": money(f"{total * 0.2:.2f}")}],
            "creditApplied": money("0.00"), "amountDue": money(f"{total * 1.2:.2f}")}
    return bill, rows


def test_a_bill_renders_to_the_same_bytes_with_all_its_content() -> None:
    bill, lines = _bill(3, usage=2)
    pdf = render(bill, lines, operator="Acme Telecom", tz=ZoneInfo("Europe/Paris"))
    assert render(bill, list(reversed(lines)), operator="Acme Telecom", tz=ZoneInfo("Europe/Paris")) == pdf
    text = _text(pdf)
    for expected in ("Acme Telecom", "Bill INV-2027-000042", "Account Dupont & Fils (acc-1)",
                     "period 2027-02-01 to 2027-03-01", "Previous balance", "VAT/standard 20 %", "60.00 EUR",
                     "Charges per product and period", "Monthly fee 2", "Mobile plan 20 GB", "2027-02-01 – 2027-03-01",
                     "Usage data 1", "2.5 GB (data)", "41", "Please pay 60.00 EUR by 2027-03-15", "Page 1 of 1"):
        assert expected in text, expected


def test_a_long_name_wraps_and_a_long_bill_numbers_its_pages() -> None:
    long_name = "Unlimited calls, texts and 100 GB of data in the EU with a second SIM for the car"
    bill, lines = _bill(70, usage=10, product=long_name)
    pdf = render(bill, lines, operator="Acme Telecom")
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 2
    for n, page in enumerate(pages, 1):
        assert f"Page {n} of {len(pages)}" in page.extract_text()
    text = " ".join(_text(pdf).split())
    assert "second SIM for the car" in text and "Monthly fee 69" in text and "Usage data 9" in text


async def test_documents_rendered_in_worker_processes_are_the_same_bytes(tmp_path: Any) -> None:
    jobs: list[Job] = [(*_bill(n + 1, usage=n % 3), "Acme Telecom", ZoneInfo("Europe/Paris"), None)
                       for n in range(20)]
    alone = [render(b, ls, operator=op, tz=tz) for b, ls, op, tz, _ in jobs]
    store = FilesystemObjectStore(tmp_path)
    due = [DueDocument(f"billing/t/{n}.pdf", {"bill-no": str(n)}, job) for n, job in enumerate(jobs)]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        assert render_many(jobs, executor=pool) == alone
        stored = await store_documents(store, due[:18], executor=pool)  # stored in chunks as they are rendered
        assert [s.key for s in await store_documents(store, due, executor=pool)] == [d.key for d in due]
    assert [await store.get(d.key) for d in due] == alone
    assert [s.sha256 for s in stored] == [hashlib.sha256(pdf).hexdigest() for pdf in alone[:18]]
    assert render_many(jobs[:3]) == alone[:3]  # a small batch: rendered in this process


async def test_a_batch_of_issued_bills_is_stored_once_as_one_asked_alone_would_be(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], tmp_path: Any) -> None:
    services = session_services()
    for fee in ("31.00", "45.50"):
        account = await billing_account(client, admin_headers, tz="Europe/Paris")
        await sell(rt, tenant, account, "2027-01-10T00:00:00Z", [recurring(fee), one_time("20.00")])
    await run(rt, tenant, date(2027, 2, 1), finalize=False)
    bills = (await client.get(f"{CB}/customerBill", headers=admin_headers)).json()
    assert len(bills) == 2
    issued = await client.patch(f"{CB}/customerBill/{bills[0]['id']}", json={"state": "validated"},
                                headers=admin_headers)
    assert issued.status_code == 200
    ids = [bills[0]["id"], bills[1]["id"], "nope"]  # one issued, one draft (no document), one unknown
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        due = await documents_due(ctx, services.billing.service.bills, ids, services.billing.service.accounts)
    assert [d.key for d in due] == [f"billing/{tenant}/{bills[0]['id']}.pdf"]
    [stored] = await store_documents(services.billing.documents, due)
    assert [s.key for s in await store_documents(services.billing.documents, due)] == [stored.key]  # kept
    served = await client.get(f"/billing/v1/customerBill/{bills[0]['id']}/document.pdf", headers=admin_headers)
    assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == stored.sha256
    assert "Page 1 of 1" in _text(served.content)
    # rendered alone (into another store), the same bytes
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        alone, _ = await bill_pdf(ctx, services.billing.service.bills, FilesystemObjectStore(tmp_path),
                                  bills[0]["id"], services.billing.service.accounts)
    assert alone == served.content


async def test_a_postpaid_lines_usage_is_itemized_on_its_bill(client: Any, rt: Any, tenant: str,
                                                               admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="Europe/Paris")
    product = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("10.00", rate="0")])
    line = await postpaid_line(rt, tenant, account, product["id"], "+33600000091")
    await usage(rt, tenant, line, datetime(2027, 1, 10, 17, 5, tzinfo=UTC), 125, units=185, called="+33145000000")
    await usage(rt, tenant, line, datetime(2027, 1, 12, 8, 0, tzinfo=UTC), 0, units=42 * 1048576,
                usage_type="data", allowance_units=42 * 1048576)
    await usage(rt, tenant, line, datetime(2027, 1, 31, 22, 59, tzinfo=UTC), 75, units=95, allowance_units=60,
                called="+447700900123")
    await usage(rt, tenant, line, datetime(2027, 1, 31, 23, 30, tzinfo=UTC), 999, called="+33600000000")  # February
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    [bill] = (await client.get(f"{CB}/customerBill", params={"billingAccount.id": account["id"]},
                               headers=admin_headers)).json()
    served = await client.get(f"/billing/v1/customerBill/{bill['id']}/document.pdf", headers=admin_headers)
    assert served.status_code == 200
    text = _text(served.content)
    assert "Itemized usage" in text
    # local times (Paris, UTC+1), the called party, minutes and seconds or megabytes, what an allowance paid
    assert "2027-01-10 18:05" in text and "+33145000000" in text and "3:05 min" in text and "1.25 EUR" in text
    assert "2027-01-12 09:00" in text and "42.00 MB, included" in text
    assert "2027-01-31 23:59" in text and "1:35 min, part included" in text and "0.75 EUR" in text
    assert "+33600000000" not in text  # 1 February in Paris: not this bill's usage
    # a bill of no usage itemizes nothing
    other = await billing_account(client, admin_headers, tz="Europe/Paris")
    await sell(rt, tenant, other, "2027-01-01T00:00:00.000Z", [recurring("10.00", rate="0")])
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    [plain] = (await client.get(f"{CB}/customerBill", params={"billingAccount.id": other["id"]},
                                headers=admin_headers)).json()
    plain_pdf = await client.get(f"/billing/v1/customerBill/{plain['id']}/document.pdf", headers=admin_headers)
    assert "Itemized usage" not in _text(plain_pdf.content)


def test_an_itemized_listing_says_how_many_records_it_leaves_out() -> None:
    bill, lines = _bill(10, usage=1)
    records = [{"id": str(n), "usageDate": f"2027-01-{n % 28 + 1:02d}T10:00:00Z", "productId": "p", "usageType": "sms",
                "units": 1, "allowanceUnits": 0, "amount": "0.10", "currency": "EUR", "detail": f"+3361234{n:04d}"}
               for n in range(30)]
    text = " ".join(_text(render(bill, lines, operator="Acme Telecom", itemized=Itemized(records, 31))).split())
    assert "The first 30 of 31 records billed are listed" in text and "+33612340029" in text

"""SEPA against PostgreSQL: a pain.008 batch of the bills payable by mandate (generated with sepaxml, valid against
its schema; a second batch collects nothing twice), and a camt.053 statement (parsed with pycamt) whose lines
collect a debit, return another, pay a bill by transfer and leave one unmatched line in the exceptions queue; the
same statement imported again changes nothing."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest

from tests.billing.helpers import billing_account, in_tenant
from tests.conftest import deliver_all
from tests.payments.helpers import issued_bill, method
from tests.payments.test_payments import bill_state

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}


def mandate(account: dict[str, Any], iban: str, ref: str) -> dict[str, Any]:
    return {"@type": "directDebit", "name": "SEPA mandate", "mandateType": "recurrent", "owner": "Ada Lovelace",
            "bank": "Bank", "firstDebitDate": "2027-01-05T00:00:00Z", "accountNumber": iban, "mandateId": ref,
            "signatureDate": "2026-11-02T00:00:00Z", "isPreferred": True, "account": [{"id": account["id"]}]}


def entry(ref: str, amount: str, indicator: str, *, e2e: str | None = None, remittance: str | None = None,
          info: str | None = None) -> str:
    refs = f"<Refs><EndToEndId>{e2e}</EndToEndId></Refs>" if e2e else ""
    rmt = f"<RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>" if remittance else ""
    extra = f"<AddtlNtryInf>{info}</AddtlNtryInf>" if info else ""
    return (f"<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>2027-02-10</Dt></BookgDt><ValDt><Dt>2027-02-10</Dt></ValDt>"
            f"<AcctSvcrRef>{ref}</AcctSvcrRef><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd>"
            f"<SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
            f"<NtryDtls><TxDtls>{refs}<Amt Ccy=\"EUR\">{amount}</Amt>"
            f"<RltdPties><Dbtr><Nm>Someone</Nm></Dbtr></RltdPties>{rmt}</TxDtls></NtryDtls>{extra}</Ntry>")


def statement(entries: list[str]) -> bytes:
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt>"
            "<GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2027-02-10T18:00:00</CreDtTm></GrpHdr>"
            "<Stmt><Id>S1</Id><CreDtTm>2027-02-10T18:00:00</CreDtTm>"
            "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>"
            + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>").encode()


async def test_a_sepa_batch_then_the_bank_statement(client: Any, rt: Any, tenant: str,
                                                    admin_headers: dict[str, str]) -> None:
    collected_acc, collected_bill = await issued_bill(client, rt, tenant, admin_headers)
    returned_acc, returned_bill = await issued_bill(client, rt, tenant, admin_headers, "50.00")
    _, transfer_bill = await issued_bill(client, rt, tenant, admin_headers, "10.00")
    await method(client, admin_headers, mandate(collected_acc, "DE89370400440532013000", "MDT-1"))
    await method(client, admin_headers, mandate(returned_acc, "FR1420041010050500013M02606", "MDT-2"))
    await billing_account(client, admin_headers)  # an account without a mandate: not in the batch
    await deliver_all(rt)  # payments hears of the bills

    r = await client.post("/payments/v1/sepaBatch", json={"collectionDate": "2027-02-08"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/xml") and r.headers["X-Payment-Count"] == "2"
    doc = ElementTree.fromstring(r.content)  # noqa: S314 - the file we just generated
    txs = doc.findall(".//p:DrctDbtTxInf", NS)
    assert sorted(t.find(".//p:MndtId", NS).text for t in txs) == ["MDT-1", "MDT-2"]  # type: ignore[union-attr]
    e2e = {t.find(".//p:MndtId", NS).text: t.find(".//p:EndToEndId", NS).text for t in txs}  # type: ignore[union-attr]
    amounts = sorted(t.find(".//p:InstdAmt", NS).text for t in txs)  # type: ignore[union-attr]
    assert amounts == ["120.00", "60.00"]
    assert doc.find(".//p:CtrlSum", NS).text == "180.00"  # type: ignore[union-attr]
    again = await client.post("/payments/v1/sepaBatch", json={"collectionDate": "2027-02-08"},
                              headers=admin_headers)
    assert again.status_code == 204  # both bills have a payment in flight

    camt = statement([
        entry("B-1", "120.00", "CRDT", e2e=e2e["MDT-1"]),
        entry("B-2", "60.00", "DBIT", e2e=e2e["MDT-2"], info="AM04 insufficient funds"),
        entry("B-3", "12.00", "CRDT", remittance=f"Payment of {transfer_bill['billNo']} thanks"),
        entry("B-4", "99.99", "CRDT", remittance="no reference at all"),
    ])
    r = await client.post("/payments/v1/statement", params={"source": "stmt-2027-02-10.xml"}, content=camt,
                          headers={**admin_headers, "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    assert r.json() == {"format": "camt.053", "lines": 4, "collected": 1, "returned": 1, "transfers": 1,
                        "exceptions": 1, "alreadyImported": 0}
    assert await bill_state(rt, tenant, collected_bill["id"]) == "settled"
    assert await bill_state(rt, tenant, returned_bill["id"]) == "validated"
    assert await bill_state(rt, tenant, transfer_bill["id"]) == "settled"
    states = dict(await in_tenant(rt, tenant, "SELECT gateway_ref, state FROM payments_payment "
                                              "WHERE gateway = 'sepa'"))
    assert states == {e2e["MDT-1"]: "succeeded", e2e["MDT-2"]: "failed"}
    queue = (await client.get("/payments/v1/statementException", headers=admin_headers)).json()
    assert [(q["amount"], q["reason"]) for q in queue] == [("99.99", "no bill number in the remittance information")]
    r = await client.post("/payments/v1/statement", params={"source": "stmt-2027-02-10.xml"}, content=camt,
                          headers={**admin_headers, "Content-Type": "application/xml"})
    assert r.json()["alreadyImported"] == 4
    assert len((await client.get("/payments/v1/statementException", headers=admin_headers)).json()) == 1
    # the returned bill can be collected again by the next batch
    nxt = await client.post("/payments/v1/sepaBatch", json={"collectionDate": "2027-03-08"}, headers=admin_headers)
    assert nxt.status_code == 201 and nxt.headers["X-Payment-Count"] == "1"
    bad = await client.post("/payments/v1/statement", params={"source": "x"}, content=b"<not-camt/>",
                            headers={**admin_headers, "Content-Type": "application/xml"})
    assert bad.status_code == 400


def mt940(lines: list[tuple[str, str, str, str]]) -> bytes:
    """An MT940 statement as a German bank sends it: ``:61:`` lines with the ``:86:`` structure (GVC, ``?00``
    posting text, ``?20`` EREF+, ``?21`` SVWZ+, ``?32`` the payer's name), wrapped like the bank wraps them."""
    body = [":20:STARTUMSE", ":25:37040044/0532013000", ":28C:00042/001", ":60F:C270209EUR10000,00"]
    balance = 10000 * 100
    for ref, amount, mark, details in lines:
        cents = int(amount.replace(",", ""))
        balance += cents if mark == "C" else -cents
        code = "NTRF" if mark == "C" else "NRTI"
        body.append(f":61:2702100210{mark}{amount}{code}NONREF//{ref}")
        text = details
        body.append(":86:" + text[:61])
        text = text[61:]
        while text:
            body.append(text[:65])
            text = text[65:]
    body.append(f":62F:C270210EUR{balance // 100},{balance % 100:02d}")
    return ("\r\n".join(body) + "\r\n-").encode("latin-1")


async def test_an_mt940_statement_is_matched_like_camt053(client: Any, rt: Any, tenant: str,
                                                          admin_headers: dict[str, str]) -> None:
    collected_acc, collected_bill = await issued_bill(client, rt, tenant, admin_headers)
    returned_acc, returned_bill = await issued_bill(client, rt, tenant, admin_headers, "50.00")
    _, transfer_bill = await issued_bill(client, rt, tenant, admin_headers, "10.00")
    await method(client, admin_headers, mandate(collected_acc, "DE89370400440532013000", "MDT-1"))
    await method(client, admin_headers, mandate(returned_acc, "FR1420041010050500013M02606", "MDT-2"))
    await deliver_all(rt)
    r = await client.post("/payments/v1/sepaBatch", json={"collectionDate": "2027-02-08"}, headers=admin_headers)
    doc = ElementTree.fromstring(r.content)  # noqa: S314 - the file we just generated
    e2e = {t.find(".//p:MndtId", NS).text: t.find(".//p:EndToEndId", NS).text  # type: ignore[union-attr]
           for t in doc.findall(".//p:DrctDbtTxInf", NS)}
    file = mt940([
        ("BK-1", "120,00", "C", f"171?00SEPA LASTSCHRIFT EINZUG?20EREF+{e2e['MDT-1']}?21SVWZ+Bill collected"
                                f"?32OPENBSS TELECOM"),
        ("BK-2", "60,00", "D", f"109?00RUECKLASTSCHRIFT?20EREF+{e2e['MDT-2']}?21SVWZ+AM04 insufficient funds"
                               "?32ADA LOVELACE"),
        ("BK-3", "12,00", "C", f"166?00GUTSCHRIFT?20EREF+NOTPROVIDED?21SVWZ+Payment of {transfer_bill['billNo']}"
                               "?22 thank you?32MAX MUSTERMANN"),
        ("BK-4", "99,99", "C", "166?00GUTSCHRIFT?20EREF+NOTPROVIDED?21SVWZ+Happy birthday?32ERIKA MUSTER"),
    ])
    r = await client.post("/payments/v1/statement", params={"source": "mt940-2027-02-10.sta"}, content=file,
                          headers={**admin_headers, "Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    assert r.json() == {"format": "MT940", "lines": 4, "collected": 1, "returned": 1, "transfers": 1,
                        "exceptions": 1, "alreadyImported": 0}
    assert await bill_state(rt, tenant, collected_bill["id"]) == "settled"
    assert await bill_state(rt, tenant, returned_bill["id"]) == "validated"
    assert await bill_state(rt, tenant, transfer_bill["id"]) == "settled"
    reasons = dict(await in_tenant(rt, tenant, "SELECT p.gateway_ref, t.reason FROM payments_payment p JOIN "
                                               "payments_transition t ON t.payment_id = p.id "
                                               "WHERE p.gateway = 'sepa' AND t.to_state = 'failed'"))
    assert "RUECKLASTSCHRIFT" in reasons[e2e["MDT-2"]] or "AM04" in reasons[e2e["MDT-2"]]
    queue = (await client.get("/payments/v1/statementException", headers=admin_headers)).json()
    assert [(q["amount"], q["reason"]) for q in queue] == [("99.99", "no bill number in the remittance information")]
    again = await client.post("/payments/v1/statement", params={"source": "mt940-2027-02-10.sta"}, content=file,
                              headers={**admin_headers, "Content-Type": "text/plain"})
    assert again.json()["alreadyImported"] == 4 and again.json()["exceptions"] == 0
    for junk in (b"hello", b":20:X\r\n:61:garbage\r\n-"):
        bad = await client.post("/payments/v1/statement", params={"source": "junk"}, content=junk,
                                headers={**admin_headers, "Content-Type": "text/plain"})
        assert bad.status_code == 400, bad.text
        assert "MT940" in bad.json()["message"]



async def test_a_statement_line_of_no_amount_in_the_currencys_units_is_queued_not_paid(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A credit line naming a bill whose amount is zero, or finer than the currency's minor unit (a cent's
    fraction), is no receipt to allocate: it is queued for a person, and no payment, allocation or ledger entry is
    written for it; the good line beside it pays its bill. The same line by line and as a set."""
    from openbss.payments import bank
    from openbss.platform.tmf.resource import system_context
    from tests.conftest import session_services

    _, first = await issued_bill(client, rt, tenant, admin_headers)  # 120.00
    _, second = await issued_bill(client, rt, tenant, admin_headers)
    await deliver_all(rt)

    def lines(bill: dict[str, Any], tag: str) -> bytes:
        return statement([entry(f"ZERO-{tag}", "0.00", "CRDT", remittance=f"Bill {bill['billNo']}"),
                          entry(f"FINE-{tag}", "10.005", "CRDT", remittance=f"Bill {bill['billNo']}"),
                          entry(f"GOOD-{tag}", "120.00", "CRDT", remittance=f"Bill {bill['billNo']}")])

    r = await client.post("/payments/v1/statement", params={"source": "camt-1.xml"}, content=lines(first, "1"),
                          headers={**admin_headers, "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    assert (r.json()["transfers"], r.json()["exceptions"]) == (1, 2), r.json()
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        report = await bank.import_statement(session_services().payments.service, ctx, lines(second, "2"),
                                             "camt-2.xml", batch=0)
    assert (report["transfers"], report["exceptions"]) == (1, 2), report
    [(count, total)] = await in_tenant(rt, tenant, "SELECT count(*), sum(amount) FROM payments_payment "
                                                   "WHERE method_id = 'bank-statement'")
    assert (count, total) == (2, 240)
    queue = (await client.get("/payments/v1/statementException", headers=admin_headers)).json()
    assert sorted(q["amount"] for q in queue) == ["0.00", "0.00", "10.005", "10.005"]
    assert [await bill_state(rt, tenant, b["id"]) for b in (first, second)] == ["settled", "settled"]


def test_the_example_sepa_creditor_is_refused_outside_demo_mode(settings: Any) -> None:
    from openbss.payments.bank import sepa_creditor
    from openbss.platform.errors import Conflict

    assert sepa_creditor(settings)["iban"] == "DE89370400440532013000"  # demo mode (the suite, `openbss demo`)
    production = settings.model_copy(update={"demo_mode": False})
    with pytest.raises(Conflict) as refused:
        sepa_creditor(production)
    assert refused.value.code == "SEPA_CREDITOR_NOT_CONFIGURED"
    assert "OPENBSS_PAYMENTS_SEPA_CREDITOR" in str(refused.value)
    own = production.model_copy(update={"payments_sepa_creditor_iban": "FR7630006000011234567890189",
                                        "payments_sepa_creditor_bic": "AGRIFRPPXXX"})
    assert sepa_creditor(own)["bic"] == "AGRIFRPPXXX"

"""The four operations for a signed-in residential customer: profile, update (audited, evented, reflected in the
TMF APIs), balance from the charging API (with its freshness bound), itemized usage PDF archived and re-served."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from openbss.platform.audit import AuditRecord
from openbss.platform.events.outbox import OutboxEvent
from openbss.selfcare.models import UsageDocument
from tests.conftest import bearer, session_services
from tests.selfcare.portal import code_in, csrf, last_message, new_customer, next_matching, sign_in


@pytest.fixture
async def signed_in(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient) -> dict[str, Any]:
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email, given="Léa", family="O'Brien & <Sons>")
    await sign_in(portal_client, user)
    return {**cust, "email": user.email}


async def _cc(rt: Any, tenant: str, msisdn: str, sid: str, kind: str, **extra: Any) -> dict[str, Any]:
    from openbss.charging.schemas import CreditControlRequest

    body = {"sessionId": sid, "requestType": "EVENT_REQUEST" if kind == "sms" else "INITIAL_REQUEST",
            "requestNumber": 0, "subscriptionId": {"type": "END_USER_E164", "data": msisdn}, **extra}
    return await session_services().charging.service.credit_control(
        rt.db, tenant, CreditControlRequest.model_validate(body), "http://testserver")


async def _call(rt: Any, tenant: str, msisdn: str, sid: str, seconds: int, called: str, when: datetime) -> None:
    base = {"serviceContextId": "32260@3gpp.org", "eventTimestamp": when.isoformat(),
            "serviceInformation": {"calledParty": called}}
    await _cc(rt, tenant, msisdn, sid, "voice", **base,
              multipleServicesCreditControl=[{"ratingGroup": 1, "requestedServiceUnit": {"time": 600}}])
    from openbss.charging.schemas import CreditControlRequest

    end = {"sessionId": sid, "requestType": "TERMINATION_REQUEST", "requestNumber": 1,
           "subscriptionId": {"type": "END_USER_E164", "data": msisdn}, "serviceContextId": "32260@3gpp.org",
           "eventTimestamp": (when + timedelta(seconds=seconds)).isoformat(),
           "multipleServicesCreditControl": [{"ratingGroup": 1, "usedServiceUnit": {"time": seconds}}]}
    await session_services().charging.service.credit_control(rt.db, tenant, CreditControlRequest.model_validate(end), "http://testserver")


async def test_retrieve_customer_information(portal_client: httpx.AsyncClient, signed_in: dict[str, Any]) -> None:
    r = await portal_client.get("/selfcare/api/customer")
    assert r.status_code == 200
    me = r.json()
    assert me["customerId"] == signed_in["customer_id"] and me["segment"] == "residential"
    assert me["name"] == {"givenName": "Léa", "familyName": "O'Brien & <Sons>", "fullName": "Léa O'Brien & <Sons>",
                          "organization": None}
    assert me["email"] == signed_in["email"] and me["phone"] == "+33612345678"
    assert me["address"]["city"] == "Paris" and me["address"]["country"] == "FR"
    assert me["preferences"] == {"email": True, "sms": False, "post": False, "language": "en"}
    assert me["accountState"] == "active"
    assert me["products"] == [{"id": signed_in["product_id"], "name": "Prepaid S", "status": "active",
                               "msisdn": signed_in["msisdn"]}]


async def test_update_is_validated_audited_evented_and_visible_in_tmf(
        rt: Any, portal_tenant: str, client: httpx.AsyncClient, portal_client: httpx.AsyncClient,
        signed_in: dict[str, Any]) -> None:
    party = signed_in["party_id"]
    address = {"street1": "3 Canal Street", "street2": "Flat 2", "postCode": "M1 3HE", "city": "Manchester",
               "stateOrProvince": "", "country": "gb"}
    r = await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client), json={
        "phone": "+44 7700 900123", "address": address, "preferences": {"sms": True, "language": "fr"}})
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["phone"] == "+447700900123" and me["address"] == {**address, "country": "GB"}
    assert me["preferences"] == {"email": True, "sms": True, "post": False, "language": "fr"}
    admin = bearer(portal_tenant, "admin")
    ind = (await client.get(f"/tmf-api/party/v4/individual/{party}", headers=admin)).json()
    media = {m["mediumType"]: m["characteristic"] for m in ind["contactMedium"]}
    assert media["phone"]["phoneNumber"] == "+447700900123" and media["postalAddress"]["city"] == "Manchester"
    cust = (await client.get(f"/tmf-api/customerManagement/v4/customer/{signed_in['customer_id']}",
                             headers=admin)).json()
    prefs = next(c["value"] for c in cust["characteristic"] if c["name"] == "communicationPreferences")
    assert prefs["sms"] is True and prefs["language"] == "fr"
    async with rt.db.transaction(portal_tenant) as session:
        events = (await session.execute(select(OutboxEvent.event_type).where(
            OutboxEvent.resource_id.in_([party, signed_in["customer_id"]])))).scalars().all()
        audits = (await session.execute(select(AuditRecord).where(AuditRecord.resource_id == party)
                                        .order_by(AuditRecord.id.desc()))).scalars().all()
    assert "IndividualAttributeValueChangeEvent" in events and "CustomerAttributeValueChangeEvent" in events
    assert audits[0].actor.startswith("selfcare:") and audits[0].roles == ["customer"]
    assert "+447700900123" not in str(audits[0].changes) and "Manchester" not in str(audits[0].changes)


@pytest.mark.parametrize(("body", "message"), [
    ({"phone": "0612"}, "'phone'"),
    ({"email": "not-an-email"}, "'email'"),
    ({"email": None}, "'email'"),
    ({"address": {"street1": "x", "city": "Paris", "postCode": "75001"}}, "'address.country'"),
    ({"address": {"street1": "", "city": "Paris", "postCode": "75001", "country": "FR"}}, "'address.street1'"),
    ({"address": {"street1": "x", "city": "Paris", "postCode": "<script>", "country": "FR"}}, "'address.postCode'"),
    ({"address": {"street1": "x", "city": "Paris", "postCode": "75001", "country": "France"}}, "'address.country'"),
    ({"preferences": {"sms": "yes please"}}, "'preferences.sms'"),
    ({"preferences": {"language": "xx"}}, "'preferences.language'"),
    ({"name": "Mallory"}, "'name': is not an attribute you can change"),
    ({"customerId": "someone-else"}, "'customerId': is not an attribute you can change"),
    ({}, "nothing to change"),
    ([], "JSON object"),
])
async def test_bad_updates_are_refused_and_nothing_is_written(
        rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient, signed_in: dict[str, Any],
        body: Any, message: str) -> None:
    before = (await portal_client.get("/selfcare/api/customer")).json()
    r = await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client), json=body)
    assert r.status_code == 400 and message in r.json()["message"], r.text
    async with rt.db.transaction(portal_tenant) as session:
        audits = await session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.resource_id == signed_in["party_id"], AuditRecord.actor.like("selfcare:%")))
    assert audits == 0
    assert (await portal_client.get("/selfcare/api/customer")).json() == before


async def test_email_change_is_verified_before_it_applies(rt: Any, portal_tenant: str,
                                                         portal_client: httpx.AsyncClient,
                                                         signed_in: dict[str, Any]) -> None:
    r = await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client),
                                  json={"email": "New.Address@Example.org"})
    assert r.status_code == 200
    assert r.json()["email"] == signed_in["email"] and r.json()["pendingEmail"] == "new.address@example.org"
    message = await last_message(rt, portal_tenant, "new.address@example.org")
    code = code_in(message)
    wrong = "000000" if code != "000000" else "111111"
    bad = await portal_client.post("/selfcare/api/customer/email-verification", headers=csrf(portal_client),
                                   json={"code": wrong})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_CODE"
    ok = await portal_client.post("/selfcare/api/customer/email-verification", headers=csrf(portal_client),
                                  json={"code": code})
    assert ok.status_code == 200
    assert ok.json()["email"] == "new.address@example.org" and ok.json()["pendingEmail"] is None
    assert ok.json()["emailVerified"] is True
    again = await portal_client.post("/selfcare/api/customer/email-verification", headers=csrf(portal_client),
                                     json={"code": code})
    assert again.status_code == 400


async def test_balance_comes_from_charging_and_is_fresh_within_a_second(
        client: httpx.AsyncClient, portal_tenant: str, portal_client: httpx.AsyncClient,
        signed_in: dict[str, Any], portal: Any) -> None:
    r = await portal_client.get("/selfcare/api/balance")
    assert r.status_code == 200
    body = r.json()
    assert body["freshnessSeconds"] == 1.0
    [line] = body["lines"]
    assert line["msisdn"] == signed_in["msisdn"] and line["paymentType"] == "prepaid"
    assert line["money"] == {"remaining": "20.00", "currency": "EUR", "reserved": "0.00", "creditLimit": None}
    data = next(a for a in line["allowances"] if a["unit"] == "data")
    assert data["initial"] == 10 * 1024**3 and data["used"] == 0 and data["percentUsed"] == 0.0
    assert data["validTo"] and data["initialDisplay"] == "10.00 GB"
    voice = next(a for a in line["allowances"] if a["unit"] == "voice")
    assert voice["initial"] == 500 * 60
    # a top-up through the charging API is visible within the stated bound
    money_bucket = next(b for b in (await client.get(
        "/tmf-api/prepayBalanceManagement/v4/bucket", params={"logicalResource.id": signed_in["msisdn"][1:]},
        headers=bearer(portal_tenant, "admin"))).json() if b["usageType"] == "monetary")
    r = await client.post("/tmf-api/prepayBalanceManagement/v4/topupBalance", headers=bearer(portal_tenant, "admin"),
                          json={"bucket": {"id": money_bucket["id"]}, "amount": {"amount": 5, "units": "EUR"},
                                "usageType": "monetary", "partyAccount": money_bucket["partyAccount"]})
    assert r.status_code == 201, r.text
    await asyncio.sleep(portal.settings.selfcare_cache_seconds + 0.05)
    line = (await portal_client.get("/selfcare/api/balance")).json()["lines"][0]
    assert line["money"]["remaining"] == "25.00"


async def test_itemized_usage_pdf_is_archived_and_served_unchanged(
        rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient, signed_in: dict[str, Any],
        portal: Any) -> None:
    msisdn = signed_in["msisdn"]
    now = datetime.now(UTC)
    last = (now.replace(day=1) - timedelta(days=1)).replace(day=10, hour=9, minute=0, second=0, microsecond=0)
    month = f"{last.year:04d}-{last.month:02d}"
    await _call(rt, portal_tenant, msisdn, f"t;{msisdn};1", 185, "+447700900123", last)
    await _call(rt, portal_tenant, msisdn, f"t;{msisdn};2", 42, "+33145000000", last + timedelta(hours=2))
    await _cc(rt, portal_tenant, msisdn, f"t;{msisdn};3", "sms", serviceContextId="32274@3gpp.org",
              requestedAction="DIRECT_DEBITING", eventTimestamp=(last + timedelta(hours=3)).isoformat(),
              serviceInformation={"calledParty": "+33612000001"},
              multipleServicesCreditControl=[{"ratingGroup": 3, "requestedServiceUnit": {"serviceSpecificUnits": 1}}])

    page = (await portal_client.get("/selfcare/api/usage", params={"month": month})).json()
    assert page["closed"] is True and len(page["items"]) == 3
    assert [i["destination"] for i in page["items"]] == ["+447700900123", "+33145000000", "+33612000001"]
    assert page["items"][0]["quantity"] == "3 min 05 s" and page["items"][2]["service"] == "SMS"

    # several first requests at once: one final document, the same bytes for everybody
    answers = await asyncio.gather(*[portal_client.get(f"/selfcare/api/usage/{month}.pdf") for _ in range(4)])
    assert all(a.status_code == 200 for a in answers)
    sums = {a.headers["x-checksum-sha256"] for a in answers}
    assert len(sums) == 1 and all(a.headers["x-statement-status"] == "final" for a in answers)
    assert {hashlib.sha256(a.content).hexdigest() for a in answers} == sums
    assert answers[0].headers["content-type"] == "application/pdf"
    assert 'filename="usage-' in answers[0].headers["content-disposition"]
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(answers[0].content)).pages)
    assert "Léa O'Brien & <Sons>" in text and "+447700900123" in text and "Page 1 of 1" in text
    assert portal.settings.selfcare_brand_name in text
    async with rt.db.transaction(portal_tenant) as session:
        docs = (await session.execute(select(UsageDocument).where(
            UsageDocument.customer_id == signed_in["customer_id"], UsageDocument.month == month))).scalars().all()
    final = [d for d in docs if d.final]
    assert len(final) == 1 and final[0].sha256 in sums and final[0].items == 3
    assert await portal.archive.get(final[0].object_key) == answers[0].content

    # later usage of that closed month does not change the archived statement
    await _call(rt, portal_tenant, msisdn, f"t;{msisdn};4", 60, "+33100000000", last + timedelta(hours=5))
    again = await portal_client.get(f"/selfcare/api/usage/{month}.pdf")
    assert again.headers["x-checksum-sha256"] in sums and again.content == answers[0].content


async def test_current_month_is_provisional_and_archived_each_time(
        rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient, signed_in: dict[str, Any]) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    first = await portal_client.get(f"/selfcare/api/usage/{month}.pdf")
    second = await portal_client.get(f"/selfcare/api/usage/{month}.pdf")
    assert first.status_code == second.status_code == 200
    assert first.headers["x-statement-status"] == "provisional"
    async with rt.db.transaction(portal_tenant) as session:
        count = await session.scalar(select(func.count()).select_from(UsageDocument).where(
            UsageDocument.customer_id == signed_in["customer_id"], UsageDocument.month == month))
    assert count == 2


@pytest.mark.parametrize("month", ["2026-13", "26-01", "2026-1", "1999-12", "next", "2999-01"])
async def test_bad_months(portal_client: httpx.AsyncClient, signed_in: dict[str, Any], month: str) -> None:
    r = await portal_client.get("/selfcare/api/usage", params={"month": month})
    assert r.status_code == 400 and "'month'" in r.json()["message"]
    assert (await portal_client.get(f"/selfcare/api/usage/{month}.pdf")).status_code == 400


async def test_months(portal_client: httpx.AsyncClient, signed_in: dict[str, Any]) -> None:
    body = (await portal_client.get("/selfcare/api/usage/months")).json()
    assert body["current"] == datetime.now(UTC).strftime("%Y-%m") and len(body["months"]) == 12
    assert body["months"][0] == body["current"]


async def test_archive_in_s3(rt: Any, settings: Any, portal_tenant: str, idp: Any, corporate_url: str,
                             moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same archive behaviour on an S3-compatible store (moto's S3 server on loopback), with Object Lock."""
    import boto3

    from openbss.selfcare.portal import close_portal
    from tests.selfcare.conftest import make_portal_app, portal_settings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"archive-{portal_tenant}"
    app = make_portal_app(rt, portal_settings(
        settings, portal_tenant, idp, corporate_url, selfcare_archive_url=f"s3://{bucket}/statements",
        s3_endpoint_url=moto_endpoint, s3_access_key="testing", s3_secret_key="testing", s3_object_lock=True,
        selfcare_archive_retention_days=3650))
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email)
    last = (datetime.now(UTC).replace(day=1) - timedelta(days=2)).replace(hour=9)
    await _call(rt, portal_tenant, cust["msisdn"], f"s3;{cust['msisdn']}", 75, "+33145000000", last)
    month = f"{last.year:04d}-{last.month:02d}"
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            await sign_in(c, user)
            first = await c.get(f"/selfcare/api/usage/{month}.pdf")
            second = await c.get(f"/selfcare/api/usage/{month}.pdf")
        assert first.status_code == 200 and first.content == second.content
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        objects = s3.list_objects_v2(Bucket=bucket, Prefix="statements/")["Contents"]
        assert len(objects) == 1
        head = s3.head_object(Bucket=bucket, Key=objects[0]["Key"])
        assert head["Metadata"]["sha256"] == first.headers["x-checksum-sha256"]
        assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"].year >= last.year + 9
    finally:
        await close_portal(app)


async def test_retention_purge_and_gone_statements(rt: Any, settings: Any, portal_tenant: str, idp: Any,
                                                   corporate_url: str) -> None:
    from sqlalchemy import update

    from openbss.selfcare.portal import close_portal
    from openbss.selfcare.usage import purge_expired_documents
    from tests.selfcare.conftest import make_portal_app, portal_settings

    app = make_portal_app(rt, portal_settings(settings, portal_tenant, idp, corporate_url,
                                              selfcare_archive_retention_days=1))
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email)
    last = (datetime.now(UTC).replace(day=1) - timedelta(days=5)).replace(hour=9)
    month = f"{last.year:04d}-{last.month:02d}"
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            await sign_in(c, user)
            assert (await c.get(f"/selfcare/api/usage/{month}.pdf")).status_code == 200
            portal = app.state.selfcare
            assert await purge_expired_documents(portal) == 0  # kept for a day
            async with rt.db.transaction(portal_tenant) as session:
                doc = (await session.execute(select(UsageDocument).where(
                    UsageDocument.customer_id == cust["customer_id"]))).scalar_one()
                assert doc.retain_until is not None and doc.final
                # the index says it is due, but the store still holds it under retention: nothing is lost
                await session.execute(update(UsageDocument).where(UsageDocument.id == doc.id)
                                      .values(retain_until=datetime.now(UTC) - timedelta(days=1)))
            assert await purge_expired_documents(portal) == 0
            assert await portal.archive.head(doc.object_key) is not None
            async with rt.db.transaction(portal_tenant) as session:  # as after a successful purge
                await session.execute(update(UsageDocument).where(UsageDocument.id == doc.id)
                                      .values(purged_at=datetime.now(UTC)))
            portal.documents.drop((cust["customer_id"], month))
            r = await c.get(f"/selfcare/api/usage/{month}.pdf")
            assert r.status_code == 410 and r.json()["code"] == "STATEMENT_GONE"
    finally:
        await close_portal(app)

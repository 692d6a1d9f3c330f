"""Security of the portal: headers and CSP, rate limits per IP and per customer, CSRF, no personal data in logs."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.selfcare.conftest import make_portal_app, portal_settings
from tests.selfcare.portal import code_in, csrf, last_message, new_customer, next_matching, next_social, sign_in


async def test_security_headers_and_csp(portal_client: httpx.AsyncClient) -> None:
    for path in ("/selfcare/", "/selfcare/api/config", "/selfcare/assets/app.js"):
        r = await portal_client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert (await portal_client.get("/selfcare/api/config")).headers["cache-control"] == "no-store"
    page = (await portal_client.get("/selfcare/")).text
    assert "<script>" not in page and "style=" not in page and "http://" not in page.replace("http://www.w3", "")
    assert (await portal_client.get("/selfcare/assets/app.js")).headers["content-type"].startswith(
        ("text/javascript", "application/javascript"))
    # the TMF APIs are not under the portal's policy
    assert "content-security-policy" not in (await portal_client.get("/health/live")).headers


async def test_csrf_is_required_for_cookie_writes_only(rt: Any, portal_tenant: str,
                                                       portal_client: httpx.AsyncClient) -> None:
    user = next_matching()
    await new_customer(rt, portal_tenant, email=user.email)
    await sign_in(portal_client, user)
    body = {"preferences": {"post": True}}
    r = await portal_client.patch("/selfcare/api/customer", json=body)
    assert r.status_code == 403 and r.json()["code"] == "CSRF_FAILED"
    r = await portal_client.patch("/selfcare/api/customer", json=body, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert (await portal_client.patch("/selfcare/api/customer", json=body, headers=csrf(portal_client))).is_success
    # an API client with the session as a bearer token has no ambient cookie: no CSRF header needed
    token = portal_client.cookies.get("sc_session")
    async with httpx.AsyncClient(transport=portal_client._transport, base_url="http://testserver") as api:
        r = await api.patch("/selfcare/api/customer", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    r = await portal_client.patch("/selfcare/api/customer", content="phone=1", headers={
        **csrf(portal_client), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


@pytest.fixture
async def limited(rt: Any, settings: Any, portal_tenant: str, idp: Any, corporate_url: str) -> Any:
    from openbss.selfcare.portal import close_portal

    app = make_portal_app(rt, portal_settings(settings, portal_tenant, idp, corporate_url,
                                              selfcare_rate_limit_ip="12/minute",
                                              selfcare_rate_limit_user="5/minute",
                                              selfcare_rate_limit_auth="3/minute"))
    yield app
    await close_portal(app)


async def test_rate_limits_per_customer_per_ip_and_on_sign_in(rt: Any, portal_tenant: str, limited: Any) -> None:
    user = next_matching()
    await new_customer(rt, portal_tenant, email=user.email)
    transport = httpx.ASGITransport(app=limited, client=("10.0.0.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await sign_in(c, user)  # 2 of the 3 sign-in requests of this minute (login + callback)
        codes = [(await c.get("/selfcare/api/customer")).status_code for _ in range(6)]
        assert codes[:5] == [200] * 5 and codes[5] == 429
        r = await c.get("/selfcare/api/balance")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and r.json()["code"] == "TOO_MANY_REQUESTS"
        r = await c.get("/selfcare/auth/login/north")
        assert r.status_code == 303
        assert (await c.get("/selfcare/auth/login/north")).status_code == 429  # 4th sign-in request this minute
    # another client IP is not affected by the first one's sign-in limit, but its own IP limit applies
    other = httpx.ASGITransport(app=limited, client=("10.0.0.2", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as c:
        codes = [(await c.get("/selfcare/api/config")).status_code for _ in range(13)]
        assert codes[:12] == [200] * 12 and codes[12] == 429


async def test_no_personal_data_in_logs(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Every path that handles a customer's data, including the portal's calls to the charging API (which name a
    line by its MSISDN in the query string: ``bucket?logicalResource.id=...``) and the request URLs themselves."""
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email, given="Priscilla", family="Quartermaine")
    caplog.set_level(logging.DEBUG)
    await sign_in(portal_client, user)
    await portal_client.get("/selfcare/api/customer")
    await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client), json={
        "phone": "+33655544433", "address": {"street1": "99 Secret Lane", "postCode": "75011", "city": "Paris",
                                             "country": "FR"}})
    await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client), json={"phone": "bad 0655"})
    await portal_client.get("/selfcare/api/balance")
    await portal_client.get("/selfcare/api/usage")
    # linking a sign-in by the mobile number: the portal asks the charging API which party owns the line
    social = next_social()
    line = await new_customer(rt, portal_tenant, email="not.this.one@example.org", given="Bartholomew",
                              family="Oyelaran")
    async with httpx.AsyncClient(transport=portal_client._transport, base_url="http://testserver") as other:
        await sign_in(other, social)
        r = await other.post("/selfcare/api/link/msisdn", json={"msisdn": line["msisdn"]})
        assert r.status_code == 202, r.text
        code = code_in(await last_message(rt, portal_tenant, line["msisdn"]))
        assert (await other.post("/selfcare/api/link/verify", json={"code": code})).status_code == 200
    # personal values in a request's own query string (a staff search by email and by phone)
    admin = bearer(portal_tenant, "admin")
    await portal_client.get("/tmf-api/customerManagement/v4/customerSearch",
                            params={"email": user.email, "phone": "+33655544433"}, headers=admin)
    await portal_client.get("/tmf-api/prepayBalanceManagement/v4/bucket",
                            params={"logicalResource.id": line["msisdn"].lstrip("+")}, headers=admin)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records, "nothing was logged at all"
    assert "logicalResource.id=***" in logged  # the charging call is logged, its query value masked
    for secret in (user.email, user.email.replace("@", "%40"), "Priscilla", "Quartermaine", "+33655544433",
                   "33655544433", "Secret Lane", cust["msisdn"], cust["msisdn"][1:], line["msisdn"],
                   line["msisdn"][1:], "Bartholomew", "Oyelaran", portal_client.cookies.get("sc_session"), code):
        assert secret not in logged, secret

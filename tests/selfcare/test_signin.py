"""Signing in at a real loopback OpenID provider: linking by verified email, by MSISDN and SMS code, sessions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select, update

from openbss.platform.db import utcnow
from openbss.selfcare.models import SelfcareIdentity, SelfcareSession
from tests.selfcare.portal import (
    PASSWORD,
    code_in,
    csrf,
    idp_sign_in,
    last_message,
    new_customer,
    next_matching,
    next_social,
    next_unverified,
    sign_in,
)


async def test_authorization_request_uses_pkce_state_and_nonce(portal_client: httpx.AsyncClient) -> None:
    r = await portal_client.get("/selfcare/auth/login/north")
    assert r.status_code == 303
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["response_type"] == ["code"] and "openid" in q["scope"][0]
    assert len(q["state"][0]) >= 32 and len(q["nonce"][0]) >= 32
    login = r.cookies.get("sc_login") or portal_client.cookies.get("sc_login")
    assert login
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()


async def test_unknown_provider_goes_back_to_sign_in(portal_client: httpx.AsyncClient) -> None:
    r = await portal_client.get("/selfcare/auth/login/nope")
    assert r.status_code == 303 and r.headers["location"] == "/selfcare/#/signin?error=UNKNOWN_PROVIDER"


async def test_verified_email_links_automatically(rt: Any, portal_tenant: str,
                                                  portal_client: httpx.AsyncClient) -> None:
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email, given="Ana", family="Lopez")
    r = await sign_in(portal_client, user)
    assert r.status_code == 303 and r.headers["location"] == "/selfcare/#/profile"
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("sc_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/selfcare" in session_cookie
    assert any(c.startswith("sc_csrf=") and "HttpOnly" not in c for c in cookies)
    me = (await portal_client.get("/selfcare/api/session")).json()
    assert me["customerId"] == cust["customer_id"] and me["name"] == "Ana Lopez" and me["segment"] == "residential"
    async with rt.db.transaction(portal_tenant) as session:
        link = (await session.execute(select(SelfcareIdentity).where(SelfcareIdentity.subject == user.sub)))\
            .scalar_one()
    assert link.linked_by == "email" and link.customer_id == cust["customer_id"]


async def test_link_by_msisdn_and_sms_code(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient) -> None:
    user = next_social()
    cust = await new_customer(rt, portal_tenant, email="someone.else@example.org")
    r = await sign_in(portal_client, user)
    assert r.headers["location"] == "/selfcare/#/link"
    assert (await portal_client.get("/selfcare/api/session")).status_code == 401
    pending = (await portal_client.get("/selfcare/api/link")).json()
    assert pending == {"provider": "north", "providerLabel": "NorthID", "email": f"s•••@{user.email.split('@')[1]}"}

    # a number that is nobody's line gets the same answer, and no SMS
    other = "+33699999999"
    r = await portal_client.post("/selfcare/api/link/msisdn", json={"msisdn": other})
    assert r.status_code == 202 and await last_message(rt, portal_tenant, other) is None
    r = await portal_client.post("/selfcare/api/link/msisdn", json={"msisdn": cust["msisdn"][:3] + " "
                                                                    + cust["msisdn"][3:]})
    assert r.status_code == 202 and r.json()["expiresInSeconds"] == 300
    code = code_in(await last_message(rt, portal_tenant, cust["msisdn"]))
    wrong = "000000" if code != "000000" else "111111"
    bad = await portal_client.post("/selfcare/api/link/verify", json={"code": wrong})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_CODE"
    assert "wrong or has expired; 4 attempts left" in bad.json()["message"]
    ok = await portal_client.post("/selfcare/api/link/verify", json={"code": code})
    assert ok.status_code == 200 and ok.json()["customerId"] == cust["customer_id"]
    assert (await portal_client.get("/selfcare/api/customer")).json()["customerId"] == cust["customer_id"]
    # the code is spent; the next sign-in with the same identity goes straight in
    assert (await portal_client.post("/selfcare/api/link/verify", json={"code": code})).status_code == 404
    async with httpx.AsyncClient(transport=portal_client._transport, base_url="http://testserver") as again:
        assert (await sign_in(again, user)).headers["location"] == "/selfcare/#/profile"


async def test_unverified_email_is_not_trusted(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient) -> None:
    user = next_unverified()
    await new_customer(rt, portal_tenant, email=user.email)
    assert (await sign_in(portal_client, user)).headers["location"] == "/selfcare/#/link"


async def test_an_email_the_operator_never_verified_does_not_link(rt: Any, portal_tenant: str,
                                                                  portal_client: httpx.AsyncClient) -> None:
    """The provider verified the address, but the operator's record of it was typed by an agent and never
    confirmed: it could be somebody else's address, so the portal asks for the mobile number."""
    user = next_matching()
    await new_customer(rt, portal_tenant, email=user.email, email_verified=False)
    assert (await sign_in(portal_client, user)).headers["location"] == "/selfcare/#/link"


async def test_codes_to_one_number_are_rate_limited(rt: Any, settings: Any, portal_tenant: str, idp: Any,
                                                    corporate_url: str) -> None:
    from openbss.selfcare.portal import close_portal
    from tests.selfcare.conftest import make_portal_app, portal_settings

    app = make_portal_app(rt, portal_settings(settings, portal_tenant, idp, corporate_url,
                                              selfcare_rate_limit_codes="2/hour"))
    cust = await new_customer(rt, portal_tenant, email="flood@example.org")
    try:
        statuses = []
        for _ in range(2):  # two sign-ins, so the per-sign-in limit (3) is not what stops it
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
                await sign_in(c, next_social())
                for _ in range(2):
                    r = await c.post("/selfcare/api/link/msisdn", json={"msisdn": cust["msisdn"]})
                    statuses.append(r.status_code)
        assert statuses == [202, 202, 429, 429]
    finally:
        await close_portal(app)


async def test_code_attempts_are_limited(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient) -> None:
    user = next_social()
    cust = await new_customer(rt, portal_tenant, email="x.y@example.org")
    await sign_in(portal_client, user)
    await portal_client.post("/selfcare/api/link/msisdn", json={"msisdn": cust["msisdn"]})
    code = code_in(await last_message(rt, portal_tenant, cust["msisdn"]))
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert (await portal_client.post("/selfcare/api/link/verify", json={"code": wrong})).status_code == 400
    locked = await portal_client.post("/selfcare/api/link/verify", json={"code": code})
    assert locked.status_code == 429 and locked.json()["code"] == "CODE_LOCKED"
    # a new code (at most three per sign-in) unlocks it
    await portal_client.post("/selfcare/api/link/msisdn", json={"msisdn": cust["msisdn"]})
    code = code_in(await last_message(rt, portal_tenant, cust["msisdn"]))
    assert (await portal_client.post("/selfcare/api/link/verify", json={"code": code})).status_code == 200


async def test_bad_link_input(portal_client: httpx.AsyncClient) -> None:
    assert (await portal_client.get("/selfcare/api/link")).status_code == 404
    r = await portal_client.post("/selfcare/api/link/msisdn", json={"msisdn": "+33600000101"})
    assert r.status_code == 404 and r.json()["code"] == "NO_PENDING_LINK"
    user = next_social()
    await sign_in(portal_client, user)
    r = await portal_client.post("/selfcare/api/link/msisdn", json={"msisdn": "call me"})
    assert r.status_code == 400 and "'msisdn'" in r.json()["message"]
    r = await portal_client.post("/selfcare/api/link/verify", json={"code": "12ab"})
    assert r.status_code == 400 and "6 digits" in r.json()["message"]
    r = await portal_client.post("/selfcare/api/link/msisdn", content="msisdn=1",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


async def test_callback_must_match_this_browsers_attempt(portal_client: httpx.AsyncClient,
                                                         other_client: httpx.AsyncClient) -> None:
    user = next_social()
    start = await portal_client.get("/selfcare/auth/login/north")
    answer = await idp_sign_in(start.headers["location"], user.username, PASSWORD)
    back = answer.headers["location"].removeprefix("http://testserver")
    # another browser (an attacker replaying the victim's redirect) has no such sign-in attempt
    stolen = await other_client.get(back)
    assert stolen.headers["location"] == "/selfcare/#/signin?error=NO_SIGN_IN"
    # a tampered state is refused, and the attempt is then spent
    tampered = back.replace("state=", "state=x")
    assert (await portal_client.get(tampered)).headers["location"] == "/selfcare/#/signin?error=STATE_MISMATCH"
    assert (await portal_client.get(back)).headers["location"] == "/selfcare/#/signin?error=NO_SIGN_IN"


async def test_provider_error_and_missing_code(portal_client: httpx.AsyncClient) -> None:
    await portal_client.get("/selfcare/auth/login/north")
    r = await portal_client.get("/selfcare/auth/callback?error=access_denied&state=x")
    assert r.headers["location"] == "/selfcare/#/signin?error=PROVIDER_ERROR"
    r = await portal_client.get("/selfcare/auth/callback?state=x")
    assert r.headers["location"] == "/selfcare/#/signin?error=NO_CODE"


async def test_sign_out_revokes_the_session(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient) -> None:
    user = next_matching()
    await new_customer(rt, portal_tenant, email=user.email)
    await sign_in(portal_client, user)
    token = portal_client.cookies.get("sc_session")
    assert (await portal_client.post("/selfcare/auth/logout")).status_code == 403  # no CSRF header
    r = await portal_client.post("/selfcare/auth/logout", headers=csrf(portal_client))
    assert r.status_code == 204 and 'sc_session=""' in r.headers.get("set-cookie", "")
    # the old token is dead even if replayed
    r = await portal_client.get("/selfcare/api/customer", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["code"] == "SESSION_EXPIRED"


async def test_sessions_expire(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient, portal: Any) -> None:
    user = next_matching()
    await new_customer(rt, portal_tenant, email=user.email)
    await sign_in(portal_client, user)
    assert (await portal_client.get("/selfcare/api/customer")).status_code == 200
    from openbss.selfcare.signin import digest

    key = digest(portal_client.cookies.get("sc_session"))
    async with rt.db.transaction(portal_tenant) as session:  # idle longer than the idle timeout
        await session.execute(update(SelfcareSession).where(SelfcareSession.id == key)
                              .values(last_seen_at=utcnow() - timedelta(minutes=31)))
    portal.sessions.drop(key)
    r = await portal_client.get("/selfcare/api/customer")
    assert r.status_code == 401 and r.json()["code"] == "SESSION_EXPIRED"


async def test_gdpr_export_and_erasure_cover_linked_identities(rt: Any, portal_tenant: str,
                                                               client: httpx.AsyncClient,
                                                               portal_client: httpx.AsyncClient) -> None:
    from tests.conftest import bearer

    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email)
    await sign_in(portal_client, user)
    admin = bearer(portal_tenant, "admin")
    exported = (await client.get(f"/privacy/v1/party/{cust['party_id']}/personalData", headers=admin)).json()
    [identity] = exported["personalData"]["selfcareIdentities"]
    assert identity["provider"] == "north" and identity["subject"] == user.sub and identity["linkedBy"] == "email"
    r = await client.post(f"/privacy/v1/party/{cust['party_id']}/erasure", headers=admin)
    assert r.status_code == 409 and "live product" in r.json()["message"]  # the line is terminated first
    from openbss.platform.tmf.resource import system_context
    from tests.conftest import session_services

    async with rt.db.transaction(portal_tenant) as session:
        await session_services().inventory.service.set_product_status(
            system_context(portal_tenant, session, "http://testserver"), cust["product_id"], "terminated")
    r = await client.post(f"/privacy/v1/party/{cust['party_id']}/erasure", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["anonymizedRecords"]["selfcareIdentities"] == 1
    async with rt.db.transaction(portal_tenant) as session:
        left = (await session.execute(select(SelfcareIdentity).where(
            SelfcareIdentity.party_id == cust["party_id"]))).scalars().all()
    assert left == []
    await asyncio.sleep(1.05)  # the session cache's bound
    assert (await portal_client.get("/selfcare/api/customer")).status_code == 401


async def test_several_providers_at_once(rt: Any, settings: Any, portal_tenant: str, idp: Any,
                                         corporate_url: str) -> None:
    """Two providers configured side by side (a Google-like and a Facebook-like one): each identity is linked on
    its own, both to the same customer."""
    from openbss.demo.identity_provider import IdpClient, start_identity_provider
    from openbss.selfcare.portal import close_portal
    from tests.selfcare.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, make_portal_app, portal_settings
    from tests.selfcare.portal import USERS

    second = start_identity_provider(clients=[IdpClient("fb-client", "fb-Secret-9", (REDIRECT_URI,))], users=USERS,
                                     title="Sociable")
    base = portal_settings(settings, portal_tenant, idp, corporate_url)
    app = make_portal_app(rt, base.model_copy(update={"selfcare_identity_providers": [
        {"id": "north", "label": "NorthID", "issuer": idp.issuer, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET},
        {"id": "social", "label": "Sociable", "issuer": second.issuer, "clientId": "fb-client",
         "clientSecret": "fb-Secret-9"}]}))
    user = next_matching()
    cust = await new_customer(rt, portal_tenant, email=user.email)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            config = (await c.get("/selfcare/api/config")).json()
            assert [p["id"] for p in config["providers"]] == ["north", "social"]
            for provider in ("north", "social"):
                r = await sign_in(c, user, provider)
                assert r.headers["location"] == "/selfcare/#/profile", provider
                assert (await c.get("/selfcare/api/session")).json()["provider"] == provider
        async with rt.db.transaction(portal_tenant) as session:
            links = (await session.execute(select(SelfcareIdentity).where(
                SelfcareIdentity.customer_id == cust["customer_id"]))).scalars().all()
        assert sorted(link.provider for link in links) == ["north", "social"]
    finally:
        await close_portal(app)
        second.stop()

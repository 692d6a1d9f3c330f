"""The loopback OpenID Connect provider, driven over real HTTP: discovery, the authorization code flow with PKCE,
ID token verification with Authlib against the published JWKS, UserInfo, logout, and the ways each step refuses
bad input (no redirect to unregistered addresses, single-use codes and forms, client authentication)."""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from authlib.oidc.discovery import OpenIDProviderMetadata
from starlette.applications import Starlette
from starlette.routing import Mount

from openbss.demo.identity_provider import (
    IdpClient,
    IdpUser,
    RunningIdentityProvider,
    create_identity_provider,
    start_identity_provider,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken

CALLBACK = "http://127.0.0.1:9/selfcare/auth/callback"
SIGNED_OUT = "http://127.0.0.1:9/selfcare/"
PORTAL = IdpClient("selfcare", "portal-secret", (CALLBACK,), (SIGNED_OUT,))
OTHER = IdpClient("other-app", "other-secret", ("https://other.example/cb",))
AMELIA = IdpUser(sub="u-amelia", username="amelia", password="correct horse", email="amelia.smith@example.net",
                 name="Amelia Smith", given_name="Amelia", family_name="Smith")
BOB = IdpUser(sub="u-bob", username="bob", password="hunter2!", email="bob@example.net", email_verified=False)


@pytest.fixture(scope="module")
def idp() -> Iterator[RunningIdentityProvider]:
    provider = start_identity_provider(clients=[PORTAL, OTHER], users=[AMELIA, BOB], title="Social ID",
                                       brand_color="#0a7d3b", show_demo_users=True)
    yield provider
    provider.stop()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as client:
        yield client


@dataclass
class Form:
    action: str = ""
    method: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = Form()
        self._label_for: str | None = None
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form.action, self.form.method = a.get("action", ""), a.get("method", "")
        elif tag == "input" and "name" in a:
            self.form.fields[a["name"]] = a.get("value", "")
        elif tag == "label":
            self._label_for = a.get("for")
        self._in_alert = self._in_alert or a.get("role") == "alert"

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_for = None
        if tag == "p":
            self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._label_for:
            self.form.labels[self._label_for] = data
        if self._in_alert:
            self.form.alerts.append(data)
        self.form.text.append(data)


def parse_form(page: str) -> Form:
    parser = _FormParser()
    parser.feed(page)
    return parser.form


@dataclass
class Attempt:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def params(self, **overrides: str | None) -> dict[str, str]:
        params: dict[str, str | None] = {
            "response_type": "code", "client_id": PORTAL.client_id, "redirect_uri": CALLBACK,
            "scope": "openid email profile", "state": self.state, "nonce": self.nonce,
            "code_challenge": create_s256_code_challenge(self.verifier), "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in_form(client: httpx.AsyncClient, issuer: str, attempt: Attempt) -> tuple[httpx.Response, Form]:
    page = await client.get(f"{issuer}/authorize", params=attempt.params())
    assert page.status_code == 200, page.text
    return page, parse_form(page.text)


async def submit(client: httpx.AsyncClient, issuer: str, form: Form, username: str, password: str) -> httpx.Response:
    target = httpx.URL(issuer).join(form.action)
    return await client.post(target, data={**form.fields, "username": username, "password": password})


async def get_code(client: httpx.AsyncClient, issuer: str, attempt: Attempt, user: IdpUser = AMELIA) -> str:
    _, form = await sign_in_form(client, issuer, attempt)
    response = await submit(client, issuer, form, user.username, user.password)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(CALLBACK + "?")
    query = query_of(response.headers["location"])
    assert query["state"] == attempt.state
    assert query["iss"] == issuer
    return query["code"]


async def redeem(client: httpx.AsyncClient, issuer: str, code: str, verifier: str, *,
                 secret: str = PORTAL.client_secret, redirect_uri: str = CALLBACK) -> httpx.Response:
    return await client.post(f"{issuer}/token", auth=(PORTAL.client_id, secret),
                             data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                   "code_verifier": verifier})


def verify_id_token(id_token: str, jwks: dict[str, Any], issuer: str, nonce: str) -> dict[str, Any]:
    options = {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": PORTAL.client_id},
               "nonce": {"essential": True, "value": nonce}, "exp": {"essential": True},
               "sub": {"essential": True}, "iat": {"essential": True}}
    claims = JsonWebToken(["RS256"]).decode(id_token, JsonWebKey.import_key_set(jwks), claims_options=options)
    claims.validate()
    return dict(claims)


# --- discovery and keys --------------------------------------------------------------------------------------


async def test_discovery_document(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    response = await browser.get(f"{idp.issuer}/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    OpenIDProviderMetadata(meta).validate()
    assert meta["issuer"] == idp.issuer == f"http://127.0.0.1:{idp.port}"
    for key, path in [("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                      ("userinfo_endpoint", "/userinfo"), ("jwks_uri", "/jwks"), ("end_session_endpoint", "/logout")]:
        assert meta[key] == idp.issuer + path
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code"]
    assert meta["subject_types_supported"] == ["public"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(meta["scopes_supported"]) == {"openid", "email", "profile"}
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert {"sub", "email", "email_verified", "name", "given_name", "family_name"} <= set(meta["claims_supported"])


async def test_jwks_publishes_the_public_signing_key(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    jwks = (await browser.get(f"{idp.issuer}/jwks")).json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private key material published"


# --- the happy path ------------------------------------------------------------------------------------------


async def test_authorization_code_flow_with_pkce(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    _, form = await sign_in_form(browser, idp.issuer, attempt)
    assert form.method == "post"
    assert form.labels == {"username": "Username or email", "password": "Password"}
    for name in ("client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method",
                 "csrf_token"):
        assert form.fields[name], name
    assert form.fields["state"] == attempt.state and form.fields["nonce"] == attempt.nonce

    response = await submit(browser, idp.issuer, form, AMELIA.email.upper(), AMELIA.password)  # email works too
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["state"] == attempt.state and query["iss"] == idp.issuer

    token_response = await redeem(browser, idp.issuer, query["code"], attempt.verifier)
    assert token_response.status_code == 200, token_response.text
    assert token_response.headers["cache-control"] == "no-store"
    tokens = token_response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert set(tokens["scope"].split()) == {"openid", "email", "profile"}

    jwks = (await browser.get(f"{idp.issuer}/jwks")).json()
    header = JsonWebToken(["RS256"]).decode(tokens["id_token"], JsonWebKey.import_key_set(jwks)).header
    assert header["alg"] == "RS256" and header["kid"] == jwks["keys"][0]["kid"]
    claims = verify_id_token(tokens["id_token"], jwks, idp.issuer, attempt.nonce)
    assert claims["sub"] == AMELIA.sub and claims["aud"] == PORTAL.client_id
    assert claims["email"] == AMELIA.email and claims["email_verified"] is True
    assert (claims["name"], claims["given_name"], claims["family_name"]) == ("Amelia Smith", "Amelia", "Smith")
    assert claims["exp"] > time.time() and abs(claims["auth_time"] - time.time()) < 60
    assert claims["at_hash"] == create_half_hash(tokens["access_token"], "RS256").decode()

    for method in ("GET", "POST"):
        info = await browser.request(method, f"{idp.issuer}/userinfo",
                                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 200
        assert info.json() == {"sub": AMELIA.sub, "email": AMELIA.email, "email_verified": True,
                               "name": "Amelia Smith", "given_name": "Amelia", "family_name": "Smith",
                               "preferred_username": "amelia"}


async def test_client_secret_post_and_narrower_scope(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    page = await browser.get(f"{idp.issuer}/authorize", params=attempt.params(scope="openid email"))
    form = parse_form(page.text)
    response = await submit(browser, idp.issuer, form, BOB.username, BOB.password)
    code = query_of(response.headers["location"])["code"]
    tokens = (await browser.post(f"{idp.issuer}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": attempt.verifier,
        "client_id": PORTAL.client_id, "client_secret": PORTAL.client_secret})).json()
    assert tokens["scope"] == "openid email"
    jwks = (await browser.get(f"{idp.issuer}/jwks")).json()
    claims = verify_id_token(tokens["id_token"], jwks, idp.issuer, attempt.nonce)
    assert claims["email"] == BOB.email and claims["email_verified"] is False
    assert "name" not in claims and "preferred_username" not in claims  # profile was not granted
    info = await browser.get(f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json() == {"sub": BOB.sub, "email": BOB.email, "email_verified": False}


async def test_sign_in_page_is_accessible_and_locked_down(idp: RunningIdentityProvider,
                                                          browser: httpx.AsyncClient) -> None:
    page, form = await sign_in_form(browser, idp.issuer, Attempt())
    csp = page.headers["content-security-policy"]
    assert csp == ("default-src 'none'; style-src 'self'; form-action 'self' http://127.0.0.1:9 "
                   "https://other.example; frame-ancestors 'none'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<label for="username">Username or email</label>' in html
    assert '<input id="username" name="username" autocomplete="username"' in html
    assert '<label for="password">Password</label>' in html
    assert '<input id="password" type="password" name="password"' in html
    assert '<button type="submit">Sign in</button>' in html
    assert "<script" not in html and "<style" not in html and " style=" not in html
    assert form.action == "/authorize"
    assert "amelia" in form.text and "bob" in form.text  # demo users listed
    assert AMELIA.password not in html

    css = await browser.get(f"{idp.issuer}/static/idp.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "#0a7d3b" in css.text


async def test_demo_users_are_not_listed_by_default() -> None:
    app = create_identity_provider("http://idp.test", clients=[PORTAL], users=[AMELIA])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://idp.test") as client:
        page = await client.get("/authorize", params=Attempt().params())
    assert page.status_code == 200
    assert "amelia" not in page.text.lower().replace("amelia.smith", "")


# --- the authorization endpoint refuses ----------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {"client_id": "nobody"},
    {"client_id": None},
    {"redirect_uri": "http://127.0.0.1:9/selfcare/auth/callback/evil"},
    {"redirect_uri": "https://attacker.example/cb"},
    {"redirect_uri": None},
    {"client_id": OTHER.client_id},  # the portal's redirect_uri is not registered for the other client
], ids=["unknown-client", "no-client", "redirect-suffix", "foreign-redirect", "no-redirect", "other-clients-uri"])
async def test_unknown_client_or_redirect_uri_shows_an_error_page(
        idp: RunningIdentityProvider, browser: httpx.AsyncClient, overrides: dict[str, str | None]) -> None:
    response = await browser.get(f"{idp.issuer}/authorize", params=Attempt().params(**overrides))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]
    assert 'role="alert"' in response.text


@pytest.mark.parametrize(("overrides", "error"), [
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "too-short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "email profile"}, "invalid_scope"),
    ({"prompt": "none"}, "login_required"),
], ids=["no-pkce", "no-method", "plain", "short-challenge", "implicit", "no-openid", "prompt-none"])
async def test_bad_requests_are_redirected_with_an_error(
        idp: RunningIdentityProvider, browser: httpx.AsyncClient, overrides: dict[str, str | None], error: str) -> None:
    attempt = Attempt()
    response = await browser.get(f"{idp.issuer}/authorize", params=attempt.params(**overrides))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = query_of(location)
    assert query["error"] == error and query["state"] == attempt.state and query["iss"] == idp.issuer
    assert "code" not in query


async def test_wrong_password_rerenders_the_form(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    _, form = await sign_in_form(browser, idp.issuer, Attempt())
    for username, password in [(AMELIA.username, "wrong"), ("nobody", AMELIA.password), (AMELIA.username, "")]:
        response = await submit(browser, idp.issuer, form, username, password)
        assert response.status_code == 401
        assert "location" not in response.headers
        again = parse_form(response.text)
        assert again.alerts and "not correct" in " ".join(again.alerts)
        assert again.fields["username"] == username
        assert again.fields["csrf_token"] != form.fields["csrf_token"]  # a fresh form each time
        form = again


async def test_tampered_or_replayed_form_token_is_refused(idp: RunningIdentityProvider,
                                                          browser: httpx.AsyncClient) -> None:
    _, form = await sign_in_form(browser, idp.issuer, Attempt())
    nonce, expires, mac = form.fields["csrf_token"].split(".")
    tampered = Form(action=form.action, fields={**form.fields, "csrf_token": f"{nonce}.{expires}.{mac[:-2]}AA"})
    response = await submit(browser, idp.issuer, tampered, AMELIA.username, AMELIA.password)
    assert response.status_code == 400 and "location" not in response.headers
    assert parse_form(response.text).alerts

    longer = Form(action=form.action, fields={**form.fields, "csrf_token": f"{nonce}.{int(expires) + 3600}.{mac}"})
    assert (await submit(browser, idp.issuer, longer, AMELIA.username, AMELIA.password)).status_code == 400

    swapped = Form(action=form.action, fields={**form.fields, "nonce": "attacker-chosen"})
    assert (await submit(browser, idp.issuer, swapped, AMELIA.username, AMELIA.password)).status_code == 400

    first = await submit(browser, idp.issuer, form, AMELIA.username, "wrong")
    assert first.status_code == 401
    replay = await submit(browser, idp.issuer, form, AMELIA.username, AMELIA.password)
    assert replay.status_code == 400 and "location" not in replay.headers

    async with httpx.AsyncClient(timeout=10) as other_browser:  # the form token is bound to the browser's cookie
        _, fresh = await sign_in_form(browser, idp.issuer, Attempt())
        stolen = await submit(other_browser, idp.issuer, fresh, AMELIA.username, AMELIA.password)
        assert stolen.status_code == 400


# --- the token endpoint refuses ------------------------------------------------------------------------------


async def test_wrong_code_verifier_is_invalid_grant(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    code = await get_code(browser, idp.issuer, attempt)
    response = await redeem(browser, idp.issuer, code, secrets.token_urlsafe(48))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"
    # the code was spent by the failed attempt
    assert (await redeem(browser, idp.issuer, code, attempt.verifier)).json()["error"] == "invalid_grant"


async def test_redirect_uri_must_match_at_the_token_endpoint(idp: RunningIdentityProvider,
                                                             browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    code = await get_code(browser, idp.issuer, attempt)
    response = await redeem(browser, idp.issuer, code, attempt.verifier, redirect_uri=CALLBACK + "x")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_code_reuse_is_refused_and_revokes_the_tokens(idp: RunningIdentityProvider,
                                                            browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    code = await get_code(browser, idp.issuer, attempt)
    first = await redeem(browser, idp.issuer, code, attempt.verifier)
    assert first.status_code == 200
    access_token = first.json()["access_token"]
    bearer = {"Authorization": f"Bearer {access_token}"}
    assert (await browser.get(f"{idp.issuer}/userinfo", headers=bearer)).status_code == 200

    second = await redeem(browser, idp.issuer, code, attempt.verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    revoked = await browser.get(f"{idp.issuer}/userinfo", headers=bearer)
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


async def test_expired_code_is_invalid_grant(browser: httpx.AsyncClient) -> None:
    with start_identity_provider(clients=[PORTAL], users=[AMELIA], code_ttl=1) as short_lived:
        attempt = Attempt()
        code = await get_code(browser, short_lived.issuer, attempt)
        time.sleep(1.2)
        response = await redeem(browser, short_lived.issuer, code, attempt.verifier)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


async def test_wrong_client_secret_is_invalid_client(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    code = await get_code(browser, idp.issuer, attempt)
    response = await redeem(browser, idp.issuer, code, attempt.verifier, secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    no_auth = await browser.post(f"{idp.issuer}/token", data={"grant_type": "authorization_code", "code": code})
    assert no_auth.status_code == 401 and no_auth.json()["error"] == "invalid_client"
    other = await browser.post(f"{idp.issuer}/token", auth=(OTHER.client_id, OTHER.client_secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": attempt.verifier})
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"  # bound to the portal
    # none of the refused attempts spent the code
    assert (await redeem(browser, idp.issuer, code, attempt.verifier)).status_code == 200


async def test_token_request_errors(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    auth = (PORTAL.client_id, PORTAL.client_secret)
    unsupported = await browser.post(f"{idp.issuer}/token", auth=auth, data={"grant_type": "password"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    missing = await browser.post(f"{idp.issuer}/token", auth=auth, data={"grant_type": "authorization_code"})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    as_json = await browser.post(f"{idp.issuer}/token", auth=auth, json={"grant_type": "authorization_code"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    unknown = await redeem(browser, idp.issuer, "no-such-code", Attempt().verifier)
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"


async def test_userinfo_requires_a_valid_token(idp: RunningIdentityProvider, browser: httpx.AsyncClient) -> None:
    for headers in [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}]:
        response = await browser.get(f"{idp.issuer}/userinfo", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer ")


# --- logout --------------------------------------------------------------------------------------------------


async def test_logout_redirects_only_to_registered_addresses(idp: RunningIdentityProvider,
                                                             browser: httpx.AsyncClient) -> None:
    attempt = Attempt()
    code = await get_code(browser, idp.issuer, attempt)
    id_token = (await redeem(browser, idp.issuer, code, attempt.verifier)).json()["id_token"]

    ok = await browser.get(f"{idp.issuer}/logout", params={
        "id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT, "state": "s1"})
    assert ok.status_code == 302 and ok.headers["location"] == f"{SIGNED_OUT}?state=s1"
    by_client = await browser.get(f"{idp.issuer}/logout", params={
        "client_id": PORTAL.client_id, "post_logout_redirect_uri": SIGNED_OUT})
    assert by_client.status_code == 302 and by_client.headers["location"] == SIGNED_OUT

    refused = [
        {"id_token_hint": id_token, "post_logout_redirect_uri": "https://attacker.example/"},
        {"client_id": PORTAL.client_id, "post_logout_redirect_uri": SIGNED_OUT + "x"},
        {"post_logout_redirect_uri": SIGNED_OUT},  # no client to check it against
        {"id_token_hint": id_token[:-4] + "AAAA", "post_logout_redirect_uri": SIGNED_OUT},
        {"id_token_hint": id_token, "client_id": OTHER.client_id, "post_logout_redirect_uri": SIGNED_OUT},
        {"client_id": OTHER.client_id, "post_logout_redirect_uri": SIGNED_OUT},
        {},
    ]
    for params in refused:
        response = await browser.get(f"{idp.issuer}/logout", params=params)
        assert response.status_code == 200, params
        assert "location" not in response.headers
        assert "signed out" in response.text.lower()
        assert "attacker" not in response.text


# --- running and mounting ------------------------------------------------------------------------------------


async def test_mounted_under_a_path_prefix() -> None:
    issuer = "http://127.0.0.1:8000/demo-idp"
    idp_app = create_identity_provider(issuer, clients=[PORTAL], users=[AMELIA])
    main = Starlette(routes=[Mount("/demo-idp", app=idp_app)])
    transport = httpx.ASGITransport(app=main)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        meta = (await client.get("/demo-idp/.well-known/openid-configuration")).json()
        assert meta["issuer"] == issuer
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                    "end_session_endpoint"):
            assert meta[key].startswith(issuer + "/"), key
        assert (await client.get(meta["jwks_uri"])).json()["keys"]

        attempt = Attempt()
        page = await client.get(meta["authorization_endpoint"], params=attempt.params())
        assert 'href="/demo-idp/static/idp.css"' in page.text
        form = parse_form(page.text)
        assert form.action == "/demo-idp/authorize"
        code = await get_code(client, issuer, attempt)
        response = await redeem(client, issuer, code, attempt.verifier)
        jwks = (await client.get(meta["jwks_uri"])).json()
        claims = verify_id_token(response.json()["id_token"], jwks, issuer, attempt.nonce)
        assert claims["iss"] == issuer


async def test_started_under_a_path_and_stopped() -> None:
    with start_identity_provider(clients=[PORTAL], users=[AMELIA], path="/idp") as provider:
        assert provider.issuer == f"http://127.0.0.1:{provider.port}/idp" == f"{provider.url}/idp"
        async with httpx.AsyncClient() as client:
            meta = (await client.get(f"{provider.issuer}/.well-known/openid-configuration")).json()
            assert meta["token_endpoint"] == f"{provider.issuer}/token"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2)


def test_keys_are_stable_with_a_configured_private_key() -> None:
    pem = JsonWebKey.generate_key("RSA", 2048, is_private=True).as_pem(is_private=True)
    first = create_identity_provider("http://idp.test", clients=[PORTAL], users=[AMELIA], private_key_pem=pem)
    second = create_identity_provider("http://idp.test", clients=[PORTAL], users=[AMELIA], private_key_pem=pem)
    assert first.state.identity_provider.public_jwk == second.state.identity_provider.public_jwk
    generated = create_identity_provider("http://idp.test", clients=[PORTAL], users=[AMELIA])
    assert generated.state.identity_provider.kid != first.state.identity_provider.kid


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="trailing slash"):
        create_identity_provider("http://idp.test/", clients=[PORTAL], users=[AMELIA])
    with pytest.raises(ValueError, match="brand_color"):
        create_identity_provider("http://idp.test", clients=[PORTAL], users=[AMELIA], brand_color="red;}body{")
    with pytest.raises(ValueError, match="duplicate"):
        create_identity_provider("http://idp.test", clients=[PORTAL, PORTAL], users=[AMELIA])
    with pytest.raises(ValueError, match="repeats"):
        create_identity_provider("http://idp.test", clients=[PORTAL], users=[AMELIA, AMELIA])

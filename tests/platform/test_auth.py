"""Authentication (bearer JWTs, local key and JWKS) and authorization (role permissions, customer self-service)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from openbss.platform.auth import TokenVerifier, local_key, permissions_for
from openbss.platform.errors import Unauthorized
from tests.conftest import bearer, make_tenant

BASE = "/tmf-api/party/v4"
MERGE = {"Content-Type": "application/merge-patch+json"}


def claims_for(settings: Any, tenant: str, roles: list[str], **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": f"test:{uuid.uuid4()}",
        "iat": now, "nbf": now - 5, "exp": now + 600,
        settings.tenant_claim: tenant, settings.roles_claim: roles,
    }
    out.update(extra)
    return out


def sign_local(settings: Any, claims: dict[str, Any]) -> str:
    key = local_key(settings)
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unauthorized(code: str, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "reason": "Authentication required", "status": "401", "@type": "Error"}
    if message is not None:
        body["message"] = message
    return body


def assert_401(r: httpx.Response, code: str, message: str | None = None, *,
               message_prefix: str | None = None) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert set(body) == {"code", "reason", "message", "status", "@type"}, body
    if message is None:
        assert isinstance(body["message"], str) and body["message"], body
        if message_prefix is not None:
            assert body["message"].startswith(message_prefix), body
        body = {k: v for k, v in body.items() if k != "message"}
    assert body == unauthorized(code, message)


def forbidden(message: str, code: str = "FORBIDDEN") -> dict[str, str]:
    return {"code": code, "reason": "Permission denied", "message": message, "status": "403", "@type": "Error"}


async def create_individual(client: Any, tenant: str, given: str = "Ann") -> dict[str, Any]:
    r = await client.post(f"{BASE}/individual", json={"givenName": given, "familyName": "Doe"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    return r.json()


async def count_individuals(client: Any, tenant: str) -> int:
    r = await client.get(f"{BASE}/individual", headers=bearer(tenant, "admin"))
    assert r.status_code == 200
    return int(r.headers["X-Total-Count"])


# --- 401 ------------------------------------------------------------------------------------------------------
async def test_missing_header_is_401(client: Any, tenant: str) -> None:
    r = await client.get(f"{BASE}/individual")
    assert_401(r, "MISSING_TOKEN", "missing 'Authorization: Bearer <token>' header")


async def test_missing_header_is_401_before_body_validation(client: Any, tenant: str) -> None:
    r = await client.post(f"{BASE}/individual", json={"nonsense": 1})
    assert_401(r, "MISSING_TOKEN", "missing 'Authorization: Bearer <token>' header")
    assert await count_individuals(client, tenant) == 0


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer    ", "bearerxyz"])
async def test_non_bearer_scheme_is_401(client: Any, tenant: str, header: str) -> None:
    r = await client.get(f"{BASE}/individual", headers={"Authorization": header})
    assert_401(r, "INVALID_TOKEN", "the Authorization header must be 'Bearer <token>'")


async def test_bearer_scheme_is_case_insensitive(client: Any, tenant: str) -> None:
    token = bearer(tenant, "admin")["Authorization"].split(" ", 1)[1]
    r = await client.get(f"{BASE}/individual", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"])
async def test_garbage_token_is_401(client: Any, tenant: str, token: str) -> None:
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", message_prefix="invalid token: ")


async def test_expired_token_is_401(client: Any, settings: Any, tenant: str) -> None:
    now = int(time.time())
    # well past the 30 s leeway
    token = sign_local(settings, claims_for(settings, tenant, ["admin"], iat=now - 7200, nbf=now - 7200,
                                            exp=now - 120))
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", "invalid token: Signature has expired")


async def test_token_signed_by_another_key_is_401(client: Any, settings: Any, tenant: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # even when it claims the local key's kid
    token = jwt.encode(claims_for(settings, tenant, ["admin"]), other, algorithm="RS256",
                       headers={"kid": local_key(settings).kid})
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", "invalid token: Signature verification failed")


async def test_unsigned_token_is_401(client: Any, settings: Any, tenant: str) -> None:
    token = jwt.encode(claims_for(settings, tenant, ["admin"]), "", algorithm="none")
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", message_prefix="invalid token: ")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_token_with_other_allowed_algorithm_is_401_not_500(app: Any, settings: Any, tenant: str,
                                                                 alg: str) -> None:
    """The verifier accepts RS256, ES256 and EdDSA; an ES256/EdDSA token checked against the RSA key must be a 401
    (the caller's mistake), never an unhandled error."""
    key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else ed25519.Ed25519PrivateKey.generate()
    token = jwt.encode(claims_for(settings, tenant, ["admin"]), key, algorithm=alg)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", message_prefix="invalid token")


async def test_wrong_audience_is_401(client: Any, settings: Any, tenant: str) -> None:
    token = sign_local(settings, claims_for(settings, tenant, ["admin"], aud="someone-else"))
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", "invalid token: Audience doesn't match")


async def test_wrong_issuer_is_401(client: Any, settings: Any, tenant: str) -> None:
    token = sign_local(settings, claims_for(settings, tenant, ["admin"], iss="https://evil.example"))
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert_401(r, "INVALID_TOKEN", "invalid token: Invalid issuer")


async def test_token_without_tenant_claim_is_401(client: Any, settings: Any, tenant: str) -> None:
    claims = claims_for(settings, tenant, ["admin"])
    del claims[settings.tenant_claim]
    r = await client.get(f"{BASE}/individual", headers=auth(sign_local(settings, claims)))
    assert_401(r, "INVALID_TOKEN", f"token has no '{settings.tenant_claim}' claim")


async def test_token_for_unknown_tenant_is_401(client: Any) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    r = await client.get(f"{BASE}/individual", headers=bearer(ghost, "admin"))
    assert_401(r, "UNKNOWN_TENANT", f"tenant '{ghost}' does not exist or is not active")


async def test_token_for_suspended_tenant_is_401(client: Any, rt: Any) -> None:
    from sqlalchemy import text

    tid = await make_tenant(rt, "s")
    async with rt.db.transaction(None) as s:
        await s.execute(text("UPDATE tenant SET status = 'suspended' WHERE id = :t"), {"t": tid})
    r = await client.get(f"{BASE}/individual", headers=bearer(tid, "admin"))
    assert_401(r, "UNKNOWN_TENANT", f"tenant '{tid}' does not exist or is not active")


async def test_customer_token_without_party_claim_is_401(client: Any, tenant: str) -> None:
    r = await client.get(f"{BASE}/individual", headers=bearer(tenant, "customer"))
    assert_401(r, "INVALID_TOKEN", "a customer token must carry 'party_id'")


# --- 403 ------------------------------------------------------------------------------------------------------
async def test_network_ops_cannot_create_individual(client: Any, tenant: str) -> None:
    r = await client.post(f"{BASE}/individual", json={"givenName": "N", "familyName": "O"},
                          headers=bearer(tenant, "network_ops"))
    assert r.status_code == 403, r.text
    assert r.json() == forbidden("role(s) network_ops lack permission 'party:write'")
    assert await count_individuals(client, tenant) == 0


async def test_network_ops_cannot_read_individuals(client: Any, tenant: str) -> None:
    await create_individual(client, tenant)
    r = await client.get(f"{BASE}/individual", headers=bearer(tenant, "network_ops"))
    assert r.status_code == 403, r.text
    assert r.json() == forbidden("role(s) network_ops lack permission 'party:read'")


async def test_catalog_manager_can_read_but_not_patch_individual(client: Any, tenant: str) -> None:
    ind = await create_individual(client, tenant)
    h = bearer(tenant, "catalog_manager")
    r = await client.get(f"{BASE}/individual/{ind['id']}", headers=h)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{BASE}/individual/{ind['id']}", content=json.dumps({"givenName": "X"}),
                           headers={**h, **MERGE})
    assert r.status_code == 403, r.text
    assert r.json() == forbidden("role(s) catalog_manager lack permission 'party:write'")
    r = await client.get(f"{BASE}/individual/{ind['id']}", headers=bearer(tenant, "admin"))
    assert r.json() == ind


async def test_token_without_known_roles_is_403(client: Any, settings: Any, tenant: str) -> None:
    token = sign_local(settings, claims_for(settings, tenant, ["offline_access"]))
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert r.status_code == 403, r.text
    assert r.json() == forbidden("role(s) offline_access lack permission 'party:read'")


async def test_customer_cannot_create_individual(client: Any, tenant: str) -> None:
    me = await create_individual(client, tenant)
    r = await client.post(f"{BASE}/individual", json={"givenName": "C", "familyName": "D"},
                          headers=bearer(tenant, "customer", party=me["id"]))
    assert r.status_code == 403, r.text
    assert r.json() == forbidden("customers cannot create individual", code="CUSTOMER_FORBIDDEN")
    assert await count_individuals(client, tenant) == 1


async def test_customer_cannot_delete_even_itself(client: Any, tenant: str) -> None:
    me = await create_individual(client, tenant)
    other = await create_individual(client, tenant, "Other")
    h = bearer(tenant, "customer", party=me["id"])
    for target in (me, other):
        r = await client.delete(f"{BASE}/individual/{target['id']}", headers=h)
        assert r.status_code == 403, r.text
        assert r.json() == forbidden("customers cannot delete individual", code="CUSTOMER_FORBIDDEN")
    assert await count_individuals(client, tenant) == 2


async def test_customer_cannot_subscribe_to_hub(client: Any, tenant: str) -> None:
    me = await create_individual(client, tenant)
    r = await client.post(f"{BASE}/hub", json={"callback": "http://127.0.0.1:9/cb"},
                          headers=bearer(tenant, "customer", party=me["id"]))
    assert r.status_code == 403, r.text
    assert r.json() == forbidden("customers cannot subscribe to notification hubs", code="CUSTOMER_FORBIDDEN")


# --- customer self-service ------------------------------------------------------------------------------------
async def test_customer_lists_only_itself(client: Any, tenant: str) -> None:
    me = await create_individual(client, tenant, "Me")
    others = [await create_individual(client, tenant, f"Other{i}") for i in range(3)]
    h = bearer(tenant, "customer", party=me["id"])
    r = await client.get(f"{BASE}/individual", headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == [me]
    assert r.headers["X-Total-Count"] == "1"
    assert r.headers["X-Result-Count"] == "1"
    # a filter naming other parties cannot widen the scope
    r = await client.get(f"{BASE}/individual", params={"id": ",".join(o["id"] for o in others)}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert r.headers["X-Total-Count"] == "0"
    r = await client.get(f"{BASE}/individual", params={"givenName": "Other1"}, headers=h)
    assert r.json() == []
    assert r.headers["X-Total-Count"] == "0"


async def test_customer_cannot_read_or_patch_another_party(client: Any, tenant: str) -> None:
    me = await create_individual(client, tenant, "Me")
    other = await create_individual(client, tenant, "Other")
    h = bearer(tenant, "customer", party=me["id"])
    not_found = {"code": "NOT_FOUND", "reason": "Resource not found", "status": "404", "@type": "Error",
                 "message": f"Individual '{other['id']}' not found"}
    r = await client.get(f"{BASE}/individual/{other['id']}", headers=h)
    assert r.status_code == 404, r.text
    assert r.json() == not_found
    r = await client.patch(f"{BASE}/individual/{other['id']}", content=json.dumps({"givenName": "Pwned"}),
                           headers={**h, **MERGE})
    assert r.status_code == 404, r.text
    assert r.json() == not_found
    r = await client.get(f"{BASE}/individual/{other['id']}", headers=bearer(tenant, "admin"))
    assert r.json() == other


async def test_customer_reads_and_patches_itself(client: Any, tenant: str) -> None:
    me = await create_individual(client, tenant, "Me")
    h = bearer(tenant, "customer", party=me["id"])
    r = await client.get(f"{BASE}/individual/{me['id']}", headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == me
    r = await client.patch(f"{BASE}/individual/{me['id']}", content=json.dumps({"givenName": "Renamed"}),
                           headers={**h, **MERGE})
    assert r.status_code == 200, r.text
    assert r.json()["givenName"] == "Renamed"
    assert r.json()["id"] == me["id"]
    r = await client.get(f"{BASE}/individual/{me['id']}", headers=bearer(tenant, "admin"))
    assert r.json()["givenName"] == "Renamed"


async def test_customer_party_of_another_tenant_sees_nothing(client: Any, tenant: str,
                                                             other_tenant: str) -> None:
    theirs = await create_individual(client, other_tenant)
    h = bearer(tenant, "customer", party=theirs["id"])
    r = await client.get(f"{BASE}/individual", headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert r.headers["X-Total-Count"] == "0"
    r = await client.get(f"{BASE}/individual/{theirs['id']}", headers=h)
    assert r.status_code == 404


async def test_customer_with_extra_non_staff_role_is_still_restricted(client: Any, settings: Any,
                                                                      tenant: str) -> None:
    """Identity providers put unrelated roles in the roles claim (Keycloak: offline_access,
    uma_authorization). Those grant nothing, so the principal is still a self-service customer."""
    me = await create_individual(client, tenant, "Me")
    other = await create_individual(client, tenant, "Other")
    token = sign_local(settings, claims_for(settings, tenant, ["customer", "offline_access"],
                                            **{settings.party_claim: me["id"]}))
    r = await client.get(f"{BASE}/individual", headers=auth(token))
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [me["id"]]
    assert r.headers["X-Total-Count"] == "1"
    r = await client.get(f"{BASE}/individual/{other['id']}", headers=auth(token))
    assert r.status_code == 404, r.text


# --- open endpoints -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/docs", "/openapi.json"])
async def test_open_endpoints_need_no_token(client: Any, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    if path == "/health/live":
        assert r.json() == {"status": "up"}
    elif path == "/health/ready":
        assert r.json()["status"] == "up"
    elif path == "/openapi.json":
        assert f"{BASE}/individual" in r.json()["paths"]
    else:
        assert "text/html" in r.headers["content-type"]


# --- JWKS mode ------------------------------------------------------------------------------------------------
@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any, str]]:
    """A JWKS endpoint on 127.0.0.1 serving a fresh RSA key; yields (url, private key, kid)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = f"k-{uuid.uuid4().hex[:8]}"
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path != "/jwks.json":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", key, kid
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert hits, "the verifier never fetched the JWKS"


async def test_jwks_token_is_accepted(settings: Any, jwks_server: tuple[str, Any, str]) -> None:
    url, key, kid = jwks_server
    verifier = TokenVerifier(settings.model_copy(update={"jwks_url": url}))
    claims = claims_for(settings, "acme", ["csr_agent", "billing_ops"], sub="user-42")
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    p = await verifier.verify(token)
    assert p.subject == "user-42"
    assert p.tenant_id == "acme"
    assert p.roles == ("csr_agent", "billing_ops")
    assert p.party_id is None
    assert p.permissions == permissions_for(("csr_agent", "billing_ops"))
    assert p.can("billing", "write") and p.can("party", "write") and not p.can("catalog", "write")

    customer = jwt.encode(claims_for(settings, "acme", ["customer"], sub="c-1", **{settings.party_claim: "p-9"}),
                          key, algorithm="RS256", headers={"kid": kid})
    c = await verifier.verify(customer)
    assert (c.subject, c.tenant_id, c.roles, c.party_id, c.is_customer) == ("c-1", "acme", ("customer",), "p-9",
                                                                           True)


async def test_jwks_mode_rejects_the_local_key(settings: Any, jwks_server: tuple[str, Any, str]) -> None:
    url, _, kid = jwks_server
    verifier = TokenVerifier(settings.model_copy(update={"jwks_url": url}))
    local_token = sign_local(settings, claims_for(settings, "acme", ["admin"]))
    with pytest.raises(Unauthorized) as exc:
        await verifier.verify(local_token)
    assert exc.value.status == 401
    assert exc.value.code == "INVALID_TOKEN"
    # signed with the local key but naming the JWKS key's kid: the signature does not verify
    forged = jwt.encode(claims_for(settings, "acme", ["admin"]), local_key(settings).private_pem,
                        algorithm="RS256", headers={"kid": kid})
    with pytest.raises(Unauthorized) as exc:
        await verifier.verify(forged)
    assert exc.value.code == "INVALID_TOKEN"
    assert exc.value.message == "invalid token: Signature verification failed"


async def test_jwks_mode_checks_issuer_and_audience(settings: Any, jwks_server: tuple[str, Any, str]) -> None:
    url, key, kid = jwks_server
    verifier = TokenVerifier(settings.model_copy(update={"jwks_url": url}))
    for bad in ({"iss": "https://other-idp.example"}, {"aud": "another-app"}):
        token = jwt.encode(claims_for(settings, "acme", ["admin"], **bad), key, algorithm="RS256",
                           headers={"kid": kid})
        with pytest.raises(Unauthorized) as exc:
            await verifier.verify(token)
        assert exc.value.code == "INVALID_TOKEN"


async def test_jwks_mode_accepts_the_platforms_customer_tokens_only(settings: Any,
                                                                    jwks_server: tuple[str, Any, str]) -> None:
    """With staff tokens from an identity provider, the platform's own key still signs the short-lived tokens the
    self-care portal uses to act for one customer (towards the charging API), and nothing more."""
    from openbss.platform.auth import issue_token

    url, key, kid = jwks_server
    verifier = TokenVerifier(settings.model_copy(update={"jwks_url": url}))
    p = await verifier.verify(issue_token("acme", ["customer"], party="p-7", settings=settings))
    assert p.roles == ("customer",) and p.party_id == "p-7" and p.is_customer
    for roles in (["admin"], ["system"], ["customer", "csr_agent"]):
        with pytest.raises(Unauthorized) as exc:
            await verifier.verify(issue_token("acme", roles, party="p-7", settings=settings))
        assert exc.value.code == "INVALID_TOKEN"
    # the identity provider's tokens still work beside them
    token = jwt.encode(claims_for(settings, "acme", ["csr_agent"]), key, algorithm="RS256", headers={"kid": kid})
    assert (await verifier.verify(token)).roles == ("csr_agent",)


# --- verified tokens are remembered, within their validity ------------------------------------------------------------
async def test_a_verified_token_is_remembered_until_it_expires(settings: Any, tenant: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from openbss.platform import auth as auth_module

    verifier = TokenVerifier(settings)
    checks: list[str] = []
    real = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        checks.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(auth_module.jwt, "decode", counting_decode)
    now = time.time()
    token = sign_local(settings, claims_for(settings, tenant, ["csr_agent"], exp=int(now) + 20))
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first and len(checks) == 1  # the signature is checked once
    # past the token's expiry it is verified on every use (accepted or refused by the signature check's rules)
    monkeypatch.setattr(auth_module.time, "time", lambda: now + 25)
    assert await verifier.verify(token) == first and len(checks) == 2
    assert await verifier.verify(token) == first and len(checks) == 3


async def test_a_remembered_token_is_verified_again_after_a_minute(settings: Any, tenant: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from openbss.platform import auth as auth_module

    verifier = TokenVerifier(settings)
    now = time.time()
    token = sign_local(settings, claims_for(settings, tenant, ["admin"], exp=int(now) + 3600))
    await verifier.verify(token)
    other = TokenVerifier(settings.model_copy(update={"jwt_audience": "someone-else"}))
    other._verified = verifier._verified  # the same memory, a verifier that would now refuse the token
    assert (await other.verify(token)).tenant_id == tenant  # remembered
    monkeypatch.setattr(auth_module.time, "time", lambda: now + auth_module.VERIFIED_TOKEN_SECONDS + 1)
    with pytest.raises(Unauthorized):
        await other.verify(token)


async def test_refused_tokens_are_never_remembered(settings: Any, tenant: str) -> None:
    verifier = TokenVerifier(settings)
    bad = sign_local(settings, claims_for(settings, tenant, ["admin"], aud="not-us"))
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(bad)
    assert verifier._verified == {}

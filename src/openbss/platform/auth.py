"""Authentication (bearer JWTs) and authorization (roles mapped to permissions).

Tokens are asymmetric JWTs. With ``OPENBSS_JWKS_URL`` any OIDC provider's keys are used; otherwise the local
signing key (embedded mode, ``openbss token``) is used. The principal carries its tenant, roles and, for the
``customer`` role, the party it may act for.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request

from openbss.platform.errors import Forbidden, Unauthorized
from openbss.settings import Settings, get_settings

READ, WRITE = "read", "write"

# Permission scopes of the platform. A permission is "<scope>:<read|write>"; "*" grants everything.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "system": frozenset({"*:read", "*:write"}),
    "catalog_manager": frozenset({"catalog:read", "catalog:write", "party:read", "hub:write"}),
    "csr_agent": frozenset({
        "party:read", "party:write", "customer:read", "customer:write", "account:read", "account:write",
        "ordering:read", "ordering:write", "catalog:read", "inventory:read", "charging:read", "billing:read",
        "payments:read", "care:read", "care:write", "collections:read", "collections:write",
    }),
    # care supervisors: everything an agent does, plus configuring queues and SLA policies
    "care_supervisor": frozenset({
        "party:read", "party:write", "customer:read", "customer:write", "account:read", "account:write",
        "ordering:read", "ordering:write", "catalog:read", "inventory:read", "charging:read", "billing:read",
        "payments:read", "care:read", "care:write", "careconfig:read", "careconfig:write", "hub:write",
        "collections:read", "collections:write", "collectionsconfig:read", "collectionsconfig:write",
    }),
    "billing_ops": frozenset({
        "billing:read", "billing:write", "payments:read", "payments:write", "account:read", "account:write",
        "party:read", "customer:read", "charging:read", "rating:read", "rating:write", "hub:write",
        "collections:read", "collections:write", "collectionsconfig:read", "collectionsconfig:write",
    }),
    "network_ops": frozenset({
        "provisioning:read", "provisioning:write", "inventory:read", "inventory:write", "assurance:read",
        "assurance:write", "catalog:read", "hub:write",
    }),
    # Self-service: the repository restricts every query to the customer's own party.
    "customer": frozenset({
        "party:read", "party:write", "customer:read", "account:read", "inventory:read", "charging:read",
        "billing:read", "payments:read", "care:read", "care:write", "catalog:read",
        "collections:read", "collections:write",  # its own promises to pay only (the resource's customer rules)
    }),
}
ROLES = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    roles: tuple[str, ...]
    party_id: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_customer(self) -> bool:
        """A self-service principal: restricted to its own party unless it also holds a staff role."""
        return "customer" in self.roles and not any(
            r != "customer" and r in ROLE_PERMISSIONS for r in self.roles)

    def can(self, scope: str, action: str) -> bool:
        p = self.permissions
        return "*" in p or f"{scope}:{action}" in p or f"*:{action}" in p

    def require(self, scope: str, action: str) -> None:
        if not self.can(scope, action):
            raise Forbidden(f"role(s) {', '.join(self.roles) or 'none'} lack permission '{scope}:{action}'")


def permissions_for(roles: tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(out)


# --- keys --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalKey:
    private_pem: bytes
    public_pem: bytes
    kid: str
    #: the parsed private key: parsing the PEM costs milliseconds, signing with a parsed key a fraction of that
    private_key: Any = None
    public_key: Any = None


def _load_or_create_private_key(settings: Settings) -> bytes:
    if settings.jwt_private_key:
        return settings.jwt_private_key.encode()
    path = settings.keys_dir / "jwt-signing-key.pem"
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    return path.read_bytes()


@lru_cache(maxsize=4)
def _local_key_cached(private_key: str | None, keys_dir: str) -> LocalKey:
    settings = get_settings()
    pem = _load_or_create_private_key(settings)
    key = serialization.load_pem_private_key(pem, password=None)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(public_pem).digest()[:12]).decode().rstrip("=")
    return LocalKey(pem, public_pem, kid, key, key.public_key())


def local_key(settings: Settings | None = None) -> LocalKey:
    settings = settings or get_settings()
    return _local_key_cached(settings.jwt_private_key, str(settings.keys_dir))


def local_jwks(settings: Settings | None = None) -> dict[str, Any]:
    key = local_key(settings)
    public = serialization.load_pem_public_key(key.public_pem)
    assert isinstance(public, rsa.RSAPublicKey)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    jwk.update({"kid": key.kid, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


def issue_token(tenant: str, roles: list[str] | tuple[str, ...], *, party: str | None = None,
                subject: str | None = None, ttl_seconds: int = 3600, settings: Settings | None = None) -> str:
    """A bearer token signed with the local key (embedded mode, scripts and tests)."""
    settings = settings or get_settings()
    unknown = [r for r in roles if r not in ROLE_PERMISSIONS]
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject or f"cli:{uuid.uuid4()}",
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl_seconds,
        settings.tenant_claim: tenant,
        settings.roles_claim: list(roles),
    }
    if party:
        claims[settings.party_claim] = party
    key = local_key(settings)
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


#: how long a verified token's principal is reused (never beyond the token's expiry)
VERIFIED_TOKEN_SECONDS = 60.0


class TokenVerifier:
    """Verifies bearer tokens. A token that verified is remembered by its exact text until it expires, and at most
    ``VERIFIED_TOKEN_SECONDS`` (so a key withdrawn from the identity provider stops working within that bound): a
    client sends the same token with every request, and the signature check is most of the cost of authentication.
    Tokens that fail are never remembered."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300) if settings.jwks_url else None
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal, expires = await self._verify(token)
        if len(self._verified) >= 4096:
            self._verified.clear()
        self._verified[token] = (principal, min(expires, now + VERIFIED_TOKEN_SECONDS))
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        s = self.settings
        own_key_in_idp_mode = False
        try:
            own = local_key(s)
            own_key_in_idp_mode = self._jwks is not None and jwt.get_unverified_header(token).get("kid") == own.kid
            if self._jwks is not None and not own_key_in_idp_mode:
                jwk = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                signing_key: Any = jwk.key
                # the key decides the algorithm: a token cannot pick another one
                algorithms = [jwk.algorithm_name] if jwk.algorithm_name in s.jwt_algorithms else []
            else:
                # the platform's own key: every token without an identity provider; with one, only the
                # short-lived tokens the self-care portal issues to act for one customer (checked below)
                signing_key = own.public_key
                algorithms = ["RS256"]
            if not algorithms:
                raise Unauthorized("the signing key's algorithm is not accepted", code="INVALID_TOKEN")
            claims = jwt.decode(
                token, signing_key, algorithms=algorithms, audience=s.jwt_audience, issuer=s.jwt_issuer,
                options={"require": ["exp", "sub"]}, leeway=30,
            )
        except jwt.PyJWKClientError as exc:
            raise Unauthorized(f"token signing key not found: {exc}", code="INVALID_TOKEN") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}", code="INVALID_TOKEN") from exc
        tenant = claims.get(s.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise Unauthorized(f"token has no '{s.tenant_claim}' claim", code="INVALID_TOKEN")
        raw_roles = claims.get(s.roles_claim) or []
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        if not isinstance(raw_roles, list):
            raise Unauthorized(f"the '{s.roles_claim}' claim must be a list of roles", code="INVALID_TOKEN")
        roles = tuple(r for r in raw_roles if isinstance(r, str))
        if own_key_in_idp_mode and roles != ("customer",):
            raise Unauthorized("tokens signed by the platform's own key only act for a customer when an identity "
                               "provider issues the staff tokens", code="INVALID_TOKEN")
        party = claims.get(s.party_claim)
        if "customer" in roles and not party:
            raise Unauthorized(f"a customer token must carry '{s.party_claim}'", code="INVALID_TOKEN")
        return Principal(
            subject=str(claims["sub"]), tenant_id=tenant, roles=roles,
            party_id=str(party) if party else None, permissions=permissions_for(roles),
        ), float(claims["exp"])


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing 'Authorization: Bearer <token>' header", code="MISSING_TOKEN")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="INVALID_TOKEN")
    return token.strip()

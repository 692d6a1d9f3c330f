"""Signing in with any OpenID Connect provider: authorization code flow with PKCE (S256), the relying-party side.

Providers are configured by issuer URL, client id and secret (``OPENBSS_SELFCARE_IDENTITY_PROVIDERS``); their
endpoints come from discovery and their keys from the JWKS, both cached. The ID token is verified with Authlib:
signature against the provider's keys (refetched once when a token names an unknown key), issuer, audience,
expiry and the nonce bound to this browser's sign-in attempt.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge

with warnings.catch_warnings():
    # authlib.jose announces its move to joserfc on import; it is the JOSE implementation this project uses
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError

from openbss.selfcare.errors import SignInFailed, UpstreamUnavailable

METADATA_TTL = 3600.0
ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]


@dataclass(frozen=True)
class ProviderConfig:
    id: str
    label: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"

    @classmethod
    def parse(cls, raw: dict[str, str]) -> ProviderConfig:
        missing = [k for k in ("id", "issuer", "clientId", "clientSecret") if not raw.get(k)]
        if missing:
            raise ValueError(f"identity provider {raw.get('id', '?')}: missing {', '.join(missing)}")
        return cls(id=raw["id"], label=raw.get("label") or raw["id"], issuer=raw["issuer"].rstrip("/"),
                   client_id=raw["clientId"], client_secret=raw["clientSecret"],
                   scopes=raw.get("scopes") or "openid email profile")


@dataclass(frozen=True)
class VerifiedIdentity:
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


class OidcProviders:
    def __init__(self, configs: list[ProviderConfig], http: httpx.AsyncClient) -> None:
        self.configs = {c.id: c for c in configs}
        self.http = http
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, Any] = {}

    def get(self, provider_id: str) -> ProviderConfig:
        config = self.configs.get(provider_id)
        if config is None:
            raise SignInFailed(f"unknown identity provider '{provider_id}'", code="UNKNOWN_PROVIDER", status=404)
        return config

    async def _fetch_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the identity provider did not answer ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise UpstreamUnavailable(f"the identity provider answered {response.status_code} for {url}")
        data: dict[str, Any] = response.json()
        return data

    async def metadata(self, provider_id: str) -> dict[str, Any]:
        config = self.get(provider_id)
        cached = self._metadata.get(provider_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        meta = await self._fetch_json(f"{config.issuer}/.well-known/openid-configuration")
        if meta.get("issuer", "").rstrip("/") != config.issuer:
            raise UpstreamUnavailable(f"the discovery document of '{provider_id}' names another issuer")
        self._metadata[provider_id] = (time.monotonic() + METADATA_TTL, meta)
        return meta

    async def _key_set(self, provider_id: str, refresh: bool = False) -> Any:
        if refresh or provider_id not in self._keys:
            meta = await self.metadata(provider_id)
            self._keys[provider_id] = JsonWebKey.import_key_set(await self._fetch_json(meta["jwks_uri"]))
        return self._keys[provider_id]

    async def authorization_url(self, provider_id: str, *, redirect_uri: str, state: str, nonce: str,
                                code_verifier: str) -> str:
        config = self.get(provider_id)
        meta = await self.metadata(provider_id)
        query = urlencode({
            "response_type": "code", "client_id": config.client_id, "redirect_uri": redirect_uri,
            "scope": config.scopes, "state": state, "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier), "code_challenge_method": "S256",
        })
        endpoint = meta["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def exchange(self, provider_id: str, *, code: str, redirect_uri: str, code_verifier: str,
                       nonce: str) -> VerifiedIdentity:
        """Redeem the authorization code and verify the ID token; raises SignInFailed."""
        config = self.get(provider_id)
        meta = await self.metadata(provider_id)
        try:
            response = await self.http.post(
                meta["token_endpoint"], auth=(config.client_id, config.client_secret),
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "code_verifier": code_verifier}, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the identity provider did not answer ({type(exc).__name__})") from exc
        if response.status_code != 200:
            error = _error_of(response)
            raise SignInFailed(f"the identity provider refused the authorization code ({error})",
                               code="TOKEN_REFUSED")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the identity provider returned no ID token", code="NO_ID_TOKEN")
        claims = await self._verify(provider_id, id_token, nonce)
        return VerifiedIdentity(
            provider=provider_id, subject=str(claims["sub"]),
            email=str(claims["email"]) if claims.get("email") else None,
            email_verified=claims.get("email_verified") is True, name=claims.get("name"))

    async def _verify(self, provider_id: str, id_token: str, nonce: str) -> dict[str, Any]:
        config = self.get(provider_id)
        options = {"iss": {"essential": True, "value": config.issuer},
                   "aud": {"essential": True, "value": config.client_id},
                   "sub": {"essential": True}, "exp": {"essential": True},
                   "nonce": {"essential": True, "value": nonce}}
        jwt = JsonWebToken(ALGORITHMS)
        for refresh in (False, True):
            keys = await self._key_set(provider_id, refresh=refresh)
            try:
                claims = jwt.decode(id_token, keys, claims_options=options)
                claims.validate(leeway=60)
                return dict(claims)
            except ValueError as exc:  # no key with the token's kid: the provider may have rotated its keys
                if refresh:
                    raise SignInFailed(f"the ID token is not signed by a key of '{provider_id}'",
                                       code="INVALID_ID_TOKEN") from exc
            except JoseError as exc:
                raise SignInFailed(f"the ID token was refused: {exc.error}: {exc.description or ''}".strip(),
                                   code="INVALID_ID_TOKEN") from exc
        raise SignInFailed("the ID token could not be verified", code="INVALID_ID_TOKEN")


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error") or response.status_code)
    except ValueError:
        return str(response.status_code)

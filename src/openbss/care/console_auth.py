"""Agents sign in to the console through the operator's OpenID provider: the authorization code flow with PKCE
(S256), the console's server being the confidential client (its secret never reaches the browser).

* ``GET /console/auth/config``: whether a provider is configured (the console offers its button) — pasting a
  bearer token stays possible either way (the demo's local tokens);
* ``GET /console/auth/login``: a new sign-in attempt (random ``state``, ``nonce`` and PKCE verifier, kept in an
  HttpOnly cookie bound to this browser for 10 minutes), redirected to the provider;
* ``GET /console/auth/callback``: the provider's answer. The ``state`` must be the cookie's; the code is redeemed
  with the verifier and the client's secret; the ID token is verified (signature against the provider's JWKS,
  issuer, audience, expiry, nonce). Its ``tenant_claim`` and ``roles_claim`` say who the agent is; a token without
  a staff role (``customer`` and ``system`` never sign in here) is refused. The console's token is then the
  provider's access token when the platform verifies the provider's tokens itself (``jwks_url`` set), else an
  OpenBSS token for the verified subject, tenant and roles (``care_console_token_minutes``). It is handed over once:
  in an HttpOnly, ``SameSite=Strict`` cookie that only ``POST /console/auth/token`` reads (and clears) — never in a
  URL.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

import base64
import json
import logging
import secrets
import time
import warnings
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from openbss.platform.auth import ROLE_PERMISSIONS, issue_token
from openbss.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError

log = logging.getLogger(__name__)

LOGIN_COOKIE = "console_login"
TOKEN_COOKIE = "console_token"  # noqa: S105 (a cookie name)
LOGIN_TTL = 600
HANDOVER_TTL = 120
ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]
NOT_STAFF = frozenset({"customer", "system"})


class SignInError(Exception):
    """A sign-in that cannot complete; its message is shown to the agent."""


class ConsoleIdentityProvider:
    """The relying-party side against one provider (discovery and keys cached for an hour)."""

    def __init__(self, settings: Settings) -> None:
        raw = settings.care_console_identity_provider or {}
        missing = [k for k in ("issuer", "clientId", "clientSecret") if not raw.get(k)]
        if missing:
            raise ValueError(f"care_console_identity_provider: missing {', '.join(missing)}")
        self.settings = settings
        self.issuer = raw["issuer"].rstrip("/")
        self.client_id, self.client_secret = raw["clientId"], raw["clientSecret"]
        self.label = raw.get("label") or "Sign in with your company account"
        self.scopes = raw.get("scopes") or "openid email profile"
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._keys: Any = None

    async def _json(self, http: httpx.AsyncClient, url: str) -> dict[str, Any]:
        try:
            r = await http.get(url)
        except httpx.HTTPError as exc:
            raise SignInError(f"the identity provider did not answer ({type(exc).__name__})") from exc
        if r.status_code != 200:
            raise SignInError(f"the identity provider answered {r.status_code}")
        out: dict[str, Any] = r.json()
        return out

    async def metadata(self, http: httpx.AsyncClient) -> dict[str, Any]:
        if self._meta and self._meta[0] > time.monotonic():
            return self._meta[1]
        meta = await self._json(http, f"{self.issuer}/.well-known/openid-configuration")
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
            raise SignInError("the identity provider's discovery document names another issuer")
        self._meta = (time.monotonic() + 3600, meta)
        return meta

    async def authorization_url(self, http: httpx.AsyncClient, redirect_uri: str, state: str, nonce: str,
                                verifier: str) -> str:
        endpoint = (await self.metadata(http))["authorization_endpoint"]
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                           "scope": self.scopes, "state": state, "nonce": nonce,
                           "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def redeem(self, http: httpx.AsyncClient, code: str, redirect_uri: str, verifier: str, nonce: str,
                     ) -> tuple[dict[str, Any], str]:
        """The verified ID token's claims and the access token."""
        meta = await self.metadata(http)
        try:
            r = await http.post(meta["token_endpoint"], auth=(self.client_id, self.client_secret),
                                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                      "code_verifier": verifier}, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise SignInError(f"the identity provider did not answer ({type(exc).__name__})") from exc
        if r.status_code != 200:
            raise SignInError("the identity provider refused the authorization code")
        body = r.json()
        if not isinstance(body.get("id_token"), str):
            raise SignInError("the identity provider returned no ID token")
        options = {"iss": {"essential": True, "value": self.issuer},
                   "aud": {"essential": True, "value": self.client_id}, "sub": {"essential": True},
                   "exp": {"essential": True}, "nonce": {"essential": True, "value": nonce}}
        jwt = JsonWebToken(ALGORITHMS)
        for refresh in (False, True):
            if refresh or self._keys is None:
                self._keys = JsonWebKey.import_key_set(await self._json(http, meta["jwks_uri"]))
            try:
                claims = jwt.decode(body["id_token"], self._keys, claims_options=options)
                claims.validate(leeway=60)
                return dict(claims), str(body.get("access_token") or "")
            except ValueError as exc:  # no key with the token's kid: the provider may have rotated its keys
                if refresh:
                    raise SignInError("the ID token is not signed by the identity provider") from exc
            except JoseError as exc:
                raise SignInError(f"the ID token was refused ({exc.error})") from exc
        raise SignInError("the ID token could not be verified")


def _b64(data: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _unb64(value: str | None) -> dict[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode((value or "").encode()))
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def console_auth_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["Care configuration"])
    provider = ConsoleIdentityProvider(settings) if settings.care_console_identity_provider else None
    base = settings.public_url.rstrip("/")
    redirect_uri = f"{base}/console/auth/callback"
    secure = base.startswith("https://")

    def back_to_signin(message: str) -> Response:
        response = RedirectResponse(f"/console/#/signin?error={quote(message)}", status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path="/console/auth")
        return response

    async def config() -> Response:
        return JSONResponse({"oidc": {"label": provider.label, "login": "/console/auth/login"} if provider else None,
                             "localTokens": True}, headers={"Cache-Control": "no-store"})

    async def login() -> Response:
        if provider is None:
            return back_to_signin("no identity provider is configured: paste a token")
        attempt = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                   "verifier": secrets.token_urlsafe(48)}
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                url = await provider.authorization_url(http, redirect_uri, attempt["state"], attempt["nonce"],
                                                       attempt["verifier"])
        except SignInError as exc:
            return back_to_signin(str(exc))
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(LOGIN_COOKIE, _b64(attempt), max_age=LOGIN_TTL, path="/console/auth", httponly=True,
                            samesite="lax", secure=secure)
        return response

    async def callback(request: Request) -> Response:
        params = request.query_params
        if provider is None:
            return back_to_signin("no identity provider is configured")
        if params.get("error"):
            return back_to_signin(f"the identity provider refused the sign-in ({params.get('error')})")
        attempt = _unb64(request.cookies.get(LOGIN_COOKIE))
        state, code = params.get("state") or "", params.get("code") or ""
        if not attempt.get("state") or not secrets.compare_digest(attempt["state"], state) or not code:
            return back_to_signin("this sign-in expired or was started in another browser; sign in again")
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                claims, access_token = await provider.redeem(http, code, redirect_uri, attempt["verifier"],
                                                             attempt["nonce"])
        except SignInError as exc:
            log.warning("console sign-in failed: %s", exc)
            return back_to_signin(str(exc))
        tenant = claims.get(settings.tenant_claim)
        raw_roles = claims.get(settings.roles_claim) or []
        roles = [r for r in (raw_roles.split() if isinstance(raw_roles, str) else raw_roles)
                 if isinstance(r, str) and r in ROLE_PERMISSIONS and r not in NOT_STAFF]
        if not isinstance(tenant, str) or not tenant or not roles:
            return back_to_signin("your account has no role in the console; ask your administrator")
        if settings.jwks_url and access_token:
            token = access_token  # the platform verifies the provider's tokens itself
        else:
            token = issue_token(tenant, roles, subject=str(claims["sub"]),
                                ttl_seconds=settings.care_console_token_minutes * 60, settings=settings)
        log.info("console sign-in of %s (tenant %s, roles %s)", claims["sub"], tenant, ",".join(roles))
        response = RedirectResponse("/console/#/signed-in", status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path="/console/auth")
        response.set_cookie(TOKEN_COOKIE, token, max_age=HANDOVER_TTL, path="/console/auth/token", httponly=True,
                            samesite="strict", secure=secure)
        return response

    async def handover(request: Request) -> Response:
        token = request.cookies.get(TOKEN_COOKIE)
        if not token:
            return JSONResponse({"code": "NOT_SIGNED_IN", "message": "no sign-in to complete; sign in again"},
                                status_code=401)
        response = JSONResponse({"access_token": token, "token_type": "Bearer"},
                                headers={"Cache-Control": "no-store"})
        response.delete_cookie(TOKEN_COOKIE, path="/console/auth/token")
        return response

    router.add_api_route("/console/auth/config", config, methods=["GET"], include_in_schema=False)
    router.add_api_route("/console/auth/login", login, methods=["GET"], include_in_schema=False)
    router.add_api_route("/console/auth/callback", callback, methods=["GET"], include_in_schema=False)
    router.add_api_route("/console/auth/token", handover, methods=["POST"], include_in_schema=False)
    return router


__all__ = ["console_auth_router"]

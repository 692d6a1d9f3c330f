"""A small OpenID Connect provider for loopback use: the "social" sign-in of the tests and of ``openbss demo``.

It speaks real HTTP and follows the specifications a relying party checks: OpenID Connect Discovery 1.0, the
authorization code flow of RFC 6749 with PKCE S256 required (RFC 7636), client authentication by
``client_secret_basic`` or ``client_secret_post``, RS256 ID tokens signed with a JWK that has a ``kid``
(Authlib's JOSE implementation), the UserInfo endpoint with Bearer tokens (RFC 6750), the ``iss`` authorization
response parameter (RFC 9207) and RP-initiated logout 1.0.

Use it as an ASGI app (``create_identity_provider``, mountable under a path prefix: every URL it generates is
derived from ``issuer``) or as a server on a free loopback port (``start_identity_provider``).

State (authorization codes, access tokens, spent sign-in forms) lives in the memory of the one process that
serves the provider, behind a lock; it is lost on restart, which is what a demo or test provider wants. There is
no single sign-on session: every authorization request asks for the user's credentials, so ``prompt=none``
answers ``login_required`` and the end-session endpoint only needs to send the user back to the application.
Passwords are the demo users' configured plain values, compared in constant time; this is not a production IdP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import httpx
import uvicorn
from authlib.common.urls import add_params_to_uri
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

with warnings.catch_warnings():
    # authlib.jose announces its move to joserfc on import; it is the JOSE implementation this project uses.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError

__all__ = [
    "IdpClient",
    "IdpUser",
    "RunningIdentityProvider",
    "create_identity_provider",
    "start_identity_provider",
]

SCOPES_SUPPORTED = ("openid", "email", "profile")
CLAIMS_SUPPORTED = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
    "email", "email_verified", "name", "given_name", "family_name", "preferred_username", "picture",
)
SIGNING_ALG = "RS256"
FORM_TTL = 900  # seconds a rendered sign-in form stays valid
MAX_FORM_BYTES = 64 * 1024
MAX_PARAM_LENGTH = 2048
PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CSS_COLOR = re.compile(r"^(#[0-9A-Fa-f]{3,8}|[A-Za-z]{3,20})$")
AUTHORIZATION_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                        "code_challenge", "code_challenge_method")


def _now() -> float:
    return time.time()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def _same(a: str, b: str) -> bool:
    """Constant-time string equality (lengths are hidden too: the digests are compared)."""
    return hmac.compare_digest(_digest(a), _digest(b))


def _key_of(token: str) -> str:
    """Codes and tokens are stored under their SHA-256, never in the clear."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _check_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(f"{what} must be an absolute http(s) URL without a fragment: {url!r}")


@dataclass(frozen=True)
class IdpUser:
    """A user who can sign in at the provider (username or email, and password)."""

    sub: str
    username: str
    password: str
    email: str
    email_verified: bool = True
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    picture: str | None = None
    #: more claims released in the ID token and by UserInfo whatever the scope (a workforce directory's tenant and
    #: roles, for the agent console), as (name, value) pairs
    claims: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class IdpClient:
    """A registered relying party: confidential client with exact-match redirect URIs."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class _AuthorizationRequest:
    client: IdpClient
    redirect_uri: str
    response_type: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    login_hint: str = ""

    def hidden_fields(self) -> list[tuple[str, str]]:
        values = {"client_id": self.client.client_id, "redirect_uri": self.redirect_uri,
                  "response_type": self.response_type, "scope": self.scope, "state": self.state,
                  "nonce": self.nonce, "code_challenge": self.code_challenge,
                  "code_challenge_method": self.code_challenge_method}
        return [(name, value) for name, value in values.items() if value is not None]

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.hidden_fields()).encode("utf-8")).hexdigest()

    @property
    def granted_scope(self) -> str:
        requested = set(self.scope.split())
        return " ".join(s for s in SCOPES_SUPPORTED if s in requested)


@dataclass
class _CodeGrant:
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    sub: str
    auth_time: int
    expires_at: float
    redeemed_at: float | None = None


@dataclass(frozen=True)
class _AccessToken:
    client_id: str
    sub: str
    scope: str
    expires_at: float
    code_key: str


@dataclass
class _State:
    """The provider's memory: codes, access tokens and spent sign-in forms, keyed by hash."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    codes: dict[str, _CodeGrant] = field(default_factory=dict)
    tokens: dict[str, _AccessToken] = field(default_factory=dict)
    spent_forms: dict[str, float] = field(default_factory=dict)

    def purge(self, now: float, token_ttl: int) -> None:
        """Forget expired entries; a redeemed code is kept while the tokens issued with it may live."""
        for key, grant in list(self.codes.items()):
            if (grant.redeemed_at is None and grant.expires_at <= now) or (
                    grant.redeemed_at is not None and grant.redeemed_at + token_ttl <= now):
                del self.codes[key]
        for key, token in list(self.tokens.items()):
            if token.expires_at <= now:
                del self.tokens[key]
        for key, expires_at in list(self.spent_forms.items()):
            if expires_at <= now:
                del self.spent_forms[key]


class _PageError(Exception):
    """An authorization request that cannot be answered with a redirect: shown as a page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _RedirectError(Exception):
    """An authorization request error returned to the client's (validated) redirect URI."""

    def __init__(self, redirect_uri: str, error: str, description: str, state: str | None) -> None:
        super().__init__(description)
        self.redirect_uri = redirect_uri
        self.error = error
        self.description = description
        self.state = state


class _OAuthError(Exception):
    """A token or UserInfo endpoint error (RFC 6749 §5.2, RFC 6750 §3)."""

    def __init__(self, status: int, error: str, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})


class _BodyTooLarge(Exception):
    pass


async def _read_form(request: Request) -> list[tuple[str, str]]:
    """Read an ``application/x-www-form-urlencoded`` body, at most MAX_FORM_BYTES; ValueError on anything else."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ValueError("the body must be application/x-www-form-urlencoded")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise _BodyTooLarge
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("the body is not a valid form") from exc


def _single(params: list[tuple[str, str]], name: str) -> tuple[str | None, bool]:
    """The value of a parameter and whether it was repeated (RFC 6749 §3.1: parameters must not repeat)."""
    values = [value for key, value in params if key == name]
    return (values[0] if values else None), len(values) > 1


class _Provider:
    """The provider's configuration, keys and request handlers; ``create_identity_provider`` wires the routes."""

    def __init__(self, issuer: str, *, clients: list[IdpClient], users: list[IdpUser], title: str, brand_color: str,
                 private_key_pem: bytes | None, code_ttl: int, token_ttl: int, show_demo_users: bool) -> None:
        _check_url(issuer, "issuer")
        parts = urlsplit(issuer)
        if parts.query or issuer.endswith("/"):
            raise ValueError(f"issuer must have no query and no trailing slash: {issuer!r}")
        if not CSS_COLOR.match(brand_color):
            raise ValueError(f"brand_color must be a hex colour or a colour name: {brand_color!r}")
        if code_ttl <= 0 or token_ttl <= 0:
            raise ValueError("code_ttl and token_ttl must be positive")
        self.issuer = issuer
        self.base_path = parts.path  # "" at the root, "/demo-idp" when mounted
        self.title = title
        self.brand_color = brand_color
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self.show_demo_users = show_demo_users
        self.clients = self._index_clients(clients)
        self.users = self._check_users(users)
        self.users_by_sub = {u.sub: u for u in self.users}
        self.state = _State()
        self.form_key = secrets.token_bytes(32)
        self.dummy_secret = secrets.token_urlsafe(32)
        self.csrf_cookie = f"idp_csrf_{hashlib.sha256(issuer.encode()).hexdigest()[:12]}"
        self.secure_cookie = parts.scheme == "https"
        self.signing_key, self.kid = self._load_key(private_key_pem)
        self.public_jwk = {**self.signing_key.as_dict(is_private=False), "kid": self.kid, "use": "sig",
                           "alg": SIGNING_ALG}
        self.jwt = JsonWebToken([SIGNING_ALG])
        form_action = ["'self'", *dict.fromkeys(_origin(u) for c in self.clients.values() for u in c.redirect_uris)]
        self.page_headers = {
            "Content-Security-Policy": (f"default-src 'none'; style-src 'self'; form-action {' '.join(form_action)}; "
                                        "frame-ancestors 'none'"),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }

    @staticmethod
    def _index_clients(clients: list[IdpClient]) -> dict[str, IdpClient]:
        indexed: dict[str, IdpClient] = {}
        for client in clients:
            if not client.client_id or not client.client_secret:
                raise ValueError("every client needs a client_id and a client_secret")
            if client.client_id in indexed:
                raise ValueError(f"duplicate client_id {client.client_id!r}")
            if not client.redirect_uris:
                raise ValueError(f"client {client.client_id!r} has no redirect_uris")
            for uri in (*client.redirect_uris, *client.post_logout_redirect_uris):
                _check_url(uri, f"redirect URI of client {client.client_id!r}")
            indexed[client.client_id] = client
        return indexed

    @staticmethod
    def _check_users(users: list[IdpUser]) -> tuple[IdpUser, ...]:
        seen_subs: set[str] = set()
        seen_logins: set[str] = set()
        for user in users:
            if not user.sub or not user.username or not user.password:
                raise ValueError("every user needs a sub, a username and a password")
            logins = {user.username.casefold(), user.email.casefold()} - {""}
            if user.sub in seen_subs or logins & seen_logins:
                raise ValueError(f"user {user.username!r} repeats another user's sub, username or email")
            seen_subs.add(user.sub)
            seen_logins |= logins
        return tuple(users)

    @staticmethod
    def _load_key(private_key_pem: bytes | None) -> tuple[Any, str]:
        if private_key_pem is None:
            key = JsonWebKey.generate_key("RSA", 2048, is_private=True)
        else:
            key = JsonWebKey.import_key(private_key_pem, {"kty": "RSA"})
            if not isinstance(key.get_private_key(), rsa.RSAPrivateKey):
                raise ValueError("private_key_pem must be an RSA private key")
        return key, key.thumbprint()

    # --- URLs -----------------------------------------------------------------------------------------------

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}{name}"

    def local(self, name: str) -> str:
        """A path-absolute URL under the issuer's path, for links inside the provider's own pages."""
        return f"{self.base_path}{name}"

    # --- discovery and keys ---------------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        """OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3)."""
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "token_endpoint": self.endpoint("/token"),
            "userinfo_endpoint": self.endpoint("/userinfo"),
            "jwks_uri": self.endpoint("/jwks"),
            "end_session_endpoint": self.endpoint("/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "scopes_supported": list(SCOPES_SUPPORTED),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": list(CLAIMS_SUPPORTED),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
        }
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300",
                                               "Access-Control-Allow-Origin": "*"})

    async def jwks(self, request: Request) -> Response:
        """The public signing key as a JSON Web Key Set (RFC 7517 §5)."""
        return JSONResponse({"keys": [self.public_jwk]}, headers={"Cache-Control": "public, max-age=300",
                                                                 "Access-Control-Allow-Origin": "*"})

    async def stylesheet(self, request: Request) -> Response:
        """The pages' only stylesheet (the CSP allows no inline style)."""
        return Response(_CSS.replace("BRAND", self.brand_color), media_type="text/css",
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})

    # --- authorization endpoint -----------------------------------------------------------------------------

    def _parse_authorization(self, params: list[tuple[str, str]]) -> _AuthorizationRequest:
        """Validate an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636 §4.3).

        Errors before the client and its redirect URI are known raise ``_PageError`` (never redirect);
        later ones raise ``_RedirectError``.
        """
        client_id, repeated = _single(params, "client_id")
        if not client_id or repeated:
            raise _PageError("The request does not name exactly one application (client_id).")
        client = self.clients.get(client_id)
        if client is None:
            raise _PageError("The application that sent you here is not registered with this identity provider.")
        redirect_uri, repeated = _single(params, "redirect_uri")
        if not redirect_uri or repeated:
            raise _PageError("The request does not name exactly one return address (redirect_uri).")
        if not any(_same(redirect_uri, registered) for registered in client.redirect_uris):
            raise _PageError("The return address (redirect_uri) is not registered for this application.")

        state, _ = _single(params, "state")

        def fail(error: str, description: str) -> _RedirectError:
            return _RedirectError(redirect_uri, error, description, state)

        for name in AUTHORIZATION_PARAMS:
            value, repeated = _single(params, name)
            if repeated:
                raise fail("invalid_request", f"the parameter {name} is repeated")
            if value is not None and len(value) > MAX_PARAM_LENGTH:
                raise fail("invalid_request", f"the parameter {name} is too long")
        if _single(params, "request")[0] is not None:
            raise fail("request_not_supported", "request objects are not supported")
        if _single(params, "request_uri")[0] is not None:
            raise fail("request_uri_not_supported", "request_uri is not supported")
        response_type = _single(params, "response_type")[0]
        if not response_type:
            raise fail("invalid_request", "response_type is required")
        if response_type != "code":
            raise fail("unsupported_response_type", "only response_type=code is supported")
        scope = _single(params, "scope")[0] or ""
        if "openid" not in scope.split():
            raise fail("invalid_scope", "the scope must include openid")
        code_challenge = _single(params, "code_challenge")[0]
        method = _single(params, "code_challenge_method")[0]
        if not code_challenge:
            raise fail("invalid_request", "code_challenge is required (PKCE with S256)")
        if method != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256")
        if not PKCE_VALUE.match(code_challenge):
            raise fail("invalid_request", "code_challenge is malformed")
        login_hint = (_single(params, "login_hint")[0] or "")[:256]
        return _AuthorizationRequest(client=client, redirect_uri=redirect_uri, response_type=response_type,
                                     scope=scope, state=state, nonce=_single(params, "nonce")[0],
                                     code_challenge=code_challenge, code_challenge_method=method,
                                     login_hint=login_hint)

    def _error_redirect(self, error: _RedirectError) -> Response:
        params = [("error", error.error), ("error_description", error.description)]
        if error.state is not None:
            params.append(("state", error.state))
        params.append(("iss", self.issuer))
        return RedirectResponse(add_params_to_uri(error.redirect_uri, params), status_code=302,
                                headers={"Cache-Control": "no-store"})

    async def authorize(self, request: Request) -> Response:
        """GET shows the sign-in form; POST checks the credentials and redirects with a code."""
        if request.method == "GET":
            params = list(request.query_params.multi_items())
            try:
                auth = self._parse_authorization(params)
                if "none" in (_single(params, "prompt")[0] or "").split():
                    raise _RedirectError(auth.redirect_uri, "login_required",
                                         "this provider keeps no sign-in session", auth.state)
            except _PageError as exc:
                return self._error_page(exc.message, exc.status)
            except _RedirectError as exc:
                return self._error_redirect(exc)
            return self._sign_in_page(request, auth, username=auth.login_hint)
        return await self._sign_in(request)

    async def _sign_in(self, request: Request) -> Response:
        try:
            form = await _read_form(request)
        except _BodyTooLarge:
            return self._error_page("The sign-in form is too large.", 413)
        except ValueError:
            return self._error_page("The sign-in form could not be read.", 400)
        fields = dict(form)
        try:
            auth = self._parse_authorization([(k, v) for k, v in form if k in AUTHORIZATION_PARAMS])
        except _PageError as exc:
            return self._error_page(exc.message, exc.status)
        except _RedirectError as exc:
            return self._error_redirect(exc)
        username = fields.get("username", "")[:256]
        if not self._spend_form_token(request, fields.get("csrf_token", ""), auth):
            return self._sign_in_page(
                request, auth, username=username, status=400,
                error="This sign-in form has expired or was already used (cookies must be enabled). "
                      "Please sign in again.")
        user = self._check_credentials(username, fields.get("password", ""))
        if user is None:
            return self._sign_in_page(request, auth, username=username, status=401,
                                      error="The username or password is not correct.")
        code = secrets.token_urlsafe(32)
        now = _now()
        grant = _CodeGrant(client_id=auth.client.client_id, redirect_uri=auth.redirect_uri,
                           scope=auth.granted_scope, nonce=auth.nonce, code_challenge=auth.code_challenge,
                           sub=user.sub, auth_time=int(now), expires_at=now + self.code_ttl)
        with self.state.lock:
            self.state.purge(now, self.token_ttl)
            self.state.codes[_key_of(code)] = grant
        params = [("code", code)]
        if auth.state is not None:
            params.append(("state", auth.state))
        params.append(("iss", self.issuer))
        return RedirectResponse(add_params_to_uri(auth.redirect_uri, params), status_code=302,
                                headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    def _check_credentials(self, login: str, password: str) -> IdpUser | None:
        """Find the user by username or email and check the password, in time independent of which failed."""
        wanted = login.strip().casefold()
        found: IdpUser | None = None
        for user in self.users:
            for identifier in (user.username.casefold(), user.email.casefold()):
                if _same(identifier, wanted) and found is None and identifier:
                    found = user
        expected = found.password if found is not None else self.dummy_secret
        password_ok = _same(password, expected)
        return found if (found is not None and password_ok) else None

    # --- CSRF protection of the sign-in form ----------------------------------------------------------------

    def _browser_secret(self, request: Request) -> tuple[str, bool]:
        """This browser's CSRF cookie value, and whether it must be (re)set."""
        value = request.cookies.get(self.csrf_cookie, "")
        if re.fullmatch(r"[A-Za-z0-9_-]{43}", value):
            return value, False
        return secrets.token_urlsafe(32), True

    def _form_mac(self, nonce: str, expires: str, browser: str, auth: _AuthorizationRequest) -> str:
        message = "|".join((nonce, expires, browser, auth.fingerprint())).encode("utf-8")
        digest = hmac.new(self.form_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _form_token(self, browser: str, auth: _AuthorizationRequest) -> str:
        """A single-use token for one rendering of the form, bound to the browser cookie and the request."""
        nonce = secrets.token_urlsafe(16)
        expires = str(int(_now()) + FORM_TTL)
        return f"{nonce}.{expires}.{self._form_mac(nonce, expires, browser, auth)}"

    def _spend_form_token(self, request: Request, token: str, auth: _AuthorizationRequest) -> bool:
        browser = request.cookies.get(self.csrf_cookie, "")
        parts = token.split(".")
        if not browser or len(parts) != 3 or not parts[1].isdigit():
            return False
        nonce, expires, mac = parts
        if not hmac.compare_digest(mac.encode("ascii", "replace"),
                                   self._form_mac(nonce, expires, browser, auth).encode("ascii")):
            return False
        now = _now()
        if int(expires) <= now:
            return False
        with self.state.lock:
            self.state.purge(now, self.token_ttl)
            if nonce in self.state.spent_forms:
                return False
            self.state.spent_forms[nonce] = float(expires)
        return True

    # --- pages ----------------------------------------------------------------------------------------------

    def _page(self, heading: str, body: str, status: int) -> HTMLResponse:
        document = _PAGE.format(title=html.escape(f"{heading} – {self.title}"),
                                stylesheet=html.escape(self.local("/static/idp.css")),
                                provider=html.escape(self.title), body=body)
        return HTMLResponse(document, status_code=status, headers=self.page_headers)

    def _error_page(self, message: str, status: int) -> HTMLResponse:
        body = (f'<h2 id="page-heading">Sign-in request refused</h2>'
                f'<p role="alert" class="error">{html.escape(message)}</p>'
                "<p>Go back to the application and start signing in again.</p>")
        return self._page("Sign-in request refused", body, status)

    def _sign_in_page(self, request: Request, auth: _AuthorizationRequest, *, username: str = "",
                      error: str | None = None, status: int = 200) -> HTMLResponse:
        browser, new_cookie = self._browser_secret(request)
        hidden = [*auth.hidden_fields(), ("csrf_token", self._form_token(browser, auth))]
        inputs = "".join(f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
                         for name, value in hidden)
        invalid = ' aria-invalid="true" aria-describedby="form-error"' if error else ""
        alert = f'<p role="alert" class="error" id="form-error">{html.escape(error)}</p>' if error else ""
        demo = ""
        if self.show_demo_users and self.users:
            names = "".join(f"<li><code>{html.escape(u.username)}</code></li>" for u in self.users)
            demo = (f'<section class="help" aria-labelledby="demo-users"><h3 id="demo-users">Demo users</h3>'
                    f"<ul>{names}</ul></section>")
        body = (
            '<h2 id="page-heading">Sign in</h2>'
            f"<p>to continue to <strong>{html.escape(auth.client.client_id)}</strong> "
            f"({html.escape(_origin(auth.redirect_uri))})</p>"
            f"{alert}"
            f'<form method="post" action="{html.escape(self.local("/authorize"))}" aria-labelledby="page-heading">'
            f"{inputs}"
            '<label for="username">Username or email</label>'
            f'<input id="username" name="username" autocomplete="username" required autofocus '
            f'autocapitalize="none" spellcheck="false" value="{html.escape(username)}"{invalid}>'
            '<label for="password">Password</label>'
            f'<input id="password" type="password" name="password" autocomplete="current-password" required{invalid}>'
            '<button type="submit">Sign in</button>'
            "</form>"
            f"{demo}"
        )
        response = self._page("Sign in", body, status)
        if new_cookie:
            response.set_cookie(self.csrf_cookie, browser, max_age=FORM_TTL * 4, path=self.base_path or "/",
                                secure=self.secure_cookie, httponly=True, samesite="strict")
        return response

    # --- token endpoint -------------------------------------------------------------------------------------

    def _invalid_client(self, description: str) -> _OAuthError:
        return _OAuthError(401, "invalid_client", description,
                           {"WWW-Authenticate": f'Basic realm="{self.issuer}", charset="UTF-8"'})

    def _authenticate_client(self, request: Request, form: dict[str, str]) -> IdpClient:
        """client_secret_basic (RFC 6749 §2.3.1, raw or form-encoded credentials) or client_secret_post."""
        header = request.headers.get("authorization")
        body_id, body_secret = form.get("client_id"), form.get("client_secret")
        if header is not None:
            scheme, _, encoded = header.partition(" ")
            if scheme.lower() != "basic":
                raise self._invalid_client("unsupported client authentication scheme")
            if body_secret is not None:
                raise _OAuthError(400, "invalid_request", "use only one client authentication method")
            try:
                client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise self._invalid_client("malformed Basic credentials") from None
            if not sep:
                raise self._invalid_client("malformed Basic credentials")
            candidates = [(client_id, secret), (unquote_plus(client_id), unquote_plus(secret))]
        elif body_id is not None and body_secret is not None:
            candidates = [(body_id, body_secret)]
        else:
            raise self._invalid_client("client authentication is required")
        authenticated: IdpClient | None = None
        for client_id, secret in candidates:
            client = self.clients.get(client_id)
            expected = client.client_secret if client is not None else self.dummy_secret
            if _same(secret, expected) and client is not None and authenticated is None:
                authenticated = client
        if authenticated is None:
            raise self._invalid_client("client authentication failed")
        if body_id is not None and body_id != authenticated.client_id:
            raise self._invalid_client("client_id does not match the authenticated client")
        return authenticated

    async def token(self, request: Request) -> Response:
        """Exchange an authorization code for an access token and an ID token (RFC 6749 §4.1.3, OIDC §3.1.3)."""
        try:
            try:
                pairs = await _read_form(request)
            except _BodyTooLarge:
                raise _OAuthError(413, "invalid_request", "the request body is too large") from None
            except ValueError as exc:
                raise _OAuthError(400, "invalid_request", str(exc)) from None
            names = [name for name, _ in pairs]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise _OAuthError(400, "invalid_request", f"repeated parameters: {', '.join(repeated)}")
            form = dict(pairs)
            client = self._authenticate_client(request, form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _OAuthError(400, "invalid_request", "grant_type is required")
            if grant_type != "authorization_code":
                raise _OAuthError(400, "unsupported_grant_type", "only authorization_code is supported")
            code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
            if not code or not redirect_uri or not verifier:
                raise _OAuthError(400, "invalid_request", "code, redirect_uri and code_verifier are required")
            body = self._redeem(client, code, redirect_uri, verifier)
        except _OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                                headers={"Cache-Control": "no-store", "Pragma": "no-cache", **exc.headers})
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _redeem(self, client: IdpClient, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Spend the code (once), check its bindings and PKCE, and issue the tokens."""
        now = _now()
        code_key = _key_of(code)
        with self.state.lock:
            self.state.purge(now, self.token_ttl)
            grant = self.state.codes.get(code_key)
            if grant is None or grant.client_id != client.client_id:
                raise _OAuthError(400, "invalid_grant", "the authorization code is invalid")
            if grant.redeemed_at is not None:
                # RFC 6749 §4.1.2: a code used twice is refused and what was issued with it is revoked.
                for key in [k for k, t in self.state.tokens.items() if t.code_key == code_key]:
                    del self.state.tokens[key]
                raise _OAuthError(400, "invalid_grant", "the authorization code was already used")
            grant.redeemed_at = now  # spent by this attempt, whatever its outcome
            if grant.expires_at <= now:
                raise _OAuthError(400, "invalid_grant", "the authorization code has expired")
            if not _same(redirect_uri, grant.redirect_uri):
                raise _OAuthError(400, "invalid_grant", "redirect_uri does not match the authorization request")
            if not PKCE_VALUE.match(verifier) or not _same(create_s256_code_challenge(verifier),
                                                           grant.code_challenge):
                raise _OAuthError(400, "invalid_grant", "the code_verifier does not match the code_challenge")
            user = self.users_by_sub.get(grant.sub)
            if user is None:
                raise _OAuthError(400, "invalid_grant", "the user of this code no longer exists")
            access_token = secrets.token_urlsafe(32)
            self.state.tokens[_key_of(access_token)] = _AccessToken(
                client_id=client.client_id, sub=user.sub, scope=grant.scope, expires_at=now + self.token_ttl,
                code_key=code_key)
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": user.sub, "aud": client.client_id,
            "iat": int(now), "exp": int(now) + self.token_ttl, "auth_time": grant.auth_time,
            "at_hash": create_half_hash(access_token, SIGNING_ALG).decode("ascii"),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(self._user_claims(user, grant.scope))
        id_token = self.jwt.encode({"alg": SIGNING_ALG, "typ": "JWT", "kid": self.kid}, claims, self.signing_key)
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": self.token_ttl,
                "id_token": id_token.decode("ascii"), "scope": grant.scope}

    @staticmethod
    def _user_claims(user: IdpUser, scope: str) -> dict[str, Any]:
        """The standard claims the granted scope releases (OIDC Core §5.4); empty values are omitted."""
        scopes = scope.split()
        claims: dict[str, Any] = {}
        if "email" in scopes and user.email:
            claims.update(email=user.email, email_verified=user.email_verified)
        if "profile" in scopes:
            profile = {"name": user.name, "given_name": user.given_name, "family_name": user.family_name,
                       "preferred_username": user.username, "picture": user.picture}
            claims.update({k: v for k, v in profile.items() if v})
        claims.update(dict(user.claims))
        return claims

    # --- UserInfo -------------------------------------------------------------------------------------------

    async def userinfo(self, request: Request) -> Response:
        """Claims about the user of a Bearer access token (OIDC Core §5.3)."""
        realm = f'Bearer realm="{self.issuer}"'
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if not header and request.method == "POST":
            try:
                token = dict(await _read_form(request)).get("access_token", "")
            except (ValueError, _BodyTooLarge):
                token = ""
        elif scheme.lower() != "bearer":
            token = ""
        if not token:
            return JSONResponse({"error": "invalid_request", "error_description": "a Bearer access token is required"},
                                status_code=401, headers={"WWW-Authenticate": realm, "Cache-Control": "no-store"})
        now = _now()
        with self.state.lock:
            record = self.state.tokens.get(_key_of(token))
        user = self.users_by_sub.get(record.sub) if record is not None and record.expires_at > now else None
        if record is None or user is None:
            description = "the access token is invalid, expired or revoked"
            return JSONResponse(
                {"error": "invalid_token", "error_description": description}, status_code=401,
                headers={"WWW-Authenticate": f'{realm}, error="invalid_token", error_description="{description}"',
                         "Cache-Control": "no-store"})
        return JSONResponse({"sub": user.sub, **self._user_claims(user, record.scope)},
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # --- RP-initiated logout --------------------------------------------------------------------------------

    def _client_of_hint(self, id_token_hint: str) -> IdpClient | None:
        """The client an ID token we issued was for; expired hints are accepted (RP-Initiated Logout §2)."""
        try:
            claims = self.jwt.decode(id_token_hint, self.public_jwk)
        except (JoseError, ValueError):
            return None
        if claims.get("iss") != self.issuer:
            return None
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        return self.clients.get(audiences[0]) if len(audiences) == 1 else None

    async def logout(self, request: Request) -> Response:
        """End-session endpoint: back to a registered post_logout_redirect_uri, else a "signed out" page."""
        if request.method == "POST":
            try:
                params = dict(await _read_form(request))
            except (ValueError, _BodyTooLarge):
                params = {}
        else:
            params = dict(request.query_params)
        hint, client_id = params.get("id_token_hint"), params.get("client_id")
        target, state = params.get("post_logout_redirect_uri"), params.get("state")
        client: IdpClient | None = None
        if hint:
            client = self._client_of_hint(hint)
            if client is not None and client_id and client_id != client.client_id:
                client = None
        elif client_id:
            client = self.clients.get(client_id)
        if target and client is not None and any(_same(target, u) for u in client.post_logout_redirect_uris):
            location = add_params_to_uri(target, [("state", state)]) if state else target
            return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
        note = ("<p>The address to return to was not accepted, so you stay here.</p>" if target else "")
        body = ('<h2 id="page-heading">Signed out</h2>'
                f"<p>You are signed out of {html.escape(self.title)}. You can close this window.</p>{note}")
        return self._page("Signed out", body, 200)


def create_identity_provider(issuer: str, *, clients: list[IdpClient], users: list[IdpUser],
                             title: str = "Demo identity provider", brand_color: str = "#444",
                             private_key_pem: bytes | None = None, code_ttl: int = 60, token_ttl: int = 3600,
                             show_demo_users: bool = False) -> Starlette:
    """The provider as an ASGI app; mount it where ``issuer`` says (e.g. ``Mount("/demo-idp", app)``)."""
    provider = _Provider(issuer, clients=clients, users=users, title=title, brand_color=brand_color,
                         private_key_pem=private_key_pem, code_ttl=code_ttl, token_ttl=token_ttl,
                         show_demo_users=show_demo_users)
    app = Starlette(routes=[
        Route("/.well-known/openid-configuration", provider.discovery, methods=["GET"]),
        Route("/jwks", provider.jwks, methods=["GET"]),
        Route("/authorize", provider.authorize, methods=["GET", "POST"]),
        Route("/token", provider.token, methods=["POST"]),
        Route("/userinfo", provider.userinfo, methods=["GET", "POST"]),
        Route("/logout", provider.logout, methods=["GET", "POST"]),
        Route("/static/idp.css", provider.stylesheet, methods=["GET"]),
    ])
    app.state.identity_provider = provider
    return app


class RunningIdentityProvider:
    """A provider served by uvicorn on a background thread; ``stop()`` (or leaving the ``with``) shuts it down."""

    def __init__(self, *, issuer: str, url: str, port: int, app: Starlette, server: uvicorn.Server,
                 thread: threading.Thread, sock: socket.socket) -> None:
        self.issuer = issuer
        self.url = url
        self.port = port
        self.app = app
        self._server = server
        self._thread = thread
        self._socket = sock

    def stop(self) -> None:
        """Shut the server down and release the port; safe to call twice."""
        self._server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> RunningIdentityProvider:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningIdentityProvider(issuer={self.issuer!r})"


def start_identity_provider(*, host: str = "127.0.0.1", port: int = 0, path: str = "", startup_timeout: float = 10.0,
                            **kwargs: Any) -> RunningIdentityProvider:
    """Serve a provider on ``host:port`` (0 = a free port) under ``path``; returns once discovery answers.

    ``kwargs`` are those of ``create_identity_provider`` (clients, users, title, ...); the issuer is
    ``http://127.0.0.1:<port><path>`` (the host itself when it is not a wildcard address).
    """
    if path and (not path.startswith("/") or path.endswith("/")):
        raise ValueError(f"path must start with '/' and not end with one: {path!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = int(sock.getsockname()[1])
        public_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        url = f"http://{f'[{public_host}]' if ':' in public_host else public_host}:{bound_port}"
        issuer = f"{url}{path}"
        provider_app = create_identity_provider(issuer, **kwargs)
        served = Starlette(routes=[Mount(path, app=provider_app)]) if path else provider_app
        config = uvicorn.Config(served, log_config=None, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                                  name=f"identity-provider-{bound_port}")
    except BaseException:
        sock.close()
        raise
    running = RunningIdentityProvider(issuer=issuer, url=url, port=bound_port, app=provider_app, server=server,
                                      thread=thread, sock=sock)
    thread.start()
    _wait_until_ready(running, thread, server, startup_timeout)
    return running


def _wait_until_ready(running: RunningIdentityProvider, thread: threading.Thread, server: uvicorn.Server,
                      timeout: float) -> None:
    deadline = time.monotonic() + timeout
    discovery = f"{running.issuer}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if not thread.is_alive():
            running.stop()
            raise RuntimeError(f"the identity provider at {running.issuer} failed to start")
        if server.started:
            try:
                if httpx.get(discovery, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.02)
    running.stop()
    raise RuntimeError(f"the identity provider at {running.issuer} did not answer within {timeout} s")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="{stylesheet}">
</head>
<body>
<main class="card" aria-labelledby="page-heading">
<h1 class="provider">{provider}</h1>
{body}
</main>
</body>
</html>
"""

_CSS = """:root { --brand: BRAND; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f3f4f6; color: #1f2937; }
.card { width: min(24rem, 100% - 2rem); background: #fff; border-radius: 8px; padding: 2rem;
  box-shadow: 0 1px 3px rgb(0 0 0 / 0.15); border-top: 6px solid var(--brand); }
.provider { font-size: 1rem; font-weight: 600; color: var(--brand); margin: 0 0 1rem; }
h2 { font-size: 1.5rem; margin: 0 0 0.25rem; }
h3 { font-size: 1rem; margin: 0 0 0.25rem; }
form { display: flex; flex-direction: column; gap: 0.25rem; margin-top: 1rem; }
label { font-weight: 600; margin-top: 0.75rem; }
input { font: inherit; padding: 0.5rem 0.75rem; border: 1px solid #6b7280; border-radius: 4px; }
input:focus-visible, button:focus-visible { outline: 3px solid var(--brand); outline-offset: 2px; }
input[aria-invalid="true"] { border-color: #b91c1c; }
button { font: inherit; font-weight: 600; margin-top: 1.25rem; padding: 0.6rem; border: 0; border-radius: 4px;
  background: var(--brand); color: #fff; cursor: pointer; }
.error { color: #991b1b; background: #fef2f2; border: 1px solid #fecaca; border-radius: 4px; padding: 0.5rem 0.75rem; }
.help { margin-top: 1.5rem; font-size: 0.875rem; color: #4b5563; }
.help ul { margin: 0; padding-left: 1.25rem; }
"""

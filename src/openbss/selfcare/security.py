"""The portal's protections: security headers and a strict Content-Security-Policy on every /selfcare response,
rate limits per client IP and per signed-in customer, and CSRF checks on cookie-authenticated writes."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Sequence
from typing import Any

from limits import parse

from openbss.selfcare.errors import CsrfFailed, TooManyRequests
from openbss.selfcare.portal import Portal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE, CSRF_COOKIE, LOGIN_COOKIE = "sc_session", "sc_csrf", "sc_login"
CSRF_HEADER = "x-csrf-token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def security_headers(https: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


class PortalSecurityHeaders:
    """The headers of every response under /selfcare (added by the platform's request middleware when the response
    does not set them); API answers and pages are never cached, the static assets may be."""

    prefix = "/selfcare"

    def __init__(self, *, https: bool = False) -> None:
        self.assets = tuple(security_headers(https))
        self.other = (*self.assets, (b"cache-control", b"no-store"))

    def for_path(self, path: str) -> Sequence[tuple[bytes, bytes]]:
        return self.assets if path.startswith("/selfcare/assets/") else self.other


def digest(token: str) -> str:
    """What is stored of a token handed to a browser (session, CSRF, sign-in binding): its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


_parsed: dict[str, Any] = {}


async def hit(portal: Portal, scope: str, key: str, limit: str) -> None:
    """Count one request of ``key`` against ``limit`` ("600/minute"); 429 with Retry-After when over."""
    item = _parsed.get(limit)
    if item is None:
        item = _parsed[limit] = parse(limit)
    if not await portal.limiter.hit(item, "selfcare", scope, key):
        stats = await portal.limiter.get_window_stats(item, "selfcare", scope, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        error = TooManyRequests(f"too many requests; the limit is {limit}, try again in {wait} s")
        error.headers = {"Retry-After": str(wait)}  # type: ignore[attr-defined]
        raise error


def check_csrf(header: str | None, expected_digest: str) -> None:
    if not header:
        raise CsrfFailed(f"missing the {CSRF_HEADER} header (the value of the {CSRF_COOKIE} cookie)")
    if not hmac.compare_digest(digest(header), expected_digest):
        raise CsrfFailed("the CSRF token does not match this session")

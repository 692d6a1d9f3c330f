"""One-time codes (6 digits) sent by SMS or email: made here, kept only as an HMAC under the tenant's index key
(six digits are cheap to enumerate, so a plain hash would not protect them), checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from openbss.platform.crypto import key_service
from openbss.selfcare.errors import InvalidInput

LENGTH = 6


def new_code() -> str:
    return f"{secrets.randbelow(10**LENGTH):0{LENGTH}d}"


def check_format(code: str, what: str = "the one-time code") -> str:
    code = (code or "").strip()
    if not code.isdigit() or len(code) != LENGTH:
        raise InvalidInput(f"'code': {what} has {LENGTH} digits")
    return code


async def digest(session: Any, tenant: str, purpose: str, subject: str, code: str) -> str:
    """The stored form of ``code`` issued for ``purpose`` (e.g. "selfcare-otp") to ``subject`` (a sign-in attempt,
    a customer)."""
    key = await key_service().index_key(session, tenant)
    return hmac.new(key, f"{purpose}\x1f{subject}\x1f{code}".encode(), hashlib.sha256).hexdigest()


def matches(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, given)

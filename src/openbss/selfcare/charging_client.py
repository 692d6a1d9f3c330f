"""The charging system as the portal reaches it: over HTTP, through its TMF654 (balances) and TMF635 (usage) APIs,
as an operator's rating engine would be reached remotely.

Each call carries a short-lived token of the ``customer`` role bound to the signed-in customer's party, so the
charging API itself restricts what it returns to that party: the portal could not read another customer's
balance even if it asked for it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from openbss.platform.auth import issue_token
from openbss.platform.errors import DomainError
from openbss.selfcare.errors import UpstreamUnavailable
from openbss.settings import Settings

BALANCE_PATH = "/tmf-api/prepayBalanceManagement/v4"
USAGE_PATH = "/tmf-api/usageManagement/v4"
PAGE = 1000
MAX_USAGE_RECORDS = 20_000  # a month's itemized statement; beyond this the caller is told it is truncated
TOKEN_TTL = 600
TOKEN_REUSE = 300


class ChargingClient:
    def __init__(self, settings: Settings, tenant: str, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.tenant = tenant
        self.http = http
        self.base = (settings.selfcare_charging_url or settings.public_url).rstrip("/")
        self._tokens: dict[tuple[str, str], tuple[float, str]] = {}

    def _token(self, role: str, party: str | None) -> str:
        key = (role, party or "")
        cached = self._tokens.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        token = issue_token(self.tenant, [role], party=party, subject=f"selfcare:{party or role}",
                            ttl_seconds=TOKEN_TTL, settings=self.settings)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[key] = (now + TOKEN_REUSE, token)
        return token

    async def _get(self, path: str, params: dict[str, Any], *, party: str | None,
                   role: str = "customer") -> tuple[list[dict[str, Any]], int]:
        try:
            response = await self.http.get(
                f"{self.base}{path}", params=params,
                headers={"Authorization": f"Bearer {self._token(role, party)}", "Accept": "application/json"},
                timeout=self.settings.selfcare_charging_timeout_seconds)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the charging system did not answer ({type(exc).__name__})") from exc
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"the charging system answered {response.status_code}")
        if response.status_code != 200:
            raise DomainError(f"the charging system refused the request ({response.status_code})",
                              code="CHARGING_REFUSED", status=502, reason="Bad gateway")
        try:
            items: list[dict[str, Any]] = response.json()
            return items, int(response.headers.get("X-Total-Count", len(items)))
        except ValueError as exc:
            raise UpstreamUnavailable("the charging system answered something that is not a TMF list") from exc

    async def list_all(self, path: str, params: dict[str, Any], *, party: str, limit: int = 1000,
                       ) -> list[dict[str, Any]]:
        """Every item of a TMF list of another OpenBSS API (billing's bills), as the customer ``party``."""
        out: list[dict[str, Any]] = []
        while True:
            page, total = await self._get(path, {**params, "offset": len(out), "limit": PAGE}, party=party)
            out += page
            if not page or len(out) >= total or len(out) >= limit:
                return out[:limit]

    async def post_json(self, path: str, body: dict[str, Any], *, party: str) -> dict[str, Any]:
        """Create a resource in another OpenBSS API as the customer ``party`` (that API decides what the customer
        may do: a refusal comes back with its status and message)."""
        try:
            response = await self.http.post(f"{self.base}{path}", json=body, headers={
                "Authorization": f"Bearer {self._token('customer', party)}", "Accept": "application/json"},
                timeout=self.settings.selfcare_charging_timeout_seconds)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"OpenBSS did not answer ({type(exc).__name__})") from exc
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"OpenBSS answered {response.status_code}")
        try:
            data: dict[str, Any] = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400:
            raise DomainError(str(data.get("message") or f"refused ({response.status_code})"),
                              code=str(data.get("code") or "REFUSED"), status=response.status_code,
                              reason=str(data.get("reason") or "Refused"))
        return data

    async def get_bytes(self, path: str, *, party: str) -> bytes | None:
        """A document of another OpenBSS API as the customer ``party``; None when it is not theirs (or absent)."""
        try:
            response = await self.http.get(f"{self.base}{path}", headers={
                "Authorization": f"Bearer {self._token('customer', party)}"},
                timeout=self.settings.selfcare_charging_timeout_seconds)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"OpenBSS did not answer ({type(exc).__name__})") from exc
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"OpenBSS answered {response.status_code}")
        return response.content if response.status_code == 200 else None

    async def buckets(self, party_id: str) -> list[dict[str, Any]]:
        """Every bucket of the customer's lines (money and allowances), live values."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page, total = await self._get(f"{BALANCE_PATH}/bucket", {"offset": offset, "limit": PAGE},
                                          party=party_id)
            out += page
            offset += len(page)
            if not page or offset >= total:
                return out

    async def usage(self, party_id: str, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], bool]:
        """The customer's rated usage records with ``start <= usageDate < end``; True when truncated."""
        out: list[dict[str, Any]] = []
        offset = 0
        params = {"usageDate.gte": _iso(start), "usageDate.lt": _iso(end), "limit": PAGE}
        while True:
            page, total = await self._get(f"{USAGE_PATH}/usage", {**params, "offset": offset}, party=party_id)
            out += page
            offset += len(page)
            if len(out) >= MAX_USAGE_RECORDS:
                return out[:MAX_USAGE_RECORDS], True
            if not page or offset >= total:
                return out, False

    async def party_of_line(self, msisdn: str) -> str | None:
        """The party owning a mobile line (for linking an identity by MSISDN): asked with a system token."""
        # the charging system names a line by its E.164 digits
        page, _ = await self._get(f"{BALANCE_PATH}/bucket", {"logicalResource.id": msisdn.lstrip("+"), "limit": 1},
                                  party=None, role="system")
        for bucket in page:
            for ref in bucket.get("relatedParty") or []:
                if ref.get("id"):
                    return str(ref["id"])
        return None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")

"""What the Diameter front end calls: a credit-control engine, and the adapter over today's charging service."""

from __future__ import annotations

from typing import Any, Protocol

from openbss.charging.schemas import CreditControlRequest
from openbss.charging.service import ChargingService
from openbss.platform.db import Database


class CreditControlEngine(Protocol):
    """Decides one credit-control request and answers with the JSON answer of ``POST /ocs/v1/creditControl``
    (``CreditControlAnswer``'s shape: Diameter result codes). An answer is returned only once it is durable."""

    async def credit_control(self, tenant_id: str, ccr: CreditControlRequest) -> dict[str, Any]: ...


class ServiceEngine:
    """The engine over the charging service (one PostgreSQL transaction per request), as the JSON API uses it."""

    def __init__(self, service: ChargingService, db: Database, base_url: str) -> None:
        self._service = service
        self._db = db
        self._base_url = base_url

    async def credit_control(self, tenant_id: str, ccr: CreditControlRequest) -> dict[str, Any]:
        return await self._service.credit_control(self._db, tenant_id, ccr, self._base_url)

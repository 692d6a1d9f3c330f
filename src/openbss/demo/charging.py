"""Demo data of online charging: a prepaid and a postpaid subscriber with live balances and usage.

* ``+33 6 00 00 01 01`` — prepaid, on the catalog's "Prepaid S" plan (10 GB rated per 100 KB then 10 KB, 500
  domestic minutes, 100 night and weekend minutes, SMS), 15 EUR of credit plus a 2 EUR welcome credit and a 3 EUR
  bonus for national calls; it has browsed, called abroad and sent SMS (a data session is still open);
* ``+33 6 00 00 02 02`` — postpaid, on "Mobile M" (50 GB, unlimited calls), credit limit 100 EUR.

The plans come from the demo catalog when it is seeded (``seed_catalog`` first); otherwise from a built-in plan.
``seed_charging`` is idempotent: subscribers that exist are left as they are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from openbss.charging.schemas import CreditControlRequest
from openbss.charging.service import ChargingService
from openbss.platform.db import Database, utcnow
from openbss.platform.errors import DomainError
from openbss.platform.tmf.resource import Context, system_context
from openbss.services import Services

PREPAID, POSTPAID = "+33600000101", "+33600000202"
MB = 1024 * 1024

FALLBACK_PLAN: dict[str, Any] = {
    "data": {"priceId": "demo-data", "name": "Data", "currency": "EUR", "price": "0.02", "per": str(MB), "tiers": [],
             "allowances": [{"name": "10 GB", "quantity": {"amount": 10, "units": "GB"}, "period": "month"}]},
    "voice": {"priceId": "demo-voice", "name": "Voice", "currency": "EUR", "price": "0.10", "per": "60",
              "tiers": [], "allowances": [{"name": "500 minutes", "quantity": {"amount": 500, "units": "minute"},
                                           "period": "month"}]},
    "sms": {"priceId": "demo-sms", "name": "SMS", "currency": "EUR", "price": "0.10", "per": "1", "tiers": [],
            "allowances": []},
}


async def _offering_id(services: Services, ctx: Context, name: str) -> str | None:
    offerings, _ = await services.catalog.service.orderable_offerings(ctx, limit=1000)
    for o in offerings:
        if o.get("name") == name:
            return str(o["id"])
    return None


async def seed_charging(services: Services, db: Database, tenant_id: str, base_url: str,
                        owners: dict[str, dict[str, str]] | None = None) -> None:
    """Create the demo subscribers and some traffic in ``tenant_id`` (idempotent). ``owners`` gives a line its
    customer: ``{msisdn: {"party_id": ..., "product_id": ...}}``."""
    charging = services.charging.service
    created = []
    subscribers: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
        (PREPAID, "prepaid", "Prepaid S", {"initial_balance": Decimal("15.00"), "low_balance": Decimal("2.00")}),
        (POSTPAID, "postpaid", "Mobile M", {"credit_limit": Decimal("100.00")}),
    )
    for msisdn, payment_type, offer, extra in subscribers:
        async with db.transaction(tenant_id) as session:
            ctx = system_context(tenant_id, session, base_url, subject="charging-seed")
            try:
                await charging.get_account(ctx, subscriber=msisdn)
                continue
            except DomainError:
                pass  # not there yet: open it
            offering_id = await _offering_id(services, ctx, offer)
            plan = await charging.compile_plan(ctx, offering_id) if offering_id else FALLBACK_PLAN
            if not plan:
                plan = FALLBACK_PLAN
            owner = (owners or {}).get(msisdn, {})
            account = await charging.open_account(ctx, subscriber=msisdn, payment_type=payment_type, currency="EUR",
                                                 offering_id=offering_id, time_zone="Europe/Paris", plan=plan,
                                                 product_id=owner.get("product_id", f"demo-{payment_type}-line"),
                                                 party_id=owner.get("party_id"),
                                                 party_type=owner.get("party_type", "Individual"),
                                                 billing_account_id=owner.get("billing_account_id"), **extra)
            if payment_type == "prepaid":
                # several money buckets: a welcome credit consumed first (30 days), a bonus for national calls only,
                # then the main balance
                await charging.add_bucket(ctx, account["id"], unit="money", amount=200, name="Welcome credit",
                                          priority=10, valid_to=utcnow() + timedelta(days=30), key="demo-welcome",
                                          description="Promotional credit, consumed before the main balance")
                await charging.add_bucket(ctx, account["id"], unit="money", amount=300, name="National calls bonus",
                                          priority=20, zones=["FR-FIX", "FR-MOB"], services=["voice"],
                                          key="demo-national-bonus", description="Calls to French numbers only")
            created.append(msisdn)
    last_month = (utcnow().replace(day=1, hour=12, minute=0, second=0, microsecond=0) - timedelta(days=20))
    for msisdn in created:
        await _traffic(charging, db, tenant_id, base_url, msisdn, when=last_month)
        await _traffic(charging, db, tenant_id, base_url, msisdn)


async def _traffic(charging: ChargingService, db: Database, tenant_id: str, base_url: str, msisdn: str,
                   when: datetime | None = None) -> None:
    """A day of traffic: data sessions, calls at home and abroad, SMS; at ``when`` (Event-Timestamp) or now."""
    tag = msisdn[-4:] + (when.strftime("-%Y%m") if when else "")
    step = iter(range(10_000))

    def at() -> dict[str, Any]:
        return {"eventTimestamp": (when + timedelta(minutes=37 * next(step))).isoformat()} if when else {}

    async def cc(body: dict[str, Any]) -> dict[str, Any]:
        return await charging.credit_control(db, tenant_id, CreditControlRequest.model_validate(body), base_url)

    def req(kind: str, sid: str, n: int, context: str, mscc: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"sessionId": sid, "requestType": kind, "requestNumber": n, "serviceContextId": context,
                "subscriptionId": {"type": "END_USER_E164", "data": msisdn}, "multipleServicesCreditControl": mscc,
                **at(), **extra}

    data = "32251@3gpp.org"
    sid = f"demo-pgw;{tag};1"
    apn = {"serviceInformation": {"apn": "internet.demo"}}
    await cc(req("INITIAL_REQUEST", sid, 0, data, [{"ratingGroup": 10, "requestedServiceUnit": {"totalOctets":
                                                                                                 50 * MB}}], **apn))
    await cc(req("UPDATE_REQUEST", sid, 1, data, [{"ratingGroup": 10, "usedServiceUnit": {"totalOctets": 42 * MB},
                                                   "requestedServiceUnit": {"totalOctets": 50 * MB}}], **apn))
    await cc(req("TERMINATION_REQUEST", sid, 2, data, [{"ratingGroup": 10, "usedServiceUnit": {"totalOctets":
                                                                                               17 * MB}}], **apn))
    voice = "32260@3gpp.org"
    for i, (called, seconds, roaming) in enumerate((("+33145000000", 185, None), ("+447700900123", 420, None),
                                                   ("+33612345678", 95, "ES"))):
        sid = f"demo-ims;{tag};{i}"
        info: dict[str, Any] = {"calledParty": called}
        if roaming:
            info["visitedCountry"] = roaming
        await cc(req("INITIAL_REQUEST", sid, 0, voice, [{"ratingGroup": 1, "requestedServiceUnit": {"time": 300}}],
                     serviceInformation=info))
        await cc(req("TERMINATION_REQUEST", sid, 1, voice, [{"ratingGroup": 1, "usedServiceUnit": {"time": seconds}}]))
    for i in range(3):
        await cc(req("EVENT_REQUEST", f"demo-smsc;{tag};{i}", 0, "32274@3gpp.org",
                     [{"ratingGroup": 3, "requestedServiceUnit": {"serviceSpecificUnits": 1}}],
                     requestedAction="DIRECT_DEBITING", serviceInformation={"calledParty": f"+3361234500{i}"}))
    if when is not None:
        return
    # a data session still open: its reservation shows in the bucket's reservedValue
    await cc(req("INITIAL_REQUEST", f"demo-pgw;{tag};live", 0, data,
                 [{"ratingGroup": 10, "requestedServiceUnit": {"totalOctets": 20 * MB}}]))

"""Online charging's public operations: open an OCS account at activation, renew allowances, top up, adjust,
transfer and reserve balance, answer credit-control requests, release expired reservations.

Other domains call these (order-to-activate calls ``open_account`` when a mobile product is activated, payments
call ``topup``), never the charging tables.
"""

from __future__ import annotations

import calendar
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import orjson

from openbss.catalog.service import CompiledTariff
from openbss.charging import errors as rc
from openbss.charging import repository as repo
from openbss.charging.errors import (
    AccountClosed,
    ChargingAccountNotFound,
    InsufficientBalance,
    InvalidBalanceAction,
    SubscriberExists,
)
from openbss.charging.events import API, LOW_BALANCE_EVENT, RENEWAL_FEE_EVENT, THRESHOLD_EVENT, USAGE_API
from openbss.charging.schemas import MAX_UNITS, SERVICE_CONTEXTS, CreditControlRequest, MultipleServicesCreditControl
from openbss.charging.sessions import DEFAULT_QUOTA, Ledger, ReservationState, base_unit
from openbss.platform.auth import Principal, permissions_for
from openbss.platform.db import Database, json_dumps, json_loads, utcnow
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing import phases
from openbss.pricing.choice import BAND_CHANGES, UNITS_OF, choose_rate
from openbss.pricing.cycles import monthly_price
from openbss.pricing.money import MINOR_UNITS, is_currency, to_decimal
from openbss.pricing.units import UnitError, canonical_unit, convert
from openbss.pricing.usage import RatingError, from_minor, to_minor

TMF_USAGE_TYPE = {"money": "monetary", "data": "data", "voice": "voice", "sms": "sms", "mms": "other"}
UNLIMITED = 2**62
FEES = "fees"  # the plan's periodic fees (a prepaid line pays them from its money at each renewal)
MAIN_PRIORITY = 1000  # the main money bucket is consumed last
OPTIMISTIC_ATTEMPTS = 3
#: the services a partial bar names (the account stays active; ``set_barring``): a call, a message or an MMS sent
#: by the subscriber (originating) or received (terminating, ``roleOfNode`` TERMINATING_ROLE), and data
BARRABLE_SERVICES = ("outgoingVoice", "incomingVoice", "outgoingSms", "incomingSms", "outgoingMms", "incomingMms",
                     "data")


def barring_code(usage_type: str, terminating: bool) -> str:
    """The barrable service a credit-control request uses (``data``, ``outgoingVoice``, ``incomingSms``, ...)."""
    if usage_type == "data":
        return "data"
    return ("incoming" if terminating else "outgoing") + usage_type.capitalize()


# --- helpers ---------------------------------------------------------------------------------------------------
def subscriber_key(value: str) -> str:
    """E.164 digits of an MSISDN ('+33 6 12 34 56 78' -> '33612345678'); other identities as given."""
    digits = re.sub(r"[\s\-().+]", "", value)
    return digits


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def quantity_to_units(amount: Any, units: str, unit: str, currency: str | None) -> int:
    """A TMF Quantity (e.g. 10 EUR, 5 GB, 30 minute) as integer base units of a bucket of ``unit``."""
    result = _quantity_to_units(amount, units, unit, currency)
    if abs(result) > MAX_UNITS:
        raise InvalidBalanceAction(f"'amount.amount': {amount} {units} is beyond what one balance action may move")
    return result


def _quantity_to_units(amount: Any, units: str, unit: str, currency: str | None) -> int:
    try:
        value = to_decimal(amount)
    except ValueError as exc:
        raise InvalidBalanceAction(f"'amount.amount': {exc}") from exc
    if unit == "money":
        if units != currency:
            raise InvalidBalanceAction(f"'amount.units': '{units}' is not the bucket currency '{currency}'")
        try:
            return to_minor(value, units)
        except RatingError as exc:
            raise InvalidBalanceAction(f"'amount.amount': {exc}") from exc
    try:
        base = convert(value, canonical_unit(units), UNITS_OF[unit])
    except (UnitError, KeyError) as exc:
        raise InvalidBalanceAction(f"'amount.units': {exc}") from exc
    if base != base.to_integral_value():
        raise InvalidBalanceAction(f"'amount': {amount} {units} is not a whole number of {UNITS_OF[unit]}")
    return int(base)


def units_quantity(value: int, unit: str, currency: str | None) -> dict[str, Any]:
    if unit == "money":
        return {"amount": from_minor(value, currency or "EUR"), "units": currency}
    return {"amount": value, "units": UNITS_OF.get(unit, "event")}


def remaining_name(value: int, unit: str, currency: str | None) -> str:
    if unit == "money":
        return f"{from_minor(value, currency or 'EUR')} {currency}"
    if value >= UNLIMITED // 2:
        return "unlimited"
    if unit == "data":
        for name, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
            if abs(value) >= size:
                return f"{(Decimal(value) / size).quantize(Decimal('0.01'))} {name}"
        return f"{value} B"
    if unit == "voice":
        return f"{value // 60} min {value % 60} s"
    return f"{value} {UNITS_OF.get(unit, '')}".strip()


def _dt(value: float | None) -> str | None:
    return format_datetime(datetime.fromtimestamp(value, UTC)) if value is not None else None


def system_context(db_session: Any, tenant_id: str, base_url: str) -> Context:
    principal = Principal("charging", tenant_id, ("system",), permissions=permissions_for(("system",)))
    return Context(principal=principal, session=db_session, base_url=base_url)


# --- rating plan from the catalog --------------------------------------------------------------------------------
def plan_entry(price: dict[str, Any]) -> dict[str, Any]:
    """A catalog usage price (TMF620 + OpenBSS extensions) as a rating plan entry (exact strings)."""
    usage_type = price.get("usageType") or "data"
    money = price.get("price") or {}
    uom = price.get("unitOfMeasure") or {"amount": 1, "units": UNITS_OF.get(usage_type, "event")}
    base = UNITS_OF.get(usage_type, "event")
    try:
        per = convert(to_decimal(uom.get("amount", 1)), canonical_unit(uom.get("units", base)), base)
    except UnitError:
        per = Decimal(1)
    tiers = []
    for t in price.get("priceTier") or []:
        tiers.append({"start": str(to_decimal(t["fromQuantity"])),
                      "end": str(to_decimal(t["toQuantity"])) if t.get("toQuantity") is not None else None,
                      "price": str(to_decimal(t.get("unitPrice", 0)))})
    entry: dict[str, Any] = {
        "priceId": price.get("id"), "name": price.get("name"), "currency": money.get("unit") or "EUR",
        "price": str(to_decimal(money.get("value", 0))), "per": str(per), "tiers": tiers,
        "tierType": price.get("tierType"), "allowances": price.get("allowance") or [],
    }
    if price.get("tariff"):
        entry["tariffId"] = price["tariff"]["id"]
    steps = []
    for t in price.get("priceTier") or []:  # tiers with their own increments, in base units
        block = t.get("ratingBlock")
        if not block:
            break
        end = to_decimal(t["toQuantity"]) * per if t.get("toQuantity") is not None else None
        steps.append([int(to_decimal(t["fromQuantity"]) * per), int(end) if end is not None else None,
                      int(convert(to_decimal(block["amount"]), canonical_unit(block["units"]), base))])
    if steps:
        entry["incrementTiers"] = steps
    for blocks, prefix in (("ratingBlock", ""), ("allowanceRatingBlock", "allowance")):
        block = price.get(blocks) or {}
        for attr in ("initial", "subsequent"):
            q = block.get(attr) or block.get("initial")
            if q:
                key = f"{prefix}{attr.title()}" if prefix else attr
                entry[key] = int(convert(to_decimal(q["amount"]), canonical_unit(q["units"]), base))
    policy = price.get("quotaPolicy") or {}
    quota: dict[str, int] = {}
    for attr, key in (("defaultQuota", "default"), ("minimumQuota", "minimum")):
        if policy.get(attr):
            q = policy[attr]
            quota[key] = int(convert(to_decimal(q["amount"]), canonical_unit(q["units"]), base))
    for attr, key in (("validityTime", "validity"), ("quotaHoldingTime", "holding")):
        if policy.get(attr):
            quota[key] = int(policy[attr])
    if quota:
        entry["quota"] = quota
    rounding = price.get("rounding")
    if price.get("chargeSetupWithAllowance"):
        entry["setupAlways"] = True
    for attr, key in (("maximumCharge", "maxCharge"), ("maximumRate", "maxRate")):
        if price.get(attr):
            entry[key] = str(to_decimal(price[attr]["value"]))
    if rounding:
        entry["rounding"] = rounding.get("method") or "halfUp"
        entry["decimals"] = int(rounding["decimals"])
    return entry












# --- accounts and buckets ----------------------------------------------------------------------------------------
def bucket_body(account: dict[str, Any], *, name: str, unit: str, valid_from: float | None, valid_to: float | None,
                description: str | None = None, zones: list[str] | None = None,
                services: list[str] | None = None, bands: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@type": "Bucket", "name": name, "usageType": TMF_USAGE_TYPE[unit], "isShared": False,
        "remainingValue": {"units": account["currency"] if unit == "money" else UNITS_OF.get(unit)},
        "logicalResource": [{"id": account["subscriber"], "name": "MSISDN", "@referredType": "MSISDN"}],
    }
    if description:
        body["description"] = description
    if account.get("product_id"):
        body["product"] = [{"id": account["product_id"], "@referredType": "Product"}]
    if account.get("billing_account_id"):
        body["partyAccount"] = {"id": account["billing_account_id"], "@referredType": "BillingAccount"}
    if account.get("party_id"):
        body["relatedParty"] = [{"id": account["party_id"], "role": "customer",
                                 "@referredType": account.get("party_type") or "Individual"}]
    vf = {k: v for k, v in (("startDateTime", _dt(valid_from)), ("endDateTime", _dt(valid_to))) if v}
    if vf:
        body["validFor"] = vf
    if zones is not None or services is not None or bands is not None:  # an OpenBSSBucket attribute
        body["usageRestriction"] = {k: v for k, v in (("usageType", services), ("destinationZone", zones),
                                                      ("timeBand", bands)) if v is not None}
    return body


BUCKET_USAGE_TYPES = ("data", "voice", "sms", "mms")


async def add_bucket(ctx: Context, account_id: str, *, unit: str, amount: int, name: str, priority: int = 100,
                     valid_from: datetime | None = None, valid_to: datetime | None = None,
                     zones: list[str] | None = None, services: list[str] | None = None,
                     key: str | None = None, description: str | None = None) -> dict[str, Any]:
    """Give an account another bucket: promotional credit, a bonus, an extra allowance. ``amount`` in minor units
    (money) or base units; consumed before buckets of a higher ``priority`` (the main balance is 1000), only within
    its validity window, and only for the ``services`` (usage types) and destination ``zones`` given (None: all).
    Idempotent per ``key``. Returns the bucket's id."""
    if unit not in ("money", *BUCKET_USAGE_TYPES):
        raise InvalidBalanceAction(f"'unit': '{unit}' is not money, {', '.join(BUCKET_USAGE_TYPES)}")
    if amount <= 0:
        raise InvalidBalanceAction("'amount': a bucket starts with a positive amount")
    if not 0 <= priority < MAIN_PRIORITY:
        raise InvalidBalanceAction(f"'priority': {priority} must be from 0 to {MAIN_PRIORITY - 1} (the main balance "
                                   f"is consumed last)")
    if valid_from and valid_to and valid_to <= valid_from:
        raise InvalidBalanceAction("'validFor': the end must be after the start")
    for s in services or []:
        if s not in BUCKET_USAGE_TYPES:
            raise InvalidBalanceAction(f"'services': '{s}' is not one of {', '.join(BUCKET_USAGE_TYPES)}")
    if unit != "money" and services is not None and services != [unit]:
        raise InvalidBalanceAction(f"'services': a {unit} bucket pays for {unit} only")
    conn = await repo.session_connection(ctx.session)
    account = await repo.lock_account(conn, account_id=account_id)
    if account is None:
        raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
    start = valid_from.timestamp() if valid_from else None
    end = valid_to.timestamp() if valid_to else None
    bucket_id = str(uuid.uuid4())
    await repo.insert_bucket(conn, {
        "id": bucket_id, "account_id": account_id, "unit": unit, "amount": amount, "valid_from": start,
        "valid_to": end, "priority": priority, "source": "promotion", "source_key": key or f"promotion:{bucket_id}",
        "zones": zones, "services": services,
        "body": bucket_body(account, name=name, unit=unit, valid_from=start, valid_to=end, description=description,
                            zones=zones, services=services),
    })
    return {"id": bucket_id, "unit": unit, "remaining": amount}




async def renew_allowances(ctx: Context, account_id: str, period_start: datetime, base_url: str | None = None,
                           now: datetime | None = None) -> int:
    """Create the allowance buckets of the period starting at ``period_start`` (one month), rolling over what the
    previous period left where the allowance allows it. Idempotent per period.

    A prepaid line pays its periodic fees (the offering's monthly recurring prices) from its money first, once per
    period (``_pay_renewal_fee``); until they are paid the period's allowances are not granted. ``now``: the time
    the renewal happens at (a sandbox tenant's test clock; real time by default)."""
    base_url = ctx.base_url if base_url is None else base_url
    conn = await repo.session_connection(ctx.session)
    account = await repo.lock_account(conn, account_id=account_id)
    if account is None:
        raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
    start = period_start.timestamp()
    end = add_months(period_start, 1).timestamp()
    if account["payment_type"] == "prepaid" and account["plan"].get(FEES):
        if end <= (now.timestamp() if now is not None else time.time()):
            return 0  # a period already over: neither its fee nor its allowances
        if not await _pay_renewal_fee(conn, account, period_start, add_months(period_start, 1), base_url):
            return 0  # unpaid: the period's allowances wait for the money (a top-up, the hourly renewal)
    made = 0
    for usage_type, entry in account["plan"].items():
        if usage_type == FEES:
            continue
        unit = usage_type if usage_type in UNITS_OF else "sms"
        for i, allowance in enumerate(entry.get("allowances") or []):
            if allowance.get("unlimited"):
                amount = UNLIMITED
            else:
                q = allowance.get("quantity") or {}
                amount = int(convert(to_decimal(q.get("amount", 0)), canonical_unit(q.get("units", "B")),
                                     UNITS_OF.get(unit, "SMS")))
            key = f"{entry.get('priceId')}:{i}:{period_start.date().isoformat()}"
            zones = allowance.get("destinationZone") or None
            bands = allowance.get("timeBand") or None
            name = allowance.get("name") or f"{entry.get('name')} allowance"
            rollover = allowance.get("rollover") or {}
            made += await repo.insert_bucket(conn, {
                "id": str(uuid.uuid4()), "account_id": account_id, "unit": unit, "amount": amount,
                "valid_from": start, "valid_to": end, "priority": 100, "source": "allowance", "source_key": key,
                "zones": zones, "bands": bands, "rollover_periods": int(rollover.get("maxPeriods") or 0),
                "body": bucket_body(account, name=name, unit=unit, valid_from=start, valid_to=end,
                                    description=f"{entry.get('name')}, {period_start.date().isoformat()}",
                                    zones=zones, bands=bands),
            })
            if rollover.get("maxPeriods") and not allowance.get("unlimited"):
                made += await _roll_over(conn, account, entry, i, rollover, unit, period_start, zones, name, bands)
    return made


def fee_minor(account: dict[str, Any], on: date | None = None) -> int:
    """The periodic fees of a line's plan for the period starting ``on``, in minor units of its currency (fees in
    another currency are refused): each fee's amount as sold, with the discounts sold for a time still running
    then (``promotions``: ``{until, delta}``, from ``sold_fees``), never below zero."""
    total = 0
    for fee in account["plan"].get(FEES) or []:
        if fee["currency"] != account["currency"]:
            raise InvalidBalanceAction(f"the fee '{fee.get('name')}' is in {fee['currency']}, the line's money in "
                                       f"{account['currency']}")
        amount = to_decimal(fee["amount"]) + sum(
            (to_decimal(p["delta"]) for p in fee.get("promotions") or []
             if on is None or on < date.fromisoformat(p["until"])), Decimal(0))
        total += max(0, to_minor(amount, account["currency"]))
    return total


def sold_fees(plan: dict[str, Any], product_prices: list[dict[str, Any]], sold_on: date) -> dict[str, Any]:
    """The plan with its periodic fees as the product was sold (the order's prices, ``productPrice``): each fee of
    the offering (``priceId``) at the product's amount (its quantity, its lasting discounts) and with the discounts
    sold for a time as ``promotions`` counted from ``sold_on`` (``pricing.phases``) — not the catalog's list price."""
    fees = plan.get(FEES)
    if not fees:
        return plan
    by_price = {(pp.get("productOfferingPrice") or {}).get("id"): pp for pp in product_prices
                if isinstance(pp, dict) and pp.get("priceType") == "recurring"}
    out = []
    for fee in fees:
        pp = by_price.get(fee.get("priceId"))
        if pp is None:
            out.append(fee)
            continue
        amount = to_decimal(((pp.get("price") or {}).get("dutyFreeAmount") or {}).get("value") or 0)
        promotions = []
        for alt in pp.get("productPriceAlteration") or []:
            delta = to_decimal(((alt.get("price") or {}).get("dutyFreeAmount") or {}).get("value") or 0)
            if alt.get("applicationDuration") is None:
                amount += delta
                continue
            try:
                until = phases.promotion(sold_on, delta, alt["applicationDuration"],
                                         alt.get("unitOfMeasure") or "month")
            except ValueError as exc:
                raise InvalidBalanceAction(f"the fee '{fee.get('name')}': {exc}") from exc
            promotions.append({"until": until.until.isoformat(), "delta": str(delta)})
        out.append({**fee, "amount": str(amount), **({"promotions": promotions} if promotions else {})})
    return {**plan, FEES: out}


async def _pay_renewal_fee(conn: Any, account: dict[str, Any], start: datetime, end: datetime, base_url: str) -> bool:
    """Take a prepaid line's fees for the period from its money, exactly once (the row of the period in
    ``charging_renewal_fee``, under the account's lock): True when paid (now or before). Money comes from the
    buckets that are not restricted to some usage (the main balance, unrestricted credit), in consumption order; a
    period the money does not cover is recorded ``unpaid`` (one ``RenewalFeeEvent``) and paid by a later renewal
    attempt (a top-up, the hourly job)."""
    row = await conn.fetchrow("SELECT id, status FROM charging_renewal_fee WHERE account_id = $1 AND "
                              "period_start = $2", account["id"], start)
    if row is not None and row["status"] == "paid":
        return True
    amount = fee_minor(account, start.date())
    state = await repo.load_state(conn, account["id"])
    ledger = Ledger.load(account, state["buckets"], state["reservations"], time.time())
    ledger.expire()
    payers = [b for b in ledger.money_buckets() if b.services is None and b.zones is None and b.bands is None]
    fee_id = row["id"] if row is not None else str(uuid.uuid4())
    if sum(max(0, b.free()) for b in payers) < amount:
        if row is None:
            await conn.execute(
                "INSERT INTO charging_renewal_fee (id, account_id, product_id, period_start, period_end, "
                "amount_minor, currency, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'unpaid')",
                fee_id, account["id"], account.get("product_id"), start, end, amount, account["currency"])
            await _commit_ledger(conn, ledger, account, base_url,
                                 events=[fee_event(account, fee_id, "unpaid", amount, start, end, base_url)])
        return False
    left = amount
    for b in payers:
        take = min(left, max(0, b.free()))
        b.d_remaining -= take
        left -= take
    usage_id = str(uuid.uuid4())
    names = ", ".join(str(f.get("name")) for f in account["plan"][FEES])
    usage = {"id": usage_id, "rating_group": 0, "usage_type": "fee", "units": 1, "allowance_units": 0,
             "amount_minor": amount, "currency": account["currency"], "usage_date": start.timestamp(),
             "body": _fee_usage_doc(account, usage_id, names, amount, start, end, base_url)}
    ledger.check_thresholds()
    await _write(conn, account, buckets=_bucket_changes(ledger), reservation_updates=_reservation_updates(ledger),
                 session_id=f"renewal:{account['id']}:{start.date().isoformat()}", request_number=0,
                 usages=[usage], events=[*threshold_events(ledger, account, base_url),
                                         fee_event(account, fee_id, "paid", amount, start, end, base_url)])
    await conn.execute(
        "INSERT INTO charging_renewal_fee (id, account_id, product_id, period_start, period_end, amount_minor, "
        "currency, status, usage_id, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'paid', $8, now()) "
        "ON CONFLICT (id) DO UPDATE SET status = 'paid', usage_id = excluded.usage_id, paid_at = now(), "
        "amount_minor = excluded.amount_minor",
        fee_id, account["id"], account.get("product_id"), start, end, amount, account["currency"], usage_id)
    account["version"] = int(account["version"]) + 1  # the write moved it
    return True


def _fee_usage_doc(account: dict[str, Any], usage_id: str, names: str, amount: int, start: datetime, end: datetime,
                   base_url: str) -> dict[str, Any]:
    currency = account["currency"]
    doc: dict[str, Any] = {
        "id": usage_id, "href": f"{base_url}/tmf-api/usageManagement/v4/usage/{usage_id}", "@type": "Usage",
        "usageDate": format_datetime(start), "usageType": "fee", "status": "rated",
        "description": f"periodic fee {names}, {start.date().isoformat()} to {end.date().isoformat()}",
        "usageCharacteristic": [
            {"name": "subscriber", "valueType": "string", "value": account["subscriber"]},
            {"name": "periodStart", "valueType": "string", "value": format_datetime(start)},
            {"name": "periodEnd", "valueType": "string", "value": format_datetime(end)}],
        "ratedProductUsage": [{
            "@type": "RatedProductUsage", "ratingDate": format_datetime(utcnow()), "usageRatingTag": "usage",
            "isBilled": False, "ratingAmountType": "total", "offerTariffType": "recurring",
            "taxExcludedRatingAmount": {"unit": currency, "value": from_minor(amount, currency)}}],
    }
    if account.get("product_id"):
        doc["ratedProductUsage"][0]["productRef"] = {"id": account["product_id"], "@referredType": "Product"}
    if account.get("party_id"):
        doc["relatedParty"] = [{"id": account["party_id"], "role": "customer",
                                "@referredType": account.get("party_type") or "Individual"}]
    return doc


def fee_event(account: dict[str, Any], fee_id: str, status: str, amount: int, start: datetime, end: datetime,
              base_url: str) -> dict[str, Any]:
    """An outbox row: a prepaid line's periodic fee was paid from its money, or could not be (its allowances wait)."""
    resource: dict[str, Any] = {
        "id": fee_id, "@type": "RenewalFee", "status": status,
        "amount": {"unit": account["currency"], "value": from_minor(amount, account["currency"])},
        "validFor": {"startDateTime": format_datetime(start), "endDateTime": format_datetime(end)},
        "account": {"id": account["id"]}}
    if account.get("product_id"):
        resource["product"] = {"id": account["product_id"], "@referredType": "Product"}
    return repo.event_row(API, RENEWAL_FEE_EVENT, "renewalFee", resource, format_datetime(utcnow()), "RenewalFee")


async def settle_unpaid_fees(ctx: Context, account_id: str) -> int:
    """Pay the unpaid fee of a prepaid line's current period if its money now covers it, granting the period's
    allowances (called after a top-up). Returns the buckets made."""
    conn = await repo.session_connection(ctx.session)
    start = await conn.fetchval(
        "SELECT period_start FROM charging_renewal_fee WHERE account_id = $1 AND status = 'unpaid' "
        "AND period_end > now() ORDER BY period_start DESC LIMIT 1", account_id)
    if start is None:
        return 0
    return await renew_allowances(ctx, account_id, start)


async def _roll_over(conn: Any, account: dict[str, Any], entry: dict[str, Any], index: int,
                     rollover: dict[str, Any], unit: str, period_start: datetime, zones: list[str] | None,
                     name: str, bands: list[str] | None = None) -> int:
    """Carry what the previous period's allowance left (capped by ``maxQuantity``) into a bucket valid for
    ``maxPeriods`` periods, consumed before the new allowance (it expires first)."""
    prefix = f"{entry.get('priceId')}:{index}:"
    previous = await repo.ended_allowances(conn, account["id"], prefix, period_start.timestamp())
    made = 0
    cap = rollover.get("maxQuantity")
    limit = int(convert(to_decimal(cap["amount"]), canonical_unit(cap.get("units", "B")), UNITS_OF[unit])) \
        if cap else None
    for bucket_id, remaining in previous:
        carried = min(remaining, limit) if limit is not None else remaining
        if carried <= 0:
            continue
        start, end = period_start.timestamp(), add_months(period_start, int(rollover["maxPeriods"])).timestamp()
        made += await repo.insert_bucket(conn, {
            "id": str(uuid.uuid4()), "account_id": account["id"], "unit": unit, "amount": carried,
            "valid_from": start, "valid_to": end, "priority": 50, "source": "rollover",
            "source_key": f"rollover:{bucket_id}", "zones": zones, "bands": bands,
            "body": bucket_body(account, name=f"{name} (rolled over)", unit=unit, valid_from=start, valid_to=end,
                                description=f"unused {name} of the previous period", zones=zones, bands=bands),
        })
    return made


class TestClocks(Protocol):
    """What charging asks billing (wired by the composition root): the time of the tenant's test clock, None
    without one (real time). See ``charging.clock``."""

    async def clock_time(self, session: Any, tenant_id: str) -> datetime | None: ...


async def renew_due_allowances(db: Database, tenant_id: str, now: datetime | None = None,
                               clocks: TestClocks | None = None) -> int:
    """Start the next period of every account whose allowances ended (the periodic renewal), at ``now``, else at
    the tenant's test clock (``clocks``: billing's, see ``charging.clock``), else at real time."""
    async with db.transaction(tenant_id) as session:
        if now is None and clocks is not None:
            now = await clocks.clock_time(session, tenant_id)
        now = now or utcnow()
        moment = now.timestamp()
        due = await repo.accounts_due_for_renewal(await repo.session_connection(session), moment)
    made = 0
    for account_id, ended in due:
        async with db.transaction(tenant_id) as session:
            ctx = system_context(session, tenant_id, "")
            start = datetime.fromtimestamp(ended, UTC)
            while start.timestamp() <= moment:
                made += await renew_allowances(ctx, account_id, start, now=now)
                start = add_months(start, 1)
    return made


async def accounts_of_party(ctx: Context, party_id: str) -> list[dict[str, Any]]:
    """The charging accounts of a party's lines with their live buckets (the party's GDPR export)."""
    from sqlalchemy import select

    from openbss.charging.models import ChargingAccount

    ids = (await ctx.session.execute(select(ChargingAccount.id).where(ChargingAccount.party_id == party_id)
                                     .order_by(ChargingAccount.created_at, ChargingAccount.id))).scalars().all()
    return [await get_account(ctx, account_id) for account_id in ids]


async def get_account(ctx: Context, account_id: str | None = None, *, subscriber: str | None = None,
                      product_id: str | None = None) -> dict[str, Any]:
    """The account with its live buckets (remaining, reserved, available per unit)."""
    conn = await repo.session_connection(ctx.session)
    account = await repo.account_by(conn, account_id=account_id,
                                    subscriber=subscriber_key(subscriber) if subscriber else None,
                                    product_id=product_id)
    if account is None:
        raise ChargingAccountNotFound("charging account not found")
    state = await repo.load_state(conn, account["id"])
    account["buckets"] = state["buckets"]
    account["openReservations"] = len(state["reservations"])
    money = [b for b in state["buckets"] if b["unit"] == "money"]
    account["balance"] = from_minor(sum(int(b["remaining"]) for b in money), account["currency"])
    account["available"] = from_minor(sum(int(b["remaining"]) - int(b["reserved"]) - int(b["lower_limit"])
                                          for b in money), account["currency"])
    return account


async def accounts_for_rating(ctx: Context, *, subscribers: list[str] | None = None,
                              account_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The accounts (plan, currency, time zone, parties; not their buckets) of these subscribers (MSISDNs, any
    form) or with these ids, read together: what batch rating guides a file's records to."""
    conn = await repo.session_connection(ctx.session)
    if subscribers is not None:
        return await repo.accounts_by(conn, subscribers=sorted({subscriber_key(s) for s in subscribers}))
    return await repo.accounts_by(conn, account_ids=sorted(set(account_ids or [])))


async def _ledger(conn: Any, account_id: str) -> tuple[dict[str, Any], Ledger]:
    account = await repo.lock_account(conn, account_id=account_id)
    if account is None:
        raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
    state = await repo.load_state(conn, account_id)
    ledger = Ledger.load(account, state["buckets"], state["reservations"], time.time())
    ledger.expire()
    return account, ledger


def _bucket_changes(ledger: Ledger) -> list[dict[str, Any]]:
    return [{"id": b.id, "dr": b.d_remaining, "dq": b.d_reserved, "lvl": b.level}
            for b in ledger.buckets.values() if b.changed]


def _reservation_updates(ledger: Ledger) -> list[dict[str, Any]]:
    return [{"id": r.id, "state": r.state, "holds": r.holds, "granted": r.granted, "used_units": r.used_units,
             "allowance_units": r.allowance_units, "money_units": r.money_units, "expires_at": r.expires_at,
             "rate": r.rate if "lanes" in r.rate else None}  # a call rated per band keeps its bands' counters
            for r in ledger.reservations if r.changed]


def _reservation_inserts(ledger: Ledger, session_pk: int | None = None) -> list[dict[str, Any]]:
    return [{"session_pk": r.session_pk if r.session_pk is not None else session_pk,
             "rating_group": r.rating_group,
             "usage_type": r.usage_type, "state": r.state, "holds": r.holds, "granted": r.granted,
             "used_units": r.used_units, "allowance_units": r.allowance_units, "money_units": r.money_units,
             "rate": r.rate, "expires_at": r.expires_at} for r in ledger.new_reservations]


async def _commit_ledger(conn: Any, ledger: Ledger, account: dict[str, Any], base_url: str,
                         events: list[dict[str, Any]] | None = None) -> None:
    """Write a ledger's changes under the account lock (the version cannot have moved)."""
    ledger.check_thresholds()
    await _write(conn, account, buckets=_bucket_changes(ledger), reservation_updates=_reservation_updates(ledger),
                 reservation_inserts=_reservation_inserts(ledger),
                 events=[*threshold_events(ledger, account, base_url), *(events or [])])
    account["version"] = int(account["version"]) + 1  # the write moved it (a later write in this transaction)


class VersionConflict(Exception):
    """The account changed between the read and the write of an optimistic attempt: decide again."""


class WriteCapture:
    """Stands for the connection of a decision whose writes the caller makes itself (the charging node, which
    group-commits them): ``_write`` records the changes of the account here instead of executing them."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []


async def _write(conn: Any, account: dict[str, Any], **changes: Any) -> None:
    if isinstance(conn, WriteCapture):
        conn.writes.append(changes)
        return
    if not await repo.write(conn, account["id"], version=int(account["version"]), **changes):
        raise VersionConflict(account["id"])


def _find_bucket(ledger: Ledger, bucket_id: str) -> Any:
    bucket = ledger.buckets.get(bucket_id)
    if bucket is None:
        raise InvalidBalanceAction(f"'bucket.id': bucket '{bucket_id}' is not an active bucket of the account")
    return bucket


async def account_of_bucket(ctx: Context, bucket_id: str) -> tuple[str, dict[str, Any]]:
    conn = await repo.session_connection(ctx.session)
    rows = await repo.bucket_rows(conn, [bucket_id])
    if bucket_id not in rows:
        raise InvalidBalanceAction(f"'bucket.id': bucket '{bucket_id}' does not exist")
    return rows[bucket_id]["account_id"], rows[bucket_id]


#: how money credited to a prepaid line was funded: by a payment of payments (its ledger entry is the payment's),
#: from outside (TMF654 top-ups: vouchers, retail, partners), as goodwill (agents, initial balances), or adjusted
FUNDINGS = ("payment", "external", "goodwill", "adjustment")


async def _record_credit(conn: Any, account: dict[str, Any], bucket: Any, amount: int, funding: str,
                         reason: str | None) -> None:
    """Remember money credited to (or taken from) a prepaid line's money that no payment funded
    (``charging_prepaid_credit``): payments posts it to the ledger's prepaid liability."""
    if funding not in FUNDINGS:
        raise ValueError(f"unknown funding '{funding}' (known: {', '.join(FUNDINGS)})")
    if funding == "payment" or not amount or account["payment_type"] != "prepaid" or bucket.unit != "money":
        return
    await conn.execute("INSERT INTO charging_prepaid_credit (id, account_id, funding, amount_minor, currency, reason) "
                       "VALUES ($1, $2, $3, $4, $5, $6)", str(uuid.uuid4()), account["id"], funding, amount,
                       account["currency"], reason)


async def topup(ctx: Context, account_id: str, amount: int, *, bucket_id: str | None = None,
                reason: str | None = None, base_url: str | None = None, funding: str = "external",
                ) -> dict[str, Any]:
    """Credit ``amount`` (minor units, or base units for a unit bucket) to a bucket (default: main money).
    ``funding``: ``payment`` (a payment of payments), ``external`` (TMF654: vouchers, retail, partners),
    ``goodwill`` (agents, initial balances) — what the ledger credits the prepaid liability against."""
    if amount <= 0:
        raise InvalidBalanceAction("'amount': a top-up must be positive")
    conn = await repo.session_connection(ctx.session)
    account, ledger = await _ledger(conn, account_id)
    if account["status"] == "closed" and funding != "payment":  # (a payment checked it when it was made)
        raise AccountClosed(f"charging account '{account_id}' is closed (its line was terminated): nothing is "
                            "credited to it")
    bucket = _find_bucket(ledger, bucket_id) if bucket_id else ledger.main_money_bucket()
    if bucket is None:
        raise InvalidBalanceAction("the account has no money bucket")
    bucket.d_remaining += amount
    await _record_credit(conn, account, bucket, amount, funding, reason)
    await _commit_ledger(conn, ledger, account, base_url or ctx.base_url)
    out = {"bucket": bucket.id, "remaining": bucket.remaining + bucket.d_remaining, "unit": bucket.unit}
    if account["payment_type"] == "prepaid" and bucket.unit == "money" and account["plan"].get(FEES):
        await settle_unpaid_fees(ctx, account_id)  # the money may now pay a period's fee: its allowances come
    return out


async def adjust(ctx: Context, account_id: str, bucket_id: str, delta: int, *, funding: str = "adjustment",
                 reason: str | None = None) -> dict[str, Any]:
    """Credit (positive) or debit (negative) a bucket; a debit may not pass the bucket's lower limit. ``funding``:
    as ``topup`` (a cancelled top-up is taken back as it was funded)."""
    conn = await repo.session_connection(ctx.session)
    account, ledger = await _ledger(conn, account_id)
    bucket = _find_bucket(ledger, bucket_id)
    if delta < 0 and bucket.free() + delta < 0:
        raise InsufficientBalance(f"bucket '{bucket_id}' has {bucket.free()} available, cannot debit {-delta}")
    bucket.d_remaining += delta
    await _record_credit(conn, account, bucket, delta, funding, reason)
    await _commit_ledger(conn, ledger, account, ctx.base_url)
    return {"bucket": bucket.id, "remaining": bucket.remaining + bucket.d_remaining}


async def take_back(ctx: Context, account_id: str, amount: int, *, reason: str | None = None) -> dict[str, Any]:
    """Debit ``amount`` (minor units) from the main money bucket for money the payment gateway took back (a
    charged-back prepaid top-up): below the bucket's lower limit if the money was spent meanwhile — the bucket then
    shows a debt that the line's next top-ups repay, and it grants nothing until then. Only payments' chargeback
    path calls this (payments makes it once per dispute); every other debit stops at the lower limit."""
    if amount <= 0:
        raise InvalidBalanceAction("'amount': a debit must be positive")
    conn = await repo.session_connection(ctx.session)
    account, ledger = await _ledger(conn, account_id)
    bucket = ledger.main_money_bucket()
    if bucket is None:
        raise InvalidBalanceAction("the account has no money bucket")
    bucket.d_remaining -= amount
    await _commit_ledger(conn, ledger, account, ctx.base_url)
    return {"bucket": bucket.id, "remaining": bucket.remaining + bucket.d_remaining, "unit": bucket.unit,
            "reason": reason}


async def transfer(ctx: Context, from_bucket: str, to_bucket: str, amount: int) -> None:
    """Move ``amount`` between two buckets of the same unit (accounts locked in id order)."""
    if amount <= 0:
        raise InvalidBalanceAction("'amount': a transfer must be positive")
    conn = await repo.session_connection(ctx.session)
    rows = await repo.bucket_rows(conn, [from_bucket, to_bucket])
    if from_bucket not in rows or to_bucket not in rows:
        raise InvalidBalanceAction("'bucket'/'receiverBucket': both buckets must exist")
    src, dst = rows[from_bucket], rows[to_bucket]
    if src["unit"] != dst["unit"] or (src["body"].get("remainingValue") or {}).get("units") != \
            (dst["body"].get("remainingValue") or {}).get("units"):
        raise InvalidBalanceAction("a transfer needs two buckets of the same unit and currency")
    accounts = await repo.lock_accounts(conn, [src["account_id"], dst["account_id"]])
    ledgers: dict[str, Ledger] = {}
    for account_id, account in accounts.items():
        state = await repo.load_state(conn, account_id)
        ledgers[account_id] = Ledger.load(account, state["buckets"], state["reservations"], time.time())
    source = _find_bucket(ledgers[src["account_id"]], from_bucket)
    # only what the bucket holds moves: a postpaid credit limit (a negative lower limit) is credit, not money,
    # and moved to another line it would become money there
    held = min(source.free(), source.remaining + source.d_remaining - source.reserved - source.d_reserved)
    if held < amount:
        raise InsufficientBalance(f"bucket '{from_bucket}' holds {max(held, 0)} that can move (a credit limit "
                                  f"does not), cannot transfer {amount}")
    source.d_remaining -= amount
    _find_bucket(ledgers[dst["account_id"]], to_bucket).d_remaining += amount
    for account_id, ledger in ledgers.items():
        await _commit_ledger(conn, ledger, accounts[account_id], ctx.base_url)


async def reserve(ctx: Context, account_id: str, bucket_id: str, amount: int, expires_at: datetime | None, *,
                  key: str | None = None) -> datetime:
    """Hold ``amount`` on a bucket until ``expires_at`` (TMF654 reserveBalance; default: the account's quota
    validity); ``key`` (the reserveBalance's id) finds the reservation again to release it. Returns its expiry."""
    if amount <= 0:
        raise InvalidBalanceAction("'amount': a reservation must be positive")
    conn = await repo.session_connection(ctx.session)
    account, ledger = await _ledger(conn, account_id)
    bucket = _find_bucket(ledger, bucket_id)
    if bucket.free() < amount:
        raise InsufficientBalance(f"bucket '{bucket_id}' has {bucket.free()} available, cannot reserve {amount}")
    bucket.d_reserved += amount
    rate: dict[str, Any] = {"currency": account["currency"], "price": "0"}
    if key is not None:
        rate["reserveBalance"] = key
    res = ledger.open_reservation(None, 0, bucket.unit, rate)
    res.holds = {bucket.id: amount}
    res.granted = amount
    until = expires_at or utcnow() + timedelta(seconds=account["quota_validity_seconds"])
    res.expires_at = until.timestamp()
    await _commit_ledger(conn, ledger, account, ctx.base_url)
    return until


async def release_reservation(ctx: Context, account_id: str, key: str) -> int | None:
    """Release the reservation made with ``key`` (a cancelled or deleted reserveBalance): the units it holds are
    available again. Returns the units released, or None when it no longer holds anything (it expired: its
    units were released then)."""
    conn = await repo.session_connection(ctx.session)
    account, ledger = await _ledger(conn, account_id)
    found = next((r for r in ledger.reservations
                  if r.state == "open" and r.session_pk is None and (r.rate or {}).get("reserveBalance") == key), None)
    if found is None:
        await _commit_ledger(conn, ledger, account, ctx.base_url)  # what expired meanwhile is released
        return None
    released = sum(found.holds.values())
    ledger.release(found)
    found.state = "closed"
    await _commit_ledger(conn, ledger, account, ctx.base_url)
    return released


async def set_status(ctx: Context, account_id: str, status: str) -> None:
    """Suspend (``suspended``: every credit-control request is denied with 4010), resume (``active``) or close."""
    if status not in ("active", "suspended", "closed"):
        raise InvalidBalanceAction(f"unknown account status '{status}'")
    conn = await repo.session_connection(ctx.session)
    if await repo.lock_account(conn, account_id=account_id) is None:
        raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
    await repo.set_status(conn, account_id, status)


async def set_barring(ctx: Context, account_id: str, barred: list[str]) -> None:
    """Bar some services of an active account (credit-control requests for them are denied with 4010, the others
    served), or lift the bar (``[]``)."""
    unknown = sorted(set(barred) - set(BARRABLE_SERVICES))
    if unknown:
        raise InvalidBalanceAction(f"unknown barred service(s) {', '.join(unknown)} (known: "
                                   f"{', '.join(BARRABLE_SERVICES)})")
    conn = await repo.session_connection(ctx.session)
    if await repo.lock_account(conn, account_id=account_id) is None:
        raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
    await repo.set_barred(conn, account_id, [b for b in BARRABLE_SERVICES if b in barred])






# --- tenant settings (DESIGN §5 rule 15) -------------------------------------------------------------------------
SETTINGS_CACHE_SECONDS = 30.0


async def charging_settings(ctx: Context) -> dict[str, Any]:
    """The tenant's charging conventions: ``bandChange`` (``start`` by default, or ``split``)."""
    from openbss.charging.models import ChargingSettings

    row = await ctx.session.get(ChargingSettings, ctx.principal.tenant_id)
    return {"bandChange": row.band_change if row is not None else "start"}


async def set_charging_settings(ctx: Context, changes: dict[str, Any]) -> dict[str, Any]:
    """Change the tenant's charging conventions (unknown or bad values refused, naming them)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from openbss.charging.models import ChargingSettings

    if not isinstance(changes, dict):
        raise InvalidBalanceAction("the settings are a JSON object")
    unknown = sorted(set(changes) - {"bandChange"})
    if unknown:
        raise InvalidBalanceAction(f"unknown charging settings {unknown} (known: bandChange)")
    current = await charging_settings(ctx)
    band_change = changes.get("bandChange", current["bandChange"])
    if band_change not in BAND_CHANGES:
        raise InvalidBalanceAction(f"'bandChange': {band_change!r} is not one of {', '.join(BAND_CHANGES)}")
    stmt = pg_insert(ChargingSettings).values(band_change=band_change)
    await ctx.session.execute(stmt.on_conflict_do_update(index_elements=["tenant_id"],
                                                         set_={"band_change": band_change}))
    return await charging_settings(ctx)


# --- events ------------------------------------------------------------------------------------------------------
def bucket_event(account: dict[str, Any], bucket_id: str, unit: str, level: int, remaining: int, initial: int,
                 base_url: str) -> dict[str, Any]:
    """An outbox row: an allowance reached ``level`` % consumed, or (level 0) money fell below the threshold."""
    resource: dict[str, Any] = {
        "id": bucket_id, "href": f"{base_url}/tmf-api/{API}/v4/bucket/{bucket_id}", "@type": "Bucket",
        "usageType": "monetary" if unit == "money" else unit,
        "remainingValue": units_quantity(remaining, unit, account["currency"]),
    }  # no MSISDN (logicalResource): events carry no personal value, the bucket is read by its href
    if account.get("product_id"):
        resource["product"] = [{"id": account["product_id"], "@referredType": "Product"}]
    if unit != "money":
        resource["threshold"] = {"percentage": level, "initialValue": {"amount": initial,
                                                                       "units": UNITS_OF.get(unit)}}
    kind = LOW_BALANCE_EVENT if unit == "money" else THRESHOLD_EVENT
    return repo.event_row(API, kind, "bucket", resource, format_datetime(utcnow()), "Bucket")


def threshold_events(ledger: Ledger, account: dict[str, Any], base_url: str) -> list[dict[str, Any]]:
    out = []
    for t in ledger.thresholds:
        out.append(bucket_event(account, t.bucket_id, t.unit, t.level, t.remaining, t.initial, base_url))
    return out


# --- credit control ----------------------------------------------------------------------------------------------
def precheck(ccr: CreditControlRequest) -> tuple[str | None, dict[str, Any] | None]:
    """The request's usage type, or the answer refusing it before any state is read (unknown service context, a
    missing subscription id, an EVENT without exactly one service)."""
    usage_type = SERVICE_CONTEXTS.get(ccr.serviceContextId)
    if usage_type is None:
        return None, _answer(ccr, rc.INVALID_AVP_VALUE, message=f"unknown serviceContextId '{ccr.serviceContextId}' "
                             f"(known: {', '.join(SERVICE_CONTEXTS)})")
    kind = ccr.requestType
    if kind in ("INITIAL_REQUEST", "EVENT_REQUEST") and ccr.subscriptionId is None:
        return None, _answer(ccr, rc.MISSING_AVP, message="subscriptionId is required")
    if kind == "EVENT_REQUEST" and len(ccr.multipleServicesCreditControl) != 1:
        return None, _answer(ccr, rc.INVALID_AVP_VALUE, message="an EVENT request carries exactly one service")
    return usage_type, None


def _answer(ccr: CreditControlRequest, result: int, msccs: list[dict[str, Any]] | None = None,
            message: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sessionId": ccr.sessionId, "requestType": ccr.requestType,
                           "requestNumber": ccr.requestNumber, "resultCode": result,
                           "resultName": rc.RESULT_NAMES.get(result, str(result))}
    if msccs is not None:
        out["multipleServicesCreditControl"] = msccs
    if message:
        out["errorMessage"] = message
    out.update(extra)
    return out


def _unit_key(usage_type: str) -> str:
    return {"voice": "time", "data": "totalOctets"}.get(usage_type, "serviceSpecificUnits")


def event_time(ccr: CreditControlRequest, now: float) -> float:
    """When the usage happened: the request's Event-Timestamp (UTC in Diameter), else when it was received."""
    if ccr.eventTimestamp is None:
        return now
    moment = ccr.eventTimestamp if ccr.eventTimestamp.tzinfo else ccr.eventTimestamp.replace(tzinfo=UTC)
    return moment.timestamp()


def _usage_doc(ccr: CreditControlRequest, account: dict[str, Any], debit: Any, usage_id: str, now: float,
               base_url: str) -> dict[str, Any]:
    currency = debit.rate.get("currency") or account["currency"]
    info = ccr.serviceInformation
    chars: list[dict[str, Any]] = [
        {"name": "sessionId", "valueType": "string", "value": ccr.sessionId},
        {"name": "requestNumber", "valueType": "integer", "value": ccr.requestNumber},
        {"name": "ratingGroup", "valueType": "integer", "value": debit.rating_group},
        {"name": "subscriber", "valueType": "string", "value": account["subscriber"]},
        {"name": "quantity", "valueType": "integer", "value": debit.units},
        {"name": "unit", "valueType": "string", "value": base_unit(debit.usage_type)},
        {"name": "billableQuantity", "valueType": "integer", "value": debit.billable_units},
        {"name": "allowanceQuantity", "valueType": "integer", "value": debit.allowance_units},
    ]
    called = (info.calledParty if info is not None else None) or debit.rate.get("calledParty")
    apn = (info.apn if info is not None else None) or debit.rate.get("apn")
    if called:
        chars.append({"name": "calledParty", "valueType": "string", "value": called})
    if apn:
        chars.append({"name": "apn", "valueType": "string", "value": apn})
    per = debit.rate.get("per", "1")
    chars.append({"name": "unitPrice", "valueType": "string",
                  "value": f"{debit.rate.get('price')} {currency} per {per} {base_unit(debit.usage_type)}"})
    for key in ("zone", "band", "roaming", "prefix", "direction"):
        if debit.rate.get(key):
            chars.append({"name": {"zone": "destinationZone", "band": "timeBand", "roaming": "roamingZone",
                                   "prefix": "destinationPrefix", "direction": "callDirection"}[key],
                          "valueType": "string",
                          "value": debit.rate[key]})
    if debit.allowance_units and not debit.amount_minor:
        tag = "included usage"
    elif debit.allowance_units:
        tag = "non included usage"
    else:
        tag = "usage"
    rated: dict[str, Any] = {
        "@type": "RatedProductUsage", "ratingDate": _dt(now), "usageRatingTag": tag, "isBilled": False,
        "ratingAmountType": "total", "offerTariffType": debit.rate.get("band") or "flat",
        "taxExcludedRatingAmount": {"unit": currency, "value": from_minor(debit.amount_minor, currency)},
    }
    if debit.rate.get("productId"):
        rated["productRef"] = {"id": debit.rate["productId"], "@referredType": "Product"}
    doc: dict[str, Any] = {
        "id": usage_id, "href": f"{base_url}/tmf-api/usageManagement/v4/usage/{usage_id}", "@type": "Usage",
        "usageDate": _dt(event_time(ccr, now)), "usageType": debit.usage_type, "status": "rated",
        "description": f"{debit.usage_type} {debit.units} {base_unit(debit.usage_type)}",
        "usageCharacteristic": chars, "ratedProductUsage": [rated],
    }
    if account.get("party_id"):
        doc["relatedParty"] = [{"id": account["party_id"], "role": "customer",
                                "@referredType": account.get("party_type") or "Individual"}]
    return doc






async def _grant_mscc(ledger: Ledger, res: ReservationState, mscc: MultipleServicesCreditControl,
                      usage_type: str) -> dict[str, Any]:
    """Grant one rating group's quota under the price's quota policy: its default quota when the network asks for
    none, no grant below its minimum quota (or below the request when the network asks for all or nothing), its
    validity and holding times."""
    policy = res.rate.get("quota") or {}
    want = None
    if mscc.requestedServiceUnit is not None:
        want = mscc.requestedServiceUnit.amount(usage_type)
    if want is None:
        want = int(policy.get("default") or DEFAULT_QUOTA.get(usage_type, 1))
    minimum = want if mscc.allOrNothing else min(want, int(policy.get("minimum") or 0))
    grant = ledger.grant(res, want, minimum=minimum, validity=policy.get("validity"))
    out: dict[str, Any] = {"ratingGroup": mscc.ratingGroup, "resultCode": grant.result}
    if grant.result == rc.SUCCESS:
        out["grantedServiceUnit"] = {_unit_key(usage_type): grant.units}
        out["validityTime"] = int(policy.get("validity") or ledger.account["quota_validity_seconds"])
        if policy.get("holding"):
            out["quotaHoldingTime"] = int(policy["holding"])
        if grant.final:
            out["finalUnitIndication"] = {"finalUnitAction": "TERMINATE"}
    return out


def _overall(msccs: list[dict[str, Any]]) -> int:
    if not msccs or any(m["resultCode"] == rc.SUCCESS for m in msccs):
        return rc.SUCCESS
    return int(msccs[0]["resultCode"])


#: the key of a stored answer naming the account it was given to (removed when the answer is given again)
ANSWER_OWNER = "_account"


async def _finish(conn: Any, ccr: CreditControlRequest, account: dict[str, Any], ledger: Ledger,
                  answer: dict[str, Any], session_row: list[dict[str, Any]] | None, base_url: str) -> dict[str, Any]:
    ledger.check_thresholds()
    usages = []
    for d in ledger.debits:
        usage_id = str(uuid.uuid4())
        usages.append({"id": usage_id, "body": _usage_doc(ccr, account, d, usage_id, ledger.now, base_url),
                       "rating_group": d.rating_group, "usage_type": d.usage_type, "units": d.units,
                       "allowance_units": d.allowance_units, "amount_minor": d.amount_minor,
                       "currency": d.rate.get("currency") or account["currency"],
                       "usage_date": event_time(ccr, ledger.now)})
    await _write(conn, account, buckets=_bucket_changes(ledger), session=session_row,
                 reservation_updates=_reservation_updates(ledger), reservation_inserts=_reservation_inserts(ledger),
                 session_id=ccr.sessionId, request_number=ccr.requestNumber,
                 response={**answer, ANSWER_OWNER: account["id"]}, usages=usages,
                 events=threshold_events(ledger, account, base_url))
    return answer


def _session_row(ccr: CreditControlRequest, state: str, ledger: Ledger, info: dict[str, Any]) -> list[dict[str, Any]]:
    validity = max(int(ledger.account["quota_validity_seconds"]),
                   int(((info.get("rate") or {}).get("quota") or {}).get("validity") or 0))
    return [{"session_id": ccr.sessionId, "state": state, "last": ccr.requestNumber,
             "service_context": ccr.serviceContextId, "info": info, "expires_at": ledger.now + 2 * validity}]








# --- expiry sweep ------------------------------------------------------------------------------------------------
async def release_expired(db: Database, tenant_id: str, base_url: str = "") -> int:
    """Release the reservations of ``tenant_id`` past their validity (accounts with no traffic since). The same
    happens lazily on the next request of an account; this sweep bounds how long units stay held."""
    pool = await repo.charging_pool(db)
    released = 0
    async with repo.tenant_transaction(pool, tenant_id) as conn:
        account_ids = await repo.accounts_with_expired_reservations(conn)
    for account_id in account_ids:
        async with repo.tenant_transaction(pool, tenant_id) as conn:
            account = await repo.lock_account(conn, account_id=account_id)
            if account is None:
                continue
            state = await repo.load_state(conn, account_id)
            ledger = Ledger.load(account, state["buckets"], state["reservations"], time.time())
            released += ledger.expire()
            await _commit_ledger(conn, ledger, account, base_url)
    return released


# --- usage rated in batch (mediation): stored as TMF635 usage next to online charging's ---------------------------
def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):  # as platform.db.json_dumps renders amounts
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _batch_json(body: dict[str, Any]) -> str:
    """A batch-rated usage document as JSON text (orjson: ~10x the standard library's encoder on these documents;
    the same text for the types they hold — strings, integers, amounts as Decimal)."""
    return orjson.dumps(body, default=_json_number).decode()


async def store_batch_usage(ctx: Context, rows: list[dict[str, Any]]) -> set[str]:
    """Store usage records rated in batch (written with ``COPY``), each once by its ``key`` (the usage's
    ``session_id``; request number and rating group 0): a key already stored is skipped. Returns the keys stored.

    Each row: ``id``, ``key``, ``body`` (the TMF635 document), ``account_id`` (a charging account), ``usage_type``,
    ``units``, ``allowance_units``, ``amount_minor``, ``currency``, ``usage_date`` (aware datetime); and for the
    versions a re-rating writes, ``request_number`` (the version) and ``rating_group`` (1 on a reversal)."""
    if not rows:
        return set()
    conn = await repo.session_connection(ctx.session)
    return await repo.copy_batch_usage(conn, [
        (r["id"], _batch_json(r["body"]), r["account_id"], r["key"], r.get("request_number", 0),
         r.get("rating_group", 0), r["usage_type"], r["units"],
         r["allowance_units"], r["amount_minor"], r["currency"], r["usage_date"]) for r in rows])


async def store_batch_usage_columns(ctx: Context, data: bytes, columns: list[tuple[str, str]], body: str,
                                    args: list[Any]) -> int:
    """Store usage records rated in batch given as typed columns (COPY text of ``columns``: (name, SQL type)), the
    TMF635 document of each built in SQL by ``body`` from its columns and ``args`` (``repository.
    copy_batch_usage_columns``): each once by its ``key``, as ``store_batch_usage``. Returns how many were stored."""
    if not data:
        return 0
    conn = await repo.session_connection(ctx.session)
    return await repo.copy_batch_usage_columns(conn, data, columns, body, args)


async def batch_usage_rows(ctx: Context, account_ids: list[str], since: datetime, before: datetime,
                           ) -> list[dict[str, Any]]:
    """The usage rated in batch (keys ``cdr:...``, every version) of these accounts in ``[since, before)``."""
    if not account_ids:
        return []
    conn = await repo.session_connection(ctx.session)
    rows = await conn.fetch(
        "SELECT id, body::text AS body, account_id, session_id, request_number, rating_group, usage_type, units, "
        "allowance_units, amount_minor, currency, usage_date FROM charging_usage WHERE account_id = ANY($1::text[]) "
        "AND usage_date >= $2 AND usage_date < $3 AND session_id LIKE 'cdr:%' "
        "ORDER BY usage_date, session_id, request_number, rating_group", account_ids, since, before)
    return [{**dict(r), "body": json_loads(r["body"])} for r in rows]


async def batch_usage_later(ctx: Context, earliest: dict[str, datetime], before: datetime) -> set[str]:
    """Of these accounts (-> a moment), those with usage rated in batch after their moment and before ``before``
    (records that arrived earlier than a late one)."""
    if not earliest:
        return set()
    conn = await repo.session_connection(ctx.session)
    accounts = sorted(earliest)
    rows = await conn.fetch(
        "SELECT e.a FROM unnest($1::text[], $2::timestamptz[]) AS e(a, t) WHERE EXISTS (SELECT 1 FROM charging_usage "
        "u WHERE u.account_id = e.a AND u.usage_date > e.t AND u.usage_date < $3 AND u.session_id LIKE 'cdr:%')",
        accounts, [earliest[a] for a in accounts], before)
    return {r["a"] for r in rows}


async def batch_usage_accounts(ctx: Context, since: datetime, before: datetime) -> list[str]:
    """The accounts with usage rated in batch in ``[since, before)``."""
    conn = await repo.session_connection(ctx.session)
    rows = await conn.fetch("SELECT DISTINCT account_id FROM charging_usage WHERE usage_date >= $1 "
                            "AND usage_date < $2 AND session_id LIKE 'cdr:%' ORDER BY account_id", since, before)
    return [r["account_id"] for r in rows]


async def batch_usage_present(ctx: Context, keys: list[str]) -> set[str]:
    """Which usage keys (see ``store_batch_usage``) are already stored."""
    if not keys:
        return set()
    return await repo.usage_keys_present(await repo.session_connection(ctx.session), keys)


# --- the service: what needs the catalog and the accounts ------------------------------------------------------
class RatingCatalog(Protocol):
    """What charging reads from the catalog: offerings, their usage prices, tariffs (compiled for rating)."""

    async def get_offering(self, ctx: Context, offering_id: str) -> dict[str, Any]: ...

    async def get_price(self, ctx: Context, price_id: str) -> dict[str, Any]: ...

    async def get_usable_price(self, ctx: Context, price_id: str) -> dict[str, Any]:
        """The price, refused (422 PRICE_INCOMPLETE) when it lacks what rating needs (amount, unit of measure)."""
        ...

    async def compiled_tariff(self, ctx: Context, tariff_id: str) -> CompiledTariff: ...


class BillingAccounts(Protocol):
    """What charging reads from accounts: a billing account's currency, credit limit and time zone."""

    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RatedUsage:
    """One rated usage record of a postpaid line, as billing reads it (amount in the currency's major unit)."""

    id: str
    product_id: str | None
    usage_type: str
    units: int
    amount: Decimal
    currency: str
    usage_date: datetime


class ChargingService:
    """Online charging's public operations. Those that rate with the catalog's prices and tariffs or read billing
    accounts are methods over the two; the others are the module's functions, reached here too so that other
    domains and the HTTP layer have one entry point."""

    def __init__(self, catalog: RatingCatalog, accounts: BillingAccounts) -> None:
        self.catalog = catalog
        self.accounts = accounts
        #: tariff versions never change (a change makes a new id), so they are compiled once per process
        self._tariffs: dict[tuple[str, str], CompiledTariff] = {}
        #: tenant -> (its charging settings, read at): the credit-control path reads them at most every 30 s
        self._settings: dict[str, tuple[dict[str, Any], float]] = {}

    get_account = staticmethod(get_account)
    accounts_for_rating = staticmethod(accounts_for_rating)
    charging_settings = staticmethod(charging_settings)
    add_bucket = staticmethod(add_bucket)
    account_of_bucket = staticmethod(account_of_bucket)
    renew_allowances = staticmethod(renew_allowances)
    renew_due_allowances = staticmethod(renew_due_allowances)
    topup = staticmethod(topup)
    adjust = staticmethod(adjust)
    take_back = staticmethod(take_back)
    transfer = staticmethod(transfer)
    reserve = staticmethod(reserve)
    release_reservation = staticmethod(release_reservation)
    set_status = staticmethod(set_status)
    set_barring = staticmethod(set_barring)
    release_expired = staticmethod(release_expired)
    store_batch_usage = staticmethod(store_batch_usage)
    store_batch_usage_columns = staticmethod(store_batch_usage_columns)
    batch_usage_present = staticmethod(batch_usage_present)
    batch_usage_rows = staticmethod(batch_usage_rows)
    batch_usage_accounts = staticmethod(batch_usage_accounts)
    batch_usage_later = staticmethod(batch_usage_later)

    async def prepaid_credit_totals(self, ctx: Context, since: datetime, before: datetime,
                                    ) -> dict[tuple[str, str], Decimal]:
        """The money credited to prepaid lines in ``[since, before)`` that no payment funded, per (currency,
        funding): what payments posts to the prepaid liability (``charging_prepaid_credit``)."""
        conn = await repo.session_connection(ctx.session)
        rows = await conn.fetch(
            "SELECT currency, funding, sum(amount_minor) AS amount_minor FROM charging_prepaid_credit "
            "WHERE created_at >= $1 AND created_at < $2 GROUP BY currency, funding", since, before)
        return {(r["currency"], r["funding"]): from_minor(int(r["amount_minor"]), r["currency"]) for r in rows}

    async def prepaid_usage_totals(self, ctx: Context, since: datetime, before: datetime) -> dict[str, Decimal]:
        """The money prepaid lines' usage took in ``[since, before)``, per currency (what payments recognizes as
        revenue out of the prepaid liability)."""
        conn = await repo.session_connection(ctx.session)
        return {r["currency"]: from_minor(int(r["amount_minor"]), r["currency"])
                for r in await repo.prepaid_usage_totals(conn, since, before)}

    async def postpaid_usage(self, ctx: Context, billing_account_id: str, since: datetime, before: datetime,
                             ) -> list[RatedUsage]:
        """The rated usage of a billing account's postpaid lines in ``[since, before)`` (what billing bills)."""
        conn = await repo.session_connection(ctx.session)
        rows = await repo.postpaid_usage(conn, billing_account_id, since, before)
        return [RatedUsage(id=r["id"], product_id=r["product_id"], usage_type=r["usage_type"], units=int(r["units"]),
                           amount=from_minor(int(r["amount_minor"]), r["currency"]), currency=r["currency"],
                           usage_date=r["usage_date"]) for r in rows]

    async def postpaid_usage_of(self, ctx: Context, billing_account_ids: list[str], since: datetime,
                                before: datetime) -> dict[str, list[RatedUsage]]:
        """``postpaid_usage`` of many billing accounts in one query, per billing account (a bill run's
        partition)."""
        out: dict[str, list[RatedUsage]] = {}
        if not billing_account_ids:
            return out
        conn = await repo.session_connection(ctx.session)
        for r in await repo.postpaid_usage_of(conn, billing_account_ids, since, before):
            out.setdefault(r["billing_account_id"], []).append(RatedUsage(
                id=r["id"], product_id=r["product_id"], usage_type=r["usage_type"], units=int(r["units"]),
                amount=from_minor(int(r["amount_minor"]), r["currency"]), currency=r["currency"],
                usage_date=r["usage_date"]))
        return out

    async def itemized_usage(self, ctx: Context, usage_ids: list[str]) -> list[dict[str, Any]]:
        """The records ``usage_ids`` for an itemized bill, in time order: ``usageDate`` (ISO, UTC), ``productId``,
        ``usageType``, ``units`` (base units: seconds, bytes, events), ``allowanceUnits`` (of them, paid by an
        allowance), ``amount`` (a decimal string in ``currency``) and ``detail`` (called party, destination, APN,
        roaming zone: what tells one record from another). Plain values: a document worker process renders them."""
        if not usage_ids:
            return []
        conn = await repo.session_connection(ctx.session)
        out = []
        for r in await repo.itemized_usage(conn, usage_ids):
            chars = r["chars"]
            if isinstance(chars, str):
                chars = json_loads(chars)
            named = {c.get("name"): c.get("value") for c in chars or [] if isinstance(c, dict)}
            detail = " · ".join(str(named[k]) for k in ("calledParty", "destinationZone", "apn", "roamingZone")
                                if named.get(k))
            out.append({"id": r["id"], "usageDate": format_datetime(r["usage_date"]), "productId": r["product_id"],
                        "usageType": r["usage_type"], "units": int(r["units"]),
                        "allowanceUnits": int(r["allowance_units"]),
                        "amount": str(from_minor(int(r["amount_minor"]), r["currency"])), "currency": r["currency"],
                        "detail": detail})
        return out

    async def prepaid_products(self, ctx: Context, product_ids: list[str]) -> set[str]:
        """Which of these products are prepaid lines: their periodic fees are taken from their money at renewal
        (``renew_allowances``), so billing does not bill them."""
        if not product_ids:
            return set()
        conn = await repo.session_connection(ctx.session)
        rows = await conn.fetch("SELECT product_id FROM charging_account WHERE payment_type = 'prepaid' AND "
                                "product_id = ANY($1::text[])", product_ids)
        return {r["product_id"] for r in rows}

    async def compile_plan(self, ctx: Context, offering_id: str) -> dict[str, Any]:
        """usage type -> rating entry, from the offering's usage prices (bundled offerings included)."""
        catalog = self.catalog
        offering = await catalog.get_offering(ctx, offering_id)
        plan: dict[str, Any] = {}
        for ref in offering.get("productOfferingPrice") or []:
            price = await catalog.get_usable_price(ctx, ref["id"])
            if price.get("priceType") == "usage":
                plan.setdefault(price.get("usageType") or "data", plan_entry(price))
            elif price.get("priceType") == "recurring" and (price.get("price") or {}).get("value") is not None:
                # the periodic fees: a prepaid line pays them from its money at each renewal (a month)
                # (other periods are billed on the line's account: ``pricing.cycles.monthly_price``)
                if monthly_price(price):
                    plan.setdefault(FEES, []).append({
                        "priceId": price.get("id"), "name": price.get("name"),
                        "amount": str(to_decimal(price["price"]["value"])),
                        "currency": price["price"].get("unit") or "EUR"})
        return plan

    async def compiled_tariff(self, db: Database, tenant_id: str, tariff_id: str, base_url: str) -> CompiledTariff:
        """Tariff versions never change (a change makes a new id), so they are cached per process."""
        key = (tenant_id, tariff_id)
        hit = self._tariffs.get(key)
        if hit is None:
            async with db.transaction(tenant_id) as session:
                hit = await self.catalog.compiled_tariff(system_context(session, tenant_id, base_url), tariff_id)
            self._tariffs[key] = hit
        return hit

    async def settings(self, db: Database, tenant_id: str, base_url: str = "") -> dict[str, Any]:
        """The tenant's charging settings, cached per process for ``SETTINGS_CACHE_SECONDS`` (a change applies to
        sessions starting after that; the node that made the change applies it at once)."""
        hit = self._settings.get(tenant_id)
        if hit is not None and time.monotonic() - hit[1] < SETTINGS_CACHE_SECONDS:
            return hit[0]
        async with db.transaction(tenant_id) as session:
            value = await charging_settings(system_context(session, tenant_id, base_url))
        self._settings[tenant_id] = (value, time.monotonic())
        return value

    async def set_settings(self, ctx: Context, changes: dict[str, Any]) -> dict[str, Any]:
        value = await set_charging_settings(ctx, changes)
        self._settings.pop(ctx.principal.tenant_id, None)
        return value

    async def resolve_rate(self, db: Database, tenant_id: str, account: dict[str, Any], usage_type: str,
                           ccr: CreditControlRequest, base_url: str) -> dict[str, Any] | None:
        """The rate of a session or event, carrying the destination (called party or APN) it was rated for: the rate
        is kept with the reservation, so usage debited by later requests of the session names the destination too."""
        rate = await self._resolve_rate(db, tenant_id, account, usage_type, ccr, base_url)
        info = ccr.serviceInformation
        if rate is not None and info is not None:
            rate = {**rate, **{k: v for k, v in (("calledParty", info.calledParty), ("apn", info.apn)) if v}}
        return rate

    async def _resolve_rate(self, db: Database, tenant_id: str, account: dict[str, Any], usage_type: str,
                            ccr: CreditControlRequest, base_url: str) -> dict[str, Any] | None:
        """The rate of a session's usage: the catalog usage price, through its tariff (destination zone by longest
        prefix, time band in the account's time zone at the session start, roaming zone) when it has one."""
        entry = account["plan"].get(usage_type)
        if entry is None:
            return None
        info = ccr.serviceInformation
        direction = "terminating" if info is not None and info.roleOfNode == "TERMINATING_ROLE" else "originating"
        if direction == "terminating":  # an incoming call: rated by who calls, if known
            destination = info.callingParty if info else None
        else:
            destination = info.calledParty if info else None
        moment = ccr.eventTimestamp or utcnow()
        if moment.tzinfo is None:  # Event-Timestamp is UTC (NTP time) in Diameter
            moment = moment.replace(tzinfo=UTC)
        band_change = "start"
        if entry.get("tariffId") and usage_type in ("voice", "video"):
            band_change = (await self.settings(db, tenant_id, base_url))["bandChange"]
        try:
            tariff = await self.compiled_tariff(db, tenant_id, entry["tariffId"], base_url) \
                if entry.get("tariffId") else None
            return choose_rate(entry, usage_type=usage_type, product_id=account.get("product_id"), tariff=tariff,
                               destination=destination, direction=direction,
                               visited_country=info.visitedCountry if info else None,
                               visited_network=info.visitedNetwork if info else None, moment=moment,
                               time_zone=account.get("time_zone"), band_change=band_change)
        except ValueError:  # NoRate, and a tariff that cannot rate this moment or country
            return None

    async def open_account(self, ctx: Context, *, subscriber: str, payment_type: str, currency: str | None = None,
                           product_id: str | None = None, offering_id: str | None = None,
                           billing_account_id: str | None = None, party_id: str | None = None,
                           party_type: str = "Individual",
                           credit_limit: Decimal | None = None, time_zone: str | None = None,
                           initial_balance: Decimal = Decimal(0), plan: dict[str, Any] | None = None,
                           quota_validity_seconds: int = 300, low_balance: Decimal | None = None,
                           period_start: datetime | None = None,
                           product_prices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create the OCS account of an activated subscription: its main money bucket (prepaid: stops at zero;
        postpaid: at minus the billing account's credit limit) and this period's allowance buckets from the catalog.

        ``currency``, ``credit_limit`` and ``time_zone`` default to the billing account's. Raises ``SubscriberExists``
        when the subscriber already has an account.
        """
        if payment_type not in ("prepaid", "postpaid"):
            raise InvalidBalanceAction(f"payment type '{payment_type}' is not prepaid or postpaid")
        if party_type not in ("Individual", "Organization"):
            raise InvalidBalanceAction(f"party type '{party_type}' is not Individual or Organization")
        if billing_account_id and (currency is None or (payment_type == "postpaid" and credit_limit is None)):
            ba = await self.accounts.get_billing_account(ctx, billing_account_id)
            currency = currency or ba.get("currency")
            if credit_limit is None and ba.get("creditLimit"):
                credit_limit = to_decimal(ba["creditLimit"]["value"])
            time_zone = time_zone or (ba.get("billCycle") or {}).get("timeZone")
        currency = currency or "EUR"
        if not is_currency(currency):
            raise InvalidBalanceAction(f"'{currency}' is not an ISO 4217 currency")
        if plan is None:
            plan = await self.compile_plan(ctx, offering_id) if offering_id else {}
        if product_prices:  # the fees as the product was sold (an order's prices): its quantity, its discounts
            plan = sold_fees(plan, product_prices, (period_start or utcnow()).date())
        account_id = str(uuid.uuid4())
        account: dict[str, Any] = {
            "id": account_id, "subscriber": subscriber_key(subscriber), "product_id": product_id,
            "offering_id": offering_id, "billing_account_id": billing_account_id, "party_id": party_id,
            "party_type": party_type,
            "payment_type": payment_type, "currency": currency, "time_zone": time_zone or "UTC", "plan": plan,
            "quota_validity_seconds": quota_validity_seconds,
            "low_balance_minor": to_minor(low_balance, currency) if low_balance is not None else 0,
        }
        conn = await repo.session_connection(ctx.session)
        if not await repo.insert_account(conn, account):
            raise SubscriberExists(f"subscriber '{account['subscriber']}' already has a charging account")
        if payment_type == "prepaid":
            lower = 0
        else:
            lower = -to_minor(credit_limit, currency) if credit_limit is not None else -UNLIMITED
        await repo.insert_bucket(conn, {
            "id": str(uuid.uuid4()), "account_id": account["id"], "unit": "money", "amount": 0, "lower_limit": lower,
            "priority": MAIN_PRIORITY, "source": "main", "source_key": "main",
            "body": bucket_body(account, name=f"Main balance ({payment_type})", unit="money", valid_from=None,
                                valid_to=None, description="Prepaid credit" if payment_type == "prepaid" else
                                "Postpaid usage within the credit limit"),
        })
        if initial_balance:  # first: a prepaid line's first period fee is paid from it
            await topup(ctx, account_id, to_minor(initial_balance, currency), reason="initial balance",
                        funding="goodwill")
        await renew_allowances(ctx, account_id, period_start or utcnow())
        return await get_account(ctx, account_id)

    async def payment_type_of(self, ctx: Context, offering_id: str | None) -> str:
        """Prepaid when the offering (or one of its categories) says so by name; postpaid otherwise (a hint for
        activation when the order does not carry the payment type)."""
        if not offering_id:
            return "prepaid"
        offering = await self.catalog.get_offering(ctx, offering_id)
        names = [offering.get("name") or ""] + [c.get("name") or "" for c in offering.get("category") or []]
        return "prepaid" if any("prepaid" in n.lower() for n in names) else "postpaid"

    async def retire_subscriber(self, ctx: Context, account_id: str) -> None:
        """A closed line's number goes to another line (back from its quarantine in the pool): the closed account
        keeps its buckets, usage and history under a retired key (``<number>~<account id prefix>``, never a
        number), and the number is free for the new line's account. Only a closed account lets its number go."""
        conn = await repo.session_connection(ctx.session)
        account = await repo.lock_account(conn, account_id=account_id)
        if account is None:
            raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
        if account["status"] != "closed":
            raise InvalidBalanceAction(f"charging account '{account_id}' is {account['status']}: only a closed "
                                       "line lets its number go")
        await conn.execute("UPDATE charging_account SET subscriber = $2, version = version + 1 WHERE id = $1",
                           account_id, f"{account['subscriber']}~{account_id[:8]}")

    async def link_product(self, ctx: Context, account_id: str, product_id: str) -> None:
        """Name the product a line's account charges for, once (activation opens the account before the product is
        recorded): billing asks which products are prepaid lines (``prepaid_products``) and rated usage names its
        product. An account naming a product already keeps it. The version moves: a charging node holding the
        account reloads it."""
        conn = await repo.session_connection(ctx.session)
        await conn.execute("UPDATE charging_account SET product_id = $2, version = version + 1 "
                           "WHERE id = $1 AND product_id IS NULL", account_id, product_id)

    async def move_to_billing_account(self, ctx: Context, account_id: str, billing_account_id: str) -> None:
        """A line transferred to another billing account (a product order's transfer, at its completion): its
        usage is billed to that account from now on (billing reads a billing account's postpaid usage by its lines),
        a postpaid line's money stops at that account's credit limit, and its buckets name it as their
        ``partyAccount``. The account must be billed in the line's currency (ordering checks it too)."""
        conn = await repo.session_connection(ctx.session)
        account = await repo.lock_account(conn, account_id=account_id)
        if account is None:
            raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
        target = await self.accounts.get_billing_account(ctx, billing_account_id)
        if target.get("currency") and target["currency"] != account["currency"]:
            raise InvalidBalanceAction(f"billing account '{billing_account_id}' is billed in {target['currency']}, "
                                       f"the line's money is in {account['currency']}")
        await conn.execute("UPDATE charging_account SET billing_account_id = $2, version = version + 1 WHERE id = $1",
                           account_id, billing_account_id)
        await conn.execute(
            "UPDATE charging_bucket SET body = jsonb_set(body, '{partyAccount}', $2::jsonb) "
            "WHERE account_id = $1 AND body ? 'partyAccount'", account_id,
            json_dumps({"id": billing_account_id, "@referredType": "BillingAccount"}))
        limit = (target.get("creditLimit") or {}).get("value")
        if account["payment_type"] == "postpaid" and limit is not None:
            await conn.execute("UPDATE charging_bucket SET lower_limit = $2 WHERE account_id = $1 AND "
                               "source = 'main' AND unit = 'money'", account_id,
                               -to_minor(to_decimal(limit), account["currency"]))

    async def change_offering(self, ctx: Context, account_id: str, offering_id: str) -> None:
        """Rate with another offering's usage prices from now on (sessions already open keep their rate)."""
        conn = await repo.session_connection(ctx.session)
        if await repo.lock_account(conn, account_id=account_id) is None:
            raise ChargingAccountNotFound(f"charging account '{account_id}' not found")
        await repo.set_plan(conn, account_id, offering_id, await self.compile_plan(ctx, offering_id))

    async def credit_control(self, db: Database, tenant_id: str, ccr: CreditControlRequest,
                             base_url: str) -> dict[str, Any]:
        """Answer one credit-control request: one atomic write of everything it changes (balances, reservations,
        session, its stored answer, usage records, events). A repeated request (same session id and request number)
        gets the stored answer and is charged once."""
        usage_type, refused = precheck(ccr)
        if refused is not None:
            return refused
        assert usage_type is not None
        pool = await repo.charging_pool(db)
        for _ in range(OPTIMISTIC_ATTEMPTS):
            try:
                async with repo.bound_connection(pool, tenant_id) as conn:
                    return await self._handle(db, tenant_id, conn, ccr, usage_type, base_url, locked=False)
            except VersionConflict:
                continue
        # a hot account (many sessions on one balance): queue on its row lock instead of retrying
        async with repo.tenant_transaction(pool, tenant_id) as conn:
            return await self._handle(db, tenant_id, conn, ccr, usage_type, base_url, locked=True)

    async def _handle(self, db: Database, tenant_id: str, conn: Any, ccr: CreditControlRequest, usage_type: str,
                      base_url: str, *, locked: bool) -> dict[str, Any]:
        """Decide and write one request: optimistically (read without a lock, write if the account's version did not
        move: two round trips, no explicit transaction) or under the account's row lock."""
        kind = ccr.requestType
        opening = kind in ("INITIAL_REQUEST", "EVENT_REQUEST")
        subscriber = subscriber_key(ccr.subscriptionId.data) if opening and ccr.subscriptionId is not None else None
        now = time.time()
        if locked:
            if opening:
                account = await repo.lock_account(conn, subscriber=subscriber)
            else:
                account = await repo.lock_account(conn, session_id=ccr.sessionId)
            state = await repo.load_state(conn, account["id"], ccr.sessionId, ccr.requestNumber) if account else None
        else:
            state = await repo.read_for_request(conn, subscriber=subscriber, session_id=ccr.sessionId,
                                                request_number=ccr.requestNumber)
            account = state["account"] if state else None
        if account is None or state is None:
            if opening:
                return _answer(ccr, rc.USER_UNKNOWN, message="unknown subscriber")
            return _answer(ccr, rc.UNKNOWN_SESSION_ID, message="unknown session")
        return await self.decide(db, tenant_id, conn, ccr, usage_type, base_url, account, state, now)

    async def decide(self, db: Database, tenant_id: str, conn: Any, ccr: CreditControlRequest, usage_type: str,
                     base_url: str, account: dict[str, Any], state: dict[str, Any], now: float) -> dict[str, Any]:
        """Decide one request on the account's state (as ``repo.read_for_request`` gives it) and write its changes
        through ``conn``: a connection, or a ``WriteCapture`` for a caller that writes them itself (the charging
        node's group commit)."""
        kind = ccr.requestType
        opening = kind in ("INITIAL_REQUEST", "EVENT_REQUEST")
        if state["stored"] is not None:
            # a repeat gets the answer it had, charged once — but only the subscriber it was given to: another
            # subscriber's request reusing the session id neither reads it nor uses the service unpaid
            answer = dict(state["stored"])
            owner = answer.pop(ANSWER_OWNER, None)
            if owner is None or owner == account["id"]:
                return answer
            return _answer(ccr, rc.INVALID_AVP_VALUE, message="the session id is another subscriber's")
        if account["status"] != "active":
            return _answer(ccr, rc.END_USER_SERVICE_DENIED, message=f"account is {account['status']}")
        if account.get("barred") and opening:  # a partial bar: the barred services are denied, the others served
            info = ccr.serviceInformation
            code = barring_code(usage_type, info is not None and info.roleOfNode == "TERMINATING_ROLE")
            if code in account["barred"]:
                return _answer(ccr, rc.END_USER_SERVICE_DENIED, message=f"{code} is barred on this line")
        ledger = Ledger.load(account, state["buckets"], state["reservations"], now)
        ledger.expire()
        session = state["session"]
        if kind == "EVENT_REQUEST":
            return await self._event(db, tenant_id, conn, ccr, account, ledger, usage_type, session, base_url)
        if kind == "INITIAL_REQUEST":
            if session is not None:
                return _answer(ccr, rc.INVALID_AVP_VALUE, message="the session already exists")
            return await self._initial(db, tenant_id, conn, ccr, account, ledger, usage_type, base_url)
        assert session is not None
        if session["state"] != "open":
            return _answer(ccr, rc.UNKNOWN_SESSION_ID, message=f"the session is {session['state']}")
        if session["expires_at"] <= now:
            ledger.expire(session_pk=session["id"])
            await _write(conn, account, buckets=_bucket_changes(ledger),
                         reservation_updates=_reservation_updates(ledger),
                         session=[{"session_id": ccr.sessionId, "state": "expired", "last": session["last"],
                                   "service_context": ccr.serviceContextId, "info": session["info"],
                                   "expires_at": session["expires_at"]}])
            return _answer(ccr, rc.UNKNOWN_SESSION_ID, message="the session expired")
        if ccr.requestNumber != session["last"] + 1:
            return _answer(ccr, rc.INVALID_AVP_VALUE, message=f"requestNumber {ccr.requestNumber} is out of order "
                                                              f"(expected {session['last'] + 1})")
        return await self._update(db, tenant_id, conn, ccr, account, ledger, usage_type, session, base_url)

    async def _initial(self, db: Database, tenant_id: str, conn: Any, ccr: CreditControlRequest,
                       account: dict[str, Any], ledger: Ledger, usage_type: str, base_url: str) -> dict[str, Any]:
        msccs = []
        rate = None
        if ccr.multipleServicesCreditControl:
            rate = await self.resolve_rate(db, tenant_id, account, usage_type, ccr, base_url)
        for mscc in ccr.multipleServicesCreditControl:
            if rate is None:
                msccs.append({"ratingGroup": mscc.ratingGroup, "resultCode": rc.RATING_FAILED})
                continue
            res = ledger.open_reservation(None, mscc.ratingGroup, usage_type, rate)
            msccs.append(await _grant_mscc(ledger, res, mscc, usage_type))
        result = _overall(msccs)
        info = {"usageType": usage_type, "rate": rate}
        answer = _answer(ccr, result, msccs)
        return await _finish(conn, ccr, account, ledger, answer,
                             _session_row(ccr, "open" if result == rc.SUCCESS else "closed", ledger, info), base_url)

    async def _update(self, db: Database, tenant_id: str, conn: Any, ccr: CreditControlRequest, account: dict[str, Any],
                      ledger: Ledger, usage_type: str, session: dict[str, Any], base_url: str) -> dict[str, Any]:
        terminating = ccr.requestType == "TERMINATION_REQUEST"
        msccs = []
        for mscc in ccr.multipleServicesCreditControl:
            res = ledger.reservation(session["id"], mscc.ratingGroup)
            if res is None:
                rate = session["info"].get("rate") or await self.resolve_rate(db, tenant_id, account, usage_type, ccr,
                                                                         base_url)
                if rate is None:
                    msccs.append({"ratingGroup": mscc.ratingGroup, "resultCode": rc.RATING_FAILED})
                    continue
                res = ledger.open_reservation(session["id"], mscc.ratingGroup, usage_type, rate)
            used = mscc.usedServiceUnit.amount(usage_type) if mscc.usedServiceUnit is not None else None
            ledger.debit(res, used or 0)
            if terminating:
                res.state = "closed"
                msccs.append({"ratingGroup": mscc.ratingGroup, "resultCode": rc.SUCCESS})
            else:
                msccs.append(await _grant_mscc(ledger, res, mscc, usage_type))
        if terminating:
            for res in ledger.reservations:
                if res.session_pk == session["id"] and res.state == "open":
                    ledger.release(res)
                    res.state = "closed"
        answer = _answer(ccr, _overall(msccs) if not terminating else rc.SUCCESS, msccs)
        return await _finish(conn, ccr, account, ledger, answer,
                             _session_row(ccr, "closed" if terminating else "open", ledger, session["info"]), base_url)

    async def _event(self, db: Database, tenant_id: str, conn: Any, ccr: CreditControlRequest, account: dict[str, Any],
                     ledger: Ledger, usage_type: str, session: dict[str, Any] | None, base_url: str) -> dict[str, Any]:
        if session is not None:
            return _answer(ccr, rc.INVALID_AVP_VALUE, message="the session id belongs to a session")
        mscc = ccr.multipleServicesCreditControl[0]
        unit = mscc.requestedServiceUnit or mscc.usedServiceUnit
        units = unit.amount(usage_type) if unit is not None else None
        if units is None:
            units = 1
        rate = await self.resolve_rate(db, tenant_id, account, usage_type, ccr, base_url)
        if rate is None:
            answer = _answer(ccr, rc.RATING_FAILED, [{"ratingGroup": mscc.ratingGroup, "resultCode": rc.RATING_FAILED}])
            return await _finish(conn, ccr, account, ledger, answer, None, base_url)
        result = ledger.charge_event(mscc.ratingGroup, usage_type, units, rate)
        out: dict[str, Any] = {"ratingGroup": mscc.ratingGroup, "resultCode": result}
        extra: dict[str, Any] = {}
        if result == rc.SUCCESS:
            out["grantedServiceUnit"] = {_unit_key(usage_type): units}
            debit = ledger.debits[-1]
            extra["costInformation"] = {"unitValue": from_minor(debit.amount_minor, rate["currency"]),
                                        "currencyCode": rate["currency"],
                                        "currencyNumericExponent": MINOR_UNITS[rate["currency"]]}
        answer = _answer(ccr, result, [out], **extra)
        return await _finish(conn, ccr, account, ledger, answer, None, base_url)


__all__ = ["API", "USAGE_API", "BillingAccounts", "ChargingService", "RatingCatalog", "add_bucket", "add_months",
           "adjust", "get_account", "release_expired", "release_reservation", "renew_allowances", "reserve", "topup",
           "transfer"]

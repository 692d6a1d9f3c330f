"""Live prices of cart and order items, from the catalog's offering prices.

Per item: every one-time and recurring price of the offering (times the quantity), with the discounts that
alter them (``priceType: discount`` with a ``popRelationship`` to the price they discount: a percentage or an
amount, for an application duration), and the coupons (a discount of an amount linked to no price). Usage prices
are charged later by rating and charging, not at order time. Totals: one per price type (and recurring period),
net of the alterations, tax excluded and included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openbss.catalog.service import ProductCatalog
from openbss.ordering.errors import InvalidOrder
from openbss.platform.tmf.resource import Context
from openbss.pricing.money import round_money

CHARGED = ("oneTime", "recurring")
MAX_QUANTITY = 1_000_000


def item_quantity(where: str, item: dict[str, Any]) -> int:
    """An item's ``quantity``: a whole number from 1 (the default when absent); anything else (2.5, 0, -1, "2")
    would multiply the item's prices by it, so it is refused naming the item."""
    value = item.get("quantity")
    if value is None:
        return 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise InvalidOrder(f"{where}.quantity: {value!r} is not a whole number from 1 to {MAX_QUANTITY:,}",
                           code="INVALID_QUANTITY")
    return value


def _money(unit: str, amount: Decimal) -> dict[str, Any]:
    return {"unit": unit, "value": round_money(amount, unit)}


def _price(unit: str, net: Decimal, rate: Decimal) -> dict[str, Any]:
    return {"dutyFreeAmount": _money(unit, net), "taxIncludedAmount": _money(unit, net * (1 + rate / 100)),
            "taxRate": rate}


def _rate(pop: dict[str, Any]) -> Decimal:
    for t in pop.get("tax") or []:
        if t.get("taxRate") is not None:
            return Decimal(str(t["taxRate"]))
    return Decimal(0)


async def offering_prices(ctx: Context, catalog: ProductCatalog, offering: dict[str, Any], quantity: int = 1,
                          ) -> list[dict[str, Any]]:
    """The item prices (TMF622 OrderPrice / TMF663 CartPrice shape) of one offering. Every price of the offering
    (usage prices too, which charging rates later) must be complete: a price written with only its name makes the
    order or cart answer 422 (``PRICE_INCOMPLETE``) naming the price and what it lacks."""
    pops = [await catalog.get_usable_price(ctx, ref["id"]) for ref in offering.get("productOfferingPrice") or []
            if ref.get("id")]
    by_id = {p["id"]: p for p in pops}
    out: list[dict[str, Any]] = []
    q = Decimal(quantity)
    # a discount of an amount linked to none of the offering's prices is a coupon of the product: billing takes it
    # off each bill while it applies, allocated across the product's charges (billing/service.py ``_discounts``)
    for disc in pops:
        if disc.get("priceType") != "discount" or disc.get("percentage") is not None or not disc.get("price"):
            continue
        if any(r.get("id") in by_id for r in disc.get("popRelationship") or []):
            continue
        unit = disc["price"].get("unit") or "EUR"
        coupon: dict[str, Any] = {
            "name": disc.get("name"), "priceType": "discount",
            "price": _price(unit, -Decimal(str(disc["price"].get("value") or 0)) * q, _rate(disc)),
            "productOfferingPrice": {"id": disc["id"], "href": disc.get("href"), "name": disc.get("name")}}
        duration = disc.get("applicationDuration") or {}
        if duration.get("amount"):  # (an OrderPrice has no applicationDuration: billing reads the catalog's)
            coupon["description"] = f"each bill for {duration['amount']} {duration.get('units') or 'month'}(s)"
        out.append(coupon)
    for pop in pops:
        ptype = pop.get("priceType")
        if ptype not in CHARGED:
            continue
        unit = (pop.get("price") or {}).get("unit") or "EUR"
        net = Decimal(str((pop.get("price") or {}).get("value") or 0)) * q
        rate = _rate(pop)
        entry: dict[str, Any] = {"name": pop.get("name"), "priceType": ptype, "price": _price(unit, net, rate),
                                 "productOfferingPrice": {"id": pop["id"], "href": pop.get("href"),
                                                          "name": pop.get("name")}}
        if ptype == "recurring":
            entry["recurringChargePeriod"] = pop.get("recurringChargePeriodType") or "month"
        alterations = []
        for disc in pops:
            if disc.get("priceType") != "discount":
                continue
            if not any(r.get("id") == pop["id"] for r in disc.get("popRelationship") or []):
                continue
            if disc.get("percentage") is not None:
                pct = Decimal(str(disc["percentage"]))
                off: dict[str, Any] = {"percentage": pct, **_price(unit, -net * pct / 100, rate)}
            else:  # an amount off the price (per unit of the quantity), never more than the price
                amount = Decimal(str((disc.get("price") or {}).get("value") or 0)) * q
                off = _price(unit, -min(amount, net), rate)
            alt: dict[str, Any] = {"name": disc.get("name"), "priceType": ptype, "priority": 1, "price": off,
                                   "productOfferingPrice": {"id": disc["id"], "href": disc.get("href"),
                                                            "name": disc.get("name")}}
            if disc.get("applicationDuration", {}).get("amount"):
                alt["applicationDuration"] = int(disc["applicationDuration"]["amount"])
                alt["unitOfMeasure"] = disc["applicationDuration"].get("units")
            if ptype == "recurring":
                alt["recurringChargePeriod"] = entry["recurringChargePeriod"]
            alterations.append(alt)
        if alterations:
            entry["priceAlteration"] = alterations
        out.append(entry)
    del by_id
    return out


def totals(prices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One total per price type and period, net of alterations (the first period's amount)."""
    acc: dict[tuple[str, str | None, str], list[Decimal]] = {}
    for p in prices:
        amounts = p["price"]
        unit = amounts["dutyFreeAmount"]["unit"]
        net = Decimal(str(amounts["dutyFreeAmount"]["value"]))
        gross = Decimal(str(amounts["taxIncludedAmount"]["value"]))
        for alt in p.get("priceAlteration") or []:
            net += Decimal(str(alt["price"]["dutyFreeAmount"]["value"]))
            gross += Decimal(str(alt["price"]["taxIncludedAmount"]["value"]))
        key = (p["priceType"], p.get("recurringChargePeriod"), unit)
        cur = acc.setdefault(key, [Decimal(0), Decimal(0)])
        cur[0] += net
        cur[1] += gross
    out = []
    for (ptype, period, unit), (net, gross) in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        entry: dict[str, Any] = {"name": f"Total {ptype}", "priceType": ptype,
                                 "price": {"dutyFreeAmount": _money(unit, net),
                                           "taxIncludedAmount": _money(unit, gross)}}
        if period:
            entry["recurringChargePeriod"] = period
        out.append(entry)
    return out

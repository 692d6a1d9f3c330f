"""Discounts of an offering priced on an order item (ordering/pricing.py): a percentage or an amount off the price
it is linked to (never more than that price), and an amount linked to no price — a coupon of the product, which
billing takes off each bill while it applies (tests/billing/test_discounts.py)."""

from __future__ import annotations

from typing import Any

from openbss.ordering.pricing import offering_prices, totals


class Catalog:
    def __init__(self, prices: list[dict[str, Any]]) -> None:
        self.prices = {p["id"]: p for p in prices}

    async def get_usable_price(self, ctx: Any, price_id: str) -> dict[str, Any]:
        return self.prices[price_id]


def eur(value: float) -> dict[str, Any]:
    return {"unit": "EUR", "value": value}


PRICES = [
    {"id": "fee", "name": "Monthly fee", "priceType": "recurring", "recurringChargePeriodType": "month",
     "price": eur(30)},
    {"id": "setup", "name": "Activation", "priceType": "oneTime", "price": eur(10)},
    {"id": "half", "name": "Half price for 3 months", "priceType": "discount", "percentage": 50,
     "applicationDuration": {"amount": 3, "units": "month"}, "popRelationship": [{"id": "fee"}]},
    {"id": "fiver", "name": "5 off the fee", "priceType": "discount", "price": eur(5),
     "popRelationship": [{"id": "fee"}]},
    {"id": "free-setup", "name": "Activation offered", "priceType": "discount", "price": eur(50),
     "popRelationship": [{"id": "setup"}]},
    {"id": "coupon", "name": "Welcome coupon", "priceType": "discount", "price": eur(3),
     "applicationDuration": {"amount": 2, "units": "month"}},
]


async def test_discounts_of_an_amount_and_a_coupon_are_priced() -> None:
    offering = {"id": "o", "productOfferingPrice": [{"id": p["id"]} for p in PRICES]}
    prices = await offering_prices(None, Catalog(PRICES), offering, quantity=2)  # type: ignore[arg-type]
    by_name = {p["name"]: p for p in prices}
    fee = by_name["Monthly fee"]
    offs = {a["name"]: a for a in fee["priceAlteration"]}
    assert fee["price"]["dutyFreeAmount"]["value"] == 60
    assert offs["Half price for 3 months"]["price"]["dutyFreeAmount"]["value"] == -30
    assert offs["Half price for 3 months"]["applicationDuration"] == 3
    assert offs["5 off the fee"]["price"]["dutyFreeAmount"]["value"] == -10  # 5 per unit, 2 units
    assert "percentage" not in offs["5 off the fee"]["price"]
    # an amount off never takes a price below zero
    [setup_off] = by_name["Activation"]["priceAlteration"]
    assert setup_off["price"]["dutyFreeAmount"]["value"] == -20
    # the coupon: its own price of the product, with its duration, as billing reads it
    coupon = by_name["Welcome coupon"]
    assert coupon["priceType"] == "discount" and coupon["price"]["dutyFreeAmount"] == {"unit": "EUR", "value": -6}
    assert coupon["description"] == "each bill for 2 month(s)"
    assert coupon["productOfferingPrice"]["id"] == "coupon"
    total = {t["priceType"]: t["price"]["dutyFreeAmount"]["value"] for t in totals(prices)}
    assert total == {"recurring": 20, "oneTime": 0, "discount": -6}

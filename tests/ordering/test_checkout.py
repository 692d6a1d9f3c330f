"""Checkout closes the cart: one order per cart, whatever the client sends twice or at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.ordering.helpers import CART, PO, customer, setup_world


@pytest.fixture(scope="module")
async def world(rt: Any, app: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        w = await setup_world(rt, client, numbers=20, sims=20)
        w["c"] = await customer(client, w["h"], 1)
    return w


async def _cart(client: httpx.AsyncClient, w: dict[str, Any]) -> dict[str, Any]:
    rp = [{"id": w["c"]["customer"]["id"], "@referredType": "Customer", "role": "customer"}]
    r = await client.post(CART, json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "productOffering": {"id": w["offers"]["Fiber 1 Gbps"]["id"]},
         "product": {"productCharacteristic": [{"name": "staticIp", "value": False}]}}]}, headers=w["h"])
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _body(w: dict[str, Any]) -> dict[str, Any]:
    return {"billingAccount": {"id": w["c"]["account"]["id"]}, "channel": [{"id": "web"}]}


async def _orders(client: httpx.AsyncClient, w: dict[str, Any]) -> int:
    r = await client.get(PO, headers=w["h"], params={"limit": 1})
    return int(r.headers["X-Total-Count"])


async def test_second_checkout_is_409_with_the_first_order(client: Any, world: dict[str, Any]) -> None:
    w = world
    cart = await _cart(client, w)
    before = await _orders(client, w)
    r = await client.post(f"{CART}/{cart['id']}/checkout", json=_body(w), headers=w["h"])
    assert r.status_code == 201, r.text
    first = r.json()
    # the same checkout again, without an Idempotency-Key: no second order
    r = await client.post(f"{CART}/{cart['id']}/checkout", json=_body(w), headers=w["h"])
    assert r.status_code == 409, r.text
    err = r.json()
    assert err["code"] == "CART_CHECKED_OUT"
    assert first["id"] in err["message"] and first["href"] in err["message"]
    assert await _orders(client, w) == before + 1
    # the cart is closed: it can no longer be changed
    r = await client.patch(f"{CART}/{cart['id']}", json={"cartItem": []}, headers=w["h"])
    assert r.status_code == 409 and r.json()["code"] == "CART_CHECKED_OUT", r.text
    r = await client.get(f"{CART}/{cart['id']}", headers=w["h"])
    assert r.json()["validFor"]["endDateTime"] <= first["orderDate"]


async def test_retry_with_the_same_idempotency_key_returns_the_order(client: Any, world: dict[str, Any]) -> None:
    w = world
    cart = await _cart(client, w)
    h = {**w["h"], "Idempotency-Key": f"checkout-{cart['id']}"}
    r1 = await client.post(f"{CART}/{cart['id']}/checkout", json=_body(w), headers=h)
    r2 = await client.post(f"{CART}/{cart['id']}/checkout", json=_body(w), headers=h)
    assert r1.status_code == 201 and r2.status_code == 201, (r1.text, r2.text)
    assert r1.json()["id"] == r2.json()["id"]


async def test_concurrent_checkouts_make_one_order(app: Any, world: dict[str, Any]) -> None:
    w = world
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        cart = await _cart(client, w)
        before = await _orders(client, w)
        results = await asyncio.gather(*[
            client.post(f"{CART}/{cart['id']}/checkout", json=_body(w), headers=w["h"]) for _ in range(5)])
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 409, 409, 409, 409], [r.text for r in results]
        order = next(r.json() for r in results if r.status_code == 201)
        assert all(order["id"] in r.json()["message"] for r in results if r.status_code == 409)
        assert await _orders(client, w) == before + 1


async def test_an_item_quantity_is_a_whole_number_from_one(client: Any, world: dict[str, Any]) -> None:
    w = world
    rp = [{"id": w["c"]["customer"]["id"], "@referredType": "Customer", "role": "customer"}]
    offer = {"id": w["offers"]["Fiber 1 Gbps"]["id"]}
    carts = int((await client.get(CART, headers=w["h"], params={"limit": 1})).headers["X-Total-Count"])
    for bad in (2.5, 0, -1):
        r = await client.post(CART, headers=w["h"], json={"relatedParty": rp, "cartItem": [
            {"id": "1", "action": "add", "quantity": 1, "productOffering": offer},
            {"id": "2", "action": "add", "quantity": bad, "productOffering": offer}]})
        assert r.status_code == 400, (bad, r.text)
        assert "cartItem[1].quantity" in r.json()["message"], r.json()
        if bad in (0, -1):  # a whole number of the schema's type, but not one a price can be multiplied by
            assert r.json()["code"] == "INVALID_QUANTITY", r.json()
    assert int((await client.get(CART, headers=w["h"], params={"limit": 1})).headers["X-Total-Count"]) == carts
    # a whole quantity multiplies the item's one-time and recurring prices
    one = (await client.post(CART, headers=w["h"], json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "productOffering": offer}]})).json()
    three = (await client.post(CART, headers=w["h"], json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "quantity": 3.0, "productOffering": offer}]})).json()
    assert one["cartTotalPrice"] and len(one["cartTotalPrice"]) == len(three["cartTotalPrice"])
    for a, b in zip(one["cartTotalPrice"], three["cartTotalPrice"], strict=True):
        assert b["price"]["dutyFreeAmount"]["value"] == 3 * a["price"]["dutyFreeAmount"]["value"]

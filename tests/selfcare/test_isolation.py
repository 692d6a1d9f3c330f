"""A customer can never read or change another customer's data through the portal, whatever the request says."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from openbss.platform.auth import issue_token
from tests.conftest import bearer
from tests.selfcare.portal import csrf, new_customer, next_matching, sign_in


@pytest.fixture
async def two(rt: Any, portal_tenant: str, portal_client: httpx.AsyncClient,
              other_client: httpx.AsyncClient) -> dict[str, Any]:
    ua, ub = next_matching(), next_matching()
    a = await new_customer(rt, portal_tenant, email=ua.email, given="Alice", family="Ames", balance="11.00")
    b = await new_customer(rt, portal_tenant, email=ub.email, given="Bruno", family="Baker", balance="99.00")
    await sign_in(portal_client, ua)
    await sign_in(other_client, ub)
    return {"a": a, "b": b}


async def test_each_customer_sees_only_their_own_data(portal_client: httpx.AsyncClient,
                                                      other_client: httpx.AsyncClient, two: dict[str, Any]) -> None:
    a, b = two["a"], two["b"]
    me = (await portal_client.get("/selfcare/api/customer")).json()
    assert me["customerId"] == a["customer_id"] and me["name"]["familyName"] == "Ames"
    bal = (await portal_client.get("/selfcare/api/balance")).json()
    assert [ln["msisdn"] for ln in bal["lines"]] == [a["msisdn"]] and bal["lines"][0]["money"]["remaining"] == "11.00"
    assert (await other_client.get("/selfcare/api/customer")).json()["customerId"] == b["customer_id"]


@pytest.mark.parametrize("query", [
    "?customerId={b}", "?id={b}", "?partyId={bp}", "?customer={b}&party={bp}", "?relatedParty.id={bp}",
])
async def test_ids_in_the_request_are_ignored(portal_client: httpx.AsyncClient, two: dict[str, Any],
                                              query: str) -> None:
    a, b = two["a"], two["b"]
    q = query.format(b=b["customer_id"], bp=b["party_id"])
    for path in ("/selfcare/api/customer", "/selfcare/api/balance"):
        r = await portal_client.get(path + q)
        assert r.status_code == 200
        assert b["customer_id"] not in r.text and b["msisdn"] not in r.text and "Baker" not in r.text
    assert (await portal_client.get("/selfcare/api/customer" + q)).json()["customerId"] == a["customer_id"]


async def test_tampering_with_the_update_body(portal_client: httpx.AsyncClient, other_client: httpx.AsyncClient,
                                              two: dict[str, Any]) -> None:
    b = two["b"]
    for body in ({"customerId": b["customer_id"], "phone": "+33600000000"},
                 {"id": b["customer_id"]}, {"party": {"id": b["party_id"]}}):
        r = await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client), json=body)
        assert r.status_code == 400
    assert (await other_client.get("/selfcare/api/customer")).json()["phone"] == "+33612345678"


async def test_tokens_and_cookies_cannot_be_forged_or_swapped(
        portal_tenant: str, portal_client: httpx.AsyncClient, other_client: httpx.AsyncClient,
        two: dict[str, Any]) -> None:
    b = two["b"]
    anon = httpx.AsyncClient(transport=portal_client._transport, base_url="http://testserver")
    async with anon:
        for headers in (
            {},
            {"Authorization": "Bearer " + "A" * 43},
            # staff and platform tokens are not portal sessions, even one of the customer role for B's party
            bearer(portal_tenant, "admin"),
            {"Authorization": "Bearer " + issue_token(portal_tenant, ["customer"], party=b["party_id"])},
            {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()},
        ):
            r = await anon.get("/selfcare/api/customer", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["code"] in ("NOT_SIGNED_IN", "SESSION_EXPIRED")
        # a session cookie that was tampered with
        token = portal_client.cookies.get("sc_session")
        anon.cookies.set("sc_session", token[:-2] + ("AA" if not token.endswith("AA") else "BB"), path="/selfcare")
        assert (await anon.get("/selfcare/api/customer")).status_code == 401
    # A's session with B's CSRF token cannot write
    headers = {"X-CSRF-Token": other_client.cookies.get("sc_csrf")}
    r = await portal_client.patch("/selfcare/api/customer", headers=headers, json={"phone": "+33611111111"})
    assert r.status_code == 403 and r.json()["code"] == "CSRF_FAILED"


async def test_the_charging_calls_are_scoped_to_the_customer(portal: Any, two: dict[str, Any]) -> None:
    """Defence in depth: the token the portal uses towards the charging API is bound to the customer's party,
    so the charging API itself returns nothing of another party."""
    a, b = two["a"], two["b"]
    token = portal.charging._token("customer", a["party_id"])
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["roles"] == ["customer"] and claims["party_id"] == a["party_id"]
    buckets = await portal.charging.buckets(a["party_id"])
    assert buckets and all(r["id"] == a["party_id"] for bk in buckets for r in bk["relatedParty"])
    assert not any(b["msisdn"][1:] in json.dumps(bk) for bk in buckets)


@pytest.mark.parametrize("path", ["/selfcare/api/customer", "/selfcare/api/balance", "/selfcare/api/session",
                                  "/selfcare/api/usage/months", "/selfcare/api/usage", "/selfcare/api/usage?month=x",
                                  "/selfcare/api/usage/2026-01.pdf"])
async def test_every_read_needs_a_session_before_anything_else(portal_client: httpx.AsyncClient, path: str) -> None:
    anon = httpx.AsyncClient(transport=portal_client._transport, base_url="http://testserver")
    async with anon:
        r = await anon.get(path)
    assert r.status_code == 401 and r.json()["code"] == "NOT_SIGNED_IN", (path, r.text)

"""Segment routing: a corporate customer's data is read from and written to the corporate directory (the
machine's MariaDB), in the same shape as a residential customer's; balance and usage still come from charging."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openbss.demo.corporate import DEMO_CORPORATE_CUSTOMERS
from openbss.platform.audit import AuditRecord
from openbss.selfcare.corporate import CorporateDirectory
from tests.conftest import bearer
from tests.selfcare.mariadb import connect
from tests.selfcare.portal import CORPORATE_USER, csrf, new_customer, next_matching, sign_in

NORTHWIND = DEMO_CORPORATE_CUSTOMERS[0]


@pytest.fixture(scope="module")
async def corporate_customer(rt: Any, portal_tenant: str) -> dict[str, Any]:
    """Northwind in OpenBSS: segment corporate, pointing at its directory record; one of its lines in charging."""
    return await new_customer(rt, portal_tenant, email="unused@northwind.example", given="Northwind Logistics",
                              segment="corporate", directory_id=NORTHWIND["customerId"],
                              msisdn=NORTHWIND["products"][0]["msisdn"], payment_type="postpaid", balance="0")


async def test_corporate_profile_comes_from_the_directory(portal_client: httpx.AsyncClient,
                                                          corporate_customer: dict[str, Any]) -> None:
    r = await sign_in(portal_client, CORPORATE_USER)
    assert r.headers["location"] == "/selfcare/#/profile"  # the directory's verified email linked it
    me = (await portal_client.get("/selfcare/api/customer")).json()
    assert me["customerId"] == corporate_customer["customer_id"] and me["segment"] == "corporate"
    assert me["name"] == {"givenName": "Claire", "familyName": "Moreau", "fullName": "Claire Moreau",
                          "organization": "Northwind Logistics"}
    assert me["email"] == NORTHWIND["email"] and me["address"]["city"] == "Lyon"
    assert [p["msisdn"] for p in me["products"]] == [p["msisdn"] for p in NORTHWIND["products"]]
    assert set(me) == {"customerId", "segment", "name", "email", "emailVerified", "pendingEmail", "phone", "address",
                       "preferences", "accountState", "products"}
    # the balance is the charging system's, for the OpenBSS party of the corporate customer
    lines = (await portal_client.get("/selfcare/api/balance")).json()["lines"]
    assert [ln["msisdn"] for ln in lines] == [corporate_customer["msisdn"]] and lines[0]["paymentType"] == "postpaid"


async def test_corporate_update_is_written_to_the_directory(
        rt: Any, portal_tenant: str, client: httpx.AsyncClient, portal_client: httpx.AsyncClient,
        corporate_url: str, corporate_customer: dict[str, Any]) -> None:
    await sign_in(portal_client, CORPORATE_USER)
    r = await portal_client.patch("/selfcare/api/customer", headers=csrf(portal_client), json={
        "phone": "+33 4 72 00 00 00", "preferences": {"post": True},
        "address": {"street1": "2 quai Perrache", "street2": "", "postCode": "69002", "city": "Lyon",
                    "country": "FR"}})
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "+33472000000" and r.json()["address"]["street1"] == "2 quai Perrache"
    directory = CorporateDirectory.from_url(corporate_url)
    try:
        record = await directory.get(portal_tenant, NORTHWIND["customerId"])
    finally:
        await directory.close()
    assert record is not None and record["phone"] == "+33472000000" and record["preferences"]["post"] is True
    db = connect(corporate_url.rsplit("/", 1)[1])
    with db.cursor() as cur:
        cur.execute("SELECT actor, fields FROM corporate_change_log WHERE tenant_id = %s AND customer_id = %s "
                    "ORDER BY id DESC LIMIT 1", (portal_tenant, NORTHWIND["customerId"]))
        log = cur.fetchone()
    db.close()
    assert log["actor"].startswith("selfcare:") and "+33472000000" not in log["fields"]
    assert {"phone", "address"} <= {f.split(".")[0] for f in json.loads(log["fields"])}
    # audited in OpenBSS too (values masked); OpenBSS's own party record is untouched
    async with rt.db.transaction(portal_tenant) as session:
        audit = (await session.execute(select(AuditRecord).where(
            AuditRecord.resource_id == corporate_customer["customer_id"],
            AuditRecord.action == "selfcare-update"))).scalars().all()
    assert audit and audit[-1].changes["phone"] == {"old": "***", "new": "***"}
    org = (await client.get(f"/tmf-api/party/v4/organization/{corporate_customer['party_id']}",
                            headers=bearer(portal_tenant, "admin"))).json()
    assert "contactMedium" not in org or not org["contactMedium"]


async def test_corporate_directory_down_is_a_clear_503(rt: Any, settings: Any, portal_tenant: str, idp: Any,
                                                       portal_client: httpx.AsyncClient,
                                                       corporate_customer: dict[str, Any]) -> None:
    from openbss.selfcare.portal import close_portal
    from tests.selfcare.conftest import make_portal_app, portal_settings

    await sign_in(portal_client, CORPORATE_USER)  # linked while the directory is up
    resident = next_matching()
    await new_customer(rt, portal_tenant, email=resident.email)

    app = make_portal_app(rt, portal_settings(settings, portal_tenant, idp,
                                              "mysql://root@127.0.0.1:1/openbss_nowhere"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            await sign_in(c, CORPORATE_USER)
            r = await c.get("/selfcare/api/customer")
            assert r.status_code == 503, r.text
            assert "127.0.0.1" not in r.json()["message"] and "unavailable" in r.json()["message"]
        # residential customers are not affected
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            assert (await sign_in(c, resident)).headers["location"] == "/selfcare/#/profile"
            assert (await c.get("/selfcare/api/customer")).status_code == 200
    finally:
        await close_portal(app)

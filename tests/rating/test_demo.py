"""The demo's usage file: dropped into the watched directory, it shows up rated in TMF635 for the postpaid
customer, one record lands in suspense with its reason, and dropping it again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.charging.helpers import TMF635
from tests.conftest import bearer, make_tenant, session_services


async def test_demo_usage_file(client: Any, rt: Any, tmp_path: Path) -> None:
    from openbss.demo.catalog import seed_catalog
    from openbss.demo.charging import POSTPAID, seed_charging
    from openbss.demo.rating import UNKNOWN, drop_demo_file
    from openbss.rating.collect import collect_once

    tenant = await make_tenant(rt, "cdr")
    services = session_services()
    await seed_catalog(services, rt.db, tenant, "http://testserver")
    await seed_charging(services, rt.db, tenant, "http://testserver", owners={
        POSTPAID: {"party_id": "camille", "product_id": "camille-line"}})
    drop_demo_file(tmp_path)
    [got] = await collect_once(rt.db, services.rating.service, tenant, tmp_path, source="demo",
                               base_url="http://testserver")
    assert got.report is not None
    assert (got.report["received"], got.report["rated"], got.report["suspended"]) == (5, 4, 1), got.report
    h = bearer(tenant, "admin")
    mine = (await client.get(f"{TMF635}/usage", params={"relatedParty.id": "camille", "limit": 1000},
                             headers=bearer(tenant, "customer", party="camille"))).json()
    batch = [u for u in mine if "usageSpecification" in u]
    assert {u["usageSpecification"]["name"] for u in batch} == {"voice", "data", "roamingData", "sms"}
    suspense = (await client.get("/rating/v1/suspense", headers=h)).json()
    assert [s["record"]["msisdn"] for s in suspense] == [UNKNOWN.lstrip("+")]
    assert "no subscription uses it" in suspense[0]["reason"]
    drop_demo_file(tmp_path)  # the same day's file again
    [again] = await collect_once(rt.db, services.rating.service, tenant, tmp_path, source="demo",
                                 base_url="http://testserver")
    assert again.report is not None and again.report["duplicateFile"] is True

"""Wrong requests get a result code or a 4xx, never a 500, and leave balances untouched."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.charging.helpers import OCS, account_state, ccr, group, open_account
from tests.conftest import bearer


async def test_refusals_leave_balances_untouched(client: Any, rt: Any, tenant: str,
                                                 system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="10.00", validity=1)
    h = system_headers
    ok = await client.post(OCS, json=ccr("INITIAL_REQUEST", "b1", 0, acc["msisdn"], groups=[group(1, 60)]), headers=h)
    assert ok.json()["resultCode"] == 2001
    before = await account_state(rt, tenant, acc["id"])

    async def code(body: Any, expect_status: int = 200, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        r = await client.post(OCS, json=body, headers=headers or h, **kw) if body is not None else \
            await client.post(OCS, headers=headers or h, **kw)
        assert r.status_code == expect_status, r.text
        return r.json().get("resultCode") if expect_status == 200 else r.json()["code"]

    assert await code(ccr("INITIAL_REQUEST", "b2", 0, "+33999999999", groups=[group(1, 60)])) == 5030
    assert await code(ccr("UPDATE_REQUEST", "nope", 1, groups=[group(1, 60, used=1)])) == 5002
    assert await code(ccr("UPDATE_REQUEST", "b1", 5, groups=[group(1, 60, used=1)])) == 5004  # out of order
    assert await code(ccr("INITIAL_REQUEST", "b1", 0, acc["msisdn"], groups=[group(1, 60)])) == 2001  # replay
    assert await code(ccr("INITIAL_REQUEST", "b3", 0, groups=[group(1, 60)])) == 5005  # no subscriber
    assert await code(ccr("INITIAL_REQUEST", "b4", 0, acc["msisdn"], context="1@x", groups=[group(1, 1)])) == 5004
    assert await code(ccr("EVENT_REQUEST", "b5", 0, acc["msisdn"], groups=[group(1, 1), group(2, 1)])) == 5004
    assert await code(ccr("UPDATE_REQUEST", "b1", 1, groups=[group(1, -5, used=-1)]), 400) == \
        "INVALID_CREDIT_CONTROL_REQUEST"
    assert await code(ccr("UPDATE_REQUEST", "b1", 1, groups=[group(1, 2**70)]), 400)
    assert await code(ccr("UPDATE_REQUEST", "b1", -1), 400)
    assert await code(ccr("REAUTH", "b1", 1), 400)
    assert await code(ccr("UPDATE_REQUEST", "b\x001", 1), 400)
    # the session id prefix of usage rated from files: such a session would pass for a file's record
    r = await client.post(OCS, json=ccr("INITIAL_REQUEST", "cdr:b6", 0, acc["msisdn"], groups=[group(1, 60)]),
                          headers=h)
    assert r.status_code == 400 and "sessionId must not start with 'cdr:'" in r.text, r.text
    assert await code({**ccr("UPDATE_REQUEST", "b1", 1), "extra": 1}, 400)
    assert await code(ccr("UPDATE_REQUEST", "b1", 1, groups=[group(1), group(1)]), 400)  # rating group twice
    assert await code(None, 400, content=b"{not json", headers={**h, "content-type": "application/json"})
    assert await code(None, 400, content=b"[]", headers={**h, "content-type": "application/json"})
    assert await code(None, 415, content=b"{}", headers={**h, "content-type": "text/plain"})
    r = await client.post(OCS, json=ccr("UPDATE_REQUEST", "b1", 1), headers={})
    assert r.status_code == 401
    r = await client.post(OCS, json=ccr("UPDATE_REQUEST", "b1", 1), headers=bearer(tenant, "csr_agent"))
    assert r.status_code == 403
    after = await account_state(rt, tenant, acc["id"])
    assert (after["money"], after["money_reserved"], after["usage"]) == \
        (before["money"], before["money_reserved"], before["usage"])
    # an expired session: 5002, nothing charged, its reservation released
    await asyncio.sleep(2.2)
    assert await code(ccr("UPDATE_REQUEST", "b1", 1, groups=[group(1, 60, used=30)])) == 5002
    after = await account_state(rt, tenant, acc["id"])
    assert after["money"] == before["money"] and after["money_reserved"] == 0 and after["usage"]["n"] == 0


async def test_suspended_other_tenant_and_unknown_service(client: Any, rt: Any, tenant: str, other_tenant: str,
                                                          system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="1.00")
    # another tenant's network element does not see this subscriber (row-level security)
    r = await client.post(OCS, json=ccr("INITIAL_REQUEST", "x1", 0, acc["msisdn"], groups=[group(1, 10)]),
                          headers=bearer(other_tenant, "system"))
    assert r.json()["resultCode"] == 5030
    # a service the plan does not rate: rating failed for that group
    acc2 = await open_account(rt, tenant, balance="1.00")
    r = await client.post(OCS, json=ccr("INITIAL_REQUEST", "x2", 0, acc2["msisdn"], context="32270@3gpp.org",
                                        groups=[group(1, 1, key="serviceSpecificUnits")]), headers=system_headers)
    assert r.json()["resultCode"] == 5031

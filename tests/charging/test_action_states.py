"""TMF654 balance actions after they are applied: ``PATCH status cancelled`` reverses them exactly (or is refused
with nothing moved), ``DELETE`` never loses the record of money moved, a reservation is released when cancelled or
deleted; every cancellation is in the history, audited and announced. Buckets show the party account that
actions must name."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from tests.charging.helpers import TMF654, account_state, open_account
from tests.charging.test_contract import tmf654
from tests.conftest import bearer


def _money(acc: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in acc["buckets"] if b["unit"] == "money")


async def _bucket(client: Any, h: dict[str, str], acc: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(f"{TMF654}/bucket/{_money(acc)['id']}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _post(client: Any, h: dict[str, str], path: str, body: dict[str, Any], status: int = 201) -> Any:
    r = await client.post(f"{TMF654}/{path}", json=body, headers=h)
    assert r.status_code == status, r.text
    return r.json()


def _eur(value: Any) -> dict[str, Any]:
    return {"amount": value, "units": "EUR"}


async def _events(rt: Any, tenant: str, key: str, resource_id: str) -> list[tuple[str, dict[str, Any]]]:
    from openbss.platform.events.outbox import OutboxEvent

    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent.event_type, OutboxEvent.envelope)
                                      .order_by(OutboxEvent.id))).all()
    return [(t, e) for t, e in rows if (e.get("event") or {}).get(key, {}).get("id") == resource_id]


async def _audit(client: Any, h: dict[str, str], kind: str, resource_id: str) -> list[str]:
    r = await client.get("/audit/v1/auditRecord", params={"resourceType": kind, "resourceId": resource_id},
                         headers=h)
    return [x["action"] for x in r.json()]


async def test_buckets_show_the_party_account_actions_must_name(client: Any, rt: Any, tenant: str) -> None:
    from openbss.charging import service

    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="5.00")
    bucket = await _bucket(client, h, acc)
    tmf654("Bucket", bucket)
    # a line without a billing account: its charging account owns the bucket
    assert bucket["partyAccount"] == {"id": acc["id"], "@referredType": "ChargingAccount"}
    # a line with one: the billing account
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        billed = await service.get_account(ctx, acc["id"])
        from tests.conftest import session_services

        opened = await session_services().charging.service.open_account(
            ctx, subscriber="+33611122233", payment_type="prepaid", currency="EUR", plan={},
            billing_account_id="ba-77")
    assert billed["billing_account_id"] is None
    other = await _bucket(client, h, opened)
    assert other["partyAccount"] == {"id": "ba-77", "@referredType": "BillingAccount"}
    listed = (await client.get(f"{TMF654}/bucket", params={"partyAccount.id": acc["id"]}, headers=h)).json()
    assert [b["id"] for b in listed] == [bucket["id"]]
    listed = (await client.get(f"{TMF654}/bucket", params={"partyAccount.id": "ba-77"}, headers=h)).json()
    assert [b["id"] for b in listed] == [other["id"]]

    # an action naming another account is refused, nothing moves
    r = await client.post(f"{TMF654}/topupBalance", headers=h, json={
        "amount": _eur(10), "usageType": "monetary", "bucket": {"id": bucket["id"]}, "partyAccount": {"id": "ba-77"}})
    assert r.status_code == 400, r.text
    assert "'partyAccount.id'" in r.json()["message"] and acc["id"] in r.json()["message"]
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 500
    topup = await _post(client, h, "topupBalance", {"amount": _eur(10), "usageType": "monetary",
                                                    "bucket": {"id": bucket["id"]},
                                                    "partyAccount": bucket["partyAccount"]})
    assert topup["partyAccount"] == bucket["partyAccount"]
    # adjustments need not name it: they get the bucket's
    adjust = await _post(client, h, "adjustBalance", {"amount": _eur(1), "usageType": "monetary",
                                                      "bucket": {"id": bucket["id"]}})
    assert adjust["partyAccount"] == bucket["partyAccount"]


async def test_a_cancelled_topup_is_debited_back_once(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="5.00")
    bucket = await _bucket(client, h, acc)
    topup = await _post(client, h, "topupBalance", {"amount": _eur("12.34"), "usageType": "monetary",
                                                    "bucket": {"id": bucket["id"]},
                                                    "partyAccount": bucket["partyAccount"]})
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 1734
    url = f"{TMF654}/topupBalance/{topup['id']}"

    # an applied top-up cannot be deleted, nor can what moved the money change
    r = await client.delete(url, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "ACTION_APPLIED" and "cancel it first" in r.json()["message"]
    r = await client.patch(url, json={"status": "completed", "amount": _eur(100)}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "ACTION_APPLIED" and "'amount'" in r.json()["message"]
    r = await client.patch(url, json={"description": "voucher"}, headers=h)
    assert r.status_code == 400 and "status" in r.json()["message"]  # TopupBalance_Update requires status
    r = await client.patch(url, json={"status": "completed", "description": "voucher 42"}, headers=h)
    assert r.status_code == 200 and r.json()["description"] == "voucher 42", r.text
    r = await client.patch(url, json={"status": "failed"}, headers=h)
    assert r.status_code == 409 and "only be cancelled" in r.json()["message"]
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 1734

    # cancelled by four clients at once: reversed exactly once
    answers = await asyncio.gather(*(client.patch(url, json={"status": "cancelled", "reason": "refunded"},
                                                  headers=h) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    cancelled = answers[0].json()
    tmf654("TopupBalance", cancelled)
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "refunded"
    assert cancelled["amount"] == topup["amount"]
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 500
    history = (await client.get(f"{TMF654}/balanceActionHistory", headers=h)).json()
    assert sorted((x["description"], x["status"]) for x in history) == [
        ("topupBalance", "completed"), ("topupBalance cancelled", "cancelled")]
    for item in history:
        tmf654("BalanceActionHistory", item)
    assert await _audit(client, h, "TopupBalance", topup["id"]) == ["create", "update", "update"]
    events = await _events(rt, tenant, "topupBalance", topup["id"])
    assert [t for t, _ in events].count("TopupBalanceCancelEvent") == 1
    cancel = next(e for t, e in events if t == "TopupBalanceCancelEvent")
    tmf654("TopupBalanceCancelEvent", {k: cancel[k] for k in ("eventId", "eventTime", "eventType", "event")})
    assert cancel["event"]["topupBalance"]["status"] == "cancelled"

    # once cancelled (no money standing), the record can be deleted; the history and the audit keep it
    r = await client.delete(url, headers=h)
    assert r.status_code == 204, r.text
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 500
    assert len((await client.get(f"{TMF654}/balanceActionHistory", headers=h)).json()) == 2


async def test_a_reversal_the_balance_cannot_take_is_refused(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="0")
    other = await open_account(rt, tenant, balance="0")
    bucket, receiver = await _bucket(client, h, acc), await _bucket(client, h, other)
    topup = await _post(client, h, "topupBalance", {"amount": _eur(10), "usageType": "monetary",
                                                    "bucket": {"id": bucket["id"]},
                                                    "partyAccount": bucket["partyAccount"]})
    # 7 EUR given away: the top-up can no longer be taken back whole
    transfer = await _post(client, h, "transferBalance", {
        "amount": _eur(7), "usageType": "monetary", "bucket": {"id": bucket["id"]},
        "receiverBucket": {"id": receiver["id"]}, "receiverBucketUsageType": "monetary", "reason": "gift",
        "channel": {"id": "app"}, "logicalResource": [{"id": acc["msisdn"]}],
        "receiverLogicalResource": {"id": other["msisdn"]}})
    r = await client.patch(f"{TMF654}/topupBalance/{topup['id']}", json={"status": "cancelled"}, headers=h)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "ACTION_NOT_REVERSIBLE" and "10 EUR" in r.json()["message"], r.json()
    assert (await client.get(f"{TMF654}/topupBalance/{topup['id']}", headers=h)).json()["status"] == "completed"
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 300
    # the receiver spends 5 of the 7: the transfer cannot come back either
    await _post(client, h, "adjustBalance", {"amount": _eur(-5), "usageType": "monetary",
                                             "bucket": {"id": receiver["id"]}})
    parties = {k: transfer[k] for k in ("reason", "channel", "logicalResource", "receiverLogicalResource")}
    r = await client.patch(f"{TMF654}/transferBalance/{transfer['id']}", headers=h,
                           json={**parties, "status": "cancelled"})
    assert r.status_code == 409 and r.json()["code"] == "ACTION_NOT_REVERSIBLE", r.text
    # the receiver is credited again: now the transfer is cancelled, the money back where it was
    await _post(client, h, "adjustBalance", {"amount": _eur(5), "usageType": "monetary",
                                             "bucket": {"id": receiver["id"]}})
    r = await client.patch(f"{TMF654}/transferBalance/{transfer['id']}", headers=h,
                           json={**parties, "status": "cancelled"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    tmf654("TransferBalance", r.json())
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 1000
    assert (await account_state(rt, tenant, other["id"]))["money"] == 0
    r = await client.patch(f"{TMF654}/transferBalance/{transfer['id']}", headers=h,
                           json={**parties, "receiverLogicalResource": {"id": "+33600000000"}})
    assert r.status_code == 409 and "'receiverLogicalResource'" in r.json()["message"]
    # a debit adjustment cancelled is credited back
    debit = await _post(client, h, "adjustBalance", {"amount": _eur("-2.5"), "usageType": "monetary",
                                                     "bucket": {"id": bucket["id"]}})
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 750
    r = await client.patch(f"{TMF654}/adjustBalance/{debit['id']}", json={"status": "cancelled"}, headers=h)
    assert r.status_code == 200, r.text
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 1000
    assert (await client.delete(f"{TMF654}/adjustBalance/{debit['id']}", headers=h)).status_code == 204


async def test_a_reservation_is_released_when_cancelled_or_deleted(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="10.00", validity=300)
    bucket = await _bucket(client, h, acc)
    body = {"amount": _eur(3), "usageType": "monetary", "bucket": {"id": bucket["id"]},
            "partyAccount": bucket["partyAccount"]}
    first = await _post(client, h, "reserveBalance", body)
    tmf654("ReserveBalance", first)
    assert first["validFor"]["endDateTime"]  # how long it holds, when the request did not say
    second = await _post(client, h, "reserveBalance", body)
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 and st["money_reserved"] == 600
    r = await client.get(f"{TMF654}/bucket/{bucket['id']}", headers=h)
    assert r.json()["reservedValue"] == _eur(6)

    r = await client.patch(f"{TMF654}/reserveBalance/{first['id']}", json={"status": "cancelled"}, headers=h)
    assert r.status_code == 400 and "reason" in r.json()["message"]  # ReserveBalance_Update requires a reason
    r = await client.patch(f"{TMF654}/reserveBalance/{first['id']}", headers=h,
                           json={"status": "cancelled", "reason": "order abandoned"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 and st["money_reserved"] == 300
    # DELETE unreserves what it holds
    r = await client.delete(f"{TMF654}/reserveBalance/{second['id']}", headers=h)
    assert r.status_code == 204, r.text
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 and st["money_reserved"] == 0
    assert (await client.get(f"{TMF654}/reserveBalance/{second['id']}", headers=h)).status_code == 404
    assert (await client.delete(f"{TMF654}/reserveBalance/{first['id']}", headers=h)).status_code == 204
    types = [t for t, _ in await _events(rt, tenant, "reserveBalance", second["id"])]
    assert types[0] == "ReserveBalanceCreateEvent" and "ReserveBalanceCancelEvent" in types
    assert types[-1] == "ReserveBalanceDeleteEvent"
    assert await _audit(client, h, "ReserveBalance", second["id"]) == ["create", "update", "delete"]
    history = sorted(x["description"] for x in (await client.get(f"{TMF654}/balanceActionHistory",
                                                                 headers=h)).json())
    assert history == ["reserveBalance", "reserveBalance", "reserveBalance cancelled", "reserveBalance cancelled"]

    # a reservation that expired holds nothing: cancelling it is refused, deleting it moves nothing
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    brief = await _post(client, h, "reserveBalance", {**body, "validFor": {"endDateTime": soon}})
    assert (await account_state(rt, tenant, acc["id"]))["money_reserved"] == 300
    await asyncio.sleep(1.2)
    r = await client.patch(f"{TMF654}/reserveBalance/{brief['id']}", headers=h,
                           json={"status": "cancelled", "reason": "late"})
    assert r.status_code == 409 and "expired" in r.json()["message"], r.text
    assert (await client.delete(f"{TMF654}/reserveBalance/{brief['id']}", headers=h)).status_code == 204
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 and st["money_reserved"] == 0


async def test_only_staff_who_write_balances_change_actions(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="1.00")
    bucket = await _bucket(client, h, acc)
    topup = await _post(client, h, "topupBalance", {"amount": _eur(1), "usageType": "monetary",
                                                    "bucket": {"id": bucket["id"]},
                                                    "partyAccount": bucket["partyAccount"]})
    url = f"{TMF654}/topupBalance/{topup['id']}"
    for headers in (bearer(tenant, "customer", party=f"party-{acc['msisdn'][1:]}"), bearer(tenant, "csr_agent")):
        assert (await client.patch(url, json={"status": "cancelled"}, headers=headers)).status_code == 403
        assert (await client.delete(url, headers=headers)).status_code == 403
    assert (await client.patch(f"{TMF654}/topupBalance/nope", json={"status": "cancelled"},
                               headers=h)).status_code == 404
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 200


async def test_a_transfer_moves_money_held_never_a_postpaid_credit_limit(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    postpaid = await open_account(rt, tenant, payment_type="postpaid", balance="0", credit_limit="50.00")
    prepaid = await open_account(rt, tenant, balance="0")
    bucket, receiver = await _bucket(client, h, postpaid), await _bucket(client, h, prepaid)
    body = {"amount": _eur(20), "usageType": "monetary", "bucket": {"id": bucket["id"]},
            "receiverBucket": {"id": receiver["id"]}, "receiverBucketUsageType": "monetary", "reason": "gift",
            "channel": {"id": "app"}, "logicalResource": [{"id": postpaid["msisdn"]}],
            "receiverLogicalResource": {"id": prepaid["msisdn"]}}
    # 50 EUR of credit limit is not money: a transfer of it would create 20 EUR on the prepaid line
    r = await client.post(f"{TMF654}/transferBalance", json=body, headers=h)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "INSUFFICIENT_BALANCE" and "20" in r.json()["message"], r.json()
    assert (await account_state(rt, tenant, postpaid["id"]))["money"] == 0
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 0
    assert (await client.get(f"{TMF654}/transferBalance", headers=h)).json() == []
    # 5 EUR paid in: 5 EUR can move, not 5 + the credit limit
    await _post(client, h, "topupBalance", {"amount": _eur(5), "usageType": "monetary",
                                            "bucket": {"id": bucket["id"]}, "partyAccount": bucket["partyAccount"]})
    r = await client.post(f"{TMF654}/transferBalance", json={**body, "amount": _eur(6)}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "INSUFFICIENT_BALANCE", r.text
    await _post(client, h, "transferBalance", {**body, "amount": _eur(5)})
    assert (await account_state(rt, tenant, postpaid["id"]))["money"] == 0
    assert (await account_state(rt, tenant, prepaid["id"]))["money"] == 500

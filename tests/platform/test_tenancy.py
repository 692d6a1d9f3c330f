"""Tenant isolation: through the API (404, never 200, for another tenant's resources) and in the database itself
(row-level security on every tenant-scoped table, enforced for the application role)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import bearer

BASE = "/tmf-api/party/v4"
MERGE = {"Content-Type": "application/merge-patch+json"}

# Every table the platform and party migrations put under tenant row-level security.
KNOWN_TENANT_TABLES = {
    "party_individual", "party_organization", "outbox_event", "processed_event", "hub_subscription",
    "hub_delivery", "hub_delivery_attempt",
}

PAYLOADS: dict[str, dict[str, Any]] = {
    "individual": {"givenName": "Bea", "familyName": "Other"},
    "organization": {"tradingName": "Other Corp"},
}
PATCHES: dict[str, dict[str, Any]] = {
    "individual": {"givenName": "Hijacked"},
    "organization": {"tradingName": "Hijacked"},
}


def not_found(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"code": "NOT_FOUND", "reason": "Resource not found", "status": "404", "@type": "Error",
            "message": f"{resource_type} '{resource_id}' not found"}


async def create(client: Any, tenant: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"{BASE}/{path}", json=payload, headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    return r.json()


async def subscribe(client: Any, tenant: str) -> dict[str, Any]:
    r = await client.post(f"{BASE}/hub", json={"callback": f"http://127.0.0.1:9/{tenant}"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    return r.json()


# --- through the API ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["individual", "organization"])
async def test_get_of_other_tenants_resource_is_404(client: Any, tenant: str, other_tenant: str,
                                                    path: str) -> None:
    theirs = await create(client, other_tenant, path, PAYLOADS[path])
    r = await client.get(f"{BASE}/{path}/{theirs['id']}", headers=bearer(tenant, "admin"))
    assert r.status_code == 404, r.text
    assert r.json() == not_found(theirs["@type"], theirs["id"])
    # ... while its owner reads it
    r = await client.get(f"{BASE}/{path}/{theirs['id']}", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 200
    assert r.json() == theirs


@pytest.mark.parametrize("path", ["individual", "organization"])
async def test_list_and_filters_exclude_other_tenants_rows(client: Any, tenant: str, other_tenant: str,
                                                           path: str) -> None:
    mine = await create(client, tenant, path, {**PAYLOADS[path]})
    theirs = [await create(client, other_tenant, path, PAYLOADS[path]) for _ in range(3)]
    h = bearer(tenant, "admin")

    r = await client.get(f"{BASE}/{path}", headers=h)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [mine["id"]]
    assert r.headers["X-Total-Count"] == "1"
    assert r.headers["X-Result-Count"] == "1"

    # the other tenant sees exactly its three
    r = await client.get(f"{BASE}/{path}", headers=bearer(other_tenant, "admin"))
    assert sorted(x["id"] for x in r.json()) == sorted(t["id"] for t in theirs)
    assert r.headers["X-Total-Count"] == "3"

    # filtering by the other tenant's id finds nothing
    for t in theirs:
        r = await client.get(f"{BASE}/{path}", params={"id": t["id"]}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == []
        assert r.headers["X-Total-Count"] == "0"
        assert r.headers["X-Result-Count"] == "0"
    # OR over ids, one of each tenant: only mine
    r = await client.get(f"{BASE}/{path}", params={"id": f"{theirs[0]['id']},{mine['id']}"}, headers=h)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [mine["id"]]
    assert r.headers["X-Total-Count"] == "1"
    # paging past the tenant's own rows does not reach the other tenant's
    r = await client.get(f"{BASE}/{path}", params={"offset": 1, "limit": 10}, headers=h)
    assert r.json() == []
    assert r.headers["X-Total-Count"] == "1"


async def test_attribute_filter_matching_only_other_tenants_rows_returns_nothing(
        client: Any, tenant: str, other_tenant: str) -> None:
    marker = f"Only{uuid.uuid4().hex[:8]}"
    await create(client, other_tenant, "individual", {"givenName": marker, "familyName": "X"})
    await create(client, tenant, "individual", {"givenName": "Mine", "familyName": "X"})
    r = await client.get(f"{BASE}/individual", params={"givenName": marker}, headers=bearer(tenant, "admin"))
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert r.headers["X-Total-Count"] == "0"
    r = await client.get(f"{BASE}/individual", params={"givenName": marker},
                         headers=bearer(other_tenant, "admin"))
    assert len(r.json()) == 1
    assert r.headers["X-Total-Count"] == "1"


@pytest.mark.parametrize("path", ["individual", "organization"])
async def test_patch_of_other_tenants_resource_is_404_and_changes_nothing(
        client: Any, tenant: str, other_tenant: str, path: str) -> None:
    theirs = await create(client, other_tenant, path, PAYLOADS[path])
    r = await client.patch(f"{BASE}/{path}/{theirs['id']}", content=json.dumps(PATCHES[path]),
                           headers={**bearer(tenant, "admin"), **MERGE})
    assert r.status_code == 404, r.text
    assert r.json() == not_found(theirs["@type"], theirs["id"])
    r = await client.get(f"{BASE}/{path}/{theirs['id']}", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 200
    assert r.json() == theirs


@pytest.mark.parametrize("path", ["individual", "organization"])
async def test_delete_of_other_tenants_resource_is_404_and_keeps_it(
        client: Any, tenant: str, other_tenant: str, path: str) -> None:
    theirs = await create(client, other_tenant, path, PAYLOADS[path])
    r = await client.delete(f"{BASE}/{path}/{theirs['id']}", headers=bearer(tenant, "admin"))
    assert r.status_code == 404, r.text
    assert r.json() == not_found(theirs["@type"], theirs["id"])
    r = await client.get(f"{BASE}/{path}/{theirs['id']}", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 200
    assert r.json() == theirs


async def test_hub_subscription_of_other_tenant_cannot_be_read_or_deleted(
        client: Any, tenant: str, other_tenant: str) -> None:
    theirs = await subscribe(client, other_tenant)
    expected = {"code": "NOT_FOUND", "reason": "Resource not found", "status": "404", "@type": "Error",
                "message": f"hub subscription '{theirs['id']}' not found"}
    r = await client.get(f"{BASE}/hub/{theirs['id']}", headers=bearer(tenant, "admin"))
    assert r.status_code == 404, r.text
    assert r.json() == expected
    r = await client.delete(f"{BASE}/hub/{theirs['id']}", headers=bearer(tenant, "admin"))
    assert r.status_code == 404, r.text
    assert r.json() == expected
    r = await client.get(f"{BASE}/hub/{theirs['id']}", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 200, r.text
    assert r.json()["callback"] == theirs["callback"]


async def test_tenant_claim_decides_the_tenant_not_the_request(client: Any, tenant: str,
                                                               other_tenant: str) -> None:
    """A resource created with tenant A's token belongs to A, whatever the body says."""
    r = await client.post(f"{BASE}/individual", json={"givenName": "A", "familyName": "A"},
                          headers={**bearer(tenant, "admin"), "X-Tenant-Id": other_tenant})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = await client.get(f"{BASE}/individual/{rid}", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 404
    r = await client.get(f"{BASE}/individual/{rid}", headers=bearer(tenant, "admin"))
    assert r.status_code == 200


# --- in the database ------------------------------------------------------------------------------------------
async def _seed_other_tenant(client: Any, other_tenant: str) -> dict[str, str]:
    """An individual (which writes an outbox event) and a hub subscription of tenant B."""
    ind = await create(client, other_tenant, "individual", PAYLOADS["individual"])
    sub = await subscribe(client, other_tenant)
    return {"individual": ind["id"], "subscription": sub["id"]}


async def _counts(rt: Any, bound: str | None, other: str, *, system: bool = False) -> dict[str, int]:
    out = {}
    async with rt.db.transaction(bound, system=system) as s:
        for table in ("party_individual", "outbox_event", "hub_subscription"):
            out[table] = int(await s.scalar(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"),  # noqa: S608
                                            {"t": other}))
            out[f"{table}:foreign"] = int(await s.scalar(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id IS DISTINCT FROM :b"),  # noqa: S608
                {"b": bound or ""}))
    return out


async def test_session_bound_to_a_sees_no_row_of_b(client: Any, rt: Any, tenant: str,
                                                   other_tenant: str) -> None:
    ids = await _seed_other_tenant(client, other_tenant)
    await create(client, tenant, "individual", PAYLOADS["individual"])

    # positive control: bound to B, B's rows are there
    theirs = await _counts(rt, other_tenant, other_tenant)
    assert theirs["party_individual"] == 1
    assert theirs["outbox_event"] >= 1
    assert theirs["hub_subscription"] == 1

    mine = await _counts(rt, tenant, other_tenant)
    assert mine == {"party_individual": 0, "party_individual:foreign": 0, "outbox_event": 0,
                    "outbox_event:foreign": 0, "hub_subscription": 0, "hub_subscription:foreign": 0}
    async with rt.db.transaction(tenant) as s:
        assert (await s.execute(text("SELECT id FROM party_individual WHERE id = :i"),
                                {"i": ids["individual"]})).all() == []
        assert (await s.execute(text("SELECT id FROM hub_subscription WHERE id = :i"),
                                {"i": ids["subscription"]})).all() == []
        assert (await s.execute(text("SELECT id FROM outbox_event WHERE resource_id = :i"),
                                {"i": ids["individual"]})).all() == []
        # and A's own individual is visible (the binding works at all)
        assert await s.scalar(text("SELECT count(*) FROM party_individual")) == 1


async def test_session_bound_to_no_tenant_sees_nothing(client: Any, rt: Any, other_tenant: str) -> None:
    await _seed_other_tenant(client, other_tenant)
    async with rt.db.transaction(None) as s:
        for table in sorted(KNOWN_TENANT_TABLES):
            assert await s.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table  # noqa: S608


async def test_system_scope_does_not_open_business_tables(client: Any, rt: Any, other_tenant: str) -> None:
    ids = await _seed_other_tenant(client, other_tenant)
    async with rt.db.transaction(None, system=True) as s:
        for table in ("party_individual", "party_organization"):
            assert await s.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table  # noqa: S608
        # the relays' platform tables are what the system scope is for
        assert await s.scalar(text("SELECT count(*) FROM outbox_event WHERE resource_id = :i"),
                              {"i": ids["individual"]}) == 1


class _Rollback(Exception):
    pass


def _insert_sql(table: str) -> tuple[str, dict[str, Any]]:
    if table == "party_individual":
        return ("INSERT INTO party_individual (id, body, tenant_id) VALUES (:id, CAST(:body AS jsonb), :t)",
                {"id": str(uuid.uuid4()), "body": "{}"})
    if table == "outbox_event":
        return ("INSERT INTO outbox_event (event_id, api, event_type, resource_type, resource_id, envelope, "
                "tenant_id) VALUES (:id, 'party', 'IndividualCreateEvent', 'Individual', 'x', "
                "CAST(:body AS jsonb), :t)", {"id": uuid.uuid4(), "body": "{}"})
    return ("INSERT INTO hub_subscription (id, api, callback, tenant_id) VALUES (:id, 'party', "
            "'http://127.0.0.1:9/x', :t)", {"id": str(uuid.uuid4())})


@pytest.mark.parametrize("table", ["party_individual", "outbox_event", "hub_subscription"])
async def test_insert_with_other_tenant_id_is_refused(rt: Any, tenant: str, other_tenant: str,
                                                      table: str) -> None:
    sql, params = _insert_sql(table)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with rt.db.transaction(tenant) as s:
            await s.execute(text(sql), {**params, "t": other_tenant})
    async with rt.db.transaction(other_tenant) as s:
        assert await s.scalar(text(f"SELECT count(*) FROM {table}")) == 0  # noqa: S608
    # positive control: the same row with the bound tenant is accepted (then rolled back: no junk events)
    sql, params = _insert_sql(table)
    with pytest.raises(_Rollback):
        async with rt.db.transaction(tenant) as s:
            await s.execute(text(sql), {**params, "t": tenant})
            assert await s.scalar(text(f"SELECT count(*) FROM {table}")) == 1  # noqa: S608
            raise _Rollback


async def test_insert_without_tenant_binding_is_refused(rt: Any, other_tenant: str) -> None:
    sql, params = _insert_sql("party_individual")
    with pytest.raises(DBAPIError, match="row-level security"):
        async with rt.db.transaction(None, system=True) as s:
            await s.execute(text(sql), {**params, "t": other_tenant})


async def test_rows_cannot_be_moved_to_or_changed_in_another_tenant(client: Any, rt: Any, tenant: str,
                                                                    other_tenant: str) -> None:
    mine = await create(client, tenant, "individual", PAYLOADS["individual"])
    theirs = await create(client, other_tenant, "individual", PAYLOADS["individual"])
    with pytest.raises(DBAPIError, match="row-level security"):
        async with rt.db.transaction(tenant) as s:
            await s.execute(text("UPDATE party_individual SET tenant_id = :b WHERE id = :i"),
                            {"b": other_tenant, "i": mine["id"]})
    async with rt.db.transaction(tenant) as s:
        upd = await s.execute(text("UPDATE party_individual SET body = '{}'::jsonb WHERE id = :i"),
                              {"i": theirs["id"]})
        assert upd.rowcount == 0
        dele = await s.execute(text("DELETE FROM party_individual WHERE tenant_id = :b"), {"b": other_tenant})
        assert dele.rowcount == 0
    r = await client.get(f"{BASE}/individual/{theirs['id']}", headers=bearer(other_tenant, "admin"))
    assert r.json() == theirs
    r = await client.get(f"{BASE}/individual/{mine['id']}", headers=bearer(tenant, "admin"))
    assert r.json() == mine


# --- the schema guards future tables --------------------------------------------------------------------------
TENANT_TABLES_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relispartition, pg_get_userbyid(c.relowner) AS owner
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


async def test_every_table_with_tenant_id_has_forced_row_level_security(rt: Any) -> None:
    async with rt.db.transaction(None) as s:
        rows = (await s.execute(text(TENANT_TABLES_SQL))).mappings().all()
    names = {r["relname"] for r in rows}
    assert names >= KNOWN_TENANT_TABLES, f"tenant tables missing from the catalog query: {KNOWN_TENANT_TABLES - names}"
    unprotected = [(r["relname"], r["relrowsecurity"], r["relforcerowsecurity"]) for r in rows
                   if not (r["relrowsecurity"] and r["relforcerowsecurity"])]
    assert unprotected == [], f"tables with tenant_id but without (forced) row-level security: {unprotected}"


async def test_every_policy_on_tenant_tables_compares_the_bound_tenant(rt: Any) -> None:
    """A permissive policy such as USING (true) added beside tenant_isolation would OR away the isolation."""
    async with rt.db.transaction(None) as s:
        # a partition is read through its partitioned table, whose policies apply; the partition itself has row-level
        # security forced and no policy (the test above), so that a direct read of it sees no row
        tables = [r["relname"] for r in (await s.execute(text(TENANT_TABLES_SQL))).mappings().all()
                  if not r["relispartition"]]
        policies = (await s.execute(text(
            "SELECT tablename, policyname, permissive, cmd, qual, with_check FROM pg_policies "
            "WHERE schemaname = 'public' AND tablename = ANY(:t)"), {"t": tables})).mappings().all()
    by_table: dict[str, list[Any]] = {}
    for p in policies:
        by_table.setdefault(p["tablename"], []).append(p)
    assert sorted(by_table) == sorted(tables), f"tables without a policy: {set(tables) - set(by_table)}"
    for table, pols in by_table.items():
        for p in pols:
            if p["permissive"] == "PERMISSIVE":
                assert "openbss.tenant_id" in (p["qual"] or ""), (table, p["policyname"], p["qual"])
                if p["cmd"] in ("ALL", "INSERT", "UPDATE"):
                    assert "openbss.tenant_id" in (p["with_check"] or p["qual"] or ""), (table, p["policyname"])


async def test_application_role_is_not_superuser_nor_bypassrls_nor_owner(rt: Any) -> None:
    async with rt.db.transaction(None) as s:
        role = (await s.execute(text(
            "SELECT current_user AS name, r.rolsuper, r.rolbypassrls FROM pg_roles r "
            "WHERE r.rolname = current_user"))).mappings().one()
        owners = {r["owner"] for r in (await s.execute(text(TENANT_TABLES_SQL))).mappings().all()}
        member_of_owner = await s.scalar(text(
            "SELECT bool_or(pg_has_role(current_user, o, 'MEMBER')) FROM unnest(CAST(:o AS text[])) AS o"),
            {"o": sorted(owners)})
    assert role["name"] == rt.settings.db_app_role == "openbss_app"
    assert role["rolsuper"] is False
    assert role["rolbypassrls"] is False
    # owners can ALTER TABLE ... DISABLE ROW LEVEL SECURITY: the app role must be neither owner nor member
    assert role["name"] not in owners
    assert member_of_owner is False

"""The kit's search index (``search_entry``): encrypted names searchable by exact value, date ranges, OR values,
entries kept in step with writes and key rotation, tenant isolation by row-level security, and the migration that
builds it for the rows of an upgraded database."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import bearer, session_services
from tests.customer.helpers import BA, IND, make_billing_account, make_customer, make_individual, raw_rows

CAT = "/tmf-api/productCatalogManagement/v4/category"


async def ids(client: httpx.AsyncClient, h: dict[str, str], path: str, params: dict[str, str] | str) -> set[str]:
    r = await client.get(path, params=params, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["x-total-count"] == str(len(r.json()))
    return {x["id"] for x in r.json()}


def refused(r: httpx.Response, attribute: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_FILTER" and attribute in r.json()["message"], r.json()


@pytest.fixture
async def accounts(client: httpx.AsyncClient, tenant: str) -> dict[str, Any]:
    h = bearer(tenant)
    ada = await make_individual(client, h)
    alan = await make_individual(client, h, given="Alan", family="Turing", email="alan@example.com",
                                 phone="+447700900999", ident="T999")
    c_ada = await make_customer(client, h, ada)
    c_alan = await make_customer(client, h, alan)
    home = await make_billing_account(client, h, c_ada, name="Home Account")
    office = await make_billing_account(client, h, c_alan, name="Office Account")
    other = await make_billing_account(client, h, c_alan, name="Home Account 2")
    return {"h": h, "ada": ada, "alan": alan, "home": home, "office": office, "other": other,
            "c_ada": c_ada, "c_alan": c_alan}


async def test_billing_account_name_is_searchable_though_encrypted(client: httpx.AsyncClient, tenant: str,
                                                                   accounts: dict[str, Any], rt: Any) -> None:
    a, h = accounts, accounts["h"]
    assert await ids(client, h, BA, {"name": "Home Account"}) == {a["home"]["id"]}
    # exact match after normalization (case, accents, punctuation), never a prefix or a substring
    assert await ids(client, h, BA, {"name": "home  ACCOUNT"}) == {a["home"]["id"]}
    assert await ids(client, h, BA, {"name": "Home"}) == set()
    assert await ids(client, h, BA, "name=Home Account,Office Account") == {a["home"]["id"], a["office"]["id"]}
    # combined (AND) with plain attributes: the owner, the state
    assert await ids(client, h, BA, {"name": "Home Account", "relatedParty.id": a["c_alan"]["id"]}) == set()
    assert await ids(client, h, BA, {"name": "Home Account 2", "relatedParty.id": a["c_alan"]["id"]}) == {
        a["other"]["id"]}
    assert await ids(client, h, BA, {"name": "Home Account", "state": "defined"}) == {a["home"]["id"]}
    # the name is still stored encrypted, and the index holds a digest of it, not the name
    body = (await raw_rows(rt, "SELECT body::text FROM billing_account WHERE id = :i", i=a["home"]["id"]))[0][0]
    assert "Home Account" not in body
    entries = await raw_rows(rt, "SELECT value FROM search_entry WHERE resource_id = :i AND attribute = 'name'",
                             i=a["home"]["id"])
    assert len(entries) == 1 and "home" not in entries[0][0].lower()
    # what a digest cannot answer is refused naming the attribute
    refused(await client.get(BA, params={"name.gt": "A"}, headers=h), "name")
    r = await client.get(BA, params={"sort": "name"}, headers=h)
    assert r.status_code == 400 and "name" in r.json()["message"]
    refused(await client.get(BA, params={"contact.contactName": "Ada Lovelace"}, headers=h), "contact.contactName")


async def test_entries_follow_updates_and_deletes(client: httpx.AsyncClient, tenant: str,
                                                  accounts: dict[str, Any], rt: Any) -> None:
    a, h = accounts, accounts["h"]
    r = await client.patch(f"{BA}/{a['home']['id']}", json={"name": "Holiday Home"}, headers=h)
    assert r.status_code == 200, r.text
    assert await ids(client, h, BA, {"name": "Home Account"}) == set()
    assert await ids(client, h, BA, {"name": "Holiday Home"}) == {a["home"]["id"]}
    r = await client.patch(f"{BA}/{a['office']['id']}", json={"state": "active"}, headers=h)
    assert r.status_code == 200, r.text
    assert await ids(client, h, BA, "state=active") == {a["office"]["id"]}
    assert await ids(client, h, BA, "state=active,defined") == {a["home"]["id"], a["office"]["id"],
                                                                a["other"]["id"]}
    assert (await client.delete(f"{BA}/{a['other']['id']}", headers=h)).status_code == 204
    assert await ids(client, h, BA, {"name": "Home Account 2"}) == set()
    left = await raw_rows(rt, "SELECT count(*) FROM search_entry WHERE resource_id = :i", i=a["other"]["id"])
    assert left[0][0] == 0


async def test_individual_names_and_emails(client: httpx.AsyncClient, tenant: str, accounts: dict[str, Any]) -> None:
    a, h = accounts, accounts["h"]
    assert await ids(client, h, IND, {"givenName": "ada"}) == {a["ada"]["id"]}
    assert await ids(client, h, IND, "familyName=Lovelace,Turing") == {a["ada"]["id"], a["alan"]["id"]}
    assert await ids(client, h, IND, {"contactMedium.characteristic.emailAddress": " Alan@Example.com"}) == {
        a["alan"]["id"]}
    assert await ids(client, h, IND, {"birthDate": "1815-12-10T00:00:00Z", "givenName": "Alan"}) == {
        a["alan"]["id"]}
    refused(await client.get(IND, params={"birthDate.lte": "1900-01-01T00:00:00Z"}, headers=h), "birthDate")


async def test_date_ranges_and_or_values_through_the_index(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant)
    made = []
    for name in ("Phones", "Tablets", "Wearables"):
        r = await client.post(CAT, json={"name": name}, headers=h)
        assert r.status_code == 201, r.text
        made.append(r.json())
        await asyncio.sleep(0.005)  # distinct lastUpdate milliseconds
    first, mid, last = (c["id"] for c in made)
    t = made[1]["lastUpdate"]
    assert await ids(client, h, CAT, {"lastUpdate.gt": t}) == {last}
    assert await ids(client, h, CAT, {"lastUpdate.gte": t}) == {mid, last}
    assert await ids(client, h, CAT, {"lastUpdate.lt": t}) == {first}
    assert await ids(client, h, CAT, {"lastUpdate.lte": t}) == {first, mid}
    assert await ids(client, h, CAT, {"lastUpdate": t}) == {mid}
    assert await ids(client, h, CAT, {"lastUpdate.gt": made[0]["lastUpdate"], "lastUpdate.lt": made[2]["lastUpdate"]}
                     ) == {mid}
    # the same instant written in another offset
    shifted = t.replace("Z", "+00:00")
    assert await ids(client, h, CAT, {"lastUpdate": shifted}) == {mid}
    r = await client.patch(f"{CAT}/{last}", json={"lifecycleStatus": "In test"}, headers=h)
    assert r.status_code == 200, r.text
    assert await ids(client, h, CAT, "lifecycleStatus=In test") == {last}
    assert await ids(client, h, CAT, "lifecycleStatus=In design,In test") == {first, mid, last}
    assert await ids(client, h, CAT, "name=Phones,Wearables&lifecycleStatus=In design") == {first}
    assert await ids(client, h, CAT, {"@type": "Category"}) == {first, mid, last}
    # a filter value longer than the index keeps (it reads the documents): right, just not index-assisted
    assert await ids(client, h, CAT, {"name": "x" * 300}) == set()


async def test_the_planner_uses_the_index_under_row_level_security(rt: Any, tenant: str, client: httpx.AsyncClient,
                                                                    accounts: dict[str, Any]) -> None:
    """The entries' conditions are LEAKPROOF, so PostgreSQL applies them in the B-tree despite the tenant policy
    (a jsonb ``@?`` would be evaluated row by row after it)."""
    async with rt.db.transaction(tenant) as s:
        # many entries of the resource type (rolled back below), so that only the attribute and value select
        await s.execute(text("INSERT INTO search_entry (resource_type, attribute, value, resource_id) "
                             "SELECT 'BillingAccount', 'other', 'v' || i, 'r' || i FROM generate_series(1, 5000) i"))
        plan = "\n".join(r[0] for r in (await s.execute(text(
            "EXPLAIN SELECT resource_id FROM search_entry WHERE resource_type = 'BillingAccount' "
            "AND attribute = 'state' AND value = 'defined'"))).all())
        await s.rollback()
    assert "pk_search_entry" in plan, plan
    assert "Filter" not in plan and "attribute" in plan.split("Index Cond")[1], plan


async def test_side_table_is_isolated_by_row_level_security(client: httpx.AsyncClient, tenant: str,
                                                            other_tenant: str, accounts: dict[str, Any],
                                                            rt: Any) -> None:
    a = accounts
    theirs = bearer(other_tenant)
    # the same filter in another tenant finds nothing; their own account of the same name only theirs
    assert await ids(client, theirs, BA, {"name": "Home Account"}) == set()
    assert await ids(client, theirs, BA, {"relatedParty.id": a["c_ada"]["id"]}) == set()
    ind = await make_individual(client, theirs)
    cust = await make_customer(client, theirs, ind)
    mine = await make_billing_account(client, theirs, cust, name="Home Account")
    assert await ids(client, theirs, BA, {"name": "Home Account"}) == {mine["id"]}
    assert await ids(client, a["h"], BA, {"name": "Home Account"}) == {a["home"]["id"]}
    # in the database, as the application role: only the bound tenant's entries, and no writing into another's
    async with rt.db.transaction(other_tenant) as s:
        seen = {r[0] for r in (await s.execute(text("SELECT DISTINCT tenant_id FROM search_entry"))).all()}
        assert seen == {other_tenant}
        count = await s.scalar(text("SELECT count(*) FROM search_entry WHERE resource_id = :i"),
                               {"i": a["home"]["id"]})
        assert count == 0
    with pytest.raises(DBAPIError, match="row-level security"):
        async with rt.db.transaction(other_tenant) as s:
            await s.execute(text("INSERT INTO search_entry (tenant_id, resource_type, attribute, value, resource_id) "
                                 "VALUES (:t, 'BillingAccount', 'name', 'x', 'y')"), {"t": tenant})
    rows = await raw_rows(rt, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = "
                              "'search_entry'")
    assert rows == [(True, True)]


async def test_digests_survive_key_rotation(client: httpx.AsyncClient, tenant: str, accounts: dict[str, Any],
                                            rt: Any) -> None:
    from openbss.platform.crypto import key_service, rotate

    a, h = accounts, accounts["h"]
    before = await raw_rows(rt, "SELECT attribute, value, resource_id FROM search_entry WHERE tenant_id = :t "
                                "ORDER BY 1, 2, 3", t=tenant)
    report = await rotate(rt.db, key_service(), session_services().encrypted_tables(), tenants=[tenant])
    assert report.rows_reencrypted >= 3
    after = await raw_rows(rt, "SELECT attribute, value, resource_id FROM search_entry WHERE tenant_id = :t "
                               "ORDER BY 1, 2, 3", t=tenant)
    assert after == before
    assert await ids(client, h, BA, {"name": "Office Account"}) == {a["office"]["id"]}
    assert await ids(client, h, IND, {"familyName": "Turing"}) == {a["alan"]["id"]}
    # and a write after the rotation indexes under the same (kept) index key
    r = await client.patch(f"{BA}/{a['office']['id']}", json={"name": "Office Account B"}, headers=h)
    assert r.status_code == 200
    assert await ids(client, h, BA, {"name": "office account b"}) == {a["office"]["id"]}


async def test_the_migration_builds_the_entries_of_existing_rows(client: httpx.AsyncClient, tenant: str,
                                                                 accounts: dict[str, Any], rt: Any) -> None:
    """A database at the revision before the search index, holding documents (encrypted ones included), upgraded:
    the migration builds exactly the entries the API writes, from the documents and the tenant's keys."""
    import psycopg
    from alembic import command

    from openbss.cli import _alembic_config
    from openbss.platform.db import libpq_conninfo, owner_url
    from openbss.platform.tmf.resource import TmfDocument

    h = accounts["h"]
    r = await client.post("/tmf-api/productCatalogManagement/v4/category", json={"name": "Phones"}, headers=h)
    assert r.status_code == 201
    main = owner_url()
    scratch = main.set(database=f"{main.database}_upgrade")
    admin = libpq_conninfo(main.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scratch.database}"')
    try:
        cfg = _alembic_config(scratch)
        await asyncio.to_thread(command.upgrade, cfg, "4a7b510450e8")
        tables = ["tenant", "tenant_data_key", *sorted(
            {c.__tablename__ for c in _subclasses(TmfDocument) if hasattr(c, "__tablename__")})]
        with psycopg.connect(libpq_conninfo(main)) as src, psycopg.connect(libpq_conninfo(scratch)) as dst:
            there = {r[0] for r in dst.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            for table in [t for t in tables if t in there]:  # (tables of later migrations: not yet there)
                key = "id" if table == "tenant" else "tenant_id"
                cur = src.execute(f"SELECT * FROM {table} WHERE {key} = %s", (tenant,))  # noqa: S608
                rows = cur.fetchall()
                if not rows:
                    continue
                # the columns the table had at that revision (later migrations add columns, e.g. tenant.sandbox)
                known = {r[0] for r in dst.execute("SELECT column_name FROM information_schema.columns "
                                                   "WHERE table_schema = 'public' AND table_name = %s", (table,))}
                keep = [i for i, d in enumerate(cur.description or []) if d.name in known]
                cols = ", ".join((cur.description or [])[i].name for i in keep)
                marks = ", ".join(["%s"] * len(keep))
                with dst.cursor() as out:
                    out.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608
                                    [tuple(psycopg.types.json.Jsonb(row[i]) if isinstance(row[i], dict | list)
                                           else row[i] for i in keep) for row in rows])
            dst.commit()
        await asyncio.to_thread(command.upgrade, cfg, "head")
        query = ("SELECT resource_type, attribute, value, resource_id, is_unique FROM search_entry "
                 "WHERE tenant_id = %s ORDER BY 1, 2, 3, 4")
        with psycopg.connect(libpq_conninfo(main)) as src, psycopg.connect(libpq_conninfo(scratch)) as dst:
            live = src.execute(query, (tenant,)).fetchall()
            built = dst.execute(query, (tenant,)).fetchall()
            old = dst.execute("SELECT to_regclass('personal_data_index'), to_regclass('catalog_search_entry')"
                              ).fetchone()
        assert built == live and len(live) > 50
        assert {r[0] for r in built} >= {"Individual", "Customer", "BillingAccount", "Category"}
        assert old == (None, None)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_declarations_name_attributes_of_the_specification() -> None:
    """Every declared path exists in its resource's specification, and the defaults cover what clients filter on."""
    from openbss.platform.tmf.search import indexes_of
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    by_type = {ix.resource_type: ix for ix in indexes_of(tmf_apis(get_settings()))}
    assert {"name", "state", "relatedParty.id", "@type", "lastModified"} <= set(by_type["BillingAccount"].attributes)
    assert by_type["BillingAccount"].attributes["name"].sealed
    assert {"name", "lifecycleStatus", "version", "category.id", "productOfferingPrice.id", "lastUpdate",
            "isBundle"} <= set(by_type["ProductOffering"].attributes)
    assert {"externalId", "state", "orderDate", "billingAccount.id", "relatedParty.id"} <= set(
        by_type["ProductOrder"].attributes)
    assert {"usageDate", "relatedParty.id"} <= set(by_type["Usage"].columns)
    assert "description" not in by_type["ProductOffering"].attributes
    assert os.environ.get("OPENBSS_DATABASE_URL")  # the settings the migration's key access reads

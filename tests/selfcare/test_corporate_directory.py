"""The corporate customer directory adapter against the machine's MariaDB.

``OPENBSS_TEST_MARIADB_URL`` (default mysql://root@127.0.0.1:3306/) names the server; a fresh database
``openbss_corp_test_<pid>`` is created on it for this module and dropped afterwards. Under ``CI=true`` a missing
MariaDB fails the run; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from openbss.demo.corporate import DEMO_CORPORATE_CUSTOMERS, seed_demo
from openbss.selfcare.corporate import (
    CorporateDirectory,
    CorporateDirectoryError,
    DirectoryConflict,
    DirectoryInvalidChange,
    DirectoryNotFound,
    DirectoryUnavailable,
    DirectoryValueTooLong,
)
from tests.selfcare.mariadb import connect, fresh_database, url

DB_NAME = f"openbss_corp_test_{os.getpid()}"

PROFILE_KEYS = {"customerId", "segment", "name", "email", "emailVerified", "phone", "address", "preferences",
                "accountState", "products", "version"}
NAME_KEYS = {"givenName", "familyName", "fullName", "organization"}
ADDRESS_KEYS = {"street1", "street2", "postCode", "city", "stateOrProvince", "country"}
PREFERENCE_KEYS = {"email", "sms", "post", "language"}
PRODUCT_KEYS = {"id", "name", "status", "msisdn"}


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database(DB_NAME) as found:
        yield found


@pytest.fixture(scope="module")
async def directory(database_url: str) -> AsyncIterator[CorporateDirectory]:
    corporate = CorporateDirectory.from_url(database_url)
    await corporate.start()
    await corporate.create_schema()
    yield corporate
    await corporate.close()


@pytest.fixture(scope="module")
def sql(database_url: str) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Read the directory's tables directly (committed data only)."""
    conn = connect(DB_NAME)

    def query(statement: str, *args: Any) -> list[dict[str, Any]]:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())

    yield query
    conn.close()


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:12]}"


def _id() -> str:
    return str(uuid.uuid4())


def _record(customer_id: str | None = None, *, email: str = "anna.weber@example.com", msisdns: tuple[str, ...] = (
        "+33600000501", "+33600000502"), verified: bool = True, **extra: Any) -> dict[str, Any]:
    record = {
        "customerId": customer_id or _id(),
        "name": {"givenName": "Anna", "familyName": "Weber", "organization": "Weber Spedition GmbH 🚚"},
        "email": email, "emailVerified": verified, "phone": "+4915112345678",
        "address": {"street1": "Königstraße 1", "street2": "3. OG", "postCode": "70173", "city": "Stuttgart",
                    "stateOrProvince": "Baden-Württemberg", "country": "DE"},
        "preferences": {"email": True, "sms": False, "post": True, "language": "de"},
        "accountState": "active",
        "products": [{"id": f"prd-{n[-3:]}", "name": "Business Mobile L", "status": "active", "msisdn": n}
                     for n in msisdns],
    }
    record.update(extra)
    return record


def _log(sql: Callable[..., list[dict[str, Any]]], tenant: str, customer_id: str) -> list[dict[str, Any]]:
    return sql("SELECT * FROM corporate_change_log WHERE tenant_id = %s AND customer_id = %s ORDER BY id",
               tenant, customer_id)


# ----------------------------------------------------------------------------------------------------------- basics


async def test_schema_is_idempotent_and_utf8mb4(directory: CorporateDirectory, sql: Any) -> None:
    await directory.create_schema()
    await directory.create_schema()
    tables = sql("SELECT table_name AS name, table_collation AS collation, engine FROM information_schema.tables "
                 "WHERE table_schema = %s ORDER BY table_name", DB_NAME)
    assert [t["name"] for t in tables] == ["corporate_change_log", "corporate_customer", "corporate_line"]
    assert all(t["collation"].startswith("utf8mb4") and t["engine"] == "InnoDB" for t in tables)
    assert await directory.ping() is True


async def test_upsert_and_get_round_trip_in_the_profile_shape(directory: CorporateDirectory, tenant: str) -> None:
    record = _record()
    await directory.upsert_customer(tenant, record)

    profile = await directory.get(tenant, record["customerId"])
    assert profile is not None
    assert set(profile) == PROFILE_KEYS
    assert set(profile["name"]) == NAME_KEYS
    assert set(profile["address"]) == ADDRESS_KEYS
    assert set(profile["preferences"]) == PREFERENCE_KEYS
    assert all(set(p) == PRODUCT_KEYS for p in profile["products"])
    assert profile == {
        "customerId": record["customerId"], "segment": "corporate",
        "name": {"givenName": "Anna", "familyName": "Weber", "fullName": "Anna Weber",
                 "organization": "Weber Spedition GmbH 🚚"},
        "email": "anna.weber@example.com", "emailVerified": True, "phone": "+4915112345678",
        "address": record["address"], "preferences": record["preferences"], "accountState": "active",
        "products": [{"id": "prd-501", "name": "Business Mobile L", "status": "active", "msisdn": "+33600000501"},
                     {"id": "prd-502", "name": "Business Mobile L", "status": "active", "msisdn": "+33600000502"}],
        "version": 0,
    }
    assert await directory.version_of(tenant, record["customerId"]) == 0
    assert await directory.get(tenant, _id()) is None
    assert await directory.version_of(tenant, _id()) is None


async def test_upsert_without_address_and_with_defaults(directory: CorporateDirectory, tenant: str) -> None:
    customer_id = _id()
    await directory.upsert_customer(tenant, {"customerId": customer_id, "name": {"organization": "Tiny Ltd"}})
    profile = await directory.get(tenant, customer_id)
    assert profile is not None
    assert profile["address"] is None and profile["email"] is None and profile["phone"] is None
    assert profile["emailVerified"] is False and profile["products"] == []
    assert profile["name"] == {"givenName": "", "familyName": "", "fullName": "", "organization": "Tiny Ltd"}
    assert profile["preferences"] == {"email": True, "sms": False, "post": False, "language": "en"}


async def test_upsert_replaces_lines_and_moves_the_version_only_on_change(directory: CorporateDirectory,
                                                                         tenant: str) -> None:
    record = _record()
    await directory.upsert_customer(tenant, record)
    await directory.upsert_customer(tenant, record)
    assert await directory.version_of(tenant, record["customerId"]) == 0

    record["products"] = [{"id": "prd-503", "name": "Business Mobile XL", "status": "active",
                           "msisdn": "+33600000503"}]
    await directory.upsert_customer(tenant, record)
    profile = await directory.get(tenant, record["customerId"])
    assert profile is not None
    assert [p["msisdn"] for p in profile["products"]] == ["+33600000503"]
    assert profile["version"] == 1
    assert await directory.find_by_msisdn(tenant, "+33600000501") is None


async def test_find_by_email_is_case_insensitive(directory: CorporateDirectory, tenant: str) -> None:
    first = _record(email="  Fleet.Manager@Example.COM ", msisdns=("+33600000511",))
    second = _record(email="fleet.manager@example.com", msisdns=("+33600000512",), verified=False)
    await directory.upsert_customer(tenant, first)
    await directory.upsert_customer(tenant, second)

    for query in ("fleet.manager@example.com", "FLEET.MANAGER@EXAMPLE.COM", "  Fleet.Manager@example.com  "):
        found = await directory.find_by_email(tenant, query)
        assert sorted((p["customerId"], p["emailVerified"]) for p in found) == sorted(
            [(first["customerId"], True), (second["customerId"], False)])
        assert all(p["email"] == "fleet.manager@example.com" for p in found)
    assert await directory.find_by_email(tenant, "fleet.manager@example.co") == []
    assert await directory.find_by_email(tenant, "fleet.manager") == []
    assert await directory.find_by_email(tenant, "   ") == []


async def test_find_by_msisdn(directory: CorporateDirectory, tenant: str) -> None:
    record = _record(msisdns=("+33600000521", "+33600000522"))
    await directory.upsert_customer(tenant, record)

    profile = await directory.find_by_msisdn(tenant, "+33600000522")
    assert profile is not None and profile["customerId"] == record["customerId"]
    assert [p["msisdn"] for p in profile["products"]] == ["+33600000521", "+33600000522"]
    assert await directory.find_by_msisdn(tenant, "+33600000523") is None
    assert await directory.find_by_msisdn(tenant, "33600000522") is None


async def test_tenant_isolation(directory: CorporateDirectory, tenant: str) -> None:
    other = f"{tenant}-other"
    mine = _record(email="shared@example.com", msisdns=("+33600000531",))
    await directory.upsert_customer(tenant, mine)

    assert await directory.get(other, mine["customerId"]) is None
    assert await directory.version_of(other, mine["customerId"]) is None
    assert await directory.find_by_email(other, "shared@example.com") == []
    assert await directory.find_by_msisdn(other, "+33600000531") is None
    with pytest.raises(DirectoryNotFound):
        await directory.update(other, mine["customerId"], {"phone": "+33100000000"}, actor="agent")
    with pytest.raises(DirectoryConflict):
        await directory.upsert_customer(other, _record(mine["customerId"], email="intruder@example.com"))

    theirs = _record(email="shared@example.com", msisdns=("+33600000531",))
    await directory.upsert_customer(other, theirs)
    assert [p["customerId"] for p in await directory.find_by_email(tenant, "shared@example.com")] == [
        mine["customerId"]]
    assert [p["customerId"] for p in await directory.find_by_email(other, "shared@example.com")] == [
        theirs["customerId"]]
    found = await directory.find_by_msisdn(other, "+33600000531")
    assert found is not None and found["customerId"] == theirs["customerId"]
    unchanged = await directory.get(tenant, mine["customerId"])
    assert unchanged is not None and unchanged["email"] == "shared@example.com" and unchanged["version"] == 0


# ----------------------------------------------------------------------------------------------------------- update


async def test_update_each_field_logs_field_names_only(directory: CorporateDirectory, tenant: str,
                                                       sql: Any) -> None:
    record = _record(msisdns=("+33600000541",))
    customer_id = record["customerId"]
    await directory.upsert_customer(tenant, record)
    new_address = {"street1": "10 Downing Street", "street2": "", "postCode": "SW1A 2AA", "city": "London",
                   "stateOrProvince": "", "country": "gb"}
    steps: list[tuple[dict[str, Any], list[str]]] = [
        ({"email": "New.Contact@Example.org"}, ["email", "emailVerified"]),
        ({"emailVerified": True}, ["emailVerified"]),
        ({"email": "second@example.org", "emailVerified": True}, ["email"]),
        ({"phone": "+447700900123"}, ["phone"]),
        ({"phone": None}, ["phone"]),
        ({"address": new_address}, ["address"]),
        ({"address": None}, ["address"]),
        ({"preferences": {"sms": True}}, ["preferences.sms"]),
        ({"preferences": {"language": "en", "post": False, "email": True}}, ["preferences.post",
                                                                             "preferences.language"]),
    ]
    for number, (changes, fields) in enumerate(steps, start=1):
        profile = await directory.update(tenant, customer_id, changes, actor="selfcare:anna",
                                         request_id=f"req-{number}")
        assert profile["version"] == number
        log = _log(sql, tenant, customer_id)
        assert len(log) == number
        assert json.loads(log[-1]["fields"]) == fields
        assert log[-1]["actor"] == "selfcare:anna" and log[-1]["request_id"] == f"req-{number}"
        if number == 1:
            assert profile["email"] == "new.contact@example.org" and profile["emailVerified"] is False
        if number == 6:
            assert profile["address"] == {**new_address, "country": "GB"}

    final = await directory.get(tenant, customer_id)
    assert final is not None
    assert final["email"] == "second@example.org" and final["emailVerified"] is True
    assert final["phone"] is None and final["address"] is None
    assert final["preferences"] == {"email": True, "sms": True, "post": False, "language": "en"}
    assert final["name"]["organization"] == record["name"]["organization"]
    assert [p["msisdn"] for p in final["products"]] == ["+33600000541"]

    everything = json.dumps([row["fields"] for row in _log(sql, tenant, customer_id)]).lower()
    for personal in ("example", "@", "+44", "+49", "7700900123", "downing", "london", "sw1a"):
        assert personal not in everything


async def test_update_without_change_writes_nothing(directory: CorporateDirectory, tenant: str, sql: Any) -> None:
    record = _record(msisdns=())
    await directory.upsert_customer(tenant, record)
    profile = await directory.update(tenant, record["customerId"], {
        "email": "ANNA.WEBER@example.com", "phone": record["phone"], "address": record["address"],
        "preferences": {"language": "de"}}, actor="agent")
    assert profile["version"] == 0 and profile["emailVerified"] is True
    assert _log(sql, tenant, record["customerId"]) == []


async def test_update_rejects_unknown_fields_and_customers(directory: CorporateDirectory, tenant: str) -> None:
    record = _record(msisdns=())
    await directory.upsert_customer(tenant, record)
    with pytest.raises(DirectoryInvalidChange):
        await directory.update(tenant, record["customerId"], {"name": {"givenName": "X"}}, actor="agent")
    with pytest.raises(DirectoryInvalidChange):
        await directory.update(tenant, record["customerId"], {"preferences": {"fax": True}}, actor="agent")
    with pytest.raises(DirectoryInvalidChange):
        await directory.update(tenant, record["customerId"], {"emailVerified": "yes"}, actor="agent")
    with pytest.raises(DirectoryNotFound) as missing:
        await directory.update(tenant, _id(), {"phone": "+33100000000"}, actor="agent")
    assert missing.value.status == 404
    assert await directory.version_of(tenant, record["customerId"]) == 0


async def test_expected_version_conflict(directory: CorporateDirectory, tenant: str) -> None:
    record = _record(msisdns=())
    await directory.upsert_customer(tenant, record)
    updated = await directory.update(tenant, record["customerId"], {"phone": "+33100000001"}, actor="agent",
                                     expected_version=0)
    assert updated["version"] == 1
    with pytest.raises(DirectoryConflict) as conflict:
        await directory.update(tenant, record["customerId"], {"phone": "+33100000002"}, actor="agent",
                               expected_version=0)
    assert conflict.value.status == 409
    current = await directory.get(tenant, record["customerId"])
    assert current is not None and current["phone"] == "+33100000001" and current["version"] == 1


async def test_concurrent_updates(directory: CorporateDirectory, tenant: str, sql: Any) -> None:
    record = _record(msisdns=())
    customer_id = record["customerId"]
    await directory.upsert_customer(tenant, record)

    results = await asyncio.gather(*(
        directory.update(tenant, customer_id, {"phone": f"+3310000{n:04d}"}, actor=f"agent-{n}")
        for n in range(10)))
    assert sorted(r["version"] for r in results) == list(range(1, 11))
    assert await directory.version_of(tenant, customer_id) == 10
    assert len(_log(sql, tenant, customer_id)) == 10

    outcomes = await asyncio.gather(*(
        directory.update(tenant, customer_id, {"phone": f"+3320000{n:04d}"}, actor=f"agent-{n}",
                         expected_version=10)
        for n in range(10)), return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 1 and winners[0]["version"] == 11
    assert all(isinstance(o, DirectoryConflict) for o in outcomes if not isinstance(o, dict))
    assert await directory.version_of(tenant, customer_id) == 11
    assert len(_log(sql, tenant, customer_id)) == 11


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("changes", "field"), [
    ({"email": "a" * 243 + "@example.com"}, "email"),
    ({"phone": "+" + "1" * 20}, "phone"),
    ({"address": {"street1": "x" * 201, "street2": "", "postCode": "1", "city": "Paris", "stateOrProvince": "",
                  "country": "FR"}}, "address.street1"),
    ({"address": {"street1": "1 rue", "street2": "", "postCode": "1", "city": "Paris", "stateOrProvince": "",
                  "country": "FRA"}}, "address.country"),
    ({"preferences": {"language": "fr-FR-x-operator"}}, "preferences.language"),
])
async def test_value_too_long_writes_nothing(directory: CorporateDirectory, tenant: str, sql: Any,
                                             changes: dict[str, Any], field: str) -> None:
    record = _record(msisdns=())
    await directory.upsert_customer(tenant, record)
    before = await directory.get(tenant, record["customerId"])
    with pytest.raises(DirectoryValueTooLong) as too_long:
        await directory.update(tenant, record["customerId"], changes, actor="agent")
    assert too_long.value.field == field and too_long.value.status == 400
    assert await directory.get(tenant, record["customerId"]) == before
    assert _log(sql, tenant, record["customerId"]) == []


async def test_upsert_value_too_long_writes_nothing(directory: CorporateDirectory, tenant: str) -> None:
    record = _record(msisdns=("+33600000551",))
    record["products"][0]["name"] = "B" * 201
    with pytest.raises(DirectoryValueTooLong) as too_long:
        await directory.upsert_customer(tenant, record)
    assert too_long.value.field == "products[0].name"
    record = _record(msisdns=("+33600000551",))
    record["name"]["organization"] = "O" * 201
    with pytest.raises(DirectoryValueTooLong):
        await directory.upsert_customer(tenant, record)
    assert await directory.get(tenant, record["customerId"]) is None
    assert await directory.find_by_msisdn(tenant, "+33600000551") is None
    with pytest.raises(DirectoryValueTooLong):
        await directory.update(tenant, _id(), {"phone": "+33100000000"}, actor="a" * 201)


async def test_server_side_data_too_long_is_mapped(directory: CorporateDirectory, tenant: str) -> None:
    """Should a value ever reach the server unchecked, its refusal (error 1406) names the field."""
    record = _record(msisdns=())
    await directory.upsert_customer(tenant, record)

    async def oversized(cur: Any) -> None:
        await cur.execute("UPDATE corporate_customer SET city = %s WHERE tenant_id = %s AND id = %s",
                          ("C" * 101, tenant, record["customerId"]))

    with pytest.raises(DirectoryValueTooLong) as too_long:
        await directory._run(oversized)
    assert too_long.value.field == "address.city" and too_long.value.max_length == 100
    current = await directory.get(tenant, record["customerId"])
    assert current is not None and current["address"]["city"] == "Stuttgart"


async def test_sql_injection_looking_input_is_stored_literally(directory: CorporateDirectory, tenant: str,
                                                               sql: Any) -> None:
    nasty_org = "Robert'); DROP TABLE corporate_customer; --"
    nasty_email = "o'brien+x\\'or'1'='1@example.com"
    record = _record(email=nasty_email, msisdns=("+33600000561",))
    record["name"] = {"givenName": "Seán", "familyName": "O'Brien", "organization": nasty_org}
    await directory.upsert_customer(tenant, record)

    assert await directory.find_by_email(tenant, "' OR '1'='1") == []
    assert await directory.find_by_email(tenant, "%") == []
    assert await directory.find_by_msisdn(tenant, "' OR 1=1 -- ") is None
    assert await directory.get(tenant, "' OR '1'='1") is None
    assert await directory.get(f"{tenant}' OR '1'='1", record["customerId"]) is None

    profile = await directory.update(tenant, record["customerId"], {
        "phone": "';DELETE--", "preferences": {"language": "'); --"}}, actor="x'); DROP TABLE t; --",
        request_id="1' OR '1'='1")
    assert profile["name"]["organization"] == nasty_org and profile["name"]["familyName"] == "O'Brien"
    assert profile["email"] == nasty_email
    assert profile["phone"] == "';DELETE--" and profile["preferences"]["language"] == "'); --"
    found = await directory.find_by_email(tenant, nasty_email.upper())
    assert [p["customerId"] for p in found] == [record["customerId"]]
    log = _log(sql, tenant, record["customerId"])
    assert log[-1]["actor"] == "x'); DROP TABLE t; --" and log[-1]["request_id"] == "1' OR '1'='1"
    assert len(sql("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", DB_NAME)) == 3


# -------------------------------------------------------------------------------------------------- availability


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_server_is_unavailable() -> None:
    corporate = CorporateDirectory.from_url(f"mysql://corp:s3cret-pw@127.0.0.1:{_closed_port()}/directory")
    with pytest.raises(DirectoryUnavailable) as down:
        await corporate.start()
    assert down.value.status == 503
    assert "127.0.0.1" in down.value.message and "s3cret-pw" not in str(down.value)
    with pytest.raises(DirectoryUnavailable):
        await corporate.get("tenant", "id")
    assert await corporate.ping() is False
    assert "s3cret-pw" not in repr(corporate)
    await corporate.close()


async def test_bad_credentials_are_unavailable(database_url: str) -> None:
    corporate = CorporateDirectory.from_url(url(DB_NAME, password="wrong-s3cret"))
    with pytest.raises(DirectoryUnavailable) as denied:
        await corporate.start()
    assert "wrong-s3cret" not in str(denied.value)
    assert "wrong-s3cret" not in "".join(str(arg) for arg in denied.value.args)


async def test_unknown_database_is_unavailable(database_url: str) -> None:
    corporate = CorporateDirectory.from_url(url(f"{DB_NAME}_missing"))
    with pytest.raises(DirectoryUnavailable):
        await corporate.start()


def test_from_url() -> None:
    corporate = CorporateDirectory.from_url("mariadb://corp%40dir:p%3Ass@db.example.net:3307/crm")
    assert (corporate.host, corporate.port, corporate.user, corporate.database) == ("db.example.net", 3307,
                                                                                     "corp@dir", "crm")
    assert "p:ss" not in repr(corporate)
    assert CorporateDirectory.from_url("mysql://root@localhost/crm").port == 3306
    for bad in ("postgresql://u@h/db", "mysql://u@h/", "mysql://u@h:3306/db?ssl=1"):
        with pytest.raises(ValueError):
            CorporateDirectory.from_url(bad)


def test_errors_are_typed_domain_errors() -> None:
    for cls in (DirectoryUnavailable, DirectoryConflict, DirectoryNotFound, DirectoryInvalidChange):
        assert issubclass(cls, CorporateDirectoryError)
    too_long = DirectoryValueTooLong("address.street1", 200)
    assert isinstance(too_long, CorporateDirectoryError)
    assert too_long.body()["message"] == "address.street1 is too long for the corporate customer directory " \
                                         "(at most 200 characters)"


# ------------------------------------------------------------------------------------------------------ demo data


async def test_seed_demo_is_idempotent(directory: CorporateDirectory, tenant: str) -> None:
    await seed_demo(directory, tenant)
    first = [await directory.get(tenant, c["customerId"]) for c in DEMO_CORPORATE_CUSTOMERS]
    await seed_demo(directory, tenant)
    second = [await directory.get(tenant, c["customerId"]) for c in DEMO_CORPORATE_CUSTOMERS]
    assert first == second
    assert all(p is not None and p["version"] == 0 for p in second)

    organizations = {p["name"]["organization"] for p in second if p}
    assert organizations == {"Northwind Logistics", "Contoso Retail", "Fabrikam Manufacturing"}
    for profile in second:
        assert profile is not None and profile["emailVerified"] is True
        assert 2 <= len(profile["products"]) <= 3
        for product in profile["products"]:
            assert product["msisdn"].startswith("+336000009") and len(product["msisdn"]) == 12
    northwind = await directory.find_by_msisdn(tenant, "+33600000901")
    assert northwind is not None and northwind["name"]["organization"] == "Northwind Logistics"
    found = await directory.find_by_email(tenant, "IT.Manager@northwind.example")
    assert [p["customerId"] for p in found] == [northwind["customerId"]]

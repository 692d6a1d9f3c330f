"""The corporate customer directory: the operator's on-premises MariaDB/MySQL database holding corporate (B2B)
customers — the organization, its contact person, its postal address, its contact preferences and its lines.

The self-care portal reads and updates corporate customers through :class:`CorporateDirectory` and gets the same
profile shape as for residential customers (plus ``"version"`` for optimistic updates). Every query is filtered by
tenant and parameterized; every update is one transaction (row lock, new version, a change-log row naming the
changed fields — never their values).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiomysql
import pymysql

from openbss.platform import personal_data
from openbss.platform.errors import DomainError

T = TypeVar("T")

ACCOUNT_STATES = ("active", "suspended", "closed")

# Strict mode makes the server refuse (error 1406) instead of silently truncating a value that does not fit.
_SESSION_INIT = ("SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,"
                 "NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'")
_DEADLOCK_RETRIES = 3

# ---------------------------------------------------------------------------------------------------------- schema

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS corporate_customer (
        id VARCHAR(36) NOT NULL,
        tenant_id VARCHAR(63) NOT NULL,
        organization VARCHAR(200) NOT NULL DEFAULT '',
        contact_given_name VARCHAR(100) NOT NULL DEFAULT '',
        contact_family_name VARCHAR(100) NOT NULL DEFAULT '',
        email VARCHAR(254) NULL,
        email_verified BOOL NOT NULL DEFAULT FALSE,
        phone VARCHAR(20) NULL,
        street1 VARCHAR(200) NULL,
        street2 VARCHAR(200) NULL,
        post_code VARCHAR(20) NULL,
        city VARCHAR(100) NULL,
        state_or_province VARCHAR(100) NULL,
        country CHAR(2) NULL,
        pref_email BOOL NOT NULL DEFAULT TRUE,
        pref_sms BOOL NOT NULL DEFAULT FALSE,
        pref_post BOOL NOT NULL DEFAULT FALSE,
        language VARCHAR(10) NOT NULL DEFAULT 'en',
        account_state VARCHAR(20) NOT NULL DEFAULT 'active',
        version INT NOT NULL DEFAULT 0,
        updated_at DATETIME(6) NOT NULL,
        PRIMARY KEY (id),
        KEY ix_corporate_customer_tenant_email (tenant_id, email)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE IF NOT EXISTS corporate_line (
        tenant_id VARCHAR(63) NOT NULL,
        msisdn VARCHAR(20) NOT NULL,
        customer_id VARCHAR(36) NOT NULL,
        product_id VARCHAR(64) NOT NULL,
        product_name VARCHAR(200) NOT NULL,
        status VARCHAR(20) NOT NULL,
        PRIMARY KEY (tenant_id, msisdn),
        KEY ix_corporate_line_customer (customer_id, tenant_id),
        CONSTRAINT fk_corporate_line_customer FOREIGN KEY (customer_id)
            REFERENCES corporate_customer (id) ON DELETE CASCADE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE IF NOT EXISTS corporate_change_log (
        id BIGINT NOT NULL AUTO_INCREMENT,
        tenant_id VARCHAR(63) NOT NULL,
        customer_id VARCHAR(36) NOT NULL,
        changed_at DATETIME(6) NOT NULL,
        actor VARCHAR(200) NOT NULL,
        request_id VARCHAR(128) NULL,
        `fields` JSON NOT NULL,
        PRIMARY KEY (id),
        KEY ix_corporate_change_log_customer (tenant_id, customer_id, changed_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
)

# column -> (field in the profile shape, maximum length in characters)
_COLUMNS: dict[str, tuple[str, int]] = {
    "id": ("customerId", 36),
    "tenant_id": ("tenantId", 63),
    "organization": ("name.organization", 200),
    "contact_given_name": ("name.givenName", 100),
    "contact_family_name": ("name.familyName", 100),
    "email": ("email", 254),
    "phone": ("phone", 20),
    "street1": ("address.street1", 200),
    "street2": ("address.street2", 200),
    "post_code": ("address.postCode", 20),
    "city": ("address.city", 100),
    "state_or_province": ("address.stateOrProvince", 100),
    "country": ("address.country", 2),
    "language": ("preferences.language", 10),
    "account_state": ("accountState", 20),
    "msisdn": ("products.msisdn", 20),
    "product_id": ("products.id", 64),
    "product_name": ("products.name", 200),
    "status": ("products.status", 20),
    "actor": ("actor", 200),
    "request_id": ("requestId", 128),
}
_ADDRESS = {"street1": "street1", "street2": "street2", "postCode": "post_code", "city": "city",
            "stateOrProvince": "state_or_province", "country": "country"}
_PREFERENCES = {"email": "pref_email", "sms": "pref_sms", "post": "pref_post", "language": "language"}
_UPDATABLE = ("email", "emailVerified", "phone", "address", "preferences")
# the columns a profile update may change, written all at once under the row lock
_MUTABLE = ("email", "email_verified", "phone", *_ADDRESS.values(), "pref_email", "pref_sms", "pref_post", "language")
_RECORD_KEYS = {"customerId", "segment", "version", "name", "email", "emailVerified", "phone", "address",
                "preferences", "accountState", "products"}

_RECORD_COLUMNS = ("organization", "contact_given_name", "contact_family_name", *_MUTABLE, "account_state")

# The statements are written out in full: no SQL is ever assembled from values.
_SELECT_CUSTOMER = (
    "SELECT id, tenant_id, organization, contact_given_name, contact_family_name, email, email_verified, phone, "
    "street1, street2, post_code, city, state_or_province, country, pref_email, pref_sms, pref_post, language, "
    "account_state, version FROM corporate_customer WHERE tenant_id = %s AND id = %s")
_SELECT_CUSTOMERS_BY_EMAIL = (
    "SELECT id, tenant_id, organization, contact_given_name, contact_family_name, email, email_verified, phone, "
    "street1, street2, post_code, city, state_or_province, country, pref_email, pref_sms, pref_post, language, "
    "account_state, version FROM corporate_customer WHERE tenant_id = %s AND email = %s ORDER BY id")
# same column order as _MUTABLE
_UPDATE_PROFILE = (
    "UPDATE corporate_customer SET email = %s, email_verified = %s, phone = %s, street1 = %s, street2 = %s, "
    "post_code = %s, city = %s, state_or_province = %s, country = %s, pref_email = %s, pref_sms = %s, "
    "pref_post = %s, language = %s, version = version + 1, updated_at = UTC_TIMESTAMP(6) "
    "WHERE tenant_id = %s AND id = %s")
# same column order as _RECORD_COLUMNS
_INSERT_CUSTOMER = (
    "INSERT INTO corporate_customer (id, tenant_id, organization, contact_given_name, contact_family_name, email, "
    "email_verified, phone, street1, street2, post_code, city, state_or_province, country, pref_email, pref_sms, "
    "pref_post, language, account_state, version, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, UTC_TIMESTAMP(6))")
_REPLACE_CUSTOMER = (
    "UPDATE corporate_customer SET organization = %s, contact_given_name = %s, contact_family_name = %s, "
    "email = %s, email_verified = %s, phone = %s, street1 = %s, street2 = %s, post_code = %s, city = %s, "
    "state_or_province = %s, country = %s, pref_email = %s, pref_sms = %s, pref_post = %s, language = %s, "
    "account_state = %s, version = version + 1, updated_at = UTC_TIMESTAMP(6) WHERE tenant_id = %s AND id = %s")

# ---------------------------------------------------------------------------------------------------------- errors


class CorporateDirectoryError(DomainError):
    """The corporate customer directory refused or failed an operation."""

    status = 502
    code = "CORPORATE_DIRECTORY_ERROR"
    reason = "Corporate customer directory error"


class DirectoryUnavailable(CorporateDirectoryError):
    """The directory cannot be reached (server down, bad credentials, unknown database, schema missing)."""

    status = 503
    code = "UPSTREAM_UNAVAILABLE"
    reason = "Service temporarily unavailable"


class DirectoryConflict(CorporateDirectoryError):
    """The customer record changed since the version the caller read, or a key is already taken."""

    status = 409
    code = "CONFLICT"
    reason = "Conflict"


class DirectoryValueTooLong(CorporateDirectoryError):
    """A value does not fit its column in the directory; ``field`` names it in the profile shape."""

    status = 400
    code = "VALUE_TOO_LONG"
    reason = "Value too long"

    def __init__(self, field: str, max_length: int | None = None) -> None:
        limit = f" (at most {max_length} characters)" if max_length else ""
        super().__init__(f"{field} is too long for the corporate customer directory{limit}")
        self.field = field
        self.max_length = max_length


class DirectoryNotFound(CorporateDirectoryError):
    """No such corporate customer in this tenant."""

    status = 404
    code = "NOT_FOUND"
    reason = "Resource not found"


class DirectoryInvalidChange(CorporateDirectoryError):
    """A change or record the directory cannot store: unknown key or wrong type."""

    status = 400
    code = "INVALID_INPUT"
    reason = "Invalid input"


class _Deadlock(DirectoryConflict):
    """InnoDB rolled the transaction back to break a deadlock; the unit of work is retried."""


_TOO_LONG = re.compile(r"column '([^']+)'")
_UNAVAILABLE_CODES = {1044, 1045, 1049, 1129, 1130, 1152, 1153, 1184, 2002, 2003, 2005, 2006, 2013, 2055}


def _translate(exc: pymysql.err.MySQLError, where: str) -> CorporateDirectoryError:
    """The directory error for a driver error. Server texts that may quote stored values are not passed on."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    text = str(exc.args[1]) if len(exc.args) > 1 else ""
    if code == 1406:
        match = _TOO_LONG.search(text)
        column = match.group(1) if match else ""
        field, limit = _COLUMNS.get(column, (column or "a value", 0))
        return DirectoryValueTooLong(field, limit or None)
    if code == 1213:
        return _Deadlock("the customer record was being changed concurrently; retry")
    if code == 1205:
        return DirectoryUnavailable(f"corporate customer directory at {where} is busy (lock wait timeout)")
    if code == 1062:
        return DirectoryConflict("a customer or line with the same key already exists in the corporate directory")
    if code == 1146:
        return DirectoryUnavailable(f"corporate customer directory at {where} has no schema (table missing)")
    if code in _UNAVAILABLE_CODES or isinstance(exc, pymysql.err.InterfaceError):
        return DirectoryUnavailable(f"corporate customer directory at {where} is unavailable: {text or code}")
    return CorporateDirectoryError(f"corporate customer directory at {where} failed (error {code}, "
                                   f"{type(exc).__name__})")


# ------------------------------------------------------------------------------------------------- value checking


def _fit(column: str, value: str | None, field: str | None = None) -> str | None:
    if value is not None and len(value) > _COLUMNS[column][1]:
        raise DirectoryValueTooLong(field or _COLUMNS[column][0], _COLUMNS[column][1])
    return value


def _text(value: Any, field: str, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise DirectoryInvalidChange(f"{field} must be text{' or null' if nullable else ''}")
    return value


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise DirectoryInvalidChange(f"{field} must be true or false")
    return value


def normalize_email(email: str | None) -> str | None:
    """How the directory stores and matches an email address: the platform's normalization; empty means none."""
    if email is None:
        return None
    return personal_data.normalize_email(email) or None


def _address_columns(address: Any) -> dict[str, str | None]:
    if address is None:
        return dict.fromkeys(_ADDRESS.values())
    if not isinstance(address, Mapping):
        raise DirectoryInvalidChange("address must be an object or null")
    unknown = set(address) - set(_ADDRESS)
    if unknown:
        raise DirectoryInvalidChange(f"unknown address field(s): {', '.join(sorted(unknown))}")
    out: dict[str, str | None] = {}
    for key, column in _ADDRESS.items():
        optional = key in ("street2", "stateOrProvince")
        if key not in address and not optional:
            raise DirectoryInvalidChange(f"address.{key} is required")
        value = _text(address.get(key, ""), f"address.{key}", nullable=optional)
        if key == "country" and value is not None:
            value = value.upper()
        out[column] = _fit(column, value or "")
    return out


def _preference_columns(preferences: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(preferences, Mapping):
        raise DirectoryInvalidChange("preferences must be an object")
    unknown = set(preferences) - set(_PREFERENCES)
    if unknown:
        raise DirectoryInvalidChange(f"unknown preference(s): {', '.join(sorted(unknown))}")
    out = {column: current[column] for column in _PREFERENCES.values()}
    for key, value in preferences.items():
        column = _PREFERENCES[key]
        if key == "language":
            out[column] = _fit(column, _text(value, "preferences.language"))
        else:
            out[column] = _flag(value, f"preferences.{key}")
    return out


def _apply_changes(row: Mapping[str, Any], changes: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The new values of the mutable columns and the names of the profile fields that actually change."""
    new = {column: row[column] for column in _MUTABLE}
    if "email" in changes:
        email = _fit("email", normalize_email(_text(changes["email"], "email", nullable=True)))
        if email != row["email"]:
            new["email"] = email
            # an address nobody has confirmed is not a verified one
            new["email_verified"] = False
    if "emailVerified" in changes:
        new["email_verified"] = _flag(changes["emailVerified"], "emailVerified")
    if "phone" in changes:
        phone = _text(changes["phone"], "phone", nullable=True)
        new["phone"] = _fit("phone", (phone or "").strip() or None)
    if "address" in changes:
        new.update(_address_columns(changes["address"]))
    if "preferences" in changes:
        new.update(_preference_columns(changes["preferences"], row))
    changed: list[str] = []
    if new["email"] != row["email"]:
        changed.append("email")
    if bool(new["email_verified"]) != bool(row["email_verified"]):
        changed.append("emailVerified")
    if new["phone"] != row["phone"]:
        changed.append("phone")
    if any(new[column] != row[column] for column in _ADDRESS.values()):
        changed.append("address")
    for key, column in _PREFERENCES.items():
        differs = new[column] != row[column] if key == "language" else bool(new[column]) != bool(row[column])
        if differs:
            changed.append(f"preferences.{key}")
    return new, changed


def _record_values(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str, str]]]:
    """Columns and lines of a full customer record (profile shape) for :meth:`CorporateDirectory.upsert_customer`."""
    unknown = set(record) - _RECORD_KEYS
    if unknown:
        raise DirectoryInvalidChange(f"unknown customer field(s): {', '.join(sorted(unknown))}")
    name = record.get("name") or {}
    if not isinstance(name, Mapping):
        raise DirectoryInvalidChange("name must be an object")
    state = record.get("accountState", "active")
    if state not in ACCOUNT_STATES:
        raise DirectoryInvalidChange(f"accountState must be one of {', '.join(ACCOUNT_STATES)}")
    given_preferences = record.get("preferences") or {}
    if not isinstance(given_preferences, Mapping):
        raise DirectoryInvalidChange("preferences must be an object")
    preferences = {"email": True, "sms": False, "post": False, "language": "en", **given_preferences}
    base = {"pref_email": True, "pref_sms": False, "pref_post": False, "language": "en"}
    values: dict[str, Any] = {
        "organization": _fit("organization", _text(name.get("organization") or "", "name.organization")),
        "contact_given_name": _fit("contact_given_name", _text(name.get("givenName") or "", "name.givenName")),
        "contact_family_name": _fit("contact_family_name", _text(name.get("familyName") or "", "name.familyName")),
        "email": _fit("email", normalize_email(_text(record.get("email"), "email", nullable=True))),
        "email_verified": _flag(record.get("emailVerified", False), "emailVerified"),
        "phone": _fit("phone", (_text(record.get("phone"), "phone", nullable=True) or "").strip() or None),
        **_address_columns(record.get("address")),
        **_preference_columns(preferences, base),
        "account_state": state,
    }
    lines: list[tuple[str, str, str, str]] = []
    products = record.get("products") or []
    if not isinstance(products, Sequence) or isinstance(products, str):
        raise DirectoryInvalidChange("products must be a list")
    for index, product in enumerate(products):
        if not isinstance(product, Mapping):
            raise DirectoryInvalidChange(f"products[{index}] must be an object")
        line = []
        for key, column in (("msisdn", "msisdn"), ("id", "product_id"), ("name", "product_name"),
                            ("status", "status")):
            value = _text(product.get(key), f"products[{index}].{key}") or ""
            line.append(_fit(column, value, f"products[{index}].{key}") or "")
        lines.append((line[0], line[1], line[2], line[3]))
    return values, sorted(lines)


def _profile(row: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    given, family = row["contact_given_name"] or "", row["contact_family_name"] or ""
    address = None
    if any(row[column] is not None for column in _ADDRESS.values()):
        address = {key: row[column] or "" for key, column in _ADDRESS.items()}
    return {
        "customerId": row["id"],
        "segment": "corporate",
        "name": {"givenName": given, "familyName": family, "fullName": f"{given} {family}".strip(),
                 "organization": row["organization"] or ""},
        "email": row["email"],
        "emailVerified": bool(row["email_verified"]),
        "phone": row["phone"],
        "address": address,
        "preferences": {"email": bool(row["pref_email"]), "sms": bool(row["pref_sms"]),
                        "post": bool(row["pref_post"]), "language": row["language"] or ""},
        "accountState": row["account_state"],
        "products": [{"id": line["product_id"], "name": line["product_name"], "status": line["status"],
                      "msisdn": line["msisdn"]} for line in lines],
        "version": int(row["version"]),
    }


# ------------------------------------------------------------------------------------------------------- directory


class CorporateDirectory:
    """The corporate customer directory, reached through a small aiomysql connection pool."""

    def __init__(self, *, host: str, port: int = 3306, user: str, password: str = "", database: str) -> None:
        self.host, self.port, self.user, self.database = host, port, user, database
        self._password = password
        self._pool: Any = None
        self._starting = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> CorporateDirectory:
        """``mysql://user:password@host:port/database`` (``mariadb://`` too); user and password percent-encoded."""
        parts = urlsplit(url)
        if parts.scheme.split("+")[0] not in ("mysql", "mariadb"):
            raise ValueError("the corporate directory URL must start with mysql:// or mariadb://")
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database or "/" in database:
            raise ValueError("the corporate directory URL must name a host and a database: "
                             "mysql://user:password@host:port/database")
        if parts.query:
            raise ValueError("the corporate directory URL takes no query parameters")
        return cls(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or "root"),
                   password=unquote(parts.password or ""), database=database)

    @property
    def where(self) -> str:
        """Where the directory is, for messages (never the password)."""
        return f"{self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        return f"CorporateDirectory({self.user}@{self.where})"

    async def start(self) -> None:
        """Open the connection pool; :class:`DirectoryUnavailable` when the server cannot be reached."""
        async with self._starting:
            if self._pool is not None:
                return
            try:
                self._pool = await aiomysql.create_pool(
                    minsize=1, maxsize=10, host=self.host, port=self.port, user=self.user, password=self._password,
                    db=self.database, autocommit=False, charset="utf8mb4", connect_timeout=5,
                    init_command=_SESSION_INIT, pool_recycle=1800)
            except pymysql.err.MySQLError as exc:
                raise _translate(exc, self.where) from exc
            except OSError as exc:
                raise DirectoryUnavailable(f"corporate customer directory at {self.where} is unavailable: "
                                           f"{type(exc).__name__}") from exc

    async def close(self) -> None:
        """Close the pool (waits for connections in use to come back)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            await pool.wait_closed()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        if self._pool is None:
            await self.start()
        try:
            async with self._pool.acquire() as conn:
                try:
                    async with conn.cursor(aiomysql.DictCursor) as cur:
                        yield cur
                    await conn.commit()
                except BaseException:
                    # a connection whose rollback failed is still in a transaction: the pool discards it
                    with suppress(Exception):
                        await conn.rollback()
                    raise
        except pymysql.err.MySQLError as exc:
            raise _translate(exc, self.where) from exc
        except OSError as exc:
            raise DirectoryUnavailable(f"corporate customer directory at {self.where} is unavailable: "
                                       f"{type(exc).__name__}") from exc

    async def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(cursor)`` in one transaction, again when InnoDB breaks a deadlock by rolling it back."""
        attempt = 0
        while True:
            try:
                async with self._transaction() as cur:
                    return await work(cur)
            except _Deadlock:
                attempt += 1
                if attempt >= _DEADLOCK_RETRIES:
                    raise

    async def create_schema(self) -> None:
        """Create the directory's tables when they do not exist yet."""

        async def work(cur: Any) -> None:
            await cur.execute("SET SESSION sql_notes = 0")  # "table already exists" is expected, not a warning
            try:
                for statement in SCHEMA:
                    await cur.execute(statement)
            finally:
                await cur.execute("SET SESSION sql_notes = 1")

        await self._run(work)

    async def ping(self) -> bool:
        """Whether the directory answers now."""
        try:
            async def work(cur: Any) -> Any:
                await cur.execute("SELECT 1")
                return await cur.fetchone()

            return await self._run(work) is not None
        except CorporateDirectoryError:
            return False

    # ---------------------------------------------------------------------------------------------------- reads

    @staticmethod
    async def _profiles(cur: Any, tenant_id: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            return []
        placeholders = ", ".join(["%s"] * len(rows))
        await cur.execute(
            "SELECT customer_id, msisdn, product_id, product_name, status FROM corporate_line "  # noqa: S608
            f"WHERE tenant_id = %s AND customer_id IN ({placeholders}) ORDER BY msisdn",  # placeholders only
            (tenant_id, *(row["id"] for row in rows)))
        lines: dict[str, list[Mapping[str, Any]]] = {}
        for line in await cur.fetchall():
            lines.setdefault(line["customer_id"], []).append(line)
        return [_profile(row, lines.get(row["id"], [])) for row in rows]

    @staticmethod
    async def _customer(cur: Any, tenant_id: str, customer_id: str, *, lock: bool = False) -> Any:
        await cur.execute(_SELECT_CUSTOMER + " FOR UPDATE" if lock else _SELECT_CUSTOMER, (tenant_id, customer_id))
        return await cur.fetchone()

    async def get(self, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
        """The customer's profile, or None when the tenant has no such customer."""

        async def work(cur: Any) -> dict[str, Any] | None:
            row = await self._customer(cur, tenant_id, customer_id)
            return (await self._profiles(cur, tenant_id, [row]))[0] if row else None

        return await self._run(work)

    async def version_of(self, tenant_id: str, customer_id: str) -> int | None:
        """The record's current version, or None when the tenant has no such customer."""

        async def work(cur: Any) -> int | None:
            await cur.execute("SELECT version FROM corporate_customer WHERE tenant_id = %s AND id = %s",
                              (tenant_id, customer_id))
            row = await cur.fetchone()
            return int(row["version"]) if row else None

        return await self._run(work)

    async def find_by_email(self, tenant_id: str, email: str) -> list[dict[str, Any]]:
        """The customers whose contact email is this address (case-insensitive, surrounding spaces ignored),
        verified or not: each profile carries ``emailVerified`` and the caller decides."""
        normalized = normalize_email(email)
        if normalized is None or len(normalized) > _COLUMNS["email"][1]:
            return []

        async def work(cur: Any) -> list[dict[str, Any]]:
            await cur.execute(_SELECT_CUSTOMERS_BY_EMAIL, (tenant_id, normalized))
            return await self._profiles(cur, tenant_id, await cur.fetchall())

        return await self._run(work)

    async def find_by_msisdn(self, tenant_id: str, msisdn: str) -> dict[str, Any] | None:
        """The profile of the customer holding this line (E.164, e.g. ``+33612345678``), whatever its status."""
        number = msisdn.strip()

        async def work(cur: Any) -> dict[str, Any] | None:
            await cur.execute("SELECT customer_id FROM corporate_line WHERE tenant_id = %s AND msisdn = %s",
                              (tenant_id, number))
            line = await cur.fetchone()
            row = await self._customer(cur, tenant_id, line["customer_id"]) if line else None
            return (await self._profiles(cur, tenant_id, [row]))[0] if row else None

        return await self._run(work)

    # --------------------------------------------------------------------------------------------------- writes

    async def update(self, tenant_id: str, customer_id: str, changes: Mapping[str, Any], *, actor: str,
                     request_id: str | None = None, expected_version: int | None = None) -> dict[str, Any]:
        """Apply a customer's changes (``email``, ``emailVerified``, ``phone``, ``address``, partial
        ``preferences``) in one transaction: lock the record, check ``expected_version``, write the new values
        and version, log the changed field names. A new email is unverified unless ``emailVerified`` says
        otherwise. Nothing changes (no new version) when the values are already those. Returns the new profile."""
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise DirectoryInvalidChange(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
        _fit("actor", actor)
        _fit("request_id", request_id)

        async def work(cur: Any) -> dict[str, Any]:
            row = await self._customer(cur, tenant_id, customer_id, lock=True)
            if row is None:
                raise DirectoryNotFound(f"no corporate customer {customer_id}")
            if expected_version is not None and int(row["version"]) != expected_version:
                raise DirectoryConflict(f"the customer record is at version {row['version']}, not "
                                        f"{expected_version}: it was changed meanwhile")
            new, changed = _apply_changes(row, changes)
            if changed:
                await cur.execute(_UPDATE_PROFILE, (*(new[column] for column in _MUTABLE), tenant_id, customer_id))
                await cur.execute(
                    "INSERT INTO corporate_change_log (tenant_id, customer_id, changed_at, actor, request_id, `fields`)"
                    " VALUES (%s, %s, UTC_TIMESTAMP(6), %s, %s, %s)",
                    (tenant_id, customer_id, actor, request_id, json.dumps(changed)))
                row = await self._customer(cur, tenant_id, customer_id)
            return (await self._profiles(cur, tenant_id, [row]))[0]

        return await self._run(work)

    async def upsert_customer(self, tenant_id: str, record: Mapping[str, Any]) -> None:
        """Create or replace a customer and its lines from a record in the profile shape (``customerId``, ``name``,
        ``email``, ..., ``products``). The version moves only when something differs, so seeding is idempotent."""
        customer_id = _text(record.get("customerId"), "customerId") or ""
        if not customer_id:
            raise DirectoryInvalidChange("customerId is required")
        _fit("id", customer_id)
        _fit("tenant_id", tenant_id)
        values, lines = _record_values(record)
        ordered = tuple(values[column] for column in _RECORD_COLUMNS)

        async def work(cur: Any) -> None:
            await cur.execute("SELECT tenant_id FROM corporate_customer WHERE id = %s FOR UPDATE", (customer_id,))
            existing = await cur.fetchone()
            if existing is None:
                await cur.execute(_INSERT_CUSTOMER, (customer_id, tenant_id, *ordered))
            elif existing["tenant_id"] != tenant_id:
                raise DirectoryConflict(f"customer id {customer_id} is already in use")
            else:
                row = await self._customer(cur, tenant_id, customer_id)
                await cur.execute("SELECT msisdn, product_id, product_name, status FROM corporate_line "
                                  "WHERE tenant_id = %s AND customer_id = %s", (tenant_id, customer_id))
                current = sorted((r["msisdn"], r["product_id"], r["product_name"], r["status"])
                                 for r in await cur.fetchall())
                if current == lines and all(row[column] == values[column] for column in _RECORD_COLUMNS):
                    return
                await cur.execute(_REPLACE_CUSTOMER, (*ordered, tenant_id, customer_id))
            await cur.execute("DELETE FROM corporate_line WHERE tenant_id = %s AND customer_id = %s",
                              (tenant_id, customer_id))
            if lines:
                await cur.executemany(
                    "INSERT INTO corporate_line (tenant_id, msisdn, customer_id, product_id, product_name, status) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [(tenant_id, msisdn, customer_id, pid, pname, status) for msisdn, pid, pname, status in lines])

        await self._run(work)

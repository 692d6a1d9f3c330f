"""The machine's MariaDB as the operator's corporate customer directory in tests.

``OPENBSS_TEST_MARIADB_URL`` (default mysql://root@127.0.0.1:3306/) names the server. Under ``CI=true`` a missing
MariaDB fails the run; elsewhere the tests that need it skip with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
SERVER_URL = os.environ.get("OPENBSS_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/")


def server() -> dict[str, Any]:
    parts = urlsplit(SERVER_URL)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or "root"), "password": unquote(parts.password or "")}


def connect(database: str | None = None) -> Any:
    return pymysql.connect(**server(), database=database, autocommit=True, connect_timeout=5, charset="utf8mb4",
                           cursorclass=pymysql.cursors.DictCursor)


def url(database: str, *, port: int | None = None, password: str | None = None) -> str:
    s = server()
    secret = s["password"] if password is None else password
    credentials = s["user"] + (f":{secret}" if secret else "")
    return f"mysql://{credentials}@{s['host']}:{port or s['port']}/{database}"


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new empty database ``name`` (dropped afterwards); yields its URL."""
    s = server()
    try:
        admin = connect()
    except pymysql.err.MySQLError as exc:
        reason = f"MariaDB is not reachable at {s['host']}:{s['port']} ({exc.args[-1]})"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(f"{reason}; set OPENBSS_TEST_MARIADB_URL to run the corporate directory tests")
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield url(name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()

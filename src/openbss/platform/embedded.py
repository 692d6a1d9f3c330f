"""The embedded PostgreSQL of a zero-install start: a server from the ``pgserver`` wheel, data under
``<data_dir>/pg``. A second start reuses the same data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DB_NAME = "openbss"


def start_embedded_postgres(data_dir: Path, *, stop_at_exit: bool = True) -> tuple[str, Any]:
    """Start (or reuse) the embedded server; returns the owner URL of the ``openbss`` database and the handle."""
    import warnings

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(str(pgdata), cleanup_mode="stop" if stop_at_exit else None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")  # noqa: S608 - a constant
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    uri: str = server.get_uri(database=DB_NAME)
    return uri, server

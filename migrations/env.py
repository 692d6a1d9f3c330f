"""Alembic environment: runs migrations as the database owner (``OPENBSS_DATABASE_URL``), with psycopg."""

from __future__ import annotations

import re

from alembic import context
from sqlalchemy import create_engine

from openbss.models import metadata
from openbss.platform.db import owner_url

config = context.config

# Tables owned by libraries (the job queue) are created by their own migration, not from our metadata.
EXTERNAL_PREFIXES = ("procrastinate_",)
# The day partitions of kpi_sample are made at run time (assurance_kpi_partition), not from our metadata.
PARTITION_PREFIXES = ("kpi_sample_p", "kpi_sample_default")


# Partitions of partitioned tables (``charging_usage_p202611``, ``charging_usage_pdefault``) are created and dropped
# by ``openbss.platform.partitions`` as time passes, not from our metadata: the models declare the parent only.
PARTITION = re.compile(r"^\w+_p(\d{6}|default)$")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    if type_ == "table" and name and PARTITION.match(name):
        return False
    return not (type_ == "table" and name and name.startswith((*EXTERNAL_PREFIXES, *PARTITION_PREFIXES)))


def _url() -> str:
    override = config.attributes.get("url")
    url = override if override is not None else owner_url()
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_name=include_name,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()

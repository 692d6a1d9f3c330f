"""Usage files collected from an S3-compatible bucket prefix (moto's server speaks the S3 HTTP API): each file
ingested once and moved to processed/; an unreadable one to failed/ with its reason; the same file uploaded again is
a duplicate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.charging.helpers import open_account
from tests.conftest import session_services
from tests.rating.helpers import at, csv_file, rec, usage_of


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


async def test_bucket_collection(rt: Any, tenant: str, s3_endpoint: str) -> None:
    from openbss.platform.storage import S3ObjectStore
    from openbss.rating.collect import collect_store

    store = S3ObjectStore(f"cdr-{tenant}", "mediation", endpoint_url=s3_endpoint, access_key="test",
                          secret_key="test")
    await store.ensure_bucket()
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    data = csv_file([rec("b1", acc["msisdn"], at(6)), rec("b2", acc["msisdn"], at(7))])
    await store.put("incoming/pgw1/2026-11-07.csv", data, content_type="text/csv")
    await store.put("incoming/broken.csv", b"\xff\xfe", content_type="text/csv")
    await store.put("incoming/half.csv.part", b"still uploading", content_type="text/csv")
    rating = session_services().rating.service

    async def collect() -> list[Any]:
        return await collect_store(rt.db, rating, tenant, store, source="s3://cdr/mediation",
                                   base_url="http://testserver")

    got = {str(c.path): c for c in await collect()}
    assert got["pgw1/2026-11-07.csv"].report["rated"] == 2
    assert "not UTF-8" in (got["broken.csv"].error or "")
    assert await store.keys("incoming/") == ["incoming/half.csv.part"]
    assert await store.keys("processed/") == ["processed/pgw1/2026-11-07.csv"]
    assert "not UTF-8" in (await store.get("failed/broken.csv.reason")).decode()
    # uploaded again: a duplicate, nothing changes
    await store.put("incoming/pgw1/2026-11-07.csv", data, content_type="text/csv")
    [again] = await collect()
    assert again.report["duplicateFile"] is True
    assert len(await usage_of(rt, tenant, acc["id"])) == 2

"""Rated usage is stored in monthly partitions of its event time: a month whose partition did not exist yet lands in
the default partition and is moved into its partition when the maintenance creates it (``openbss db partitions``),
still read through TMF635 with a billing team's filters; retention drops whole old partitions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from openbss.platform.partitions import maintain, partitions
from tests.charging.helpers import TMF635, open_account
from tests.charging.test_contract import assert_valid
from tests.conftest import OWNER_URL, bearer
from tests.rating.helpers import csv_file, ingest, rec

SPEC = "TMF635-UsageManagement-v4.0.0.swagger.json"


@pytest.fixture
def owner() -> Any:
    engine = create_engine(OWNER_URL.set(drivername="postgresql+psycopg"))
    yield engine
    engine.dispose()


def _where(owner: Any, usage_id: str) -> str:
    with owner.connect() as conn:
        return str(conn.execute(text("SELECT tableoid::regclass::text FROM charging_usage WHERE id = :i"),
                                {"i": usage_id}).scalar_one())


async def test_usage_moves_into_its_month_partition_and_is_read_through_tmf635(client: Any, rt: Any, tenant: str,
                                                                               owner: Any) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    when = datetime(2031, 3, 5, 10, tzinfo=UTC)
    report = await ingest(rt, tenant, "far.csv", csv_file([
        rec("p1", acc["msisdn"], when), rec("p2", acc["msisdn"], when.replace(day=6), "voice", 60)]))
    assert report["rated"] == 2
    h = bearer(tenant, "admin")
    r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": acc["party_id"]}, headers=h)
    ids = sorted(d["id"] for d in r.json())
    assert len(ids) == 2 and {_where(owner, i) for i in ids} == {"charging_usage_pdefault"}

    with owner.begin() as conn:
        done = maintain(conn, ahead=0, now=datetime(2031, 3, 20, tzinfo=UTC))
    assert done.created == ["charging_usage_p203102", "charging_usage_p203103"]  # the previous month too
    assert done.moved == {"charging_usage_p203103": 2}
    assert {_where(owner, i) for i in ids} == {"charging_usage_p203103"}
    with owner.begin() as conn:  # run again: nothing to do
        again = maintain(conn, ahead=0, now=datetime(2031, 3, 20, tzinfo=UTC))
    assert again.as_dict() == {"created": [], "moved": {}, "dropped": []}

    # read through TMF635 with the filters billing uses, valid against the specification
    for params, expected in (
            ({"usageDate.gte": "2031-03-01T00:00:00Z", "usageDate.lt": "2031-04-01T00:00:00Z"}, 2),
            ({"usageType": "voice"}, 1), ({"status": "rated"}, 2), ({"status": "billed"}, 0),
            ({"usageDate.gte": "2031-03-06T00:00:00Z", "usageType": "data"}, 0)):
        r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": acc["party_id"], **params}, headers=h)
        assert r.status_code == 200 and len(r.json()) == expected, (params, r.text)
        for doc in r.json():
            assert_valid(SPEC, "Usage", doc)
    r = await client.get(f"{TMF635}/usage/{ids[0]}", headers=h)
    assert r.status_code == 200
    # the same records again: duplicates across partitions too
    again_report = await ingest(rt, tenant, "far-again.csv", csv_file([rec("p1", acc["msisdn"], when)]))
    assert (again_report["duplicate"], again_report["rated"]) == (1, 0)


def test_partitions_are_created_ahead_and_dropped_after_the_retention(owner: Any) -> None:
    with owner.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS scratch_usage"))
        conn.execute(text("CREATE TABLE scratch_usage (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at)"))
    tables = {"scratch_usage": "at"}
    try:
        with owner.begin() as conn:
            done = maintain(conn, ahead=2, now=datetime(2030, 11, 15, tzinfo=UTC), tables=tables)
            conn.execute(text("INSERT INTO scratch_usage VALUES (1, '2030-11-02Z'), (2, '2031-01-31Z'), "
                              "(3, '2031-06-01Z')"))
        assert done.created == ["scratch_usage_p203010", "scratch_usage_p203011", "scratch_usage_p203012",
                                "scratch_usage_p203101"]
        with owner.begin() as conn:
            assert set(partitions(conn, "scratch_usage")) == {*done.created, "scratch_usage_pdefault"}
            # five months later, keeping 3 months: October to December 2030 are dropped with their rows
            later = maintain(conn, ahead=1, retention_months=3, now=datetime(2031, 4, 2, tzinfo=UTC), tables=tables)
            assert later.dropped == ["scratch_usage_p203010", "scratch_usage_p203011", "scratch_usage_p203012"]
            assert later.created == ["scratch_usage_p203103", "scratch_usage_p203104", "scratch_usage_p203105"]
            assert [r[0] for r in conn.execute(text("SELECT id FROM scratch_usage ORDER BY id"))] == [2, 3]
            # a retention under 2 months keeps 2 (the current and the previous months are never dropped)
            short = maintain(conn, ahead=0, retention_months=1, now=datetime(2031, 4, 2, tzinfo=UTC), tables=tables)
            assert short.dropped == ["scratch_usage_p203101"]
            assert [r[0] for r in conn.execute(text("SELECT id FROM scratch_usage ORDER BY id"))] == [3]
        with pytest.raises(ValueError, match="retention_months"), owner.begin() as conn:
            maintain(conn, retention_months=-1, tables=tables)
    finally:
        with owner.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS scratch_usage"))

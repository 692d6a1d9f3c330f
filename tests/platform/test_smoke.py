from __future__ import annotations

from typing import Any

from tests.conftest import bearer


async def test_create_and_read_individual(client: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    r = await client.post("/tmf-api/party/v4/individual", json={"givenName": "A", "familyName": "B"}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == body["href"]
    r2 = await client.get(f"/tmf-api/party/v4/individual/{body['id']}", headers=h)
    assert r2.status_code == 200
    assert r2.json()["givenName"] == "A"

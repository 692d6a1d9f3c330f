"""Operability: health, metrics, request ids, and API docs that work on a closed network."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer


async def test_health_reports_database_and_broker(client: Any) -> None:
    assert (await client.get("/health/live")).json() == {"status": "up"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "up", "broker": "in-process"}


async def test_request_id_is_kept_or_assigned(client: Any) -> None:
    mine = await client.get("/health/live", headers={"X-Request-ID": "req-123"})
    assert mine.headers["x-request-id"] == "req-123"
    assigned = await client.get("/health/live")
    assert len(assigned.headers["x-request-id"]) == 32


async def test_metrics_count_requests_per_route(client: Any, tenant: str, relay: Any) -> None:
    h = bearer(tenant, "admin")
    r = await client.post("/tmf-api/party/v4/individual", json={"givenName": "M", "familyName": "Etric"}, headers=h)
    assert r.status_code == 201
    await relay()
    text = (await client.get("/metrics")).text
    assert 'openbss_http_requests_total{method="POST",route="/tmf-api/party/v4/individual",status="201"}' in text
    assert "openbss_http_request_duration_seconds_bucket" in text
    assert "openbss_outbox_lag_seconds_count" in text


async def test_docs_are_served_without_a_cdn(client: Any) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    js = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    schema = (await client.get("/openapi.json")).json()
    tags = {t["name"] for t in schema["tags"]}
    assert {"TMF632 Party Management", "TMF620 Product Catalog Management", "TMF622 Product Ordering"} <= tags

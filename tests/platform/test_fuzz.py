"""Fuzzing the party API from the app's own OpenAPI document with schemathesis: whatever is sent (valid or not
according to the schema), the answer is never a 5xx.

The app runs in the test session's event loop (its database pool belongs to it), so requests go through an
``httpx.ASGITransport`` in that loop; Hypothesis generates and checks the cases in a worker thread that hands each
request to the loop. Bounded: a few examples per operation and generation mode, no shrinking, a fixed seed unless
``OPENBSS_FUZZ_RANDOM=1`` (then every run explores different inputs).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.conftest import bearer

BASE_URL = "http://testserver"
PARTY = "/tmf-api/party/v4"
MAX_EXAMPLES = int(os.environ.get("OPENBSS_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("OPENBSS_FUZZ_RANDOM") == "1"
BUDGET_SECONDS = 60


def party_schema(app: Any) -> Any:
    """The app's OpenAPI, restricted to the party resources and the hub's read/delete (a fuzzed ``POST /hub``
    would register random callback URLs that a delivery job elsewhere in the suite could then call)."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.update(base_url=BASE_URL)
    return schema.include(path_regex=rf"^{PARTY}/((individual|organization)(/|$)|hub/)")


def to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """requests-style keyword arguments (what schemathesis serializes a case to) for ``httpx``."""
    out: dict[str, Any] = {"method": kwargs["method"], "url": kwargs["url"],
                           "headers": dict(kwargs.get("headers") or {}), "params": kwargs.get("params") or None}
    if "json" in kwargs:
        out["content"] = json.dumps(kwargs["json"]).encode()
        out["headers"].setdefault("Content-Type", "application/json")
    elif "data" in kwargs:
        data = kwargs["data"]
        if isinstance(data, bytes | str):
            out["content"] = data
        else:
            out["data"] = data
    if kwargs.get("files"):
        out["files"] = kwargs["files"]
    return out


def test_the_fuzzed_schema_covers_the_party_api(app: Any) -> None:
    labels = {op.ok().label for op in party_schema(app).get_all_operations()}
    for resource in ("individual", "organization"):
        assert f"POST {PARTY}/{resource}" in labels
        assert f"GET {PARTY}/{resource}" in labels
        for method in ("GET", "PATCH", "DELETE"):
            assert f"{method} {PARTY}/{resource}/{{id}}" in labels
    assert f"POST {PARTY}/hub" not in labels
    assert f"GET {PARTY}/hub/{{id}}" in labels and f"DELETE {PARTY}/hub/{{id}}" in labels
    assert not [label for label in labels if PARTY not in label]


async def test_party_api_never_answers_5xx(app: Any, tenant: str) -> None:
    loop = asyncio.get_running_loop()
    auth = bearer(tenant, "admin")
    schema = party_schema(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a crash is a 500 response, checked
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []

    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as client:
        # existing resources, so that item operations also reach real documents (not only 404s)
        ids = {}
        for resource, body in (("individual", {"givenName": "Fuzz", "familyName": "Target"}),
                               ("organization", {"tradingName": "Fuzz Target"})):
            r = await client.post(f"{PARTY}/{resource}", json=body, headers=auth)
            assert r.status_code == 201, r.text
            ids[resource] = r.json()["id"]

        def send(case: Any) -> httpx.Response:
            request = to_httpx(case.as_transport_kwargs(base_url=BASE_URL, headers=auth))
            future = asyncio.run_coroutine_threadsafe(client.request(**request), loop)
            return future.result(timeout=30)

        def fuzz(operation: Any, mode: GenerationMode) -> None:
            strategy = operation.as_strategy(generation_mode=mode)
            if "{id}" in operation.path and "/hub/" not in operation.path:
                resource = operation.path.split("/")[-2]
                strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode,
                                                                      path_parameters={"id": ids[resource]}))

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: Any) -> None:
                response = send(case)
                statuses[(operation.label, response.status_code)] += 1
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                # nothing invalid to generate (e.g. DELETE .../{id}: every string is a valid id)
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except (Exception, BaseExceptionGroup) as exc:  # names the failed check and the curl to reproduce
                failures.append(f"{operation.label} [{mode.value}]: {exc}")

        def run_all() -> None:
            operations = [op.ok() for op in schema.get_all_operations()]
            # deletions last, so that the other operations still find the existing documents
            operations.sort(key=lambda op: op.method.upper() == "DELETE")
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz(operation, mode)

        started = time.monotonic()
        await asyncio.to_thread(run_all)
        elapsed = time.monotonic() - started

    assert not failures, "server errors:\n" + "\n\n".join(failures)
    sent = sum(statuses.values())
    codes = Counter(code for (_, code), n in statuses.items() for _ in range(n))
    # the fuzzer really ran, authenticated, and reached the service (not only validation errors)
    assert sent >= 10 * MAX_EXAMPLES, statuses
    assert not codes[401] and not codes[403], statuses
    assert any(code == 201 for (label, code) in statuses if label.startswith("POST")), statuses
    assert any(code == 200 for (label, code) in statuses if label.startswith("PATCH")), statuses
    assert elapsed < BUDGET_SECONDS, f"fuzzing took {elapsed:.0f}s"


@pytest.mark.parametrize("resource", ["individual", "organization"])
async def test_known_nasty_inputs_are_not_server_errors(app: Any, tenant: str, resource: str) -> None:
    """Inputs a fuzzer finds only by luck, pinned: NUL characters (PostgreSQL's jsonb refuses them), date-times at
    the edge of the representable range, and an offset beyond 64 bits."""
    h = bearer(tenant)
    base = {"givenName": "N", "familyName": "N"} if resource == "individual" else {"tradingName": "N"}
    path = f"{PARTY}/{resource}"
    bodies = [
        {**base, "contactMedium": [{"mediumType": "x\u0000y"}]},
        {**base, "partyCharacteristic": [{"name": "n", "value": {"k\u0000": "v"}}]},
        {**base, "creditRating": [{"validFor": {"startDateTime": "0001-01-01T00:00:00+01:00"}}]},
        {**base, "creditRating": [{"validFor": {"endDateTime": "9999-12-31T23:59:59-01:00"}}]},
    ]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        r = await c.post(path, json=base, headers=h)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        outcomes = []
        for body in bodies:
            r = await c.post(path, json=body, headers=h)
            outcomes.append(("POST", json.dumps(body), r.status_code))
            patch = {k: v for k, v in body.items() if k not in base}
            r = await c.patch(f"{path}/{rid}", json=patch, headers=h)
            outcomes.append(("PATCH", json.dumps(patch), r.status_code))
        for params in ({"offset": str(2**64)}, {"limit": str(2**64)}, {"id": "a\u0000"},
                       {"contactMedium.validFor.startDateTime.gt": "0001-01-01T00:00:00+01:00"}):
            r = await c.get(path, params=params, headers=h)
            outcomes.append(("GET", json.dumps(params), r.status_code))
        assert not [o for o in outcomes if o[2] >= 500], outcomes
        # and none of them is acceptable input
        assert all(o[2] == 400 for o in outcomes), outcomes

        # a NUL in an id of the path: no such resource (or a bad request), never a crash
        for method, url in (("GET", f"{path}/a%00b"), ("PATCH", f"{path}/a%00b"), ("DELETE", f"{path}/a%00b"),
                            ("GET", f"{PARTY}/hub/a%00b"), ("DELETE", f"{PARTY}/hub/a%00b")):
            kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "PATCH" else {}
            r = await c.request(method, url, headers=h, **kwargs)
            outcomes.append((method, url, r.status_code))
            assert r.status_code in (400, 404), (method, url, r.status_code, r.text)
        r = await c.post(f"{PARTY}/hub", json={"callback": "http://localhost/\u0000"}, headers=h)
        outcomes.append(("POST", "hub", r.status_code))
        assert r.status_code == 400, r.text

"""Fuzzing every operation of the app's OpenAPI document with schemathesis, as staff (an administrator's token) and
as the portal (a customer's token bound to its party): whatever is sent, valid or not according to the schema, the
answer is never a 5xx, and every TMF resource answered (created, read, listed, patched) conforms to its published
definition or the extension subtype it declares.

Bounded and deterministic: ``OPENBSS_FUZZ_ALL_EXAMPLES`` examples (default 2) per operation, generation mode and
token, no shrinking, a fixed seed unless ``OPENBSS_FUZZ_RANDOM=1``. Two families of operations are left out, for
what they would reach outside the process, not for what they answer: registering a hub listener (``POST .../hub``:
a random callback URL that a delivery elsewhere in the suite could call) and the portal's sign-in redirects
(``/selfcare/auth/...``: an identity provider on the network). Both have their own tests.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.conftest import bearer
from tests.customer.helpers import make_customer, make_individual
from tests.platform.test_extensions import SHARED, conformance_errors
from tests.platform.test_fuzz import BASE_URL, RANDOM, to_httpx

EXAMPLES = int(os.environ.get("OPENBSS_FUZZ_ALL_EXAMPLES", "2"))
BUDGET_SECONDS = 600  # ≈ 2 minutes on an idle 2-core machine; the bound is for a machine shared with others
EXCLUDED = r"^(?!.*/hub$)(?!/selfcare/auth/)"


def all_operations(app: Any) -> Any:
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.update(base_url=BASE_URL)
    return schema.include(path_regex=EXCLUDED)


def test_the_fuzzed_schema_is_every_operation(app: Any) -> None:
    document = app.openapi()
    every = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item
             if m in ("get", "post", "put", "patch", "delete")}
    fuzzed = {op.ok().label for op in all_operations(app).get_all_operations()}
    left_out = every - fuzzed
    assert all(label.endswith("/hub") or "/selfcare/auth/" in label for label in left_out), left_out
    assert len(fuzzed) >= 200, len(fuzzed)


def tmf_shapes(services: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(method, path) → (published specification, definition) of the TMF kit's operations that answer a resource
    or a list of them."""
    out = {}
    for api in services.apis:
        if not (SHARED / api.spec_file).exists():
            continue
        for r in api.resources:
            for method, path in (("GET", f"/{r.path}"), ("GET", f"/{r.path}/{{id}}"), ("POST", f"/{r.path}"),
                                 ("PATCH", f"/{r.path}/{{id}}")):
                out[(method, f"{api.base_path}{path}")] = (api.spec_file, r.type)
    return out


async def test_no_operation_answers_5xx(app: Any, services: Any, tenant: str) -> None:
    """... and every TMF resource it is answered conforms to its published definition (or declared subtype)."""
    loop = asyncio.get_running_loop()
    shapes = tmf_shapes(services)
    staff = bearer(tenant, "admin")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a crash is a 500 response, checked
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    nonconforming: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as client:
        party = await make_individual(client, staff, given="Fuzz", family="Portal", email="fuzz@example.com",
                                      ident="F0000001")
        await make_customer(client, staff, party)
        portal = bearer(tenant, "customer", party=party["id"])
        schema = all_operations(app)

        def fuzz(operation: Any, mode: GenerationMode, auth: dict[str, str], who: str) -> None:
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                request = to_httpx(case.as_transport_kwargs(base_url=BASE_URL, headers=auth))
                response = asyncio.run_coroutine_threadsafe(client.request(**request), loop).result(timeout=30)
                statuses[(operation.label, response.status_code)] += 1
                case.validate_response(response, checks=[not_a_server_error])
                shape = shapes.get((operation.method.upper(), operation.path))
                if shape and response.status_code in (200, 201):
                    body = response.json()
                    for doc in body[:3] if isinstance(body, list) else [body]:
                        errors = asyncio.run_coroutine_threadsafe(
                            conformance_errors(client, shape[0], shape[1], doc), loop).result(timeout=30)
                        if errors:
                            nonconforming.append(f"{operation.label} [{who}]: {errors[:3]}")

            try:
                run()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except (Exception, BaseExceptionGroup) as exc:  # names the failed check and the curl to reproduce
                failures.append(f"{operation.label} [{who}, {mode.value}]: {str(exc)[:1500]}")

        def run_all() -> None:
            operations = [op.ok() for op in schema.get_all_operations()]
            operations.sort(key=lambda op: op.method.upper() == "DELETE")  # deletions last
            for operation in operations:
                for who, auth in (("staff", staff), ("portal", portal)):
                    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                        fuzz(operation, mode, auth, who)

        started = time.monotonic()
        await asyncio.to_thread(run_all)
        elapsed = time.monotonic() - started

    assert not failures, f"{len(failures)} server errors:\n" + "\n\n".join(failures)
    assert not nonconforming, f"{len(nonconforming)} responses not as published:\n" + "\n".join(nonconforming[:30])
    codes = Counter(code for (_, code), n in statuses.items() for _ in range(n))
    assert sum(codes.values()) >= 200 * EXAMPLES, statuses  # it really ran
    assert codes[201] and codes[200], codes  # and reached the services, not only validation
    assert elapsed < BUDGET_SECONDS, f"fuzzing took {elapsed:.0f}s"

"""Fuzzing the charging APIs (credit control, TMF654, TMF635) from the app's OpenAPI with schemathesis: whatever
is sent, the answer is never a 5xx, and balances only move through valid requests."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.charging.helpers import open_account
from tests.conftest import bearer
from tests.platform.test_fuzz import BASE_URL, to_httpx

EXAMPLES = 8


async def test_charging_apis_never_answer_5xx(app: Any, rt: Any, tenant: str) -> None:
    await open_account(rt, tenant, balance="1.00")
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.update(base_url=BASE_URL)
    schema = schema.include(path_regex=r"^(/ocs/v1/creditControl|/tmf-api/(prepayBalanceManagement|usageManagement)"
                                       r"/v4/(?!hub)[a-zA-Z]+(/\{id\})?)$")
    loop = asyncio.get_running_loop()
    auth = bearer(tenant, "admin")
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as client:
        def send(case: Any) -> httpx.Response:
            request = to_httpx(case.as_transport_kwargs(base_url=BASE_URL, headers=auth))
            return asyncio.run_coroutine_threadsafe(client.request(**request), loop).result(timeout=30)

        def fuzz(operation: Any, mode: GenerationMode) -> None:
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = send(case)
                statuses[(operation.label, response.status_code)] += 1
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                return
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")

        def run_all() -> None:
            for operation in [op.ok() for op in schema.get_all_operations()]:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz(operation, mode)

        await asyncio.to_thread(run_all)
    assert not failures, "server errors:\n" + "\n\n".join(failures)
    labels = {label for label, _ in statuses}
    assert "POST /ocs/v1/creditControl" in labels and "POST /tmf-api/prepayBalanceManagement/v4/topupBalance" in labels
    assert sum(statuses.values()) >= 100

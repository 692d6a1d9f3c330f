"""Charging fixtures: a system token (what network elements call the OCS with)."""

from __future__ import annotations

import pytest

from tests.conftest import bearer


@pytest.fixture
def system_headers(tenant: str) -> dict[str, str]:
    return bearer(tenant, "system")

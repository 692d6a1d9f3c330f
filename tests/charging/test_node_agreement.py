"""The charging node decides as the database path does: the credit-control scenarios of this package, run with
``POST /ocs/v1/creditControl`` answered by a charging node (in memory, group commit) instead of
``ChargingService.credit_control``. Each imported test runs here once more, through the node (the TMF654 actions and
the expiry sweep of those tests write to the database beside the node: the node sees it by the accounts' versions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.charging.node_helpers import start_node
from tests.charging.test_band_split import *  # noqa: F403 - collected here, through the node
from tests.charging.test_buckets import *  # noqa: F403
from tests.charging.test_concurrency import *  # noqa: F403
from tests.charging.test_contract import *  # noqa: F403
from tests.charging.test_credit_control import *  # noqa: F403
from tests.charging.test_early_end import *  # noqa: F403
from tests.charging.test_events import *  # noqa: F403
from tests.charging.test_money import *  # noqa: F403
from tests.charging.test_properties import *  # noqa: F403
from tests.charging.test_rating_features import *  # noqa: F403
from tests.charging.test_tier_increments import *  # noqa: F403


@pytest.fixture(autouse=True)
async def via_node(rt: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    from openbss.charging.service import ChargingService

    node = await start_node(rt, lease_seconds=5.0)

    async def credit_control(self: Any, db: Any, tenant_id: str, ccr: Any, base_url: str) -> dict[str, Any]:
        return await node.credit_control(tenant_id, ccr)

    monkeypatch.setattr(ChargingService, "credit_control", credit_control)
    yield node
    await node.stop()

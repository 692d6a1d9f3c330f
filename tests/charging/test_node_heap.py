"""A charging node process settles its heap once started: what survived start-up moves to the permanent
generation, and the young generation is collected every 20,000 allocations instead of 700."""

from __future__ import annotations

import gc

from openbss.charging.node.server import YOUNG_COLLECTION_THRESHOLD, settle_heap


def test_settling_the_heap_freezes_what_lives_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    kept = [[i] for i in range(1000)]  # long-lived objects of the start-up
    try:
        assert settle_heap() == before
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() >= frozen + len(kept)
        # garbage made afterwards is still collected (cycles included)
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

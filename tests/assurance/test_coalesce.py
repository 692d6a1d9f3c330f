"""A batch's repeats are folded without losing a report or moving one across a clear of its problem."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from openbss.assurance.service import Signal, coalesce
from tests.assurance.helpers import alarm_body

EVENTS = st.lists(st.tuples(st.sampled_from(["raise", "clear"]), st.sampled_from(["a", "b", "c"]),
                            st.integers(min_value=0, max_value=59)), max_size=60)


@given(EVENTS)
def test_folding_keeps_every_report_and_the_order_of_clears(events: list[tuple[str, str, int]]) -> None:
    signals = [Signal(action, alarm_body(obj, alarmRaisedTime=f"2026-12-04T10:{minute:02d}:00.000Z"), "syslog")
               for action, obj, minute in events]
    folded = coalesce(signals)
    assert sum(n for s, n, _ in folded if s.action == "raise") == sum(1 for a, _, _ in events if a == "raise")
    assert [s for s, _, _ in folded if s.action == "clear"] == [s for s in signals if s.action == "clear"]
    for obj in "abc":
        # per problem: the runs of raises between its clears, each folded into one entry
        runs: list[int] = []
        current = 0
        for action, o, _ in events:
            if o != obj:
                continue
            if action == "clear":
                if current:
                    runs.append(current)
                current = 0
                runs.append(0)
            else:
                current += 1
        if current:
            runs.append(current)
        got = [n if s.action == "raise" else 0 for s, n, _ in folded if s.alarm["alarmedObject"]["id"] == obj]
        assert got == runs
        for s, _, last in folded:
            if s.action == "raise" and s.alarm["alarmedObject"]["id"] == obj:
                assert last is not None and last >= str(s.alarm["alarmRaisedTime"])

"""The node writes answers and batch rows with orjson: the same JSON values as ``platform.db.json_dumps``."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.node.state import dumps
from openbss.platform.db import json_dumps

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(2**64, 2**80),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(),
                    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**9,
                                max_value=10**9))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(values)
def test_the_node_writes_the_json_of_json_dumps(value: Any) -> None:
    assert json.loads(dumps(value)) == json.loads(json_dumps(value))


def test_an_answer_reads_alike() -> None:
    answer = {"sessionId": "s;1", "resultCode": 2001, "granted": Decimal("60"), "price": Decimal("0.0125"),
              "message": "é", "groups": [{"ratingGroup": 1, "validityTime": 300}]}
    assert dumps(answer).decode() == json_dumps(answer)

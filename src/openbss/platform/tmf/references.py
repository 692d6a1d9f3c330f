"""Personal data stays in its sealed record: copies elsewhere carry references, events carry no personal values.

A party's personal data lives in the party's own records (individual, organization, party role, customer, accounts),
sealed at rest by their codecs (``platform/personal_data.py``). Everything else refers to the party by id:

* **Copies at rest.** A resource that names a party (an order, a product, a service order, a cart) keeps the
  reference — ``id``, ``href``, ``role``, ``@referredType`` — not the party's name: ``relatedParty[].name`` and
  ``engagedParty.name`` are dropped when the kit writes such a resource (``ResourceService.record``/``change``), unless
  the resource's codec seals that path (the party's own records do). A reader that needs the name reads the party.
  Erasing a party therefore has no copy of its name to chase.
* **Events.** The event of a change (``...CreateEvent``, ``...AttributeValueChangeEvent``, …) written to the outbox,
  published on the backbone (JetStream) and recorded for hub subscribers carries the resource without its personal
  values: the paths its codec seals, the party names above, and the paths the resource declares
  (``TmfResource.event_withheld``, e.g. the MSISDN of a TMF654 balance action). An object at such a path is emptied
  (``contactMedium[].characteristic`` becomes ``{}``, keeping the medium's type), any other value is removed. A
  consumer or subscriber that needs them reads the resource by its ``href``, with its own authorization.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

#: where a copy of a party's name sits in a reference to the party
PARTY_NAME_COPIES = ("relatedParty.name", "engagedParty.name")


def _drop(value: Any, parts: list[str]) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict) or parts[0] not in item:
            continue
        if len(parts) == 1:
            if isinstance(item[parts[0]], dict):
                item[parts[0]] = {}
            else:
                del item[parts[0]]
        else:
            _drop(item[parts[0]], parts[1:])


def without(doc: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of ``doc`` without the values at the dotted ``paths`` (lists crossed; objects emptied, others removed).
    ``doc`` itself is not changed."""
    paths = [p for p in paths if p and carries(doc, p)]
    if not paths:  # nothing to leave out: no copy (the common case of a write)
        return doc
    out = copy.deepcopy(doc)
    for path in paths:
        _drop(out, path.split("."))
    return out


def carries(doc: Any, path: str) -> bool:
    """Whether a value is present at a dotted path of ``doc`` (lists crossed)."""
    parts = path.split(".")
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if isinstance(item, dict) and parts[0] in item:
            if len(parts) == 1 or carries(item[parts[0]], ".".join(parts[1:])):
                return True
    return False


def withheld(path: str, paths: Iterable[str]) -> bool:
    """Whether ``path`` (an attribute a client filters on) is, or lies under, one of ``paths``."""
    return any(path == p or path.startswith(p + ".") for p in paths)


__all__ = ["PARTY_NAME_COPIES", "carries", "withheld", "without"]

"""A product's charge timeline through its changes, and the credits they earn: pure, exact, no I/O.

A product sold at some prices to a billing account may later be upgraded or downgraded (new prices), suspended and
resumed, transferred to another account, or cancelled, each **effective** on a (local) date. Its timeline is a list
of :class:`Segment`\\ s ``[start, end)`` with the account, the prices and whether it is suspended.

* A recurring price is charged on the account of each segment holding it, **not while suspended**.
* What was billed in advance for a piece ``[s, e)`` of a charge period and is no longer used (a suspension, a
  price replaced by an upgrade, a transfer, a cancellation) is credited: what was billed minus what the parts still
  used cost (each at its proration factor against the full period), never less than zero and **never more than was
  billed for that piece** (capped by what remains of the item).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from openbss.pricing import proration

KINDS = ("upgrade", "downgrade", "cancel", "suspend", "resume", "transfer")


@dataclass(frozen=True)
class Change:
    effective: date
    kind: str
    #: upgrade / downgrade: the new prices, price id -> amount per period
    prices: tuple[tuple[str, Decimal], ...] = ()
    to_account: str | None = None  # transfer


@dataclass(frozen=True)
class Segment:
    start: date
    end: date | None
    account: str
    prices: tuple[tuple[str, Decimal], ...] = field(default=())
    suspended: bool = False

    def amount_of(self, price_id: str) -> Decimal | None:
        for pid, amount in self.prices:
            if pid == price_id:
                return amount
        return None


def timeline(start: date, account: str, prices: Sequence[tuple[str, Decimal]], changes: Sequence[Change],
             ) -> list[Segment]:
    """The segments of a product from its start through ``changes`` (applied in order of effective date; a
    cancellation ends the timeline)."""
    out: list[Segment] = []
    current = Segment(start, None, account, tuple(prices), False)
    for ch in sorted(changes, key=lambda c: c.effective):
        at = max(ch.effective, start)
        if ch.kind == "cancel":
            current = Segment(current.start, max(at, current.start), current.account, current.prices,
                              current.suspended)
            break
        if at > current.start:
            out.append(Segment(current.start, at, current.account, current.prices, current.suspended))
            current = Segment(at, None, current.account, current.prices, current.suspended)
        if ch.kind in ("upgrade", "downgrade"):
            current = Segment(at, None, current.account, ch.prices, current.suspended)
        elif ch.kind == "suspend":
            current = Segment(at, None, current.account, current.prices, True)
        elif ch.kind == "resume":
            current = Segment(at, None, current.account, current.prices, False)
        elif ch.kind == "transfer" and ch.to_account:
            current = Segment(at, None, ch.to_account, current.prices, current.suspended)
        else:
            raise ValueError(f"unknown change '{ch.kind}' (known: {', '.join(KINDS)})")
    out.append(current)
    return [s for s in out if s.end is None or s.start < s.end]


def charged_parts(start: date, end: date, segments: Sequence[Segment], account: str, price_id: str,
                  ) -> list[tuple[date, date, Decimal]]:
    """The parts of ``[start, end)`` where ``price_id`` is charged to ``account`` (not suspended), with its
    amount per period in each."""
    out = []
    for seg in segments:
        amount = seg.amount_of(price_id)
        if seg.account != account or seg.suspended or amount is None:
            continue
        s, e = max(start, seg.start), end if seg.end is None else min(end, seg.end)
        if s < e:
            out.append((s, e, amount))
    return out


def unused_credit(billed: Decimal, used: Sequence[tuple[date, date, Decimal]], currency: str, period_start: date,
                  period_end: date, conventions: proration.Conventions = proration.Conventions(),
                  policy: str = "daily") -> Decimal:
    """The credit for a piece billed ``billed`` of which only the ``used`` parts were used: billed minus what they
    cost, between zero and what was billed."""
    cost = sum((proration.charge(amount, currency, s, e, period_start, period_end, conventions, policy)
                for s, e, amount in used), Decimal(0))
    return min(billed, max(Decimal(0), billed - cost))

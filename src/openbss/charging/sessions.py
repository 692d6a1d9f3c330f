"""Credit-control decisions (Diameter Gy/Ro semantics), computed over the state of one locked account.

The service reads the account with its buckets and open reservations (one snapshot; or under the account's row lock
for a hot account) and hands them to a :class:`Ledger`. The ledger decides everything in memory — expire
reservations past their validity, debit reported units (allowances before money), release holds, grant new quotas —
and records the changes; the repository writes them in one statement, applied only if the account did not change
meanwhile. Nothing here does I/O.

Semantics (RFC 4006 §5, 3GPP TS 32.299):

* INITIAL reserves a quota per rating group (the Requested-Service-Unit, or a default quota);
* UPDATE debits the Used-Service-Unit (units used since the previous report), releases what was held and reserves
  again;
* TERMINATE debits the final units and releases the rest; the session is closed;
* EVENT (direct debiting) charges a one-shot service at once, or answers 4012 and charges nothing;
* a grant smaller than requested because credit runs out carries a Final-Unit-Indication (TERMINATE); no grant at
  all answers 4012 (DIAMETER_CREDIT_LIMIT_REACHED) for that rating group;
* a reservation's units come back by themselves after its Validity-Time: any later request on the account releases
  expired reservations first (lazy expiry), and the periodic sweep (``service.release_expired``) does it for
  accounts that see no traffic.

Prepaid money buckets stop at zero (``lower_limit = 0``); a postpaid account's money bucket stops at minus its
credit limit. Units the network reports as used are always charged, even past the limit (the usage happened); the
grants are what keep a well-behaved network within the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from openbss.charging import errors as rc
from openbss.pricing.bands import BandSplit, band_split, runs, session_money
from openbss.pricing.usage import (
    BASE_UNIT,
    Quota,
    UnitRate,
    allocate,
    allowance_blocks,
    allowance_reach,
    billable,
    blocks_between,
    boundary,
    from_minor,
    money_minor,
    money_step,
    quota,
    setup_minor,
    unit_rate,
)

DEFAULT_QUOTA = {"data": 10 * 1024 * 1024, "voice": 300, "sms": 1, "mms": 1, "event": 1}
THRESHOLDS = (80, 100)






@dataclass
class BucketState:
    id: str
    unit: str
    remaining: int
    reserved: int
    initial: int
    lower_limit: int
    valid_from: float | None
    valid_to: float | None
    priority: int
    zones: list[str] | None
    threshold_level: int
    source: str
    services: list[str] | None = None  # usage types the bucket pays for (None: all)
    bands: list[str] | None = None  # tariff time bands the bucket pays in (None: all)
    d_remaining: int = 0
    d_reserved: int = 0
    level: int | None = None  # new threshold level to record

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BucketState:
        return cls(row["id"], row["unit"], int(row["remaining"]), int(row["reserved"]), int(row["initial"]),
                   int(row["lower_limit"]), row.get("valid_from"), row.get("valid_to"), int(row["priority"]),
                   row.get("zones"), int(row["threshold_level"]), row["source"], row.get("services"),
                   row.get("bands"))

    def free(self) -> int:
        """Units that can still be held or debited without passing the lower limit."""
        return self.remaining + self.d_remaining - self.reserved - self.d_reserved - self.lower_limit

    def pays_for(self, usage_type: str | None, rate: dict[str, Any] | None) -> bool:
        """Whether the bucket may pay for this usage: its services (usage types) and destination zones (a bucket
        restricted to zones pays at home only, not roaming). No usage type: any (balance actions)."""
        if usage_type is None:
            return True
        if self.services is not None and usage_type not in self.services:
            return False
        if self.bands is not None and (rate is None or rate.get("band") not in self.bands):
            return False
        if self.zones is not None:
            return rate is not None and rate.get("zone") in self.zones and not rate.get("roaming")
        return True

    def valid(self, now: float) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (self.valid_to is None or now < self.valid_to)

    @property
    def changed(self) -> bool:
        return bool(self.d_remaining or self.d_reserved or self.level is not None)

    def order_key(self) -> tuple[int, float, str]:
        return (self.priority, self.valid_to if self.valid_to is not None else float("inf"), self.id)


@dataclass
class ReservationState:
    id: int | None
    session_pk: int | None
    rating_group: int
    usage_type: str
    state: str
    holds: dict[str, int]
    granted: int
    used_units: int
    allowance_units: int
    money_units: int
    rate: dict[str, Any]
    expires_at: float
    changed: bool = False

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReservationState:
        return cls(int(row["id"]), row.get("session_pk"), int(row["rating_group"] or 0), row["usage_type"],
                   row["state"], {k: int(v) for k, v in (row.get("holds") or {}).items()}, int(row["granted"]),
                   int(row["used_units"]), int(row["allowance_units"]), int(row["money_units"]), row["rate"],
                   float(row["expires_at"]))


@dataclass
class Debit:
    """What one report of used units cost: one TMF635 usage record."""

    rating_group: int
    usage_type: str
    units: int
    billable_units: int
    allowance_units: int
    amount_minor: int
    rate: dict[str, Any]


@dataclass
class Threshold:
    bucket_id: str
    unit: str
    level: int  # 80, 100 (allowances) or 0 (money below the low-balance threshold)
    remaining: int
    initial: int


@dataclass
class Grant:
    units: int
    final: bool  # Final-Unit-Indication: the credit ran out
    result: int


@dataclass
class Ledger:
    """The working state of one account during one request."""

    account: dict[str, Any]
    buckets: dict[str, BucketState]
    reservations: list[ReservationState]
    now: float
    debits: list[Debit] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    new_reservations: list[ReservationState] = field(default_factory=list)
    _last_holds: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, account: dict[str, Any], buckets: list[dict[str, Any]], reservations: list[dict[str, Any]],
             now: float) -> Ledger:
        bs = {b["id"]: BucketState.from_row(b) for b in buckets}
        return cls(account, bs, [ReservationState.from_row(r) for r in reservations], now)

    # --- reservations -----------------------------------------------------------------------------------------
    def release(self, res: ReservationState) -> None:
        for bucket_id, units in res.holds.items():
            bucket = self.buckets.get(bucket_id)
            if bucket is not None:
                bucket.d_reserved -= units
        res.holds = {}
        res.granted = 0
        res.changed = True

    def expire(self, session_pk: int | None = None) -> int:
        """Release reservations past their validity (or every open one of ``session_pk``)."""
        n = 0
        for res in self.reservations:
            if res.state == "open" and (res.expires_at <= self.now or (session_pk is not None
                                                                      and res.session_pk == session_pk)):
                self.release(res)
                res.state = "expired"
                n += 1
        return n

    def reservation(self, session_pk: int | None, rating_group: int) -> ReservationState | None:
        for res in [*self.reservations, *self.new_reservations]:
            if res.session_pk == session_pk and res.rating_group == rating_group and session_pk is not None:
                return res
        return None

    def open_reservation(self, session_pk: int | None, rating_group: int, usage_type: str,
                         rate: dict[str, Any]) -> ReservationState:
        res = ReservationState(None, session_pk, rating_group, usage_type, "open", {}, 0, 0, 0, 0, rate, self.now,
                               changed=True)
        self.new_reservations.append(res)
        return res

    # --- buckets ----------------------------------------------------------------------------------------------
    def allowance_buckets(self, usage_type: str, rate: dict[str, Any]) -> list[BucketState]:
        if rate.get("free"):  # a received SMS the tariff does not charge takes nothing (pricing.choice)
            return []
        out = [b for b in self.buckets.values()
               if b.unit == usage_type and b.valid(self.now) and b.pays_for(usage_type, rate)]
        return sorted(out, key=BucketState.order_key)

    def money_buckets(self, usage_type: str | None = None, rate: dict[str, Any] | None = None) -> list[BucketState]:
        """The money buckets that may pay (valid now, restricted to this usage if they are), in consumption order:
        priority, then the one expiring first."""
        return sorted((b for b in self.buckets.values()
                       if b.unit == "money" and b.valid(self.now) and b.pays_for(usage_type, rate)),
                      key=BucketState.order_key)

    def main_money_bucket(self) -> BucketState | None:
        mains = [b for b in self.buckets.values() if b.unit == "money" and b.source == "main"]
        if mains:
            return mains[0]
        others = self.money_buckets()
        return others[-1] if others else None

    def money_free(self, usage_type: str | None = None, rate: dict[str, Any] | None = None) -> int:
        return sum(max(0, b.free()) for b in self.money_buckets(usage_type, rate))

    def _take_money(self, amount: int, *, hold: bool, force: bool = False, usage_type: str | None = None,
                    rate: dict[str, Any] | None = None) -> int:
        """Debit (or hold) ``amount`` minor units from money buckets in priority order; returns what could not be
        taken. With ``force`` the rest is debited from the main bucket past its limit (reported usage)."""
        left = amount
        holds: dict[str, int] = {}
        for b in self.money_buckets(usage_type, rate):
            if left == 0:
                break
            take = min(left, max(0, b.free()))
            if take:
                if hold:
                    b.d_reserved += take
                    holds[b.id] = take
                else:
                    b.d_remaining -= take
                left -= take
        if left and force and not hold:
            main = self.main_money_bucket()
            if main is not None:
                main.d_remaining -= left
                left = 0
        self._last_holds = holds
        return left

    # --- charging ---------------------------------------------------------------------------------------------
    def debit(self, res: ReservationState, used: int) -> Debit:
        """Charge ``used`` units reported for a reservation (its holds are released first). The session's blocks
        apply once to its cumulative usage; the new billable units are paid by allowances first, the rest with money
        priced on the session's cumulative money-paid units. Reported usage is always charged (past the limit)."""
        self.release(res)
        rate = unit_rate(res.rate)
        split = band_split(res.rate)
        if split is not None:
            return self._debit_split(res, used, rate, split)
        own = allowance_blocks(res.rate, rate)
        if own is not None:
            return self._debit_own(res, used, rate, own)
        cumulative = res.used_units + used
        delta = billable(cumulative, rate) - billable(res.used_units, rate)
        allocations, rest = allocate(delta, [(b.id, b.free()) for b in self.allowance_buckets(res.usage_type,
                                                                                                res.rate)])
        for bucket_id, units in allocations:
            self.buckets[bucket_id].d_remaining -= units
        taken = delta - rest
        amount = money_step(res.money_units, res.money_units + rest, rate) if rest else 0
        if delta and billable(res.used_units, rate) == 0:
            amount += setup_minor(rate)  # the connect fee, even when an allowance pays the units
        if amount:
            self._take_money(amount, hold=False, force=True, usage_type=res.usage_type, rate=res.rate)
        res.used_units = cumulative
        res.allowance_units += taken
        res.money_units += rest
        res.changed = True
        d = Debit(res.rating_group, res.usage_type, used, delta, taken, amount, res.rate)
        if used:
            self.debits.append(d)
        return d

    # --- calls rated per time band (bandChange: split; pricing.bands) ----------------------------------------------
    def _split_take(self, res: ReservationState, rate: UnitRate, split: BandSplit, target: int,
                    free: dict[str, int]) -> tuple[dict[str, int], dict[str, int], int]:
        """What paying the session's billable seconds up to ``target`` would take, band by band in time order:
        (allowance units per bucket, the money-paid seconds per band after it, the money in minor units). ``free``
        (bucket -> free units) is consumed in place."""
        base = billable(res.used_units, rate)
        lanes = {k: int(v) for k, v in (res.rate.get("lanes") or {}).items()}
        before = session_money(rate, split, lanes)
        taken: dict[str, int] = {}
        for band, n in runs(split, base, target):
            doc = {**res.rate, "band": band}
            allocations, rest = allocate(n, [(b.id, free.get(b.id, 0))
                                             for b in self.allowance_buckets(res.usage_type, doc)])
            for bucket_id, units in allocations:
                free[bucket_id] -= units
                taken[bucket_id] = taken.get(bucket_id, 0) + units
            if rest:
                lanes[band] = lanes.get(band, 0) + rest
        money = session_money(rate, split, lanes) - before
        if target > base == 0:
            money += setup_minor(rate)  # the connect fee that comes with every call, apart
        return taken, lanes, money

    def _debit_split(self, res: ReservationState, used: int, rate: UnitRate, split: BandSplit) -> Debit:
        """``debit`` of a call rated per time band: each billable second at the band in force then."""
        base, after = billable(res.used_units, rate), billable(res.used_units + used, rate)
        free = {b.id: b.free() for b in self.buckets.values() if b.unit == res.usage_type}
        taken, lanes, amount = self._split_take(res, rate, split, after, free)
        for bucket_id, units in taken.items():
            self.buckets[bucket_id].d_remaining -= units
        if amount:
            self._take_money(amount, hold=False, force=True, usage_type=res.usage_type, rate=res.rate)
        allowance = sum(taken.values())
        res.rate = {**res.rate, "lanes": lanes}
        res.used_units += used
        res.allowance_units += allowance
        res.money_units += after - base - allowance
        res.changed = True
        d = Debit(res.rating_group, res.usage_type, used, after - base, allowance, amount, res.rate)
        if used:
            self.debits.append(d)
        return d

    def _grant_split(self, res: ReservationState, want: int, rate: UnitRate,
                     split: BandSplit) -> tuple[Quota, dict[str, int]]:
        """The grant of a call rated per time band: the most whole blocks (up to the request rounded up to a block)
        whose seconds, each at its band's price, the allowances that may pay in that band plus the affordable money
        cover. Returns the quota and the allowance units to hold per bucket."""
        used = res.used_units
        base, target = billable(used, rate), billable(used + want, rate)
        if target == base:
            top = 0
        elif rate.increment_tiers:
            top = blocks_between(base, target, rate)
        elif base == 0:
            top = 1 + (target - rate.initial) // rate.subsequent
        else:
            top = (target - base) // rate.subsequent
        budget = self.money_free(res.usage_type, res.rate)

        def cost(k: int) -> tuple[dict[str, int], int]:
            free = {b.id: b.free() for b in self.buckets.values() if b.unit == res.usage_type}
            taken, _, money = self._split_take(res, rate, split, boundary(base, k, rate), free)
            return taken, money

        k = top
        if cost(top)[1] > budget:
            lo, hi = 0, top
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if cost(mid)[1] <= budget:
                    lo = mid
                else:
                    hi = mid
            k = lo
        taken, money = cost(k)
        units = boundary(base, k, rate) - used  # (the rest of a block already charged is granted at no cost)
        allowance = sum(taken.values())
        return Quota(units, k < top, allowance, boundary(base, k, rate) - base - allowance, money), taken

    def _debit_own(self, res: ReservationState, used: int, rate: UnitRate, own: UnitRate) -> Debit:
        """``debit`` when allowances count in their own blocks: they cover the first used units of the session (as
        long as they pay all of it), counted in their blocks; money covers the rest of the session in the rate's
        blocks, counted from where the allowances stopped. ``res.allowance_units`` are the used units the allowances
        covered."""
        before, after, covered = res.used_units, res.used_units + used, res.allowance_units
        allowance = self.allowance_buckets(res.usage_type, res.rate)
        reach = covered
        if before == covered:  # the allowances paid the whole session so far: they may go on
            reach = min(after, allowance_reach(covered, sum(max(0, b.free()) for b in allowance), own))
        consumed = billable(reach, own) - billable(covered, own)
        allocations, _ = allocate(consumed, [(b.id, b.free()) for b in allowance])
        for bucket_id, units in allocations:
            self.buckets[bucket_id].d_remaining -= units
        money_units = billable(after - reach, rate)
        amount = money_step(res.money_units, money_units, rate)
        if used and before == 0:
            amount += setup_minor(rate)
        if amount:
            self._take_money(amount, hold=False, force=True, usage_type=res.usage_type, rate=res.rate)
        d = Debit(res.rating_group, res.usage_type, used, consumed + money_units - res.money_units, consumed, amount,
                  res.rate)
        res.used_units, res.allowance_units, res.money_units = after, reach, money_units
        res.changed = True
        if used:
            self.debits.append(d)
        return d

    def _quota_own(self, res: ReservationState, want: int, rate: UnitRate, own: UnitRate,
                   allowance: list[BucketState]) -> tuple[int, bool, int, int]:
        """(units, final, allowance units to hold, money to hold) of a grant when allowances count in their own
        blocks: the allowances' whole blocks first, then the rate's whole blocks that the money covers."""
        used, covered = res.used_units, res.allowance_units
        budget = self.money_free(res.usage_type, res.rate)
        setup = setup_minor(rate) if used == 0 else 0
        pricing = replace(rate, setup=Decimal(0), setup_always=False) if rate.setup_always else rate
        hold_a, start = 0, used
        if used == covered:
            reach = allowance_reach(covered, sum(max(0, b.free()) for b in allowance), own)
            if reach >= used + want:
                end = billable(used + want, own)
                if setup > budget:
                    return 0, True, 0, 0
                return end - used, False, end - billable(covered, own), setup
            hold_a, start = reach - billable(covered, own), reach
        if setup > budget:
            return 0, True, 0, 0
        q = quota(used - covered, used + want - start, pricing, money_units=res.money_units, allowance_free=0,
                  budget_minor=budget - setup)
        return start + q.units - used, q.final, hold_a, q.money_minor + setup

    def grant(self, res: ReservationState, want: int, *, minimum: int = 0, validity: int | None = None) -> Grant:
        """Hold whole blocks for up to ``want`` more units (rounded up to a block): allowances first, then the money
        they cost; 4012 when not even one block is covered, or when what is covered is less than ``minimum`` (the
        quota policy's minimum; ``want`` for an all-or-nothing request). Held for ``validity`` seconds (default: the
        account's)."""
        rate = unit_rate(res.rate)
        allowance = self.allowance_buckets(res.usage_type, res.rate)
        own = allowance_blocks(res.rate, rate)
        split = band_split(res.rate)
        split_holds: dict[str, int] | None = None
        if split is not None:
            q, split_holds = self._grant_split(res, want, rate, split)
        elif own is not None:
            units, final, hold_a, hold_m = self._quota_own(res, want, rate, own, allowance)
            q = Quota(units, final, hold_a, 0, hold_m)
        else:
            q = quota(res.used_units, want, rate, money_units=res.money_units,
                      allowance_free=sum(max(0, b.free()) for b in allowance),
                      budget_minor=self.money_free(res.usage_type, res.rate))
        if q.units < minimum or q.units <= 0:
            q = Quota(0, want > 0, 0, 0, 0)
            split_holds = {}
        if split_holds is not None:
            allocations = list(split_holds.items())
        else:
            allocations, _ = allocate(q.allowance, [(b.id, b.free()) for b in allowance])
        holds: dict[str, int] = {}
        for bucket_id, units in allocations:
            self.buckets[bucket_id].d_reserved += units
            holds[bucket_id] = units
        if q.money_minor:
            self._take_money(q.money_minor, hold=True, usage_type=res.usage_type, rate=res.rate)
            for bucket_id, units in self._last_holds.items():
                holds[bucket_id] = holds.get(bucket_id, 0) + units
        res.holds = holds
        res.granted = q.units
        res.expires_at = self.now + int(validity or self.account["quota_validity_seconds"])
        res.state = "open"
        res.changed = True
        if q.units == 0 and want > 0:
            res.state = "closed"
            return Grant(0, True, rc.CREDIT_LIMIT_REACHED)
        return Grant(q.units, q.final, rc.SUCCESS)

    def charge_event(self, rating_group: int, usage_type: str, units: int, rate_doc: dict[str, Any]) -> int:
        """Direct debiting of a one-shot service: charge ``units`` now, or nothing (4012) if credit is short."""
        rate = unit_rate(rate_doc)
        split = band_split(rate_doc)
        if split is not None:
            res = ReservationState(None, None, rating_group, usage_type, "closed", {}, 0, 0, 0, 0, dict(rate_doc),
                                   self.now)
            free = {x.id: x.free() for x in self.buckets.values() if x.unit == usage_type}
            if self._split_take(res, rate, split, billable(units, rate), free)[2] > self.money_free(usage_type,
                                                                                                     rate_doc):
                return rc.CREDIT_LIMIT_REACHED
            self._debit_split(res, units, rate, split)
            return rc.SUCCESS
        b = billable(units, rate)
        allowance = self.allowance_buckets(usage_type, rate_doc)
        allocations, rest = allocate(b, [(x.id, x.free()) for x in allowance])
        amount = (money_minor(rest, rate) if rest else 0) + (setup_minor(rate) if b else 0)
        if amount > self.money_free(usage_type, rate_doc):
            return rc.CREDIT_LIMIT_REACHED
        for bucket_id, n in allocations:
            self.buckets[bucket_id].d_remaining -= n
        if amount:
            self._take_money(amount, hold=False, usage_type=usage_type, rate=rate_doc)
        self.debits.append(Debit(rating_group, usage_type, units, b, b - rest, amount, rate_doc))
        return rc.SUCCESS

    # --- notifications ----------------------------------------------------------------------------------------
    def check_thresholds(self) -> None:
        low = int(self.account.get("low_balance_minor") or 0)
        for b in self.buckets.values():
            if not b.d_remaining:
                continue
            after = b.remaining + b.d_remaining
            if b.unit == "money":
                before = b.remaining
                if low and before >= low > after:
                    self.thresholds.append(Threshold(b.id, b.unit, 0, after, b.initial))
                continue
            if b.initial <= 0:
                continue
            consumed = b.initial - after
            level = 100 if after <= 0 else (80 if consumed * 100 >= 80 * b.initial else 0)
            if level > b.threshold_level:
                b.level = level
                self.thresholds.append(Threshold(b.id, b.unit, level, after, b.initial))


def amount_value(minor: int, currency: str) -> Decimal:
    return from_minor(minor, currency)


def base_unit(usage_type: str) -> str:
    return BASE_UNIT.get(usage_type, "event")

"""The catalog's validation rules on documents: prices that can bill, characteristics, bundles, references.

Each check raises a typed 4xx error naming the attribute path (``productOfferingPrice[1].price.unit``).
Reference checks read other catalog objects through the session of the request.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from openbss.catalog import repository
from openbss.catalog.errors import (
    InvalidBundle,
    InvalidCharacteristic,
    InvalidPrice,
    InvalidPriceTiers,
    InvalidValidity,
    PriceNotUsable,
    UnknownReference,
)
from openbss.platform.tmf.resource import Context, TmfDocument
from openbss.pricing import charge_models, phases
from openbss.pricing.money import is_currency, to_decimal
from openbss.pricing.tiers import Tier, TierError, validate_tiers
from openbss.pricing.units import UnitError, canonical_unit, convert, dimension

PRICE_TYPES = ("oneTime", "recurring", "usage", "discount", "penalty")
PRICE_TYPE_ALIASES = {"one time": "oneTime", "onetime": "oneTime", "one-time": "oneTime", "recurring": "recurring",
                      "usage": "usage", "discount": "discount", "penalty": "penalty"}
PERIODS = ("day", "week", "month", "year")
VALUE_TYPES = ("string", "integer", "number", "boolean", "dateTime", "object")
RANGE_INTERVALS = ("open", "closed", "closedBottom", "closedTop")


# --- small helpers -------------------------------------------------------------------------------------------
#: the base unit of each dimension of usage (what charging counts in)
BASE_OF = {"data": "B", "time": "second", "sms": "SMS", "mms": "MMS", "event": "event"}


def check_valid_for(doc: dict[str, Any], where: str = "validFor") -> None:
    vf = doc.get("validFor") or {}
    start, end = vf.get("startDateTime"), vf.get("endDateTime")
    if start and end and _dt(end) <= _dt(start):
        raise InvalidValidity(f"'{where}': endDateTime {end} must be after startDateTime {start}")


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _money(value: Any, where: str, *, required: bool = True, required_value: bool = True) -> Decimal | None:
    """An amount with its currency. ``required``/``required_value``: whether a missing amount, currency or value is
    refused (when the price is used) or left for later (a price being written, which TMF620 lets name only its
    ``name``); what is given is always checked."""
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise InvalidPrice(f"'{where}' is required: an amount with its currency "
                           f"({{\"unit\": \"EUR\", \"value\": 9.99}})")
    if not value.get("unit"):
        if required:
            raise InvalidPrice(f"'{where}.unit': the currency is required (ISO 4217 code such as EUR)")
    elif not is_currency(value["unit"]):
        raise InvalidPrice(f"'{where}.unit': '{value['unit']}' is not an ISO 4217 currency code")
    if value.get("value") is None:
        if required_value and required:
            raise InvalidPrice(f"'{where}.value': the amount is required")
        return None
    amount = to_decimal(value["value"])
    if amount < 0:
        raise InvalidPrice(f"'{where}.value': {amount} is negative; a price must be zero or more "
                           f"(express reductions as a discount)")
    return amount


def _quantity_unit(q: Any, where: str, *, required: bool = True) -> str | None:
    if q is None and not required:
        return None
    if not isinstance(q, dict) or not q.get("units"):
        if not required and isinstance(q, dict):
            return None
        raise InvalidPrice(f"'{where}.units' is required (e.g. MB, minute, SMS)")
    try:
        unit = canonical_unit(q["units"])
    except UnitError as exc:
        raise InvalidPrice(f"'{where}.units': {exc}") from exc
    if q.get("amount") is not None and to_decimal(q["amount"]) <= 0:
        raise InvalidPrice(f"'{where}.amount' must be positive")
    return unit


def normalize_price_type(value: Any, where: str) -> str:
    canonical = PRICE_TYPE_ALIASES.get(str(value).strip().lower()) if value is not None else None
    if canonical is None:
        raise InvalidPrice(f"'{where}': '{value}' is not a price type (use {', '.join(PRICE_TYPES)})")
    return canonical


# --- prices -------------------------------------------------------------------------------------------------
def check_price(doc: dict[str, Any], where: str = "", *, complete: bool = False) -> None:
    """A price document (a ProductOfferingPrice or an inline price of an offering).

    TMF620's ``ProductOfferingPrice_Create`` requires only ``name``: a price may be written before its type, amount
    or unit of measure are known. What a price *has* is always checked (a known price type, an ISO 4217 currency, no
    negative amount, tiers that cover the quantities once, attributes that belong to its type), and defaults are
    filled in once the type is known. ``complete=True`` is the check made when the price is *used* (ordered,
    rated, charged: ``check_usable_price``): then everything billing needs must be there too."""
    p = f"{where}." if where else ""
    if doc.get("isBundle"):
        if complete and not doc.get("bundledPopRelationship"):
            raise InvalidPrice(f"'{p}bundledPopRelationship': a bundled price lists its component prices")
        return
    check_valid_for(doc, f"{p}validFor")
    for i, tax in enumerate(doc.get("tax") or []):
        if not tax.get("taxCategory"):
            raise InvalidPrice(f"'{p}tax[{i}].taxCategory' is required (e.g. standard, reduced, exempt)")
        if tax.get("taxRate") is not None and not 0 <= to_decimal(tax["taxRate"]) <= 100:
            raise InvalidPrice(f"'{p}tax[{i}].taxRate' must be a percentage between 0 and 100")
    if doc.get("priceType") is None:
        if complete:
            raise InvalidPrice(f"'{p}priceType' is required ({', '.join(PRICE_TYPES)})")
        if doc.get("price") is not None:
            _money(doc["price"], f"{p}price", required=False)
        return
    kind = normalize_price_type(doc["priceType"], f"{p}priceType")
    doc["priceType"] = kind
    if kind == "discount":
        _check_discount(doc, p, complete)
        return
    has_tiers = bool(doc.get("priceTier"))
    has_tariff = bool(doc.get("tariff"))
    _money(doc.get("price"), f"{p}price", required=complete,
           required_value=not (kind == "usage" and (has_tiers or has_tariff)))
    if kind == "recurring":
        period = doc.setdefault("recurringChargePeriodType", "month")
        if period not in PERIODS:
            raise InvalidPrice(f"'{p}recurringChargePeriodType': '{period}' is not one of {', '.join(PERIODS)}")
        length = doc.setdefault("recurringChargePeriodLength", 1)
        if length < 1:
            raise InvalidPrice(f"'{p}recurringChargePeriodLength' must be at least 1")
        doc.setdefault("billingTiming", "inAdvance")
        doc.setdefault("prorationPolicy", "daily")
        try:
            if doc.get("pricePhase") is not None:
                phases.parse(doc["pricePhase"], f"{p}pricePhase")
            if doc.get("fixedTermPeriods") is not None:
                phases.check_fixed_term(doc["fixedTermPeriods"], f"{p}fixedTermPeriods")
        except phases.PhaseError as exc:
            raise InvalidPrice(str(exc)) from exc
    else:
        for attr in ("billingTiming", "prorationPolicy", "pricePhase", "fixedTermPeriods", "billingAlignment"):
            if attr in doc:
                raise InvalidPrice(f"'{p}{attr}' applies only to recurring prices")
    if kind == "usage":
        _check_usage(doc, p, complete)
    else:
        for attr in ("priceTier", "allowance", "tariff", "tierType", "ratingBlock", "rounding", "quotaPolicy",
                     "chargeSetupWithAllowance", "maximumCharge", "maximumRate", "allowanceRatingBlock", "chargeModel"):
            if attr in doc:
                raise InvalidPrice(f"'{p}{attr}' applies only to usage prices")
    if "applicationDuration" in doc:
        raise InvalidPrice(f"'{p}applicationDuration' applies only to discounts")


def check_usable_price(doc: dict[str, Any]) -> None:
    """A price about to be used (ordered, quoted, rated, charged) has everything billing needs: its type and, as
    the type requires, its amount and currency, unit of measure, percentage. Raises ``PriceNotUsable`` (422)
    naming the price and what it lacks; the document is not changed."""
    try:
        check_price(copy.deepcopy(doc), complete=True)
    except (InvalidPrice, InvalidPriceTiers) as exc:
        name = doc.get("name")
        raise PriceNotUsable(f"ProductOfferingPrice '{doc.get('id')}'{f' ({name})' if name else ''} cannot be "
                             f"used yet: {exc.message}; complete the price in the catalog") from exc


def block_units(quantity: Any, price_unit: str | None, where: str) -> int:
    """A rating block (a TMF Quantity) in whole base units of the price's dimension (bytes, seconds, messages);
    checked against the price's unit of measure when the price has one (a price may be recorded incomplete)."""
    b_unit = _quantity_unit(quantity, where)
    if b_unit is None:
        raise InvalidPrice(f"'{where}.units' is required (e.g. MB, minute, SMS)")
    if price_unit is not None and dimension(b_unit) != dimension(price_unit):
        raise InvalidPrice(f"'{where}.units': {b_unit} cannot measure usage in {price_unit}")
    if quantity.get("amount") is None:
        raise InvalidPrice(f"'{where}.amount' is required")
    base = convert(to_decimal(quantity["amount"]), b_unit, BASE_OF[dimension(b_unit)])
    if base < 1 or base != base.to_integral_value():
        raise InvalidPrice(f"'{where}': {quantity['amount']} {b_unit} is not a whole number of "
                           f"{BASE_OF[dimension(b_unit)]} (at least one)")
    return int(base)


def _check_discount(doc: dict[str, Any], p: str, complete: bool) -> None:
    has_pct, has_amount = doc.get("percentage") is not None, doc.get("price") is not None
    if (has_pct and has_amount) or (complete and not has_pct and not has_amount):
        raise InvalidPrice(f"'{p}percentage' or '{p}price': a discount is either a percentage or an amount")
    if has_pct:
        pct = to_decimal(doc["percentage"])
        if not 0 < pct <= 100:
            raise InvalidPrice(f"'{p}percentage': {pct} must be more than 0 and at most 100")
    elif has_amount:
        _money(doc["price"], f"{p}price", required=complete)
    duration = doc.get("applicationDuration")
    if duration is not None:
        if not duration.get("amount") or duration["amount"] < 1:
            raise InvalidPrice(f"'{p}applicationDuration.amount' must be at least 1")
        if duration.get("units") not in PERIODS:
            raise InvalidPrice(f"'{p}applicationDuration.units' must be one of {', '.join(PERIODS)}")


def tier_increments(doc: dict[str, Any]) -> list[list[int | None]]:
    """The increments of a tiered price's tiers as ``[start, end, increment]`` in base units (bytes, seconds); empty
    when its tiers set none. The price is valid (``check_price``)."""
    tiers = doc.get("priceTier") or []
    if not tiers or not any(t.get("ratingBlock") for t in tiers):
        return []
    uom = doc.get("unitOfMeasure") or {}
    unit = canonical_unit(uom["units"])
    base_unit = BASE_OF[dimension(unit)]
    size = convert(to_decimal(uom.get("amount", 1)), unit, base_unit)
    out: list[list[int | None]] = []
    for t in tiers:
        block = t["ratingBlock"]
        step = convert(to_decimal(block["amount"]), canonical_unit(block["units"]), base_unit)
        end = to_decimal(t["toQuantity"]) * size if t.get("toQuantity") is not None else None
        out.append([int(to_decimal(t["fromQuantity"]) * size), int(end) if end is not None else None, int(step)])
    return out


def _plain(value: Any) -> str:
    """A quantity as people write it: 5.5, 330, 0."""
    return f"{to_decimal(value).normalize():f}"


def _check_tier_increments(doc: dict[str, Any], p: str, unit: str | None, tier_type: str,
                           tiers: list[dict[str, Any]]) -> None:
    """Tiers with their own increments: every tier sets one, graduated tiers only, not with the price's own
    ``ratingBlock``, a tariff or a per-block ``rounding``; each tier a whole number of its increments."""
    with_block = [i for i, t in enumerate(tiers) if t.get("ratingBlock") is not None]
    if not with_block:
        return
    first = with_block[0]
    w = f"{p}priceTier[{first}].ratingBlock"
    if tier_type != "tiered":
        raise InvalidPriceTiers(f"'{w}': increments per tier need tierType tiered (graduated), not {tier_type}")
    for attr, why in (("ratingBlock", "set the increments on the tiers only"),
                      ("tariff", "a price rated by a tariff uses the tariff's ratingIncrement"),
                      ("rounding", "the price of one block is rounded for prices with one block size")):
        if doc.get(attr) is not None:
            raise InvalidPriceTiers(f"'{p}{attr}': not with increments per tier ({w}): {why}")
    missing = [i for i in range(len(tiers)) if i not in with_block]
    if missing:
        raise InvalidPriceTiers(f"'{p}priceTier[{missing[0]}].ratingBlock' is required: when one tier sets its "
                                f"increment, every tier does")
    uom = doc.get("unitOfMeasure") or {}
    if unit is None:
        return  # an incomplete price: checked again when it is completed
    size = convert(to_decimal(uom.get("amount", 1)), unit, BASE_OF[dimension(unit)])
    for i, t in enumerate(tiers):
        where = f"{p}priceTier[{i}]"
        step = block_units(t["ratingBlock"], unit, f"{where}.ratingBlock")
        for attr in ("fromQuantity", "toQuantity"):
            if t.get(attr) is None:
                continue
            base = to_decimal(t[attr]) * size
            if base != base.to_integral_value():
                raise InvalidPriceTiers(f"'{where}.{attr}': {t[attr]} {uom.get('units')} is not a whole number of "
                                        f"{BASE_OF[dimension(unit)]}")
        if t.get("toQuantity") is not None:
            length = (to_decimal(t["toQuantity"]) - to_decimal(t["fromQuantity"])) * size
            if length % step:
                base_unit = BASE_OF[dimension(unit)]
                raise InvalidPriceTiers(f"'{where}': from {_plain(t['fromQuantity'])} to {_plain(t['toQuantity'])} "
                                        f"{uom.get('units')} ({_plain(length)} {base_unit}) is not a whole number "
                                        f"of its ratingBlock ({step} {base_unit})")


def _check_usage(doc: dict[str, Any], p: str, complete: bool) -> None:
    unit = _quantity_unit(doc.get("unitOfMeasure"), f"{p}unitOfMeasure", required=complete)
    tiers = doc.get("priceTier") or []
    tier_type = doc.setdefault("tierType", "tiered" if tiers else "flat")
    if tier_type == "flat" and tiers:
        raise InvalidPriceTiers(f"'{p}tierType': flat prices have no priceTier (use tiered or volume)")
    if tier_type != "flat":
        if not tiers:
            raise InvalidPriceTiers(f"'{p}priceTier': {tier_type} prices need tiers")
        parsed = [Tier(to_decimal(t["fromQuantity"]),
                       to_decimal(t["toQuantity"]) if t.get("toQuantity") is not None else None,
                       to_decimal(t["unitPrice"]), to_decimal(t.get("flatFee") or 0)) for t in tiers]
        try:
            validate_tiers(parsed)
        except TierError as exc:
            at = f"[{exc.index}]" if exc.index is not None else ""
            raise InvalidPriceTiers(f"'{p}priceTier{at}': {exc}") from exc
    _check_tier_increments(doc, p, unit, tier_type, tiers)
    if doc.get("chargeModel") is not None:
        try:
            charge_models.parse(doc["chargeModel"], f"{p}chargeModel.")
        except charge_models.ChargeModelError as exc:
            raise InvalidPrice(str(exc)) from exc
    block = doc.get("ratingBlock")
    if block is not None:
        if doc.get("tariff"):
            raise InvalidPrice(f"'{p}ratingBlock': a price rated by a tariff uses the tariff's ratingIncrement")
        for attr in ("initial", "subsequent"):
            if block.get(attr) is not None:
                block_units(block[attr], unit, f"{p}ratingBlock.{attr}")
    own = doc.get("allowanceRatingBlock")
    if own is not None:
        for attr in ("initial", "subsequent"):
            if own.get(attr) is not None:
                block_units(own[attr], unit, f"{p}allowanceRatingBlock.{attr}")
    for attr in ("maximumCharge", "maximumRate"):
        if doc.get(attr) is not None:
            _money(doc[attr], f"{p}{attr}")
            currency = (doc.get("price") or {}).get("unit")
            if currency and doc[attr]["unit"] != currency:
                raise InvalidPrice(f"'{p}{attr}.unit': {doc[attr]['unit']} is not the price's currency {currency}")
    policy = doc.get("quotaPolicy") or {}
    for attr in ("defaultQuota", "minimumQuota"):
        if policy.get(attr) is not None:
            block_units(policy[attr], unit, f"{p}quotaPolicy.{attr}")
    for i, a in enumerate(doc.get("allowance") or []):
        w = f"{p}allowance[{i}]"
        if bool(a.get("unlimited")) == (a.get("quantity") is not None):
            raise InvalidPrice(f"'{w}': give either a quantity or unlimited: true")
        if a.get("quantity") is not None:
            a_unit = _quantity_unit(a["quantity"], f"{w}.quantity")
            if a.get("quantity", {}).get("amount") is None:
                raise InvalidPrice(f"'{w}.quantity.amount' is required")
            if unit is not None and a_unit is not None and dimension(a_unit) != dimension(unit):
                raise InvalidPrice(f"'{w}.quantity.units': {a_unit} cannot measure usage in {unit}")
        a.setdefault("period", "month")
        if a.get("timeBand") is not None and not doc.get("tariff"):
            raise InvalidPrice(f"'{w}.timeBand': time bands come from a tariff; the price has none")
        if a.get("rollover") and a.get("unlimited"):
            raise InvalidPrice(f"'{w}.rollover': an unlimited allowance cannot roll over")
        if a.get("rollover", {}).get("maxQuantity") is not None:
            r_unit = _quantity_unit(a["rollover"]["maxQuantity"], f"{w}.rollover.maxQuantity")
            if unit is not None and r_unit is not None and dimension(r_unit) != dimension(unit):
                raise InvalidPrice(f"'{w}.rollover.maxQuantity.units': {r_unit} cannot measure usage in {unit}")


# --- characteristics --------------------------------------------------------------------------------------
def _value_matches(value: Any, value_type: str | None) -> bool:
    if value_type in (None, "object"):
        return True
    if value_type == "string" or value_type == "dateTime":
        return isinstance(value, str)
    if value_type == "boolean":
        return isinstance(value, bool)
    if value_type == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, Decimal | float) and Decimal(str(value)) == Decimal(str(value)).to_integral_value())
    if value_type == "number":
        return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    return True


def check_characteristics(chars: list[dict[str, Any]], attr: str, values_attr: str) -> None:
    """Characteristic specifications: unique names, known value types, values of that type, sane ranges."""
    names: set[str] = set()
    for i, ch in enumerate(chars):
        w = f"{attr}[{i}]"
        name = ch.get("name")
        if not name:
            raise InvalidCharacteristic(f"'{w}.name' is required")
        if name in names:
            raise InvalidCharacteristic(f"'{w}.name': characteristic '{name}' is defined twice")
        names.add(name)
        vt = ch.get("valueType")
        if vt is not None and vt not in VALUE_TYPES:
            raise InvalidCharacteristic(f"'{w}.valueType': '{vt}' is not one of {', '.join(VALUE_TYPES)}")
        lo, hi = ch.get("minCardinality"), ch.get("maxCardinality")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidCharacteristic(f"'{w}': minCardinality {lo} exceeds maxCardinality {hi}")
        defaults = 0
        for j, v in enumerate(ch.get(values_attr) or []):
            wv = f"{w}.{values_attr}[{j}]"
            if v.get("isDefault"):
                defaults += 1
            if "value" in v and not _value_matches(v["value"], v.get("valueType") or vt):
                raise InvalidCharacteristic(f"'{wv}.value': {v['value']!r} is not a {v.get('valueType') or vt}")
            if v.get("valueFrom") is not None and v.get("valueTo") is not None and v["valueFrom"] > v["valueTo"]:
                raise InvalidCharacteristic(f"'{wv}': valueFrom {v['valueFrom']} exceeds valueTo {v['valueTo']}")
            if v.get("rangeInterval") is not None and v["rangeInterval"] not in RANGE_INTERVALS:
                raise InvalidCharacteristic(f"'{wv}.rangeInterval' must be one of {', '.join(RANGE_INTERVALS)}")
        if defaults > 1:
            raise InvalidCharacteristic(f"'{w}': only one value can be the default")


def _in_range(value: Any, spec_value: dict[str, Any]) -> bool:
    lo, hi = spec_value.get("valueFrom"), spec_value.get("valueTo")
    if lo is None and hi is None:
        return False
    try:
        x = to_decimal(value)
    except ValueError:
        return False
    interval = spec_value.get("rangeInterval") or "closed"
    lo_ok = lo is None or (x > lo if interval in ("open", "closedTop") else x >= lo)
    hi_ok = hi is None or (x < hi if interval in ("open", "closedBottom") else x <= hi)
    return lo_ok and hi_ok


def allowed_value(value: Any, spec_char: dict[str, Any], values_attr: str = "productSpecCharacteristicValue") -> bool:
    """Whether ``value`` is one the characteristic specification allows (listed value, range, or free)."""
    if not _value_matches(value, spec_char.get("valueType")):
        return False
    specs = spec_char.get(values_attr) or []
    if not specs:
        return True
    for sv in specs:
        if "value" in sv and sv["value"] == value:
            return True
        if _in_range(value, sv):
            return True
    return False


def check_char_value_use(uses: list[dict[str, Any]], product_spec: dict[str, Any] | None) -> None:
    """An offering's prodSpecCharValueUse restricts its specification's characteristics to allowed values."""
    if not uses:
        return
    if product_spec is None:
        raise InvalidCharacteristic("'prodSpecCharValueUse' needs the offering's productSpecification")
    chars = {c.get("name"): c for c in product_spec.get("productSpecCharacteristic") or []}
    for i, use in enumerate(uses):
        name = use.get("name")
        if name not in chars:
            known = ", ".join(sorted(n for n in chars if n)) or "none"
            raise InvalidCharacteristic(f"'prodSpecCharValueUse[{i}].name': '{name}' is not a characteristic of "
                                        f"product specification '{product_spec.get('name')}' (known: {known})")
        for j, v in enumerate(use.get("productSpecCharacteristicValue") or []):
            if "value" in v and not allowed_value(v["value"], chars[name]):
                raise InvalidCharacteristic(
                    f"'prodSpecCharValueUse[{i}].productSpecCharacteristicValue[{j}].value': {v['value']!r} is not "
                    f"an allowed value of characteristic '{name}'")


def check_characteristic_values(values: Iterable[tuple[str, Any]], product_spec: dict[str, Any]) -> None:
    """Values chosen when ordering (name, value) against the specification: unknown names and values refused."""
    chars = {c.get("name"): c for c in product_spec.get("productSpecCharacteristic") or []}
    for name, value in values:
        if name not in chars:
            raise InvalidCharacteristic(f"'{name}' is not a characteristic of '{product_spec.get('name')}'")
        if not allowed_value(value, chars[name]):
            raise InvalidCharacteristic(f"{value!r} is not an allowed value of characteristic '{name}'")


# --- bundles ------------------------------------------------------------------------------------------------
def check_bundle_options(doc: dict[str, Any]) -> None:
    bundled = doc.get("bundledProductOffering") or []
    if bundled and not doc.get("isBundle"):
        raise InvalidBundle("'isBundle' must be true when bundledProductOffering is given")
    if doc.get("isBundle") and not bundled:
        raise InvalidBundle("'bundledProductOffering': a bundle lists at least one offering")
    seen: set[str] = set()
    for i, b in enumerate(bundled):
        if not b.get("id"):
            raise InvalidBundle(f"'bundledProductOffering[{i}].id' is required")
        if b["id"] in seen:
            raise InvalidBundle(f"'bundledProductOffering[{i}].id': offering '{b['id']}' is listed twice")
        seen.add(b["id"])
        opt = b.get("bundledProductOfferingOption") or {}
        lo, hi, dflt = (opt.get("numberRelOfferLowerLimit"), opt.get("numberRelOfferUpperLimit"),
                        opt.get("numberRelOfferDefault"))
        w = f"bundledProductOffering[{i}].bundledProductOfferingOption"
        if lo is not None and lo < 0:
            raise InvalidBundle(f"'{w}.numberRelOfferLowerLimit' must not be negative")
        if hi is not None and hi < 1:
            raise InvalidBundle(f"'{w}.numberRelOfferUpperLimit' must be at least 1")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidBundle(f"'{w}': lower limit {lo} exceeds upper limit {hi}")
        if dflt is not None and ((lo is not None and dflt < lo) or (hi is not None and dflt > hi)):
            raise InvalidBundle(f"'{w}.numberRelOfferDefault': {dflt} is outside [{lo}, {hi}]")


async def check_no_bundle_cycle(ctx: Context, table: type[TmfDocument], self_id: str | None,
                                children: list[str]) -> None:
    """A bundle cannot contain itself, directly or through nested bundles."""
    if self_id is None:
        return
    if self_id in children:
        raise InvalidBundle(f"'bundledProductOffering': the bundle cannot contain itself ('{self_id}')")
    seen: set[str] = set()
    frontier = list(children)
    while frontier:
        bodies = await repository.bodies_by_id(ctx.session, table, frontier)
        nxt: list[str] = []
        for oid, body in bodies.items():
            for b in body.get("bundledProductOffering") or []:
                cid = b.get("id")
                if cid == self_id:
                    raise InvalidBundle(f"'bundledProductOffering': offering '{oid}' already contains this bundle "
                                        f"('{self_id}'), so it cannot be part of it (cycle)")
                if cid and cid not in seen:
                    seen.add(cid)
                    nxt.append(cid)
        frontier = nxt


# --- references ------------------------------------------------------------------------------------------------
async def check_refs(ctx: Context, table: type[TmfDocument], type_name: str, refs: list[tuple[str, Any]],
                     ) -> dict[str, dict[str, Any]]:
    """Every (path, ref) names an existing object of ``table``; returns their bodies by id."""
    ids = [r.get("id") for _, r in refs if isinstance(r, dict)]
    found = await repository.bodies_by_id(ctx.session, table, [i for i in ids if i])
    for path, ref in refs:
        rid = ref.get("id") if isinstance(ref, dict) else None
        if not rid:
            raise UnknownReference(f"'{path}.id' is required")
        if rid not in found:
            raise UnknownReference(f"'{path}.id': {type_name} '{rid}' not found")
        status = found[rid].get("lifecycleStatus")
        if status == "Obsolete":
            raise UnknownReference(f"'{path}.id': {type_name} '{rid}' is Obsolete and cannot be referenced")
    return found


def ref_list(doc: dict[str, Any], attr: str) -> list[tuple[str, Any]]:
    return [(f"{attr}[{i}]", r) for i, r in enumerate(doc.get(attr) or [])]

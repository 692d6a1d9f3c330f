"""TMF620 shapes, built from the official specification, plus the OpenBSS extension attributes of prices.

TMF620 v4 has no attributes for billing timing, proration, usage tiers, allowances or tariffs. Following the
TMF630 extension pattern, a ``ProductOfferingPrice`` may carry these additional attributes, and one that does is
the subtype ``OpenBSSProductOfferingPrice`` (``@type``, ``@baseType`` ProductOfferingPrice, ``@schemaLocation`` of
its published schema, ``/tmf-api/schema/OpenBSSProductOfferingPrice.schema.json``):

``billingTiming``     recurring: ``inAdvance`` | ``inArrears`` (default ``inAdvance``)
``prorationPolicy``   recurring: ``daily`` | ``fullPeriod`` | ``noCharge`` for partial periods (default ``daily``)
``chargeCategory``    one-time: ``activation`` | ``installation`` | ``device`` | ``penalty`` | ``other``
``usageType``         usage: ``voice`` | ``sms`` | ``mms`` | ``data`` | ``video`` | ``event``
``tierType``          usage: ``flat`` (``price`` per ``unitOfMeasure``) | ``tiered`` (graduated) | ``volume``
``priceTier``         usage: ``[{fromQuantity, toQuantity, unitPrice, flatFee, ratingBlock}]`` in ``unitOfMeasure``
                      units; ``ratingBlock`` (a ``Quantity``) gives each tier its own increment
``allowance``         usage: included quantities per period ``[{name, quantity | unlimited, period, rollover,
                      sharing, destinationZone, timeBand}]``; usage beyond them is charged at the price (overage)
``tariff``            usage: reference to an OpenBSS tariff rating the usage by destination/time band
``ratingBlock``       usage without a tariff: rated units ``{initial, subsequent}`` as ``Quantity`` (1 MB blocks, 100 KB
                      then 10 KB, 60 s then 1 s); default: the ``unitOfMeasure``
``allowanceRatingBlock`` usage: the blocks allowances count in, when not the price's (a bundle minute counted per
                      second while money counts per minute)
``rounding``          usage: ``{method: up | down | halfUp, decimals}``, how the price of one rated unit is rounded
``chargeSetupWithAllowance`` usage: the setup charge (connect fee) is charged even when an allowance pays the whole
                      call (default: only when money pays part of it)
``maximumCharge``     usage: the most one session (a call) costs in money
``maximumRate``       usage: the most the price (or its tariff's rate) is per ``unitOfMeasure``
``quotaPolicy``       usage: online charging's grants: ``{defaultQuota, minimumQuota, validityTime,
                      quotaHoldingTime}`` (quotas as ``Quantity``, times in seconds)
``pricePhase``        recurring: ``[{name, duration: {amount, units: day | week | month | year}, price |
                      discountPercentage}]`` from the product's start (a trial, a discounted start), then the price
``fixedTermPeriods``  recurring: the charge stops after that many charge periods from the product's start
``billingAlignment``  recurring: ``calendar`` (periods follow the account's bill cycle) or ``anniversary`` (month-based
                      periods start on the product's activation day); default: the tenant's billing setting
``chargeModel``       usage: billing prices the period's usage with ``{model: perUnit | graduated | volume | package |
                      percentage, unitPrice, tiers, packageSize, packagePrice, freeUnits, percentage, fixedFee,
                      freeTransactions, minimumSpend}`` (``pricing.charge_models``; quantities in ``unitOfMeasure``)
``applicationDuration`` discount: how long the alteration applies (TMF ``Duration``, e.g. 3 months)

Tariffs, service and resource specifications are described by ``OpenBSS-CatalogExtensions-v1.swagger.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.spec import TmfModel, TmfNumber, load_spec

SPEC_FILE = "TMF620-ProductCatalog-v4.1.0.swagger.json"
EXT_SPEC_FILE = "OpenBSS-CatalogExtensions-v1.swagger.json"
spec = load_spec(SPEC_FILE)
ext_spec = load_spec(EXT_SPEC_FILE)

Quantity = spec.model("Quantity")
Money = spec.model("Money")
Duration = spec.model("Duration")


class PriceTier(TmfModel):
    fromQuantity: TmfNumber = Field(..., description="First quantity of the tier (inclusive)")
    toQuantity: TmfNumber | None = Field(None, description="End of the tier (exclusive); absent on the last tier")
    unitPrice: TmfNumber = Field(..., description="Price per unitOfMeasure within the tier")
    flatFee: TmfNumber | None = Field(None, description="Charged once when usage reaches the tier")
    ratingBlock: Quantity | None = Field(  # type: ignore[valid-type]
        None, description="The tier's own increment (first minutes in 60 s steps, then 1 s steps); when one tier "
                          "sets it, every tier does")


class Rollover(TmfModel):
    maxPeriods: int = Field(..., ge=1, description="How many following periods an unused remainder survives")
    maxQuantity: Quantity | None = Field(None, description="Cap of what rolls over")  # type: ignore[valid-type]


class Allowance(TmfModel):
    name: str | None = None
    quantity: Quantity | None = Field(None, description="Included quantity per period")  # type: ignore[valid-type]
    unlimited: bool | None = Field(None, description="Unlimited usage within the fair use policy")
    period: Literal["day", "week", "month", "year"] | None = Field(None, description="Default month")
    rollover: Rollover | None = None
    sharing: Literal["line", "pool"] | None = Field(None, description="pool: shared by all lines of a bundle")
    destinationZone: list[str] | None = Field(None, description="Tariff zones the allowance covers (default all)")
    timeBand: list[str] | None = Field(None, description="Tariff time bands the allowance covers (default all)")


class RatingBlock(TmfModel):
    initial: Quantity = Field(..., description="The first rated unit of a session")  # type: ignore[valid-type]
    subsequent: Quantity | None = Field(  # type: ignore[valid-type]
        None, description="Each next rated unit (default: the initial one)")


class Rounding(TmfModel):
    method: Literal["up", "down", "halfUp"] | None = Field(None, description="Default halfUp")
    decimals: int = Field(..., ge=0, le=9, description="Decimal places of the price of one rated unit")


class QuotaPolicy(TmfModel):
    defaultQuota: Quantity | None = Field(  # type: ignore[valid-type]
        None, description="Granted when the network does not say how much it wants")
    minimumQuota: Quantity | None = Field(  # type: ignore[valid-type]
        None, description="A grant smaller than this (and than requested) is refused: 4012")
    validityTime: int | None = Field(None, ge=1, le=86400, description="Seconds a grant is held (Validity-Time)")
    quotaHoldingTime: int | None = Field(None, ge=1, le=86400,
                                         description="Seconds of inactivity after which the network gives a grant "
                                                     "back (Quota-Holding-Time)")


class PhaseDuration(TmfModel):
    amount: int = Field(..., ge=1, description="How many units the phase lasts")
    units: Literal["day", "week", "month", "year"] = Field(..., description="Unit of the duration")


class PricePhase(TmfModel):
    name: str | None = Field(None, description="What the bill calls the phase (Trial, Welcome offer)")
    duration: PhaseDuration = Field(..., description="How long the phase lasts, counted from the previous one")
    price: TmfNumber | None = Field(None, description="The price per charge period during the phase")
    discountPercentage: TmfNumber | None = Field(None, description="Or a percentage off the price")


class ChargeModelTier(TmfModel):
    fromQuantity: TmfNumber = Field(..., description="First quantity of the tier (inclusive)")
    toQuantity: TmfNumber | None = Field(None, description="End of the tier (exclusive); absent on the last tier")
    unitPrice: TmfNumber = Field(..., description="Price per unitOfMeasure within the tier")
    flatFee: TmfNumber | None = Field(None, description="Charged once when the period's usage enters the tier")


class ChargeModel(TmfModel):
    model: Literal["perUnit", "graduated", "volume", "package", "percentage"] = Field(
        ..., description="How billing prices a period's usage")
    unitPrice: TmfNumber | None = Field(None, description="perUnit: price per unitOfMeasure")
    tiers: list[ChargeModelTier] | None = Field(None, description="graduated, volume: the tiers")
    packageSize: TmfNumber | None = Field(None, description="package: units per block (a started block is whole)")
    packagePrice: TmfNumber | None = Field(None, description="package: price per started block")
    freeUnits: TmfNumber | None = Field(None, description="perUnit, package: units of a period not charged")
    percentage: TmfNumber | None = Field(None, description="percentage: percent of each transaction's amount")
    fixedFee: TmfNumber | None = Field(None, description="percentage: fixed fee per transaction")
    freeTransactions: int | None = Field(None, description="percentage: the period's first transactions are free")
    minimumSpend: TmfNumber | None = Field(None, description="the least a period costs (a true-up line)")


class TariffRef(TmfModel):
    id: str
    href: str | None = None
    name: str | None = None
    version: str | None = None
    referred_type: str | None = Field(None, alias="@referredType")


POP_EXTENSION: dict[str, Any] = {
    "billingTiming": (Literal["inAdvance", "inArrears"] | None, Field(None, alias="billingTiming")),
    "prorationPolicy": (Literal["daily", "fullPeriod", "noCharge"] | None, Field(None, alias="prorationPolicy")),
    "chargeCategory": (Literal["activation", "installation", "device", "penalty", "other"] | None,
                       Field(None, alias="chargeCategory")),
    "usageType": (Literal["voice", "sms", "mms", "data", "video", "event"] | None, Field(None, alias="usageType")),
    "tierType": (Literal["flat", "tiered", "volume"] | None, Field(None, alias="tierType")),
    "priceTier": (list[PriceTier] | None, Field(None, alias="priceTier")),
    "allowance": (list[Allowance] | None, Field(None, alias="allowance")),
    "tariff": (TariffRef | None, Field(None, alias="tariff")),
    "ratingBlock": (RatingBlock | None, Field(None, alias="ratingBlock")),
    "allowanceRatingBlock": (RatingBlock | None, Field(None, alias="allowanceRatingBlock")),
    "rounding": (Rounding | None, Field(None, alias="rounding")),
    "quotaPolicy": (QuotaPolicy | None, Field(None, alias="quotaPolicy")),
    "chargeSetupWithAllowance": (bool | None, Field(None, alias="chargeSetupWithAllowance")),
    "maximumCharge": (Money | None, Field(None, alias="maximumCharge")),
    "maximumRate": (Money | None, Field(None, alias="maximumRate")),
    "applicationDuration": (Duration | None, Field(None, alias="applicationDuration")),
    "chargeModel": (ChargeModel | None, Field(None, alias="chargeModel")),
    "pricePhase": (list[PricePhase] | None, Field(None, alias="pricePhase")),
    "fixedTermPeriods": (int | None, Field(None, alias="fixedTermPeriods", ge=1)),
    "billingAlignment": (Literal["calendar", "anniversary"] | None, Field(None, alias="billingAlignment")),
}
EXTENSION_ATTRIBUTES = {"ProductOfferingPrice": tuple(POP_EXTENSION)}


def _price_extension() -> Extension:
    attributes = create_model("OpenBSSProductOfferingPriceAttributes", **POP_EXTENSION)
    schema = attributes.model_json_schema(ref_template="#/definitions/{model}", by_alias=True)
    return Extension(
        name="OpenBSSProductOfferingPrice", base="ProductOfferingPrice", spec_file=SPEC_FILE,
        description="A price with billing timing, proration, usage tiers, allowances or a tariff (OpenBSS).",
        properties=schema["properties"], definitions=schema.get("$defs", {}))


#: the TMF630 subtype a price carrying these attributes is rendered as (platform/tmf/extensions.py)
PRICE_EXTENSION = _price_extension()


def extend(base: type[BaseModel], name: str, fields: dict[str, Any]) -> type[BaseModel]:
    model: type[BaseModel] = create_model(name, __base__=base, **fields)
    model.__doc__ = base.__doc__
    return model


ProductOfferingPriceCreate = extend(spec.model("ProductOfferingPrice_Create"), "ProductOfferingPrice_Create",
                                    POP_EXTENSION)
ProductOfferingPriceUpdate = extend(spec.model("ProductOfferingPrice_Update"), "ProductOfferingPrice_Update",
                                    POP_EXTENSION)
# The server writes the export: the caller need not say where.
ExportJobCreate = extend(spec.model("ExportJob_Create"), "ExportJob_Create",
                         {"url": (str | None, Field(None, alias="url"))})

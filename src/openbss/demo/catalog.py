"""The demo catalog of ``openbss demo``: what a small converged operator sells.

* service and resource specifications for decomposition (mobile: CFS mobile voice & data → RFS HSS subscription,
  PCRF policy; resources MSISDN and SIM — fiber: CFS broadband → RFS AAA profile; resources ONT, static IPv4);
* a voice tariff with 229 international destinations, domestic peak/off-peak/weekend bands and three roaming
  zones;
* prepaid and postpaid mobile plans with allowances (data rollover, tiered overage, a 3-month discount), a
  roaming add-on, data and international add-ons, fiber 1 Gbps with installation fee, router and a 24-month
  commitment, and an enterprise bundle of 10 lines with a shared 200 GB data pool (business calls in tiers with
  their own increments: the first 3 minutes by the minute, then by the second);
* categories and two catalogs (consumer, business), everything Active.

``seed_catalog`` is idempotent: it does nothing when the tenant already has offerings.
"""

from __future__ import annotations

from typing import Any

from openbss.catalog import repository
from openbss.catalog.models import ProductOffering
from openbss.demo.destinations import ROAMING_EU, ROAMING_WORLD_1, ROAMING_WORLD_2, destinations
from openbss.demo.support import admin_context
from openbss.platform.db import Database
from openbss.services import Services

EUR = "EUR"
GROUP_RATE = {"A": "0.19", "B": "0.29", "C": "0.79", "D": "2.49"}
CONSUMER = [{"id": "consumer", "name": "Consumer"}]
ENTERPRISE = [{"id": "enterprise", "name": "Enterprise"}, {"id": "smb", "name": "Small business"}]
RETAIL_CHANNELS = [{"id": "web", "name": "Web shop"}, {"id": "retail", "name": "Retail stores"},
                   {"id": "callCenter", "name": "Call center"}]
B2B_CHANNELS = [{"id": "b2bSales", "name": "Business sales"}]


def _m(value: str) -> dict[str, Any]:
    return {"unit": EUR, "value": value}


def _ref(doc: dict[str, Any], *, version: bool = True) -> dict[str, Any]:
    out = {"id": doc["id"], "href": doc["href"], "name": doc["name"]}
    if version:
        out["version"] = doc["version"]
    return out


def _chars(*items: tuple[str, str, list[Any]]) -> list[dict[str, Any]]:
    return [{"name": n, "valueType": t, "configurable": True,
             "productSpecCharacteristicValue": [{"value": v, "valueType": t, "isDefault": i == 0}
                                                for i, v in enumerate(vals)]} for n, t, vals in items]


def demo_tariff() -> dict[str, Any]:
    zones: list[dict[str, Any]] = [
        {"id": "FR-FIX", "name": "France fixed", "prefix": ["331", "332", "333", "334", "335", "339"]},
        {"id": "FR-MOB", "name": "France mobile", "prefix": ["336", "337"]},
        {"id": "FR-SPECIAL", "name": "France special numbers", "prefix": ["338"]},
    ]
    rates: list[dict[str, Any]] = []
    for band, fix, mob in (("peak", "0.05", "0.10"), ("offPeak", "0.02", "0.05"), ("weekend", "0.01", "0.03")):
        rates.append({"destinationZone": "FR-FIX", "timeBand": band, "price": _m(fix)})
        rates.append({"destinationZone": "FR-MOB", "timeBand": band, "price": _m(mob)})
    rates.append({"destinationZone": "FR-SPECIAL", "price": _m("0.35"), "setupCharge": _m("0.10"),
                  "ratingIncrement": {"initial": 60, "subsequent": 60}})
    for iso, prefixes, name, group in destinations():
        zones.append({"id": iso, "name": name, "prefix": prefixes})
        rates.append({"destinationZone": iso, "price": _m(GROUP_RATE[group]),
                      "ratingIncrement": {"initial": 60, "subsequent": 60} if group == "D" else
                      {"initial": 30, "subsequent": 1}})
    # roaming: EU roams like at home (domestic rates apply through the home rates of the EU zone), others cost more
    rates += [
        {"destinationZone": "*", "roamingZone": "EU", "price": _m("0.05")},
        {"destinationZone": "*", "roamingZone": "WORLD1", "price": _m("0.99"),
         "ratingIncrement": {"initial": 60, "subsequent": 60}},
        {"destinationZone": "*", "roamingZone": "WORLD2", "price": _m("1.99"),
         "ratingIncrement": {"initial": 60, "subsequent": 60}},
    ]
    return {
        "name": "Voice national, international and roaming 2026", "usageType": "voice",
        "lifecycleStatus": "Active", "timeZone": "Europe/Paris", "homeCountry": "FR",
        "description": "Per-minute voice rates by destination (longest prefix), time band and roaming zone",
        "defaultRatingIncrement": {"initial": 60, "subsequent": 1},
        "timeBand": [
            {"name": "peak", "dayOfWeek": ["mon", "tue", "wed", "thu", "fri"], "startTime": "08:00",
             "endTime": "20:00"},
            {"name": "offPeak", "dayOfWeek": ["mon", "tue", "wed", "thu", "fri"], "startTime": "00:00",
             "endTime": "08:00"},
            {"name": "offPeak", "dayOfWeek": ["mon", "tue", "wed", "thu", "fri"], "startTime": "20:00",
             "endTime": "24:00"},
            {"name": "weekend", "dayOfWeek": ["sat", "sun"]},
        ],
        "holiday": [{"date": "2026-12-25", "timeBand": "weekend", "name": "Christmas"},
                    {"date": "2027-01-01", "timeBand": "weekend", "name": "New year"}],
        "destinationZone": zones,
        "roamingZone": [
            {"id": "EU", "name": "EU/EEA (roam like at home)", "country": ROAMING_EU},
            {"id": "WORLD1", "name": "World zone 1", "country": ROAMING_WORLD_1},
            {"id": "WORLD2", "name": "World zone 2", "country": ROAMING_WORLD_2},
        ],
        "rate": rates,
    }


async def seed_catalog(services: Services, db: Database, tenant_id: str, base_url: str) -> None:
    """Create the demo catalog in ``tenant_id`` unless it already has offerings."""
    catalog = services.catalog.catalog
    async with db.transaction(tenant_id) as session:
        if await repository.count(session, ProductOffering) > 0:
            return
        ctx = admin_context(tenant_id, session, base_url, subject="catalog-seed")

        async def make(path: str, doc: dict[str, Any]) -> dict[str, Any]:
            svc = catalog[path]
            return await svc.create(ctx, svc.validate_create({"lifecycleStatus": "Active", **doc}))

        # --- OSS: resources and services -------------------------------------------------------------------
        msisdn = await make("resourceSpecification", {
            "@type": "LogicalResourceSpecification", "name": "MSISDN", "category": "number",
            "description": "E.164 mobile number from the operator's number pools",
            "resourceSpecCharacteristic": [{"name": "numberType", "valueType": "string",
                                            "characteristicValueSpecification": [{"value": "standard"},
                                                                                 {"value": "golden"}]}]})
        sim = await make("resourceSpecification", {
            "@type": "PhysicalResourceSpecification", "name": "SIM card", "category": "sim",
            "resourceSpecCharacteristic": [{"name": "form", "valueType": "string",
                                            "characteristicValueSpecification": [{"value": "physical"},
                                                                                 {"value": "eSIM"}]},
                                           {"name": "ICCID", "valueType": "string"},
                                           {"name": "IMSI", "valueType": "string"}]})
        ont = await make("resourceSpecification", {
            "@type": "PhysicalResourceSpecification", "name": "ONT", "category": "cpe",
            "description": "Optical network terminal at the customer premises",
            "resourceSpecCharacteristic": [{"name": "serialNumber", "valueType": "string"}]})
        ipv4 = await make("resourceSpecification", {
            "@type": "LogicalResourceSpecification", "name": "Static IPv4 address", "category": "ipAddress"})
        hss = await make("serviceSpecification", {
            "@type": "ResourceFacingServiceSpecification", "name": "HSS subscription",
            "description": "Subscriber profile in the HSS/UDM (IMSI, MSISDN, services)",
            "resourceSpecification": [_ref(msisdn), _ref(sim)]})
        pcrf = await make("serviceSpecification", {
            "@type": "ResourceFacingServiceSpecification", "name": "PCRF policy",
            "description": "Data policy and quota enforcement in the PCRF/PCF",
            "serviceSpecCharacteristic": [{"name": "qosProfile", "valueType": "string"}]})
        aaa = await make("serviceSpecification", {
            "@type": "ResourceFacingServiceSpecification", "name": "AAA broadband profile",
            "description": "RADIUS profile: speed, IP assignment",
            "resourceSpecification": [_ref(ont), _ref(ipv4)]})
        mobile_cfs = await make("serviceSpecification", {
            "@type": "CustomerFacingServiceSpecification", "name": "Mobile voice and data",
            "serviceSpecRelationship": [{"id": hss["id"], "href": hss["href"], "name": hss["name"],
                                         "relationshipType": "reliesOn"},
                                        {"id": pcrf["id"], "href": pcrf["href"], "name": pcrf["name"],
                                         "relationshipType": "reliesOn"}]})
        broadband_cfs = await make("serviceSpecification", {
            "@type": "CustomerFacingServiceSpecification", "name": "Broadband internet",
            "serviceSpecRelationship": [{"id": aaa["id"], "href": aaa["href"], "name": aaa["name"],
                                         "relationshipType": "reliesOn"}]})

        # --- product specifications ------------------------------------------------------------------------
        mobile_spec = await make("productSpecification", {
            "name": "Mobile line", "brand": "Demo Telecom", "productNumber": "MOB-LINE",
            "productSpecCharacteristic": _chars(("simType", "string", ["physical", "eSIM"]),
                                                ("numberPortability", "boolean", [False, True])),
            "serviceSpecification": [_ref(mobile_cfs)], "resourceSpecification": [_ref(msisdn), _ref(sim)]})
        fiber_spec = await make("productSpecification", {
            "name": "Fiber broadband", "brand": "Demo Telecom", "productNumber": "FTTH",
            "productSpecCharacteristic": [
                {"name": "downloadSpeed", "valueType": "integer", "configurable": False,
                 "productSpecCharacteristicValue": [{"value": 300, "unitOfMeasure": "Mbps"},
                                                    {"value": 1000, "unitOfMeasure": "Mbps", "isDefault": True}]},
                *_chars(("staticIp", "boolean", [False, True]))],
            "serviceSpecification": [_ref(broadband_cfs)], "resourceSpecification": [_ref(ont), _ref(ipv4)]})
        pool_spec = await make("productSpecification", {
            "name": "Shared data pool", "productNumber": "DATA-POOL",
            "productSpecCharacteristic": [{"name": "poolSizeGB", "valueType": "integer",
                                           "productSpecCharacteristicValue": [{"valueFrom": 50, "valueTo": 1000,
                                                                               "rangeInterval": "closed"}]}],
            "serviceSpecification": [_ref(mobile_cfs)]})
        addon_spec = await make("productSpecification", {"name": "Mobile add-on", "productNumber": "MOB-ADDON"})

        tariff = await make("tariff", demo_tariff())
        tariff_ref = {"id": tariff["id"], "href": tariff["href"], "name": tariff["name"], "version": "1.0"}

        async def price(doc: dict[str, Any]) -> dict[str, Any]:
            return await make("productOfferingPrice", {"tax": [{"taxCategory": "standard", "taxRate": 20}], **doc})

        def voice(name: str, minutes: int | None, **extra: Any) -> dict[str, Any]:
            allowance = {"unlimited": True} if minutes is None else {"quantity": {"amount": minutes,
                                                                                   "units": "minute"}}
            return {"name": name, "priceType": "usage", "usageType": "voice", "price": {"unit": EUR},
                    "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": tariff_ref,
                    "allowance": [{"name": "Domestic minutes", "period": "month",
                                   "destinationZone": ["FR-FIX", "FR-MOB"], **allowance}], **extra}

        def sms(name: str) -> dict[str, Any]:
            return {"name": name, "priceType": "usage", "usageType": "sms", "price": _m("0.10"),
                    "unitOfMeasure": {"amount": 1, "units": "SMS"},
                    "allowance": [{"name": "Unlimited SMS", "unlimited": True, "period": "month"}]}

        def ref(p: dict[str, Any]) -> dict[str, Any]:
            return _ref(p)

        # --- prepaid mobile --------------------------------------------------------------------------------
        prepaid_prices = [
            await price({"name": "Prepaid S bundle (30 days)", "priceType": "recurring", "price": _m("9.99"),
                         "recurringChargePeriodType": "month", "billingTiming": "inAdvance",
                         "prorationPolicy": "fullPeriod"}),
            await price({"name": "Prepaid S data", "priceType": "usage", "usageType": "data", "price": _m("0.02"),
                         "unitOfMeasure": {"amount": 1, "units": "MB"},
                         # rated per 100 KB, then per 10 KB; each block's price rounded up to 4 decimals
                         "ratingBlock": {"initial": {"amount": 100, "units": "KB"},
                                         "subsequent": {"amount": 10, "units": "KB"}},
                         "rounding": {"method": "up", "decimals": 4},
                         "quotaPolicy": {"defaultQuota": {"amount": 10, "units": "MB"},
                                         "minimumQuota": {"amount": 100, "units": "KB"}, "validityTime": 600},
                         "allowance": [{"name": "10 GB", "quantity": {"amount": 10, "units": "GB"},
                                        "period": "month"}]}),
            await price(voice("Prepaid S voice", 500, allowance=[
                {"name": "Domestic minutes", "period": "month", "destinationZone": ["FR-FIX", "FR-MOB"],
                 "quantity": {"amount": 500, "units": "minute"}},
                {"name": "Night and weekend minutes", "period": "month", "timeBand": ["offPeak", "weekend"],
                 "quantity": {"amount": 100, "units": "minute"}}])),
            await price(sms("Prepaid S SMS")),
            await price({"name": "SIM card (prepaid)", "priceType": "oneTime", "price": _m("5.00"),
                         "chargeCategory": "device"}),
        ]
        # --- postpaid mobile -------------------------------------------------------------------------------
        monthly_m = await price({"name": "Mobile M monthly fee", "priceType": "recurring", "price": _m("24.99"),
                                 "recurringChargePeriodType": "month", "billingTiming": "inAdvance",
                                 "prorationPolicy": "daily"})
        postpaid_prices = [
            monthly_m,
            await price({"name": "Mobile M activation", "priceType": "oneTime", "price": _m("10.00"),
                         "chargeCategory": "activation"}),
            await price({"name": "Mobile M data", "priceType": "usage", "usageType": "data", "price": {"unit": EUR},
                         "unitOfMeasure": {"amount": 1, "units": "MB"}, "tierType": "tiered",
                         "ratingBlock": {"initial": {"amount": 1, "units": "MB"}},
                         "priceTier": [{"fromQuantity": 0, "toQuantity": 1024, "unitPrice": "0.02"},
                                       {"fromQuantity": 1024, "unitPrice": "0.01"}],
                         "allowance": [{"name": "50 GB", "quantity": {"amount": 50, "units": "GB"},
                                        "period": "month", "rollover": {"maxPeriods": 1,
                                                                        "maxQuantity": {"amount": 50,
                                                                                        "units": "GB"}}}]}),
            await price(voice("Mobile M voice", None)),
            await price(sms("Mobile M SMS")),
            await price({"name": "Welcome discount: 50% for 3 months", "priceType": "discount", "percentage": 50,
                         "applicationDuration": {"amount": 3, "units": "month"},
                         "popRelationship": [{"id": monthly_m["id"], "href": monthly_m["href"],
                                              "name": monthly_m["name"], "relationshipType": "discounts"}]}),
        ]
        # --- roaming and add-ons ---------------------------------------------------------------------------
        roaming_prices = [
            await price({"name": "Travel World pass", "priceType": "recurring", "price": _m("14.99"),
                         "recurringChargePeriodType": "month", "prorationPolicy": "noCharge"}),
            await price({"name": "Travel World data", "priceType": "usage", "usageType": "data",
                         "price": {"unit": EUR}, "unitOfMeasure": {"amount": 1, "units": "MB"}, "tierType": "volume",
                         "priceTier": [{"fromQuantity": 0, "toQuantity": 500, "unitPrice": "0.05"},
                                       {"fromQuantity": 500, "unitPrice": "0.03"}],
                         "allowance": [{"name": "Roaming 2 GB", "quantity": {"amount": 2, "units": "GB"},
                                        "period": "month"}]}),
            await price(voice("Travel World voice", 100)),
        ]
        extra_data = [
            await price({"name": "Extra 5 GB", "priceType": "oneTime", "price": _m("5.00"), "chargeCategory": "other"}),
            await price({"name": "Extra 5 GB allowance", "priceType": "usage", "usageType": "data",
                         "price": _m("0"), "unitOfMeasure": {"amount": 1, "units": "MB"},
                         "allowance": [{"quantity": {"amount": 5, "units": "GB"}, "period": "month"}]}),
        ]
        intl_100 = [
            await price({"name": "International 100 minutes", "priceType": "recurring", "price": _m("4.99"),
                         "recurringChargePeriodType": "month"}),
            await price({"name": "International 100 minutes usage", "priceType": "usage", "usageType": "voice",
                         "price": {"unit": EUR}, "unitOfMeasure": {"amount": 1, "units": "minute"},
                         "tariff": tariff_ref,
                         "allowance": [{"quantity": {"amount": 100, "units": "minute"}, "period": "month",
                                        "destinationZone": [iso for iso, _, _, g in destinations() if g == "A"]}]}),
        ]
        # --- fiber ----------------------------------------------------------------------------------------
        fiber_prices = [
            await price({"name": "Fiber 1 Gbps monthly fee", "priceType": "recurring", "price": _m("39.99"),
                         "recurringChargePeriodType": "month", "billingTiming": "inAdvance",
                         "prorationPolicy": "daily"}),
            await price({"name": "Fiber installation", "priceType": "oneTime", "price": _m("49.00"),
                         "chargeCategory": "installation"}),
            await price({"name": "Wi-Fi 6 router", "priceType": "oneTime", "price": _m("79.00"),
                         "chargeCategory": "device"}),
            await price({"name": "Early termination fee", "priceType": "penalty", "price": _m("150.00"),
                         "chargeCategory": "penalty"}),
        ]
        # --- enterprise -------------------------------------------------------------------------------------
        business_line_fee = await price({"name": "Business line monthly fee", "priceType": "recurring",
                                         "price": _m("15.00"), "recurringChargePeriodType": "month",
                                         "billingTiming": "inArrears"})
        business_calls = await price({
            "name": "Business line calls", "priceType": "usage", "usageType": "voice", "price": {"unit": EUR},
            "unitOfMeasure": {"amount": 1, "units": "minute"}, "tierType": "tiered",
            # tiers with their own increments: the first 3 minutes of a call by the minute, then by the second
            "priceTier": [{"fromQuantity": 0, "toQuantity": 3, "unitPrice": "0.20",
                           "ratingBlock": {"amount": 60, "units": "second"}},
                          {"fromQuantity": 3, "unitPrice": "0.10", "ratingBlock": {"amount": 1, "units": "second"}}]})
        pool_prices = [
            await price({"name": "Shared pool 200 GB monthly fee", "priceType": "recurring", "price": _m("99.00"),
                         "recurringChargePeriodType": "month"}),
            await price({"name": "Shared pool data", "priceType": "usage", "usageType": "data",
                         "price": {"unit": EUR}, "unitOfMeasure": {"amount": 1, "units": "GB"},
                         "tierType": "volume",
                         "priceTier": [{"fromQuantity": 0, "toQuantity": 100, "unitPrice": "5.00"},
                                       {"fromQuantity": 100, "unitPrice": "3.50"}],
                         "allowance": [{"name": "Pool 200 GB", "quantity": {"amount": 200, "units": "GB"},
                                        "period": "month", "sharing": "pool"}]}),
        ]
        bundle_fee = await price({"name": "Business Pro 10 bundle fee", "priceType": "recurring",
                                  "price": _m("199.00"), "recurringChargePeriodType": "month",
                                  "tax": [{"taxCategory": "standard", "taxRate": 20}]})

        # --- categories and offerings ---------------------------------------------------------------------
        mobile_cat = await make("category", {"name": "Mobile", "isRoot": True})
        cats = {n: await make("category", {"name": n, "parentId": mobile_cat["id"]})
                for n in ("Prepaid", "Postpaid", "Add-ons")}
        broadband_cat = await make("category", {"name": "Broadband", "isRoot": True})
        business_cat = await make("category", {"name": "Business", "isRoot": True})

        def cref(c: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"id": c["id"], "href": c["href"], "name": c["name"]}]

        def offering(name: str, spec: dict[str, Any], prices: list[dict[str, Any]], category: dict[str, Any],
                     **extra: Any) -> dict[str, Any]:
            return {"name": name, "productSpecification": _ref(spec), "isBundle": False, "isSellable": True,
                    "productOfferingPrice": [ref(p) for p in prices], "category": cref(category),
                    "marketSegment": CONSUMER, "channel": RETAIL_CHANNELS, **extra}

        prepaid = await make("productOffering", offering(
            "Prepaid S", mobile_spec, prepaid_prices, cats["Prepaid"],
            description="10 GB, 500 minutes, unlimited SMS for 30 days, no commitment",
            channel=RETAIL_CHANNELS[:2]))
        postpaid = await make("productOffering", offering(
            "Mobile M", mobile_spec, postpaid_prices, cats["Postpaid"],
            description="50 GB with rollover, unlimited calls and SMS in France",
            productOfferingTerm=[{"name": "No commitment", "duration": {"amount": 1, "units": "month"}}],
            prodSpecCharValueUse=[{"name": "simType", "productSpecCharacteristicValue": [{"value": "physical"},
                                                                                         {"value": "eSIM"}]}]))
        roaming = await make("productOffering", offering(
            "Travel World roaming pass", addon_spec, roaming_prices, cats["Add-ons"],
            description="2 GB and 100 minutes a month in World zones 1 and 2"))
        extra = await make("productOffering", offering("Extra 5 GB", addon_spec, extra_data, cats["Add-ons"]))
        intl = await make("productOffering", offering("International 100", addon_spec, intl_100, cats["Add-ons"],
                                                      description="100 minutes to EU/EEA, UK and Switzerland"))
        fiber = await make("productOffering", offering(
            "Fiber 1 Gbps", fiber_spec, fiber_prices, broadband_cat,
            description="1 Gbps down / 700 Mbps up, Wi-Fi 6 router, 24-month commitment",
            productOfferingTerm=[{"name": "24-month commitment", "duration": {"amount": 24, "units": "month"}}],
            prodSpecCharValueUse=[{"name": "downloadSpeed", "productSpecCharacteristicValue": [{"value": 1000}]}]))
        business_line = await make("productOffering", offering(
            "Business mobile line", mobile_spec, [business_line_fee, business_calls], business_cat, isSellable=False,
            marketSegment=ENTERPRISE, channel=B2B_CHANNELS))
        pool = await make("productOffering", offering(
            "Shared data pool 200 GB", pool_spec, pool_prices, business_cat, isSellable=False,
            marketSegment=ENTERPRISE, channel=B2B_CHANNELS,
            prodSpecCharValueUse=[{"name": "poolSizeGB", "productSpecCharacteristicValue": [{"value": 200}]}]))
        bundle = await make("productOffering", {
            "name": "Business Pro 10", "isBundle": True, "isSellable": True,
            "description": "10 business lines sharing a 200 GB data pool",
            "bundledProductOffering": [
                {"id": business_line["id"], "href": business_line["href"], "name": business_line["name"],
                 "bundledProductOfferingOption": {"numberRelOfferLowerLimit": 10, "numberRelOfferUpperLimit": 10,
                                                  "numberRelOfferDefault": 10}},
                {"id": pool["id"], "href": pool["href"], "name": pool["name"],
                 "bundledProductOfferingOption": {"numberRelOfferLowerLimit": 1, "numberRelOfferUpperLimit": 1,
                                                  "numberRelOfferDefault": 1}}],
            "productOfferingPrice": [ref(bundle_fee)], "category": cref(business_cat),
            "productOfferingTerm": [{"name": "12-month commitment", "duration": {"amount": 12, "units": "month"}}],
            "marketSegment": ENTERPRISE, "channel": B2B_CHANNELS})

        def orefs(*offers: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"id": o["id"], "href": o["href"], "name": o["name"]} for o in offers]

        svc = catalog["category"]
        for cat, offers in ((cats["Prepaid"], [prepaid]), (cats["Postpaid"], [postpaid]),
                            (cats["Add-ons"], [roaming, extra, intl]), (broadband_cat, [fiber]),
                            (business_cat, [bundle, business_line, pool])):
            await svc.patch(ctx, cat["id"], {"productOffering": orefs(*offers)})
        await svc.patch(ctx, mobile_cat["id"], {"subCategory": [
            {"id": c["id"], "href": c["href"], "name": c["name"]} for c in cats.values()]})
        await make("catalog", {"name": "Demo Telecom consumer catalog", "catalogType": "productCatalog",
                               "category": [{"id": c["id"], "href": c["href"], "name": c["name"]}
                                            for c in (mobile_cat, broadband_cat)]})
        await make("catalog", {"name": "Demo Telecom business catalog", "catalogType": "productCatalog",
                               "category": [{"id": business_cat["id"], "href": business_cat["href"],
                                             "name": business_cat["name"]}]})

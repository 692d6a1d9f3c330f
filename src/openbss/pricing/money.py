"""Currencies and the one rounding rule for money (ISO 4217 minor units, half-up by default).

Everything is ``Decimal``. A float never enters a price: callers convert JSON numbers with ``to_decimal``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# ISO 4217 active codes with their minor units (exponent). Codes not listed here are refused.
_MINOR_UNITS_SPEC = (
    "AED2 AFN2 ALL2 AMD2 ANG2 AOA2 ARS2 AUD2 AWG2 AZN2 BAM2 BBD2 BDT2 BGN2 BHD3 BIF0 BMD2 BND2 BOB2 BRL2 BSD2 "
    "BTN2 BWP2 BYN2 BZD2 CAD2 CDF2 CHF2 CLP0 CNY2 COP2 CRC2 CUP2 CVE2 CZK2 DJF0 DKK2 DOP2 DZD2 EGP2 ERN2 ETB2 "
    "EUR2 FJD2 FKP2 GBP2 GEL2 GHS2 GIP2 GMD2 GNF0 GTQ2 GYD2 HKD2 HNL2 HTG2 HUF2 IDR2 ILS2 INR2 IQD3 IRR2 ISK0 "
    "JMD2 JOD3 JPY0 KES2 KGS2 KHR2 KMF0 KPW2 KRW0 KWD3 KYD2 KZT2 LAK2 LBP2 LKR2 LRD2 LSL2 LYD3 MAD2 MDL2 MGA2 "
    "MKD2 MMK2 MNT2 MOP2 MRU2 MUR2 MVR2 MWK2 MXN2 MYR2 MZN2 NAD2 NGN2 NIO2 NOK2 NPR2 NZD2 OMR3 PAB2 PEN2 PGK2 "
    "PHP2 PKR2 PLN2 PYG0 QAR2 RON2 RSD2 RUB2 RWF0 SAR2 SBD2 SCR2 SDG2 SEK2 SGD2 SHP2 SLE2 SOS2 SRD2 SSP2 STN2 "
    "SVC2 SYP2 SZL2 THB2 TJS2 TMT2 TND3 TOP2 TRY2 TTD2 TWD2 TZS2 UAH2 UGX0 USD2 UYU2 UZS2 VES2 VND0 VUV0 WST2 "
    "XAF0 XCD2 XOF0 XPF0 YER2 ZAR2 ZMW2 ZWL2"
)
MINOR_UNITS: dict[str, int] = {item[:3]: int(item[3:]) for item in _MINOR_UNITS_SPEC.split()}

ROUNDING = {"halfUp": ROUND_HALF_UP, "halfEven": ROUND_HALF_EVEN}

# stored amounts are numeric(20, 6): an amount entered must stay below 10^14 (in absolute value)
MAX_AMOUNT = Decimal(10) ** 14


def is_currency(code: Any) -> bool:
    return isinstance(code, str) and code in MINOR_UNITS


def to_decimal(value: Any) -> Decimal:
    """A JSON number (int, Decimal, or a float that came through a JSON layer) as an exact Decimal."""
    if isinstance(value, bool):
        raise ValueError("a number is expected, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float | str):
        try:
            result = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"'{value}' is not a number") from exc
    else:
        raise ValueError(f"'{value}' is not a number")
    if not result.is_finite():
        raise ValueError(f"'{value}' is not a finite number")
    return result


def round_money(amount: Decimal, currency: str, mode: str = "halfUp") -> Decimal:
    """Round an amount to the currency's minor unit (the single rounding rule of the platform)."""
    exponent = MINOR_UNITS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUNDING[mode])

"""EU VAT identification numbers, checked by their checksum (``python-stdnum``: each member state's algorithm).

No network call: the checksum tells a mistyped number from a well-formed one; whether a well-formed number is
registered (VIES) is a question for a tax provider, asked outside any database transaction.
"""

from __future__ import annotations

from stdnum.eu import vat
from stdnum.exceptions import ValidationError


class InvalidVatNumber(ValueError):
    pass


def check_vat_number(number: object, where: str = "vatNumber") -> str:
    """The number in its compact form (``FR40303265045``); raises :class:`InvalidVatNumber` naming the number and
    what is wrong with it."""
    if not isinstance(number, str) or not number.strip():
        raise InvalidVatNumber(f"'{where}': a VAT number is a string such as FR40303265045")
    try:
        return str(vat.validate(number))
    except ValidationError as exc:
        why = str(exc).lower().rstrip(".")
        raise InvalidVatNumber(f"'{where}': '{number}' is not a valid EU VAT number ({why})") from exc


def is_vat_exemption(exemption: dict[str, object]) -> bool:
    """A TMF666 tax exemption whose ``certificateNumber`` is the customer's EU VAT number: issued by ``EU``, or
    given for the EU reverse charge (``reason`` ``reverseCharge``)."""
    return str(exemption.get("issuingJurisdiction") or "").upper() == "EU" or \
        str(exemption.get("reason") or "") == "reverseCharge"

"""EU VAT numbers checked by checksum on TMF666 billing accounts and their tax exemptions: a bad number is a 400
naming it, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from openbss.pricing.vat import InvalidVatNumber, check_vat_number
from tests.customer.helpers import billing_account_body, make_customer, make_individual

BA = "/tmf-api/accountManagement/v4/billingAccount"
EXEMPT = {"startDateTime": "2027-01-01T00:00:00Z"}


def test_checksums_of_member_states() -> None:
    assert check_vat_number("FR 40 303 265 045") == "FR40303265045"
    assert check_vat_number("DE136695976") == "DE136695976"
    assert check_vat_number("NL004495445B01") == "NL004495445B01"
    for bad in ("FR40303265046", "DE136695977", "XX123456", "FR"):
        with pytest.raises(InvalidVatNumber, match=bad):
            check_vat_number(bad)


@pytest.mark.parametrize(("change", "words"), [
    ({"vatNumber": "FR40303265046"}, "'vatNumber': 'FR40303265046' is not a valid EU VAT number"),
    ({"taxExemption": [{"issuingJurisdiction": "EU", "certificateNumber": "DE136695977", "validFor": EXEMPT}]},
     "'taxExemption[0].certificateNumber': 'DE136695977' is not a valid EU VAT number"),
    ({"taxExemption": [{"issuingJurisdiction": "FR", "reason": "reverseCharge", "validFor": EXEMPT}]},
     "'taxExemption[0].certificateNumber': a VAT number is a string"),
])
async def test_a_bad_vat_number_is_refused(client: Any, admin_headers: dict[str, str], change: dict[str, Any],
                                           words: str) -> None:
    party = await make_individual(client, admin_headers)
    customer = await make_customer(client, admin_headers, party)
    r = await client.post(BA, headers=admin_headers, json=billing_account_body(customer, **change))
    assert r.status_code == 400 and words in r.json()["message"], r.text
    listed = await client.get(BA, headers=admin_headers, params={"relatedParty.id": customer["id"]})
    assert listed.json() == []


async def test_a_good_vat_number_is_kept(client: Any, admin_headers: dict[str, str]) -> None:
    party = await make_individual(client, admin_headers)
    customer = await make_customer(client, admin_headers, party)
    r = await client.post(BA, headers=admin_headers, json=billing_account_body(
        customer, vatNumber="DE136695976", taxExemption=[
            {"issuingJurisdiction": "EU", "reason": "reverseCharge", "certificateNumber": "FR40303265045",
             "validFor": EXEMPT},
            {"issuingJurisdiction": "US-CA", "certificateNumber": "RESALE-1234", "validFor": EXEMPT}]))
    assert r.status_code == 201, r.text
    assert r.json()["vatNumber"] == "DE136695976"

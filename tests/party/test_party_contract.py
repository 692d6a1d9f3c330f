"""Contract tests: what the party API returns, and the events it writes, validate against the official TMF632
Party Management v4.0.0 JSON schemas (``shared/tmf/TMF632-Party-v4.0.0.swagger.json``).

Two levels: the spec's own schema (Draft 4, date-time formats checked), and a strict variant that also refuses
attributes the specification does not define.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator, FormatChecker
from sqlalchemy import select

from openbss.party.codecs import individual_codec, organization_codec
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.references import PARTY_NAME_COPIES, without
from tests.conftest import bearer

SPEC_FILE = "TMF632-Party-v4.0.0.swagger.json"
BASE = "/tmf-api/party/v4"
IND = f"{BASE}/individual"
ORG = f"{BASE}/organization"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def spec_path() -> Path:
    shared = Path(__file__).resolve().parents[3] / "shared" / "tmf" / SPEC_FILE
    if shared.exists():
        return shared
    import openbss.platform.tmf.spec as tmf_spec

    return tmf_spec.SPEC_DIR / SPEC_FILE


@cache
def spec() -> dict[str, Any]:
    return json.loads(spec_path().read_text())


FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _strict(definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions with ``additionalProperties: false`` on every object that lists its properties."""
    out = copy.deepcopy(definitions)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "allOf" not in node:
                node.setdefault("additionalProperties", False)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


@cache
def validator(definition: str, strict: bool = False) -> Draft4Validator:
    definitions = spec()["definitions"]
    assert definition in definitions, definition
    schema = {"definitions": _strict(definitions) if strict else definitions, "$ref": f"#/definitions/{definition}"}
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=FORMATS)


def assert_valid(instance: Any, definition: str) -> None:
    for strict in (False, True):
        errors = sorted(validator(definition, strict).iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, (f"{'strict ' if strict else ''}{definition} schema violations:\n"
                            + "\n".join(f"  at {list(e.absolute_path)}: {e.message}" for e in errors[:20]))


# --- rich payloads ----------------------------------------------------------------------------------------------
def time_period(start: str = "2020-01-01T00:00:00Z", end: str | None = "2030-12-31T23:59:59Z") -> dict[str, str]:
    return {"startDateTime": start, **({"endDateTime": end} if end else {})}


def contact_media() -> list[dict[str, Any]]:
    return [
        {"mediumType": "email", "preferred": True, "validFor": time_period(),
         "characteristic": {"contactType": "work", "emailAddress": "ada@example.com"}},
        {"mediumType": "postalAddress", "preferred": False,
         "characteristic": {"street1": "12 Analytical St", "street2": "Flat 3", "city": "London",
                            "postCode": "W1 1AA", "stateOrProvince": "Greater London", "country": "GB"}},
        {"mediumType": "phone", "characteristic": {"phoneNumber": "+44 20 7946 0000", "faxNumber": "+44 20 7946 0001"}},
        {"mediumType": "social", "characteristic": {"socialNetworkId": "@ada"}},
    ]


def common(kind: str) -> dict[str, Any]:
    return {
        "contactMedium": contact_media(),
        "partyCharacteristic": [
            {"name": "segment", "valueType": "string", "value": "premium"},
            {"name": "score", "valueType": "number", "value": 42.5},
            {"name": "flags", "valueType": "object", "value": {"vip": True, "tags": ["a", "b"]}},
        ],
        "relatedParty": [
            {"id": str(uuid.uuid4()), "href": f"https://example.com/party/{kind}", "name": "Related",
             "role": "accountManager", "@referredType": "Individual"},
        ],
        "externalReference": [
            {"externalReferenceType": "crm", "name": f"CRM-{kind}-001"},
        ],
        "creditRating": [
            {"creditAgencyName": "Experian", "creditAgencyType": "external", "ratingReference": "R-1",
             "ratingScore": 720, "validFor": time_period()},
        ],
        "taxExemptionCertificate": [
            {"id": "TEC-1", "validFor": time_period(end=None),
             "taxDefinition": [{"id": "VAT", "name": "Value added tax", "taxType": "VAT"}],
             "attachment": {"attachmentType": "certificate", "name": "tec.pdf", "mimeType": "application/pdf",
                            "url": "https://example.com/tec.pdf", "size": {"amount": 12.5, "units": "KB"}}},
        ],
    }


def individual_payload() -> dict[str, Any]:
    return {
        "givenName": "Ada", "familyName": "Lovelace", "middleName": "Augusta", "title": "Countess",
        "aristocraticTitle": "Countess of Lovelace", "gender": "female", "nationality": "GB",
        "countryOfBirth": "GB", "placeOfBirth": "London", "maritalStatus": "married",
        "preferredGivenName": "Ada", "legalName": "Augusta Ada King", "formattedName": "Ada Lovelace",
        "birthDate": "1815-12-10T00:00:00Z", "location": "London",
        **common("individual"),
        "individualIdentification": [
            {"identificationId": "P1234567", "identificationType": "passport", "issuingAuthority": "HMPO",
             "issuingDate": "2019-05-01T00:00:00Z", "validFor": time_period(),
             "attachment": {"name": "passport.png", "mimeType": "image/png", "url": "https://example.com/p.png"}},
        ],
        "skill": [
            {"skillCode": "MATH", "skillName": "Mathematics", "evaluatedLevel": "expert", "comment": "notes",
             "validFor": time_period()},
        ],
        "languageAbility": [
            {"languageCode": "en", "languageName": "English", "isFavouriteLanguage": True,
             "listeningProficiency": "native", "readingProficiency": "native", "speakingProficiency": "native",
             "writingProficiency": "native", "validFor": time_period()},
            {"languageCode": "fr", "languageName": "French", "isFavouriteLanguage": False},
        ],
        "otherName": [
            {"givenName": "Augusta", "familyName": "Byron", "fullName": "Augusta Ada Byron",
             "validFor": time_period("1815-12-10T00:00:00Z", "1835-07-08T00:00:00Z")},
        ],
        "disability": [{"disabilityCode": "none", "disabilityName": "None"}],
    }


def organization_payload() -> dict[str, Any]:
    return {
        "tradingName": "Analytical Engines", "name": "Analytical Engines Ltd", "nameType": "legal",
        "organizationType": "company", "isLegalEntity": True, "isHeadOffice": True,
        "existsDuring": time_period("1843-01-01T00:00:00Z", None),
        **common("organization"),
        "organizationIdentification": [
            {"identificationId": "GB-0001", "identificationType": "companyNumber",
             "issuingAuthority": "Companies House", "issuingDate": "1843-01-01T00:00:00Z", "validFor": time_period()},
        ],
        "otherName": [
            {"name": "AE", "nameType": "short", "tradingName": "AE", "validFor": time_period()},
        ],
        "organizationChildRelationship": [
            {"relationshipType": "subsidiary",
             "organization": {"id": str(uuid.uuid4()), "name": "AE Research", "@referredType": "Organization"}},
        ],
        "organizationParentRelationship": {
            "relationshipType": "parent",
            "organization": {"id": str(uuid.uuid4()), "name": "Babbage Holdings", "@referredType": "Organization"},
        },
    }


KINDS: dict[str, tuple[str, str, Callable[[], dict[str, Any]], dict[str, Any]]] = {
    "individual": (IND, "Individual", individual_payload,
                   {"middleName": None, "title": "Dr", "skill": [{"skillCode": "PROG", "skillName": "Programming"}]}),
    "organization": (ORG, "Organization", organization_payload,
                     {"nameType": None, "name": "Analytical Engines plc",
                      "existsDuring": {"endDateTime": "2099-01-01T00:00:00Z"}}),
}


def same_instant(a: str, b: str) -> bool:
    def parse(v: str) -> datetime:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))

    return parse(a) == parse(b)


def assert_contains(actual: Any, expected: Any, where: str = "") -> None:
    """Everything sent is returned (date-times may be rendered differently but are the same instant)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for k, v in expected.items():
            assert k in actual, f"{where}.{k} missing"
            assert_contains(actual[k], v, f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_contains(a, e, f"{where}[{i}]")
    elif isinstance(expected, str) and RFC3339.match(expected):
        assert isinstance(actual, str) and same_instant(actual, expected), f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# --- responses --------------------------------------------------------------------------------------------------
def test_the_spec_file_is_the_official_one() -> None:
    doc = spec()
    assert "Party" in doc["info"]["title"] and doc["info"]["version"] == "4.0.0"
    assert doc["basePath"].rstrip("/") == BASE
    for definition in ("Individual", "Organization", "IndividualCreateEvent", "OrganizationDeleteEvent"):
        assert definition in doc["definitions"]
    # the validators really validate: a wrong type and an unknown attribute are caught
    assert list(validator("Individual").iter_errors({"id": "1", "givenName": 1}))
    assert list(validator("Individual").iter_errors({"id": "1", "birthDate": "not a date"}))
    assert not list(validator("Individual").iter_errors({"id": "1", "shoeSize": 44}))
    assert list(validator("Individual", strict=True).iter_errors({"id": "1", "shoeSize": 44}))
    assert list(validator("Organization").iter_errors({"name": "no id"}))


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_responses_validate_against_tmf632(client: httpx.AsyncClient, tenant: str, kind: str) -> None:
    path, definition, make_payload, changes = KINDS[kind]
    h = bearer(tenant)
    payload = make_payload()

    r = await client.post(path, json=payload, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert_valid(created, definition)
    assert_contains(created, payload)
    assert created["@type"] == definition

    r = await client.get(f"{path}/{created['id']}", headers=h)
    assert r.status_code == 200, r.text
    assert_valid(r.json(), definition)
    assert r.json() == created

    # a minimal one too: what the server fills in alone must be valid
    minimal = {"givenName": "Min", "familyName": "Imal"} if kind == "individual" else {"tradingName": "Min"}
    r = await client.post(path, json=minimal, headers=h)
    assert r.status_code == 201, r.text
    assert_valid(r.json(), definition)

    r = await client.get(path, headers=h)
    assert r.status_code == 200, r.text
    items = r.json()
    assert len(items) == 2
    for item in items:
        assert_valid(item, definition)
    r = await client.get(path, params={"fields": "status,contactMedium"}, headers=h)
    for item in r.json():
        assert_valid(item, definition)

    r = await client.patch(f"{path}/{created['id']}", json=changes, headers=h)
    assert r.status_code == 200, r.text
    patched = r.json()
    assert_valid(patched, definition)
    for key, value in changes.items():
        if value is None:
            assert key not in patched
        elif isinstance(value, dict):
            assert_contains(patched[key], value, key)
        else:
            assert patched[key] == value

    r = await client.patch(f"{path}/{created['id']}", json={"status": "validated"}, headers=h)
    assert r.status_code == 200, r.text
    assert_valid(r.json(), definition)
    assert r.json()["status"] == "validated"


# --- events -------------------------------------------------------------------------------------------------------
async def outbox(rt: Any, tenant: str, resource_id: str) -> list[OutboxEvent]:
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(
            select(OutboxEvent).where(OutboxEvent.resource_id == resource_id).order_by(OutboxEvent.id)
        )).scalars().all()
        return list(rows)


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_events_are_tmf_envelopes_of_the_resource(client: httpx.AsyncClient, tenant: str, rt: Any,
                                                        kind: str) -> None:
    path, definition, make_payload, changes = KINDS[kind]
    key = definition[0].lower() + definition[1:]
    h = bearer(tenant)
    started = datetime.now(UTC) - timedelta(seconds=5)

    created = (await client.post(path, json=make_payload(), headers=h)).json()
    rid = created["id"]
    r1 = await client.patch(f"{path}/{rid}", json=changes, headers=h)
    r2 = await client.patch(f"{path}/{rid}", json={"status": "validated"}, headers=h)
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    final = r2.json()
    # a PATCH that changes nothing writes no event
    r3 = await client.patch(f"{path}/{rid}", json={"status": "validated"}, headers=h)
    assert r3.status_code == 200, r3.text
    assert (await client.delete(f"{path}/{rid}", headers=h)).status_code == 204

    rows = await outbox(rt, tenant, rid)
    assert [row.event_type for row in rows] == [
        f"{definition}CreateEvent",
        f"{definition}AttributeValueChangeEvent",
        f"{definition}AttributeValueChangeEvent",
        f"{definition}StateChangeEvent",
        f"{definition}DeleteEvent",
    ]
    expected_resources = [created, r1.json(), final, final, final]
    event_ids = set()
    for row, resource in zip(rows, expected_resources, strict=True):
        env = row.envelope
        assert {"eventId", "eventTime", "eventType", "event"} <= env.keys(), env.keys()
        assert env["eventId"] == str(row.event_id)
        uuid.UUID(env["eventId"])
        event_ids.add(env["eventId"])
        assert env["eventType"] == row.event_type
        event_time = datetime.fromisoformat(env["eventTime"].replace("Z", "+00:00"))
        assert started <= event_time <= datetime.now(UTC) + timedelta(seconds=5)
        assert list(env["event"]) == [key]
        # the resource as the API rendered it, without its personal values (read by the href)
        codec = individual_codec if definition == "Individual" else organization_codec
        assert env["event"][key] == without(resource, (*codec.personal, *PARTY_NAME_COPIES)), row.event_type
        assert env["event"][key]["href"] == resource["href"]
        assert row.resource_type == definition and row.api == "party"
        assert_valid(env, row.event_type)
        assert_valid(env["event"][key], definition)
    assert len(event_ids) == len(rows)
    times = [row.envelope["eventTime"] for row in rows]
    assert times == sorted(times)


async def test_refused_changes_write_no_event(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    h = bearer(tenant)
    created = (await client.post(IND, json={"givenName": "A", "familyName": "B"}, headers=h)).json()
    assert (await client.patch(f"{IND}/{created['id']}", json={"status": "validated"}, headers=h)).status_code == 200
    before = len(await outbox(rt, tenant, created["id"]))
    assert (await client.patch(f"{IND}/{created['id']}", json={"status": "initialized"},
                               headers=h)).status_code == 409
    assert (await client.patch(f"{IND}/{created['id']}", json={"familyName": None}, headers=h)).status_code == 400
    assert len(await outbox(rt, tenant, created["id"])) == before == 3

"""The TMF630 conventions of the TMF API kit, exercised through the party API (TMF632), its first user.

POST/GET/list/PATCH/DELETE, paging headers, filters (equality, OR, operators, nested paths, booleans), ``fields``,
``sort``, JSON merge patch, media types, errors in the TMF format and state transitions.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import bearer

BASE = "/tmf-api/party/v4"
IND = f"{BASE}/individual"
ORG = f"{BASE}/organization"
ERROR_KEYS = {"code", "reason", "message", "status", "@type"}


# --- helpers --------------------------------------------------------------------------------------------------
def assert_tmf_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert ERROR_KEYS <= body.keys(), body
    assert body["status"] == str(status), body
    assert body["@type"] == "Error", body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["reason"], str) and body["reason"], body
    if code is not None:
        assert body["code"] == code, body
    return body


async def create(client: httpx.AsyncClient, h: dict[str, str], path: str = IND, **attrs: Any) -> dict[str, Any]:
    if path == IND:
        attrs.setdefault("givenName", "Ada")
        attrs.setdefault("familyName", "Lovelace")
    else:
        attrs.setdefault("tradingName", "Acme")
    r = await client.post(path, json=attrs, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


async def list_ids(client: httpx.AsyncClient, h: dict[str, str], params: dict[str, str] | str,
                   path: str = IND) -> list[str]:
    r = await client.get(path, params=params, headers=h)
    assert r.status_code == 200, r.text
    items = r.json()
    assert r.headers["x-result-count"] == str(len(items))
    return [i["id"] for i in items]


# --- create and read --------------------------------------------------------------------------------------------
async def test_post_returns_201_with_full_resource_and_location(client: Any, tenant: str, settings: Any) -> None:
    h = bearer(tenant, "admin")
    payload = {
        "givenName": "Grace", "familyName": "Hopper", "middleName": "Brewster", "gender": "female",
        "birthDate": "1906-12-09T00:00:00Z", "nationality": "US",
        "contactMedium": [{"mediumType": "email", "preferred": True,
                           "characteristic": {"emailAddress": "grace@example.com"}}],
    }
    r = await client.post(IND, json=payload, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"]
    expected_href = f"{settings.public_url.rstrip('/')}{IND}/{body['id']}"
    assert body["href"] == expected_href
    assert r.headers["location"] == body["href"]
    assert body["@type"] == "Individual"
    assert body["status"] == "initialized"  # filled by the server
    for key in ("givenName", "familyName", "middleName", "gender", "nationality", "contactMedium"):
        assert body[key] == payload[key], key
    assert body["birthDate"].startswith("1906-12-09T00:00:00")

    r2 = await client.get(f"{IND}/{body['id']}", headers=h)
    assert r2.status_code == 200, r2.text
    assert r2.json() == body


async def test_ids_are_unique_and_resources_distinct(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    a = await create(client, h, givenName="A")
    b = await create(client, h, givenName="B")
    assert a["id"] != b["id"] and a["href"] != b["href"]
    assert (await client.get(f"{IND}/{a['id']}", headers=h)).json()["givenName"] == "A"
    assert (await client.get(f"{IND}/{b['id']}", headers=h)).json()["givenName"] == "B"


async def test_organization_post_and_get(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    org = await create(client, h, ORG, tradingName="Initech", isLegalEntity=True)
    assert org["@type"] == "Organization" and org["status"] == "initialized"
    assert org["href"].endswith(f"{ORG}/{org['id']}")
    r = await client.get(f"{ORG}/{org['id']}", headers=h)
    assert r.status_code == 200 and r.json() == org


async def test_unknown_id_is_404_in_tmf_format(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    missing = str(uuid.uuid4())
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"givenName": "x"}} if method == "PATCH" else {}
        r = await client.request(method, f"{IND}/{missing}", headers=h, **kwargs)
        body = assert_tmf_error(r, 404, "NOT_FOUND")
        assert missing in body["message"]


async def test_resources_of_another_tenant_are_invisible(client: Any, tenant: str, other_tenant: str) -> None:
    mine = await create(client, bearer(tenant), familyName="Mine")
    other = bearer(other_tenant)
    assert_tmf_error(await client.get(f"{IND}/{mine['id']}", headers=other), 404)
    r = await client.get(IND, headers=other)
    assert r.status_code == 200 and r.json() == [] and r.headers["x-total-count"] == "0"


# --- lists ----------------------------------------------------------------------------------------------------
async def test_list_paging_with_total_and_result_counts(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    created = [await create(client, h, familyName=f"Page{i}", nationality=f"N{i}") for i in range(5)]

    r = await client.get(IND, params={"limit": "2"}, headers=h)
    assert r.status_code == 200, r.text  # 200 even when paged (not 206)
    assert r.headers["x-total-count"] == "5"
    assert r.headers["x-result-count"] == "2"
    assert len(r.json()) == 2

    r = await client.get(IND, params={"offset": "4", "limit": "2"}, headers=h)
    assert r.status_code == 200
    assert (r.headers["x-total-count"], r.headers["x-result-count"]) == ("5", "1")
    assert len(r.json()) == 1

    r = await client.get(IND, params={"offset": "10"}, headers=h)
    assert r.status_code == 200 and r.json() == []
    assert (r.headers["x-total-count"], r.headers["x-result-count"]) == ("5", "0")

    # pages of a sorted list are disjoint and together give every resource, in order
    pages: list[str] = []
    for offset in (0, 2, 4):
        pages += await list_ids(client, h, {"sort": "nationality", "offset": str(offset), "limit": "2"})
    assert pages == [c["id"] for c in created]

    r = await client.get(IND, headers=h)
    assert (r.headers["x-total-count"], r.headers["x-result-count"]) == ("5", "5")
    assert {i["id"] for i in r.json()} == {c["id"] for c in created}


async def test_total_count_counts_filtered_matches_only(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    for i in range(3):
        await create(client, h, givenName="Match", familyName=f"M{i}")
    await create(client, h, givenName="Other")
    r = await client.get(IND, params={"givenName": "Match", "limit": "1"}, headers=h)
    assert r.status_code == 200
    assert (r.headers["x-total-count"], r.headers["x-result-count"]) == ("3", "1")
    assert r.json()[0]["givenName"] == "Match"


async def test_filter_attribute_equality_and_and(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ann_smith = await create(client, h, givenName="Ann", familyName="Smith")
    ann_jones = await create(client, h, givenName="Ann", familyName="Jones")
    await create(client, h, givenName="Bob", familyName="Smith")

    assert set(await list_ids(client, h, {"givenName": "Ann"})) == {ann_smith["id"], ann_jones["id"]}
    assert await list_ids(client, h, {"givenName": "Ann", "familyName": "Smith"}) == [ann_smith["id"]]
    assert await list_ids(client, h, {"givenName": "Nobody"}) == []
    assert await list_ids(client, h, {"id": ann_jones["id"]}) == [ann_jones["id"]]


async def test_filter_comma_is_or(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    init = await create(client, h, ORG, tradingName="Init")
    valid = await create(client, h, ORG, tradingName="Valid")
    closed = await create(client, h, ORG, tradingName="Closed")
    assert (await client.patch(f"{ORG}/{valid['id']}", json={"status": "validated"}, headers=h)).status_code == 200
    assert (await client.patch(f"{ORG}/{closed['id']}", json={"status": "closed"}, headers=h)).status_code == 200

    ids = await list_ids(client, h, "status=initialized,validated", ORG)
    assert set(ids) == {init["id"], valid["id"]}
    assert await list_ids(client, h, "status=closed", ORG) == [closed["id"]]
    assert set(await list_ids(client, h, "tradingName=Init,Closed", ORG)) == {init["id"], closed["id"]}

    # the same on individuals
    a = await create(client, h)
    b = await create(client, h)
    assert (await client.patch(f"{IND}/{b['id']}", json={"status": "validated"}, headers=h)).status_code == 200
    assert await list_ids(client, h, "status=validated") == [b["id"]]
    assert set(await list_ids(client, h, "status=initialized,validated")) == {a["id"], b["id"]}


async def test_filter_operators_on_date_time(client: Any, tenant: str) -> None:
    """Date-times compare as instants. (``birthDate`` is personal data, encrypted at rest: see the end.)"""
    h = bearer(tenant)
    o70 = await create(client, h, ORG, tradingName="O70", existsDuring={"startDateTime": "1970-01-01T00:00:00Z"})
    o80 = await create(client, h, ORG, tradingName="O80", existsDuring={"startDateTime": "1980-01-01T00:00:00Z"})
    o90 = await create(client, h, ORG, tradingName="O90", existsDuring={"startDateTime": "1990-01-01T00:00:00Z"})
    await create(client, h, ORG, tradingName="NoStart")
    t80 = "1980-01-01T00:00:00Z"
    attr = "existsDuring.startDateTime"

    async def ids(params: dict[str, str]) -> set[str]:
        return set(await list_ids(client, h, params, ORG))

    assert await ids({f"{attr}.gt": t80}) == {o90["id"]}
    assert await ids({f"{attr}.gte": t80}) == {o80["id"], o90["id"]}
    assert await ids({f"{attr}.lt": t80}) == {o70["id"]}
    assert await ids({f"{attr}.lte": t80}) == {o70["id"], o80["id"]}
    assert await ids({f"{attr}.gt": "1975-06-01T00:00:00Z", f"{attr}.lt": "1985-06-01T00:00:00Z"}) == {o80["id"]}
    assert await ids({attr: t80}) == {o80["id"]}
    # values are compared as date-times, not as the strings given: the same instant in other offsets
    assert await ids({f"{attr}.gte": "1980-01-01T01:00:00+01:00"}) == {o80["id"], o90["id"]}
    assert await ids({f"{attr}.lt": "1979-12-31T23:30:00-00:45"}) == {o70["id"], o80["id"]}
    assert await ids({attr: "1979-12-31T19:00:00-05:00"}) == {o80["id"]}
    # and whatever precision was sent on creation
    o85 = await create(client, h, ORG, tradingName="O85",
                       existsDuring={"startDateTime": "1985-01-01T02:00:00.250000+02:00"})
    assert await ids({attr: "1985-01-01T00:00:00.25Z"}) == {o85["id"]}

    # birthDate: personal data, encrypted at rest, so not comparable; refused naming it (not silently empty)
    r = await client.get(IND, params={"birthDate.gt": t80}, headers=h)
    body = assert_tmf_error(r, 400, "INVALID_FILTER")
    assert "birthDate" in body["message"]


async def test_filter_operators_on_nested_attributes(client: Any, tenant: str) -> None:
    h = bearer(tenant)

    def rating(score: int) -> list[dict[str, Any]]:
        return [{"creditAgencyName": "Agency", "ratingScore": score}]

    low = await create(client, h, familyName="Low", creditRating=rating(90))
    mid = await create(client, h, familyName="Mid", creditRating=rating(600))
    high = await create(client, h, familyName="High", creditRating=rating(1000))
    await create(client, h, familyName="Unrated")

    async def ids(params: dict[str, str]) -> set[str]:
        return set(await list_ids(client, h, params))

    # numbers compare as numbers (as strings "90" > "600" and "1000" < "600")
    assert await ids({"creditRating.ratingScore.gt": "100"}) == {mid["id"], high["id"]}
    assert await ids({"creditRating.ratingScore.gte": "600"}) == {mid["id"], high["id"]}
    assert await ids({"creditRating.ratingScore.lt": "600"}) == {low["id"]}
    assert await ids({"creditRating.ratingScore.lte": "600"}) == {low["id"], mid["id"]}
    assert await ids({"creditRating.ratingScore": "1000"}) == {high["id"]}

    # a nested date-time
    def medium(start: str) -> list[dict[str, Any]]:
        return [{"mediumType": "phone", "characteristic": {"phoneNumber": "+15555550123"},
                 "validFor": {"startDateTime": start}}]

    old = await create(client, h, familyName="Old", contactMedium=medium("2000-01-01T00:00:00Z"))
    new = await create(client, h, familyName="New", contactMedium=medium("2020-01-01T00:00:00Z"))
    assert await ids({"contactMedium.validFor.startDateTime.gt": "2010-01-01T00:00:00Z"}) == {new["id"]}
    assert await ids({"contactMedium.validFor.startDateTime.lte": "2000-01-01T00:00:00Z"}) == {old["id"]}
    assert await ids({"contactMedium.validFor.startDateTime.gte": "2000-01-01T00:00:00Z",
                      "contactMedium.validFor.startDateTime.lt": "2020-01-01T00:00:00Z"}) == {old["id"]}
    assert await ids({"creditRating.ratingScore.gte": "600", "creditRating.ratingScore.lt": "1000"}) == {mid["id"]}


async def test_filter_dotted_nested_attributes(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    org_id = str(uuid.uuid4())
    employee = await create(client, h, familyName="Employee", relatedParty=[
        {"id": org_id, "role": "employer", "@referredType": "Organization"}])
    await create(client, h, familyName="Freelance", relatedParty=[
        {"id": str(uuid.uuid4()), "role": "employer", "@referredType": "Organization"}])
    mailed = await create(client, h, familyName="Mailed", contactMedium=[
        {"mediumType": "phone", "characteristic": {"phoneNumber": "+33612345678"}},
        {"mediumType": "email", "characteristic": {"emailAddress": "mailed@example.com"}}])
    await create(client, h, familyName="OtherMail", contactMedium=[
        {"mediumType": "email", "characteristic": {"emailAddress": "other@example.com"}}])

    assert await list_ids(client, h, {"relatedParty.id": org_id}) == [employee["id"]]
    assert await list_ids(client, h, {"contactMedium.characteristic.emailAddress": "mailed@example.com"}) == [
        mailed["id"]]
    assert await list_ids(client, h, {"contactMedium.characteristic.emailAddress": "nobody@example.com"}) == []
    # a nested attribute combined (AND) with a top-level one
    assert await list_ids(client, h, {"relatedParty.id": org_id, "familyName": "Mailed"}) == []


async def test_filter_boolean(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    pref = await create(client, h, familyName="Pref", contactMedium=[
        {"mediumType": "email", "preferred": True, "characteristic": {"emailAddress": "p@example.com"}}])
    notpref = await create(client, h, familyName="NotPref", contactMedium=[
        {"mediumType": "email", "preferred": False, "characteristic": {"emailAddress": "n@example.com"}}])
    await create(client, h, familyName="NoMedium")
    assert await list_ids(client, h, {"contactMedium.preferred": "true"}) == [pref["id"]]
    assert await list_ids(client, h, {"contactMedium.preferred": "false"}) == [notpref["id"]]

    legal = await create(client, h, ORG, tradingName="Legal", isLegalEntity=True)
    await create(client, h, ORG, tradingName="NotLegal", isLegalEntity=False)
    assert await list_ids(client, h, {"isLegalEntity": "true"}, ORG) == [legal["id"]]


# --- fields and sort ------------------------------------------------------------------------------------------
async def test_fields_keeps_only_those_plus_id_href_type(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h, givenName="Only", familyName="Some", gender="x",
                       birthDate="1999-01-01T00:00:00Z")
    r = await client.get(IND, params={"fields": "givenName,birthDate"}, headers=h)
    assert r.status_code == 200, r.text
    [item] = r.json()
    assert set(item) == {"id", "href", "@type", "givenName", "birthDate"}
    assert item["id"] == ind["id"] and item["href"] == ind["href"] and item["@type"] == "Individual"
    assert item["givenName"] == "Only"

    r = await client.get(f"{IND}/{ind['id']}", params={"fields": "familyName"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": ind["id"], "href": ind["href"], "@type": "Individual", "familyName": "Some"}


async def test_sort_ascending_and_descending(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    names = ["Mills", "Adams", "Zorn", "Baker", "Cole"]
    for n in names:
        await create(client, h, ORG, tradingName=n)
        await create(client, h, familyName=n, nationality=n.upper())

    async def values(path: str, attr: str, sort: str) -> list[str]:
        r = await client.get(path, params={"sort": sort}, headers=h)
        assert r.status_code == 200, r.text
        return [i[attr] for i in r.json()]

    assert await values(ORG, "tradingName", "tradingName") == sorted(names)
    assert await values(ORG, "tradingName", "-tradingName") == sorted(names, reverse=True)
    assert await values(IND, "nationality", "nationality") == sorted(n.upper() for n in names)
    assert await values(IND, "nationality", "-nationality") == sorted((n.upper() for n in names), reverse=True)
    # sorting applies before paging
    r = await client.get(ORG, params={"sort": "-tradingName", "limit": "2"}, headers=h)
    assert [i["tradingName"] for i in r.json()] == ["Zorn", "Mills"]
    r = await client.get(ORG, params={"sort": "tradingName", "offset": "1", "limit": "2"}, headers=h)
    assert [i["tradingName"] for i in r.json()] == ["Baker", "Cole"]

    # an individual's familyName is personal data, encrypted at rest: sorting by it is refused, naming it
    r = await client.get(IND, params={"sort": "familyName"}, headers=h)
    assert "familyName" in assert_tmf_error(r, 400, "INVALID_SORT")["message"]


# --- PATCH ----------------------------------------------------------------------------------------------------
async def test_patch_application_json_returns_full_updated_resource(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h, givenName="Old", familyName="Name", gender="female")
    r = await client.patch(f"{IND}/{ind['id']}", json={"givenName": "New", "nationality": "FR"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["givenName"] == "New" and body["nationality"] == "FR"
    # the full resource, not only the changes
    assert body["familyName"] == "Name" and body["gender"] == "female"
    assert body["id"] == ind["id"] and body["href"] == ind["href"] and body["@type"] == "Individual"
    assert (await client.get(f"{IND}/{ind['id']}", headers=h)).json() == body


async def test_patch_merge_patch_json_and_null_removes(client: Any, tenant: str) -> None:
    h = {**bearer(tenant), "content-type": "application/merge-patch+json"}
    ind = await create(client, bearer(tenant), givenName="Mia", familyName="Merge", middleName="Middle", gender="x")

    r = await client.patch(f"{IND}/{ind['id']}", content=b'{"middleName": null, "title": "Dr"}', headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "middleName" not in body
    assert body["title"] == "Dr"
    assert body["givenName"] == "Mia" and body["gender"] == "x"
    stored = (await client.get(f"{IND}/{ind['id']}", headers=h)).json()
    assert stored == body and "middleName" not in stored

    # RFC 7386 merges nested objects: a null inside removes only that member
    org = await create(client, bearer(tenant), ORG, tradingName="Nested", existsDuring={
        "startDateTime": "2001-01-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"})
    r = await client.patch(f"{ORG}/{org['id']}", content=b'{"existsDuring": {"endDateTime": null}}', headers=h)
    assert r.status_code == 200, r.text
    during = r.json()["existsDuring"]
    assert "endDateTime" not in during and during["startDateTime"].startswith("2001-01-01T00:00:00")


async def test_patch_removing_mandatory_attribute_is_400(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h, givenName="Keep", familyName="Mandatory")
    r = await client.patch(f"{IND}/{ind['id']}", json={"familyName": None}, headers=h)
    body = assert_tmf_error(r, 400)
    assert "familyName" in body["message"]
    assert (await client.get(f"{IND}/{ind['id']}", headers=h)).json() == ind

    org = await create(client, h, ORG, tradingName="Mandatory")
    r = await client.patch(f"{ORG}/{org['id']}", content=b'{"tradingName": null}',
                           headers={**h, "content-type": "application/merge-patch+json"})
    assert "tradingName" in assert_tmf_error(r, 400)["message"]


async def test_patch_with_text_plain_is_415(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h, givenName="Plain")
    r = await client.patch(f"{IND}/{ind['id']}", content=b'{"givenName": "Changed"}',
                           headers={**h, "content-type": "text/plain"})
    assert_tmf_error(r, 415)
    assert (await client.get(f"{IND}/{ind['id']}", headers=h)).json()["givenName"] == "Plain"


async def test_post_with_text_plain_is_415(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    r = await client.post(IND, content=b'{"givenName": "A", "familyName": "B"}',
                          headers={**h, "content-type": "text/plain"})
    assert_tmf_error(r, 415)
    assert (await client.get(IND, headers=h)).headers["x-total-count"] == "0"


# --- DELETE and methods -----------------------------------------------------------------------------------------
async def test_delete_then_get_is_404(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h)
    keep = await create(client, h)
    r = await client.delete(f"{IND}/{ind['id']}", headers=h)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_tmf_error(await client.get(f"{IND}/{ind['id']}", headers=h), 404, "NOT_FOUND")
    assert_tmf_error(await client.delete(f"{IND}/{ind['id']}", headers=h), 404)
    assert await list_ids(client, h, {}) == [keep["id"]]


async def test_wrong_method_is_405(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h)
    body = assert_tmf_error(await client.put(f"{IND}/{ind['id']}", json={"givenName": "A", "familyName": "B"},
                                             headers=h), 405, "METHOD_NOT_ALLOWED")
    assert "PUT" in body["message"]
    assert_tmf_error(await client.post(f"{IND}/{ind['id']}", json={}, headers=h), 405)
    assert_tmf_error(await client.delete(IND, headers=h), 405)
    assert_tmf_error(await client.put(f"{ORG}/{uuid.uuid4()}", json={}, headers=h), 405)
    assert (await client.get(f"{IND}/{ind['id']}", headers=h)).json() == ind


# --- state transitions ------------------------------------------------------------------------------------------
async def test_state_transitions(client: Any, tenant: str) -> None:
    h = bearer(tenant)
    ind = await create(client, h)
    assert ind["status"] == "initialized"
    r = await client.patch(f"{IND}/{ind['id']}", json={"status": "validated"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "validated"

    r = await client.patch(f"{IND}/{ind['id']}", json={"status": "initialized"}, headers=h)
    body = assert_tmf_error(r, 409, "INVALID_STATE_TRANSITION")
    assert "validated" in body["message"] and "initialized" in body["message"]
    assert (await client.get(f"{IND}/{ind['id']}", headers=h)).json()["status"] == "validated"

    # a PATCH that leaves the state alone is not a transition
    r = await client.patch(f"{IND}/{ind['id']}", json={"status": "validated", "title": "Ms"}, headers=h)
    assert r.status_code == 200, r.text

    org = await create(client, h, ORG, tradingName="Closing")
    assert (await client.patch(f"{ORG}/{org['id']}", json={"status": "closed"}, headers=h)).status_code == 200
    r = await client.patch(f"{ORG}/{org['id']}", json={"status": "validated"}, headers=h)
    assert_tmf_error(r, 409, "INVALID_STATE_TRANSITION")


async def test_every_state_of_the_spec_is_reachable(client: Any, tenant: str) -> None:
    """TMF632 v4.0.0's IndividualStateType is [initialized, validated, deceaded] (sic): the terminal state a
    client can send must be one the transition rules accept."""
    h = bearer(tenant)
    ind = await create(client, h)
    r = await client.patch(f"{IND}/{ind['id']}", json={"status": "validated"}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{IND}/{ind['id']}", json={"status": "deceaded"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deceaded"
    r = await client.patch(f"{IND}/{ind['id']}", json={"status": "validated"}, headers=h)
    assert_tmf_error(r, 409, "INVALID_STATE_TRANSITION")

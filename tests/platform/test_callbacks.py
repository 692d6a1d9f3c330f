"""Hub callbacks cannot reach inside: non-public addresses are refused at registration (400 naming the rule) and at
delivery (the host resolved again, the connection made to the checked address), unless the operator allows the
network (``OPENBSS_HUB_CALLBACK_ALLOW``). The suite's own subscribers listen on loopback: the test settings allow
127.0.0.0/8 and ::1 (tests/conftest.py); these tests take that away."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from openbss.platform import callbacks
from openbss.platform.tmf.hub import HubDelivery, HubSubscription, attempt_delivery
from tests.conftest import bearer
from tests.platform.callback_server import callback_server

HUB = "/tmf-api/party/v4/hub"
INDIVIDUALS = "/tmf-api/party/v4/individual"


@pytest.fixture
def no_allow_list(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"hub_callback_allow": ""}))


@pytest.fixture
async def unsubscribe_all(rt: Any, tenant: str) -> Any:
    yield
    async with rt.db.transaction(tenant) as session:
        await session.execute(delete(HubSubscription))


INSIDE = [
    ("http://127.0.0.1:8080/cb", "loopback"),
    ("http://127.1.2.3/cb", "loopback"),
    ("http://localhost:9/cb", "loopback"),
    ("http://10.0.0.5/cb", "private"),
    ("http://172.16.4.4/cb", "private"),
    ("http://192.168.1.1/cb", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]:8080/cb", "loopback"),
    ("http://[fe80::1]/cb", "link-local"),
    ("http://[fd00::1]/cb", "private"),
    ("http://0.0.0.0:8080/cb", "unspecified"),
    ("http://[::]/cb", "unspecified"),
    ("http://[::ffff:127.0.0.1]/cb", "loopback"),
    ("http://100.64.0.1/cb", "shared"),
]


@pytest.mark.parametrize(("callback", "kind"), INSIDE, ids=[c for c, _ in INSIDE])
async def test_inside_callbacks_are_refused(client: Any, rt: Any, tenant: str, no_allow_list: None, callback: str,
                                            kind: str) -> None:
    r = await client.post(HUB, json={"callback": callback}, headers=bearer(tenant, "admin"))
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["code"] == "CALLBACK_NOT_ALLOWED"
    assert kind in err["message"] and "OPENBSS_HUB_CALLBACK_ALLOW" in err["message"], err
    async with rt.db.transaction(tenant) as session:
        assert await session.scalar(select(func.count()).select_from(HubSubscription)) == 0


async def test_public_callback_is_accepted(client: Any, tenant: str, no_allow_list: None,
                                           unsubscribe_all: None) -> None:
    r = await client.post(HUB, json={"callback": "http://93.184.216.34/cb"}, headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text


async def test_allow_list_admits_the_operators_networks(client: Any, rt: Any, tenant: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        unsubscribe_all: None) -> None:
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"hub_callback_allow": "10.20.0.0/16"}))
    h = bearer(tenant, "admin")
    assert (await client.post(HUB, json={"callback": "http://10.20.3.4/cb"}, headers=h)).status_code == 201
    r = await client.post(HUB, json={"callback": "http://10.21.3.4/cb"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "CALLBACK_NOT_ALLOWED", r.text


def test_the_setting_is_checked() -> None:
    from pydantic import ValidationError

    from openbss.settings import Settings

    with pytest.raises(ValidationError, match="not a network"):
        Settings(hub_callback_allow="10.0.0.0/8,intranet")
    assert callbacks.parse_networks(" 10.0.0.0/8, ::1 ") == (ipaddress.ip_network("10.0.0.0/8"),
                                                             ipaddress.ip_network("::1/128"))


async def _one_delivery(client: Any, rt: Any, tenant: str) -> int:
    r = await client.post(INDIVIDUALS, json={"givenName": "A", "familyName": "B"}, headers=bearer(tenant, "admin"))
    assert r.status_code == 201
    from tests.conftest import deliver_all

    await deliver_all(rt)
    async with rt.db.transaction(tenant) as session:
        ids = (await session.execute(select(HubDelivery.id))).scalars().all()
    assert len(ids) == 1
    return int(ids[0])


async def test_rebinding_is_refused_at_delivery(client: Any, rt: Any, tenant: str, monkeypatch: pytest.MonkeyPatch,
                                                unsubscribe_all: None, no_allow_list: None) -> None:
    """The name resolved to a public address when registered, to loopback at delivery: refused, not retried, and
    nothing is sent."""
    answers = iter([[ipaddress.ip_address("93.184.216.34")]])

    async def rebinding(host: str, port: int) -> list[Any]:
        assert host == "hooks.example.com"
        return next(answers, [ipaddress.ip_address("127.0.0.1")])

    monkeypatch.setattr(callbacks, "resolve", rebinding)
    with callback_server() as server:
        port = server.base_url.split(":")[2].split("/")[0]
        r = await client.post(HUB, json={"callback": f"http://hooks.example.com:{port}/subscriber"},
                              headers=bearer(tenant, "admin"))
        assert r.status_code == 201, r.text
        delivery_id = await _one_delivery(client, rt, tenant)
        s = rt.settings
        final = await attempt_delivery(rt.db, delivery_id, hub_secret=s.hub_secret, http_timeout=2, max_attempts=5)
        assert final == "failed"
        assert server.received() == []
    async with rt.db.transaction(tenant) as session:
        row = await session.get(HubDelivery, delivery_id)
        assert row is not None and row.attempts == 1
        assert row.last_error and row.last_error.startswith("refused:") and "loopback" in row.last_error


async def test_delivery_connects_to_the_checked_address(client: Any, rt: Any, tenant: str,
                                                        unsubscribe_all: None) -> None:
    """A callback by name (``localhost``, allowed by the test settings' loopback network) is called at the address
    that was checked, with the name in the ``Host`` header."""
    with callback_server() as server:
        port = server.base_url.split(":")[2].split("/")[0]
        r = await client.post(HUB, json={"callback": f"http://localhost:{port}/subscriber"},
                              headers=bearer(tenant, "admin"))
        assert r.status_code == 201, r.text
        delivery_id = await _one_delivery(client, rt, tenant)
        s = rt.settings
        final = await attempt_delivery(rt.db, delivery_id, hub_secret=s.hub_secret, http_timeout=2, max_attempts=5,
                                       allow=callbacks.parse_networks(s.hub_callback_allow))
        assert final == "delivered"
        [got] = server.received()
        assert got.headers["host"] == f"localhost:{port}"
        assert got.path == "/subscriber/listener/individualCreateEvent"


def test_pinned_https_keeps_the_server_name() -> None:
    dest = callbacks.Destination("https://hooks.example.com:8443/a?b=1", "hooks.example.com",
                                 ipaddress.ip_address("2001:db8::5"))
    url, headers, extensions = dest.pinned()
    assert url == "https://[2001:db8::5]:8443/a?b=1"
    assert headers == {"Host": "hooks.example.com:8443"} and extensions == {"sni_hostname": "hooks.example.com"}


def test_every_api_has_its_hub_under_its_base_path(app: Any) -> None:
    """Each TMF API's hub is served under the API's own base path, as docs/api.md documents it."""
    from pathlib import Path

    paths = set(app.openapi()["paths"])
    bases = {"/".join(p.split("/")[:4]) for p in paths if p.startswith("/tmf-api/") and p.split("/")[3] == "v4"}
    assert len(bases) >= 10, bases
    missing = sorted(base for base in bases if f"{base}/hub/{{id}}" not in paths)
    assert not missing, missing
    assert "/hub" not in paths
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    assert "POST /tmf-api/{apiName}/v4/hub" in doc

"""The agent console in a real browser: Debian's Chromium driven by Playwright, against OpenBSS served by uvicorn on
loopback.

sign in (agent's token) → type-ahead search → customer 360 → raise a ticket → place an order (cart → order) → watch
its activation → adjust a bill above the agent's limit (an approval request) → a supervisor approves it → close the
ticket; an axe-core check of every view (no serious or critical violation) and screenshots at 1280 px and 768 px
in ``OPENBSS_SCREENSHOT_DIR`` (default: a temporary directory).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from openbss.platform.auth import issue_token
from tests.billing.helpers import recurring, sell
from tests.billing.helpers import run as bill_run
from tests.customer.helpers import billing_account_body, created, make_customer, make_individual
from tests.ordering.helpers import run as provision
from tests.ordering.helpers import setup_world

CHROMIUM = os.environ.get("OPENBSS_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
SERIOUS = ("serious", "critical")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chromium() -> str:
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        if IN_CI:
            pytest.fail(f"CI=true and Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium)")
        pytest.skip(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
    return CHROMIUM


@pytest.fixture(scope="module")
def server(settings: Any) -> Any:
    """OpenBSS on a loopback port, with its own runtime and pool like a real process."""
    yield from _serve(settings, _free_port())


def _serve(settings: Any, port: int, **overrides: Any) -> Any:
    import uvicorn

    from openbss.app import create_app

    base = f"http://127.0.0.1:{port}"
    s = settings.model_copy(update={"public_url": base, **overrides})
    app = create_app(s)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                        access_log=False, lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield {"base": base, "services": app.state.services}
    srv.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="module")
def shots() -> Path:
    path = Path(os.environ.get("OPENBSS_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="openbss-console-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _world(rt: Any, client: httpx.AsyncClient) -> dict[str, Any]:
    """A tenant with the demo catalog and pools, a customer with an active billing account and an issued bill."""
    w = await setup_world(rt, client, numbers=20, sims=20)
    tenant, h = w["tenant"], w["h"]
    party = await make_individual(client, h, given="Margaret", family="Hamilton", email="margaret@example.org",
                                  phone="+447700900555", ident="P7654321")
    cust = await make_customer(client, h, party)
    body = billing_account_body(cust, state="active",
                                billCycle={"billingDay": 1, "frequency": "monthly", "timeZone": "UTC"})
    account = await created(await client.post("/tmf-api/accountManagement/v4/billingAccount", json=body, headers=h))
    account["_owner"] = [{"id": party["id"], "role": "owner", "@referredType": "Individual"}]
    await sell(rt, tenant, account, "2027-01-01T00:00:00Z", [recurring("50.00")])
    await bill_run(rt, tenant, date(2027, 1, 1), finalize=True)
    sup = {"Authorization": f"Bearer {issue_token(tenant, ['care_supervisor'], subject='sup-ada')}"}
    r = await client.put("/api/care/v1/adjustmentLimit", headers=sup, json={
        "appliesTo": {"kind": "role", "id": "csr_agent"}, "amount": {"value": "20.00", "unit": "EUR"}})
    assert r.status_code == 200, r.text
    r = await client.post("/api/care/v1/queue", headers=sup, json={"name": "First line"})
    assert r.status_code == 201, r.text
    return {**w, "customer": cust, "account": account}


async def test_agent_journey_in_chromium(rt: Any, client: httpx.AsyncClient, chromium: str,
                                         server: dict[str, Any], shots: Path) -> None:
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright, expect

    w = await _world(rt, client)
    tenant, base = w["tenant"], server["base"]
    alice = issue_token(tenant, ["csr_agent"], subject="agent-alice")
    ada = issue_token(tenant, ["care_supervisor"], subject="sup-ada")
    axe = Axe()
    found: list[str] = []
    errors: list[str] = []

    async def check(page: Any, name: str, widths: tuple[int, ...] = (1280,)) -> None:
        """axe-core on the view as it is now; a screenshot per width."""
        for width in widths:
            await page.set_viewport_size({"width": width, "height": 900})
            await page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
            results = await axe.run(page)
            assert results.response["testEngine"]["name"] == "axe-core", results.response
            for v in results.response["violations"]:
                if v["impact"] in SERIOUS:
                    found.append(f"{name} @{width}px: {v['id']} ({v['impact']}): "
                                 f"{[n['target'] for n in v['nodes']][:3]}")
        await page.set_viewport_size({"width": 1280, "height": 900})

    async def sign_in(page: Any, token: str) -> None:
        await page.goto(f"{base}/console/")
        await expect(page.get_by_label("Access token")).to_be_visible()
        await page.get_by_label("Access token").fill(token)
        await page.get_by_test_id("signin-submit").click()
        await expect(page.get_by_label("Search")).to_be_focused()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # sign-in: a wrong token is refused with a message
        await page.goto(f"{base}/console/")
        await check(page, "01-signin", (1280, 768))
        await page.get_by_label("Access token").fill("not-a-token")
        await page.get_by_test_id("signin-submit").click()
        await expect(page.get_by_test_id("alert")).to_contain_text("not valid")
        errors.clear()  # the browser logs the refused request (401) as an error
        await sign_in(page, alice)
        await expect(page.get_by_test_id("agent")).to_contain_text("agent-alice")

        # type-ahead search by name, then keyboard into the results
        await page.get_by_label("Search").press_sequentially("Margaret Ham", delay=30)
        await expect(page.get_by_test_id("result-customer")).to_have_count(1)
        await check(page, "02-search", (1280, 768))
        await page.get_by_label("Search").press("ArrowDown")
        await expect(page.get_by_test_id("result-customer")).to_be_focused()
        await page.keyboard.press("Enter")

        # the 360
        await expect(page.get_by_test_id("identity")).to_contain_text("margaret@example.org")
        await expect(page.get_by_test_id("bills")).to_contain_text("60")
        await expect(page.get_by_test_id("section-balances")).to_be_visible()
        await check(page, "03-customer360", (1280, 768))

        # raise a ticket
        await page.get_by_test_id("action-raise").click()
        await expect(page.get_by_label("What is wrong")).to_be_visible()
        await page.get_by_label("What is wrong").fill("Calls drop after a minute")
        await page.get_by_label("Priority").select_option("high")
        await page.get_by_label("Queue").select_option(label="First line")
        await check(page, "04-raise-ticket")
        await page.get_by_test_id("raise-submit").click()
        await expect(page.get_by_test_id("ticket-status")).to_contain_text("Acknowledged")
        ticket_url = page.url
        await check(page, "05-ticket")

        # record an interaction
        await page.get_by_text("Back to the customer").click()
        await page.get_by_test_id("action-interaction").click()
        await page.get_by_label("Reason").fill("Called about dropped calls")
        await check(page, "06-interaction")
        await page.get_by_test_id("interaction-submit").click()
        await expect(page.get_by_test_id("interactions")).to_contain_text("Called about dropped calls")

        # place an order from the catalog: cart → order, then follow it to activation
        await page.get_by_test_id("action-order").click()
        await page.get_by_label("Offering").select_option(label="Mobile M")
        await expect(page.get_by_test_id("char-simType")).to_be_visible()
        await check(page, "07-order")
        await page.get_by_test_id("order-submit").click()
        await expect(page.get_by_test_id("order-place")).to_be_focused()
        await page.get_by_test_id("order-place").click()
        await expect(page.get_by_test_id("order-progress")).to_contain_text("Activation in progress")
        await check(page, "08-order-tracking")
        await provision(rt, tenant)  # the workers' part: the network's steps and the events
        await expect(page.get_by_test_id("order-state")).to_contain_text("Completed", timeout=15_000)
        await expect(page.get_by_test_id("order-progress")).to_contain_text("Activated")

        # adjust the bill above the agent's limit: an approval request
        await page.get_by_text("Back to the customer").click()
        await expect(page.get_by_test_id("products")).to_contain_text("Mobile M")
        await expect(page.get_by_test_id("interactions")).to_contain_text("Product order placed")
        await expect(page.get_by_test_id("balances")).to_contain_text("Postpaid")  # the new line's live balance
        await check(page, "09-customer360-active", (1280, 768))
        await page.get_by_test_id("adjust-bill").first.click()
        await page.get_by_label("Credit, tax included").fill("30.00")
        await page.get_by_label("Reason").fill("Dropped calls for two weeks")
        await check(page, "10-adjust")
        await page.get_by_test_id("adjust-submit").click()
        await expect(page.get_by_test_id("adjust-result")).to_contain_text("Above your limit")
        await page.get_by_test_id("nav-approvals").click()
        await expect(page.get_by_test_id("approvals-table")).to_contain_text("agent-alice")
        await expect(page.get_by_test_id("approve")).to_have_count(0)  # an agent cannot approve
        await page.get_by_test_id("signout").click()

        # a supervisor approves it
        await sign_in(page, ada)
        await page.get_by_test_id("nav-approvals").click()
        await expect(page.get_by_test_id("approve")).to_have_count(1)
        await check(page, "11-approvals", (1280, 768))
        await page.get_by_test_id("approve").click()
        await expect(page.get_by_test_id("status")).to_contain_text("Approved")
        await page.get_by_label("Show").select_option("approved")
        await expect(page.get_by_test_id("approvals-table")).to_contain_text("sup-ada")

        # the ticket is resolved, then closed
        await page.goto(ticket_url)
        await page.get_by_label("New status").select_option("resolved")
        await page.get_by_label("Reason").fill("Cell site repaired")
        await page.get_by_test_id("ticket-move-submit").click()
        await expect(page.get_by_test_id("ticket-status")).to_contain_text("Resolved")
        await page.get_by_label("New note").fill("Customer confirmed calls hold")
        await page.get_by_test_id("ticket-add-note-submit").click()
        await expect(page.get_by_test_id("ticket-notes")).to_contain_text("Customer confirmed")
        await page.get_by_label("New status").select_option("closed")
        await page.get_by_test_id("ticket-move-submit").click()
        await expect(page.get_by_test_id("ticket-status")).to_contain_text("Closed")
        await check(page, "12-ticket-closed", (1280, 768))

        # a domain that is down: its section says so, the rest of the customer is there
        views = server["services"].personal_data.customer_views
        working = views["usage"]

        async def usage_down(ctx: Any, customer: dict[str, Any]) -> Any:
            raise ConnectionError("usage store unreachable")

        views["usage"] = usage_down
        try:
            await page.goto(f"{base}/console/#/customer/{w['customer']['id']}")
            await expect(page.get_by_test_id("unavailable-usage")).to_contain_text("could not be read")
            await expect(page.get_by_test_id("status")).to_contain_text("Some sections are unavailable: Usage")
            await expect(page.get_by_test_id("bills")).to_contain_text("60")
            await check(page, "13-customer360-degraded")
        finally:
            views["usage"] = working
        await browser.close()

    assert not errors, errors
    assert not found, "\n".join(found)
    # what the server recorded: the credit note issued on approval, the ticket closed by the supervisor
    h = {"Authorization": f"Bearer {ada}"}
    view = (await client.get(f"/tmf-api/customerManagement/v4/customer360/{w['customer']['id']}", headers=h)).json()
    notes = [b for b in view["bills"] if b.get("category") == "creditNote"]
    assert [n["taxIncludedAmount"]["value"] for n in notes] == [-30]
    assert [t["status"] for t in view["tickets"]["recent"]] == ["closed"]
    orders = (await client.get("/tmf-api/productOrderingManagement/v4/productOrder", headers=h,
                               params={"relatedParty.id": w["customer"]["id"]})).json()
    assert [o["state"] for o in orders] == ["completed"]


async def test_sign_in_through_the_identity_provider_and_the_new_views(
        rt: Any, client: httpx.AsyncClient, chromium: str, settings: Any, shots: Path) -> None:
    """The console's authorization-code + PKCE sign-in at a loopback OpenID provider (a staff user with the csr_agent
    role gets in; a user without a staff role is refused), then the views added since: payments and collections in
    the 360, a top-up above the agent's limit (an approval request), resetting self-care access."""
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright, expect

    from openbss.demo.identity_provider import IdpClient, IdpUser, start_identity_provider
    from tests.charging.helpers import open_account
    from tests.payments.helpers import card, method

    w = await _world(rt, client)
    tenant, h = w["tenant"], w["h"]
    await method(client, h, card(w["account"], isPreferred=True))
    prepaid = await open_account(rt, tenant, balance="5.00")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    secret = "console-secret-for-tests"
    users = [IdpUser("staff-7", "carol", "carol-pass", "carol@operator.example", name="Carol Agent",
                     claims=(("tenant", tenant), ("roles", ["csr_agent"]))),
             IdpUser("cust-9", "dave", "dave-pass", "dave@example.org", claims=(("tenant", tenant),
                                                                                ("roles", ["customer"])))]
    idp = start_identity_provider(clients=[IdpClient("openbss-console", secret, (f"{base}/console/auth/callback",))],
                                  users=users, title="Operator SSO")
    serving = _serve(settings, port, care_console_identity_provider={
        "issuer": idp.issuer, "clientId": "openbss-console", "clientSecret": secret, "label": "Operator SSO"})
    next(serving)
    axe = Axe()
    found: list[str] = []
    errors: list[str] = []

    async def check(page: Any, name: str) -> None:
        for width in (1280, 768):
            await page.set_viewport_size({"width": width, "height": 900})
            await page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
            for v in (await axe.run(page)).response["violations"]:
                if v["impact"] in SERIOUS:
                    found.append(f"{name} @{width}px: {v['id']} ({v['impact']}): "
                                 f"{[n['target'] for n in v['nodes']][:3]}")
        await page.set_viewport_size({"width": 1280, "height": 900})

    async def sso(page: Any, username: str, password: str) -> None:
        await page.goto(f"{base}/console/")
        await page.get_by_test_id("signin-oidc-button").click()
        await page.get_by_label("Username or email").fill(username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()

    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))

            # a user without a staff role is sent back with a message
            await page.goto(f"{base}/console/")
            await expect(page.get_by_test_id("signin-oidc-button")).to_have_text("Operator SSO")
            await check(page, "21-signin-sso")
            await sso(page, "dave", "dave-pass")
            await expect(page.get_by_test_id("alert")).to_contain_text("no role in the console")
            assert "token" not in page.url  # nothing handed over in a URL

            # an agent signs in at the provider: authorization code + PKCE, then the console's token
            await sso(page, "carol", "carol-pass")
            await expect(page.get_by_label("Search")).to_be_focused()
            await expect(page.get_by_test_id("agent")).to_contain_text("staff-7")
            assert "code=" not in page.url and "token" not in page.url

            # the 360: payments (the card masked) and collections
            await page.goto(f"{base}/console/#/customer/{w['customer']['id']}")
            await expect(page.get_by_test_id("payment-methods")).to_contain_text("•••• 4242")
            await expect(page.get_by_test_id("dunning")).to_contain_text("None")
            await check(page, "22-customer360-payments")

            # a top-up above the agent's limit (20 EUR) waits for a supervisor
            await page.goto(f"{base}/console/#/customer/{w['customer']['id']}/topup/{prepaid['msisdn']}")
            await page.get_by_label("Amount").fill("30")
            await check(page, "23-topup")
            await page.get_by_test_id("topup-submit").click()
            await expect(page.get_by_test_id("topup-result")).to_contain_text("Above your limit")

            # reset the customer's self-care access
            await page.goto(f"{base}/console/#/customer/{w['customer']['id']}")
            await page.get_by_test_id("action-selfcare-reset").click()
            await page.get_by_label("Reason").fill("Lost phone, caller verified")
            await check(page, "24-selfcare-reset")
            await page.get_by_test_id("selfcare-reset-submit").click()
            await expect(page.get_by_test_id("reset-result")).to_contain_text("Access reset")
            await expect(page.get_by_test_id("reset-result")).to_contain_text("sign-in link was sent by email")
            await browser.close()
    finally:
        next(serving, None)
        idp.stop()
    assert not errors, errors
    assert not found, "\n".join(found)
    sup = {"Authorization": f"Bearer {issue_token(tenant, ['care_supervisor'], subject='sup-ada')}"}
    pending = (await client.get("/api/care/v1/approval", headers=sup, params={"status": "pending"})).json()
    assert [(a["kind"], a["subscriber"], a["requestedBy"]) for a in pending] == [
        ("topUp", prepaid["msisdn"], "staff-7")]
    found_i = (await client.get("/tmf-api/partyInteraction/v4/partyInteraction", headers=sup,
                                params={"relatedParty.id": w["customer"]["id"]})).json()
    assert "Self-care access reset" in [i["reason"] for i in found_i]


async def test_network_operations_view(rt: Any, client: httpx.AsyncClient, services: Any, tenant: str,
                                       chromium: str, server: dict[str, Any]) -> None:
    """A network operations account: the NOC view only (no care nav), an open problem with its impact and a link to
    the affected customer's 360, the alarms with a filter, an SLA period evaluated, a KPI chart (inline SVG) with its
    threshold line; an alarm acknowledged from the page (TMF642 ackAlarms); axe-core; a screenshot."""
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright, expect

    from openbss.platform.tmf.resource import system_context
    from tests.assurance.helpers import ALARM, alarm_body, ok
    from tests.assurance.test_sla import SLA, sla_body
    from tests.assurance.test_sla import world as sla_world
    from tests.assurance.test_thresholds import push
    from tests.assurance.test_thresholds import setup as threshold_setup
    from tests.conftest import bearer

    h = bearer(tenant, "network_ops")
    w = await sla_world(client, rt, services, tenant, [("2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z")])
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"]), headers=h), 201)
    await ok(await client.post(f"{SLA}/{sla['id']}/evaluate", json={"periodStart": "2026-11-01T00:00:00Z"},
                               headers=h))
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        await services.assurance.resources["serviceProblem"].record(ctx, {
            "name": "agg-7 down", "category": "system.originated", "priority": 1, "description": "node down",
            "reason": "lossOfSignal", "originatorParty": {"id": "openbss"}, "status": "inProgress",
            "affectedService": [{"id": w["service"]["id"]}], "affectedNumberOfServices": 1,
            "affectedProductCount": 1, "affectedCustomerCount": 1,
            "relatedEntity": [{"id": w["product"]["id"], "role": "affectedProduct", "@referredType": "Product"}],
            "relatedParty": [{"id": w["customer"]["id"], "role": "affectedCustomer", "@referredType": "Customer"}]})
    alarm = await ok(await client.post(ALARM, json=alarm_body("agg-7", perceivedSeverity="major",
                                                              specificProblem="Fan failure"), headers=h), 201)
    thr = await threshold_setup(client, h, "cell-7")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await push(client, h, thr["kpi"]["name"], "cell-7",
               *[((now - timedelta(minutes=5 * (6 - i))).isoformat(), v)
                 for i, v in enumerate([120, 150, 170, 160, 230, 240])])

    token = issue_token(tenant, ["network_ops"], subject="noc-nina")
    base = server["base"]
    axe = Axe()
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{base}/console/")
        await page.get_by_label("Access token").fill(token)
        await page.get_by_test_id("signin-submit").click()
        # a network operations account lands on the NOC view; care's entries are not offered
        await expect(page.get_by_role("heading", name="Network operations", level=1)).to_be_focused()
        await expect(page.get_by_test_id("nav-noc")).to_be_visible()
        await expect(page.get_by_test_id("nav-search")).to_be_hidden()

        problems = page.get_by_test_id("problems-table")
        await expect(problems).to_contain_text("agg-7 down")
        await expect(page.get_by_test_id("problem-customer")).to_have_attribute(
            "href", f"#/customer/{w['customer']['id']}")
        alarms = page.get_by_test_id("alarms-table")
        await expect(alarms).to_contain_text("Fan failure")
        await expect(alarms).to_contain_text("threshold latency high")  # the crossing of 200 raised one
        await expect(page.get_by_test_id("sla-table")).to_contain_text("Business fibre gold")
        await expect(page.get_by_test_id("sla-table").locator("tbody tr td").nth(3)).to_have_text("1")

        # the KPI chart of cell-7 with its threshold line at 200
        await page.get_by_label("Object", exact=True).fill("cell-7")
        await page.get_by_label("Granularity").select_option("raw")
        await page.get_by_test_id("kpi-show").click()
        chart = page.get_by_test_id("kpi-chart")
        await expect(chart).to_be_visible()
        await expect(chart.get_by_test_id("threshold-line")).to_contain_text("Major > 200")
        assert await chart.locator("circle").count() == 6
        assert await chart.get_by_test_id("kpi-series").get_attribute("d")

        # filter by managed object, then acknowledge the fan alarm with the keyboard
        await page.get_by_label("Managed object").fill("agg-7")
        await page.get_by_label("Managed object").press("Enter")
        await expect(alarms).not_to_contain_text("threshold latency high")
        ack = page.get_by_role("button", name="Acknowledge Fan failure on agg-7")
        await ack.focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("status")).to_contain_text(f"Alarm {alarm['id']} acknowledged")
        await expect(alarms).to_contain_text("by noc-nina")

        await page.screenshot(path="/tmp/noc.png", full_page=True)
        violations = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
                      for v in (await axe.run(page)).response["violations"] if v["impact"] in SERIOUS]
        # an agent without assurance:read is not offered the view
        await page.evaluate("sessionStorage.clear()")
        await page.goto(f"{base}/console/")
        await page.get_by_label("Access token").fill(issue_token(tenant, ["csr_agent"], subject="agent-al"))
        await page.get_by_test_id("signin-submit").click()
        await expect(page.get_by_label("Search")).to_be_focused()
        await expect(page.get_by_test_id("nav-noc")).to_be_hidden()
        await browser.close()
    assert not errors, errors
    assert not violations, violations
    acked = await ok(await client.get(f"{ALARM}/{alarm['id']}", headers=h))
    assert acked["ackState"] == "acknowledged" and acked["ackUserId"] == "noc-nina"
    r = await client.get("/tmf-api/alarm/v4/alarm", headers=bearer(tenant, "csr_agent"))
    assert r.status_code == 403


async def test_the_noc_view_refreshes_by_itself(client: httpx.AsyncClient, tenant: str, chromium: str,
                                                server: dict[str, Any]) -> None:
    """An alarm raised after the NOC view loaded appears without a reload; while the tab is hidden the view does not
    poll, and it catches up as soon as the tab shows again; a focused section is left alone."""
    from playwright.async_api import async_playwright, expect

    from tests.assurance.helpers import ALARM, alarm_body, ok
    from tests.conftest import bearer

    h = bearer(tenant, "network_ops")
    await ok(await client.post(ALARM, json=alarm_body("olt-3", specificProblem="PON LOS"), headers=h), 201)
    base = server["base"]
    errors: list[str] = []
    calls: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: calls.append(r.url) if "/tmf-api/alarm/v4/alarm?" in r.url else None)
        await page.goto(f"{base}/console/")
        await page.get_by_label("Access token").fill(issue_token(tenant, ["network_ops"], subject="noc-ola"))
        await page.get_by_test_id("signin-submit").click()
        await expect(page.get_by_role("heading", name="Network operations", level=1)).to_be_visible()
        await page.evaluate("location.hash = '#/noc?refresh=1'")
        alarms = page.get_by_test_id("alarms-table")
        await expect(alarms).to_contain_text("PON LOS")
        await expect(page.get_by_test_id("noc-refreshed")).to_contain_text("every 1 s")
        await page.evaluate("window.__sameDocument = true")

        # raised after the page loaded: shown by the next refresh, without a reload
        await ok(await client.post(ALARM, json=alarm_body("olt-3", specificProblem="Laser bias high"), headers=h),
                 201)
        await expect(alarms).to_contain_text("Laser bias high", timeout=10_000)
        await expect(page.get_by_test_id("noc-refreshed")).to_contain_text("updated")

        # the tab hidden: no polling; shown again: refreshed at once
        await page.evaluate("""() => {
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
            Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        await page.wait_for_timeout(300)  # a round already under way ends
        before = len(calls)
        await ok(await client.post(ALARM, json=alarm_body("olt-3", specificProblem="Optical power low"), headers=h),
                 201)
        await page.wait_for_timeout(3_000)
        assert len(calls) == before, calls[before:]
        await expect(alarms).not_to_contain_text("Optical power low")
        await page.evaluate("""() => {
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
            Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        await expect(alarms).to_contain_text("Optical power low", timeout=5_000)

        # the keyboard on an alarm's button: that section waits; the focus stays where it was
        ack = page.get_by_role("button", name="Acknowledge PON LOS on olt-3")
        await ack.focus()
        await ok(await client.post(ALARM, json=alarm_body("olt-3", specificProblem="Temperature high"), headers=h),
                 201)
        await page.wait_for_timeout(2_500)
        await expect(ack).to_be_focused()
        await expect(alarms).not_to_contain_text("Temperature high")
        await page.get_by_label("Managed object").focus()  # focus elsewhere: the list catches up
        await expect(alarms).to_contain_text("Temperature high", timeout=5_000)
        assert await page.evaluate("window.__sameDocument") is True  # never reloaded

        # the view left (here for the NOC view again, at the default 15 s): the 1-second one stops polling
        await page.evaluate("location.hash = '#/noc'")
        await expect(page.get_by_test_id("noc-refreshed")).to_contain_text("every 15 s")
        await page.wait_for_timeout(1_000)
        before = len(calls)
        await page.wait_for_timeout(2_500)
        assert len(calls) == before, calls[before:]
        await browser.close()
    assert not errors, errors

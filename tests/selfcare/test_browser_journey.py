"""The self-care journey in a real browser: Debian's Chromium driven by Playwright, against OpenBSS served by
uvicorn on loopback and a real OpenID provider on another loopback port.

sign in at the provider → link by mobile number and SMS code → profile → update → balance → usage → PDF download
→ my bills → a bill's PDF → sign out. Screenshots of every step go to ``OPENBSS_SCREENSHOT_DIR`` (default: a
temporary directory).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests.conftest import session_services
from tests.selfcare.conftest import CLIENT_ID, CLIENT_SECRET, portal_settings
from tests.selfcare.portal import PASSWORD, USERS, billed_customer, code_in, last_message, new_customer, next_social

CHROMIUM = os.environ.get("OPENBSS_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


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
def server(settings: Any, portal_tenant: str, corporate_url: str) -> Any:
    """OpenBSS on a loopback port (its own runtime and pool, like a real process) and its identity provider."""
    import uvicorn

    from openbss.app import create_app
    from openbss.demo.identity_provider import IdpClient, start_identity_provider

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    idp = start_identity_provider(clients=[IdpClient(CLIENT_ID, CLIENT_SECRET, (f"{base}/selfcare/auth/callback",),
                                                     (f"{base}/selfcare/",))], users=USERS, title="NorthID")
    s = portal_settings(settings, portal_tenant, idp, corporate_url, public_url=base)
    srv = uvicorn.Server(uvicorn.Config(create_app(s), host="127.0.0.1", port=port, log_config=None,
                                        access_log=False, lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield {"base": base, "settings": s}
    srv.should_exit = True
    thread.join(timeout=15)
    idp.stop()


@pytest.fixture(scope="module")
def shots() -> Path:
    path = Path(os.environ.get("OPENBSS_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="openbss-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _calls_last_month(rt: Any, tenant: str, msisdn: str) -> str:
    from openbss.charging.schemas import CreditControlRequest

    when = (datetime.now(UTC).replace(day=1) - timedelta(days=3)).replace(hour=10, minute=0, second=0,
                                                                         microsecond=0)
    for n, (called, seconds) in enumerate((("+447700900123", 125), ("+33145000000", 61))):
        sid = f"browser;{msisdn};{n}"
        for number, kind, units in ((0, "INITIAL_REQUEST", {"requestedServiceUnit": {"time": 300}}),
                                    (1, "TERMINATION_REQUEST", {"usedServiceUnit": {"time": seconds}})):
            body = {"sessionId": sid, "requestType": kind, "requestNumber": number,
                    "serviceContextId": "32260@3gpp.org", "subscriptionId": {"type": "END_USER_E164", "data": msisdn},
                    "eventTimestamp": (when + timedelta(hours=n, seconds=number * seconds)).isoformat(),
                    "serviceInformation": {"calledParty": called},
                    "multipleServicesCreditControl": [{"ratingGroup": 1, **units}]}
            await session_services().charging.service.credit_control(
                rt.db, tenant, CreditControlRequest.model_validate(body), "http://x")
    return f"{when.year:04d}-{when.month:02d}"


async def test_selfcare_journey_in_chromium(rt: Any, portal_tenant: str, chromium: str, server: dict[str, Any],
                                            shots: Path) -> None:
    from playwright.async_api import async_playwright, expect

    user = next_social()  # an email the operator does not know: the portal links by mobile number
    cust = await new_customer(rt, portal_tenant, email="journey@example.org", given="Jordan", family="Reyes",
                              balance="15.00")
    month = await _calls_last_month(rt, portal_tenant, cust["msisdn"])
    bill = await billed_customer(rt, portal_tenant, cust, "25.00")
    base = server["base"]
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
        page = await context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text
                else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        await page.goto(f"{base}/selfcare/")
        await page.get_by_test_id("signin-provider-north").click()
        await page.get_by_label("Username or email").fill(user.username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.screenshot(path=str(shots / "01-provider.png"))
        await page.get_by_role("button", name="Sign in").click()

        await expect(page.get_by_test_id("link-msisdn")).to_be_visible()
        await page.screenshot(path=str(shots / "02-link.png"))
        await page.get_by_test_id("link-msisdn").fill(cust["msisdn"])
        await page.get_by_test_id("link-send").click()
        await expect(page.get_by_test_id("link-code")).to_be_visible()
        code = code_in(await last_message(rt, portal_tenant, cust["msisdn"]))
        await page.get_by_test_id("link-code").fill(code)
        await page.get_by_test_id("link-verify").click()

        await expect(page.get_by_test_id("profile-name")).to_contain_text("Jordan Reyes")
        await page.screenshot(path=str(shots / "03-profile.png"), full_page=True)
        await page.get_by_test_id("profile-edit").click()
        await page.get_by_test_id("edit-phone").fill("+33 6 98 76 54 32")
        await page.get_by_test_id("edit-city").fill("Bordeaux")
        await page.get_by_test_id("edit-postcode").fill("33000")
        await page.get_by_test_id("edit-pref-sms").check()
        await page.get_by_test_id("edit-save").click()
        await expect(page.get_by_test_id("status")).to_contain_text("saved")
        await expect(page.get_by_test_id("profile-phone")).to_contain_text("+33698765432")
        await expect(page.get_by_test_id("profile-address")).to_contain_text("Bordeaux")
        await page.screenshot(path=str(shots / "04-updated.png"), full_page=True)
        # a bad value is refused with the server's message
        await page.get_by_test_id("profile-edit").click()
        await page.get_by_test_id("edit-phone").fill("12")
        await page.get_by_test_id("edit-save").click()
        await expect(page.get_by_test_id("alert")).to_contain_text("E.164")
        await page.screenshot(path=str(shots / "05-invalid.png"), full_page=True)

        await page.get_by_test_id("nav-balance").click()
        await expect(page.get_by_test_id("balance-money")).to_contain_text("15")
        await expect(page.get_by_test_id("allowance").first).to_be_visible()
        await page.screenshot(path=str(shots / "06-balance.png"), full_page=True)

        await page.get_by_test_id("nav-usage").click()
        await page.get_by_test_id("usage-month").select_option(month)
        await expect(page.get_by_test_id("usage-row")).to_have_count(2)
        await expect(page.get_by_test_id("usage-row").first).to_contain_text("+447700900123")
        await page.screenshot(path=str(shots / "07-usage.png"), full_page=True)
        async with page.expect_download() as download_info:
            await page.get_by_test_id("usage-pdf").click()
        download = await download_info.value
        pdf = Path(await download.path()).read_bytes()
        (shots / f"usage-{month}.pdf").write_bytes(pdf)

        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.screenshot(path=str(shots / "08-usage-desktop.png"), full_page=True)

        await page.get_by_test_id("nav-bills").click()
        await expect(page.get_by_test_id("bill-row")).to_have_count(1)
        await expect(page.get_by_test_id("bill-row").first).to_contain_text(bill["billNo"])
        await expect(page.get_by_test_id("bills-due-amount")).to_contain_text("60.00")
        await page.screenshot(path=str(shots / "08b-bills.png"), full_page=True)
        async with page.expect_download() as bill_download:
            await page.get_by_test_id("bill-pdf").first.click()
        bill_pdf = Path(await (await bill_download.value).path()).read_bytes()
        (shots / "bill.pdf").write_bytes(bill_pdf)
        await page.get_by_test_id("signout").click()
        await expect(page.get_by_test_id("signin-provider-north")).to_be_visible()
        await page.screenshot(path=str(shots / "09-signed-out.png"))
        await browser.close()

    assert pdf.startswith(b"%PDF")
    text = "\n".join(pg.extract_text() for pg in PdfReader(io.BytesIO(pdf)).pages)
    assert "Jordan Reyes" in text and "+447700900123" in text and "Bordeaux" in text
    assert bill_pdf.startswith(b"%PDF")
    assert bill["billNo"] in "\n".join(pg.extract_text() for pg in PdfReader(io.BytesIO(bill_pdf)).pages)
    assert not errors, errors
    # the archived copy is what the browser downloaded
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/selfcare/api/usage/{month}.pdf")).status_code == 401  # signed out

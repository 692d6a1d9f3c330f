"""An overdue customer in a real browser (Debian's Chromium driven by Playwright, OpenBSS served by uvicorn on
loopback): the overdue notice with the amount due on each late account, a promise to pay made with the form, then
the pay button — the default card charged through payments' sandbox gateway — and the dunning episode closed by
the payment. Screenshots go to ``OPENBSS_SCREENSHOT_DIR`` (default: a temporary directory)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openbss.collections.models import Episode, Promise
from tests.conftest import deliver_all
from tests.selfcare.portal import PASSWORD, new_customer, next_matching, overdue_customer
from tests.selfcare.test_browser_journey import CHROMIUM_ARGS, chromium, server, shots  # noqa: F401 (fixtures)


async def _episode(rt: Any, tenant: str, account_id: str) -> Episode:
    async with rt.db.transaction(tenant) as s:
        return (await s.execute(select(Episode).where(Episode.billing_account_id == account_id)
                                .order_by(Episode.opened_at.desc()))).scalars().first()


async def test_overdue_notice_promise_and_pay_in_chromium(rt: Any, portal_tenant: str, chromium: str,  # noqa: F811
                                                          server: dict[str, Any], shots: Path) -> None:  # noqa: F811
    from playwright.async_api import async_playwright, expect

    user = next_matching()  # the operator knows this verified email: linked at the first sign-in
    cust = await new_customer(rt, portal_tenant, email=user.email, given="Dana", family="Dunning")
    paying = await overdue_customer(rt, portal_tenant, cust, "25.00", name="Mobile plan")
    promising = await overdue_customer(rt, portal_tenant, cust, "15.00", card=None, name="Home internet")
    assert (await _episode(rt, portal_tenant, paying["billingAccountId"])).state == "open"
    when = date.today() + timedelta(days=10)
    base = server["base"]
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text
                else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        await page.goto(f"{base}/selfcare/")
        await page.get_by_test_id("signin-provider-north").click()
        await page.get_by_label("Username or email").fill(user.username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("profile-name")).to_contain_text("Dana Dunning")

        await page.get_by_test_id("nav-bills").click()
        await expect(page.get_by_test_id("overdue-notice")).to_have_count(2)
        mobile = page.get_by_test_id("bills-due").filter(has_text="Mobile plan")
        internet = page.get_by_test_id("bills-due").filter(has_text="Home internet")
        total = f"{float(paying['taxIncludedAmount']['value']):.2f}"
        await expect(mobile.get_by_test_id("overdue-amount")).to_contain_text(total)
        await expect(mobile.get_by_test_id("overdue-notice")).to_contain_text("days late")
        await page.screenshot(path=str(shots / "20-overdue.png"), full_page=True)

        # the promise form: a bad amount is refused in the page, then the promise is recorded
        await internet.get_by_test_id("promise-amount").fill("abc")
        await internet.get_by_test_id("promise-submit").click()
        await expect(page.get_by_test_id("alert")).to_contain_text("amount")
        await internet.get_by_test_id("promise-amount").fill("18.00")
        await internet.get_by_test_id("promise-date").fill(when.isoformat())
        await internet.get_by_test_id("promise-submit").click()
        await expect(page.get_by_test_id("status")).to_contain_text("promise to pay")
        await expect(internet.get_by_test_id("promise-pending")).to_contain_text("18.00")
        await page.screenshot(path=str(shots / "21-promised.png"), full_page=True)

        # the pay button: the default card, through payments' sandbox gateway
        await mobile.get_by_test_id("overdue-pay").click()
        await expect(page.get_by_test_id("status")).to_contain_text("was received")
        await page.screenshot(path=str(shots / "22-paid.png"), full_page=True)
        await deliver_all(rt)  # payments' events reach billing (the bill settled) and collections (episode closed)
        await page.get_by_test_id("nav-profile").click()
        await page.get_by_test_id("nav-bills").click()
        await expect(page.get_by_test_id("overdue-notice")).to_have_count(1)
        await expect(mobile.get_by_test_id("overdue-notice")).to_have_count(0)
        await page.screenshot(path=str(shots / "23-after-payment.png"), full_page=True)
        await browser.close()

    assert not errors, errors
    episode = await _episode(rt, portal_tenant, paying["billingAccountId"])
    assert episode.state == "closed" and episode.close_reason == "paid"
    paused = await _episode(rt, portal_tenant, promising["billingAccountId"])
    assert paused.state == "open" and paused.paused_until == when
    async with rt.db.transaction(portal_tenant) as s:
        [promise] = (await s.execute(select(Promise).where(
            Promise.billing_account_id == promising["billingAccountId"]))).scalars().all()
    assert promise.state == "pending" and promise.body["channel"] == "selfcare"

"""A campaign in headless Chromium: preview a filtered segment, start it, watch the counts reach
"sent" and "delivered" as a real RQ worker sends to the fake Twilio and status callbacks come in,
pause and resume, and a reminder from the clock to those who did not answer."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select
from test_webhooks import status_form
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.cli import main
from engage.models import Message
from engage.services.accounts import create_user
from tests.browser import sign_in, text_of

PASSWORD = "staff member password"
# Where the screenshots of the preview and of a running campaign go (docs and reviews).
SCREENSHOTS = Path(os.environ.get("ENGAGE_SCREENSHOTS", "/tmp"))
FLORIDA = [f"+1305555{n:04d}" for n in range(4)]
WASHINGTON = ["+12065550100", "+12065550101"]


@pytest.fixture
def database():
    return "postgresql"


@pytest.fixture
def app(twilio_app, redis_url, tmp_path):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_QUIET_HOURS="0-0")
    lines = [f"{p},es,clinic,FL" for p in FLORIDA] + [f"{p},en,clinic,WA" for p in WASHINGTON]
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state\n" + "\n".join(lines) + "\n")
    result = CliRunner().invoke(
        main, ["contacts", "import", str(path)], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 0, result.output
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", PASSWORD, "staff")
    return app


def screenshot(browser, name: str) -> None:
    """The whole page at 1280 and at 390 px wide (a phone), into SCREENSHOTS."""
    for width in (1280, 390):
        browser.set_window_size(width, 1000)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, min(int(height) + 140, 6000))
        time.sleep(0.2)
        fits = browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
        too_wide = browser.execute_script(
            "return Array.from(document.querySelectorAll('body *'))"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
        )
        assert fits, f"{name} at {width} px scrolls sideways: {too_wide}"
        browser.save_screenshot(str(SCREENSHOTS / f"campaigns-{name}-{width}.png"))
    browser.set_window_size(1280, 1000)


def work(app) -> None:
    from engage.jobs.worker import run_worker

    with app.app_context():
        run_worker(burst=True)


def test_staff_start_a_campaign_and_follow_it_to_delivery_pause_resume_and_a_reminder(
    app, live_server, browser, fake_twilio
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sign_in(browser, live_server, "/staff/campaigns/new", "staff@example.org", PASSWORD)
    text_of(browser, By.ID, "preview-button", "Vista previa", timeout=20)

    Select(browser.find_element(By.ID, "survey")).select_by_value("working-conditions")
    Select(browser.find_element(By.ID, "attribute-0")).select_by_value("state")
    browser.find_element(By.ID, "value-0").send_keys("FL")
    for field, value in (("reminders", "1"), ("remind_after", "24")):
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(value)
    # The time fields show only for a start at a time.
    assert not browser.find_element(By.ID, "start_at").is_displayed()
    browser.find_element(By.ID, "start-at").click()
    assert browser.find_element(By.ID, "start_at").is_displayed()
    browser.find_element(By.ID, "start-now").click()
    # A campaign by phone has no reminders: their fields go while it is chosen.
    browser.find_element(By.CSS_SELECTOR, "input[name=channel][value=voice]").click()
    assert not browser.find_element(By.ID, "reminders").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "input[name=channel][value=sms]").click()
    assert browser.find_element(By.ID, "reminders").is_displayed()
    browser.find_element(By.ID, "preview-button").click()

    assert text_of(browser, By.ID, "reach-count", "4", timeout=20) == "4"  # Florida only
    preview = browser.find_element(By.ID, "preview").text
    assert "Quedan fuera" in preview and "segmentos" in preview
    assert "Como mucho 1 recordatorio." in preview
    screenshot(browser, "preview")
    browser.find_element(By.ID, "start-button").click()

    # The campaign's page: the invitations are written on `bulk`, by the worker, not the request.
    assert text_of(browser, By.ID, "state", "En curso", timeout=20) == "En curso"
    assert browser.find_element(By.ID, "count-contacts").text == "4"
    assert browser.find_element(By.ID, "count-sent").text == "0"
    assert fake_twilio.requests == []
    work(app)  # the fan-out, then the sends it handed to `bulk`
    assert len(fake_twilio.requests) == 4
    text_of(browser, By.ID, "count-sent", "4", timeout=20)
    assert browser.find_element(By.ID, "count-invited").text == "4"

    client = app.test_client()
    with app.app_context():
        rows = db.session().scalars(select(Message).where(Message.kind == "invitation")).all()
    for row in rows:
        post_signed(
            client,
            fake_twilio.auth_token,
            f"/twilio/status?m={row.id}",
            status_form(row.sid, "delivered"),
        )
    text_of(browser, By.ID, "count-delivered", "4", timeout=20)
    screenshot(browser, "running")

    # Pause: the page says so, and nothing more is sent (not even the reminder that is due).
    browser.find_element(By.ID, "pause").click()
    assert text_of(browser, By.ID, "state", "En pausa", timeout=20) == "En pausa"
    assert browser.find_element(By.ID, "resume").is_displayed()
    assert not browser.find_element(By.ID, "pause").is_displayed()
    from engage.jobs.campaigns import run_campaign_clock

    later = datetime.now(UTC) + timedelta(hours=25)
    with app.app_context():
        assert run_campaign_clock(later)["reminders"] == 0
    work(app)
    assert len(fake_twilio.requests) == 4

    browser.find_element(By.ID, "resume").click()
    assert text_of(browser, By.ID, "state", "En curso", timeout=20) == "En curso"
    # One worker answers; after the clock runs a day later, the three others are reminded.
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(FLORIDA[0], "1"))
    text_of(browser, By.ID, "count-started", "1", timeout=20)
    with app.app_context():
        assert run_campaign_clock(later)["reminders"] == 3
    work(app)
    text_of(browser, By.ID, "count-reminded", "3", timeout=20)
    reminded = {
        r.get("To") for r in fake_twilio.requests if "Recordatorio" in (r.get("Body") or "")
    }
    assert reminded == set(FLORIDA[1:])
    assert not {r.get("To") for r in fake_twilio.requests} & set(WASHINGTON)

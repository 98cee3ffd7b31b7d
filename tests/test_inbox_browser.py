"""The inbox in headless Chromium: an urgent thread on top, hostile texts shown as text, a reply
from a canned one reaching the fake Twilio, a note, and the thread marked handled.

Screenshots of the inbox and a thread at 1280 and 390 px are saved into ENGAGE_TEST_SCREENSHOTS
when it is set (for reviewing the pages), else into the test's own temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.services.accounts import create_user
from tests.browser import click_and_wait_for_page, sign_in, text_of
from tests.conftest import WEB_PASSWORD

URGENT_PHONE = "+15550104321"
HOSTILE = {
    "+15550105551": "<script>alert(1)</script>",
    "+15550105552": "<img src=x onerror=alert(1)>",
    "+15550105553": "javascript:alert(1)",
}
ASK_TO_CALL = "¿Podemos llamarle? 1 Sí 2 No"


@pytest.fixture
def app(twilio_app, fake_twilio):
    app = twilio_app()
    with app.app_context(), db.transaction() as session:
        create_user(session, "ana@example.org", WEB_PASSWORD, "staff")
    client = app.test_client()
    messages = [
        (URGENT_PHONE, "hola, soy de la cuadrilla de fresas"),
        *HOSTILE.items(),
        (URGENT_PHONE, "me quitaron el pasaporte\ny no me dejan salir del rancho"),
    ]
    for phone, text in messages:
        response = post_signed(
            client, fake_twilio.auth_token, "/twilio/messages", inbound_form(phone, text)
        )
        assert response.status_code == 200
    return app


@pytest.fixture
def screenshots(tmp_path, database):
    folder = Path(os.environ.get("ENGAGE_TEST_SCREENSHOTS") or tmp_path)

    def take(browser, name: str) -> None:
        """The whole page at 1280 and at 390 px wide (a phone)."""
        for width in (1280, 390):
            browser.set_window_size(width, 900)
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(width, min(max(height + 120, 900), 6000))
            suffix = "" if database == "postgresql" else f"-{database}"
            browser.save_screenshot(str(folder / f"inbox-{name}-{width}{suffix}.png"))
        browser.set_window_size(1280, 900)

    return take


def no_alert(browser) -> None:
    """No script of a worker's ran: no alert opened."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, 1).until(expected_conditions.alert_is_present())
    except TimeoutException:
        return
    raise AssertionError("a worker's text ran as script")


def test_staff_find_the_urgent_thread_on_top_reply_and_mark_it_handled(
    app, live_server, browser, fake_twilio, screenshots
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.set_window_size(1280, 900)
    sign_in(browser, live_server, "/staff/inbox", "ana@example.org", WEB_PASSWORD)
    text_of(browser, By.TAG_NAME, "h1", "Bandeja de entrada")

    threads = browser.find_elements(By.CSS_SELECTOR, "ol.threads > li")
    assert len(threads) == 4
    top = threads[0].text
    assert "Urgente: le quitaron documentos o pasaporte" in top and "•••• 4321" in top
    assert "me quitaron el pasaporte\ny no me dejan salir del rancho" in top
    page = browser.find_element(By.TAG_NAME, "main").text
    for text in HOSTILE.values():
        assert text in page  # shown as the worker wrote it
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    no_alert(browser)
    assert browser.find_element(By.CSS_SELECTOR, "nav .badge").text == "1"
    assert URGENT_PHONE not in browser.page_source
    screenshots(browser, "list")

    # A hostile thread is text too.
    click_and_wait_for_page(
        browser, browser.find_elements(By.CSS_SELECTOR, "ol.threads > li a.who")[1]
    )
    text_of(browser, By.CSS_SELECTOR, "ol.messages", "alert(1)")
    bodies = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "ol.messages .body")]
    assert any(text in bodies for text in HOSTILE.values())
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    no_alert(browser)

    # The urgent thread: a canned reply, copied into the box by the page's script, sent.
    browser.get(f"{live_server}/staff/inbox")
    click_and_wait_for_page(browser, browser.find_element(By.CSS_SELECTOR, "ol.threads > li a.who"))
    text_of(browser, By.TAG_NAME, "h1", "•••• 4321")
    Select(browser.find_element(By.ID, "canned")).select_by_visible_text(
        "Preguntar si podemos llamar"
    )
    box = browser.find_element(By.ID, "body")
    assert box.get_attribute("value") == ASK_TO_CALL
    assert browser.find_element(By.ID, "body-count").text == "1572 / 1600"
    before = len(fake_twilio.requests)
    click_and_wait_for_page(browser, browser.find_element(By.ID, "send-reply"))
    text_of(browser, By.CSS_SELECTOR, "main", "Su respuesta está en camino.")
    [sent] = fake_twilio.requests[before:]
    assert sent.get("Body") == ASK_TO_CALL and sent.get("To") == URGENT_PHONE
    assert "ana@example.org" in browser.find_element(By.CSS_SELECTOR, "ol.messages").text

    browser.find_element(By.ID, "note").send_keys("Si contesta 1, llamar desde el centro.")
    click_and_wait_for_page(browser, browser.find_element(By.ID, "add-note"))
    text_of(browser, By.CSS_SELECTOR, "main", "Nota añadida.")
    note = browser.find_element(By.CSS_SELECTOR, "ol.messages .note").text
    assert "Si contesta 1, llamar desde el centro." in note and "ana@example.org" in note
    screenshots(browser, "thread")

    click_and_wait_for_page(browser, browser.find_element(By.ID, "mark-handled"))
    text_of(browser, By.CSS_SELECTOR, "main", "Marcada como atendida.")
    assert not browser.find_elements(By.CSS_SELECTOR, "nav .badge")
    browser.get(f"{live_server}/staff/inbox")
    remaining = browser.find_elements(By.CSS_SELECTOR, "ol.threads > li")
    assert len(remaining) == 3 and all("4321" not in t.text for t in remaining)

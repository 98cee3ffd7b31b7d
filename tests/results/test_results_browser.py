"""The results page in headless Chromium: sign in as policy, open a survey, break down, download."""

from __future__ import annotations

import time

import pytest

from engage import db
from engage.services.accounts import create_user
from tests.browser import sign_in as signed_in
from tests.browser import text_of, wait_for_file
from tests.results.conftest import seed_population

PASSWORD = "policy team password"


def test_policy_signs_in_breaks_down_by_state_and_downloads_csv(app, seed, live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seed_population(seed)
    with app.app_context(), db.transaction() as session:
        create_user(session, "policy@example.org", PASSWORD, "policy")

    browser.get(f"{live_server}/results/working-conditions")
    assert "/login" in browser.current_url  # not signed in: sent to the sign-in page
    browser.find_element(By.NAME, "email").send_keys("policy@example.org")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    assert browser.current_url.endswith("/results/working-conditions")
    assert "Condiciones de trabajo" in text_of(browser, By.TAG_NAME, "h1", "Condiciones de trabajo")
    charts = browser.find_elements(By.CSS_SELECTOR, "section.question table.chart svg.bar")
    assert charts, "each question is drawn as a bar chart"
    on_time = browser.find_element(By.ID, "q-first_season").text
    assert "Sí" in on_time and "No" in on_time

    Select(browser.find_element(By.ID, "by")).select_by_value("state")
    deadline = time.monotonic() + 10
    while "by=state" not in browser.current_url and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "by=state" in browser.current_url
    section = text_of(browser, By.ID, "q-first_season", "Florida")
    assert "California" in section and "Florida" in section
    # Three workers in WA: their counts are hidden, and the page says why.
    assert "oculto (menos de 11" in browser.find_element(By.ID, "q-hours_per_day").text

    browser.find_element(By.ID, "download-csv").click()
    csv_file = wait_for_file(browser.downloads, "*.csv")
    data = csv_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads the accents
    header = data[3:].decode("utf-8").splitlines()[0]
    assert header == "question_id,question,state,value,label,count,percent,suppressed"
    assert not browser.find_elements(By.ID, "download-responses")  # staff only


def test_admin_sees_the_snapshot_asks_for_a_new_one_and_a_refused_breakdown_says_why(
    app, seed, live_server, browser
):
    from selenium.webdriver.common.by import By

    for _ in range(40):
        seed.response({"state": "FL", "first_season": "yes"}, profile={"state": "FL"})
    seed.response({"state": "TX", "first_season": "no"}, profile={"state": "TX"})
    with app.app_context(), db.transaction() as session:
        create_user(session, "admin@example.org", PASSWORD, "admin")

    browser.get(f"{live_server}/login?next=/results/working-conditions")
    browser.find_element(By.NAME, "email").send_keys("admin@example.org")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    note = text_of(browser, By.ID, "snapshot", "Resultados al")
    assert "al menos 11" in note
    # Nobody new since the snapshot the page just read: not updated, and the page says why.
    browser.find_element(By.ID, "take-snapshot").click()
    refused = text_of(browser, By.ID, "snapshot-refused", "11")
    assert "No se actualizó" in refused
    # One worker in TX would be singled out by a breakdown by state.
    browser.get(f"{live_server}/results/working-conditions?by=state")
    message = text_of(browser, By.ID, "refused", "11")
    assert "menos de 11 personas" in message
    assert "TX" not in browser.find_element(By.ID, "q-first_season").text


def sign_in(browser, live_server: str, email: str, path: str) -> None:
    """Sign in and wait for `path` itself (its elements, not the sign-in page's going stale)."""
    signed_in(browser, live_server, path, email, PASSWORD)


def page_overflow(browser) -> int:
    """How far the page runs past what the window shows beside its scroll bar, in CSS pixels
    (0 or less: nothing to scroll sideways)."""
    return browser.execute_script(
        "const page = document.documentElement;"
        "return Math.max(page.scrollWidth - page.clientWidth, page.scrollWidth - innerWidth)"
    )


@pytest.mark.parametrize("query", ["by=state", "by=state&by=crop"])
def test_results_fit_a_phone_and_groups_show_their_labels(app, seed, live_server, browser, query):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seed_population(seed)
    with app.app_context(), db.transaction() as session:
        create_user(session, "policy@example.org", PASSWORD, "policy")
    browser.set_window_size(390, 844)
    sign_in(browser, live_server, "policy@example.org", f"/results/working-conditions?{query}")
    text_of(browser, By.TAG_NAME, "h1", "Condiciones de trabajo")
    assert browser.execute_script("return window.innerWidth") == 390
    assert page_overflow(browser) <= 0, "the page scrolls sideways on a 390 px phone"

    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#q-first_season h3")]
    assert any(h.startswith("California") for h in headings), headings
    assert any(h.startswith("Florida") for h in headings), headings
    assert not [h for h in headings if h.split(" · ")[0] in ("CA", "FL", "_other")], headings
    # Washington (3) and the unknown (8) are merged; the page says what that group is.
    assert any(h.startswith("Otro o desconocido") for h in headings), headings
    chosen = Select(browser.find_element(By.ID, "by")).first_selected_option.text
    assert chosen == "¿En qué estado trabaja ahora?"
    # Each answer is a row: its label, its bar, its number, inside the window.
    row = browser.find_element(By.CSS_SELECTOR, "#q-first_season table.chart tbody tr")
    assert row.find_element(By.TAG_NAME, "th").text == "Sí"
    assert row.rect["x"] + row.rect["width"] <= 390

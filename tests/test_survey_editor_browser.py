"""The survey editor in headless Chromium: a staff member writes a two-language survey, sees the
check and the SMS cost as they type, finds the draft after a reload, publishes, and the
keyword then starts the survey through /twilio/messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.models import SurveyDraft
from engage.services.accounts import create_user
from engage.services.web_surveys import document_of
from tests.browser import sign_in

PASSWORD = "staff member password"
SCREENSHOTS = Path("/tmp")


@pytest.fixture
def app(twilio_app):
    app = twilio_app()
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", PASSWORD, "staff")
    return app


def wait(browser, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def problems_beside(browser, path: str) -> str:
    from selenium.webdriver.common.by import By

    holder = browser.find_element(By.CSS_SELECTOR, f'[data-path="{path}"]')
    return holder.find_element(By.CSS_SELECTOR, ":scope > .field-problems").text


def type_into(browser, path: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.NAME, path)
    field.clear()
    field.send_keys(text)


def add_question(browser, kind: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "new-question-type")).select_by_value(kind)
    browser.find_element(By.ID, "add-question").click()


def wait_until_saved(browser) -> None:
    from selenium.webdriver.common.by import By

    wait(
        browser,
        lambda b: b.find_element(By.ID, "save-status").text.startswith("Borrador guardado"),
    )


def screenshot(browser, name: str, width: int) -> None:
    """The whole editor at this width (the window as tall as the page)."""
    browser.set_window_size(width, 900)
    time.sleep(0.3)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(height + 150, 12000))
    time.sleep(0.3)
    browser.save_screenshot(str(SCREENSHOTS / f"editor-{name}.png"))
    browser.set_window_size(1280, 900)


def test_staff_writes_checks_reloads_and_publishes_a_survey(app, live_server, browser, fake_twilio):
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    sign_in(browser, live_server, "/staff/surveys", "staff@example.org", PASSWORD)

    browser.find_element(By.ID, "new-survey").click()
    wait(browser, lambda b: b.current_url.endswith("/staff/surveys/new"))
    browser.find_element(By.ID, "id").send_keys("salud-campo")
    browser.find_element(By.ID, "title").send_keys("Salud en el campo")
    checked = {
        box.get_attribute("value")
        for box in browser.find_elements(By.CSS_SELECTOR, "input[name=languages]:checked")
    }
    assert checked == {"es", "en"}
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait(browser, lambda b: b.current_url.endswith("/staff/surveys/salud-campo/edit"))
    wait(browser, lambda b: b.find_element(By.ID, "editor").get_attribute("data-ready"))

    type_into(browser, "title.en", "Health in the fields")
    type_into(browser, "keywords.es", "SALUD")
    type_into(browser, "keywords.en", "HEALTH")

    add_question(browser, "choice")
    type_into(browser, "questions.0.id", "crop")
    type_into(browser, "questions.0.text.es", "¿Qué cosecha ahora?")
    type_into(browser, "questions.0.text.en", "What do you harvest now?")
    for i, (value, es, en) in enumerate(
        [("berries", "Fresas", "Berries"), ("other", "Otra", "Other")]
    ):
        type_into(browser, f"questions.0.choices.{i}.value", value)
        type_into(browser, f"questions.0.choices.{i}.label.es", es)
        type_into(browser, f"questions.0.choices.{i}.label.en", en)

    add_question(browser, "yes_no")
    type_into(browser, "questions.1.id", "water")
    type_into(browser, "questions.1.text.es", "¿Tiene agua útil para beber?")
    # The English text is left empty: the check says so beside the question's text.
    wait(browser, lambda b: "falta la traducción «en»" in problems_beside(b, "questions.1.text"))
    water_costs = browser.find_element(By.CSS_SELECTOR, "#question-1 > ul.costs")
    wait(browser, lambda b: "UCS-2 por: ú" in water_costs.text)
    assert "es" in water_costs.text and "segmento" in water_costs.text
    screenshot(browser, "1280", 1280)
    screenshot(browser, "390", 390)

    type_into(browser, "questions.1.text.en", "Do you have water fit to drink?")
    wait(browser, lambda b: problems_beside(b, "questions.1.text") == "")

    add_question(browser, "number")
    type_into(browser, "questions.2.id", "hours")
    type_into(browser, "questions.2.text.es", "¿Cuántas horas trabajó ayer?")
    type_into(browser, "questions.2.text.en", "How many hours did you work yesterday?")
    type_into(browser, "questions.2.min", "0")
    type_into(browser, "questions.2.max", "24")
    summary = browser.find_element(By.ID, "summary-count")
    wait(browser, lambda b: summary.text.startswith("Sin problemas"))
    wait_until_saved(browser)

    typed = browser.execute_script("return window.engageEditor.documentFromForm()")
    browser.refresh()
    wait(browser, lambda b: b.find_element(By.ID, "editor").get_attribute("data-ready"))
    assert browser.find_element(By.NAME, "questions.2.text.es").get_attribute("value") == (
        "¿Cuántas horas trabajó ayer?"
    )
    assert browser.execute_script("return window.engageEditor.documentFromForm()") == typed

    browser.find_element(By.ID, "publish").click()
    wait(browser, lambda b: b.current_url.endswith("/staff/surveys/salud-campo"))
    assert "Publicada como versión" in browser.find_element(By.TAG_NAME, "main").text
    with app.app_context():
        draft = db.session().get(SurveyDraft, "salud-campo")
        # The form posted without the script's help makes the same document as the script.
        assert document_of(draft.text) == typed

    client = app.test_client()
    token = fake_twilio.auth_token
    post_signed(client, token, "/twilio/messages", inbound_form("+15551230001", "SALUD"))
    post_signed(client, token, "/twilio/messages", inbound_form("+15551230001", "1"))
    bodies = [r.get("Body") for r in fake_twilio.requests]
    assert any("¿Qué cosecha ahora?" in body and "1 Fresas" in body for body in bodies), bodies

"""A survey from nothing to a worker's phone, in headless Chromium, as a staff member does it:
sign in, write a Spanish and Kreyòl survey with a choice, a yes/no and a number question, see a
problem beside its field come and go and a UCS-2 warning for "ú", send the Kreyòl texts to a
translator as a PO file and take them back, try the draft in the simulator in both languages
(a miss, AYUDA, SALTAR, the closing), publish, and find its keyword working by SMS."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po, write_po
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.models import Conversation, SurveyVersion
from tests.browser import sign_in as browser_sign_in
from tests.browser import text_of, wait_for_file
from tests.test_simulator_browser import Page
from tests.test_survey_editor_browser import (
    PASSWORD,
    add_question,
    problems_beside,
    type_into,
    wait,
    wait_until_saved,
)
from tests.test_survey_editor_browser import app as app  # noqa: F401 (fixtures)

SURVEY = "rekot-2027"
# What the translator writes, by the PO file's context (the field's path).
KREYOL = {
    "title": "Rekòt",
    "keywords": "REKOT",
    "questions.crop.text": "Ki rekòt w ap fè kounye a?",
    "questions.crop.choices.berries.label": "Frèz",
    "questions.crop.choices.other.label": "Lòt",
    "questions.water.text": "Èske gen dlo pou bwè?",
    "questions.hours.text": "Konbyen èdtan ou te travay yè?",
    "closing": "Mèsi.",
}


def sign_in(browser, live_server, path: str) -> None:
    browser_sign_in(browser, live_server, path, "staff@example.org", PASSWORD)


def write_the_survey(browser, live_server) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/staff/surveys/new")
    browser.find_element(By.ID, "id").send_keys(SURVEY)
    browser.find_element(By.ID, "title").send_keys("Cosecha")
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=languages]"):
        if (box.get_attribute("value") in ("es", "ht")) != box.is_selected():
            box.click()
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait(browser, lambda b: b.current_url.endswith(f"/staff/surveys/{SURVEY}/edit"))
    wait(browser, lambda b: b.find_element(By.ID, "editor").get_attribute("data-ready"))
    type_into(browser, "keywords.es", "COSECHA")

    add_question(browser, "choice")
    type_into(browser, "questions.0.id", "crop")
    type_into(browser, "questions.0.text.es", "¿Qué cosecha ahora?")
    for i, (value, label) in enumerate([("berries", "Fresas"), ("other", "Otra")]):
        type_into(browser, f"questions.0.choices.{i}.value", value)
        type_into(browser, f"questions.0.choices.{i}.label.es", label)
    add_question(browser, "yes_no")
    type_into(browser, "questions.1.id", "water")
    # A text with "ú": the cost under it names the character that makes it UCS-2.
    type_into(browser, "questions.1.text.es", "¿Tiene agua útil para beber?")
    costs = browser.find_element(By.CSS_SELECTOR, "#question-1 > ul.costs")
    wait(browser, lambda b: "UCS-2 por: ú" in costs.text)
    add_question(browser, "number")
    type_into(browser, "questions.2.id", "hours")
    type_into(browser, "questions.2.text.es", "¿Cuántas horas trabajó ayer?")
    type_into(browser, "questions.2.min", "0")
    # A problem appears beside its field, and goes when it is fixed.
    type_into(browser, "questions.2.max", "-5")
    wait(browser, lambda b: "es mayor que el máximo" in problems_beside(b, "questions.2.max"))
    type_into(browser, "questions.2.max", "24")
    wait(browser, lambda b: problems_beside(b, "questions.2.max") == "")
    type_into(browser, "closing.es", "Gracias.")
    # Kreyòl is still missing everywhere: the translator's turn.
    wait(browser, lambda b: "falta la traducción «ht»" in problems_beside(b, "questions.1.text"))
    wait_until_saved(browser)


def translate_into_kreyol(browser, live_server, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/staff/surveys/{SURVEY}/translations")
    browser.find_element(By.ID, "po-ht").click()
    exported = wait_for_file(browser.downloads, "*.po")
    with exported.open("rb") as file:
        catalog = read_po(file)
    assert {m.context for m in catalog if m.id} >= set(KREYOL)
    for message in catalog:
        if message.context in KREYOL:
            message.string = KREYOL[message.context]
    translated = tmp_path / "translated-ht.po"
    with translated.open("wb") as file:
        write_po(file, catalog)
    browser.find_element(By.ID, "file").send_keys(str(translated))
    browser.find_element(By.CSS_SELECTOR, "form.upload button").click()
    assert "Frèz" in text_of(browser, By.ID, "changes", "Frèz")
    browser.find_element(By.ID, "save").click()
    text_of(browser, By.ID, "saved", "guardados")


def try_in_the_simulator(browser, live_server) -> None:
    browser.get(f"{live_server}/staff/simulator?survey={SURVEY}&draft=1")
    page = Page(browser)
    page.press('.sim-keywords:not([hidden]) button[data-text="COSECHA"]')
    page.type("1")  # consent
    assert page.last_reply() == "¿Qué cosecha ahora?\n1 Fresas\n2 Otra"
    page.type("Marte")  # a miss: the hint, then the question again
    assert page.last_reply().startswith("Por favor, responda con un numero del 1 al 2.")
    page.press('.sim-help button[data-text="AYUDA"]')
    assert "1-888-373-7888" in page.last_reply()
    page.press('.sim-help button[data-text="SALTAR"]')
    assert page.last_reply().startswith("¿Tiene agua útil para beber?")
    page.type("1")
    assert page.last_reply().startswith("¿Cuántas horas trabajó ayer?")
    page.type("9")
    assert page.last_reply().startswith("Gracias.")

    page.find("#sim-reset").click()
    page.press('.sim-keywords:not([hidden]) button[data-text="REKOT"]')
    page.type("1")
    assert page.last_reply() == "Ki rekòt w ap fè kounye a?\n1 Frèz\n2 Lòt"
    page.type("Mas")
    hint = page.last_reply()
    assert "Ki rekòt" in hint and not hint.startswith("Ki rekòt")  # the hint comes first
    page.press('.sim-help button[data-text="AYUDA"]')
    assert "1-888-373-7888" in page.last_reply()
    page.press('.sim-help button[data-text="SALTAR"]')
    assert page.last_reply().startswith("Èske gen dlo pou bwè?")
    page.type("2")
    page.type("10")
    assert page.last_reply().startswith("Mèsi.")
    assert all(b.find_element(page.by.CSS_SELECTOR, ".cost").text for b in page.bubbles())


@pytest.mark.parametrize("database", ["postgresql"])
def test_a_staff_member_writes_translates_tries_and_publishes_a_survey(
    app,  # noqa: F811
    live_server,
    browser,
    fake_twilio,
    tmp_path,
):
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    sign_in(browser, live_server, "/staff/surveys")
    write_the_survey(browser, live_server)
    translate_into_kreyol(browser, live_server, tmp_path)
    try_in_the_simulator(browser, live_server)
    with app.app_context():
        assert not db.session().query(SurveyVersion).filter_by(survey_id=SURVEY).count()

    browser.get(f"{live_server}/staff/surveys/{SURVEY}/edit")
    wait(browser, lambda b: b.find_element(By.ID, "editor").get_attribute("data-ready"))
    browser.find_element(By.ID, "publish").click()
    wait(browser, lambda b: b.current_url.endswith(f"/staff/surveys/{SURVEY}"))
    assert "Publicada como versión" in browser.find_element(By.TAG_NAME, "main").text

    # The keyword now works for a real worker, by SMS, in Kreyòl.
    client = app.test_client()
    token = fake_twilio.auth_token
    post_signed(client, token, "/twilio/messages", inbound_form("+15551230077", "REKOT"))
    post_signed(client, token, "/twilio/messages", inbound_form("+15551230077", "1"))
    bodies = [r.get("Body") or "" for r in fake_twilio.requests]
    assert any("Ki rekòt w ap fè kounye a?" in body for body in bodies), bodies
    with app.app_context():
        real = db.session().query(Conversation).filter_by(survey_id=SURVEY, is_simulated=False)
        assert real.one().language == "ht"

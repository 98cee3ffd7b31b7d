"""Translating a draft in headless Chromium: staff export the Kreyòl PO file, a translator fills
it, staff upload it, see what it changes, and save it into the draft."""

from __future__ import annotations

from babel.messages.pofile import read_po, write_po

from engage import db
from engage.services.accounts import create_user
from tests.browser import sign_in, text_of, wait_for_file
from tests.test_survey_files import DRAFT_ID, draft_document, draft_text, make_draft

PASSWORD = "staff member password"
KREYOL = {
    "questions.state.choices.CA.label": "Kalifòni",
    "questions.paid.text": "Èske yo peye w alè?",
}


def test_staff_export_the_kreyol_po_upload_it_translated_and_save_it(
    app, live_server, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    make_draft(app)
    original = draft_text(app)
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", PASSWORD, "staff")

    path = f"/staff/surveys/{DRAFT_ID}/translations"
    sign_in(browser, live_server, path, "staff@example.org", PASSWORD)
    assert "Traducciones de harvest-pay" in text_of(browser, By.TAG_NAME, "h1", "Traducciones")

    browser.find_element(By.ID, "po-ht").click()
    exported = wait_for_file(browser.downloads, "*.po")
    assert exported.name == f"{DRAFT_ID}-ht.po"
    with exported.open("rb") as file:
        catalog = read_po(file)
    assert catalog.locale_identifier == "ht"
    assert {m.context for m in catalog if m.id and not m.string} == set(KREYOL)
    for message in catalog:
        if message.context in KREYOL:
            message.string = KREYOL[message.context]
    translated = tmp_path / "harvest-pay-ht-translated.po"
    with translated.open("wb") as file:
        write_po(file, catalog)

    browser.find_element(By.ID, "file").send_keys(str(translated))
    browser.find_element(By.CSS_SELECTOR, "form.upload button").click()
    changes = text_of(browser, By.ID, "changes", "Kalifòni")
    assert "questions.paid.text" in changes and "Èske yo peye w alè?" in changes
    assert "falta" in changes  # both texts were missing in Kreyòl
    assert draft_text(app) == original  # a preview saves nothing

    browser.find_element(By.ID, "save").click()
    assert "2 textos guardados" in text_of(browser, By.ID, "saved", "guardados")
    document = draft_document(app)
    assert document["questions"][0]["choices"][1]["label"]["ht"] == "Kalifòni"
    assert document["questions"][1]["text"]["ht"] == "Èske yo peye w alè?"
    assert document["title"]["ht"] == "Peman rekòt"

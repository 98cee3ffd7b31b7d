"""The contacts pages in headless Chromium: import a file with two bad rows (both shown by line,
nothing saved), fix it and import it; the list and a contact with numbers masked; a reveal that
hides itself again. Screenshots of the list and a contact at 1280 and 390 px go to
$ENGAGE_SCREENSHOTS (or the test's own folder)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from sqlalchemy import func, select

from engage import db
from engage.models import Contact, ContactImport
from engage.services import contact_pages
from tests.browser import sign_in, text_of
from tests.conftest import WEB_PASSWORD
from tests.test_contact_pages import FULL, HEADER, OTHER, contact_id, inbound

BAD = (
    HEADER
    + f"{FULL},es,clinica-2026,FL,citrus\n"
    + "555-01,es,clinica-2026,FL,berries\n"
    + f"{OTHER},Spanish,feria,WA,apples\n"
    + "+13055550102,ht,feria,FL,tree_fruit\n"
)
# Chromium and its driver exactly as the results page's browser test starts them.

FIXED = BAD.replace("555-01,", "+13055550103,").replace("Spanish", "en")


def count(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


def screenshot(browser, name: str, width: int, folder: Path) -> Path:
    """The whole page at this width."""
    browser.set_window_size(width, 900)
    frame = browser.execute_script("return window.outerHeight - window.innerHeight")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height, 600), 6000) + frame)
    path = folder / f"contacts-{name}-{width}.png"
    browser.save_screenshot(str(path))
    return path


def test_import_list_contact_and_reveal_in_a_browser(
    web_app, live_server, browser, tmp_path, monkeypatch
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setattr(contact_pages, "REVEAL_SECONDS", 3)
    folder = Path(os.environ.get("ENGAGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    browser.set_window_size(1280, 900)
    sign_in(browser, live_server, "/staff/contacts/import", "staff@example.org", WEB_PASSWORD)
    text_of(browser, By.TAG_NAME, "h1", "Importar contactos")

    bad = tmp_path / "contactos.csv"
    bad.write_text(BAD, encoding="utf-8")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    problems = text_of(browser, By.ID, "problems", "2 filas con errores")
    assert "Línea 3: este número tiene muy pocas o demasiadas cifras" in problems
    assert "Línea 4: «Spanish» no es un código de idioma" in problems
    assert "Línea 2" not in problems and "Línea 5" not in problems
    assert count(web_app, Contact) == 0 and count(web_app, ContactImport) == 0  # nothing saved

    fixed = tmp_path / "contactos-corregido.csv"
    fixed.write_text(FIXED, encoding="utf-8")
    browser.find_element(By.ID, "file").send_keys(str(fixed))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    preview = text_of(browser, By.ID, "preview", "Contactos nuevos")
    assert re.search(r"Contactos nuevos\s+4", preview), preview
    assert count(web_app, Contact) == 0  # still nothing before the confirmation
    browser.find_element(By.ID, "confirm-import").click()
    summary = text_of(browser, By.ID, "summary", "Añadidos")
    assert re.search(r"Añadidos\s+4", summary), summary
    assert count(web_app, Contact) == 4

    # Messages for the contact's page: one urgent, one hostile.
    inbound(web_app, FULL, "Me quitaron el pasaporte y no me dejan salir")
    inbound(web_app, FULL, "<script>alert('x')</script> ¿me pueden ayudar?")
    inbound(web_app, OTHER, "WORK", channel="whatsapp")

    browser.find_element(By.LINK_TEXT, "Ver los contactos").click()
    table = text_of(browser, By.CSS_SELECTOR, "table.contacts", "•••• 0100")
    assert "•••• 0101" in table and "•••• 0102" in table
    assert FULL not in browser.page_source and "3055550100" not in browser.page_source
    shots = [screenshot(browser, "list", width, folder) for width in (1280, 390)]

    cid = contact_id(web_app, FULL)
    browser.set_window_size(1280, 900)
    browser.find_element(By.LINK_TEXT, f"contact-{cid}").click()
    thread = text_of(browser, By.ID, "thread", "pasaporte")
    assert "<script>alert('x')</script> ¿me pueden ayudar?" in thread  # shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "#thread script")
    assert "urgente" in thread
    assert (
        "¿Podemos llamarle? 1 Sí 2 No"
        in browser.find_element(By.ID, "call").find_element(By.XPATH, "..").text
    )
    shots += [screenshot(browser, "contact", width, folder) for width in (1280, 390)]
    assert all(path.stat().st_size > 10_000 for path in shots)

    browser.set_window_size(1280, 900)
    browser.find_element(By.ID, "reason").send_keys("Pidió que la llamemos: teme por su seguridad")
    browser.find_element(By.CSS_SELECTOR, "#reveal-form button").click()
    assert text_of(browser, By.ID, "revealed-number", FULL) == FULL
    # After its time the number hides itself and the page goes back to the contact.
    WebDriverWait(browser, 15).until(lambda b: b.current_url.endswith(f"/staff/contacts/{cid}"))
    text_of(browser, By.ID, "masked-number", "•••• 0100")
    assert FULL not in browser.page_source
    browser.back()  # the browser's history does not bring the number back
    time.sleep(1)
    assert FULL not in browser.page_source

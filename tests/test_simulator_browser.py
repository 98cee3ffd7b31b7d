"""The simulator in headless Chromium: a staff member plays a survey in Spanish and in English,
by mouse and by keyboard, sees what each reply costs, resets, tries a draft at phone width, and
calls a survey offered by phone."""

from __future__ import annotations

import time

from tests.browser import sign_in as browser_sign_in
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, WEB_PASSWORD, publish
from tests.test_simulator import DRAFT, add_draft
from tests.test_simulator_phone import VOICE_SURVEYS

SCREENSHOTS = "/tmp/simulator-{name}.png"


def wait_until(condition, timeout: float = 15, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(message or "timed out")


class Page:
    def __init__(self, browser) -> None:
        from selenium.webdriver.common.by import By

        self.browser = browser
        self.by = By

    def find(self, selector: str):
        return self.browser.find_element(self.by.CSS_SELECTOR, selector)

    def find_all(self, selector: str):
        return self.browser.find_elements(self.by.CSS_SELECTOR, selector)

    def replies(self) -> list[str]:
        return [e.find_element(self.by.CSS_SELECTOR, ".text").text for e in self.bubbles()]

    def bubbles(self):
        return self.find_all("#sim-chat .bubble.from-engage")

    def chat_items(self) -> int:
        return len(self.find_all("#sim-chat li"))

    def wait_for_answer(self, before: int) -> None:
        """Until the message and its replies (or the note that none came) are shown."""
        wait_until(
            lambda: self.chat_items() >= before + 2 and self.find("#sim-send").is_enabled(),
            message=f"no reply after {before} items",
        )

    def type(self, text: str) -> None:
        """Type a message and press Enter, as a keyboard user does."""
        from selenium.webdriver.common.keys import Keys

        before = self.chat_items()
        box = self.find("#sim-text")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)
        self.wait_for_answer(before)

    def press(self, selector: str) -> None:
        before = self.chat_items()
        self.find(selector).click()
        self.wait_for_answer(before)

    def last_reply(self) -> str:
        return self.replies()[-1]

    def last_cost(self) -> str:
        return self.bubbles()[-1].find_element(self.by.CSS_SELECTOR, ".cost").text

    def screenshot(self, name: str, width: int) -> None:
        height = self.browser.execute_script("return document.documentElement.scrollHeight")
        self.browser.set_window_size(width, max(height + 140, 700))
        self.browser.save_screenshot(SCREENSHOTS.format(name=name))


def sign_in(browser, live_server, path: str) -> Page:
    from selenium.webdriver.common.by import By

    browser_sign_in(browser, live_server, path, "staff@example.org", WEB_PASSWORD)
    wait_until(lambda: bool(browser.find_elements(By.ID, "sim-chat")))
    return Page(browser)


def test_staff_play_a_survey_in_both_languages_see_costs_and_reset(web_app, live_server, browser):
    from selenium.webdriver.support.ui import Select

    add_draft(web_app, DRAFT)
    browser.set_window_size(1280, 900)
    page = sign_in(browser, live_server, "/staff/simulator?lang=es")
    assert page.find("h1").text == "Simulador"
    Select(page.find("#sim-survey")).select_by_value("housing-check")
    buttons = [b.text for b in page.find_all(".sim-keywords:not([hidden]) button")]
    assert buttons == ["Español: VIVIENDA", "English: HOUSING"]

    # Spanish: the keyword by its button, then the conversation by keyboard.
    page.press('.sim-keywords:not([hidden]) button[data-text="VIVIENDA"]')
    assert page.last_reply().startswith("Centro Campesino le pregunta sobre su trabajo.")
    assert page.last_cost() == "GSM-7 · 2 segmentos"
    page.type("1")
    assert page.last_reply() == "¿En qué estado trabaja?\n1 Florida\n2 California\n3 Otro"
    assert page.last_cost() == "GSM-7 · 1 segmento"
    page.type("Marte")  # a miss: the hint and the question again
    assert page.last_reply().startswith("Por favor, responda con un numero del 1 al 3.")
    # Beside the phone: what the survey knows of the simulated worker now.
    state = page.find("#sim-state").text
    assert "Consentimiento\ndado" in state and "Encuesta\nhousing-check" in state
    assert "Espera\nuna respuesta a la pregunta state" in state
    assert "Respuestas no entendidas seguidas\n1" in state
    page.press('.sim-help button[data-text="AYUDA"]')
    assert "1-888-373-7888" in page.last_reply()
    assert page.last_cost() == "GSM-7 · 3 segmentos"
    page.press('.sim-help button[data-text="SALTAR"]')
    assert page.last_reply() == "¿Tiene agua limpia en su vivienda?\n1 Si 2 No"
    page.type("1")
    assert page.last_reply() == "Gracias.\n\nPuede borrar estos mensajes de su teléfono."
    assert len(page.bubbles()) == 6
    assert all(b.find_element(page.by.CSS_SELECTOR, ".cost").text for b in page.bubbles())
    workers = [e.text for e in page.find_all("#sim-chat .from-worker .text")]
    assert workers == ["VIVIENDA", "1", "Marte", "AYUDA", "SALTAR", "1"]
    page.screenshot("desktop-es", 1280)

    # Reset: a new simulated worker, who gets consent again, this time in English.
    browser.set_window_size(1280, 900)
    page.find("#sim-reset").click()
    assert not page.bubbles()
    assert "trabajador simulado nuevo" in page.find("#sim-chat").text
    assert {d.text for d in page.find_all("#sim-state dd")} == {"—"}
    page.press('.sim-keywords:not([hidden]) button[data-text="HOUSING"]')
    assert page.last_reply().startswith("Centro Campesino asks about your work.")
    page.type("1")
    page.type("Mars")
    assert page.last_reply().startswith("Please answer with a number from 1 to 3.")
    page.type("HELP")
    assert "call 911" in page.last_reply()
    page.type("SKIP")
    assert page.last_reply() == "Do you have clean water where you live?\n1 Yes 2 No"
    page.type("2")
    assert page.last_reply() == "Thank you.\n\nYou may delete these messages from your phone."

    # What a worker writes is shown as text, never run as HTML.
    page.type("<script>window.pwned = 1</script><b>hola</b>")
    assert page.find_all("#sim-chat .from-worker .text")[-1].text == (
        "<script>window.pwned = 1</script><b>hola</b>"
    )
    assert not page.find_all("#sim-chat script, #sim-chat b")
    assert browser.execute_script("return window.pwned === undefined")

    # WhatsApp: the same reply, not billed by segment.
    page.find('input[name="channel"][value="whatsapp"]').click()
    page.type("HOUSING")
    assert page.last_cost() == "WhatsApp: no se cobra por segmento"


def test_a_draft_at_phone_width_by_keyboard(web_app, live_server, browser):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    add_draft(web_app, DRAFT)
    browser.set_window_size(390, 844)
    page = sign_in(browser, live_server, "/staff/simulator?survey=water-check&draft=1&lang=en")
    chosen = Select(page.find("#sim-survey")).first_selected_option
    assert chosen.get_attribute("value") == "water-check" and "draft" in chosen.text
    assert [b.text for b in page.find_all(".sim-keywords:not([hidden]) button")] == [
        "Español: AGUA",
        "English: WATER",
    ]
    # By keyboard: focus the English keyword's button and press Enter.
    button = page.find('.sim-keywords:not([hidden]) button[data-text="WATER"]')
    browser.execute_script("arguments[0].focus()", button)
    before = page.chat_items()
    button.send_keys(Keys.ENTER)
    page.wait_for_answer(before)
    assert page.last_reply().endswith("Join? 1=Yes 2=No")
    page.type("1")
    assert page.last_reply() == "Where do you get water?\n1 Tap\n2 Bottle\n3 None"
    page.type("IDIOMA")
    assert "1 Español" in page.last_reply() and "2 English" in page.last_reply()
    page.type("1")
    assert page.last_reply() == "¿De dónde toma agua?\n1 Llave\n2 Botella\n3 Ninguna"
    assert page.last_cost() == "UCS-2 · 1 segment"
    page.type("2")
    page.type("SALTAR")
    assert (
        page.last_reply() == "Gracias por responder.\n\nPuede borrar estos mensajes de su teléfono."
    )
    # Nothing runs off a phone's screen.
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    page.screenshot("phone-en", 390)
    browser.set_window_size(390, 844)
    # Choosing another survey starts again with a new worker.
    Select(page.find("#sim-survey")).select_by_value("")
    assert not page.bubbles()
    shown = [b.text for b in page.find_all(".sim-keywords:not([hidden]) button")]
    assert "English: HOUSING" in shown and "English: WATER" not in shown


def test_a_call_by_keypad_at_phone_width(web_app, live_server, browser):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    publish(web_app, [SHIPPED_SURVEYS, TEST_SURVEYS, VOICE_SURVEYS])
    browser.set_window_size(390, 844)
    page = sign_in(browser, live_server, "/staff/simulator?lang=es&survey=llamada")
    page.find('input[name="channel"][value="voice"]').click()
    assert page.find("#sim-call").is_displayed()
    assert not page.find("#sim-chat").is_displayed() and not page.find("#sim-text").is_displayed()
    assert page.find("#sim-help-phone").is_displayed()
    assert [b.text for b in page.find_all(".keypad button")] == list("123456789*0#")
    assert not any(b.is_enabled() for b in page.find_all(".keypad button"))  # no call yet

    def heard() -> str:
        return page.find("#sim-heard").text

    def press(key: str, expected: str) -> None:
        page.find(f'.keypad button[data-key="{key}"]').click()
        wait_until(lambda: expected in heard(), message=f"{expected!r} not heard")

    page.find('button[data-action="start"]').click()
    wait_until(lambda: "Para español, oprima 1." in heard(), message="no language menu")
    assert page.find("#sim-waits").text == "Espera una tecla."
    press("1", "Le llama Centro Campesino.")
    assert page.find("#sim-pressed").text == "Oprimió 1"
    # By keyboard: Enter on the focused key.
    one = page.find('.keypad button[data-key="1"]')
    browser.execute_script("arguments[0].focus()", one)
    one.send_keys(Keys.ENTER)
    wait_until(lambda: "¿En qué estado trabaja?" in heard(), message="no first question")
    assert "Para Florida, oprima 2." in heard()
    assert all(b.is_enabled() for b in page.find_all(".keypad button"))
    press("2", "¿Le pagan a tiempo?")
    assert "¿En qué estado trabaja?" not in heard()
    press("1", "¿Cuántas horas trabajó ayer?")
    assert page.find("#sim-waits").text == "Espera teclas terminadas en # (# sola salta)."
    # Keys ended by #: the digits typed on the computer's keyboard gather in the display.
    page.find('.keypad button[data-key="1"]').send_keys("8")
    assert page.find("#sim-keys").text == "8"
    press("#", "¿Qué problemas tuvo?")
    assert page.find("#sim-pressed").text == "Oprimió 8#"
    state = page.find("#sim-state").text
    assert "Consentimiento\ndado" in state and "Encuesta\nllamada" in state
    # Nothing runs off a phone's screen.
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    page.screenshot("phone-call-es", 390)
    browser.set_window_size(390, 844)

    # A survey not offered by phone: the page says so instead of the keypad.
    Select(page.find("#sim-survey")).select_by_value("housing-check")
    refused = page.find("#sim-call-refused")
    assert refused.is_displayed()
    assert refused.text == "Esta encuesta no se ofrece por teléfono (voice:)."
    assert not page.find(".keypad").is_displayed()

"""Accounts in headless Chromium, on a phone-sized screen: an admin makes a staff account, the
link opens in another browser, the password is chosen, the authenticator app is set up (its
code computed here with pyotp), and the staff member lands on /staff."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select

from engage import db
from engage.db import utcnow
from engage.models import User
from engage.services.accounts import create_user
from engage.services.second_factor import enrol
from tests.browser import click_and_wait_for_page

ADMIN_PASSWORD = "admin team password"
STAFF_PASSWORD = "a staff member's own words"
PHONE = (390, 844)


def wait_for_path(browser, path: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda b: b.current_url.split("?")[0].endswith(path))


def fits_the_screen(browser) -> bool:
    """Nothing runs off a phone's screen sideways."""
    scroll, client = browser.execute_script(
        "const page = document.documentElement; return [page.scrollWidth, page.clientWidth]"
    )
    assert client <= PHONE[0]
    return scroll <= client


def test_admin_makes_a_staff_account_that_signs_in_with_its_app_and_lands_on_staff(
    app, live_server, browsers
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    app.config["WTF_CSRF_ENABLED"] = True
    app.config["ENGAGE_REQUIRE_TOTP"] = True
    admin_secret = pyotp.random_base32()
    earlier = utcnow() - timedelta(minutes=5)
    with app.app_context(), db.transaction() as session:
        admin = create_user(session, "admin@example.org", ADMIN_PASSWORD, "admin")
        code = pyotp.TOTP(admin_secret).at(earlier)
        vault = app.extensions["engage.vault"]
        assert enrol(session, admin, admin_secret, code, "127.0.0.1", vault=vault, now=earlier).user

    # The admin signs in (password, then the code) and makes the account.
    office = browsers()
    office.set_window_size(*PHONE)  # below the smallest --window-size headless takes
    office.get(f"{live_server}/admin/users")
    assert "/login" in office.current_url
    office.find_element(By.NAME, "email").send_keys("admin@example.org")
    office.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    click_and_wait_for_page(office, office.find_element(By.CSS_SELECTOR, "form.login button"))
    wait_for_path(office, "/login/totp")
    office.find_element(By.NAME, "code").send_keys(pyotp.TOTP(admin_secret).now())
    click_and_wait_for_page(office, office.find_element(By.CSS_SELECTOR, "form.login button"))
    wait_for_path(office, "/admin/users")
    form = office.find_element(By.CSS_SELECTOR, "form.account-new")
    form.find_element(By.NAME, "email").send_keys("rosa@example.org")
    Select(form.find_element(By.NAME, "role")).select_by_value("staff")
    click_and_wait_for_page(office, office.find_element(By.ID, "create-account"))
    link = office.find_element(By.ID, "link-url").get_attribute("value")
    assert link.startswith(f"{live_server}/set-password/")
    assert "rosa@example.org" in office.find_element(By.ID, "account-notice").text
    assert fits_the_screen(office)

    # Rosa opens the link on her own phone.
    phone = browsers()
    phone.set_window_size(*PHONE)
    phone.get(link)
    assert "rosa@example.org" in phone.find_element(By.TAG_NAME, "main").text
    phone.find_element(By.NAME, "password").send_keys(STAFF_PASSWORD)
    phone.find_element(By.NAME, "confirm").send_keys(STAFF_PASSWORD)
    click_and_wait_for_page(phone, phone.find_element(By.CSS_SELECTOR, "form.login button"))
    assert "Contraseña guardada" in phone.find_element(By.TAG_NAME, "h1").text
    click_and_wait_for_page(phone, phone.find_element(By.ID, "go-sign-in"))
    wait_for_path(phone, "/login")
    phone.find_element(By.NAME, "email").send_keys("rosa@example.org")
    phone.find_element(By.NAME, "password").send_keys(STAFF_PASSWORD)
    click_and_wait_for_page(phone, phone.find_element(By.CSS_SELECTOR, "form.login button"))
    wait_for_path(phone, "/login/totp/setup")
    assert fits_the_screen(phone)
    secret = phone.find_element(By.ID, "totp-secret").get_attribute("data-secret")
    shown = phone.find_element(By.ID, "totp-secret").text
    assert shown.replace(" ", "") == secret  # typed by hand from the page
    phone.find_element(By.NAME, "code").send_keys(pyotp.TOTP(secret).now())
    click_and_wait_for_page(phone, phone.find_element(By.CSS_SELECTOR, "form.login button"))
    wait_for_path(phone, "/staff")
    assert phone.find_element(By.TAG_NAME, "h1").text == "Lo que necesita atención"
    with app.app_context():
        rosa = db.session().scalar(select(User).where(User.email == "rosa@example.org"))
    assert rosa.role == "staff" and rosa.totp_secret_encrypted is not None

    # The admin's list shows it.
    office.get(f"{live_server}/admin/users")
    row = office.find_element(By.XPATH, "//tr[th[contains(., 'rosa@example.org')]]")
    assert "configurada" in row.text and "nunca" not in row.text
    assert fits_the_screen(office)

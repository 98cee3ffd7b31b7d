"""What every browser test needs: headless Chromium (Debian's), the app served on a free port,
and waits that hold until the page, the text or the download is really there."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def start_chromium(profile: Path, downloads: Path) -> Any:
    """A headless Chromium with a profile of its own, in Spanish, saving downloads to
    `downloads` (also kept on the driver as `.downloads`)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium and ChromeDriver are needed: make test installs them with apt-get")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--lang=es",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "intl.accept_languages": "es",
        },
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    return driver


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """The app on 127.0.0.1 and a free port, in a thread; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def click_and_wait_for_page(browser: Any, element: Any, timeout: float = 10) -> None:
    """Click what loads a new page, and wait until that page has loaded.

    The old page is marked in its own window object, and the wait is for a complete document
    without the mark. Watching an element of the old page go stale instead can fail while the
    page is being replaced ("Node with given id does not belong to the document")."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.engageOldPage = true")
    element.click()
    WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script(
            "return window.engageOldPage === undefined && document.readyState === 'complete'"
        )
    )


def text_of(browser: Any, by: str, value: str, expected: str, timeout: float = 10) -> str:
    """The element's text once it shows `expected`: after a click the page being left can still
    answer for a moment (its elements then go stale), so wait for the new one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(
        expected_conditions.text_to_be_present_in_element((by, value), expected)
    )
    return str(browser.find_element(by, value).text)


def wait_for_file(directory: Path, pattern: str, timeout: float = 20) -> Path:
    """The first file matching `pattern` that Chromium has finished downloading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in directory.glob(pattern) if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {pattern} downloaded into {directory}")


def sign_in(browser: Any, base: str, path: str, email: str, password: str) -> None:
    """Open `path`, sign in on the page it sends to, and wait for `path` itself.

    The sign-in page's own address names `path` (`?next=`), so a wait on the address alone
    can end before the sign-in has been posted."""
    from urllib.parse import urlsplit

    from selenium.webdriver.common.by import By

    browser.get(f"{base}{path}")
    assert urlsplit(browser.current_url).path == "/login"
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    click_and_wait_for_page(browser, browser.find_element(By.CSS_SELECTOR, "form.login button"))
    assert urlsplit(browser.current_url).path == urlsplit(path).path, browser.current_url

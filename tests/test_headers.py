"""Security headers on every page and download; nothing that holds worker data is cached."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_web_access import SURVEY, csrf_token, sign_in

TEMPLATES = Path(__file__).resolve().parent.parent / "engage" / "templates"

EXPECTED = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

# (method, path, signed in as, expected status)
ROUTES = [
    ("GET", "/login", None, 200),
    ("GET", "/results", None, 302),
    ("GET", f"/results/{SURVEY}/responses.csv", None, 401),
    ("GET", "/results", "policy", 200),
    ("GET", f"/results/{SURVEY}", "policy", 200),
    ("GET", f"/results/{SURVEY}?by=state", "policy", 200),
    ("GET", f"/results/{SURVEY}/export.csv", "policy", 200),
    ("GET", f"/results/{SURVEY}/export.xlsx?by=state", "policy", 200),
    ("GET", f"/results/{SURVEY}/export.json", "policy", 200),
    ("GET", f"/results/{SURVEY}/responses.csv", "policy", 403),
    ("GET", f"/results/{SURVEY}/responses.csv", "staff", 200),
    ("GET", "/results/no-such-survey", "staff", 404),
    ("GET", f"/results/{SURVEY}?by=employer", "staff", 400),
    ("GET", "/admin/audit", "admin", 200),
    ("GET", "/healthz", None, 200),
    ("POST", "/login", None, 400),
]


@pytest.mark.parametrize(("method", "path", "role", "status"), ROUTES)
def test_every_page_and_download_carries_the_headers_and_is_not_stored(
    web_app, method, path, role, status
):
    client = web_app.test_client()
    if role:
        assert sign_in(client, role).status_code == 302
    response = client.open(path, method=method)
    status_code, headers = response.status_code, response.headers
    response.close()
    assert status_code == status
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, (path, name)
    assert headers.get("Cache-Control") == "no-store", path


def test_a_failed_sign_in_is_not_stored_either(web_app):
    client = web_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": "policy@example.org", "password": "wrong", "csrf_token": token}
    )
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == EXPECTED["Content-Security-Policy"]


@pytest.mark.parametrize("filename", ["engage.css", "results.js"])
def test_the_apps_own_static_files_may_be_cached(web_app, filename):
    response = web_app.test_client().get(f"/static/{filename}")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_hold_nothing_inline_that_the_policy_would_block(template):
    source = (TEMPLATES / template).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", source), "inline <script>"
    assert "<style" not in source
    assert not re.search(r"\sstyle=", source), "style attribute"
    assert not re.search(r"\son[a-z]+=", source), "event handler attribute"
    assert "javascript:" not in source

"""The contacts pages: roles, CSRF, numbers masked everywhere but the reveal, every look-up,
reveal, opt-out and erasure audited and effective, worker text shown as text, imports checked
before anything is saved, filters, and keyset paging."""

from __future__ import annotations

import html as html_text
import io
import os
import pty
import re
import select as io_select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_client
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select, update

from engage import db
from engage.cli import main
from engage.models import AuditEntry, Contact, ContactImport, Conversation, Message
from engage.privacy import parse_sender
from engage.services import contact_imports, contact_pages
from engage.services.conversations import handle_inbound, settings_from
from tests.conftest import make_app
from tests.test_web_access import sign_in

ROOT = Path(__file__).resolve().parent.parent
FULL = "+13055550100"
OTHER = "+12065550101"
HEADER = "phone,language,consent_source,state,crop\n"


def cli(app, *args, **kwargs):
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app), **kwargs)


def import_lines(app, tmp_path, lines, header=HEADER):
    path = tmp_path / "contacts.csv"
    path.write_text(header + "".join(line + "\n" for line in lines))
    result = cli(app, "contacts", "import", str(path))
    assert result.exit_code == 0, result.output
    return result


def inbound(app, phone: str, text: str, *, channel: str = "sms", at: datetime | None = None):
    """A message from a worker, through the webhook's service (as a signed post would)."""
    address = f"whatsapp:{phone}" if channel == "whatsapp" else phone
    with app.app_context(), db.engine().begin() as connection:
        handle_inbound(
            connection,
            settings_from(app.config, app.extensions["engage.vault"]),
            sender=parse_sender(address),
            to="+15550000000",
            body=text,
            now=at,
        )


def contact_id(app, phone: str) -> int:
    with app.app_context():
        vault = app.extensions["engage.vault"]
        return db.session().scalar(
            select(Contact.id).where(Contact.phone_hash == vault.phone_hash(phone))
        )


def token(client, path="/staff/contacts") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def signed_in(app, role: str):
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


def audit(app, *actions: str) -> list[AuditEntry]:
    with app.app_context():
        return list(
            db.session().scalars(
                select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)
            )
        )


def number_forms(e164: str) -> list[str]:
    """The ways a page could show a US number in full."""
    national = e164[2:]
    return [e164, national, f"{national[:3]}-{national[3:6]}-{national[6:]}", national[3:]]


# -- roles and CSRF ---------------------------------------------------------------------------


def test_every_contact_route_by_role_and_csrf(web_app, tmp_path):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus"])
    cid = contact_id(web_app, FULL)
    staff = signed_in(web_app, "staff")
    csv_bytes = (HEADER + f"{OTHER},en,fair,WA,apples\n").encode()
    staff.post(
        "/staff/contacts/import",
        data={"csrf_token": token(staff), "file": (io.BytesIO(csv_bytes), "c.csv")},
    )
    with web_app.app_context():
        upload_id = db.session().scalar(select(func.max(ContactImport.id)))
    gets = [
        ("/staff/contacts", False),
        ("/staff/contacts?key=state&value=FL&language=es&opted_out=no", False),
        (f"/staff/contacts/{cid}", False),
        ("/staff/contacts/import", False),
        (f"/staff/contacts/import/{upload_id}", False),
        (f"/staff/contacts/import/{upload_id}/status.json", True),
    ]
    posts = [
        (f"/staff/contacts/{cid}/reveal", {"reason": "safety call"}, {"admin", "staff"}),
        ("/staff/contacts/find", {"phone": FULL}, {"admin", "staff"}),
        (f"/staff/contacts/{cid}/opt-out", {}, {"admin", "staff"}),
        (f"/staff/contacts/{cid}/opt-in", {}, {"admin", "staff"}),
        (f"/staff/contacts/{cid}/erase", {}, {"admin"}),  # the confirmation step only
        ("/staff/contacts/import", {}, {"admin", "staff"}),
        (f"/staff/contacts/import/{upload_id}", {}, {"admin", "staff"}),
    ]
    for role in (None, "policy", "staff", "admin"):
        client = web_app.test_client()
        if role:
            sign_in(client, role)
        for path, is_json in gets:
            response = client.get(path)
            if role is None:
                assert response.status_code == (401 if is_json else 302), path
            elif role == "policy":
                assert response.status_code == 403, path
            else:
                assert response.status_code == 200, (path, role)
        for path, data, allowed in posts:
            if role is None:
                response = client.post(path, data={**data, "csrf_token": token(client, "/login")})
                assert response.status_code == 302, path
                assert response.headers["Location"].startswith("/login")
                continue
            if role not in allowed:
                # Refused for the role, with a valid token of its own.
                response = client.post(path, data={**data, "csrf_token": token(client, "/results")})
                assert response.status_code == 403, (path, role)
                continue
            # Without its token a form post is refused, and changes nothing.
            assert client.post(path, data=data).status_code == 400, (path, role)
    assert audit(web_app, "reveal", "find", "opt_out", "opt_in", "erase") == []
    with web_app.app_context():
        assert db.session().get(Contact, cid).is_opted_out is False


# -- numbers masked everywhere --------------------------------------------------------------------


def test_no_page_shows_a_full_number_but_the_reveal(web_app, tmp_path):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus", f"{OTHER},en,fair,WA,"])
    inbound(web_app, FULL, "Hola, mi número es el de siempre")
    inbound(web_app, OTHER, "TRABAJO", channel="whatsapp")
    cid = contact_id(web_app, FULL)
    for role in ("staff", "admin"):
        client = signed_in(web_app, role)
        pages = [
            client.get("/staff/contacts"),
            client.get("/staff/contacts?lang=en&channel=whatsapp"),
            client.get(f"/staff/contacts/{cid}"),
            client.get(f"/staff/contacts/{contact_id(web_app, OTHER)}?lang=en"),
            client.post(
                "/staff/contacts/find",
                data={"phone": FULL, "csrf_token": token(client)},
                follow_redirects=True,
            ),
            client.post(f"/staff/contacts/{cid}/erase", data={"csrf_token": token(client)})
            if role == "admin"
            else client.get("/staff/contacts/import"),
        ]
        for page in pages:
            assert page.status_code == 200
            html = page.get_data(as_text=True)
            for e164 in (FULL, OTHER):
                for form in number_forms(e164):
                    assert form not in html, (role, form)
        assert "•••• 0100" in pages[0].get_data(as_text=True)
        assert "•••• 0101" in pages[0].get_data(as_text=True)
        assert "•••• 0100" in pages[2].get_data(as_text=True)
    revealed = client.post(
        f"/staff/contacts/{cid}/reveal",
        data={"reason": "she asked for a call", "csrf_token": token(client)},
    )
    html = revealed.get_data(as_text=True)
    assert revealed.status_code == 200 and f'href="tel:{FULL}"' in html
    assert revealed.headers["Cache-Control"] == "no-store"
    assert OTHER not in html


# -- reveal ---------------------------------------------------------------------------------------


def test_a_reveal_needs_a_reason_is_audited_and_the_eleventh_in_a_day_is_refused(web_app, tmp_path):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus"])
    cid = contact_id(web_app, FULL)
    client = signed_in(web_app, "staff")
    page = client.get(f"/staff/contacts/{cid}").get_data(as_text=True)
    assert "¿Podemos llamarle? 1 Sí 2 No" in page  # ask by text first
    no_reason = client.post(
        f"/staff/contacts/{cid}/reveal", data={"reason": "  ", "csrf_token": token(client)}
    )
    assert no_reason.status_code == 400 and FULL not in no_reason.get_data(as_text=True)
    assert audit(web_app, "reveal", "reveal_refused") == []
    for n in range(contact_pages.REVEALS_PER_DAY):
        shown = client.post(
            f"/staff/contacts/{cid}/reveal",
            data={"reason": f"call {n}", "csrf_token": token(client)},
        )
        assert shown.status_code == 200 and FULL in shown.get_data(as_text=True)
    refused = client.post(
        f"/staff/contacts/{cid}/reveal?lang=en",
        data={"reason": "one more", "csrf_token": token(client)},
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 429 and FULL not in text
    assert "You have seen 10 numbers in the last 24 hours" in text
    entries = audit(web_app, "reveal", "reveal_refused")
    assert [(e.action, e.actor, e.parameters) for e in entries] == [
        ("reveal", "staff@example.org", {"contact": f"contact-{cid}", "reason": f"call {n}"})
        for n in range(10)
    ] + [
        ("reveal_refused", "staff@example.org", {"contact": f"contact-{cid}", "reason": "one more"})
    ]
    assert all(FULL not in str(e.parameters) for e in entries)
    # Admins read them in the audit trail.
    admin = signed_in(web_app, "admin")
    trail = admin.get("/admin/audit?lang=en").get_data(as_text=True)
    assert trail.count("<td>number revealed</td>") == 10 and "reason=call 9" in trail
    assert "<td>number not revealed (daily limit)</td>" in trail and FULL not in trail
    # Another person has their own ten; and a day later this one has ten again.
    assert (
        admin.post(
            f"/staff/contacts/{cid}/reveal", data={"reason": "urgent", "csrf_token": token(admin)}
        ).status_code
        == 200
    )
    with web_app.app_context(), db.transaction() as session:
        for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.actor == "staff@example.org")
        ):
            entry.created_at -= timedelta(hours=24, seconds=1)
    again = client.post(
        f"/staff/contacts/{cid}/reveal", data={"reason": "next day", "csrf_token": token(client)}
    )
    assert again.status_code == 200 and FULL in again.get_data(as_text=True)


def test_the_reveal_page_hides_the_number_after_60_seconds_without_javascript_too(
    web_app, tmp_path
):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus"])
    cid = contact_id(web_app, FULL)
    client = signed_in(web_app, "staff")
    html = client.post(
        f"/staff/contacts/{cid}/reveal", data={"reason": "call", "csrf_token": token(client)}
    ).get_data(as_text=True)
    assert f'<meta http-equiv="refresh" content="60;url=/staff/contacts/{cid}">' in html
    assert 'data-seconds="60"' in html and "contacts.js" in html
    assert "<script>" not in html  # the page's script is a file (CSP: script-src 'self')


# -- find -----------------------------------------------------------------------------------------


def test_find_by_number_is_audited_whether_or_not_someone_is_found(web_app, tmp_path):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus"])
    cid = contact_id(web_app, FULL)
    client = signed_in(web_app, "staff")
    found = client.post(
        "/staff/contacts/find", data={"phone": "(305) 555-0100", "csrf_token": token(client)}
    )
    assert found.status_code == 302 and found.headers["Location"] == f"/staff/contacts/{cid}"
    missing = client.post(
        "/staff/contacts/find?lang=en", data={"phone": OTHER, "csrf_token": token(client)}
    )
    assert missing.status_code == 404 and "No contact has this number." in missing.get_data(
        as_text=True
    )
    bad = client.post(
        "/staff/contacts/find?lang=en", data={"phone": "hello", "csrf_token": token(client)}
    )
    assert bad.status_code == 400 and "not a phone number" in bad.get_data(as_text=True)
    entries = audit(web_app, "find")
    assert [(e.actor, e.user_id is not None, e.parameters) for e in entries] == [
        ("staff@example.org", True, {"contact": f"contact-{cid}"}),
        ("staff@example.org", True, {"contact": "none found"}),
    ]
    assert OTHER not in str(entries[1].parameters)


def test_find_never_finds_a_simulated_or_erased_contact(web_app, tmp_path):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus"])
    with web_app.app_context(), db.transaction() as session:
        session.execute(update(Contact).values(is_simulated=True))
    client = signed_in(web_app, "staff")
    response = client.post(
        "/staff/contacts/find", data={"phone": FULL, "csrf_token": token(client)}
    )
    assert response.status_code == 404
    assert client.get(f"/staff/contacts/{contact_id(web_app, FULL)}").status_code == 404
    assert "•••• 0100" not in client.get("/staff/contacts").get_data(as_text=True)


# -- opt-out and opt-in ---------------------------------------------------------------------------


def test_an_opt_out_given_another_way_is_audited_and_stops_every_survey_message(
    web_app, tmp_path, worker
):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus", f"{OTHER},es,clinic,FL,"])
    assert worker(FULL).send("VIVIENDA")  # a conversation is open
    cid = contact_id(web_app, FULL)
    client = signed_in(web_app, "staff")
    response = client.post(
        f"/staff/contacts/{cid}/opt-out",
        data={"reason": "asked by phone", "csrf_token": token(client)},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"] + "&lang=en").get_data(as_text=True)
    assert "The opt-out is recorded" in page and "Record an opt-in" in page
    with web_app.app_context():
        contact = db.session().get(Contact, cid)
        assert contact.is_opted_out and contact.opted_out_at is not None
        statuses = db.session().scalars(
            select(Conversation.status).where(Conversation.contact_id == cid)
        )
        assert list(statuses) == ["opted_out"]
    # Nothing more: a survey keyword gets no reply, and a campaign leaves the contact out.
    assert worker(FULL).send("TRABAJO") == ""
    started = cli(web_app, "campaigns", "start", "working-conditions")
    assert started.exit_code == 0, started.output
    with web_app.app_context():
        invited = set(
            db.session().scalars(select(Message.contact_id).where(Message.kind == "invitation"))
        )
    assert invited == {contact_id(web_app, OTHER)}
    # Recording it again changes nothing and records nothing.
    again = client.post(f"/staff/contacts/{cid}/opt-out", data={"csrf_token": token(client)})
    assert "done=unchanged" in again.headers["Location"]
    # The opt-in, without a reason: the worker can be written to again.
    assert (
        client.post(f"/staff/contacts/{cid}/opt-in", data={"csrf_token": token(client)}).status_code
        == 302
    )
    with web_app.app_context():
        assert db.session().get(Contact, cid).is_opted_out is False
    assert worker(FULL).send("TRABAJO") != ""
    entries = audit(web_app, "opt_out", "opt_in")
    assert [(e.action, e.actor, e.parameters) for e in entries] == [
        ("opt_out", "staff@example.org", {"contact": f"contact-{cid}", "reason": "asked by phone"}),
        ("opt_in", "staff@example.org", {"contact": f"contact-{cid}"}),
    ]


# -- erasure --------------------------------------------------------------------------------------


def test_erasure_is_admin_only_asks_first_is_audited_and_erases(web_app, tmp_path, worker):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic,FL,citrus"])
    worker(FULL).send("Me quitaron el pasaporte")
    cid = contact_id(web_app, FULL)
    staff = signed_in(web_app, "staff")
    assert "Erase this contact" not in staff.get(f"/staff/contacts/{cid}?lang=en").get_data(
        as_text=True
    )
    assert (
        staff.post(
            f"/staff/contacts/{cid}/erase", data={"confirm": "yes", "csrf_token": token(staff)}
        ).status_code
        == 403
    )
    admin = signed_in(web_app, "admin")
    asked = admin.post(f"/staff/contacts/{cid}/erase?lang=en", data={"csrf_token": token(admin)})
    assert asked.status_code == 200 and "cannot be undone" in asked.get_data(as_text=True)
    assert audit(web_app, "erase") == []  # asking erased nothing
    done = admin.post(
        f"/staff/contacts/{cid}/erase", data={"confirm": "yes", "csrf_token": token(admin)}
    )
    assert done.status_code == 302 and done.headers["Location"] == "/staff/contacts?done=erased"
    with web_app.app_context():
        contact = db.session().get(Contact, cid)
        assert contact.erased_at is not None and contact.key_encrypted is None
        assert contact.phone_encrypted == "" and contact.profile == {}
        bodies = db.session().scalars(select(Message.body).where(Message.contact_id == cid))
        assert set(bodies) == {""}
    [entry] = audit(web_app, "erase")
    assert (entry.actor, entry.parameters) == (
        "admin@example.org",
        {"contact": f"contact-{cid}", "by": "staff"},
    )
    assert entry.user_id is not None
    # Gone from the list and from look-ups; its page says it was erased; nothing left to erase.
    assert "•••• 0100" not in admin.get("/staff/contacts").get_data(as_text=True)
    page = admin.get(f"/staff/contacts/{cid}?lang=en").get_data(as_text=True)
    assert "was erased" in page and "pasaporte" not in page
    assert (
        admin.post(
            "/staff/contacts/find", data={"phone": FULL, "csrf_token": token(admin)}
        ).status_code
        == 404
    )
    assert (
        admin.post(
            f"/staff/contacts/{cid}/erase", data={"confirm": "yes", "csrf_token": token(admin)}
        ).status_code
        == 404
    )


# -- hostile text ---------------------------------------------------------------------------------


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    '<a href="javascript:alert(3)">pay</a>',
]


def test_worker_text_and_profile_values_are_shown_as_text(web_app, tmp_path):
    import_lines(
        web_app,
        tmp_path,
        [f'{FULL},es,clinic,"<script>alert(4)</script>","<img src=x onerror=alert(5)>"'],
    )
    for text in HOSTILE:
        inbound(web_app, FULL, text)
    cid = contact_id(web_app, FULL)
    client = signed_in(web_app, "staff")
    for path in (
        f"/staff/contacts/{cid}",
        "/staff/contacts",
        "/staff/contacts?key=state&value=<script>alert(4)</script>",
    ):
        html = client.get(path).get_data(as_text=True)
        assert (
            "<script>alert" not in html
            and "<img src=x" not in html
            and 'href="javascript:' not in html
        )
    html = client.get(f"/staff/contacts/{cid}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html  # the profile value
    assert "&lt;img src=x onerror=alert(5)&gt;" in html


# -- imports --------------------------------------------------------------------------------------


def upload(client, text: str, name: str = "contacts.csv", **query):
    return client.post(
        "/staff/contacts/import" + ("?lang=en" if query.get("en") else ""),
        data={
            "csrf_token": token(client, "/staff/contacts/import"),
            "file": (io.BytesIO(text.encode()), name),
        },
        content_type="multipart/form-data",
    )


BAD_FILE = (
    HEADER
    + f"{FULL},es,clinic,FL,citrus\n"
    + "not a phone,es,clinic,FL,\n"
    + f"{OTHER},Spanish,fair,WA,apples\n"
    + "+13055550102,es,clinic,FL,\n"
)


def test_an_upload_with_two_bad_rows_shows_both_and_saves_nothing_then_the_fixed_file_imports(
    web_app, worker
):
    worker("+13055550102").send("STOP")  # known and opted out: stays so
    client = signed_in(web_app, "staff")
    response = upload(client, BAD_FILE, en=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "2 bad rows in contacts.csv: nothing was imported" in html
    assert "Line 3:" in html and "this is not a phone number" in html
    assert "Line 4:" in html and "“Spanish” is not a language code" in html
    assert "Line 2:" not in html and "Line 5:" not in html
    with web_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(ContactImport)) == 0
        assert db.session().scalar(select(func.count()).select_from(Contact)) == 1  # the STOP
    fixed = (
        BAD_FILE.replace("not a phone", "+13055550103").replace("Spanish", "es")
        + f"{FULL},,,,berries\n"
    )
    checked = upload(client, fixed)
    assert checked.status_code == 302
    preview = client.get(checked.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "Every row is correct" in preview
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)", preview))
    assert facts == {
        "Rows": "5",
        "Numbers": "4",
        "New contacts": "3",
        "Known contacts to update": "1",
        "Opted out, will stay opted out": "1",
        "Erased before, will be skipped": "0",
    }
    with web_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Contact)) == 1  # still nothing
        stored = db.session().scalar(select(ContactImport.file_encrypted))
    assert FULL.encode() not in stored and b"clinic" not in stored  # kept encrypted
    done = client.post(checked.headers["Location"], data={"csrf_token": token(client)})
    assert done.status_code == 302
    summary = client.get(done.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert dict(re.findall(r'<dd id="summary-([a-z-]+)">(\d+)', summary)) == {
        "added": "3",
        "updated": "1",
        "merged": "1",
        "opted-out": "1",
        "erased": "0",
    }
    with web_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Contact)) == 4
        assert db.session().scalar(select(ContactImport.file_encrypted)) is None  # deleted
        known = db.session().get(Contact, contact_id(web_app, "+13055550102"))
        assert known.is_opted_out
        assert db.session().get(Contact, contact_id(web_app, FULL)).profile == {
            "state": "FL",
            "crop": "berries",
        }
    [entry] = audit(web_app, "import")
    assert entry.actor == "staff@example.org" and entry.parameters["created"] == 3
    # Confirming twice imports once.
    client.post(checked.headers["Location"], data={"csrf_token": token(client)})
    assert len(audit(web_app, "import")) == 1


def test_an_upload_that_is_not_text_or_missing_is_refused(web_app):
    client = signed_in(web_app, "staff")
    binary = client.post(
        "/staff/contacts/import?lang=en",
        data={"csrf_token": token(client), "file": (io.BytesIO(b"\xff\xfe\x00bad"), "x.xlsx")},
    )
    assert binary.status_code == 400 and "not a CSV file saved as UTF-8" in binary.get_data(
        as_text=True
    )
    none = client.post("/staff/contacts/import?lang=en", data={"csrf_token": token(client)})
    assert none.status_code == 400
    columns = upload(client, "phone,state\n+13055550100,FL\n", en=True)
    assert "lacks the column(s) language, consent_source" in columns.get_data(as_text=True)
    with web_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(ContactImport)) == 0


def test_a_contacts_file_may_be_larger_than_other_requests_but_not_without_end(web_app):
    client = signed_in(web_app, "staff")
    lines = "".join(f"+1305{n:07d},es,clinic,FL,citrus\n" for n in range(60_000))
    body = HEADER + lines
    assert len(body) > 1024 * 1024  # above what any other request may send
    response = upload(client, body)
    assert response.status_code == 302
    with web_app.app_context():
        assert db.session().scalar(select(ContactImport.rows)) == 60_000
    too_big = upload(client, HEADER + lines * 5)
    assert too_big.status_code == 413


def wait_for_state(client, location: str, states: set[str], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(location + "/status.json").get_json()
        if status["state"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{location}: still {status}")


def test_a_large_import_runs_off_the_request_and_its_page_follows_it(
    web_app, monkeypatch, database
):
    monkeypatch.setattr(contact_imports, "IN_REQUEST_ROWS", 10)
    client = signed_in(web_app, "staff")
    lines = "".join(f"+1305{n:07d},es,clinic,FL,citrus\n" for n in range(2500))
    checked = upload(client, HEADER + lines)
    location = checked.headers["Location"]
    assert "in the background" in client.get(location + "?lang=en").get_data(as_text=True)
    started = client.post(location, data={"csrf_token": token(client)})
    assert started.status_code == 302
    # Without Redis the import runs in a thread of this process; the page polls its status.
    status = wait_for_state(client, location, {"done", "failed"})
    assert status == {
        "state": "done",
        "rows": 2500,
        "numbers": 2500,
        "done": 2500,
        "created": 2500,
        "updated": 0,
        "merged_in_file": 0,
        "opted_out_kept": 0,
        "skipped_erased": 0,
    }
    with web_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Contact)) == 2500


def test_a_large_import_is_a_job_on_bulk_with_progress_in_redis(
    web_app, monkeypatch, redis_url, tmp_path, database, request
):
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    monkeypatch.setattr(contact_imports, "IN_REQUEST_ROWS", 10)
    # The same database and instance folder (keys) as web_app, with Redis.
    app = make_app(tmp_path, database, pg, prepare=False, REDIS_URL=redis_url)
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    assert sign_in(client, "staff").status_code == 302
    reported = []
    from engage.jobs import contact_imports as job

    real_report = job.report_progress
    monkeypatch.setattr(
        job, "report_progress", lambda i, d: (reported.append(d), real_report(i, d))
    )
    lines = "".join(f"+1206{n:07d},en,fair,WA,apples\n" for n in range(2100))
    location = upload(client, HEADER + lines).headers["Location"]
    client.post(location, data={"csrf_token": token(client)})
    assert client.get(location + "/status.json").get_json()["state"] == "queued"
    assert redis_client.Redis.from_url(redis_url).llen("rq:queue:bulk") == 1
    from engage.jobs.worker import run_worker

    with app.app_context():
        run_worker(burst=True)
    status = client.get(location + "/status.json").get_json()
    assert status["state"] == "done" and status["created"] == 2100
    assert reported == [1000, 2000, 2100]
    app.extensions["engage.engine"].dispose()


def test_uploads_nobody_confirmed_are_forgotten_by_the_clock(web_app):
    from engage.clock import run_periodic

    client = signed_in(web_app, "staff")
    location = upload(client, HEADER + f"{FULL},es,clinic,FL,\n").headers["Location"]
    with web_app.app_context():
        run_periodic()
        assert db.session().scalar(select(ContactImport.file_encrypted)) is not None
        with db.transaction() as session:
            for stale in session.scalars(select(ContactImport)):
                stale.created_at -= timedelta(hours=2)
        assert run_periodic()["uploads_forgotten"] == 1
        db.session().rollback()  # a fresh read
        assert db.session().scalar(select(ContactImport.file_encrypted)) is None
    assert client.get(location + "/status.json").get_json()["state"] == "forgotten"
    client.post(location, data={"csrf_token": token(client)})
    with web_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Contact)) == 0


@pytest.mark.parametrize("database", ["sqlite"])  # one database is enough for the terminal
def test_the_cli_import_draws_a_progress_bar_on_a_terminal(app, tmp_path, database):
    path = tmp_path / "contacts.csv"
    path.write_text(HEADER + "".join(f"+1305{n:07d},es,clinic,FL,\n" for n in range(2500)))
    env = {
        **os.environ,
        "ENGAGE_ENV": "development",
        "INSTANCE_PATH": app.instance_path,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "COLUMNS": "80",
    }
    env.pop("REDIS_URL", None)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "engage"), "contacts", "import", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    terminal = b""
    while True:
        ready, _, _ = io_select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    output, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0, terminal
    assert output.decode().strip() == "2500 created, 0 updated, 0 duplicate row(s) merged"
    assert b"importing" in terminal and b"100%" in terminal


# -- filters and paging ---------------------------------------------------------------------------


def seed_for_filters(app, tmp_path) -> dict[str, set[int]]:
    """130 contacts: states FL/WA, languages es/en, some opted out, some with messages by SMS or
    WhatsApp at known times."""
    lines = [
        f"+1305555{n:04d},{'es' if n % 2 else 'en'},clinic,{'FL' if n % 3 else 'WA'},"
        for n in range(130)
    ]
    import_lines(app, tmp_path, lines)
    old = datetime(2030, 1, 10, 12, tzinfo=UTC)
    recent = datetime(2030, 6, 10, 12, tzinfo=UTC)
    for n in range(0, 130, 5):
        inbound(app, f"+1305555{n:04d}", "hola", channel="whatsapp" if n % 10 else "sms", at=old)
    for n in range(0, 130, 15):
        inbound(app, f"+1305555{n:04d}", "otra vez", at=recent)
    with app.app_context(), db.transaction() as session:
        ids = {
            n: session.scalar(
                select(Contact.id).where(
                    Contact.phone_hash
                    == app.extensions["engage.vault"].phone_hash(f"+1305555{n:04d}")
                )
            )
            for n in range(130)
        }
        opted = [ids[n] for n in range(0, 130, 7)]
        session.execute(update(Contact).where(Contact.id.in_(opted)).values(is_opted_out=True))
        # A simulated contact is never listed.
        session.add(
            Contact(
                phone_hash="simulated",
                phone_encrypted="x",
                is_simulated=True,
                profile={"state": "FL"},
            )
        )
    every = set(ids.values())
    by_n = {n: ids[n] for n in range(130)}
    return {
        "all": every,
        "FL": {by_n[n] for n in range(130) if n % 3},
        "es": {by_n[n] for n in range(130) if n % 2},
        "opted": {by_n[n] for n in range(0, 130, 7)},
        "whatsapp": {by_n[n] for n in range(0, 130, 5) if n % 10},
        "sms": {by_n[n] for n in range(0, 130, 5) if not n % 10}
        | {by_n[n] for n in range(0, 130, 15)},
        "after_march": {by_n[n] for n in range(0, 130, 15)},
        "none_since_march": every - {by_n[n] for n in range(0, 130, 15)},
    }


def every_page(client, query: str) -> list[int]:
    """The contact ids the list shows for a filter, following "next page" to the end."""
    seen: list[int] = []
    path = f"/staff/contacts?{query}"
    for _ in range(20):
        html = client.get(path).get_data(as_text=True)
        seen.extend(int(i) for i in re.findall(r'<a href="/staff/contacts/(\d+)">contact-', html))
        following = re.search(r'id="next-page" href="([^"]+)"', html)
        if following is None:
            return seen
        path = following.group(1).replace("&amp;", "&")
    raise AssertionError("no last page")


def test_filters_choose_the_right_contacts_and_paging_shows_each_once(web_app, tmp_path):
    expected = seed_for_filters(web_app, tmp_path)
    client = signed_in(web_app, "staff")
    cases = {
        "": expected["all"],
        "key=state&value=FL": expected["FL"],
        "language=es": expected["es"],
        "key=state&value=FL&language=es": expected["FL"] & expected["es"],
        "opted_out=yes": expected["opted"],
        "opted_out=no&language=es": expected["es"] - expected["opted"],
        "channel=whatsapp": expected["whatsapp"],
        "channel=sms": expected["sms"],
        "after=2030-03-01": expected["after_march"],
        "before=2030-03-01": expected["none_since_march"],
        "after=2030-01-01&before=2030-03-01&channel=whatsapp": expected["whatsapp"]
        - expected["after_march"],
        "key=state&value=TX": set(),
    }
    for query, ids in cases.items():
        seen = every_page(client, query)
        assert len(seen) == len(set(seen)), query  # nobody twice
        assert set(seen) == ids, query
        assert seen == sorted(seen, reverse=True), query  # newest first
    assert len(every_page(client, "")) == 130 > contact_pages.PAGE_SIZE * 2
    bad = client.get("/staff/contacts?lang=en&key=Bad Key&value=x&after=yesterday")
    assert "An attribute is a profile key" in bad.get_data(as_text=True)
    assert "Write dates as YYYY-MM-DD." in bad.get_data(as_text=True)


def test_a_contact_page_shows_profile_conversations_and_messages(web_app, tmp_path, worker):
    import_lines(web_app, tmp_path, [f"{FULL},es,clinic-2026,FL,citrus"])
    replies = worker(FULL).send("VIVIENDA")
    worker(FULL).send("línea uno\nlínea dos")
    cid = contact_id(web_app, FULL)
    client = signed_in(web_app, "staff")
    html = client.get(f"/staff/contacts/{cid}?lang=en").get_data(as_text=True)
    assert f"contact-{cid}" in html and "•••• 0100" in html
    assert '<th scope="row">crop</th><td>citrus</td>' in html
    assert "housing-check" in html and "in progress" in html
    assert "línea uno\nlínea dos" in html  # as written, line breaks kept by the page's style
    assert replies.splitlines()[0] in html_text.unescape(html)  # Engage's own reply
    assert "clinic-2026" in html and "America/New_York" in html


def test_a_file_name_filled_into_a_translated_text_is_escaped(web_app):
    """A page text with a count and a name (ngettext with a variable) is filled in by Jinja,
    which escapes the name: a file's name is whatever the uploader called it."""
    client = signed_in(web_app, "staff")
    hostile = "<img src=x onerror=alert(1)>.csv"
    bad_row = (HEADER + "+1305,es,clinic,FL,citrus\n").encode()
    refused = client.post(
        "/staff/contacts/import?lang=en",
        data={"csrf_token": token(client), "file": (io.BytesIO(bad_row), hostile)},
    )
    html = refused.get_data(as_text=True)
    assert "1 bad row in &lt;img src=x onerror=alert(1)&gt;.csv: nothing was imported" in html
    assert "<img src=x" not in html

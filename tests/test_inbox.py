"""The staff inbox: threads that need a person, a thread, replies, notes, assignment, handling."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.config import ConfigError
from engage.config import load as load_config
from engage.db import utcnow
from engage.jobs.worker import run_worker
from engage.models import AuditEntry, Contact, Message, ThreadNote
from engage.privacy import parse_sender
from engage.services.accounts import create_user
from engage.services.canned_replies import MAX_TEXT, load_canned_replies, read_canned_replies
from engage.services.conversations import handle_inbound, settings_from
from engage.services.erasure import BY_SENDER, erase_contact
from engage.services.inbox import PAGE_SIZE
from tests import readback as rb
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, WEB_PASSWORD, publish
from tests.test_web_access import csrf_token, sign_in

ROOT = Path(__file__).resolve().parent.parent
MORE_SURVEYS = Path(__file__).resolve().parent / "surveys_more"
OUR_NUMBER = "+15550000000"
PHONE = "+15550104321"
OTHER = "+15550107777"
TEMPLATE = "HX" + "ab12" * 8
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)"]
# 03:00 in Chicago (CDT): quiet hours there until 08:00 (13:00 UTC).
NIGHT = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
MORNING = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
# 14:00 in New York, 11:00 in Los Angeles: no quiet hours even where the zone is unknown.
AFTERNOON = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def app(web_app):
    publish(web_app, [SHIPPED_SURVEYS, TEST_SURVEYS, MORE_SURVEYS])
    return web_app


def say(app, phone: str, text: str, *, channel: str = "sms", at=None, media_url=None, **kw):
    """A worker's message through the conversation step, as the webhook runs it."""
    address = f"whatsapp:{phone}" if channel == "whatsapp" else phone
    to = f"whatsapp:{OUR_NUMBER}" if channel == "whatsapp" else OUR_NUMBER
    with app.app_context(), db.engine().begin() as connection:
        return handle_inbound(
            connection,
            settings_from(app.config, app.extensions["engage.vault"]),
            sender=parse_sender(address),
            to=to,
            body=text,
            media_url=media_url,
            now=at,
            **kw,
        )


def set_clock(app, moment: datetime) -> None:
    app.extensions["engage.clock"] = lambda: moment


def contact_id(app, phone: str = PHONE) -> int:
    with app.app_context():
        vault = app.extensions["engage.vault"]
        return db.session().scalar(
            select(Contact.id).where(Contact.phone_hash == vault.phone_hash(phone))
        )


def staff_rows(app, *where):
    with app.app_context():
        return (
            db.session()
            .scalars(
                select(Message).where(Message.kind == "staff_reply", *where).order_by(Message.id)
            )
            .all()
        )


def text_of(app, message: Message) -> str:
    with app.app_context():
        return rb.body(app, message)


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return (
            db.session()
            .scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
            .all()
        )


def signed_in(app, role: str = "staff"):
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


def post(client, path: str, **data):
    token = csrf_token(client, "/staff/inbox")
    return client.post(path, data={"csrf_token": token, **data})


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def thread_order(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="thread[^"]*" data-contact="(\d+)"', text)]


# -- the list --------------------------------------------------------------------------------------


def test_a_signed_message_with_a_safety_phrase_tops_the_inbox_marked_urgent(
    twilio_app, fake_twilio
):
    app = twilio_app()
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", WEB_PASSWORD, "staff")
    client = app.test_client()
    for phone, text in [(OTHER, "hola, tengo una pregunta"), (PHONE, "me quitaron el pasaporte")]:
        response = post_signed(
            client, fake_twilio.auth_token, "/twilio/messages", inbound_form(phone, text)
        )
        assert response.status_code == 200
    sign_in(client, "staff")
    text = page(client, "/staff/inbox?lang=es")
    assert thread_order(text) == [contact_id(app, PHONE), contact_id(app, OTHER)]
    first = text[text.index('<li class="thread') :]
    first = first[: first.index("</li>")]
    assert "Urgente: le quitaron documentos o pasaporte" in first
    assert "•••• 4321" in first and "me quitaron el pasaporte" in first
    for number in (PHONE, OTHER, PHONE[1:], "0104321"):
        assert number not in text
    english = page(client, "/staff/inbox?lang=en")
    assert "Urgent: documents or passport taken" in english


def test_the_inbox_orders_threads_by_why_they_wait(app):
    say(app, "+15550100001", "CUENTE")  # a keyword: nothing for a person
    # A photo in a conversation (outside one it would be free text like any message).
    say(app, "+15550100002", "CUENTE")
    say(app, "+15550100002", "", media_url="https://api.twilio.com/media/ME1")
    say(app, "+15550100003", "hola")  # free text outside a conversation
    say(app, "+15550100004", "me amenazaron")  # urgent
    # A text answer: consent, the crop, the days, then the worker's own words.
    for text in ("CUENTE", "1", "2", "5", "Nos pagan tarde"):
        say(app, "+15550100005", text)
    with app.app_context(), db.transaction() as session:
        # A send whose outcome is unknown, for the first contact.
        first = contact_id(app, "+15550100001")
        row = session.scalars(
            select(Message).where(Message.contact_id == first, Message.direction == "out")
        ).first()
        row.status = "unconfirmed"
    client = signed_in(app)
    text = page(client, "/staff/inbox?lang=en")
    expected = ["+15550100004", "+15550100003", "+15550100005", "+15550100002", "+15550100001"]
    assert thread_order(text) == [contact_id(app, phone) for phone in expected]
    for label in (
        "Urgent: threats",
        "Free text",
        "Text answer",
        "Photo or file",
        "Unconfirmed send",
    ):
        assert label in text
    assert "Nos pagan tarde" in text
    # Answers by number or choice need nobody: the crop and days are not the preview.
    assert len(thread_order(text)) == 5


def test_hostile_text_is_shown_as_text_on_the_list_and_the_thread(app):
    for index, payload in enumerate(HOSTILE):
        say(app, f"+1555010900{index}", payload + "\nsegunda línea")
    say(app, PHONE, "mire esto", media_url="javascript:alert(1)")
    client = signed_in(app)
    listing = page(client, "/staff/inbox")
    for payload in HOSTILE:
        assert html.escape(payload, quote=False) in listing
    assert "<script>alert" not in listing and "<img src=x" not in listing
    for index, payload in enumerate(HOSTILE):
        thread = page(client, f"/staff/inbox/{contact_id(app, f'+1555010900{index}')}")
        assert html.escape(payload, quote=False) + "\nsegunda línea" in thread
        assert "<script>alert" not in thread and "<img src=x" not in thread
        assert 'href="javascript' not in thread
    media = page(client, f"/staff/inbox/{contact_id(app)}")
    assert "javascript:alert" not in media  # not a link, not even as text: only https is linked
    assert "Foto o archivo" in media


def test_the_list_is_paged_and_shows_masked_numbers_only(app):
    phones = [f"+1555011{n:04d}" for n in range(PAGE_SIZE + 3)]
    for phone in phones:
        say(app, phone, "hola")
    client = signed_in(app)
    first = page(client, "/staff/inbox?lang=en")
    second = page(client, "/staff/inbox?lang=en&page=2")
    assert len(thread_order(first)) == PAGE_SIZE and len(thread_order(second)) == 3
    assert not set(thread_order(first)) & set(thread_order(second))
    assert f"{PAGE_SIZE + 3} threads" in first and "Page 2 of 2" in second
    for phone in phones:
        assert phone not in first + second and phone[2:] not in first + second
    assert "•••• " + phones[-1][-4:] in first  # newest first
    assert client.get("/staff/inbox?show=everything").status_code == 400


def test_simulated_contacts_never_appear(app):
    say(app, PHONE, "me quitaron el pasaporte", is_simulated=True)
    client = signed_in(app)
    text = page(client, "/staff/inbox")
    assert thread_order(text) == []
    assert client.get(f"/staff/inbox/{contact_id(app)}").status_code == 404
    assert 'data-count="urgent">0<' in page(client, "/staff")
    assert 'data-count="nav-urgent"' not in text


# -- a thread --------------------------------------------------------------------------------------


def test_a_thread_shows_both_directions_in_order_with_notes_and_canned_replies(app):
    for text in ("CUENTE", "1", "2", "5", "Nos pagan tarde\ny sin recibo"):
        say(app, PHONE, text)
    cid = contact_id(app)
    client = signed_in(app)
    assert (
        post(client, f"/staff/inbox/{cid}/note", body="Llamar al centro mañana").status_code == 303
    )
    text = page(client, f"/staff/inbox/{cid}?lang=es")
    bodies = re.findall(r'<p class="body">([^<]*)</p>', text)
    assert bodies[0] == "CUENTE" and "Nos pagan tarde\ny sin recibo" in bodies
    assert text.index("CUENTE") < text.index("Nos pagan tarde") < text.index("Llamar al centro")
    assert "Nota interna" in text and "staff@example.org" in text
    assert "Respuesta de texto" in text
    # Canned replies, the worker's language first.
    assert "¿Podemos llamarle? 1 Sí 2 No" in text
    assert text.index('optgroup label="Español"') < text.index('optgroup label="English"')
    assert PHONE not in text and "•••• 4321" in text
    # The note's words are kept under the contact's key, and the audit never holds them.
    with app.app_context():
        [note] = db.session().scalars(select(ThreadNote)).all()
        assert "Llamar" not in note.body
        assert rb.cipher(app, cid).decrypt(note.body) == "Llamar al centro mañana"
    [entry] = audit(app, "inbox_note")
    assert entry.parameters == {"contact": f"contact-{cid}", "note": str(note.id)}
    assert entry.actor == "staff@example.org"


def test_a_long_thread_pages_back_through_older_messages_and_notes(app, monkeypatch):
    from engage.services import inbox

    monkeypatch.setattr(inbox, "THREAD_MESSAGES", 4)
    start = AFTERNOON - timedelta(hours=1)
    for minute, text in enumerate(("hola", "una", "dos", "tres", "cuatro", "cinco")):
        say(app, PHONE, text, at=start + timedelta(minutes=minute))
    cid = contact_id(app)
    with app.app_context():
        ids = db.session().scalars(select(Message.id).where(Message.contact_id == cid)).all()
    client = signed_in(app)
    set_clock(app, start + timedelta(minutes=1, seconds=30))
    assert post(client, f"/staff/inbox/{cid}/note", body="Nota del principio").status_code == 303
    set_clock(app, AFTERNOON)
    assert post(client, f"/staff/inbox/{cid}/note", body="Nota de ahora").status_code == 303

    def shown(text: str) -> list[int]:
        return [int(i) for i in re.findall(r'<li class="entry [^"]*" id="m-(\d+)"', text)]

    latest = page(client, f"/staff/inbox/{cid}?lang=es")
    assert shown(latest) == sorted(ids)[-4:]
    assert f"{len(ids) - 4} mensajes anteriores no se muestran" in latest
    assert "Nota de ahora" in latest and "Nota del principio" not in latest
    assert 'id="newest-messages"' not in latest
    # "Handled" still covers the newest message, whichever page it is marked from.
    [through] = re.findall(r'name="through" value="(\d+)"', latest)
    seen = shown(latest)
    while 'id="older-messages"' in latest:
        [older] = re.findall(r'id="older-messages" href="([^"]+)"', latest)
        latest = page(client, html.unescape(older) + "&lang=es")
        assert 'id="newest-messages"' in latest
        assert re.findall(r'name="through" value="(\d+)"', latest) == [through]
        seen = shown(latest) + seen
    assert seen == sorted(ids)  # every message once, oldest first
    assert "Nota del principio" in latest  # on the page of the messages it was written among
    assert int(through) == max(ids)


def test_an_urgent_thread_erased_by_its_sender_leaves_only_the_topic(app):
    say(app, PHONE, "me quitaron el pasaporte")
    cid = contact_id(app)
    with app.app_context(), db.engine().begin() as connection:
        erase_contact(connection, cid, by=BY_SENDER)
    client = signed_in(app)
    text = page(client, f"/staff/inbox/{cid}?lang=es")
    assert "Contacto borrado" in text
    assert "Un mensaje urgente (le quitaron documentos o pasaporte) fue borrado" in text
    assert "pasaporte</p>" not in text.replace("pasaporte) fue", "")
    assert "Este contacto fue borrado" in text
    response = post(client, f"/staff/inbox/{cid}/reply", body="Hola")
    assert response.status_code == 409 and staff_rows(app) == []
    assert post(client, f"/staff/inbox/{cid}/note", body="nota").status_code == 409


def test_unknown_contacts_are_404(app):
    client = signed_in(app)
    assert client.get("/staff/inbox/999").status_code == 404
    assert post(client, "/staff/inbox/999/reply", body="hola").status_code == 404
    assert post(client, "/staff/inbox/999/handled").status_code == 404


# -- replies ---------------------------------------------------------------------------------------


def test_a_reply_reaches_twilio_through_a_burst_worker(twilio_app, redis_url, fake_twilio):
    app = twilio_app(REDIS_URL=redis_url)
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", WEB_PASSWORD, "staff")
    client = app.test_client()
    post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form(PHONE, "me pegaron")
    )
    with app.app_context():
        run_worker(burst=True)  # the help text
    before = len(fake_twilio.requests)
    sign_in(client, "staff")
    cid = contact_id(app)
    reply = "Hola, somos el Centro.\n¿Está a salvo ahora?"
    response = post(client, f"/staff/inbox/{cid}/reply", body=reply)
    assert response.status_code == 303
    [row] = staff_rows(app)
    assert row.status == "pending" and row.queue == "replies" and row.send_after is None
    assert reply not in row.body and text_of(app, row) == reply  # under the contact's key
    with app.app_context():
        run_worker(burst=True)
    [sent] = fake_twilio.requests[before:]
    assert sent.get("Body") == reply and sent.get("To") == PHONE
    [row] = staff_rows(app)
    assert row.status == "queued" and row.sid is not None
    [entry] = audit(app, "inbox_reply")
    assert entry.parameters["contact"] == f"contact-{cid}"
    assert entry.parameters["message"] == str(row.id) and reply not in str(entry.parameters)
    thread = page(client, response.headers["Location"])
    assert "Su respuesta está en camino." in thread  # said once, after the redirect
    assert (
        "staff@example.org" in thread and "Hola, somos el Centro.\n¿Está a salvo ahora?" in thread
    )
    assert "Su respuesta está en camino." not in page(client, f"/staff/inbox/{cid}")


def test_a_reply_is_refused_for_an_opted_out_contact(app):
    say(app, PHONE, "hola")
    say(app, PHONE, "ALTO")
    cid = contact_id(app)
    client = signed_in(app)
    text = page(client, f"/staff/inbox/{cid}?lang=es")
    assert "se dio de baja" in text and 'id="send-reply"' not in text
    response = post(client, f"/staff/inbox/{cid}/reply?lang=es", body="¿Sigue ahí?")
    assert response.status_code == 409
    assert "Este trabajador se dio de baja" in response.get_data(as_text=True)
    assert staff_rows(app) == [] and audit(app, "inbox_reply") == []


@pytest.mark.parametrize(
    ("body", "status"), [("", 400), ("   \n ", 400), ("x" * 1601, 400), ("x" * 1600, 303)]
)
def test_a_reply_has_text_of_at_most_1600_characters(app, body, status):
    say(app, PHONE, "hola")
    client = signed_in(app)
    response = post(client, f"/staff/inbox/{contact_id(app)}/reply", body=body)
    assert response.status_code == status
    assert len(staff_rows(app)) == (1 if status == 303 else 0)
    if status == 400 and body.strip():
        # The text is kept in the box to be shortened, not lost.
        assert body in response.get_data(as_text=True)


def test_a_canned_reply_chosen_without_javascript_goes_as_it_is(app):
    say(app, PHONE, "hola")
    client = signed_in(app)
    response = post(
        client, f"/staff/inbox/{contact_id(app)}/reply", body="", canned="es:ask_to_call"
    )
    assert response.status_code == 303
    [row] = staff_rows(app)
    assert text_of(app, row) == "¿Podemos llamarle? 1 Sí 2 No"


def test_quiet_hours_hold_a_reply_unless_the_worker_wrote_in_the_last_two_hours(app):
    say(app, PHONE, "hola", at=NIGHT - timedelta(hours=3))
    cid = contact_id(app)
    with app.app_context(), db.transaction() as session:
        session.execute(update(Contact).values(timezone="America/Chicago"))
    set_clock(app, NIGHT)
    client = signed_in(app)
    text = page(client, f"/staff/inbox/{cid}?lang=es")
    assert 'id="quiet-hours"' in text and "espera hasta" in text and "America/Chicago" in text
    response = post(client, f"/staff/inbox/{cid}/reply", body="Buenos días")
    assert response.status_code == 303
    [held] = staff_rows(app)
    assert held.send_after == MORNING and held.status == "pending"
    assert "espera hasta" in page(client, f"/staff/inbox/{cid}?lang=es")
    [entry] = audit(app, "inbox_reply")
    assert entry.parameters["held_until"] == MORNING.isoformat()

    # The worker writes at night: they are awake, so a reply goes now, and the held one first.
    say(app, PHONE, "¿hola?", at=NIGHT - timedelta(minutes=30))
    text = page(client, f"/staff/inbox/{cid}?lang=es")
    assert "escribió en las últimas 2 horas" in text
    assert post(client, f"/staff/inbox/{cid}/reply", body="Aquí estamos").status_code == 303
    first, second = staff_rows(app)
    assert first.send_after is None and second.send_after is None
    assert [text_of(app, r) for r in (first, second)] == ["Buenos días", "Aquí estamos"]


def test_a_held_reply_goes_when_the_worker_writes_at_night(app):
    from engage.clock import run_periodic

    # The sender's claim reads the real time: the worker lives where it is night now.
    now = utcnow()
    zone = next(
        f"Etc/GMT{-offset:+d}"
        for offset in range(-12, 13)
        if (now + timedelta(hours=offset)).hour in (1, 2, 3)
    )
    say(app, PHONE, "hola", at=now - timedelta(hours=3))
    cid = contact_id(app)
    with app.app_context(), db.transaction() as session:
        session.execute(update(Contact).values(timezone=zone))
    set_clock(app, now)
    client = signed_in(app)
    assert post(client, f"/staff/inbox/{cid}/reply", body="Buenos días").status_code == 303
    with app.app_context():
        assert run_periodic()["held_replies_released"] == 0  # nobody wrote: it waits
    [held] = staff_rows(app)
    assert held.send_after > now + timedelta(hours=3) and held.status == "pending"

    # The worker writes: they are awake, so the held reply goes on the clock's next round.
    say(app, PHONE, "¿hay alguien?", at=now + timedelta(seconds=1))
    set_clock(app, now + timedelta(seconds=2))
    with app.app_context():
        assert run_periodic()["held_replies_released"] == 1
    [released] = staff_rows(app)
    assert released.send_after is None and released.status != "pending"
    with app.app_context():
        assert run_periodic()["held_replies_released"] == 0


def test_whatsapp_outside_the_window_takes_only_the_reply_template(app):
    say(app, PHONE, "hola", channel="whatsapp", at=AFTERNOON - timedelta(hours=25))
    cid = contact_id(app)
    set_clock(app, AFTERNOON)
    client = signed_in(app)
    # No template configured: nothing can be sent, and the page says why.
    text = page(client, f"/staff/inbox/{cid}?lang=en")
    assert "no reply template is set (ENGAGE_WHATSAPP_REPLY_TEMPLATE)" in text
    assert post(client, f"/staff/inbox/{cid}/reply", template="1").status_code == 409
    app.config["ENGAGE_WHATSAPP_REPLY_TEMPLATE"] = TEMPLATE
    text = page(client, f"/staff/inbox/{cid}?lang=en")
    assert "WhatsApp then allows only an approved template" in text
    assert 'id="send-template"' in text and 'id="send-reply"' not in text
    assert "Tenemos una respuesta a su mensaje." in text
    refused = post(client, f"/staff/inbox/{cid}/reply?lang=en", body="Free text, please")
    assert refused.status_code == 409
    assert "allows only the reply template now" in refused.get_data(as_text=True)
    assert staff_rows(app) == []
    assert post(client, f"/staff/inbox/{cid}/reply", template="1").status_code == 303
    [row] = staff_rows(app)
    assert row.content_sid == TEMPLATE and row.channel == "whatsapp"
    assert (
        text_of(app, row)
        == "Tenemos una respuesta a su mensaje. Responda a este mensaje para leerla."
    )
    assert audit(app, "inbox_reply")[0].parameters["template"] == "yes"

    # Inside the window free text goes, and the page says when the window closes.
    say(app, PHONE, "gracias", channel="whatsapp", at=AFTERNOON - timedelta(hours=1))
    text = page(client, f"/staff/inbox/{cid}?lang=en")
    assert 'id="send-reply"' in text and "window for free text closes on" in text
    assert post(client, f"/staff/inbox/{cid}/reply", body="Con gusto").status_code == 303
    assert staff_rows(app)[-1].content_sid is None


def test_the_reply_template_goes_to_twilio_as_a_template(twilio_app, fake_twilio):
    app = twilio_app(ENGAGE_WHATSAPP_REPLY_TEMPLATE=TEMPLATE)
    app.config["ENGAGE_QUIET_HOURS"] = (0, 0)  # whatever the hour this test runs at
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", WEB_PASSWORD, "staff")
    say(app, PHONE, "hola", channel="whatsapp", at=utcnow() - timedelta(hours=25))
    client = app.test_client()
    sign_in(client, "staff")
    before = len(fake_twilio.requests)
    response = post(client, f"/staff/inbox/{contact_id(app)}/reply", template="1")
    assert response.status_code == 303
    [sent] = fake_twilio.requests[before:]
    assert sent.get("ContentSid") == TEMPLATE and sent.get("Body") is None
    assert sent.get("To") == f"whatsapp:{PHONE}"
    assert not fake_twilio.violations


# -- assignment and handling -----------------------------------------------------------------------


def test_assign_and_handled_are_audited_and_a_new_message_opens_the_thread_again(app):
    say(app, PHONE, "hola")
    cid = contact_id(app)
    client = signed_in(app)
    assert post(client, f"/staff/inbox/{cid}/assign", assignee="me").status_code == 303
    assert thread_order(page(client, "/staff/inbox?show=mine")) == [cid]
    assert thread_order(signed_in_page(app, "admin", "/staff/inbox?show=mine")) == []
    thread = page(client, f"/staff/inbox/{cid}?lang=en")
    through = re.search(r'name="through" value="(\d+)"', thread).group(1)
    assert post(client, f"/staff/inbox/{cid}/handled", through=through).status_code == 303
    assert thread_order(page(client, "/staff/inbox")) == []
    handled = page(client, "/staff/inbox?show=handled&lang=en")
    assert thread_order(handled) == [cid] and "Handled by staff@example.org" in handled
    assert [e.parameters for e in audit(app, "inbox_assign")] == [
        {"contact": f"contact-{cid}", "assigned_to": "staff@example.org"}
    ]
    assert [e.parameters for e in audit(app, "inbox_handled")] == [
        {"contact": f"contact-{cid}", "through": through}
    ]
    # A keyword needs nobody: still handled. An urgent message opens the thread again.
    say(app, PHONE, "CUENTE")
    assert thread_order(page(client, "/staff/inbox")) == []
    say(app, PHONE, "no me dejan salir")
    assert thread_order(page(client, "/staff/inbox")) == [cid]
    assert thread_order(page(client, "/staff/inbox?show=handled")) == []
    # Unassigned, then given to someone else: audited each time.
    admin_id = user_id(app, "admin@example.org")
    assert post(client, f"/staff/inbox/{cid}/assign", assignee="").status_code == 303
    assert post(client, f"/staff/inbox/{cid}/assign", assignee=str(admin_id)).status_code == 303
    assert [e.parameters["assigned_to"] for e in audit(app, "inbox_assign")] == [
        "staff@example.org",
        "nobody",
        "admin@example.org",
    ]
    policy_id = user_id(app, "policy@example.org")
    assert post(client, f"/staff/inbox/{cid}/assign", assignee=str(policy_id)).status_code == 409


def user_id(app, email: str) -> int:
    from engage.models import User

    with app.app_context():
        return db.session().scalar(select(User.id).where(User.email == email))


def signed_in_page(app, role: str, path: str) -> str:
    return page(signed_in(app, role), path)


def test_handled_covers_only_what_the_page_showed(app):
    say(app, PHONE, "hola")
    cid = contact_id(app)
    client = signed_in(app)
    thread = page(client, f"/staff/inbox/{cid}")
    through = re.search(r'name="through" value="(\d+)"', thread).group(1)
    say(app, PHONE, "¿me oyen?")  # arrives while the page is open
    post(client, f"/staff/inbox/{cid}/handled", through=through)
    assert thread_order(page(client, "/staff/inbox")) == [cid]


def test_a_text_answer_given_after_the_page_was_read_keeps_the_thread_open(app):
    for text in ("CUENTE", "1", "2", "5"):
        say(app, PHONE, text)
    cid = contact_id(app)
    say(app, OTHER, "hola")
    client = signed_in(app)
    assert thread_order(page(client, "/staff/inbox")) == [contact_id(app, OTHER)]
    thread = page(client, f"/staff/inbox/{cid}")
    through = re.search(r'name="through" value="(\d+)"', thread).group(1)
    say(app, PHONE, "Nos pagan tarde")  # the text question's answer, after the page loaded
    post(client, f"/staff/inbox/{cid}/handled", through=through)
    assert cid in thread_order(page(client, "/staff/inbox"))
    post(client, f"/staff/inbox/{cid}/handled")
    assert cid not in thread_order(page(client, "/staff/inbox"))
    assert "Respuesta de texto" in page(client, f"/staff/inbox/{cid}?lang=es")


def test_a_reply_that_turns_out_unconfirmed_after_handling_opens_the_thread(app):
    say(app, PHONE, "hola")
    cid = contact_id(app)
    client = signed_in(app)
    post(client, f"/staff/inbox/{cid}/reply", body="Hola, ¿en qué le ayudamos?")
    post(client, f"/staff/inbox/{cid}/handled")
    assert thread_order(page(client, "/staff/inbox")) == []
    with app.app_context(), db.transaction() as session:
        session.execute(
            update(Message).where(Message.kind == "staff_reply").values(status="unconfirmed")
        )
    text = page(client, "/staff/inbox?lang=en")
    assert thread_order(text) == [cid] and "Unconfirmed send" in text


def test_the_urgent_open_count_on_staff_and_in_the_navigation(app):
    say(app, PHONE, "me quitaron el pasaporte")
    say(app, PHONE, "y me amenazan")
    say(app, OTHER, "no me pagan")
    say(app, "+15550108888", "hola")
    client = signed_in(app)
    dashboard = page(client, "/staff?lang=en")
    assert 'data-count="urgent">2<' in dashboard
    assert 'data-count="nav-urgent">2<' in dashboard
    assert 'data-count="nav-urgent">2<' in page(client, "/staff/inbox")
    post(client, f"/staff/inbox/{contact_id(app)}/handled")
    dashboard = page(client, "/staff?lang=en")
    assert 'data-count="urgent">1<' in dashboard and 'data-count="nav-urgent">1<' in dashboard
    post(client, f"/staff/inbox/{contact_id(app, OTHER)}/handled")
    assert 'data-count="nav-urgent"' not in page(client, "/staff")
    # The policy team never sees the inbox, nor its count.
    results = signed_in_page(app, "policy", "/results")
    assert "/staff/inbox" not in results and "nav-urgent" not in results


# -- who may ---------------------------------------------------------------------------------------


POSTS = ["reply", "note", "assign", "handled"]


@pytest.mark.parametrize("action", POSTS)
def test_posts_need_the_csrf_token_and_a_staff_role(app, action):
    say(app, PHONE, "hola")
    cid = contact_id(app)
    path = f"/staff/inbox/{cid}/{action}"
    data = {"body": "hola", "assignee": "me"}
    anonymous = app.test_client()
    token = csrf_token(anonymous)
    assert anonymous.post(path, data={**data, "csrf_token": token}).status_code == 302
    policy = signed_in(app, "policy")
    token = csrf_token(policy, "/results")
    assert policy.post(path, data={**data, "csrf_token": token}).status_code == 403
    staff = signed_in(app, "staff")
    assert staff.post(path, data=data).status_code == 400  # no token
    assert staff_rows(app) == []
    with app.app_context():
        assert db.session().scalar(select(ThreadNote.id)) is None
    assert audit(app, f"inbox_{action}") == []
    assert post(staff, path, **data).status_code == 303
    assert len(audit(app, f"inbox_{action}")) == 1


def test_the_audit_trail_names_inbox_actions(app):
    say(app, PHONE, "hola")
    client = signed_in(app)
    post(client, f"/staff/inbox/{contact_id(app)}/reply", body="Un texto privado")
    text = signed_in_page(app, "admin", "/admin/audit?lang=es")
    assert "respuesta a un trabajador" in text and "Un texto privado" not in text


# -- data and settings -----------------------------------------------------------------------------


def test_canned_replies_ship_in_spanish_english_and_kreyol():
    library = load_canned_replies(str(ROOT / "locales"))
    assert library.problems == ()
    every = library.languages
    assert {"es", "en", "ht"} <= set(every)
    for canned in every.values():
        assert {r.id for r in canned.replies} >= {"ask_to_call", "hotline", "thanks"}
        assert all(0 < len(r.text) <= MAX_TEXT for r in canned.replies)
        assert canned.whatsapp_template
    ask = {language: c.replies[0].text for language, c in every.items()}
    assert ask["es"] == "¿Podemos llamarle? 1 Sí 2 No"
    assert all("1-888-373-7888" in c.replies[1].text for c in every.values())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("replies: nope\n", "needs a list named replies"),
        ("replies:\n  - {id: a, label: A}\n", "reply a needs a text"),
        ("replies:\n  - {id: A!, label: A, text: t}\n", "needs an id"),
        (f"replies:\n  - {{id: a, label: A, text: {'x' * 1601}}}\n", "over 1600 characters"),
        ("replies:\n  - {id: a, label: A, text: t}\n  - {id: a, label: B, text: u}\n", "twice"),
        ("replies: [\n", "cannot be read"),
    ],
)
def test_a_broken_canned_replies_file_says_what_is_wrong(tmp_path, text, problem):
    from engage.services.canned_replies import CannedRepliesError

    path = tmp_path / "canned_replies.yaml"
    path.write_text(text)
    with pytest.raises(CannedRepliesError, match=re.escape(problem)):
        read_canned_replies(path, "es")


def test_a_broken_file_leaves_its_language_without_canned_replies_not_the_inbox(tmp_path):
    for language, text in (("es", "replies:\n  - {id: a, label: A, text: Hola}\n"), ("en", "[")):
        (tmp_path / "locales" / language).mkdir(parents=True)
        (tmp_path / "locales" / language / "canned_replies.yaml").write_text(text)
    library = load_canned_replies(str(tmp_path / "locales"))
    assert list(library.languages) == ["es"]
    [problem] = library.problems
    assert problem.startswith("locales/en/canned_replies.yaml: cannot be read")


def test_the_reply_template_setting_is_read_and_checked(tmp_path):
    base = {"ENGAGE_ENV": "development"}
    assert load_config(base, tmp_path)["ENGAGE_WHATSAPP_REPLY_TEMPLATE"] == ""
    settings = load_config({**base, "ENGAGE_WHATSAPP_REPLY_TEMPLATE": TEMPLATE}, tmp_path)
    assert settings["ENGAGE_WHATSAPP_REPLY_TEMPLATE"] == TEMPLATE
    with pytest.raises(ConfigError, match="ENGAGE_WHATSAPP_REPLY_TEMPLATE"):
        load_config({**base, "ENGAGE_WHATSAPP_REPLY_TEMPLATE": "my-template"}, tmp_path)


def test_a_staff_reply_reads_as_text_on_the_contact_page_too(app):
    say(app, PHONE, "necesito hablar con alguien", at=AFTERNOON)
    set_clock(app, AFTERNOON)
    contact = contact_id(app)
    client = signed_in(app)
    post(client, f"/staff/inbox/{contact}/reply", body="Le escribimos mañana, gracias.")
    stored = staff_rows(app)
    assert stored and "Le escribimos" not in stored[0].body  # kept under the contact's key
    assert "Le escribimos mañana, gracias." in page(client, f"/staff/contacts/{contact}")

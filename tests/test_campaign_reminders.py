"""Campaign reminders from the clock: to whom, when, how often, in which words and form."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select, update
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.cli import main
from engage.jobs.campaigns import run_campaign_clock
from engage.models import Campaign, Contact, Conversation, Message, SurveyVersion
from engage.services.maintenance import expire_idle_conversations

SURVEY = "working-conditions"
NEW_YORK = ZoneInfo("America/New_York")
START_ES = "Recordatorio: Condiciones de trabajo, una encuesta corta. Responda 1 para empezar."
GO_ON_ES = "Recordatorio: Condiciones de trabajo no esta terminada."


def cli(app, *args):
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    return result.output


def import_contacts(app, tmp_path, lines):
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state\n" + "\n".join(lines) + "\n")
    cli(app, "contacts", "import", str(path))


def start(app, *options):
    """A campaign to everyone, its invitations sent at once (no Redis: in this process)."""
    output = cli(app, "campaigns", "start", SURVEY, *options)
    assert "queued now" in output
    with app.app_context():
        return db.session().scalars(select(Campaign.id).order_by(Campaign.id.desc())).first()


def clock(app, hours: float) -> dict[str, int]:
    """The clock's campaign round, as if it ran this many hours from now."""
    with app.app_context():
        return run_campaign_clock(datetime.now(UTC) + timedelta(hours=hours))


def reminders(app):
    with app.app_context():
        return (
            db.session()
            .scalars(select(Message).where(Message.kind == "reminder").order_by(Message.id))
            .all()
        )


def sent_to(fake_twilio, phone):
    return [
        r.get("Body") for r in fake_twilio.requests if r.get("To") in (phone, f"whatsapp:{phone}")
    ]


def write(app, fake_twilio, phone, text):
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(phone, text)
    )


SILENT, ANSWERED, STOPPED, ERASED, DONE = (f"+1305555010{n}" for n in range(5))


@pytest.fixture
def campaign_app(twilio_app, tmp_path):
    app = twilio_app(ENGAGE_QUIET_HOURS="0-0")
    import_contacts(
        app, tmp_path, [f"{p},es,clinic,FL" for p in (SILENT, ANSWERED, STOPPED, ERASED, DONE)]
    )
    return app


def test_a_reminder_goes_to_the_silent_contact_only_once_per_wait_and_at_most_n_times(
    campaign_app, fake_twilio
):
    app = campaign_app
    campaign_id = start(app, "--remind-after", "24", "--reminders", "2")
    assert len(fake_twilio.requests) == 5  # the invitations
    write(app, fake_twilio, ANSWERED, "1")  # consents: started
    write(app, fake_twilio, STOPPED, "ALTO")  # opts out
    cli(app, "contacts", "erase", ERASED, "--yes")
    with app.app_context(), db.transaction() as session:
        done = session.scalar(select(Contact.id).where(Contact.id == 5))
        session.execute(
            update(Conversation).where(Conversation.contact_id == done).values(status="completed")
        )
    fake_twilio.reset()

    assert clock(app, 23)["reminders"] == 0  # not yet
    assert clock(app, 25)["reminders"] == 1
    [reminder] = reminders(app)
    assert (reminder.contact_id, reminder.campaign_id, reminder.queue) == (1, campaign_id, "bulk")
    [body] = sent_to(fake_twilio, SILENT)
    assert body.startswith(START_ES) and body.endswith("ALTO para no recibir mas mensajes.")
    assert len(fake_twilio.requests) == 1
    # The clock runs again (or twice at once): nothing more until the wait has passed again.
    assert clock(app, 25)["reminders"] == 0
    assert clock(app, 40)["reminders"] == 0
    assert clock(app, 50)["reminders"] == 1
    assert clock(app, 80)["reminders"] == 0  # at most two
    assert len(sent_to(fake_twilio, SILENT)) == 2 and len(fake_twilio.requests) == 2
    with app.app_context():
        campaign = db.session().get(Campaign, campaign_id)
        from engage.services.campaigns import progress

        counts = progress(db.session(), campaign)
    assert counts["reminded"] == 1
    # Nothing left to send and nobody left to remind: the campaign is over.
    assert counts["state"] == "finished"


def test_one_round_reminds_everyone_due_a_chunk_at_a_time(campaign_app, fake_twilio, monkeypatch):
    import engage.services.reminders as reminders_service

    monkeypatch.setattr(reminders_service, "CHUNK", 2)
    start(campaign_app, "--remind-after", "24", "--reminders", "1")
    fake_twilio.reset()
    assert clock(campaign_app, 25)["reminders"] == 5
    assert sorted(r.contact_id for r in reminders(campaign_app)) == [1, 2, 3, 4, 5]
    assert len(fake_twilio.requests) == 5


def test_a_reply_after_a_reminder_is_read_against_the_invitation(campaign_app, fake_twilio):
    app = campaign_app
    start(app, "--remind-after", "24", "--reminders", "1")
    clock(app, 25)
    fake_twilio.reset()
    write(app, fake_twilio, SILENT, "1")  # consent, after the reminder
    [reply] = sent_to(fake_twilio, SILENT)
    assert "cultivo" in reply  # the survey began (state is known from the import)


def test_no_reminder_in_the_contact_s_quiet_hours(twilio_app, fake_twilio, tmp_path):
    later = datetime.now(UTC) + timedelta(hours=25)
    quiet_from = later.astimezone(NEW_YORK).hour
    app = twilio_app(ENGAGE_QUIET_HOURS=f"{quiet_from}-{(quiet_from + 1) % 24}")
    # Miami is in New York's zone; Seattle three hours behind is not in quiet hours then.
    import_contacts(app, tmp_path, [f"{SILENT},es,clinic,FL", "+12065550109,es,clinic,WA"])
    start(app, "--remind-after", "24", "--reminders", "1")
    with app.app_context(), db.transaction() as session:
        # The invitations went out now, whatever quiet hours say about this hour.
        for row in session.scalars(select(Message).where(Message.kind == "invitation")):
            row.status, row.sent_at, row.send_after = "sent", datetime.now(UTC), None
    assert clock(app, 25)["reminders"] == 1
    [reminder] = reminders(app)
    with app.app_context():
        assert db.session().get(Contact, reminder.contact_id).timezone == "America/Los_Angeles"
    assert clock(app, 26)["reminders"] == 1  # an hour later it is morning in Miami too
    assert {r.contact_id for r in reminders(app)} == {1, 2}


def test_not_completed_reopens_an_expired_invitation_at_the_next_question(
    twilio_app, fake_twilio, tmp_path
):
    app = twilio_app(ENGAGE_QUIET_HOURS="0-0")
    import_contacts(app, tmp_path, [f"{SILENT},es,clinic,FL", f"{ANSWERED},es,clinic,FL"])
    start(app, "--remind-after", "100", "--reminders", "1", "--remind", "not_completed")
    write(app, fake_twilio, SILENT, "1")  # consent: state is known, the crop is asked
    write(app, fake_twilio, SILENT, "1")  # a crop: the next question is asked
    with app.app_context(), db.transaction() as session:
        conversation = session.scalar(select(Conversation).where(Conversation.contact_id == 1))
        asked = conversation.pending
        assert conversation.last_question_id == "main_crop" and asked == "first_season"
        session.execute(
            update(Conversation).values(last_activity_at=datetime.now(UTC) - timedelta(hours=80))
        )
    with app.app_context(), db.transaction() as session:
        assert expire_idle_conversations(session, idle_hours=72) == 2
    fake_twilio.reset()
    assert clock(app, 101)["reminders"] == 2
    with app.app_context():
        session = db.session()
        reopened = {c.contact_id: c for c in session.scalars(select(Conversation))}
    assert (reopened[1].status, reopened[1].pending, reopened[1].ended_at) == (
        "active",
        asked,
        None,
    )
    assert (reopened[2].status, reopened[2].pending) == ("active", "_consent")
    assert sent_to(fake_twilio, SILENT)[0].startswith(GO_ON_ES)
    assert sent_to(fake_twilio, ANSWERED)[0].startswith(START_ES)
    fake_twilio.reset()
    write(app, fake_twilio, SILENT, "1")  # the answer to the reopened question
    with app.app_context():
        conversation = db.session().get(Conversation, reopened[1].id)
        assert conversation.last_question_id == "first_season"


def test_a_paused_or_cancelled_campaign_reminds_nobody(campaign_app, fake_twilio):
    app = campaign_app
    campaign_id = start(app, "--remind-after", "24", "--reminders", "1")
    cli(app, "campaigns", "pause", str(campaign_id))
    assert clock(app, 25)["reminders"] == 0
    cli(app, "campaigns", "resume", str(campaign_id))
    cli(app, "campaigns", "cancel", str(campaign_id))
    assert clock(app, 25)["reminders"] == 0
    assert reminders(app) == []


def test_a_whatsapp_reminder_outside_the_window_is_the_template(twilio_app, fake_twilio, tmp_path):
    app = twilio_app(ENGAGE_QUIET_HOURS="0-0")
    import_contacts(app, tmp_path, [f"{SILENT},es,clinic,FL", f"{ANSWERED},es,clinic,FL"])
    template = "HX" + "1" * 32
    with app.app_context(), db.transaction() as session:
        row = session.scalars(
            select(SurveyVersion).where(
                SurveyVersion.survey_id == SURVEY, SurveyVersion.is_current.is_(True)
            )
        ).one()
        row.definition = {**row.definition, "whatsapp_template": {"es": template}}
        row.version = "with-template"
    start(app, "--channel", "whatsapp", "--remind-after", "24", "--reminders", "1")
    # One of the two writes by WhatsApp (asks for help: the invitation stays open, and the
    # 24 h window opens); the other never did, so its window is closed.
    write(app, fake_twilio, f"whatsapp:{ANSWERED}", "AYUDA")
    fake_twilio.reset()
    with app.app_context(), db.transaction() as session:
        session.scalar(select(Campaign)).remind = "not_completed"  # writing counts as started
    assert clock(app, 25)["reminders"] == 2
    by_phone = {r.get("To"): r for r in fake_twilio.requests}
    closed = by_phone[f"whatsapp:{SILENT}"]
    assert closed.get("ContentSid") == template and closed.get("Body") is None
    opened = by_phone[f"whatsapp:{ANSWERED}"]
    assert opened.get("ContentSid") is None and opened.get("Body").startswith(START_ES)
    assert opened.get("Body").endswith("ALTO para no recibir más mensajes.")  # accents kept


# SQLite runs one writer at a time: two clocks cannot overlap there.
@pytest.mark.parametrize("database", ["postgresql"])
def test_two_clocks_at_once_remind_once(twilio_app, fake_twilio, tmp_path, database):
    from engage.services.conversations import settings_from
    from engage.services.reminders import write_reminders

    app = twilio_app(ENGAGE_QUIET_HOURS="0-0")
    import_contacts(app, tmp_path, [f"{SILENT},es,clinic,FL"])
    campaign_id = start(app, "--remind-after", "24", "--reminders", "3")
    later = datetime.now(UTC) + timedelta(hours=25)
    written: list[int] = []

    def one_clock(first_done: threading.Event | None, hold: threading.Event | None) -> None:
        with app.app_context(), db.transaction() as session:
            settings = settings_from(app.config, app.extensions["engage.vault"])
            campaign = session.get(Campaign, campaign_id)
            result = write_reminders(session, settings, campaign, quiet_hours=(0, 0), now=later)
            written.append(len(result.message_ids))
            if first_done is not None:
                first_done.set()
                hold.wait(10)  # still holding the contact while the other clock runs

    first_done, hold = threading.Event(), threading.Event()
    first = threading.Thread(target=one_clock, args=(first_done, hold))
    first.start()
    first_done.wait(10)
    one_clock(None, None)  # the contact is locked: skipped, not reminded twice
    hold.set()
    first.join()
    one_clock(None, None)  # after the first committed: already reminded
    assert written == [1, 0, 0]
    assert len(reminders(app)) == 1

"""`engage campaigns start`: who is invited, in which language, when, and what a reply does."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.cli import main
from engage.models import AuditEntry, Campaign, Contact, Conversation, Message
from engage.survey.texts import SystemTexts
from tests import readback as rb

LOCALES = Path(__file__).resolve().parent.parent / "locales"


def cli(app, *args):
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    return result


def import_contacts(app, tmp_path, lines):
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state,crop\n" + "\n".join(lines) + "\n")
    result = cli(app, "contacts", "import", str(path))
    assert result.exit_code == 0, result.output


def outbound(app):
    with app.app_context():
        return (
            db.session()
            .scalars(select(Message).where(Message.direction == "out").order_by(Message.id))
            .all()
        )


DAYTIME = "2031-03-04T11:00:00-05:00"  # 16:00 UTC: day on both US coasts


def test_campaign_invites_matching_contacts_in_their_language(twilio_app, fake_twilio, tmp_path):
    app = twilio_app()
    import_contacts(
        app,
        tmp_path,
        [
            "+13055550101,es,clinic,FL,citrus",
            "+13055550102,en,clinic,FL,berries",
            "+12065550103,es,clinic,WA,tree_fruit",
            "+13055550104,ht,clinic,FL,",
        ],
    )
    result = cli(
        app, "campaigns", "start", "working-conditions", "--where", "state=FL", "--at", DAYTIME
    )
    assert result.exit_code == 0, result.output
    assert "3 invited" in result.output
    rows = outbound(app)
    assert [r.queue for r in rows] == ["bulk"] * 3
    assert all(r.send_after == datetime(2031, 3, 4, 16, tzinfo=UTC) for r in rows)
    # Nobody has consented yet: each gets the consent text, in their own language.
    assert sorted(r.body.split(".")[0] for r in rows) == [
        "Centro Campesino ap poze w kesyon sou travay ou",
        "Centro Campesino asks about your work",
        "Centro Campesino le pregunta sobre su trabajo",
    ]


def test_campaign_skips_opted_out_mid_survey_and_completed(twilio_app, fake_twilio, tmp_path):
    app = twilio_app()
    import_contacts(
        app,
        tmp_path,
        [
            "+13055550101,es,clinic,FL,",
            "+13055550102,es,clinic,FL,",
            "+13055550103,es,clinic,FL,",
            "+13055550104,es,clinic,FL,",
        ],
    )
    client = app.test_client()
    token = fake_twilio.auth_token
    post_signed(client, token, "/twilio/messages", inbound_form("+13055550101", "ALTO"))
    post_signed(client, token, "/twilio/messages", inbound_form("+13055550102", "TRABAJO"))
    with app.app_context(), db.transaction() as session:
        session.add(
            Conversation(
                contact_id=3,
                survey_id="working-conditions",
                version="v0",
                language="es",
                status="completed",
                record_key=0,
            )
        )
    fake_twilio.reset()
    result = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert result.exit_code == 0, result.output
    assert "1 invited" in result.output
    assert {r.contact_id for r in outbound(app) if r.kind == "invitation"} == {4}


def test_quiet_hours_hold_bulk_until_morning_in_the_contacts_zone(twilio_app, tmp_path):
    app = twilio_app()
    import_contacts(
        app,
        tmp_path,
        ["+13055550101,es,clinic,FL,", "+12065550102,es,clinic,WA,", "+15551230103,es,clinic,,"],
    )
    # 22:30 in Miami, 19:30 in Seattle.
    result = cli(
        app, "campaigns", "start", "working-conditions", "--at", "2031-03-04T22:30:00-05:00"
    )
    assert result.exit_code == 0, result.output
    by_contact = {r.contact_id: r.send_after for r in outbound(app)}
    assert by_contact[1] == datetime(2031, 3, 5, 13, tzinfo=UTC)  # 08:00 in Miami (EST)
    assert by_contact[2] == datetime(2031, 3, 5, 3, 30, tzinfo=UTC)  # Seattle: at once
    assert by_contact[3] == datetime(2031, 3, 5, 16, tzinfo=UTC)  # unknown: 08:00 Pacific


def test_a_reply_to_an_invitation_is_read_against_it(twilio_app, fake_twilio, tmp_path):
    app = twilio_app()
    import_contacts(app, tmp_path, ["+13055550101,es,clinic,FL,"])
    cli(app, "campaigns", "start", "working-conditions")  # now, unless quiet hours hold it
    fake_twilio.reset()
    client = app.test_client()
    post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form("+13055550101", "1")
    )
    # Consent given: the intro, then the crop (state is known from the import, not re-asked).
    body = fake_twilio.requests[0].get("Body")
    assert body.startswith("Gracias. Son unas 15 preguntas")
    assert "¿En qué cultivo trabaja mas?" in body and "¿En qué estado" not in body


def test_whatsapp_invitation_uses_the_template_outside_the_window(
    twilio_app, fake_twilio, tmp_path
):
    app = twilio_app()
    import_contacts(app, tmp_path, ["+13055550101,es,clinic,FL,"])
    with app.app_context(), db.transaction() as session:
        from engage.models import SurveyVersion

        row = session.scalars(
            select(SurveyVersion).where(SurveyVersion.survey_id == "housing-check")
        ).one()
        definition = dict(row.definition)
        definition["whatsapp_template"] = {"es": "HX" + "1" * 32, "en": "HX" + "2" * 32}
        row.definition = definition
        row.version = "with-template"
    result = cli(
        app, "campaigns", "start", "housing-check", "--channel", "whatsapp", "--at", DAYTIME
    )
    assert result.exit_code == 0, result.output
    [row] = outbound(app)
    assert row.content_sid == "HX" + "1" * 32
    # Due now, as the scheduler would find it in the morning.
    with app.app_context(), db.transaction() as session:
        session.get(Message, row.id).send_after = None
    with app.app_context():
        from engage.jobs.send import send_batch

        assert send_batch([row.id]) == 1
    [sent] = fake_twilio.requests
    assert sent.get("ContentSid") == "HX" + "1" * 32
    assert sent.get("Body") is None
    assert sent.get("To") == "whatsapp:+13055550101"


def test_unknown_survey_or_attribute_is_a_clear_error(twilio_app):
    app = twilio_app()
    result = cli(app, "campaigns", "start", "no-such-survey")
    assert result.exit_code == 1 and "no active survey 'no-such-survey'" in result.output
    result = cli(app, "campaigns", "start", "working-conditions", "--where", "farm=x")
    assert result.exit_code == 1 and "unknown attribute(s) farm" in result.output
    result = cli(app, "campaigns", "start", "working-conditions", "--at", "2031-03-04T09:00")
    assert result.exit_code == 2 and "offset" in result.output


def test_a_contact_who_consented_before_is_invited_without_consent(
    twilio_app, fake_twilio, tmp_path
):
    app = twilio_app()
    client = app.test_client()
    token = fake_twilio.auth_token
    for text in ("HOUSING", "1", "1", "1"):  # consented and completed the housing survey
        post_signed(client, token, "/twilio/messages", inbound_form("+13055550101", text))
    fake_twilio.reset()
    result = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert "1 invited" in result.output
    [invitation] = [r for r in outbound(app) if r.kind == "invitation"]
    assert invitation.body == "Working conditions: a short survey. Reply 1 to start."


def test_bulk_invitations_go_to_rq_in_batches_and_a_worker_sends_them(
    twilio_app, fake_twilio, redis_url, tmp_path
):
    from engage.jobs import BULK, queue
    from engage.jobs.worker import run_worker

    app = twilio_app(REDIS_URL=redis_url)
    import_contacts(app, tmp_path, [f"+1305555{n:04d},es,clinic,FL," for n in range(150)])
    result = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert "150 invited" in result.output
    # Not due yet (--at is in the future): nothing is queued; the clock's sweep hands them over.
    with app.app_context(), db.transaction() as session:
        for row in session.scalars(select(Message)):
            row.send_after = None
        ids = [row.id for row in session.scalars(select(Message).order_by(Message.id))]
    with app.app_context():
        from engage.jobs import dispatch_sends

        dispatch_sends(ids, queue_name=BULK)
        assert queue(BULK).count == 2  # 100 + 50 rows
        run_worker(burst=True)
    assert len(fake_twilio.requests) == 150
    assert {r.status for r in outbound(app)} == {"queued"}


def test_campaign_rows_hold_the_invitation_and_its_conversation(twilio_app, tmp_path):
    app = twilio_app()
    import_contacts(
        app, tmp_path, ["+13055550101,es,clinic,FL,citrus", "+12065550102,en,clinic,WA,"]
    )
    result = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert result.exit_code == 0, result.output
    with app.app_context():
        session = db.session()
        conversations = session.scalars(select(Conversation).order_by(Conversation.id)).all()
        rows = outbound(app)
        [campaign] = session.scalars(select(Campaign)).all()
    assert campaign.invited == 2
    assert [(c.contact_id, c.language) for c in conversations] == [(1, "es"), (2, "en")]
    started = conversations[0].started_at
    for conversation in conversations:
        assert conversation.survey_id == "working-conditions" and conversation.channel == "sms"
        assert conversation.status == "active" and conversation.pending == "_consent"
        assert conversation.misses == {"texts": []} and conversation.consent_tries == 0
        assert conversation.is_invited is True and conversation.is_simulated is False
        assert conversation.started_at == started
        # Idle from when the invitation is due (--at), not from when it was written.
        assert conversation.last_activity_at == datetime(2031, 3, 4, 16, tzinfo=UTC)
        assert started.tzinfo == UTC and conversation.ended_at is None
        assert conversation.last_question_id is None
    assert [c.last_profile for c in conversations] == [
        {"state": "FL", "crop": "citrus"},
        {"state": "WA"},
    ]
    assert [(r.contact_id, r.conversation_id, r.sequence) for r in rows] == [
        (1, conversations[0].id, 0),
        (2, conversations[1].id, 0),
    ]
    for row in rows:
        assert (row.direction, row.channel, row.kind, row.status, row.queue) == (
            "out",
            "sms",
            "invitation",
            "pending",
            "bulk",
        )
        assert row.our_address == "+15005550006" and row.campaign_id == campaign.id
        assert row.is_free_text is False and row.is_simulated is False
        assert row.content_sid is None and row.content_variables is None
        assert row.sid is None and row.sent_at is None and row.attempted_at is None
        assert row.send_after == datetime(2031, 3, 4, 16, tzinfo=UTC)
        assert row.created_at == started
    with app.app_context():
        assert [rb.address(app, r) for r in rows] == [
            "+13055550101",
            "+12065550102",
        ]


def quiet_now_in_new_york_only() -> str:
    """ENGAGE_QUIET_HOURS around this hour in New York: day in Seattle (three hours behind)."""
    hour = datetime.now(ZoneInfo("America/New_York")).hour
    return f"{(hour - 1) % 24}-{(hour + 2) % 24}"


def test_a_campaign_in_batches_hands_only_due_rows_to_rq_after_each_commit(
    twilio_app, redis_url, tmp_path, monkeypatch
):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    import engage.jobs.campaigns as jobs_campaigns
    from engage.jobs import BULK, redis_connection
    from engage.jobs.campaigns import start_campaign

    app = twilio_app(REDIS_URL=redis_url, ENGAGE_QUIET_HOURS=quiet_now_in_new_york_only())
    # Miami and Seattle alternate, so every batch of two holds both zones (five in Miami).
    lines = [
        f"+1305555{n:04d},es,clinic,FL," if n % 2 == 0 else f"+1206555{n:04d},es,clinic,WA,"
        for n in range(9)
    ]
    import_contacts(app, tmp_path, lines)
    handed_over = []

    def dispatch_committed(ids, *, queue_name):
        # Every row handed to RQ is already committed: another session sees it.
        with db.transaction() as session:
            visible = session.scalars(select(Message.id).where(Message.id.in_(ids))).all()
        assert sorted(visible) == sorted(ids)
        handed_over.append(list(ids))
        return dispatch(ids, queue_name=queue_name)

    dispatch = jobs_campaigns.dispatch_sends
    monkeypatch.setattr(jobs_campaigns, "dispatch_sends", dispatch_committed)
    with app.app_context():
        summary = start_campaign("working-conditions", {}, "sms", None, batch_size=2)
        connection = redis_connection()
        job_ids = [j.decode() for j in connection.lrange(f"rq:queue:{BULK}", 0, -1)]
        jobs = Job.fetch_many(job_ids, connection=connection, serializer=JSONSerializer)
        queued = [message_id for job in jobs for message_id in job.args[0]]
    assert (summary.invited, summary.sent_now, summary.scheduled) == (9, 4, 5)
    assert len(handed_over) == 5  # one call per batch of two contacts, after its commit
    rows = outbound(app)
    assert len(rows) == 9 and len({r.contact_id for r in rows}) == 9
    due = sorted(r.id for r in rows if r.send_after is None)
    assert sorted(queued) == due == sorted(id_ for ids in handed_over for id_ in ids)
    with app.app_context():
        zones = dict(db.session().execute(select(Contact.id, Contact.timezone)).all())
        [campaign] = db.session().scalars(select(Campaign)).all()
    assert campaign.invited == 9
    assert {zones[r.contact_id] for r in rows if r.send_after is None} == {"America/Los_Angeles"}
    assert {zones[r.contact_id] for r in rows if r.send_after is not None} == {"America/New_York"}
    assert all(r.send_after > r.created_at for r in rows if r.send_after is not None)


def test_a_campaign_started_again_invites_nobody_twice(twilio_app, tmp_path):
    app = twilio_app()
    import_contacts(app, tmp_path, [f"+1305555{n:04d},es,clinic,FL," for n in range(3)])
    first = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert "3 invited" in first.output
    again = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert again.exit_code == 0, again.output
    assert "0 invited" in again.output
    assert len(outbound(app)) == 3


def test_one_batch_mixing_languages_and_consent_gives_each_contact_its_own_invitation(
    twilio_app, tmp_path
):
    app = twilio_app()
    import_contacts(
        app,
        tmp_path,
        [
            "+13055550101,es,clinic,FL,",
            "+13055550102,es,clinic,FL,",
            "+13055550103,en,clinic,FL,",
            "+13055550104,en,clinic,FL,",
        ],
    )
    with app.app_context(), db.transaction() as session:
        for contact in session.scalars(select(Contact).where(Contact.id.in_([2, 3]))):
            contact.has_consented = True
    result = cli(app, "campaigns", "start", "working-conditions", "--at", DAYTIME)
    assert "4 invited" in result.output
    with app.app_context():
        pending = dict(
            db.session().execute(select(Conversation.contact_id, Conversation.pending)).all()
        )
    bodies = {r.contact_id: r.body for r in outbound(app)}
    assert pending == {1: "_consent", 2: "_invitation", 3: "_invitation", 4: "_consent"}
    assert bodies[1].startswith("Centro Campesino le pregunta sobre su trabajo.")
    assert bodies[2] == "Condiciones de trabajo: una encuesta corta. Responda 1 para empezar."
    assert bodies[3] == "Working conditions: a short survey. Reply 1 to start."
    assert bodies[4].startswith("Centro Campesino asks about your work.")


def test_a_whatsapp_invitation_keeps_the_accents_of_its_texts(twilio_app, fake_twilio, tmp_path):
    app = twilio_app()
    import_contacts(app, tmp_path, ["+13055550101,es,clinic,FL,"])
    result = cli(
        app, "campaigns", "start", "housing-check", "--channel", "whatsapp", "--at", DAYTIME
    )
    assert result.exit_code == 0, result.output
    [row] = outbound(app)
    texts = SystemTexts(LOCALES, "es", "Centro Campesino")
    # Only SMS gets the plain GSM-7 spelling (¿Participa? 1=Sí 2=No).
    assert row.body == texts.consent() != texts.sms.consent()


def test_campaign_commands_start_with_reminders_list_pause_resume_and_cancel(
    twilio_app, fake_twilio, tmp_path
):
    app = twilio_app()
    import_contacts(app, tmp_path, ["+13055550101,es,clinic,FL,", "+13055550102,es,clinic,FL,"])
    result = cli(
        app,
        "campaigns",
        "start",
        "working-conditions",
        "--at",
        DAYTIME,
        "--remind-after",
        "48",
        "--reminders",
        "2",
        "--remind",
        "not_completed",
    )
    assert result.exit_code == 0, result.output
    assert "campaign 1: 2 invited" in result.output
    with app.app_context():
        campaign = db.session().get(Campaign, 1)
        assert (campaign.state, campaign.reminders, campaign.remind_after_hours) == (
            "scheduled",
            2,
            48,
        )
        assert (campaign.remind, campaign.contacts, campaign.created_by) == (
            "not_completed",
            2,
            None,
        )
    listed = cli(app, "campaigns", "list").output
    assert "scheduled" in listed and "working-conditions" in listed
    assert "2 after 48 h (not_completed)" in listed
    assert "paused" in cli(app, "campaigns", "pause", "1").output
    refused = cli(app, "campaigns", "pause", "1")
    assert refused.exit_code == 1 and "campaign 1 is paused: it cannot be paused" in refused.output
    assert "resumed; 0 message(s) queued now" in cli(app, "campaigns", "resume", "1").output
    assert "cancelled; 2 unsent message(s) dropped" in cli(app, "campaigns", "cancel", "1").output
    assert {r.status for r in outbound(app)} == {"cancelled"}
    assert cli(app, "campaigns", "cancel", "1").exit_code == 1
    assert "no campaign 9" in cli(app, "campaigns", "pause", "9").output
    with app.app_context():
        actions = db.session().scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        actors = set(db.session().scalars(select(AuditEntry.actor)).all())
    assert actions == ["campaign_pause", "campaign_resume", "campaign_cancel"]
    assert all(actor.startswith("cli:") for actor in actors)


def test_campaign_start_checks_its_reminder_options(twilio_app):
    app = twilio_app()
    result = cli(app, "campaigns", "start", "working-conditions", "--reminders", "2")
    assert result.exit_code == 2 and "--remind-after" in result.output
    result = cli(
        app, "campaigns", "start", "working-conditions", "--remind-after", "24", "--reminders", "9"
    )
    assert result.exit_code == 1 and "reminders must be from 0 to 5" in result.output
    result = cli(app, "campaigns", "start", "working-conditions", "--remind", "sometimes")
    assert result.exit_code == 2
    with app.app_context():
        assert db.session().scalars(select(Campaign)).all() == []


def test_a_long_start_reports_its_progress_batch_by_batch(twilio_app, tmp_path):
    from engage.jobs.campaigns import start_campaign

    app = twilio_app()
    import_contacts(app, tmp_path, [f"+1305555{n:04d},es,clinic,FL," for n in range(5)])
    seen = []
    with app.app_context():
        start_campaign(
            "working-conditions",
            {},
            "sms",
            datetime(2031, 3, 4, 16, tzinfo=UTC),
            batch_size=2,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_the_progress_bar_draws_on_a_terminal_and_stays_quiet_elsewhere(tmp_path):
    import io
    import os
    import pty
    import select

    from engage.cli import _ProgressBar

    controller, terminal = pty.openpty()
    with os.fdopen(terminal, "w") as tty:
        bar = _ProgressBar(tty)
        bar.update(2, 4)
        bar.update(4, 4)
        bar.close()
        tty.flush()
        drawn = ""
        while select.select([controller], [], [], 0.5)[0]:
            drawn += os.read(controller, 4096).decode()
    os.close(controller)
    assert "inviting" in drawn and "2/4" in drawn and "4/4" in drawn and "100%" in drawn
    pipe = io.StringIO()
    bar = _ProgressBar(pipe)
    bar.update(4, 4)
    bar.close()
    assert "4/4" not in pipe.getvalue()

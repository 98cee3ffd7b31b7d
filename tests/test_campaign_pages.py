"""The campaign pages: the preview's counts and costs, a start that writes on `bulk`, progress
from the fake Twilio's answers and status callbacks, pause, resume, cancel, roles and CSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select
from test_webhooks import status_form
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.cli import main
from engage.models import AuditEntry, Campaign, Contact, Conversation, Message
from engage.services.accounts import create_user
from tests.conftest import WEB_PASSWORD
from tests.test_web_access import csrf_token, sign_in

SURVEY = "working-conditions"
PROGRESS_KEYS = {
    "contacts",
    "invited",
    "sent",
    "delivered",
    "failed",
    "started",
    "consented",
    "completed",
    "reminded",
    "opted_out",
    "state",
}


def cli(app, *args):
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def import_contacts(app, tmp_path, lines):
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state,crop\n" + "\n".join(lines) + "\n")
    result = cli(app, "contacts", "import", str(path))
    assert result.exit_code == 0, result.output


def with_accounts(app):
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context(), db.transaction() as session:
        for role in ("admin", "staff", "policy"):
            create_user(session, f"{role}@example.org", WEB_PASSWORD, role)
    return app


def form(survey=SURVEY, **fields):
    data = {
        "survey": survey,
        "attribute-0": "",
        "value-0": "",
        "attribute-1": "",
        "value-1": "",
        "language": "",
        "has_channel": "",
        "channel": "sms",
        "start": "now",
        "start_at": "",
        "time_zone": "America/New_York",
        "reminders": "0",
        "remind_after": "",
        "remind": "not_started",
        "previewed": "",
        "action": "preview",
    }
    data.update(fields)
    return data


def post_new(client, data):
    token = csrf_token(client, "/staff/campaigns/new")
    return client.post("/staff/campaigns/new", data={**data, "csrf_token": token})


def preview_then_start(client, data):
    """Preview, then start with the fingerprint the preview gave, as the page's button does."""
    page = post_new(client, data).get_data(as_text=True)
    previewed = re.search(r'id="previewed" name="previewed" type="hidden" value="([^"]*)"', page)
    assert previewed and previewed.group(1), page
    return post_new(client, {**data, "previewed": previewed.group(1), "action": "start"})


def outbound(app, *where):
    with app.app_context():
        return (
            db.session()
            .scalars(select(Message).where(Message.direction == "out", *where).order_by(Message.id))
            .all()
        )


def progress(client, campaign_id):
    response = client.get(f"/staff/campaigns/{campaign_id}/progress.json")
    assert response.status_code == 200
    return response.get_json()


def work(app):
    from engage.jobs.worker import run_worker

    with app.app_context():
        run_worker(burst=True)


FLORIDA = [f"+1305555{n:04d},es,clinic,FL,citrus" for n in range(6)]
ELSEWHERE = ["+12065550900,en,clinic,WA,tree_fruit", "+13055550901,en,clinic,,berries"]


def seed_exclusions(app, fake_twilio):
    """Of the six in Florida: 0 opted out (STOP), 1 answering a survey now, 2 done with it."""
    client = app.test_client()
    token = fake_twilio.auth_token
    post_signed(client, token, "/twilio/messages", inbound_form("+13055550000", "PARAR"))
    post_signed(client, token, "/twilio/messages", inbound_form("+13055550001", "VIVIENDA"))
    with app.app_context(), db.transaction() as session:
        done = session.scalar(select(Contact).where(Contact.id == 3))
        session.add(
            Conversation(
                contact_id=done.id,
                survey_id=SURVEY,
                version="v",
                language="es",
                status="completed",
                record_key=done.record_key,
            )
        )


@pytest.fixture
def pages(twilio_app, fake_twilio, tmp_path):
    """An app wired to the fake Twilio, without Redis (work runs in-process), with accounts."""
    app = with_accounts(twilio_app(ENGAGE_QUIET_HOURS="0-0"))
    import_contacts(app, tmp_path, FLORIDA + ELSEWHERE)
    return app


def test_the_preview_counts_who_is_reached_who_is_left_out_and_why(pages, fake_twilio):
    seed_exclusions(pages, fake_twilio)
    client = pages.test_client()
    sign_in(client, "staff")
    response = post_new(client, form(**{"attribute-0": "state", "value-0": "FL"}))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'id="reach-count">3<', page)
    for reason, n in (("opted_out", 1), ("mid_survey", 1), ("done", 1)):
        assert re.search(rf'id="left-out-{reason}"><strong>{n}</strong>', page), reason
    # Nobody has consented: each gets the consent text (2 segments in Spanish GSM-7 spelling).
    estimates = page[
        page.index('id="estimates"') : page.index("</table>", page.index('id="estimates"'))
    ]
    assert 'lang="es">Español</th>' in estimates
    assert re.search(r'<th scope="row">Contactos</th><td class="num">3</td>', estimates)
    assert re.search(
        r'<th scope="row">Segmentos por invitación</th><td class="num">2 / 1</td>', estimates
    )
    assert "Invitaciones: 6 segmentos en total." in page
    assert 'id="message-segments"' in page and "hours_per_day" in page
    assert 'id="start-button"' in page
    with pages.app_context():
        assert db.session().scalars(select(Campaign)).all() == []  # a preview starts nothing


def test_a_filter_that_reaches_nobody_offers_no_start(pages):
    client = pages.test_client()
    sign_in(client, "staff")
    page = post_new(client, form(**{"attribute-0": "state", "value-0": "TX"})).get_data(
        as_text=True
    )
    assert re.search(r'id="reach-count">0<', page)
    assert 'id="start-button"' not in page and 'id="nobody"' in page


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"reminders": "2", "remind_after": ""}, "problem-remind_after"),
        ({"reminders": "9", "remind_after": "24"}, "problem-reminders"),
        ({"attribute-0": "state", "value-0": ""}, "problem-value-0"),
        ({"start": "at", "start_at": ""}, "problem-start_at"),
        ({"start": "at", "start_at": "2001-01-01T09:00"}, "problem-start_at"),
        ({"survey": "no-such-survey"}, "problem-survey"),
        ({"reminders": "many"}, "problem-reminders"),
    ],
)
def test_a_bad_choice_is_shown_beside_its_field(pages, fields, problem):
    client = pages.test_client()
    sign_in(client, "staff")
    response = post_new(client, form(**fields))
    assert response.status_code == 400
    assert f'id="{problem}"' in response.get_data(as_text=True)


def test_an_unknown_attribute_is_refused_with_the_reason(pages):
    client = pages.test_client()
    sign_in(client, "staff")
    response = post_new(client, form(**{"attribute-0": "employer", "value-0": "x"}))
    assert response.status_code == 400
    assert "unknown attribute(s) employer" in response.get_data(as_text=True)


def test_start_needs_the_preview_of_the_same_choices(pages):
    client = pages.test_client()
    sign_in(client, "staff")
    # No preview at all, then a preview of Florida but a start for everyone: a new preview.
    response = post_new(client, form(action="start"))
    assert response.status_code == 200 and 'id="reach-count"' in response.get_data(as_text=True)
    page = post_new(client, form(**{"attribute-0": "state", "value-0": "FL"})).get_data(
        as_text=True
    )
    previewed = re.search(r'name="previewed" type="hidden" value="([^"]+)"', page).group(1)
    response = post_new(client, form(previewed=previewed, action="start"))
    assert response.status_code == 200
    assert 'id="changed"' in response.get_data(as_text=True)
    with pages.app_context():
        assert db.session().scalars(select(Campaign)).all() == []


def test_starting_from_the_page_writes_on_bulk_and_the_page_follows(
    twilio_app, fake_twilio, redis_url, tmp_path
):
    from engage.jobs import BULK, queue

    app = with_accounts(twilio_app(REDIS_URL=redis_url, ENGAGE_QUIET_HOURS="0-0"))
    import_contacts(app, tmp_path, FLORIDA + ELSEWHERE)
    client = app.test_client()
    sign_in(client, "staff")
    fields = form(**{"attribute-0": "state", "value-0": "FL"}, reminders="1", remind_after="48")
    response = preview_then_start(client, fields)
    assert response.status_code == 302
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    # Nothing was written in the request: the fan-out waits on `bulk`, first in line.
    assert outbound(app) == []
    with app.app_context():
        assert queue(BULK).job_ids == [f"campaign-fan-out-{campaign_id}"]
        campaign = db.session().get(Campaign, campaign_id)
        assert (campaign.state, campaign.contacts, campaign.invited) == ("running", 6, 0)
        assert (campaign.reminders, campaign.remind_after_hours) == (1, 48)
        assert campaign.created_by is not None and campaign.filters == {"state": "FL"}
    page = client.get(f"/staff/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'data-progress-url="/staff/campaigns/{campaign_id}/progress.json"' in page
    counts = progress(client, campaign_id)
    assert set(counts) == PROGRESS_KEYS
    assert (counts["contacts"], counts["invited"], counts["sent"]) == (6, 0, 0)

    work(app)  # the fan-out, then the sends it handed over
    assert len(fake_twilio.requests) == 6
    counts = progress(client, campaign_id)
    assert (counts["invited"], counts["sent"], counts["delivered"]) == (6, 6, 0)
    listed = client.get("/staff/campaigns").get_data(as_text=True)
    # Contacts, invited and sent, in the campaign's row of the list.
    assert re.search(r'(<td class="num">6</td>\s*){3}<td>1 recordatorio', listed)

    rows = outbound(app)
    for row in rows[:4]:
        post_signed(
            client,
            fake_twilio.auth_token,
            f"/twilio/status?m={row.id}",
            status_form(row.sid, "delivered"),
        )
    post_signed(
        client,
        fake_twilio.auth_token,
        f"/twilio/status?m={rows[4].id}",
        status_form(rows[4].sid, "undelivered", ErrorCode="30003"),
    )
    # One worker answers (consents), one opts out.
    post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form("+13055550000", "1")
    )
    post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form("+13055550001", "ALTO")
    )
    counts = progress(client, campaign_id)
    assert counts == {
        "contacts": 6,
        "invited": 6,
        "sent": 6,
        "delivered": 4,
        "failed": 1,
        "started": 2,
        "consented": 1,
        "completed": 0,
        "reminded": 0,
        "opted_out": 1,
        "state": "running",
    }
    with app.app_context():
        entry = db.session().scalar(select(AuditEntry).where(AuditEntry.action == "campaign_start"))
    assert entry.actor == "staff@example.org" and entry.parameters == {"campaign": campaign_id}


def test_pause_holds_every_row_resume_sends_them(twilio_app, fake_twilio, redis_url, tmp_path):
    from engage.jobs import BULK, dispatch_sends

    app = with_accounts(twilio_app(REDIS_URL=redis_url, ENGAGE_QUIET_HOURS="0-0"))
    import_contacts(app, tmp_path, FLORIDA)
    client = app.test_client()
    sign_in(client, "staff")
    response = preview_then_start(client, form())
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    token = csrf_token(client, f"/staff/campaigns/{campaign_id}")
    paused = client.post(f"/staff/campaigns/{campaign_id}/pause", data={"csrf_token": token})
    assert paused.status_code == 302
    work(app)  # the invitations are written, but held
    rows = outbound(app)
    assert len(rows) == 6 and {r.status for r in rows} == {"pending"}
    # Even send jobs already on the queue (handed over before the pause) send nothing.
    with app.app_context():
        dispatch_sends([r.id for r in rows], queue_name=BULK)
    work(app)
    assert fake_twilio.requests == []
    assert {r.status for r in outbound(app)} == {"pending"}
    assert progress(client, campaign_id)["state"] == "paused"
    page = client.get(f"/staff/campaigns/{campaign_id}").get_data(as_text=True)
    assert re.search(r'data-states="paused"\s*>', page)  # resume shown, pause hidden

    resumed = client.post(f"/staff/campaigns/{campaign_id}/resume", data={"csrf_token": token})
    assert resumed.status_code == 302
    work(app)
    assert len(fake_twilio.requests) == 6
    assert progress(client, campaign_id)["sent"] == 6
    with app.app_context():
        actions = db.session().scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert [a for a in actions if a.startswith("campaign")] == [
        "campaign_start",
        "campaign_pause",
        "campaign_resume",
    ]


def test_cancel_drops_the_unsent_rows_and_undoes_their_invitations(pages, fake_twilio):
    client = pages.test_client()
    sign_in(client, "admin")
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = preview_then_start(client, form(start="at", start_at=later, time_zone="UTC"))
    assert response.status_code == 302
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert progress(client, campaign_id)["state"] == "scheduled"
    rows = outbound(pages)
    assert len(rows) == 8 and {r.status for r in rows} == {"pending"}
    token = csrf_token(client, f"/staff/campaigns/{campaign_id}")
    client.post(f"/staff/campaigns/{campaign_id}/cancel", data={"csrf_token": token})
    assert {r.status for r in outbound(pages)} == {"cancelled"}
    with pages.app_context():
        # Nobody got an invitation: nobody is left mid-survey, and results count none.
        assert db.session().scalars(select(Conversation)).all() == []
    counts = progress(client, campaign_id)
    assert (counts["state"], counts["invited"], counts["sent"]) == ("cancelled", 8, 0)
    # Cancelled is for good: no resume, and the due rows stay dropped.
    client.post(f"/staff/campaigns/{campaign_id}/resume", data={"csrf_token": token})
    assert progress(client, campaign_id)["state"] == "cancelled"
    from engage.clock import sweep_pending

    with pages.app_context():
        sweep_pending()
    assert fake_twilio.requests == []
    # The same contacts can be invited again by a new campaign.
    page = post_new(client, form()).get_data(as_text=True)
    assert re.search(r'id="reach-count">8<', page)


def test_the_list_and_the_campaign_page_show_filter_values_as_text(pages):
    client = pages.test_client()
    sign_in(client, "staff")
    hostile = "<script>alert(1)</script>"
    with pages.app_context(), db.transaction() as session:
        from engage.services.surveys import DatabaseCatalog

        survey = next(s for s in DatabaseCatalog(session).active() if s.id == SURVEY)
        session.add(
            Campaign(
                survey_id=SURVEY,
                version=survey.version,
                channel="sms",
                filters={"state": hostile, "crop": '<img src=x onerror="alert(1)">'},
            )
        )
    index = client.get("/staff/campaigns").get_data(as_text=True)
    assert 'href="/staff/campaigns/1"' in index
    page = client.get("/staff/campaigns/1").get_data(as_text=True)
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_campaign_posts_need_csrf_and_staff(pages):
    client = pages.test_client()
    sign_in(client, "staff")
    response = preview_then_start(client, form())
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    for action in ("pause", "resume", "cancel"):
        assert client.post(f"/staff/campaigns/{campaign_id}/{action}").status_code == 400
    assert client.post("/staff/campaigns/new", data=form()).status_code == 400
    policy = pages.test_client()
    sign_in(policy, "policy")
    token = csrf_token(policy, "/results")
    for action in ("pause", "resume", "cancel"):
        path = f"/staff/campaigns/{campaign_id}/{action}"
        assert policy.post(path, data={"csrf_token": token}).status_code == 403
    assert (
        policy.post("/staff/campaigns/new", data={**form(), "csrf_token": token}).status_code == 403
    )
    anonymous = pages.test_client()
    token = csrf_token(anonymous)
    response = anonymous.post(f"/staff/campaigns/{campaign_id}/pause", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert anonymous.get(f"/staff/campaigns/{campaign_id}/progress.json").status_code == 401
    assert progress(client, campaign_id)["state"] == "running"
    assert client.get("/staff/campaigns/999").status_code == 404
    assert client.get("/staff/campaigns/999/progress.json").status_code == 404


def test_pages_speak_english_on_request(pages):
    client = pages.test_client()
    sign_in(client, "staff")
    assert "New campaign" in client.get("/staff/campaigns?lang=en").get_data(as_text=True)
    assert "Nueva campaña" in client.get("/staff/campaigns?lang=es").get_data(as_text=True)


VOICE_PROGRESS_KEYS = {
    "contacts",
    "invited",
    "placed",
    "answered",
    "machine",
    "busy",
    "no_answer",
    "failed",
    "started",
    "consented",
    "completed",
    "opted_out",
    "state",
}


@pytest.fixture
def voice_pages(twilio_app, fake_twilio, tmp_path):
    """The pages with the phone survey (tests/voice) published too, and a caller ID."""
    from pathlib import Path

    from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, publish

    app = with_accounts(
        twilio_app(
            ENGAGE_QUIET_HOURS="0-0", TWILIO_VOICE_FROM="+15005550006", ENGAGE_CALL_RATE="50"
        )
    )
    voice = Path(__file__).resolve().parent / "voice"
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, voice])
    import_contacts(app, tmp_path, FLORIDA + ELSEWHERE)
    return app


def test_the_page_previews_and_starts_a_campaign_by_phone(voice_pages, fake_twilio):
    client = voice_pages.test_client()
    sign_in(client, "staff")
    fields = form(survey="llamada", channel="voice", **{"attribute-0": "state", "value-0": "FL"})
    page = post_new(client, fields).get_data(as_text=True)
    assert 'value="voice" checked> Llamada de voz' in page
    assert re.search(r'id="reach-count">6<', page)
    # Calls, by the language they are made in: no SMS segments.
    calls = page[page.index('id="calls"') : page.index("</table>", page.index('id="calls"'))]
    assert 'lang="es">Español</th>' in calls
    assert re.search(r'<th scope="row">Llamadas</th><td class="num">6</td>', calls)
    assert "6 llamadas en total, una por contacto." in page
    assert 'id="estimates"' not in page and "segmentos en total" not in page
    assert 'id="reminder-fields" data-not-for="voice"' in page

    response = preview_then_start(client, fields)
    assert response.status_code == 302
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    # Without Redis the invitations are written and the calls placed in-process.
    assert sorted(c["form"]["To"] for c in fake_twilio.calls) == [
        f"+1305555{n:04d}" for n in range(6)
    ]
    assert {c["form"]["MachineDetection"] for c in fake_twilio.calls} == {"Enable"}
    assert outbound(voice_pages) == []  # no texts
    counts = progress(client, campaign_id)
    assert set(counts) == VOICE_PROGRESS_KEYS
    assert (counts["contacts"], counts["invited"], counts["placed"]) == (6, 6, 6)
    shown = client.get(f"/staff/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Llamadas hechas" in shown and 'id="count-no_answer"' in shown
    assert "Llamada de voz" in client.get("/staff/campaigns").get_data(as_text=True)
    english = client.get(f"/staff/campaigns/{campaign_id}?lang=en").get_data(as_text=True)
    assert "Calls placed" in english and "Answering machine" in english


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        # A survey not offered by phone: the reason, from the preview.
        ({"survey": "housing-check"}, "is not offered by phone"),
        ({"survey": "llamada", "reminders": "1", "remind_after": "24"}, 'id="problem-reminders"'),
    ],
)
def test_a_campaign_by_phone_is_refused_with_its_reason(voice_pages, fields, shown):
    client = voice_pages.test_client()
    sign_in(client, "staff")
    response = post_new(client, form(channel="voice", **fields))
    assert response.status_code == 400
    assert shown in response.get_data(as_text=True)
    with voice_pages.app_context():
        assert db.session().scalars(select(Campaign)).all() == []

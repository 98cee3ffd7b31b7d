"""The staff simulator: roles, CSRF, surveys and drafts run through the engine, the same replies
as `engage simulate`, and simulated contacts that nothing real ever counts or reaches."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select, update

from engage import db
from engage.cli import main
from engage.db import utcnow
from engage.models import Answer, Contact, Conversation, Message, SurveyVersion, User
from engage.privacy import parse_sender
from engage.services import outbox
from engage.services.campaigns import create_campaign, matching_contact_ids
from engage.services.conversations import handle_inbound, settings_from
from engage.services.simulator import (
    first_free_attempt,
    session_key,
    simulated_phone,
)
from engage.services.web_surveys import create_draft, publish_draft, save_draft
from engage.simulation import simulate_message
from tests.conftest import Worker
from tests.test_web_access import sign_in

URL = "/staff/simulator/messages"

DRAFT = """\
id: water-check
title: {es: Agua en el campo, en: Water in the field}
languages: [es, en]
keywords: {es: [AGUA], en: [WATER]}
questions:
  - id: source
    type: choice
    text: {es: "¿De dónde toma agua?", en: "Where do you get water?"}
    choices:
      - {value: tap, label: {es: Llave, en: Tap}}
      - {value: bottle, label: {es: Botella, en: Bottle}}
      - {value: none, label: {es: Ninguna, en: None}}
  - id: hours
    type: number
    min: 0
    max: 24
    text: {es: "¿Cuántas horas trabajó ayer?", en: "How many hours did you work yesterday?"}
closing: {es: "Gracias por responder.", en: "Thank you for answering."}
"""


def page_token(client) -> str:
    page = client.get("/staff/simulator").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


class Phone:
    """A staff member at the simulator page: one session, one simulated worker."""

    def __init__(self, client, session: str, **options) -> None:
        self.client = client
        self.token = page_token(client)
        self.session = session
        self.options = options

    def post(self, text: str, **extra):
        payload = {"session": self.session, "text": text, **self.options, **extra}
        return self.client.post(URL, json=payload, headers={"X-CSRFToken": self.token})

    def send(self, text: str) -> list[str]:
        response = self.post(text)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["replies"]

    def script(self, *texts: str) -> list[list[str]]:
        return [self.send(t) for t in texts]


def staff_phone(web_app, session: str = "session-1", role: str = "staff", **options) -> Phone:
    client = web_app.test_client()
    assert sign_in(client, role).status_code == 302
    return Phone(client, session, **options)


def add_draft(app, text: str = DRAFT, survey_id: str = "water-check") -> None:
    with app.app_context(), db.transaction() as session:
        create_draft(session, survey_id, title="x", languages=["es"], user_id=None, now=utcnow())
        save_draft(session, survey_id, text=text, revision=1, user_id=None, now=utcnow())


def replace_draft(app, text: str, survey_id: str = "water-check") -> None:
    from engage.models import SurveyDraft

    with app.app_context(), db.transaction() as session:
        revision = session.get(SurveyDraft, survey_id).revision
        save_draft(session, survey_id, text=text, revision=revision, user_id=None, now=utcnow())


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model).where(*where))


# -- who may use it ------------------------------------------------------------------------------


def test_anonymous_gets_401_and_the_policy_role_403(web_app):
    anonymous = web_app.test_client()
    assert anonymous.get("/staff/simulator").status_code == 302
    login = anonymous.get("/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', login).group(1)
    response = anonymous.post(
        URL, json={"session": "s", "text": "hola"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 401
    policy = web_app.test_client()
    sign_in(policy, "policy")
    results = policy.get("/results").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', results).group(1)
    response = policy.post(
        URL, json={"session": "s", "text": "hola"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 403
    assert policy.get("/staff/simulator").status_code == 403
    assert count(web_app, Contact) == 0


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_and_admins_use_it_and_the_nav_links_to_it(web_app, role):
    phone = staff_phone(web_app, role=role)
    page = phone.client.get("/staff/simulator").get_data(as_text=True)
    nav = page[page.index("<nav") : page.index("</nav>")]
    assert 'href="/staff/simulator" aria-current="page"' in nav
    assert phone.send("hola")  # the language menu


def test_the_post_needs_its_csrf_token(web_app):
    phone = staff_phone(web_app)
    refused = phone.client.post(URL, json={"session": "s", "text": "VIVIENDA"})
    assert refused.status_code == 400
    forged = phone.client.post(
        URL, json={"session": "s", "text": "VIVIENDA"}, headers={"X-CSRFToken": "forged"}
    )
    assert forged.status_code == 400
    assert count(web_app, Message) == 0
    assert phone.post("VIVIENDA").status_code == 200


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"session": "s", "text": "x" * 1601}, 400),
        ({"session": "s", "text": "   "}, 400),
        ({"session": "s"}, 400),
        ({"session": "s" * 101, "text": "hola"}, 400),
        ({"session": "", "text": "hola"}, 400),
        ({"session": 7, "text": "hola"}, 400),
        ({"session": "s", "text": "hola", "channel": "voice"}, 400),
        ({"session": "s", "text": "hola", "draft": True}, 400),
        ({"session": "s", "text": "hola", "survey": "water-check", "draft": "yes"}, 400),
        ({"session": "s", "text": "hola", "survey": ["housing-check"]}, 400),
        ({"session": "s", "text": "hola", "survey": "no-such-survey"}, 404),
        ({"session": "s", "text": "hola", "survey": "housing-check", "draft": True}, 404),
        ({"session": "s", "text": "x" * 1600}, 200),
        ({"session": "s" * 100, "text": "hola"}, 200),
    ],
)
def test_what_the_post_accepts(web_app, payload, status):
    phone = staff_phone(web_app)
    response = phone.client.post(URL, json=payload, headers={"X-CSRFToken": phone.token})
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert count(web_app, Message) == (2 if status == 200 else 0)


def test_a_body_that_is_not_a_json_object_is_refused(web_app):
    phone = staff_phone(web_app)
    for body in ("not json", "[1, 2]", '"hola"'):
        response = phone.client.post(
            URL, data=body, content_type="application/json", headers={"X-CSRFToken": phone.token}
        )
        assert response.status_code == 400
    assert count(web_app, Message) == 0


# -- a published survey, in Spanish and in English -------------------------------------------


def test_a_published_survey_from_keyword_to_closing_in_spanish(web_app):
    phone = staff_phone(web_app, survey="housing-check")
    consent, intro, miss, help_text, skipped, closing = phone.script(
        "VIVIENDA", "1", "Marte", "AYUDA", "SALTAR", "1"
    )
    assert consent[0].startswith("Centro Campesino le pregunta sobre su trabajo.")
    assert consent[0].endswith("¿Participa? 1=Si 2=No")
    assert intro == ["¿En qué estado trabaja?\n1 Florida\n2 California\n3 Otro"]
    # A miss: a hint, then the question again.
    assert miss == ["Por favor, responda con un numero del 1 al 3.\n\n" + intro[0]]
    assert help_text[0].startswith("Centro Campesino pregunta a trabajadores del campo")
    assert "1-888-373-7888" in help_text[0] and help_text[0].endswith(intro[0])
    assert skipped == ["¿Tiene agua limpia en su vivienda?\n1 Si 2 No"]
    assert closing == ["Gracias.\n\nPuede borrar estos mensajes de su teléfono."]
    with web_app.app_context():
        answers = db.session().execute(select(Answer.question_id, Answer.status)).all()
    assert sorted(answers) == [("state", "skipped"), ("water", "answered")]


def test_each_answer_shows_what_the_survey_knows_of_the_simulated_worker(web_app):
    phone = staff_phone(web_app, survey="housing-check")

    def state_after(text: str, lang: str = "es") -> dict:
        payload = {"session": phone.session, "text": text, **phone.options}
        response = phone.client.post(
            f"{URL}?lang={lang}", json=payload, headers={"X-CSRFToken": phone.token}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["state"]

    invited = state_after("VIVIENDA")
    assert invited["survey"] == "housing-check" and invited["consent"] == "no dado"
    assert invited["waiting_for"] == "el consentimiento (1 sí, 2 no)"
    assert invited["language"] == "Español" and invited["misses"] == "0"
    consented = state_after("1")
    assert consented["consent"] == "dado"
    assert consented["waiting_for"] == "una respuesta a la pregunta state"
    assert state_after("Marte")["misses"] == "1"
    english = state_after("SALTAR", lang="en")
    assert english["waiting_for"] == "an answer to question water"
    assert english["misses"] == "0" and english["opted_out"] == "no"
    stopped = state_after("ALTO")
    assert stopped["opted_out"] == "sí: ya no se le envía nada"
    assert stopped["waiting_for"] == "nada: no hay ninguna encuesta abierta"


def test_a_published_survey_from_keyword_to_closing_in_english_on_whatsapp(web_app):
    phone = staff_phone(web_app, survey="housing-check", channel="whatsapp")
    consent, intro, miss, help_text, skipped, closing = phone.script(
        "HOUSING", "1", "Mars", "HELP", "SKIP", "2"
    )
    assert consent[0].startswith("Centro Campesino asks about your work.")
    assert intro == ["Which state do you work in?\n1 Florida\n2 California\n3 Other"]
    assert miss == ["Please answer with a number from 1 to 3.\n\n" + intro[0]]
    assert "call 911" in help_text[0] and help_text[0].endswith(intro[0])
    assert skipped == ["Do you have clean water where you live?\n1 Yes 2 No"]
    assert closing == ["Thank you.\n\nYou may delete these messages from your phone."]
    with web_app.app_context():
        channels = set(db.session().scalars(select(Message.channel)))
    assert channels == {"whatsapp"}


def test_each_reply_comes_with_its_sms_segments_as_sent(web_app):
    sms = staff_phone(web_app, survey="working-conditions")
    data = sms.post("TRABAJO").get_json()
    assert data["segments"] == [{"encoding": "GSM-7", "segments": 2}]  # the consent
    data = sms.post("1").get_json()
    assert len(data["segments"]) == len(data["replies"]) == 1
    # sms_spelling plain: on SMS the intro goes without its accents, and costs GSM-7 segments.
    assert "Responda con el numero de la opcion." in data["replies"][0]
    assert data["segments"][0]["encoding"] == "GSM-7"
    whatsapp = staff_phone(web_app, session="wa", survey="working-conditions", channel="whatsapp")
    whatsapp.send("TRABAJO")
    data = whatsapp.post("1").get_json()
    assert "Responda con el número de la opción." in data["replies"][0]
    assert data["segments"][0]["encoding"] == "UCS-2"


def test_without_a_survey_published_keywords_start_surveys_as_by_sms(web_app):
    phone = staff_phone(web_app)
    assert phone.send("VIVIENDA")[0].startswith("Centro Campesino le pregunta")
    other = staff_phone(web_app, session="session-2")
    assert other.send("TRABAJO")[0].startswith("Centro Campesino le pregunta")


def test_a_survey_that_is_not_published_cannot_be_chosen_without_draft(web_app):
    add_draft(web_app)
    phone = staff_phone(web_app, survey="water-check")
    response = phone.post("AGUA")
    assert response.status_code == 404
    assert "water-check" in response.get_json()["message"]


# -- the same replies as `engage simulate` ---------------------------------------------------

SCRIPT = (
    "hola",
    "VIVIENDA",
    "1",
    "Marte",
    "AYUDA",
    "IDIOMA",
    "2",
    "cali",
    "SALTAR",
    "TRABAJO",
    "2",
    "BORRAR",
    "2",
    "ALTO",
    "hola",
    "ALTA",
)


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_the_simulator_and_engage_simulate_give_the_same_replies(web_app, channel):
    by_cli = Worker(web_app, "+15551230077", channel).script(*SCRIPT)
    phone = staff_phone(web_app, session="compare", channel=channel)
    by_page = ["\n\n".join(replies) for replies in phone.script(*SCRIPT)]
    assert by_page == by_cli
    # The script went through consent, a miss, help, the menu, a skip and an opt-out.
    assert any("1-888-373-7888" in reply for reply in by_page)
    assert sum(1 for reply in by_page if reply) >= 12
    with web_app.app_context():
        simulated = db.session().scalars(select(Contact.is_simulated)).all()
    assert simulated == [True, True]


# -- a draft ----------------------------------------------------------------------------------


def test_a_draft_runs_through_the_page_and_stays_unpublished(web_app):
    add_draft(web_app)
    page = staff_phone(web_app).client.get("/staff/simulator?survey=water-check&draft=1")
    html = page.get_data(as_text=True)
    assert re.search(r'<option value="water-check" data-draft="1"\s+selected', html)
    assert "Water in the field" in html or "Agua en el campo" in html

    phone = staff_phone(web_app, survey="water-check", draft=True)
    # Only the draft's keywords start anything: a published survey's does not.
    assert not phone.send("VIVIENDA")[0].startswith("Centro Campesino le pregunta")
    consent, first, miss, help_text, skipped, closing = phone.script(
        "AGUA", "1", "9", "AYUDA", "SALTAR", "8"
    )
    assert consent[0].startswith("Centro Campesino le pregunta")
    assert first == ["¿De dónde toma agua?\n1 Llave\n2 Botella\n3 Ninguna"]
    assert miss[0].endswith(first[0]) and miss[0] != first[0]
    # The help text and the question are two texts: together they are over the SMS budget.
    assert help_text[-1] == first[0] and "911" in help_text[0]
    assert skipped == ["¿Cuántas horas trabajó ayer?"]
    assert closing == ["Gracias por responder.\n\nPuede borrar estos mensajes de su teléfono."]
    english = staff_phone(web_app, session="english", survey="water-check", draft=True)
    assert english.script("WATER", "1")[1] == ["Where do you get water?\n1 Tap\n2 Bottle\n3 None"]

    with web_app.app_context():
        version = db.session().scalar(
            select(Conversation.version).where(Conversation.survey_id == "water-check")
        )
    assert version and count(web_app, SurveyVersion, SurveyVersion.survey_id == "water-check") == 0
    assert count(web_app, Answer, Answer.survey_id == "water-check") == 2
    assert count(web_app, Answer, Answer.is_simulated.is_(False)) == 0

    # Not published: a real worker's AGUA starts nothing, by `engage simulate` or the webhook's
    # service, and the page without `draft` does not run it either.
    worker = Worker(web_app, "+15551230088")
    assert "1 Español" in worker.send("AGUA")  # a new number's first message: the menu
    assert "TRABAJO" in worker.send("AGUA")  # the no-conversation reply names published ones
    settings = settings_from(web_app.config, web_app.extensions["engage.vault"])
    for _ in range(2):
        with web_app.app_context(), db.engine().begin() as connection:
            result = handle_inbound(
                connection,
                settings,
                sender=parse_sender("+15551230089"),
                to="+15550000000",
                body="WATER",
            )
        assert result.replies and "Join?" not in result.replies[0]
    assert count(web_app, Conversation, Conversation.is_simulated.is_(False)) == 0
    published = staff_phone(web_app, session="published")
    assert not published.send("AGUA")[0].startswith("Centro Campesino le pregunta")


def test_a_draft_with_problems_is_refused_and_the_page_says_why(web_app):
    add_draft(web_app, DRAFT.replace("min: 0", "min: 30"))
    phone = staff_phone(web_app, survey="water-check", draft=True)
    response = phone.post("AGUA")
    assert response.status_code == 409
    assert response.get_json()["error"] == "draft_problems"
    page = phone.client.get("/staff/simulator?survey=water-check&draft=1&lang=en")
    html = page.get_data(as_text=True)
    assert "The draft of water-check has problems" in html
    assert 'value="water-check"' not in html
    assert count(web_app, Message) == 0


def test_a_draft_changed_mid_conversation_asks_for_a_reset(web_app):
    add_draft(web_app)
    phone = staff_phone(web_app, survey="water-check", draft=True)
    phone.script("AGUA", "1")
    replace_draft(web_app, DRAFT.replace("¿De dónde toma agua?", "¿De dónde bebe agua?"))
    response = phone.post("1")
    assert response.status_code == 409
    assert response.get_json()["error"] == "version_changed"
    again = staff_phone(web_app, session="after-reset", survey="water-check", draft=True)
    assert again.script("AGUA", "1")[1] == ["¿De dónde bebe agua?\n1 Llave\n2 Botella\n3 Ninguna"]


def test_a_draft_version_that_was_never_published_breaks_nothing_else(web_app):
    from engage.clock import run_periodic
    from engage.services import erasure

    add_draft(web_app)
    with web_app.app_context(), db.transaction() as session:
        publish_draft(session, "water-check", org_name="Centro Campesino", now=utcnow())
    # The draft moves on from the published version: a dropped choice, a new question text.
    replace_draft(
        web_app,
        DRAFT.replace("      - {value: none, label: {es: Ninguna, en: None}}\n", "").replace(
            "¿Cuántas horas", "¿Cuántas horas en total"
        ),
    )
    phone = staff_phone(web_app, survey="water-check", draft=True)
    phone.script("AGUA", "1", "2", "8")
    half = staff_phone(web_app, session="half", survey="water-check", draft=True)
    half.script("AGUA", "1", "2")
    with web_app.app_context():
        versions = set(db.session().scalars(select(Conversation.version)))
        published = set(db.session().scalars(select(SurveyVersion.version)))
    assert versions and not versions & published

    # Results, the staff file and the clock read past it; simulated answers never count.
    admin = web_app.test_client()
    sign_in(admin, "admin")
    exported = admin.get("/results/water-check/export.json")
    assert exported.status_code == 200
    rows = json.loads(exported.get_data(as_text=True))["rows"]
    assert all(row["count"] in (0, None) for row in rows if row["question_id"] == "source")
    responses = admin.get("/results/water-check/responses.csv")
    assert responses.status_code == 200
    assert len(responses.get_data(as_text=True).strip().splitlines()) == 1  # the header only
    assert admin.get("/results/water-check").status_code == 200
    with web_app.app_context():
        db.session().execute(
            update(Conversation).values(last_activity_at=utcnow() - timedelta(days=30))
        )
        db.session().commit()
        counts = run_periodic()
        assert counts["expired"] == 1  # the conversation left half-way
        # Erasure, by staff and by the worker's own BORRAR.
        contact_id = db.session().scalar(select(func.min(Contact.id)))
        with db.engine().begin() as connection:
            assert erasure.erase_contact(connection, contact_id, by=erasure.BY_STAFF)
    erased = staff_phone(web_app, session="erase", survey="water-check", draft=True)
    erased.script("AGUA", "1")
    assert "1" in erased.send("BORRAR")[0]
    assert erased.send("1")  # the last confirmation
    with web_app.app_context():
        assert (
            db.session().scalar(
                select(func.count()).select_from(Contact).where(Contact.erased_at.is_not(None))
            )
            == 2
        )


def test_answers_given_in_the_simulator_never_block_a_new_version(web_app):
    add_draft(web_app)
    with web_app.app_context(), db.transaction() as session:
        publish_draft(session, "water-check", org_name="Centro Campesino", now=utcnow())
    phone = staff_phone(web_app, survey="water-check")
    phone.script("AGUA", "1", "3", "8")  # "none" answered, by a simulated worker
    dropped = DRAFT.replace("      - {value: none, label: {es: Ninguna, en: None}}\n", "")
    replace_draft(web_app, dropped)
    with web_app.app_context(), db.transaction() as session:
        result, _report, _retired = publish_draft(
            session, "water-check", org_name="Centro Campesino", now=utcnow()
        )
    assert result.action == "published"
    # A real worker's answer does block it: the check can fail.
    Worker(web_app, "+15551230066").script("AGUA", "1", "2", "8")
    with web_app.app_context(), db.transaction() as session:
        session.execute(update(Answer).where(Answer.contact_id == 2).values(is_simulated=False))
    with web_app.app_context(), db.transaction() as session:
        from engage.services.surveys import PublishError, check_compatible
        from engage.survey.loader import check_text

        fewer = dropped.replace("value: bottle", "value: jug")
        with pytest.raises(PublishError, match="drops choice value"):
            check_compatible(session, check_text("water-check.yaml", fewer).survey)


# -- simulated contacts stay out of everything real -------------------------------------------


def test_simulated_contacts_are_left_out_of_results_and_campaigns(web_app, tmp_path):
    phone = staff_phone(web_app, survey="housing-check")
    phone.script("HOUSING", "1", "2", "1")
    # A real worker, imported, is the control: the same checks find it.
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state\n+13055550123,es,clinic,CA\n")
    imported = CliRunner().invoke(
        main, ["contacts", "import", str(path)], obj=ScriptInfo(create_app=lambda: web_app)
    )
    assert imported.exit_code == 0, imported.output
    with web_app.app_context(), db.transaction() as session:
        simulated = session.scalar(select(Contact.id).where(Contact.is_simulated.is_(True)))
        real = session.scalar(select(Contact.id).where(Contact.is_simulated.is_(False)))
        assert simulated and real
        campaign = create_campaign(
            session, "working-conditions", where={}, channel="sms", start_at=None
        )
        assert matching_contact_ids(session, campaign, repeat=True) == [real]
        by_state = create_campaign(
            session, "housing-check", where={"state": "CA"}, channel="sms", start_at=None
        )
        assert matching_contact_ids(session, by_state, repeat=True) == [real]
    admin = web_app.test_client()
    sign_in(admin, "admin")
    responses = admin.get("/results/housing-check/responses.csv").get_data(as_text=True)
    assert len(responses.strip().splitlines()) == 1
    # The same conversation by a real worker is counted: the check above can fail.
    with web_app.app_context(), db.transaction() as session:
        for model in (Contact, Conversation, Answer):
            session.execute(update(model).values(is_simulated=False))
    responses = admin.get("/results/housing-check/responses.csv").get_data(as_text=True)
    assert len(responses.strip().splitlines()) == 2


def test_a_simulated_reply_left_pending_is_never_swept_to_twilio(web_app):
    settings = settings_from(web_app.config, web_app.extensions["engage.vault"])
    with web_app.app_context():
        ids = {}
        for phone, is_simulated in (("+12025550142", True), ("+15551230055", False)):
            with db.engine().begin() as connection:
                result = handle_inbound(
                    connection,
                    settings,
                    sender=parse_sender(phone),
                    to="+15550000000",
                    body="hola",
                    is_simulated=is_simulated,
                )
            ids[is_simulated] = result.outbound_ids
        with db.transaction() as session:
            pending = {i for i, _q in outbox.stale_pending_ids(session, older_than=-timedelta(1))}
    assert ids[False] and set(ids[False]) <= pending
    assert ids[True] and not set(ids[True]) & pending


# -- one simulated worker per session, never anyone else's ----------------------------------


def test_each_session_is_its_own_simulated_worker_and_two_people_never_share(web_app):
    staff = staff_phone(web_app, session="same")
    admin = staff_phone(web_app, session="same", role="admin")
    assert staff.send("VIVIENDA")[0].startswith("Centro Campesino le pregunta")
    assert admin.send("VIVIENDA")[0].startswith("Centro Campesino le pregunta")  # not mid-survey
    assert staff.send("1")[0].startswith("¿En qué estado")
    reset = Phone(staff.client, "another")
    assert "1 Español" in reset.send("1")[0]  # a new worker: the menu
    with web_app.app_context():
        contacts = db.session().scalars(select(Contact).order_by(Contact.id)).all()
        vault = web_app.extensions["engage.vault"]
        assert len(contacts) == 3 and all(c.is_simulated for c in contacts)
        for contact in contacts:
            number = vault.contact_cipher(contact.key_encrypted).decrypt(contact.phone_encrypted)
            assert re.fullmatch(r"\+1[2-9]\d\d55501\d\d", number), number


def test_a_new_session_never_lands_on_a_number_already_used(web_app):
    secret = (
        web_app.secret_key.encode() if isinstance(web_app.secret_key, str) else web_app.secret_key
    )
    with web_app.app_context():
        staff_id = db.session().scalar(select(User.id).where(User.email == "staff@example.org"))
    key = session_key("taken")
    # Someone else's simulated worker already has this session's first number.
    with web_app.app_context():
        simulate_message(web_app, simulated_phone(secret, staff_id, key, 0), "VIVIENDA")
        vault = web_app.extensions["engage.vault"]
        assert first_free_attempt(db.session(), vault, secret, staff_id, key) == 1
    phone = staff_phone(web_app, session="taken")
    assert "1 Español" in phone.send("1")[0]  # not an answer to that consent
    assert phone.send("VIVIENDA")[0].startswith("Centro Campesino le pregunta")
    assert phone.send("1")[0].startswith("¿En qué estado")  # the same worker throughout
    assert count(web_app, Contact) == 2


def test_a_real_contact_is_never_reached_through_the_simulator(web_app):
    secret = (
        web_app.secret_key.encode() if isinstance(web_app.secret_key, str) else web_app.secret_key
    )
    phone = staff_phone(web_app, session="mine")
    assert phone.send("hola")
    with web_app.app_context():
        staff_id = db.session().scalar(select(User.id).where(User.email == "staff@example.org"))
        # Suppose a real worker had that number: the session stops rather than write as them.
        db.session().execute(update(Contact).values(is_simulated=False))
        db.session().commit()
    number = simulated_phone(secret, staff_id, session_key("mine"), 0)
    assert re.fullmatch(r"\+1[2-9]\d\d55501\d\d", number)
    before = count(web_app, Message)
    response = phone.post("VIVIENDA")
    assert response.status_code == 409
    assert count(web_app, Message) == before


# -- texts are never read as HTML ------------------------------------------------------------


def test_markup_in_a_draft_or_a_message_comes_back_escaped(web_app):
    hostile = DRAFT.replace("Agua en el campo", "<img src=x onerror=alert(1)>").replace(
        "¿De dónde toma agua?", "<script>alert('es')</script> & ¿agua?"
    )
    add_draft(web_app, hostile)
    phone = staff_phone(web_app, survey="water-check", draft=True)
    html = phone.client.get("/staff/simulator?survey=water-check&draft=1").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    phone.post("AGUA")
    response = phone.post("1")
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    raw = response.get_data(as_text=True)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    assert "\\u003cscript\\u003e" in raw
    assert response.get_json()["replies"][0].startswith("<script>alert('es')</script> & ¿agua?")
    echoed = phone.post("<script>alert(2)</script>")
    assert "<script>" not in echoed.get_data(as_text=True)

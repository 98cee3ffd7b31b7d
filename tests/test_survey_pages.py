"""The survey pages for staff: roles, CSRF, the live check, saving, publishing, retiring,
deleting a draft and copying a file survey to edit it, over HTTP on both databases."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from twilio_helpers import inbound_form, post_signed

from engage import db
from engage.models import AuditEntry, SurveyDraft, SurveyRecord
from engage.services.accounts import create_user
from engage.services.surveys import current_keywords
from engage.services.web_surveys import document_of
from engage.web.survey_form import apply_action, document_from_form
from tests.conftest import WEB_PASSWORD
from tests.test_web_access import sign_in

FILE_SURVEY = "working-conditions"


def page_token(client, path: str = "/staff/surveys") -> str:
    """The CSRF token every page carries in its <meta name="csrf-token">."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def staff_client(app, role: str = "staff"):
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    client.token = page_token(client, "/results")
    return client


def post(client, path: str, data: dict | None = None, **kwargs):
    return client.post(path, data={"csrf_token": client.token, **(data or {})}, **kwargs)


def create_survey(client, survey_id: str = "harvest", languages=("es", "en"), title="Cosecha"):
    response = post(
        client,
        "/staff/surveys/new",
        {"id": survey_id, "title": title, "languages": list(languages)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/staff/surveys/{survey_id}/edit"


def draft_of(app, survey_id: str) -> SurveyDraft:
    with app.app_context():
        draft = db.session().get(SurveyDraft, survey_id)
        assert draft is not None
        db.session().expunge(draft)
        return draft


def revision_on_page(client, survey_id: str) -> str:
    page = client.get(f"/staff/surveys/{survey_id}/edit").get_data(as_text=True)
    return re.search(r'name="revision" value="(\d+)"', page).group(1)


def good_form(survey_id: str = "harvest", keyword: str = "COSECHA", **changes) -> dict:
    """The editor's fields for a small two-language survey that passes the check."""
    form = {
        "languages": "es, en",
        "title.es": "Cosecha",
        "title.en": "Harvest",
        "keywords.es": keyword,
        "keywords.en": keyword + "EN",
        "sms_spelling": "as_written",
        "questions.0.id": "crop",
        "questions.0.type": "choice",
        "questions.0.text.es": "¿Qué cosecha?",
        "questions.0.text.en": "What do you harvest?",
        "questions.0.choices.0.value": "berries",
        "questions.0.choices.0.label.es": "Fresas",
        "questions.0.choices.0.label.en": "Berries",
        "questions.0.choices.1.value": "other",
        "questions.0.choices.1.label.es": "Otra",
        "questions.0.choices.1.label.en": "Other",
        "questions.1.id": "paid",
        "questions.1.type": "yes_no",
        "questions.1.text.es": "¿Le pagan a tiempo?",
        "questions.1.text.en": "Are you paid on time?",
        "questions.2.id": "hours",
        "questions.2.type": "number",
        "questions.2.text.es": "¿Cuántas horas trabajó ayer?",
        "questions.2.text.en": "How many hours did you work yesterday?",
        "questions.2.min": "0",
        "questions.2.max": "24",
        "closing.es": "Gracias.",
        "closing.en": "Thank you.",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def save_form(client, survey_id: str, form: dict, action: str = "save", revision=None):
    revision = revision if revision is not None else revision_on_page(client, survey_id)
    return post(
        client,
        f"/staff/surveys/{survey_id}/edit",
        {**form, "revision": revision, "action": action},
    )


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return list(
            db.session().scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


# --- roles and CSRF ------------------------------------------------------------------------------

PAGES = [
    "/staff/surveys",
    "/staff/surveys/new",
    f"/staff/surveys/{FILE_SURVEY}",
    f"/staff/surveys/{FILE_SURVEY}/edit",
    "/staff/surveys/matrix/edit",
    "/staff/surveys/matrix",
]
# (path, is JSON) for every POST: forms send strangers to /login, JSON says 401.
POSTS = [
    ("/staff/surveys/new", False),
    ("/staff/surveys/matrix/edit", False),
    ("/staff/surveys/matrix/publish", False),
    ("/staff/surveys/matrix/retire", False),
    ("/staff/surveys/matrix/delete", False),
    ("/staff/surveys/matrix/copy", False),
    ("/staff/surveys/matrix/check", True),
    ("/staff/surveys/matrix/draft", True),
]


@pytest.mark.parametrize("role", [None, "policy", "staff", "admin"])
def test_role_matrix_over_the_survey_pages(web_app, role):
    create_survey(staff_client(web_app), "matrix")
    client = web_app.test_client()
    if role:
        sign_in(client, role)
    for path in PAGES:
        response = client.get(path)
        if role is None:
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login?next=")
        elif role == "policy":
            assert response.status_code == 403, path
        else:
            assert response.status_code == 200, (path, role)
    token = page_token(client, "/results" if role else "/login")
    for path, is_json in POSTS:
        headers = {"X-CSRFToken": token}
        response = client.post(path, headers=headers, data={"csrf_token": token})
        if role is None:
            assert response.status_code == (401 if is_json else 302), path
            if not is_json:
                assert response.headers["Location"].startswith("/login?next=")
        elif role == "policy":
            assert response.status_code == 403, path
        else:
            # Allowed: what follows is the form's own answer (a missing field, a box to tick).
            assert response.status_code not in (401, 403), (path, role)
            assert not response.headers.get("Location", "").startswith("/login"), path


def test_every_post_needs_its_csrf_token(web_app):
    client = staff_client(web_app)
    create_survey(client, "guarded")
    before = draft_of(web_app, "guarded")
    for path, is_json in POSTS:
        path = path.replace("matrix", "guarded")
        if is_json:
            response = client.post(path, data="{}", content_type="application/json")
        else:
            response = client.post(path, data={"confirm": "1", "new_id": "guarded-copy"})
        assert response.status_code == 400, path
    after = draft_of(web_app, "guarded")
    assert (after.revision, after.text) == (before.revision, before.text)
    with web_app.app_context():
        assert db.session().get(SurveyRecord, "guarded-copy") is None
        assert db.session().get(SurveyRecord, "guarded").retired_at is None


# --- the check -----------------------------------------------------------------------------------


def test_check_gives_each_problem_its_path_and_each_message_its_cost(web_app):
    client = staff_client(web_app)
    create_survey(client, "salud")
    document = {
        "id": "salud",
        "title": {"es": "Salud", "en": "Health"},
        "languages": ["es", "en"],
        "keywords": {"es": ["SALUD"], "en": ["HEALTH"]},
        "questions": [{"id": "water", "type": "yes_no", "text": {"es": "¿Tiene agua según útil?"}}],
    }
    response = client.post(
        "/staff/surveys/salud/check",
        data=json.dumps(document, indent=1, ensure_ascii=False).encode(),
        content_type="text/yaml; charset=utf-8",
        headers={"X-CSRFToken": client.token},
    )
    assert response.status_code == 200
    answer = response.get_json()
    assert set(answer) >= {"problems", "segments"}
    [problem] = answer["problems"]
    assert set(problem) >= {"path", "message", "line", "warning"}
    assert problem["path"] == "questions.0.text"
    assert problem["message"] == "texto de la pregunta «water»: falta la traducción «en»"
    assert problem["warning"] is False
    water = next(s for s in answer["segments"] if s["message"] == "water")
    assert set(water) >= {
        "message",
        "language",
        "encoding",
        "segments",
        "ucs2_characters",
        "over_budget",
    }
    assert (water["language"], water["encoding"], water["segments"]) == ("es", "UCS-2", 1)
    assert water["ucs2_characters"] == "ú"
    assert water["over_budget"] is False
    # Without a body: the saved draft (the starter: no keyword, no question yet).
    saved = client.post("/staff/surveys/salud/check", headers={"X-CSRFToken": client.token})
    messages = [p["message"] for p in saved.get_json()["problems"]]
    assert "falta una palabra clave para el idioma «es»" in messages


def test_check_says_each_problem_in_the_page_language_at_the_same_field_and_line(web_app):
    client = staff_client(web_app)
    create_survey(client, "campo")
    document = {
        "id": "campo",
        "title": {"es": "Campo", "en": "Field"},
        "languages": ["es", "en"],
        "keywords": {"es": ["CAMPO"], "en": ["FIELD"]},
        "questions": [
            {"id": "paid", "type": "yes_no", "text": {"es": "¿Le pagaron?"}, "colour": "red"},
            {
                "id": "late",
                "type": "yes_no",
                "text": {"es": "¿Tarde?", "en": "Late?"},
                "when": "paid = 'no'",
            },
        ],
    }
    body = json.dumps(document, indent=1, ensure_ascii=False).encode()

    def check(language: str) -> list[dict]:
        response = client.post(
            f"/staff/surveys/campo/check?lang={language}",
            data=body,
            content_type="text/yaml; charset=utf-8",
            headers={"X-CSRFToken": client.token},
        )
        assert response.status_code == 200
        return response.get_json()["problems"]

    spanish, english = check("es"), check("en")
    where = [(p["path"], p["line"], p["warning"]) for p in english]
    assert [(p["path"], p["line"], p["warning"]) for p in spanish] == where
    assert [p["message"] for p in english] == [
        "missing translation 'en' for text of question 'paid'",
        "unknown field 'colour'",
        "bad when: unexpected '=' at column 6: use '==' to compare",
    ]
    assert [p["message"] for p in spanish] == [
        "texto de la pregunta «paid»: falta la traducción «en»",
        "campo desconocido «colour»",
        "condición (when) no válida: no se esperaba '=' en la columna 6: use '==' para comparar",
    ]
    assert [path for path, _line, _warning in where] == [
        "questions.0.text",
        "questions.0.colour",
        "questions.1.when",
    ]


def test_check_refuses_more_than_a_megabyte_and_strangers(web_app):
    client = staff_client(web_app)
    create_survey(client, "big")
    huge = client.post(
        "/staff/surveys/big/check",
        data=b"a: " + b"x" * (1024 * 1024 + 1),
        content_type="text/yaml",
        headers={"X-CSRFToken": client.token},
    )
    assert huge.status_code == 413
    stranger = web_app.test_client()
    token = page_token(stranger, "/login")
    response = stranger.post(
        "/staff/surveys/big/check",
        data=b"{}",
        content_type="text/yaml",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 401
    assert (
        client.post(
            "/staff/surveys/nothing-here/check", headers={"X-CSRFToken": client.token}
        ).status_code
        == 404
    )


# --- saving --------------------------------------------------------------------------------------


def test_a_save_from_a_stale_page_is_refused_and_overwrites_nothing(web_app):
    ana = staff_client(web_app)
    create_survey(ana, "shared")
    bo = staff_client(web_app, "admin")
    opened = revision_on_page(bo, "shared")
    assert save_form(ana, "shared", good_form("shared")).status_code == 302
    saved_by_ana = draft_of(web_app, "shared")
    refused = save_form(bo, "shared", good_form("shared", **{"title.es": "Otro"}), revision=opened)
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "Otra persona guardó este borrador desde que usted lo abrió — recargue" in page
    assert "Otro" in page  # the refused changes are shown, to copy after reloading
    autosave = bo.post(
        "/staff/surveys/shared/draft",
        json={"document": {"title": {"es": "Otro"}}, "revision": int(opened)},
        headers={"X-CSRFToken": bo.token},
    )
    assert autosave.status_code == 409
    assert autosave.get_json()["error"] == "stale"
    after = draft_of(web_app, "shared")
    assert (after.revision, after.text) == (saved_by_ana.revision, saved_by_ana.text)


def test_autosave_keeps_the_editors_document_and_answers_the_new_revision(web_app):
    client = staff_client(web_app)
    create_survey(client, "auto")
    document = document_from_form("auto", good_form("auto", keyword="AUTO"))
    response = client.post(
        "/staff/surveys/auto/draft",
        json={"document": document, "revision": 1},
        headers={"X-CSRFToken": client.token},
    )
    assert response.status_code == 200 and response.get_json() == {"revision": 2}
    assert document_of(draft_of(web_app, "auto").text) == document
    assert 'name="revision" value="2"' in client.get("/staff/surveys/auto/edit").get_data(
        as_text=True
    )


def test_the_form_without_javascript_adds_moves_and_deletes_questions_and_choices(web_app):
    client = staff_client(web_app)
    create_survey(client, "plain")
    form = good_form("plain")

    def questions() -> list[dict]:
        return document_of(draft_of(web_app, "plain").text)["questions"]

    response = post(
        client,
        "/staff/surveys/plain/edit",
        {**form, "revision": "1", "action": "add_question", "new_question_type": "multi"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("#question-3")
    added = questions()[3]
    assert (added["id"], added["type"], len(added["choices"])) == ("q4", "multi", 2)
    assert save_form(client, "plain", form, action="up:2").status_code == 302
    assert [q["id"] for q in questions()] == ["crop", "hours", "paid"]
    assert save_form(client, "plain", form, action="add_choice:0").status_code == 302
    assert [c["value"] for c in questions()[0]["choices"]] == ["berries", "other", ""]
    assert save_form(client, "plain", form, action="delete_choice:0:0").status_code == 302
    assert [c["value"] for c in questions()[0]["choices"]] == ["other"]
    assert save_form(client, "plain", form, action="delete_question:1").status_code == 302
    assert [q["id"] for q in questions()] == ["crop", "hours"]


def test_the_editor_explains_segments_and_choice_values_in_the_page_language(web_app):
    client = staff_client(web_app)
    create_survey(client, "explained")
    assert save_form(client, "explained", good_form("explained")).status_code == 302
    spanish = client.get("/staff/surveys/explained/edit?lang=es").get_data(as_text=True)
    explained = spanish[spanish.index('id="segments-explained"') :]
    explained = explained[: explained.index("</details>")]
    assert "¿Qué quieren decir «segmentos SMS» y «UCS-2»?" in explained
    assert "160 caracteres del alfabeto GSM-7" in explained and "solo 70" in explained
    assert "los trabajadores nunca lo ven" in spanish
    english = client.get("/staff/surveys/explained/edit?lang=en").get_data(as_text=True)
    assert "One segment holds 160 characters" in english and "workers never see it" in english


def test_the_editor_offers_the_names_a_condition_may_use(web_app):
    client = staff_client(web_app)
    create_survey(client, "offers")
    form = good_form("offers", **{"questions.0.profile": "crop_now"})
    assert save_form(client, "offers", form).status_code == 302
    page = client.get("/staff/surveys/offers/edit").get_data(as_text=True)
    hours = page[page.index('id="question-2"') :]
    hours = hours[: hours.index("</fieldset>")]
    names = re.search(r'<span class="names">(.*?)</span>', hours, re.S).group(1)
    assert re.findall(r"<code>(\w+)</code>", names) == ["crop", "crop_now", "paid"]
    for condition in (
        "crop == &#39;berries&#39;",
        "crop_now == &#39;other&#39;",
        "paid == &#39;no&#39;",
    ):
        assert f'<option value="{condition}">' in hours
    first = page[page.index('id="question-0"') :]
    first = first[: first.index("</fieldset>")]
    assert "<option" not in first.split("when-names", 1)[1].split("</datalist>", 1)[0]


def test_the_form_becomes_the_whole_document():
    form = good_form(
        "full",
        **{
            "repeat": "1",
            "sms_spelling": "plain",
            "whatsapp_template.es": "HX" + "a" * 32,
            "intro.es": "Hola.",
            "intro.en": "",
            "questions.0.type": "multi",
            "questions.0.profile": "crop",
            "questions.0.max_age_days": "30",
            "questions.0.choices.1.exclusive": "1",
            "questions.0.choices.0.match.es": "fresa, fresas",
            "questions.1.when": "'other' in crop",
            "questions.1.optional": "1",
            "questions.2.bins": "0, 8, 10.5",
            "questions.2.wrong_units.es": "semana",
            "questions.2.max": "veinte",
            "questions.2.profile": "hours",  # not for a number question: left out
        },
    )
    document = document_from_form("full", form)
    assert document["repeat"] is True and document["sms_spelling"] == "plain"
    assert document["whatsapp_template"] == {"es": "HX" + "a" * 32}
    assert document["intro"] == {"es": "Hola."}  # a missing translation is left out
    crop, paid, hours = document["questions"]
    assert crop["profile"] == "crop" and crop["max_age_days"] == 30
    assert crop["choices"][0]["match"] == {"es": ["fresa", "fresas"]}
    assert crop["choices"][1]["exclusive"] is True
    assert paid["when"] == "'other' in crop" and paid["optional"] is True
    assert hours["bins"] == [0, 8, 10.5] and hours["min"] == 0
    assert hours["max"] == "veinte"  # kept as typed, for the check to name
    assert hours["wrong_units"] == {"es": ["semana"]}
    assert "profile" not in hours
    emptied = document_from_form("full", {**form, "languages": ""})
    assert emptied["languages"] == []  # the check says so; nothing written is lost meanwhile
    assert emptied["title"] == {"es": "Cosecha", "en": "Harvest"}
    assert emptied["questions"][0]["text"] == document["questions"][0]["text"]
    assert apply_action(document, "down:0") == "question-1"
    assert [q["id"] for q in document["questions"]] == ["paid", "crop", "hours"]


# --- publishing, retiring ------------------------------------------------------------------------


@pytest.fixture
def signed_app(twilio_app):
    """An app wired to the fake Twilio, with CSRF checked and a staff account."""
    app = twilio_app()
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", WEB_PASSWORD, "staff")
    return app


CONSENT = "¿Participa? 1=Si 2=No"


def text_worker(app, fake_twilio, phone: str, text: str) -> str:
    """A worker's SMS through POST /twilio/messages, signed; the replies Twilio was asked to
    send, joined."""
    before = len(fake_twilio.requests)
    response = post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(phone, text)
    )
    assert response.status_code == 200
    return "\n".join(r.get("Body") for r in fake_twilio.requests[before:])


def test_publishing_is_refused_until_the_check_passes_then_the_keyword_starts_it(
    signed_app, fake_twilio
):
    client = staff_client(signed_app)
    create_survey(client, "harvest")
    broken = good_form(**{"questions.1.text.en": None})
    refused = save_form(client, "harvest", broken, action="publish")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "No publicada: primero corrija los problemas de la lista." in page
    assert "texto de la pregunta «paid»: falta la traducción «en»" in page
    assert "¿Qué cosecha?" in page  # the editor shows the draft just saved
    assert CONSENT not in text_worker(signed_app, fake_twilio, "+15551230001", "COSECHA")

    assert save_form(client, "harvest", good_form()).status_code == 302
    published = post(client, "/staff/surveys/harvest/publish")
    assert published.status_code == 302
    assert published.headers["Location"] == "/staff/surveys/harvest"
    page = client.get("/staff/surveys/harvest").get_data(as_text=True)
    version = re.search(r"Publicada como versión ([0-9a-f]{16})\.", page).group(1)
    assert f"<code>{version}</code>" in page
    [entry] = audit(signed_app, "publish")
    assert (entry.actor, entry.survey_id, entry.parameters["version"]) == (
        "staff@example.org",
        "harvest",
        version,
    )
    assert entry.user_id is not None

    assert CONSENT in text_worker(signed_app, fake_twilio, "+15551230002", "COSECHA")
    replies = text_worker(signed_app, fake_twilio, "+15551230002", "1")
    assert "¿Qué cosecha?" in replies and "1 Fresas" in replies


def test_retiring_stops_the_keyword_and_is_audited(web_app, worker):
    client = staff_client(web_app)
    create_survey(client, "harvest")
    assert save_form(client, "harvest", good_form(), action="publish").status_code == 302
    assert CONSENT in worker("+15551230003").send("COSECHA")
    unconfirmed = post(client, "/staff/surveys/harvest/retire")
    assert unconfirmed.status_code == 302
    assert "publicada" in client.get("/staff/surveys/harvest").get_data(as_text=True)
    retired = post(client, "/staff/surveys/harvest/retire", {"confirm": "1"})
    assert retired.status_code == 302
    page = client.get("/staff/surveys/harvest").get_data(as_text=True)
    assert "Retirada: sus palabras clave ya no inician nada." in page
    assert CONSENT not in worker("+15551230004").send("COSECHA")
    assert [e.survey_id for e in audit(web_app, "retire")] == ["harvest"]


def test_a_file_survey_id_or_a_page_name_is_refused_for_a_new_survey(web_app):
    client = staff_client(web_app)
    for survey_id, message in [
        (FILE_SURVEY, "Una encuesta de archivo ya tiene el identificador working-conditions"),
        ("new", "«new» es el nombre de una página"),
        ("Bad Id", "«Bad Id» no puede ser un identificador de encuesta"),
    ]:
        response = post(
            client, "/staff/surveys/new", {"id": survey_id, "title": "X", "languages": "es"}
        )
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    no_language = post(client, "/staff/surveys/new", {"id": "x", "title": "X"})
    assert "Elija al menos un idioma." in no_language.get_data(as_text=True)
    with web_app.app_context():
        assert db.session().get(SurveyRecord, FILE_SURVEY).source == "file"
        assert db.session().get(SurveyRecord, "x") is None


def test_file_surveys_are_read_only_and_offer_copy_to_edit(web_app):
    client = staff_client(web_app)
    page = client.get(f"/staff/surveys/{FILE_SURVEY}/edit").get_data(as_text=True)
    assert "viene de un archivo y aquí es de solo lectura" in page
    assert f'action="/staff/surveys/{FILE_SURVEY}/copy"' in page
    form = save_form(client, FILE_SURVEY, good_form(FILE_SURVEY), revision="1")
    assert form.status_code == 403
    assert post(client, f"/staff/surveys/{FILE_SURVEY}/delete", {"confirm": "1"}).status_code == 403
    autosave = client.post(
        f"/staff/surveys/{FILE_SURVEY}/draft",
        json={"document": {}, "revision": 1},
        headers={"X-CSRFToken": client.token},
    )
    assert autosave.status_code == 403
    with web_app.app_context():
        assert db.session().get(SurveyDraft, FILE_SURVEY) is None


def test_copy_to_edit_of_a_file_survey_takes_over_its_keywords_when_published(web_app, worker):
    client = staff_client(web_app)
    taken = post(client, f"/staff/surveys/{FILE_SURVEY}/copy", {"new_id": "housing-check"})
    assert taken.status_code == 400
    assert "Una encuesta de archivo ya tiene el identificador housing-check" in taken.get_data(
        as_text=True
    )
    copied = post(client, f"/staff/surveys/{FILE_SURVEY}/copy", {"new_id": "conditions-web"})
    assert copied.status_code == 302
    assert copied.headers["Location"] == "/staff/surveys/conditions-web/edit"
    editor = client.get("/staff/surveys/conditions-web/edit").get_data(as_text=True)
    assert "al publicar, «working-conditions» queda retirada" in editor  # a warning only

    document = document_of(draft_of(web_app, "conditions-web").text)
    document["intro"]["es"] = "Copia web."
    saved = client.post(
        "/staff/surveys/conditions-web/draft",
        json={"document": document, "revision": 1},
        headers={"X-CSRFToken": client.token},
    )
    assert saved.status_code == 200
    published = post(client, "/staff/surveys/conditions-web/publish")
    assert published.status_code == 302
    page = client.get("/staff/surveys/conditions-web").get_data(as_text=True)
    assert "working-conditions, la encuesta de archivo de la que se copió, queda retirada" in page
    listing = client.get("/staff/surveys").get_data(as_text=True)
    row = listing[listing.index('id="survey-working-conditions"') :]
    assert "retirada" in row[: row.index("</tr>")]
    with web_app.app_context():
        assert current_keywords(db.session())["trabajo"] == "conditions-web"
    copy_worker = worker("+15551230005")
    assert CONSENT in copy_worker.send("TRABAJO")
    assert "Copia web." in copy_worker.send("1")
    assert [(e.survey_id, e.parameters.get("taken_over_by")) for e in audit(web_app, "retire")] == [
        ("working-conditions", "conditions-web")
    ]


# --- the list, a survey, deleting a draft --------------------------------------------------------


def test_the_list_and_a_survey_in_every_language_with_missing_translations_marked(web_app):
    client = staff_client(web_app)
    create_survey(client, "harvest")
    assert save_form(client, "harvest", good_form(**{"questions.0.text.en": None})).status_code
    listing = client.get("/staff/surveys?lang=en").get_data(as_text=True)
    for expected in ("harvest", FILE_SURVEY, "TRABAJO", "draft", "file", "web", "New survey"):
        assert expected in listing
    page = client.get("/staff/surveys/harvest?lang=en").get_data(as_text=True)
    assert "Not published yet: this is the draft." in page
    crop = page[page.index('id="q-crop"') :]
    crop = crop[: crop.index("</section>")]
    assert "¿Qué cosecha?" in crop and '<span class="badge missing shown">missing</span>' in crop
    assert "Fresas" in crop and "Berries" in crop
    file_page = client.get(f"/staff/surveys/{FILE_SURVEY}?lang=en").get_data(as_text=True)
    assert "it is read-only here" in file_page and 'id="copy"' in file_page
    assert "Kondisyon travay" in file_page  # Kreyòl side by side with Spanish and English


def test_deleting_a_draft_of_a_survey_never_published_deletes_the_survey(web_app):
    client = staff_client(web_app)
    create_survey(client, "gone")
    response = post(client, "/staff/surveys/gone/delete", {"confirm": "1"})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/surveys"
    assert client.get("/staff/surveys/gone").status_code == 404
    create_survey(client, "stays")
    assert save_form(client, "stays", good_form("stays", keyword="STAYS"), "publish").status_code
    assert post(client, "/staff/surveys/stays/delete", {"confirm": "1"}).status_code == 302
    with web_app.app_context():
        assert db.session().get(SurveyDraft, "stays") is None
    # Editing again starts from the published version.
    assert "¿Qué cosecha?" in client.get("/staff/surveys/stays/edit").get_data(as_text=True)
    assert [e.survey_id for e in audit(web_app, "delete_draft")] == ["gone", "stays"]

"""Surveys as files: YAML out and in (hostile files refused, nothing saved), and translators'
PO and XLSX files out and back into a draft, previewed before anything is saved."""

from __future__ import annotations

import html
import io
import re
import zipfile

import pytest
from babel.messages.pofile import read_po, write_po
from click.testing import CliRunner
from flask.cli import ScriptInfo
from openpyxl import load_workbook
from sqlalchemy import func, select

from engage import db
from engage.cli import main
from engage.db import utcnow
from engage.models import AuditEntry, SurveyDraft, SurveyRecord, SurveyVersion
from engage.services.web_surveys import create_draft, document_of, import_yaml, save_draft
from engage.survey.loader import check_text
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS
from tests.test_web_access import csrf_token, sign_in

DRAFT_ID = "harvest-pay"
# Two languages; Kreyòl lacks the label of CA and the text of `paid`.
DRAFT = {
    "id": DRAFT_ID,
    "title": {"es": "Pago de cosecha", "ht": "Peman rekòt"},
    "languages": ["es", "ht"],
    "keywords": {"es": ["COSECHA"], "ht": ["REKOT"]},
    "intro": {"es": "Unas preguntas sobre su pago.", "ht": "Kèk kesyon sou peman ou."},
    "questions": [
        {
            "id": "state",
            "type": "choice",
            "text": {"es": "¿En qué estado trabaja?", "ht": "Nan ki eta ou travay?"},
            "choices": [
                {"value": "FL", "label": {"es": "Florida", "ht": "Florid"}},
                {"value": "CA", "label": {"es": "California"}},
            ],
        },
        {"id": "paid", "type": "yes_no", "text": {"es": "¿Le pagan a tiempo?"}},
        {
            "id": "hours",
            "type": "number",
            "min": 0,
            "max": 24,
            "text": {"es": "¿Cuántas horas trabajó ayer?", "ht": "Konbyen èdtan ou te travay yè?"},
        },
    ],
    "closing": {"es": "Gracias.", "ht": "Mèsi."},
}


def make_draft(app, document=DRAFT, survey_id=DRAFT_ID) -> None:
    with app.app_context(), db.transaction() as session:
        draft = create_draft(
            session, survey_id, title="x", languages=["es"], user_id=None, now=utcnow()
        )
        save_draft(
            session,
            survey_id,
            document=document,
            revision=draft.revision,
            user_id=None,
            now=utcnow(),
        )


def draft_text(app, survey_id=DRAFT_ID) -> str:
    with app.app_context():
        return db.session().get(SurveyDraft, survey_id).text


def draft_document(app, survey_id=DRAFT_ID) -> dict:
    return document_of(draft_text(app, survey_id))


def stored(app) -> tuple[int, int]:
    """How many surveys and drafts the database holds."""
    with app.app_context():
        session = db.session()
        return (
            session.scalar(select(func.count()).select_from(SurveyRecord)),
            session.scalar(select(func.count()).select_from(SurveyDraft)),
        )


def staff(web_app, role="staff"):
    client = web_app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


def post_file(client, path, data: bytes, filename: str, token=None, **fields):
    if token is None:
        token = csrf_token(client, "/staff/surveys/import")
    form = {"file": (io.BytesIO(data), filename), **fields}
    if token:
        form["csrf_token"] = token
    return client.post(path, data=form, content_type="multipart/form-data")


def plain(page: str) -> str:
    """A page's text as a person reads it: no tags, one space between words."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def confirm_form(page: str) -> dict[str, str]:
    """The hidden fields of the preview's save form."""
    form = page[page.index('class="confirm"') :]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    return {name: html.unescape(value) for name, value in fields.items()}


def translate_po(data: bytes, translations: dict[str, str]) -> bytes:
    """A translator at work: fills msgstr by context, with Babel."""
    catalog = read_po(io.BytesIO(data))
    for message in catalog:
        if message.id and message.context in translations:
            message.string = translations[message.context]
    buffer = io.BytesIO()
    write_po(buffer, catalog)
    return buffer.getvalue()


# --- YAML out ----------------------------------------------------------------------------------


@pytest.mark.parametrize("survey_id", ["working-conditions", "housing-check", "mixteco-test"])
def test_a_published_survey_downloads_as_a_file_the_checker_passes(web_app, tmp_path, survey_id):
    client = staff(web_app)
    response = client.get(f"/staff/surveys/{survey_id}.yaml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/yaml; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{survey_id}.yaml"'
    path = tmp_path / f"{survey_id}.yaml"
    path.write_bytes(response.data)
    result = CliRunner().invoke(
        main, ["surveys", "check", str(path)], obj=ScriptInfo(create_app=lambda: web_app)
    )
    assert result.exit_code == 0, result.output
    # The same survey: the same version as the one published from surveys/.
    survey = check_text(path.name, response.get_data(as_text=True)).survey
    with web_app.app_context():
        current = db.session().scalar(
            select(SurveyVersion.version).where(
                SurveyVersion.survey_id == survey_id, SurveyVersion.is_current.is_(True)
            )
        )
    assert survey is not None and survey.version == current
    with web_app.app_context():
        entry = (
            db.session().scalars(select(AuditEntry).where(AuditEntry.action == "download")).one()
        )
    assert (entry.action, entry.actor, entry.survey_id) == (
        "download",
        "staff@example.org",
        survey_id,
    )
    assert entry.parameters["format"] == "yaml"


def test_a_web_draft_downloads_as_written_and_uploads_back_as_a_new_survey(web_app):
    shipped = (SHIPPED_SURVEYS / "h2a-working-conditions.yaml").read_text("utf-8")
    text = shipped.replace('id: "working-conditions"', 'id: "working-conditions-2026"')
    for word in ("TRABAJO", "WORK", "TRAVAY"):
        text = text.replace(f'["{word}"]', f'["{word}26"]')
    with web_app.app_context(), db.transaction() as session:
        draft, checked = import_yaml(session, "wc.yaml", text.encode(), user_id=None, now=utcnow())
        assert draft is not None and not checked.problems
    client = staff(web_app)
    response = client.get("/staff/surveys/working-conditions-2026.yaml")
    assert response.get_data(as_text=True) == text  # comments and all
    again = response.get_data(as_text=True).replace("working-conditions-2026", "wc-copy")
    again = again.replace('26"]', '27"]')
    page = post_file(client, "/staff/surveys/import?lang=en", again.encode(), "wc-copy.yaml")
    assert page.status_code == 200
    assert "Saved as the draft of the web survey wc-copy" in page.get_data(as_text=True)
    assert draft_text(web_app, "wc-copy") == again


def test_unknown_survey_is_404(web_app):
    client = staff(web_app)
    assert client.get("/staff/surveys/no-such-survey.yaml").status_code == 404
    assert client.get("/staff/surveys/no-such-survey/translations").status_code == 404
    assert client.get("/staff/surveys/no-such-survey/translations.xlsx").status_code == 404


# --- YAML in -----------------------------------------------------------------------------------

BILLION_LAUGHS = b"""\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
id: lol
"""
HOSTILE = {
    "alias bomb": (BILLION_LAUGHS, "counting what aliases repeat"),
    "python tag": (
        b"id: evil\ntitle: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        "is not allowed",
    ),
    "over 1 MB": (b"id: big\n# " + b"x" * 1_000_000 + b"\n", "larger than 1 MB"),
    "not UTF-8": ("id: latin\ntitle: {es: Año}\n".encode("latin-1"), "not UTF-8"),
    "not a mapping": (b"- id: listed\n- title: nope\n", "This file is not a survey"),
    "a file survey's id": (
        (TEST_SURVEYS / "housing-check.yaml").read_bytes(),
        "A survey from a file already has the id housing-check",
    ),
    "a reserved id": (b"id: import\ntitle: {es: x}\n", "is the name of a page"),
    "not YAML": (b"id: [unclosed\ntitle: {es: x\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_or_unusable_uploads_are_refused_and_nothing_is_saved(web_app, case):
    data, message = HOSTILE[case]
    client = staff(web_app)
    before = stored(web_app)
    response = post_file(client, "/staff/surveys/import?lang=en", data, "survey.yaml")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="refused"' in page and "nothing was saved" in page.lower()
    assert message in page
    assert stored(web_app) == before
    with web_app.app_context():
        assert db.session().scalars(select(SurveyDraft)).all() == []


def test_an_upload_over_the_request_limit_is_refused_before_it_is_read(web_app):
    client = staff(web_app)
    before = stored(web_app)
    data = b"id: huge\n# " + b"x" * 2_000_000
    response = post_file(client, "/staff/surveys/import?lang=en", data, "huge.yaml")
    assert response.status_code == 413
    assert "larger than 1 MB: nothing was saved" in response.get_data(as_text=True)
    assert stored(web_app) == before


def test_the_refusal_is_in_spanish_too(web_app):
    client = staff(web_app)
    response = post_file(
        client, "/staff/surveys/import?lang=es", HOSTILE["python tag"][0], "survey.yaml"
    )
    assert "no se guardó nada" in response.get_data(as_text=True)


def test_a_file_with_problems_is_saved_as_a_draft_with_its_problems_by_line(web_app):
    text = (
        "id: pay-check\n"
        "title: {es: Pago, en: Pay}\n"
        "languages: [es, en]\n"
        "keywords: {es: [PAGO], en: [PAY]}\n"
        "questions:\n"
        "  - id: paid\n"
        "    type: yes_no\n"
        "    text: {es: '¿Le pagan a tiempo?'}\n"
        "  - id: hours\n"
        "    type: number\n"
        "    min: 10\n"
        "    max: 2\n"
        "    text: {es: Horas, en: Hours}\n"
    )
    client = staff(web_app)
    response = post_file(client, "/staff/surveys/import?lang=en", text.encode(), "pay.yaml")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Saved as the draft of the web survey pay-check" in page
    text_shown = plain(page)
    assert (
        "pay.yaml:8 : missing translation 'en' for text of question 'paid' "
        "text: {es: '¿Le pagan a tiempo?'}"
    ) in text_shown
    assert "pay.yaml:12 : min 10 is greater than max 2 max: 2" in text_shown
    assert 'id="open-draft"' in page
    assert draft_text(web_app, "pay-check") == text

    # On a Spanish page, the same problems at the same lines, said in Spanish.
    spanish = text.replace("pay-check", "pago").replace("PAGO", "PAGA").replace("PAY]", "PAID]")
    response = post_file(client, "/staff/surveys/import?lang=es", spanish.encode(), "pago.yaml")
    assert response.status_code == 200
    text_shown = plain(response.get_data(as_text=True))
    assert (
        "pago.yaml:8 : texto de la pregunta «paid»: falta la traducción «en» "
        "text: {es: '¿Le pagan a tiempo?'}"
    ) in text_shown
    assert "pago.yaml:12 : el mínimo (10) es mayor que el máximo (2) max: 2" in text_shown


# --- translators' files: PO --------------------------------------------------------------------


def test_po_export_has_the_default_language_as_msgid_and_the_field_as_context(web_app):
    make_draft(web_app)
    client = staff(web_app)
    response = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="{DRAFT_ID}-ht.po"'
    catalog = read_po(io.BytesIO(response.data))
    assert catalog.locale_identifier == "ht"
    messages = {m.context: (m.id, m.string) for m in catalog if m.id}
    assert messages["title"] == ("Pago de cosecha", "Peman rekòt")
    assert messages["keywords"] == ("COSECHA", "REKOT")
    assert messages["questions.state.choices.CA.label"] == ("California", "")
    assert messages["questions.paid.text"] == ("¿Le pagan a tiempo?", "")
    assert messages["questions.hours.text"][1] == "Konbyen èdtan ou te travay yè?"
    assert messages["closing"] == ("Gracias.", "Mèsi.")
    # The default language has no PO of its own; a language the survey lacks is not one.
    assert client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=es").status_code == 400
    assert client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=fr").status_code == 400
    with web_app.app_context():
        entry = (
            db.session().scalars(select(AuditEntry).where(AuditEntry.action == "download")).one()
        )
    assert entry.parameters == {"format": "po", "kind": "translations", "language": "ht"}


def test_a_translated_po_is_previewed_then_saved_once_confirmed(web_app):
    make_draft(web_app)
    original = draft_text(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    translated = translate_po(
        exported,
        {
            "questions.state.choices.CA.label": "Kalifòni",
            "questions.paid.text": "Èske yo peye w alè?",
            "keywords": "REKOT,  PEMAN ",
        },
    )
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    preview = post_file(
        client, f"/staff/surveys/{DRAFT_ID}/translations?lang=en", translated, "h.po", token
    )
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "3 changes" in page
    changes = page[page.index('id="changes"') : page.index("</ol>", page.index('id="changes"'))]
    assert "questions.paid.text" in changes and "Èske yo peye w alè?" in changes
    assert "Kalifòni" in changes and "REKOT, PEMAN" in changes
    assert 'class="missing">missing<' in changes
    # The draft lacked two Kreyòl texts: its problems go with the upload.
    assert "missing translation" in draft_problems(web_app, original)
    assert "missing translation" not in page
    assert draft_text(web_app) == original  # nothing saved yet

    form = confirm_form(page)
    saved = client.post(f"/staff/surveys/{DRAFT_ID}/translations", data=form)
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith(f"/staff/surveys/{DRAFT_ID}/translations?saved=3")
    document = draft_document(web_app)
    assert document["questions"][0]["choices"][1]["label"] == {
        "es": "California",
        "ht": "Kalifòni",
    }
    assert document["questions"][1]["text"] == {
        "es": "¿Le pagan a tiempo?",
        "ht": "Èske yo peye w alè?",
    }
    assert document["keywords"]["ht"] == ["REKOT", "PEMAN"]
    assert document["title"] == DRAFT["title"] and document["closing"] == DRAFT["closing"]
    assert check_text("x.yaml", draft_text(web_app)).survey is not None
    landing = client.get(saved.headers["Location"] + "&lang=en").get_data(as_text=True)
    assert "3 texts saved in the draft." in landing
    with web_app.app_context():
        assert db.session().get(SurveyDraft, DRAFT_ID).revision == 3


def draft_problems(app, text: str) -> str:
    return " ".join(p.message for p in check_text("x.yaml", text).problems)


def test_a_po_still_fits_after_the_questions_are_reordered(web_app):
    make_draft(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    reordered = {**DRAFT, "questions": list(reversed(DRAFT["questions"]))}
    with web_app.app_context(), db.transaction() as session:
        save_draft(session, DRAFT_ID, document=reordered, revision=2, user_id=None, now=utcnow())
    translated = translate_po(exported, {"questions.paid.text": "Èske yo peye w alè?"})
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    page = post_file(client, f"/staff/surveys/{DRAFT_ID}/translations", translated, "h.po", token)
    client.post(f"/staff/surveys/{DRAFT_ID}/translations", data=confirm_form(page.get_data(True)))
    questions = {q["id"]: q for q in draft_document(web_app)["questions"]}
    assert questions["paid"]["text"]["ht"] == "Èske yo peye w alè?"
    assert [q["id"] for q in draft_document(web_app)["questions"]] == ["hours", "paid", "state"]


@pytest.mark.parametrize(
    ("context", "translation", "problem"),
    [
        ("questions.paid.text", "a" * 1601, "text of 1,601 characters: at most 1,600"),
        ("keywords", "VIVIENDA", "keyword &#39;VIVIENDA&#39; is used by survey &#39;housing-check"),
        ("keywords", "AYUDA", "keyword &#39;AYUDA&#39; is the system keyword AYUDA"),
        ("questions.state.choices.CA.label", "SOTE", "is the system keyword"),
    ],
)
def test_a_translation_that_breaks_a_rule_is_shown_in_the_preview(
    web_app, context, translation, problem
):
    make_draft(web_app)
    original = draft_text(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    response = post_file(
        client,
        f"/staff/surveys/{DRAFT_ID}/translations?lang=en",
        translate_po(exported, {context: translation}),
        "ht.po",
        token,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    problems = page[page.index('id="problems"') :]
    line = next(li for li in problems.split("<li")[1:] if problem in li)
    assert 'class="new' in line and ">new<" in line
    assert draft_text(web_app) == original


def test_the_preview_says_the_problems_in_the_page_language(web_app):
    make_draft(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    translated = translate_po(exported, {"questions.paid.text": "a" * 1601, "keywords": "VIVIENDA"})
    response = post_file(
        client, f"/staff/surveys/{DRAFT_ID}/translations?lang=es", translated, "ht.po", token
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    problems = page[page.index('id="problems"') :]
    assert "texto de 1.601 caracteres: como máximo 1.600" in problems
    assert "la palabra clave «VIVIENDA» ya la usa la encuesta «housing-check»" in problems
    assert "characters" not in problems and "is used by survey" not in problems


def test_a_translation_over_two_sms_segments_shows_its_cost(web_app):
    make_draft(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    long_text = "Eske ou te resevwa tout lajan ou te touche pou semen sa a? " * 6
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    response = post_file(
        client,
        f"/staff/surveys/{DRAFT_ID}/translations?lang=en",
        translate_po(
            exported,
            {
                "questions.paid.text": long_text.strip(),
                "questions.state.choices.CA.label": "Kalifoni",
            },
        ),
        "ht.po",
        token,
    )
    page = response.get_data(as_text=True)
    costs = page[page.index('id="costs"') :]
    assert "more than 2 SMS segments" in costs
    row = next(tr for tr in costs.split("<tr")[1:] if "<code>paid</code>" in tr)
    assert 'class="over"' in row and "– → 3</td>" in row


def test_a_stale_preview_is_refused_and_the_other_save_kept(web_app):
    make_draft(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    translated = translate_po(exported, {"questions.paid.text": "Èske yo peye w alè?"})
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    page = post_file(client, f"/staff/surveys/{DRAFT_ID}/translations", translated, "h.po", token)
    form = confirm_form(page.get_data(as_text=True))
    edited = {**DRAFT, "closing": {"es": "¡Gracias!", "ht": "Mèsi anpil."}}
    with web_app.app_context(), db.transaction() as session:
        save_draft(session, DRAFT_ID, document=edited, revision=2, user_id=None, now=utcnow())
    refused = client.post(f"/staff/surveys/{DRAFT_ID}/translations?lang=en", data=form)
    assert refused.status_code == 409
    assert "Someone saved this draft since the file was read" in refused.get_data(as_text=True)
    document = draft_document(web_app)
    assert document["closing"]["ht"] == "Mèsi anpil."
    assert "ht" not in document["questions"][1]["text"]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"\x00\x01 not a po file \xff", "x.po", "This is not a PO file"),
        (b"", "x.po", "This is not a PO file"),
        (b"PK\x03\x04 broken", "x.xlsx", "This is not an XLSX workbook"),
        (b"id: yaml\n", "x.xlsx", "This is not an XLSX workbook"),
    ],
)
def test_files_that_are_not_translations_are_refused(web_app, data, filename, message):
    make_draft(web_app)
    original = draft_text(web_app)
    client = staff(web_app)
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    response = post_file(
        client, f"/staff/surveys/{DRAFT_ID}/translations?lang=en", data, filename, token
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert draft_text(web_app) == original


def test_a_po_in_the_wrong_language_is_refused(web_app):
    make_draft(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    for language, message in (("es", "the survey&#39;s own language"), ("fr", "not one of")):
        data = exported.replace(b'"Language: ht\\n"', f'"Language: {language}\\n"'.encode())
        response = post_file(
            client, f"/staff/surveys/{DRAFT_ID}/translations?lang=en", data, "x.po", token
        )
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


def test_a_file_survey_takes_no_translations(web_app):
    client = staff(web_app)
    exported = client.get("/staff/surveys/housing-check/translations.po?lang=en").data
    page = client.get("/staff/surveys/housing-check/translations?lang=en").get_data(as_text=True)
    assert "copy to edit" in page and 'name="file"' not in page
    token = csrf_token(client, "/staff/surveys/housing-check/translations")
    translated = translate_po(exported, {"closing": "Thanks!"})
    response = post_file(
        client, "/staff/surveys/housing-check/translations?lang=en", translated, "en.po", token
    )
    assert response.status_code == 400
    assert "copy to edit" in response.get_data(as_text=True)
    assert stored(web_app)[1] == 0


# --- translators' files: XLSX ------------------------------------------------------------------


def test_xlsx_round_trip_with_every_language_and_texts_that_look_like_formulas(web_app):
    document = {**DRAFT, "closing": {"es": '=HYPERLINK("http://x")', "ht": "'Mèsi"}}
    make_draft(web_app, document)
    client = staff(web_app)
    response = client.get(f"/staff/surveys/{DRAFT_ID}/translations.xlsx")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.data))
    sheet = workbook.active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("context", "es", "ht")
    by_context = {row[0]: row[1:] for row in rows[1:]}
    assert by_context["questions.paid.text"] == ("¿Le pagan a tiempo?", None)
    assert by_context["keywords"] == ("COSECHA", "REKOT")
    # Never a formula: a leading quote, dropped again when the file comes back.
    assert by_context["closing"] == ('\'=HYPERLINK("http://x")', "''Mèsi")
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row if cell.value)

    # Unchanged, it changes nothing.
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    same = post_file(
        client, f"/staff/surveys/{DRAFT_ID}/translations?lang=en", response.data, "t.xlsx", token
    )
    assert 'id="no-changes"' in same.get_data(as_text=True)

    for row in sheet.iter_rows(min_row=2):
        if row[0].value == "questions.paid.text":
            row[2].value = "Èske yo peye w alè?"
        if row[0].value == "questions.state.choices.CA.label":
            row[2].value = "Kalifòni"
        if row[0].value == "closing":
            row[2].value = "'+1 Mèsi"
    sheet.cell(row=1, column=4, value="fr")  # a column the survey has no language for
    buffer = io.BytesIO()
    workbook.save(buffer)
    preview = post_file(
        client,
        f"/staff/surveys/{DRAFT_ID}/translations?lang=en",
        buffer.getvalue(),
        "t.xlsx",
        token,
    )
    page = preview.get_data(as_text=True)
    assert "3 changes" in page and "Not one of the survey&#39;s languages" in page
    client.post(f"/staff/surveys/{DRAFT_ID}/translations", data=confirm_form(page))
    saved = draft_document(web_app)
    assert saved["questions"][1]["text"]["ht"] == "Èske yo peye w alè?"
    assert saved["questions"][0]["choices"][1]["label"]["ht"] == "Kalifòni"
    assert saved["closing"] == {"es": '=HYPERLINK("http://x")', "ht": "+1 Mèsi"}


def test_a_zip_bomb_posing_as_a_workbook_is_refused_unread(web_app):
    make_draft(web_app)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"\0" * 50_000_000)
    assert len(buffer.getvalue()) < 1_000_000
    client = staff(web_app)
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    response = post_file(
        client,
        f"/staff/surveys/{DRAFT_ID}/translations?lang=en",
        buffer.getvalue(),
        "bomb.xlsx",
        token,
    )
    assert response.status_code == 400
    assert "unpacks to far more than a survey" in response.get_data(as_text=True)


def test_a_workbook_with_an_xml_entity_bomb_is_refused(web_app):
    from openpyxl import DEFUSEDXML

    assert DEFUSEDXML  # openpyxl reads uploads through defusedxml
    make_draft(web_app)
    client = staff(web_app)
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.xlsx").data
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row>'
        "</sheetData></worksheet>"
    )
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(exported)) as source,
        zipfile.ZipFile(buffer, "w") as target,
    ):
        for member in source.infolist():
            data = source.read(member)
            if member.filename.startswith("xl/worksheets/"):
                data = bomb.encode()
            target.writestr(member, data)
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    response = post_file(
        client,
        f"/staff/surveys/{DRAFT_ID}/translations?lang=en",
        buffer.getvalue(),
        "bomb.xlsx",
        token,
    )
    assert response.status_code == 400
    assert "This is not an XLSX workbook" in response.get_data(as_text=True)


# --- access ------------------------------------------------------------------------------------


def test_posts_need_their_csrf_token(web_app):
    make_draft(web_app)
    original = draft_text(web_app)
    client = staff(web_app)
    before = stored(web_app)
    text = (TEST_SURVEYS / "housing-check.yaml").read_bytes().replace(b"housing-check", b"h2")
    refused = post_file(client, "/staff/surveys/import", text, "h2.yaml", token="")
    assert refused.status_code == 400
    assert stored(web_app) == before
    exported = client.get(f"/staff/surveys/{DRAFT_ID}/translations.po?lang=ht").data
    translated = translate_po(exported, {"questions.paid.text": "Èske yo peye w alè?"})
    token = csrf_token(client, f"/staff/surveys/{DRAFT_ID}/translations")
    page = post_file(client, f"/staff/surveys/{DRAFT_ID}/translations", translated, "h.po", token)
    form = confirm_form(page.get_data(as_text=True))
    del form["csrf_token"]
    assert client.post(f"/staff/surveys/{DRAFT_ID}/translations", data=form).status_code == 400
    assert draft_text(web_app) == original


def test_the_policy_team_cannot_post_files(web_app):
    make_draft(web_app)
    client = staff(web_app, "policy")
    token = csrf_token(client, "/results")
    text = (TEST_SURVEYS / "housing-check.yaml").read_bytes().replace(b"housing-check", b"h2")
    assert post_file(client, "/staff/surveys/import", text, "h2.yaml", token).status_code == 403
    response = post_file(client, f"/staff/surveys/{DRAFT_ID}/translations", b"", "x.po", token)
    assert response.status_code == 403
    anonymous = web_app.test_client()
    assert anonymous.post("/staff/surveys/import").status_code in (302, 400)
    assert stored(web_app)[1] == 1

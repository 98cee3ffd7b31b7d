"""The staff responses file: one row per response, pseudonymous, free text masked, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import insert, select

from engage import db
from engage.cli import main
from engage.models import Answer, Contact, Conversation, SurveyVersion
from engage.results.responses import FIXED_COLUMNS, mask_free_text, respondent_id
from engage.results.writers import BOM, iter_responses_csv
from engage.services.results import export_responses
from tests.results.conftest import MISS, SKIP, T0, FromProfile
from tests.test_web_access import sign_in

SECRET = "a-secret-key-for-tests"
WORKING_CONDITIONS = [
    "state",
    "main_crop",
    "first_season",
    "days_worked",
    "hours_per_day",
    "pay_basis",
    "deductions",
    "heat",
    "work_hazards",
    "housing_conditions",
    "contract_timing",
    "contract_understood",
    "recruit_fee",
    "debt",
    "passport_holder",
    "passport_back",
    "threats",
    "comments",
]


def export_text(app, survey_id: str = "working-conditions", secret: str = SECRET) -> str:
    with app.app_context():
        staff_file = export_responses(
            db.session(), survey_id, secret_key=secret, vault=app.extensions["engage.vault"]
        )
        return "".join(iter_responses_csv(staff_file))


def export_rows(app, survey_id: str = "working-conditions", secret: str = SECRET):
    text = export_text(app, survey_id, secret)
    assert text.startswith(BOM)
    return list(csv.DictReader(io.StringIO(text[len(BOM) :])))


def current_version(app, survey_id: str = "working-conditions") -> str:
    with app.app_context():
        return db.session().scalar(
            select(SurveyVersion.version).where(
                SurveyVersion.survey_id == survey_id, SurveyVersion.is_current.is_(True)
            )
        )


def test_one_row_per_response_with_version_language_status_and_the_day_only(app, seed):
    contact_id = seed.contact({"state": "CA"})
    seed.response({"state": "CA"}, contact_id=contact_id, status="abandoned")
    seed.response(
        {"state": FromProfile("CA"), "first_season": "yes"},
        contact_id=contact_id,
        at=T0 + timedelta(days=3, hours=9),
        language="en",
    )
    seed.response({"state": "FL"})
    text = export_text(app)
    rows = list(csv.DictReader(io.StringIO(text[len(BOM) :])))
    assert list(rows[0]) == [*FIXED_COLUMNS, *WORKING_CONDITIONS]
    assert len(rows) == 3
    first, second, other = rows
    assert first["respondent_id"] == second["respondent_id"] != other["respondent_id"]
    assert first["version"] == current_version(app)
    assert (first["status"], first["answered_on"]) == ("abandoned", "2026-03-02")
    assert (second["status"], second["language"], second["answered_on"]) == (
        "completed",
        "en",
        "2026-03-05",
    )
    assert "14:30" not in text and "T14" not in text and "23:30" not in text


def test_respondent_ids_are_keyed_hashes_stable_across_exports(app, seed):
    contact_id = seed.contact()
    seed.response({"state": "CA"}, contact_id=contact_id)
    first = export_rows(app)[0]["respondent_id"]
    assert export_rows(app)[0]["respondent_id"] == first == respondent_id(contact_id, SECRET)
    assert len(first) == 16 and int(first, 16) >= 0
    assert export_rows(app, secret="another-key")[0]["respondent_id"] != first
    assert respondent_id(contact_id + 1, SECRET) != first


def test_answer_cells_show_values_skips_and_misses(app, seed):
    seed.response(
        {
            "state": FromProfile("CA"),
            "main_crop": SKIP,
            "first_season": MISS,
            "hours_per_day": 10.0,
            "housing_conditions": ["crowded", "pests"],
            "comments": "Todo bien",
        }
    )
    row = export_rows(app)[0]
    assert row["state"] == "CA"
    assert row["main_crop"] == "_skipped"
    assert row["first_season"] == "_missed"
    assert row["hours_per_day"] == "10"
    assert row["housing_conditions"] == "crowded;pests"
    assert row["comments"] == "Todo bien"
    assert row["recruit_fee"] == ""  # never asked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("llame al 5551234567", "llame al [number]"),
        ("mi cel (555) 123-4567 gracias", "mi cel [number] gracias"),
        ("+52 1 555 123 4567", "[number]"),
        ("555.123.4567", "[number]"),
        ("12 34 567", "[number]"),
        ("escriba a juan.perez+x@example.com.mx ya", "escriba a [email] ya"),
        ("correo: ana_2@mail.co, tel 555-1234567", "correo: [email], tel [number]"),
        ("trabajé 60 horas por $1,999", "trabajé 60 horas por $1,999"),
        ("código 123456", "código 123456"),
        ("", ""),
    ],
)
def test_mask_free_text(text, masked):
    assert mask_free_text(text) == masked


DASHES = [
    "-",  # hyphen-minus
    "\u2010",  # hyphen
    "\u2011",  # non-breaking hyphen
    "\u2012",  # figure dash
    "\u2013",  # en dash
    "\u2014",  # em dash
    "\u2015",  # horizontal bar
    "\u2212",  # minus sign
    "\ufe63",  # small hyphen-minus
    "\uff0d",  # full-width hyphen-minus
    "\u00ad",  # soft hyphen (invisible)
]


@pytest.mark.parametrize("dash", DASHES, ids=lambda d: f"U+{ord(d):04X}")
def test_a_number_is_masked_whatever_dash_is_between_its_digits(dash):
    text = f"tel 555{dash}123{dash}4567, gracias"
    assert mask_free_text(text) == "tel [number], gracias"


@pytest.mark.parametrize(
    "number",
    [
        "555/123/4567",
        "555_123_4567",
        "555–123–4567",
        "555—123—4567",
        "555,123,4567",
        "(555) 123-4567",
        "[555] 123 4567",
        "{555}123.4567",
        "555\\123\\4567",
        "555 / 123 _ 4567",
        "555\u00a0123\u00a04567",  # non-breaking spaces
        "555\u202f123\u20094567",  # narrow and thin spaces
        "555\u200b123\u200b4567",  # zero-width spaces
        "555\u2060123\ufeff4567",  # word joiner, zero-width no-break space
        "555·123·4567",
        "555\uff0e123\uff0e4567",  # full-width dots
        "555\uff0f123\uff0f4567",  # full-width slashes
        "555\uff0c123\uff0c4567",  # full-width commas
        "\uff08555\uff09123 4567",  # full-width brackets
        "\uff15\uff15\uff15\uff11\uff12\uff13\uff14",  # full-width digits
        "+52 (1) 555-123-4567",
        "5 5 5 1 2 3 4",
        "1-2-3-4-5-6-7",
        "12/03/1985",
        "4111 1111 1111 1111",
    ],
)
def test_seven_or_more_digits_with_any_separators_are_masked(number):
    masked = mask_free_text(f"llame al {number} por favor")
    assert masked == "llame al [number] por favor"


@pytest.mark.parametrize(
    "address",
    [
        "juan.perez@example.com",
        "ana_2+finca@mail.co.mx",
        "o'brien@example.org",
        "maría@correo.mx",
        "juan\uff20example\uff0ecom",  # full-width at sign and dot
        "5551234567@txt.att.net",
    ],
)
def test_every_email_address_is_masked(address):
    assert mask_free_text(f"escriba a {address} hoy") == "escriba a [email] hoy"


@pytest.mark.parametrize(
    "text",
    [
        "10 horas",
        "$500",
        "trabajé 60 horas por $1,999",
        "12 horas, 6 días, $80",
        "de 8:00 a 17:00",
        "código 123456",
        "123-456",
        "15/03/25",
        "3 hijos, 2 en México",
        "ana arroba gmail",
    ],
)
def test_short_numbers_and_other_text_are_kept(text):
    assert mask_free_text(text) == text


def test_free_text_in_the_file_is_masked_and_formulas_neutralised(app, seed):
    seed.response({"comments": "Llámeme al (555) 123-4567 o a juan.perez@example.com"})
    seed.response({"comments": '=HYPERLINK("http://x","clic")'})
    seed.response({"comments": "-5 de pago"})
    comments = [row["comments"] for row in export_rows(app)]
    assert comments == [
        "Llámeme al [number] o a [email]",
        '\'=HYPERLINK("http://x","clic")',
        "'-5 de pago",
    ]
    assert "4567" not in export_text(app)


def test_numbers_written_with_any_separator_never_reach_the_file(app, seed):
    numbers = ["555/123/4567", "555_123_4567", "555–123–4567", "555,123,4567", "(555) 123-4567"]
    for number in numbers:
        seed.response({"comments": f"mi número {number} y trabajo 10 horas por $500"})
    comments = [row["comments"] for row in export_rows(app)]
    assert comments == ["mi número [number] y trabajo 10 horas por $500"] * len(numbers)
    assert "4567" not in export_text(app)


def test_simulated_responses_are_left_out(app, seed):
    seed.response({"state": "CA"}, simulated=True)
    seed.response({"state": "FL"})
    assert [row["state"] for row in export_rows(app)] == ["FL"]


def test_rows_are_streamed_across_result_partitions(app):
    """10,400 answer rows: more than one partition of the streamed result."""
    conversations = 2_600
    version = current_version(app, "housing-check")
    with app.app_context(), db.transaction() as session:
        contacts = [
            Contact(phone_hash=f"h{i}", phone_encrypted=f"e{i}") for i in range(conversations)
        ]
        session.add_all(contacts)
        session.flush()
        rows = [
            Conversation(
                contact_id=c.id,
                survey_id="housing-check",
                version=version,
                language="es",
                record_key=c.record_key,
            )
            for c in contacts
        ]
        session.add_all(rows)
        session.flush()
        answers = [
            {
                "conversation_id": conv.id,
                "contact_id": conv.contact_id,
                "survey_id": "housing-check",
                "version": version,
                "question_id": question_id,
                "status": "answered",
                "value": {"v": value},
                "language": "es",
                "profile": {},
                "is_simulated": False,
                "record_key": conv.record_key,
                "answered_at": T0,
            }
            for conv in rows
            # Four rows each: a question answered again counts with its last row.
            for question_id, value in (
                ("state", "FL"),
                ("water", "no"),
                ("state", "CA"),
                ("water", "yes"),
            )
        ]
        session.execute(insert(Answer), answers)
    with app.app_context():
        staff_file = export_responses(
            db.session(), "housing-check", secret_key=SECRET, vault=app.extensions["engage.vault"]
        )
        assert isinstance(staff_file.rows, Iterator)
        got = [(row[5], row[6]) for row in staff_file.rows]
    assert len(got) == conversations
    assert set(got) == {("CA", "yes")}


def test_export_command_writes_the_responses_file(app, seed):
    seed.response({"comments": "mi correo es ana@example.org"})
    result = CliRunner().invoke(
        main,
        ["export", "working-conditions", "--responses"],
        obj=ScriptInfo(create_app=lambda: app),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(BOM.encode("utf-8"))
    rows = list(csv.DictReader(io.StringIO(result.stdout[len(BOM) :])))
    assert rows[0]["comments"] == "mi correo es [email]"
    assert len(rows[0]["respondent_id"]) == 16


def test_a_streamed_download_gives_its_connection_back(web_app, seed):
    """The rows are read while the body streams: its connection must go back to the pool."""
    seed.response({"water": "yes", "state": "CA"}, survey_id="housing-check")
    client = web_app.test_client()
    sign_in(client, "staff")
    engine = web_app.extensions["engage.engine"]
    before = engine.pool.checkedout()
    response = client.get("/results/housing-check/responses.csv")
    assert response.status_code == 200
    assert len(response.get_data(as_text=True).splitlines()) == 2
    response.close()
    assert engine.pool.checkedout() == before

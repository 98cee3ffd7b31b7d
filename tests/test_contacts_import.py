"""`engage contacts import`: all rows or none, duplicates merged, an opt-out is never cleared."""

from __future__ import annotations

from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select

from engage import db
from engage.cli import main
from engage.models import Contact
from tests import readback as rb


def run_import(app, path):
    return CliRunner().invoke(
        main, ["contacts", "import", str(path)], obj=ScriptInfo(create_app=lambda: app)
    )


def contacts(app):
    with app.app_context():
        rows = db.session().scalars(select(Contact).order_by(Contact.id)).all()
        return {rb.phone(app, c): c for c in rows}


def test_import_normalises_numbers_and_merges_duplicates(app, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text(
        "phone,language,consent_source,state,crop\n"
        "(305) 555-0100,es,clinic-2026,FL,citrus\n"
        "+1 206 555 0101,en,fair,,\n"
        "305.555.0100,,,,berries\n"
    )
    result = run_import(app, path)
    assert result.exit_code == 0, result.output
    assert "2 created, 0 updated, 1 duplicate row(s) merged" in result.output
    got = contacts(app)
    assert set(got) == {"+13055550100", "+12065550101"}
    florida = got["+13055550100"]
    assert florida.profile == {"state": "FL", "crop": "berries"}
    assert florida.language == "es" and florida.consent_source == "clinic-2026"
    assert florida.timezone == "America/New_York"
    assert got["+12065550101"].timezone == "America/Los_Angeles"


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(app, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text(
        "phone,language,consent_source,state\n"
        "+13055550100,es,clinic,FL\n"
        "not a phone,es,clinic,FL\n"
        "+13055550102,Spanish,clinic,FL\n"
    )
    result = run_import(app, path)
    assert result.exit_code == 1
    assert f"{path}:3: " in result.output
    assert f"{path}:4: language 'Spanish'" in result.output
    assert "nothing imported" in result.output
    assert contacts(app) == {}


def test_a_missing_column_is_named(app, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("phone,state\n+13055550100,FL\n")
    result = run_import(app, path)
    assert result.exit_code == 1
    assert "missing column(s) language, consent_source" in result.output


def test_an_import_never_clears_an_opt_out(app, tmp_path, worker):
    worker("+13055550100").send("STOP")
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state\n+13055550100,es,clinic,FL\n")
    assert run_import(app, path).exit_code == 0
    contact = contacts(app)["+13055550100"]
    assert contact.is_opted_out
    assert contact.profile == {"state": "FL"}


def test_an_import_records_when_each_profile_value_was_set(app, tmp_path):
    from datetime import datetime, timedelta

    from engage.db import utcnow

    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state,crop\n(305) 555-0100,es,clinic,FL,\n")
    before = utcnow()
    assert run_import(app, path).exit_code == 0
    florida = contacts(app)["+13055550100"]
    assert set(florida.profile_updated_at) == {"state"}  # an empty cell sets nothing
    set_at = datetime.fromisoformat(florida.profile_updated_at["state"])
    assert before <= set_at <= utcnow() + timedelta(seconds=1)

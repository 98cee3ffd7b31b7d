"""The audit trail covers CLI exports as it covers web downloads, and every account change."""

from __future__ import annotations

import getpass

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select

from engage import db
from engage.cli import main
from engage.models import AuditEntry, User
from tests.conftest import WEB_PASSWORD
from tests.test_web_access import sign_in

SURVEY = "working-conditions"
ACTOR = f"cli:{getpass.getuser()}"


def run(app, *args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, obj=ScriptInfo(create_app=lambda: app))


def entries(app, action: str | None = None) -> list[AuditEntry]:
    with app.app_context():
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(db.session().scalars(query))


@pytest.mark.parametrize(
    ("args", "parameters"),
    [
        ([], {"format": "csv", "by": "", "kind": "aggregates", "output": "stdout"}),
        (
            ["--by", "state", "--format", "json"],
            {"format": "json", "by": "state", "kind": "aggregates", "output": "stdout"},
        ),
        (["--responses"], {"format": "csv", "kind": "responses", "output": "stdout"}),
    ],
)
def test_cli_exports_are_audited_like_downloads(app, args, parameters):
    result = run(app, "export", SURVEY, *args)
    assert result.exit_code == 0, result.output
    [entry] = entries(app, "download")
    assert (entry.actor, entry.user_id, entry.survey_id) == (ACTOR, None, SURVEY)
    assert entry.parameters == parameters


def test_a_cli_export_to_a_file_records_the_file(app, tmp_path):
    target = tmp_path / "out.xlsx"
    assert run(app, "export", SURVEY, "--format", "xlsx", "-o", str(target)).exit_code == 0
    [entry] = entries(app, "download")
    assert entry.parameters["output"] == str(target) and entry.parameters["format"] == "xlsx"


def test_a_refused_export_records_nothing(app):
    assert run(app, "export", "no-such-survey").exit_code != 0
    assert run(app, "export", SURVEY, "--by", "employer").exit_code != 0
    assert entries(app, "download") == []


def test_account_changes_from_the_cli_are_audited_and_never_hold_a_password(app):
    password = "first long password"
    assert (
        run(
            app, "users", "create", "ana@example.org", "--role", "policy", stdin=password + "\n"
        ).exit_code
        == 0
    )
    assert (
        run(app, "users", "password", "ana@example.org", stdin="second long password\n").exit_code
        == 0
    )
    assert run(app, "users", "role", "ana@example.org", "--role", "staff").exit_code == 0
    assert run(app, "users", "deactivate", "ana@example.org").exit_code == 0
    got = [(e.actor, e.action, e.parameters) for e in entries(app)]
    assert got == [
        (ACTOR, "create_user", {"account": "ana@example.org", "role": "policy"}),
        (ACTOR, "set_password", {"account": "ana@example.org"}),
        (
            ACTOR,
            "set_role",
            {"account": "ana@example.org", "role": "staff", "previous_role": "policy"},
        ),
        (ACTOR, "deactivate_user", {"account": "ana@example.org"}),
    ]
    assert "long password" not in repr(got)
    with app.app_context():
        user = db.session().scalar(select(User))
    assert (user.role, user.is_active) == ("staff", False)


def test_account_commands_refuse_unknown_accounts_and_short_passwords(app):
    result = run(app, "users", "role", "nobody@example.org", "--role", "admin")
    assert result.exit_code == 1 and "has no account" in result.output
    run(app, "users", "create", "ana@example.org", "--role", "policy", stdin=WEB_PASSWORD + "\n")
    short = run(app, "users", "password", "ana@example.org", stdin="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    assert [e.action for e in entries(app)] == ["create_user"]


def test_a_password_changed_from_the_cli_ends_the_web_session(web_app):
    client = web_app.test_client()
    sign_in(client, "policy")
    assert client.get("/results").status_code == 200
    result = run(web_app, "users", "password", "policy@example.org", stdin="a brand new password\n")
    assert result.exit_code == 0, result.output
    assert client.get("/results").status_code == 302


def test_the_audit_page_lists_account_changes(web_app):
    run(web_app, "users", "role", "staff@example.org", "--role", "policy")
    admin = web_app.test_client()
    sign_in(admin, "admin")
    page = admin.get("/admin/audit?lang=en").get_data(as_text=True)
    assert "role changed" in page and "previous_role=staff" in page and ACTOR in page
    assert "rol cambiado" in admin.get("/admin/audit?lang=es").get_data(as_text=True)


def test_publishing_from_the_cli_is_audited(app, tmp_path):
    import shutil

    from tests.conftest import TEST_SURVEYS

    directory = tmp_path / "surveys"
    directory.mkdir()
    shutil.copy(TEST_SURVEYS / "housing-check.yaml", directory)
    path = directory / "housing-check.yaml"
    path.write_text(path.read_text().replace("¿Tiene agua limpia", "¿Hay agua limpia"))
    result = run(app, "surveys", "load", str(directory))
    assert result.exit_code == 0, result.output
    published = entries(app, "publish")
    assert [(e.actor, e.survey_id) for e in published] == [(ACTOR, "housing-check")]
    assert published[0].parameters["version"] in result.output
    # Nothing changed: nothing published, nothing recorded.
    assert run(app, "surveys", "load", str(directory)).exit_code == 0
    assert len(entries(app, "publish")) == 1

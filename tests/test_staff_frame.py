"""/staff: what needs attention, counted without showing any worker's words or number."""

from __future__ import annotations

from engage import db
from engage.models import Message, SurveyDraft, SurveyRecord
from engage.privacy import parse_sender
from engage.services.conversations import handle_inbound, settings_from
from tests.test_web_access import sign_in


def _urgent_message(app, phone: str, text: str) -> None:
    with app.app_context(), db.engine().begin() as connection:
        handle_inbound(
            connection,
            settings_from(app.config, app.extensions["engage.vault"]),
            sender=parse_sender(phone),
            to="+15550000000",
            body=text,
        )


def test_dashboard_counts_urgent_messages_and_lists_drafts(web_app):
    _urgent_message(web_app, "+15550104321", "me quitaron el pasaporte")
    with web_app.app_context(), db.transaction() as session:
        assert session.query(Message).filter_by(is_urgent=True).count() == 1
        session.add(SurveyRecord(id="harvest-pay", source="web"))
        session.flush()
        session.add(SurveyDraft(survey_id="harvest-pay", text="id: harvest-pay\n"))
    client = web_app.test_client()
    sign_in(client, "staff")
    page = client.get("/staff?lang=en").get_data(as_text=True)
    assert 'data-count="urgent">1<' in page
    assert "harvest-pay" in page
    assert "pasaporte" not in page and "4321" not in page


def test_dashboard_in_spanish(web_app):
    client = web_app.test_client()
    sign_in(client, "admin")
    page = client.get("/staff?lang=es").get_data(as_text=True)
    assert "Lo que necesita atención" in page
    assert 'data-count="urgent">0<' in page

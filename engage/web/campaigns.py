"""Campaign pages: the list, a new campaign with its preview, a campaign's live progress, and
pause, resume and cancel. The invitations are written on `bulk`, never inside the request."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import (
    DateTimeLocalField,
    FieldList,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import Optional

from engage import db
from engage.channels import CHANNELS, VOICE
from engage.db import utcnow
from engage.jobs import campaigns as jobs
from engage.models import Campaign, User
from engage.services.campaigns import (
    LIVE,
    MAX_REMINDERS,
    CampaignError,
    Reminders,
    preview_campaign,
    profile_keys,
    progress,
    sent_counts,
)
from engage.services.campaigns import list_campaigns as all_campaigns
from engage.services.contact_filters import ContactFilter
from engage.services.conversations import settings_from
from engage.services.quiet_hours import STATE_TIMEZONES
from engage.services.surveys import DatabaseCatalog
from engage.states import CampaignState, RemindWhom
from engage.survey.definition import Survey
from engage.survey.keywords import language_name
from engage.web.decorators import STAFF, role_required
from engage.web.i18n import gettext as _
from engage.web.i18n import page_language

log = logging.getLogger(__name__)

bp = Blueprint("campaigns", __name__, url_prefix="/staff/campaigns")

# The zones a start time may be given in: those of the states farmworkers are surveyed in.
TIME_ZONES = sorted({*STATE_TIMEZONES.values(), "UTC"})
DEFAULT_TIME_ZONE = "America/New_York"
# Profile attribute filters the form offers.
ATTRIBUTE_ROWS = 2


class CampaignForm(FlaskForm):
    """A new campaign: what the page posts to preview it, and again to start it."""

    survey = SelectField(validate_choice=False)
    attribute = FieldList(SelectField(validate_choice=False), min_entries=ATTRIBUTE_ROWS)
    value = FieldList(StringField(), min_entries=ATTRIBUTE_ROWS)
    language = SelectField(validate_choice=False)
    has_channel = SelectField(validate_choice=False)
    channel = RadioField(validate_choice=False, default="sms")
    start = RadioField(validate_choice=False, default="now")
    start_at = DateTimeLocalField(format="%Y-%m-%dT%H:%M", validators=[Optional()])
    time_zone = SelectField(validate_choice=False, default=DEFAULT_TIME_ZONE)
    reminders = IntegerField(default=0, validators=[Optional()])
    remind_after = IntegerField(default=48, validators=[Optional()])
    remind = RadioField(validate_choice=False, default=RemindWhom.NOT_STARTED)
    # The choices the preview was made for: a start with other choices shows a new preview.
    previewed = HiddenField()


@dataclass(frozen=True)
class Choices:
    """A campaign form read and checked: what to preview and start."""

    survey_id: str
    where: ContactFilter
    channel: str
    start_at: datetime | None
    reminders: Reminders

    def fingerprint(self) -> str:
        data = {
            "survey": self.survey_id,
            "where": self.where.stored(),
            "channel": self.channel,
            "start_at": self.start_at.isoformat() if self.start_at else None,
            "reminders": [self.reminders.count, self.reminders.after_hours, self.reminders.whom],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def _read(form: CampaignForm, surveys: dict[str, Survey]) -> tuple[Choices | None, dict[str, str]]:
    """The form's choices, or the problems with them by field (in the page's language)."""
    problems: dict[str, str] = {}
    survey_id = form.survey.data or ""
    if survey_id not in surveys:
        problems["survey"] = _("Choose a published survey.")
    profile: dict[str, str] = {}
    for index, (key, value) in enumerate(zip(form.attribute.data, form.value.data, strict=True)):
        key, value = (key or "").strip(), (value or "").strip()
        if key and not value:
            problems[f"value-{index}"] = _("Give the value the attribute must have.")
        elif value and not key:
            problems[f"attribute-{index}"] = _("Choose the attribute this value is for.")
        elif key:
            profile[key] = value
    channel = form.channel.data or "sms"
    if channel not in CHANNELS and channel != VOICE.name:
        problems["channel"] = _("Choose SMS, WhatsApp or a phone call.")
    has_channel = form.has_channel.data or None
    if has_channel is not None and has_channel not in CHANNELS:
        problems["has_channel"] = _("Choose SMS or WhatsApp.")
    start_at = None
    if form.start.data == "at":
        start_at = _start_time(form, problems)
    count = form.reminders.data or 0
    after = form.remind_after.data
    if not 0 <= count <= MAX_REMINDERS:
        problems["reminders"] = _("From 0 to %(max)s reminders.", max=MAX_REMINDERS)
    if count and (after is None or after < 1):
        problems["remind_after"] = _(
            "Give the hours before a reminder: a whole number, at least 1."
        )
    whom = form.remind.data or RemindWhom.NOT_STARTED
    if whom not in tuple(RemindWhom):
        problems["remind"] = _("Choose who is reminded.")
    if channel == VOICE.name and count:
        problems["reminders"] = _("A campaign by phone has no reminders: set 0.")
    if problems:
        return None, problems
    reminders = Reminders(count=count, after_hours=after if count else None, whom=whom)
    where = ContactFilter(profile=profile, language=form.language.data or None, channel=has_channel)
    return Choices(survey_id, where, channel, start_at, reminders), {}


def _start_time(form: CampaignForm, problems: dict[str, str]) -> datetime | None:
    local = form.start_at.data
    if local is None:
        problems["start_at"] = _("Give the day and time to start, or choose to start now.")
        return None
    try:
        zone = ZoneInfo(form.time_zone.data or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        problems["time_zone"] = _("Choose a time zone from the list.")
        return None
    moment = local.replace(tzinfo=zone)
    if moment <= utcnow():
        problems["start_at"] = _("This time has passed: choose a later one, or start now.")
        return None
    return moment


def _surveys() -> dict[str, Survey]:
    return {s.id: s for s in DatabaseCatalog(db.session()).active()}


def _title(survey: Survey) -> str:
    language = page_language()
    return survey.title.get(language) or survey.title.get(survey.default_language) or survey.id


def _set_choices(form: CampaignForm, surveys: dict[str, Survey]) -> None:
    """What each field of the form offers."""
    form.survey.choices = [(s.id, f"{_title(s)} ({s.id})") for s in surveys.values()]
    keys = profile_keys(db.session())
    for entry in form.attribute:
        entry.choices = [("", _("any attribute"))] + [(k, k) for k in keys]
    languages = sorted({lang for s in surveys.values() for lang in s.languages})
    form.language.choices = [("", _("any language"))] + [(lang, lang) for lang in languages]
    form.has_channel.choices = [("", _("any")), ("sms", "SMS"), ("whatsapp", "WhatsApp")]
    form.channel.choices = [("sms", "SMS"), ("whatsapp", "WhatsApp"), (VOICE.name, _("Phone call"))]
    form.start.choices = [("now", _("Now")), ("at", _("At a time"))]
    form.time_zone.choices = [(zone, zone) for zone in TIME_ZONES]
    form.remind.choices = [
        (RemindWhom.NOT_STARTED, _("who have not answered the invitation")),
        (RemindWhom.NOT_COMPLETED, _("who have not finished the survey")),
    ]


@bp.get("")
@role_required(*STAFF)
def index() -> str:
    session = db.session()
    surveys = _surveys()
    campaigns = all_campaigns(session)
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        sent=sent_counts(session, [c.id for c in campaigns]),
        titles={survey_id: _title(s) for survey_id, s in surveys.items()},
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required(*STAFF)
def new() -> Response | str | tuple[str, int]:
    surveys = _surveys()
    form = CampaignForm()
    if request.method == "GET" and request.args.get("survey") in surveys:
        form.survey.data = request.args["survey"]
    _set_choices(form, surveys)
    if request.method == "GET":
        return render_template("campaigns/new.html", form=form, problems={}, preview=None)
    if not form.validate_on_submit():
        # A field that is not what it says (a number that is no number, a bad time).
        problems = {name: _("This value is not valid.") for name in form.errors}
        problems.pop("csrf_token", None)
        if "csrf_token" in form.errors:
            abort(400)
        return render_template(
            "campaigns/new.html", form=form, problems=problems, preview=None
        ), 400
    choices, problems = _read(form, surveys)
    if choices is None:
        return render_template(
            "campaigns/new.html", form=form, problems=problems, preview=None
        ), 400
    wants_start = request.form.get("action") == "start"
    if wants_start and form.previewed.data == choices.fingerprint():
        try:
            campaign_id = jobs.create_for_page(
                choices.survey_id,
                choices.where,
                choices.channel,
                choices.start_at,
                reminders=choices.reminders,
                user_id=current_user.id,
                actor=current_user.email,
            )
        except CampaignError as exc:
            return _refused(form, surveys, str(exc))
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    try:
        preview = preview_campaign(
            db.session(),
            settings_from(current_app.config, current_app.extensions["engage.vault"]),
            choices.survey_id,
            where=choices.where,
            channel=choices.channel,
            reminders=choices.reminders.count,
        )
    except CampaignError as exc:
        return _refused(form, surveys, str(exc))
    form.previewed.data = choices.fingerprint()
    return render_template(
        "campaigns/new.html",
        form=form,
        problems={},
        preview=preview,
        choices=choices,
        # A start asked for with other choices than the preview's: the new numbers first.
        changed=wants_start,
        title=_title(preview.survey),
    )


def _refused(form: CampaignForm, surveys: dict[str, Survey], reason: str) -> tuple[str, int]:
    log.info("campaign refused: %s", reason)
    problems = {"form": _("The campaign cannot start: %(reason)s", reason=reason)}
    return render_template("campaigns/new.html", form=form, problems=problems, preview=None), 400


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session().get(Campaign, campaign_id)
    if campaign is None:
        abort(404)
    return campaign


@bp.get("/<int:campaign_id>")
@role_required(*STAFF)
def show(campaign_id: int) -> str:
    session = db.session()
    campaign = _campaign(campaign_id)
    survey = DatabaseCatalog(session).get(campaign.survey_id, campaign.version)
    creator = session.get(User, campaign.created_by) if campaign.created_by else None
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        title=_title(survey),
        counts=progress(session, campaign),
        creator=creator,
        live=LIVE,
        ended=(CampaignState.CANCELLED, CampaignState.FINISHED),
    )


@bp.get("/<int:campaign_id>/progress.json")
@role_required(*STAFF, is_download=True)
def progress_json(campaign_id: int) -> Response:
    return jsonify(progress(db.session(), _campaign(campaign_id)))


def _control(campaign_id: int, act: Any) -> Response:
    _campaign(campaign_id)  # 404 for an unknown one
    try:
        act(campaign_id, actor=current_user.email, user_id=current_user.id)
    except CampaignError as exc:
        # Another person changed it first (paused it, cancelled it): the page shows its state.
        log.info("campaign %s: %s", campaign_id, exc)
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/pause")
@role_required(*STAFF)
def pause(campaign_id: int) -> Response:
    return _control(campaign_id, jobs.pause)


@bp.post("/<int:campaign_id>/resume")
@role_required(*STAFF)
def resume(campaign_id: int) -> Response:
    return _control(campaign_id, jobs.resume)


@bp.post("/<int:campaign_id>/cancel")
@role_required(*STAFF)
def cancel(campaign_id: int) -> Response:
    return _control(campaign_id, jobs.cancel)


@bp.context_processor
def _language_names() -> dict[str, Any]:
    """Languages by their own names (Español, Kreyòl ayisyen), as the workers' menu shows them."""
    return {"language_name": language_name}

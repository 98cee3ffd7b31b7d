"""The simulator: a phone-like chat that runs a published survey or a draft through the engine,
and a phone that calls it.

Every message goes the way `engage simulate` sends it (engage/simulation.py): the webhook's
service, the console sender, a simulated contact that results, campaigns and the inbox leave out.
A call takes the steps of a real one (`simulate_call`), from the same simulated contact.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask import session as cookie
from flask_login import current_user
from werkzeug.wrappers import Response

from engage import db
from engage.services.simulator import (
    CALL_ACTIONS,
    KEYPAD,
    MAX_KEYS,
    MAX_SESSION_CHARS,
    MAX_TEXT_CHARS,
    SimulatedState,
    SimulatorError,
    call_survey,
    contact_at,
    draft_survey,
    first_free_attempt,
    phone_screen,
    pressed_for,
    published_survey,
    segments_of,
    session_key,
    simulated_phone,
    simulated_state,
    simulator_surveys,
)
from engage.simulation import simulate_call, simulate_message
from engage.survey.definition import Survey
from engage.survey.engine import CONSENT, INVITATION
from engage.survey.keywords import language_name
from engage.survey.voice import Screen
from engage.web.decorators import STAFF, role_required
from engage.web.i18n import gettext as _

bp = Blueprint("simulator", __name__)

SIMULATOR_CHANNELS = ("sms", "whatsapp")
# The sign-in cookie remembers which number each of the person's recent sessions plays.
COOKIE_KEY = "simulator"
REMEMBERED_SESSIONS = 30
# …and the call each of the latest sessions is in: [key, token, what its screen waits for].
CALLS_COOKIE_KEY = "simulator_calls"
REMEMBERED_CALLS = 10


@bp.get("/staff/simulator")
@role_required(*STAFF)
def page() -> str:
    org_name = current_app.config["ENGAGE_ORG_NAME"]
    surveys = simulator_surveys(db.session(), org_name=org_name)
    chosen = request.args.get("survey", "")
    is_draft = request.args.get("draft") in ("1", "true")
    problem = None
    if chosen and not any(s.id == chosen and s.is_draft == is_draft for s in surveys):
        try:
            if is_draft:
                draft_survey(db.session(), chosen, org_name=org_name)
            else:
                published_survey(db.session(), chosen)
        except SimulatorError as error:
            problem = _error_message(error)
        chosen, is_draft = "", False
    return render_template(
        "simulator/page.html",
        surveys=surveys,
        chosen=chosen,
        chosen_is_draft=is_draft,
        problem=problem,
        language_name=language_name,
        max_text_chars=MAX_TEXT_CHARS,
        keypad=KEYPAD,
        max_keys=MAX_KEYS,
    )


# Inside JSON strings only: what could open a tag or an entity if the answer were ever read as
# HTML is written as a \u escape (texts come from workers and from survey drafts).
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _json(status: int, **payload: object) -> tuple[Response, int]:
    body = current_app.json.dumps(payload).translate(_HTML_SAFE)
    return current_app.response_class(body, mimetype="application/json"), status


def _bad_request(message: str) -> tuple[Response, int]:
    return _json(400, error="bad_request", message=message)


class _BadRequest(ValueError):
    """A request the simulator cannot read; its message says which field."""


def _request_json() -> dict[str, object]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise _BadRequest(_("Send a JSON object."))
    return data


def _chosen(data: dict[str, object]) -> tuple[str, str | None, bool]:
    """The session, survey and draft flag every simulator request names."""
    session_id = data.get("session")
    survey_id = data.get("survey") or None
    is_draft = data.get("draft", False)
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_CHARS:
        raise _BadRequest(
            _("session: text of 1 to %(max)s characters.", max=str(MAX_SESSION_CHARS))
        )
    if survey_id is not None and not isinstance(survey_id, str):
        raise _BadRequest(_("survey: a survey id."))
    if not isinstance(is_draft, bool) or (is_draft and survey_id is None):
        raise _BadRequest(_("draft: true or false, with a survey."))
    return session_id, survey_id, is_draft


@bp.post("/staff/simulator/messages")
@role_required(*STAFF, is_download=True)
def messages() -> tuple[Response, int]:
    try:
        data = _request_json()
        session_id, survey_id, is_draft = _chosen(data)
    except _BadRequest as error:
        return _bad_request(str(error))
    text = data.get("text")
    channel = data.get("channel") or "sms"
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        return _bad_request(_("text: 1 to %(max)s characters.", max=str(MAX_TEXT_CHARS)))
    if channel not in SIMULATOR_CHANNELS:
        return _bad_request(_("channel: sms or whatsapp."))
    try:
        draft = _survey_to_run(survey_id, is_draft)
        phone = _phone_of(session_id)
        replies = simulate_message(current_app, phone, text, channel=channel, draft=draft)
    except SimulatorError as error:
        return _refused(error)
    except LookupError as error:
        if isinstance(error, KeyError | IndexError):
            raise
        return _version_changed()
    return _json(
        200, replies=replies, segments=segments_of(replies), state=_state_after_step(phone)
    )


@bp.post("/staff/simulator/call")
@role_required(*STAFF, is_download=True)
def call() -> tuple[Response, int]:
    """One action of the simulator's phone: what the caller hears next, and what it waits for."""
    try:
        data = _request_json()
        session_id, survey_id, is_draft = _chosen(data)
    except _BadRequest as error:
        return _bad_request(str(error))
    action = data.get("action")
    digits = data.get("digits") or ""
    if action not in CALL_ACTIONS:
        return _bad_request(_("action: one of %(actions)s.", actions=", ".join(CALL_ACTIONS)))
    if not isinstance(digits, str) or len(digits) > MAX_KEYS or not set(digits) <= set(KEYPAD):
        return _bad_request(_("digits: up to %(max)s keys of the keypad.", max=str(MAX_KEYS)))
    key = session_key(session_id)
    token, waiting = _call_of(key)
    try:
        org_name = current_app.config["ENGAGE_ORG_NAME"]
        draft = call_survey(db.session(), survey_id, is_draft=is_draft, org_name=org_name)
        phone = _phone_of(session_id)
        if action == "hang_up":
            # Nothing more is heard; the conversation stays open, as for a worker who hangs up.
            token, screen = None, Screen(())
        else:
            pressed = None
            if action == "start":
                token = None
            elif token is None:
                raise SimulatorError("no_call")
            else:
                pressed = pressed_for(action, digits, waiting)
            step = simulate_call(current_app, phone, token=token, pressed=pressed, draft=draft)
            if step is None:
                _remember_call(key, None)
                raise SimulatorError("no_call")
            token, screen = step
    except SimulatorError as error:
        return _refused(error)
    except LookupError as error:
        if isinstance(error, KeyError | IndexError):
            raise
        return _version_changed()
    shown = phone_screen(screen, lambda name: url_for("voice.media", name=name))
    waits = str(shown["waits_for"])
    _remember_call(key, (token, waits) if token is not None and waits != "end" else None)
    return _json(200, **shown, state=_state_after_step(phone))


def _refused(error: SimulatorError) -> tuple[Response, int]:
    status = 404 if error.code in ("not_found", "no_draft") else 409
    return _json(status, error=error.code, message=_error_message(error))


def _version_changed() -> tuple[Response, int]:
    # The conversation began on a version the engine cannot find: a draft changed since.
    message = _("This conversation began on another version of the draft: reset to try it.")
    return _json(409, error="version_changed", message=message)


def _state_after_step(phone: str) -> dict[str, object] | None:
    # A session of its own: the request's began before the step, and may not see what it wrote.
    with db.transaction() as session:
        state = simulated_state(session, current_app.extensions["engage.vault"], phone)
    return _state_json(state) if state is not None else None


def _call_of(key: str) -> tuple[str | None, str]:
    """The call a session is in, remembered in the sign-in cookie: its token and what it waits
    for (no token when there is none)."""
    for entry in cookie.get(CALLS_COOKIE_KEY) or []:
        if isinstance(entry, list) and len(entry) == 3 and entry[0] == key:
            token, waiting = entry[1], entry[2]
            if isinstance(token, str) and isinstance(waiting, str):
                return token, waiting
    return None, "end"


def _remember_call(key: str, call: tuple[str, str] | None) -> None:
    """Keep a session's call (its token and what it waits for), or forget it (None)."""
    kept = [
        entry
        for entry in cookie.get(CALLS_COOKIE_KEY) or []
        if isinstance(entry, list) and len(entry) == 3 and entry[0] != key
    ]
    if call is not None:
        kept.append([key, *call])
    cookie[CALLS_COOKIE_KEY] = kept[-REMEMBERED_CALLS:]


def _state_json(state: SimulatedState) -> dict[str, object]:
    """The simulated worker's state, with its words in the page's language."""
    waiting_for = state.waiting_for
    if waiting_for == CONSENT:
        waiting = _("the consent (1 yes, 2 no)")
    elif waiting_for == INVITATION:
        waiting = _("“1” to start the survey")
    elif waiting_for:
        waiting = _("an answer to question %(question)s", question=waiting_for)
    else:
        waiting = _("nothing: no survey is open")
    return {
        "language": language_name(state.language) if state.language else _("not chosen yet"),
        "consent": _("given") if state.has_consented else _("not given"),
        "opted_out": _("yes: nothing more is sent") if state.is_opted_out else _("no"),
        "survey": state.survey_id or "—",
        "waiting_for": waiting,
        "misses": str(state.misses),
    }


def _survey_to_run(survey_id: str | None, is_draft: bool) -> Survey | None:
    """The draft to run, if one was asked for; a published survey must be current."""
    if survey_id is None:
        return None
    org_name = current_app.config["ENGAGE_ORG_NAME"]
    if is_draft:
        return draft_survey(db.session(), survey_id, org_name=org_name)
    published_survey(db.session(), survey_id)
    return None


def _phone_of(session_id: str) -> str:
    """The simulated number a session plays: the person's own, never a real contact's."""
    vault = current_app.extensions["engage.vault"]
    secret = current_app.secret_key
    assert secret is not None  # create_app always sets it
    user_id = int(current_user.id)
    key = session_key(session_id)
    # [key, attempt] pairs, oldest first (a list: the cookie's JSON keeps a list's order).
    remembered = [
        pair for pair in cookie.get(COOKIE_KEY) or [] if isinstance(pair, list) and len(pair) == 2
    ]
    attempt = next((a for k, a in remembered if k == key and isinstance(a, int)), None)
    if attempt is None:
        attempt = first_free_attempt(db.session(), vault, secret, user_id, key)
        remembered = [*remembered, [key, attempt]][-REMEMBERED_SESSIONS:]
        cookie[COOKIE_KEY] = remembered
    phone = simulated_phone(secret, user_id, key, attempt)
    if contact_at(db.session(), vault, phone) is False:
        raise SimulatorError("not_simulated")
    return phone


def _error_message(error: SimulatorError) -> str:
    survey_id = str(error.params.get("survey_id", ""))
    if error.code == "not_found":
        return _("No survey %(survey)s is published.", survey=survey_id)
    if error.code == "no_draft":
        return _("Survey %(survey)s has no draft.", survey=survey_id)
    if error.code == "draft_problems":
        return _(
            "The draft of %(survey)s has problems: fix them in the editor, then try it here.",
            survey=survey_id,
        )
    if error.code == "no_voice":
        return _("This survey is not offered by phone (voice:).")
    if error.code == "no_call":
        return _("No call is under way: press Call.")
    if error.code == "wrong_action":
        return _("The call is not waiting for that: the screen says what it waits for.")
    return _("No simulated number is free for this conversation: reset to start another.")

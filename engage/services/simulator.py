"""The staff simulator: which surveys it can run, and the simulated contact of each session.

A page's session is played by one simulated contact whose number is derived from a keyed hash
of the signed-in person and the session, in the range the North American numbering plan keeps
for fiction (555-0100 to 555-0199, in any area code): no real worker can be reached through it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from engage.models import Contact, Conversation, SurveyDraft
from engage.privacy import Vault
from engage.services.surveys import DatabaseCatalog
from engage.services.voice import Pressed
from engage.services.web_surveys import check_draft_text
from engage.survey.definition import Survey
from engage.survey.segments import count_segments
from engage.survey.voice import SKIP_KEY, Screen

MAX_TEXT_CHARS = 1600
MAX_SESSION_CHARS = 100
# A session's first message looks for a number no contact has yet; this many tries at most.
MAX_ATTEMPTS = 50


class SimulatorError(ValueError):
    """What the simulator cannot do; `code` names it for the page's message."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class DraftCatalog:
    """The engine's surveys when a draft is tried: only that draft starts, by its keywords.

    Other versions (a conversation begun earlier) are read from the published ones.
    """

    def __init__(self, session: Session | Connection, draft: Survey) -> None:
        self.draft = draft
        self.published = DatabaseCatalog(session)

    def active(self) -> list[Survey]:
        return [self.draft]

    def get(self, survey_id: str, version: str) -> Survey:
        if survey_id == self.draft.id and version == self.draft.version:
            return self.draft
        return self.published.get(survey_id, version)


# --- simulated contacts ------------------------------------------------------------------------


def session_key(session_id: str) -> str:
    """A short, fixed-size name for a page's session (what the sign-in cookie remembers)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:16]


def simulated_phone(secret: str | bytes, user_id: int, key: str, attempt: int = 0) -> str:
    """The fictional number of a person's session: +1 NPA 555-01XX, from a keyed hash."""
    secret_bytes = secret.encode() if isinstance(secret, str) else secret
    message = f"engage.simulator\0{user_id}\0{key}\0{attempt}".encode()
    digest = hmac.new(secret_bytes, message, hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    area = 200 + number % 800  # NANP area codes start with 2 to 9
    line = (number // 800) % 100
    return f"+1{area}55501{line:02d}"


def contact_at(session: Session, vault: Vault, phone: str) -> bool | None:
    """None when no contact has this number, else whether that contact is simulated."""
    found = session.execute(
        select(Contact.is_simulated).where(Contact.phone_hash == vault.phone_hash(phone))
    ).first()
    return None if found is None else bool(found.is_simulated)


@dataclass(frozen=True)
class SimulatedState:
    """What the engine knows of a simulated worker after a message, for the page to show: the
    language, consent and opt-out, and the open conversation's survey, what it waits for (a
    question id, the consent, or the invitation's "1") and how many answers it could not read."""

    language: str | None
    has_consented: bool
    is_opted_out: bool
    survey_id: str | None = None
    waiting_for: str | None = None
    misses: int = 0


def simulated_state(session: Session, vault: Vault, phone: str) -> SimulatedState | None:
    """The simulated worker at this number, as the engine left it; None before its first
    message (or for a number that is not a simulated contact's)."""
    contact = session.execute(
        select(Contact.id, Contact.language, Contact.has_consented, Contact.is_opted_out).where(
            Contact.phone_hash == vault.phone_hash(phone), Contact.is_simulated.is_(True)
        )
    ).first()
    if contact is None:
        return None
    active = session.execute(
        select(Conversation.survey_id, Conversation.pending, Conversation.misses)
        .where(Conversation.contact_id == contact.id, Conversation.status == "active")
        .order_by(Conversation.id.desc())
        .limit(1)
    ).first()
    state = SimulatedState(
        language=contact.language,
        has_consented=bool(contact.has_consented),
        is_opted_out=bool(contact.is_opted_out),
    )
    if active is None:
        return state
    misses = (active.misses or {}).get("texts", [])
    return replace(
        state,
        survey_id=active.survey_id,
        waiting_for=active.pending,
        misses=len(misses) if isinstance(misses, list) else 0,
    )


def first_free_attempt(
    session: Session, vault: Vault, secret: str | bytes, user_id: int, key: str
) -> int:
    """For a session's first message: the first of its numbers that no contact has yet, so a
    new session never meets anyone else's simulated contact (nor an old one of its own)."""
    for attempt in range(MAX_ATTEMPTS):
        phone = simulated_phone(secret, user_id, key, attempt)
        if contact_at(session, vault, phone) is None:
            return attempt
    raise SimulatorError("no_number")


# --- surveys the page offers -------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorSurvey:
    """A survey the simulator can run: published (its current version) or a draft that passes
    the check."""

    id: str
    is_draft: bool
    title: dict[str, str]
    languages: tuple[str, ...]
    keywords: dict[str, tuple[str, ...]]
    has_voice: bool = False  # offered by phone (`voice:`)

    @classmethod
    def of(cls, survey: Survey, *, is_draft: bool) -> SimulatorSurvey:
        return cls(
            id=survey.id,
            is_draft=is_draft,
            title=dict(survey.title),
            languages=tuple(survey.languages),
            keywords={lang: tuple(survey.keywords.get(lang, ())) for lang in survey.languages},
            has_voice=bool(survey.voice),
        )

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title.get(self.languages[0]) or self.id


def published_surveys(session: Session) -> list[Survey]:
    """The surveys whose keywords start a conversation now, by id."""
    return DatabaseCatalog(session).active()


def runnable_drafts(session: Session, *, org_name: str) -> list[Survey]:
    """Drafts that pass the check, by id: the ones the simulator can run."""
    drafts = session.scalars(select(SurveyDraft).order_by(SurveyDraft.survey_id)).all()
    found = []
    for draft in drafts:
        survey = check_draft_text(session, draft.survey_id, draft.text, org_name=org_name).survey
        if survey is not None:
            found.append(survey)
    return found


def simulator_surveys(session: Session, *, org_name: str) -> list[SimulatorSurvey]:
    """What the page lets staff choose: published surveys, then drafts that pass the check."""
    return [SimulatorSurvey.of(s, is_draft=False) for s in published_surveys(session)] + [
        SimulatorSurvey.of(s, is_draft=True) for s in runnable_drafts(session, org_name=org_name)
    ]


def published_survey(session: Session, survey_id: str) -> Survey:
    """A survey's current version (SimulatorError `not_found` when none is published)."""
    for survey in published_surveys(session):
        if survey.id == survey_id:
            return survey
    raise SimulatorError("not_found", survey_id=survey_id)


def draft_survey(session: Session, survey_id: str, *, org_name: str) -> Survey:
    """A draft as the engine runs it; SimulatorError `no_draft`, or `draft_problems` when it
    does not pass the check (the editor shows why)."""
    draft = session.get(SurveyDraft, survey_id)
    if draft is None:
        raise SimulatorError("no_draft", survey_id=survey_id)
    report = check_draft_text(session, survey_id, draft.text, org_name=org_name)
    if report.survey is None:
        problems = sum(not p.is_warning for p in report.problems)
        raise SimulatorError("draft_problems", survey_id=survey_id, problems=problems)
    return report.survey


def segments_of(texts: list[str]) -> list[dict[str, Any]]:
    """What each text costs as one SMS: its encoding and number of segments."""
    counted = [count_segments(text) for text in texts]
    return [{"encoding": c.encoding, "segments": c.segments} for c in counted]


# --- the phone ---------------------------------------------------------------------------------

# What the simulator's phone can do: call, press keys, let the timeout pass, leave a voice note,
# stay silent after the tone, come back from the help line, hang up.
CALL_ACTIONS = ("start", "keys", "timeout", "voice_note", "silence", "after_dial", "hang_up")
KEYPAD = "123456789*0#"
# Keys ended by #, as Twilio gathers them: the # itself is not among them.
MAX_KEYS = 20
SIMULATED_NOTE_SECONDS = 8


def call_survey(
    session: Session, survey_id: str | None, *, is_draft: bool, org_name: str
) -> Survey | None:
    """The survey a simulated call runs, alone: the chosen draft or published survey (None:
    every published one, as for a worker, with the survey menu when several are offered by
    phone); SimulatorError `no_voice` when the chosen survey is not offered by phone."""
    if survey_id is None:
        return None
    if is_draft:
        survey = draft_survey(session, survey_id, org_name=org_name)
    else:
        survey = published_survey(session, survey_id)
    if not survey.voice:
        raise SimulatorError("no_voice", survey_id=survey_id)
    return survey


def waits_for(screen: Screen) -> str:
    """What a screen of a call waits for, as the simulator's phone names it."""
    if screen.keys is not None:
        return "key" if screen.keys.one else "keys"
    if screen.record:
        return "voice_note"
    if screen.dial is not None:
        return "help_line"
    return "end"


def phone_screen(screen: Screen, media_url: Callable[[str], str]) -> dict[str, Any]:
    """A screen as the simulator's phone shows it: the words of each prompt, with the address
    of its recording where it has one, and what the screen waits for."""
    return {
        "prompts": [
            {"text": prompt.text or "", "audio": media_url(prompt.media) if prompt.media else None}
            for prompt in screen.prompts
        ],
        "waits_for": waits_for(screen),
        "help_line": screen.dial,
    }


def simulated_recording_sid() -> str:
    """The recording of a simulated voice note: zeros, as no Twilio recording is; made unique
    (the SID is a voice note's key) and outside Twilio's SID pattern, so erasure never asks
    Twilio to delete it."""
    return f"RE{'0' * 32}-{secrets.token_hex(8)}"


def pressed_for(action: str, digits: str, waiting: str) -> Pressed:
    """What Twilio would send for an action of the phone on a screen that waits for
    `waiting`; SimulatorError `wrong_action` when that screen takes no such action."""
    if action == "keys" and waiting == "key" and len(digits) == 1 and digits in KEYPAD:
        return Pressed(digits=digits)
    if action == "keys" and waiting == "keys" and _are_gathered(digits):
        return Pressed(digits=digits, finished_on_key=SKIP_KEY)
    if action == "timeout" and waiting == "key" and not digits:
        return Pressed()
    if action == "timeout" and waiting == "keys" and _are_gathered(digits):
        # Twilio sends what was keyed before the timeout, not ended by #.
        return Pressed(digits=digits)
    if action == "voice_note" and waiting == "voice_note":
        return Pressed(
            recording_sid=simulated_recording_sid(), recording_seconds=SIMULATED_NOTE_SECONDS
        )
    if action == "silence" and waiting == "voice_note":
        return Pressed(after="record")
    if action == "after_dial" and waiting == "help_line":
        return Pressed(after="dial")
    raise SimulatorError("wrong_action", action=action)


def _are_gathered(digits: str) -> bool:
    return len(digits) <= MAX_KEYS and all(key in KEYPAD and key != SKIP_KEY for key in digits)

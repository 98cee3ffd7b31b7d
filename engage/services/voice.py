"""A phone call through the conversation engine: what the caller hears, and what their keys mean.

Each key a caller presses is read as the text it stands for ("1", "SALTAR", "AYUDA") and goes
through the same step as a text message (services/conversations.py), on the `voice` channel:
the same answers, misses, consent and results. What the step leaves (the contact, its open
conversation) decides what the caller hears next, as a `Screen` (engage/survey/voice.py) that
becomes TwiML here.

A step is claimed once: the call's row is locked, and a step already answered gets the TwiML
it got the first time (Twilio repeats a request it got no answer to), with nothing recorded
twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, func, insert, select, update
from twilio.twiml.voice_response import VoiceResponse

from engage.channels import VOICE
from engage.db import table_of, utcnow
from engage.messaging import OutboundCall
from engage.models import Call, CallStep, Campaign, Contact, Conversation, VoiceNote
from engage.privacy import Sender, Vault
from engage.services import erasure
from engage.services.conversations import (
    InboundResult,
    Settings,
    handle_inbound,
    make_engine,
)
from engage.services.media import system_audio
from engage.services.rows import call_row
from engage.states import CALL_ENDED, CallPurpose, CallStatus, CampaignState
from engage.survey import keywords as kw
from engage.survey.definition import Survey
from engage.survey.engine import CONSENT, INVITATION, ConversationState, SurveyCatalog
from engage.survey.voice import (
    HELP_KEY,
    OPT_OUT_KEY,
    REPEAT_KEY,
    SAY_VOICES,
    SKIP_KEY,
    Keys,
    Prompt,
    PromptBook,
    Screen,
    VoiceTexts,
    keys_to_text,
    question_keys,
)

log = logging.getLogger(__name__)

_calls = table_of(Call)
_campaigns = table_of(Campaign)
_steps = table_of(CallStep)
_contacts = table_of(Contact)
_conversations = table_of(Conversation)
_notes = table_of(VoiceNote)

# What a caller's keys are read as by the engine (its system keywords, in Spanish).
_SKIP = "SALTAR"
_HELP = "AYUDA"
_OPT_OUT = "ALTO"
_OPT_IN = "ALTA"
# The answer a voice note gives a text question; the recording itself stays at Twilio.
VOICE_NOTE_TEXT = "(voice note)"
# How long a caller has to press a key once a prompt has ended.
GATHER_TIMEOUT = 6
MAX_VOICE_NOTE_SECONDS = 60


@dataclass(frozen=True)
class VoiceSettings:
    """What a call needs beyond the conversation service's settings."""

    conversations: Settings
    hotline: str
    # The base URL Twilio reaches us at (ENGAGE_PUBLIC_URL, or the request's own).
    base_url: str


@dataclass(frozen=True)
class Pressed:
    """What one step request carries: the keys, and a voice note if one was left."""

    digits: str = ""
    finished_on_key: str = ""
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_seconds: int | None = None
    # After a <Dial> to the help line, or a <Record> that got nothing: the step is a return.
    after: str | None = None

    @property
    def is_skip(self) -> bool:
        return self.digits == SKIP_KEY or (not self.digits and self.finished_on_key == SKIP_KEY)


# -- the two entry points ----------------------------------------------------------------------


def answer_call(
    connection: Connection,
    settings: VoiceSettings,
    *,
    sid: str,
    caller: str,
    to: str,
    token: str | None = None,
    now: datetime | None = None,
) -> str:
    """A call comes in (or one we placed is answered): its first TwiML."""
    now = now or utcnow()
    call = _claim_call(connection, sid=sid, caller=caller, to=to, token=token, now=now)
    return _Call(connection, settings, call, caller, now).answer(0, None)


def take_step(
    connection: Connection,
    settings: VoiceSettings,
    *,
    token: str,
    step: int,
    caller: str,
    pressed: Pressed,
    now: datetime | None = None,
) -> str | None:
    """A <Gather> or <Record> action: the keys of one step, and what the caller hears next.
    None when the call is unknown."""
    now = now or utcnow()
    call = connection.execute(
        select(_calls).where(_calls.c.token == token).with_for_update()
    ).first()
    if call is None:
        return None
    return _Call(connection, settings, call, caller, now).answer(step, pressed)


def simulated_step(
    connection: Connection,
    settings: VoiceSettings,
    *,
    token: str | None,
    caller: str,
    to: str,
    pressed: Pressed | None,
    now: datetime | None = None,
) -> tuple[str, Screen] | None:
    """A call from the staff simulator's phone: no Twilio, the same steps. Without a token a
    new simulated call begins. Returns the call's token and what the caller hears now (None
    for an unknown token)."""
    now = now or utcnow()
    if token is None:
        token = new_token()
        _insert_call_in(connection, token=token, sid=None, to=to, now=now, is_simulated=True)
        pressed = None
    call = connection.execute(
        select(_calls)
        .where(_calls.c.token == token, _calls.c.is_simulated.is_(True))
        .with_for_update()
    ).first()
    if call is None:
        return None
    step = connection.scalar(select(func.count()).where(_steps.c.call_id == call.id)) or 0
    _twiml, screen = _Call(connection, settings, call, caller, now).answer_new(step, pressed)
    return token, screen


def _insert_call_in(
    connection: Connection,
    *,
    token: str,
    sid: str | None,
    to: str,
    now: datetime,
    is_simulated: bool = False,
) -> None:
    """The row of a call the worker makes, answered now."""
    row = call_row(
        purpose=CallPurpose.INBOUND,
        our_address=to,
        status=CallStatus.IN_PROGRESS,
        created_at=now,
        token=token,
        sid=sid,
        is_simulated=is_simulated,
    )
    connection.execute(insert(_calls).values(row))


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _claim_call(
    connection: Connection, *, sid: str, caller: str, to: str, token: str | None, now: datetime
) -> Any:
    """The call's row, locked: found by its token (a call we placed) or SID, else created."""
    where = _calls.c.token == token if token else _calls.c.sid == sid
    call = connection.execute(select(_calls).where(where).with_for_update()).first()
    if call is None:
        _insert_call_in(connection, token=new_token(), sid=sid, to=to, now=now)
        call = connection.execute(
            select(_calls).where(_calls.c.sid == sid).with_for_update()
        ).first()
    elif call.sid is None:
        connection.execute(update(_calls).where(_calls.c.id == call.id).values(sid=sid))
    return call


# -- one step -----------------------------------------------------------------------------------


@dataclass
class _Caller:
    """The contact behind a call, as the last step left it."""

    contact_id: int | None = None
    language: str | None = None
    is_opted_out: bool = False
    conversation: ConversationState | None = None


class _Call:
    def __init__(
        self, connection: Connection, settings: VoiceSettings, call: Any, caller: str, now: datetime
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.call = call
        self.caller = caller
        self.now = now
        self.awaiting: str | None = call.awaiting
        self.language: str | None = call.language
        self.contact_id: int | None = call.contact_id
        self.engine = make_engine(connection, settings.conversations)
        self.catalog: SurveyCatalog = self.engine.surveys
        audio = system_audio(str(settings.conversations.locales_dir))
        self.system_audio = audio.media

    # -- the step, claimed once

    def answer(self, step: int, pressed: Pressed | None) -> str:
        stored = self.connection.execute(
            select(_steps.c.twiml).where(_steps.c.call_id == self.call.id, _steps.c.step == step)
        ).scalar()
        if stored is not None:
            log.info("call-%s: step %s repeated", self.call.id, step)
            return str(stored)
        return self.answer_new(step, pressed)[0]

    def answer_new(self, step: int, pressed: Pressed | None) -> tuple[str, Screen]:
        """A step not answered before: what the caller hears, as TwiML and as a Screen."""
        screen = self.opening() if pressed is None else self.after_keys(pressed)
        twiml = self.twiml(screen, step + 1)
        self.connection.execute(
            insert(_steps).values(call_id=self.call.id, step=step, twiml=twiml, created_at=self.now)
        )
        self.connection.execute(
            update(_calls)
            .where(_calls.c.id == self.call.id)
            .values(awaiting=self.awaiting, contact_id=self.contact_id, language=self.language)
        )
        return twiml, screen

    # -- what the caller hears

    def opening(self) -> Screen:
        caller = self.read_caller()
        if caller.is_opted_out:
            self.awaiting = "opted_out"
            book = self.book(caller.language)
            return Screen((book.system("opted_out_call"),), keys=Keys(one=True))
        if caller.conversation is not None:
            conv = caller.conversation
            book = self.book(conv.language)
            if self.call.purpose == CallPurpose.CAMPAIGN and conv.pending in (CONSENT, INVITATION):
                # We called them: not "welcome back" but who calls (the consent opens with it).
                first = [] if conv.pending == CONSENT else [book.system("org_intro")]
                return self.pending(conv, first)
            return self.pending(conv, [book.system("resume")])
        return self.choose(caller.language)

    def after_keys(self, pressed: Pressed) -> Screen:
        awaiting, self.awaiting = self.awaiting, None
        digits = pressed.digits
        if pressed.after == "dial":
            return self.current()
        if awaiting == "language":
            code = self.language_for(digits)
            if code is None:
                missed = "not_understood" if digits else "no_input"
                return self.language_menu(first=self.book(self.language).system(missed))
            return self.choose(code)
        if awaiting == "survey_menu":
            return self.pick_survey(digits)
        if awaiting == "opted_out":
            if digits != "1":
                return Screen(())
            self.step(_OPT_IN)
            return self.choose(self.read_caller().language)
        if awaiting == "goodbye":
            if digits != OPT_OUT_KEY:
                return Screen(())
            return self.after_step(self.step(_OPT_OUT), digits)
        if awaiting == "help":
            if digits == HELP_KEY:
                book = self.book(self.read_caller().language)
                return Screen((book.system("connecting"),), dial=self.settings.hotline)
            return self.current()
        caller = self.read_caller()
        conv = caller.conversation
        if conv is None:
            return self.choose(caller.language)
        if digits == REPEAT_KEY:
            return self.current()
        if digits == HELP_KEY:
            return self.after_step(self.step(_HELP), digits)
        if pressed.is_skip or pressed.after == "record":
            return self.after_step(self.step(_SKIP), digits)
        if conv.pending == CONSENT and digits == OPT_OUT_KEY:
            return self.after_step(self.step(_OPT_OUT), digits)
        if pressed.recording_sid:
            result = self.step(VOICE_NOTE_TEXT, media_url=pressed.recording_url)
            self.keep_voice_note(result, conv, pressed)
            return self.after_step(result, digits, voice_note=True)
        question = self.question_of(conv)
        return self.after_step(self.step(keys_to_text(question, digits)), digits)

    def after_step(self, result: InboundResult, digits: str, *, voice_note: bool = False) -> Screen:
        """What the caller hears once the engine has read their keys."""
        outcome, contact = result.outcome, result.contact
        assert outcome is not None and contact is not None
        kind = outcome.kind
        language = self.language_of(outcome.conversation, contact.language)
        book = self.book(language)
        if kind == "opt_out":
            return Screen((book.system("opted_out"),))
        if kind == "help":
            self.awaiting = "help"
            return Screen((book.system("help"),), keys=Keys(one=True))
        conv = outcome.conversation
        if conv is not None and conv.is_open:
            first: list[Prompt] = []
            if kind == "miss" or (kind == "consent" and conv.pending == CONSENT):
                first.append(book.system("not_understood" if digits else "no_input"))
            if voice_note:
                first.append(book.system("voice_note_saved"))
            if kind in ("consent", "keyword", "language_pick") and conv.pending not in (
                CONSENT,
                INVITATION,
            ):
                survey = self.catalog.get(conv.survey_id, conv.version)
                intro = book.survey_part(survey, "intro")
                first += [intro, book.system("keys")] if intro else [book.system("keys")]
            return self.pending(conv, first)
        ended = {c.status for c in outcome.ended}
        if "completed" in ended:
            survey = self.catalog.get(outcome.ended[-1].survey_id, outcome.ended[-1].version)
            closing = book.survey_part(survey, "closing")
            self.awaiting = "goodbye"
            prompts = (closing, book.system("goodbye")) if closing else (book.system("goodbye"),)
            return Screen(prompts, keys=Keys(one=True))
        if "declined" in ended:
            return Screen((book.system("declined"),))
        if kind == "keyword":
            return Screen((book.system("already_answered"),))
        return Screen((book.system("no_survey"),))

    def current(self) -> Screen:
        """The prompt the caller is at, again."""
        caller = self.read_caller()
        if caller.conversation is None:
            return self.choose(caller.language)
        return self.pending(caller.conversation, [])

    def pending(self, conv: ConversationState, first: list[Prompt]) -> Screen:
        """The consent, the invitation or the question a conversation waits for."""
        book = self.book(conv.language)
        survey = self.catalog.get(conv.survey_id, conv.version)
        if conv.pending == CONSENT:
            return Screen(
                (*first, book.system("org_intro"), book.system("consent")), keys=Keys(one=True)
            )
        if conv.pending == INVITATION:
            title = book.survey_part(survey, "title")
            prompts = [title] if title else []
            return Screen((*first, *prompts, book.system("press_1")), keys=Keys(one=True))
        question = survey.question(conv.pending or "")
        keys = question_keys(question)
        return Screen((*first, *book.question(question)), keys=keys, record=keys is None)

    def choose(self, language: str | None) -> Screen:
        """No survey under way: the language menu, the survey menu, or the one survey."""
        languages = self.voice_languages()
        if not languages:
            return Screen((self.book(language).system("no_survey"),))
        if language not in languages:
            if len(languages) > 1:
                return self.language_menu()
            language = languages[0]
        self.language = language
        surveys = self.surveys_in(language)
        if len(surveys) == 1:
            return self.start(surveys[0], language)
        self.awaiting = "survey_menu"
        book = self.book(language)
        options = [p for key, s in enumerate(surveys, 1) for p in book.survey_option(s, key)]
        return Screen((book.system("survey_menu"), *options), keys=Keys(one=True))

    def language_menu(self, first: Prompt | None = None) -> Screen:
        """Each voice language offered in its own words ("Para español, oprima 1")."""
        self.awaiting = "language"
        options = [self.book(code).system("language_option") for code in self.voice_languages()]
        return Screen((*([first] if first else []), *options), keys=Keys(one=True))

    def pick_survey(self, digits: str) -> Screen:
        language = self.read_caller().language or self.voice_languages()[0]
        surveys = self.surveys_in(language)
        if digits.isdigit() and 1 <= int(digits) <= len(surveys):
            return self.start(surveys[int(digits) - 1], language)
        screen = self.choose(language)
        return Screen(
            (self.book(language).system("not_understood"), *screen.prompts), keys=screen.keys
        )

    def start(self, survey: Survey, language: str) -> Screen:
        """Start a survey as its keyword would, in the caller's language."""
        words = survey.keywords.get(language) or next(iter(survey.keywords.values()))
        return self.after_step(self.step(words[0]), "")

    # -- the engine

    def step(self, text: str, media_url: str | None = None) -> InboundResult:
        e164 = self.caller
        result = handle_inbound(
            self.connection,
            self.settings.conversations,
            sender=Sender(channel=VOICE.name, e164=e164, address=e164),
            to=self.call.our_address or "",
            body=text,
            media_url=media_url,
            now=self.now,
            is_simulated=bool(self.call.is_simulated),
        )
        self.contact_id = result.contact_id
        return result

    def keep_voice_note(
        self, result: InboundResult, conv: ConversationState, pressed: Pressed
    ) -> None:
        assert pressed.recording_sid is not None
        self.connection.execute(
            insert(_notes).values(
                sid=pressed.recording_sid,
                call_id=self.call.id,
                contact_id=result.contact_id,
                message_id=result.message_id,
                question_id=conv.pending,
                seconds=pressed.recording_seconds,
                created_at=self.now,
            )
        )

    # -- what is known

    def read_caller(self) -> _Caller:
        """The contact behind the number, and its open conversation (none once expired)."""
        vault = self.settings.conversations.vault
        contact = self.connection.execute(
            select(_contacts.c.id, _contacts.c.language, _contacts.c.is_opted_out).where(
                _contacts.c.phone_hash == vault.phone_hash(self.caller),
                _contacts.c.erased_at.is_(None),
            )
        ).first()
        if contact is None:
            return _Caller(language=self.language)
        self.contact_id = contact.id
        row = self.connection.execute(
            select(_conversations)
            .where(_conversations.c.contact_id == contact.id, _conversations.c.status == "active")
            .order_by(_conversations.c.id.desc())
            .limit(1)
        ).first()
        conv = None
        if row is not None:
            conv = ConversationState(
                survey_id=row.survey_id,
                version=row.version,
                language=row.language,
                started_at=row.started_at,
                last_activity_at=row.last_activity_at,
                pending=row.pending,
            )
            if self.engine.expire(conv, self.now):  # the next step ends it as expired
                conv = None
        return _Caller(contact.id, contact.language or self.language, contact.is_opted_out, conv)

    def question_of(self, conv: ConversationState) -> Any:
        if conv.pending in (None, CONSENT, INVITATION):
            return None
        return self.catalog.get(conv.survey_id, conv.version).question(conv.pending or "")

    def language_of(
        self, conv: ConversationState | None, contact_language: str | None
    ) -> str | None:
        return conv.language if conv is not None else contact_language or self.language

    def surveys_in(self, language: str) -> list[Survey]:
        """The active surveys offered by phone in a language."""
        return [s for s in self.catalog.active() if language in s.voice]

    def voice_languages(self) -> list[str]:
        """Every language some active survey is offered in by phone, in menu order."""
        return sorted({lang for s in self.catalog.active() for lang in s.voice}, key=kw.menu_number)

    def language_for(self, digits: str) -> str | None:
        return next(
            (code for code in self.voice_languages() if str(kw.menu_number(code)) == digits),
            None,
        )

    def book(self, language: str | None) -> PromptBook:
        language = language or "es"
        texts = self.engine.texts(language)
        return PromptBook(language, VoiceTexts(texts, kw.menu_number), self.system_audio)

    # -- TwiML

    def twiml(self, screen: Screen, next_step: int) -> str:
        return render(screen, self.url(next_step), self.media_url)

    def url(self, step: int) -> str:
        query = urlencode({"c": self.call.token, "s": step})
        return f"{self.settings.base_url}/twilio/voice/step?{query}"

    def media_url(self, name: str) -> str:
        return f"{self.settings.base_url}/media/{name}"


def hang_up() -> str:
    """TwiML that ends the call (a withheld number, an answering machine)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def reject_busy() -> str:
    """TwiML that rejects a call before it is answered: billed to nobody (docs/voice.md §3)."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


# What answering-machine detection says of a machine (`AnsweredBy`): `machine_start`,
# `machine_end_beep`, …, or a fax.
MACHINE_PREFIX, FAX = "machine", "fax"


def is_answering_machine(answered_by: str) -> bool:
    """A call we placed was answered by a machine: it hears nothing, ever (a voicemail could be
    heard by anyone with the phone)."""
    return answered_by.startswith(MACHINE_PREFIX) or answered_by == FAX


def render(screen: Screen, step_url: str, media_url: Callable[[str], str]) -> str:
    """A screen as TwiML: prompts nested in a <Gather> (a key stops them), or before a
    <Record>, a <Dial> or the hang-up."""
    response = VoiceResponse()
    target: Any = response
    if screen.keys is not None:
        one = screen.keys.one
        target = response.gather(
            input="dtmf",
            action=step_url,
            method="POST",
            timeout=GATHER_TIMEOUT,
            action_on_empty_result=True,
            num_digits=1 if one else None,
            # One key: `*` and `#` are keys then; else keys end with #.
            finish_on_key="" if one else SKIP_KEY,
        )
    for prompt in screen.prompts:
        if prompt.media:
            target.play(media_url(prompt.media))
        else:
            locale, voice = SAY_VOICES.get(prompt.language or "es", SAY_VOICES["es"])
            target.say(prompt.text or "", language=locale, voice=voice)
    if screen.record:
        response.record(
            action=step_url,
            method="POST",
            max_length=MAX_VOICE_NOTE_SECONDS,
            timeout=5,
            play_beep=True,
        )
        response.redirect(step_url + "&a=record", method="POST")
    elif screen.dial:
        response.dial(screen.dial)
        response.redirect(step_url + "&a=dial", method="POST")
    elif screen.keys is None:
        response.hangup()
    return str(response)


# -- calls we place ------------------------------------------------------------------------------

# One callback at a time per number: a second missed call meanwhile asks for nothing more.
CALLBACK_WINDOW = timedelta(minutes=10)


def request_callback(
    connection: Connection,
    vault: Vault,
    *,
    caller: str,
    to: str,
    attestation: str = "",
    now: datetime | None = None,
) -> int | None:
    """A missed call (rejected as busy, so the worker paid nothing): the call back to place,
    or None when the number opted out, a call back to it is already on its way, or the carrier
    found its caller ID forged (STIR/SHAKEN's `attestation`, Twilio's StirVerstat): that call
    back would ring someone who never called."""
    now = now or utcnow()
    if attestation.startswith("TN-Validation-Failed"):
        log.info("missed call: caller ID failed validation, not called back")
        return None
    phone_hash = vault.phone_hash(caller)
    contact = connection.execute(
        select(_contacts.c.id, _contacts.c.is_opted_out).where(_contacts.c.phone_hash == phone_hash)
    ).first()
    opted_out = (
        contact.is_opted_out
        if contact is not None
        else erasure.is_on_do_not_contact_list(connection, phone_hash)
    )
    if opted_out:
        log.info("missed call from contact-%s: opted out, not called back", contact and contact.id)
        return None
    waiting = connection.scalar(
        select(_calls.c.id).where(
            _calls.c.phone_hash == phone_hash,
            _calls.c.purpose == CallPurpose.CALLBACK,
            _calls.c.created_at > now - CALLBACK_WINDOW,
            _calls.c.status.not_in(CALL_ENDED),
        )
    )
    if waiting is not None:
        log.info("missed call: call-%s is already calling back", waiting)
        return None
    call_id = connection.execute(
        insert(_calls)
        .values(
            call_row(
                purpose=CallPurpose.CALLBACK,
                our_address=to,
                status=CallStatus.QUEUED,
                created_at=now,
                token=new_token(),
                contact_id=contact.id if contact is not None else None,
                phone_hash=phone_hash,
                their_address_encrypted=vault.encrypt(caller),
            )
        )
        .returning(_calls.c.id)
    ).scalar_one()
    log.info("missed call: call-%s will call back", call_id)
    return int(call_id)


def claim_call_to_place(
    connection: Connection,
    vault: Vault,
    call_id: int,
    *,
    base_url: str,
    from_: str,
    now: datetime | None = None,
) -> OutboundCall | None:
    """The call to hand to Twilio, marked `dialing` (so it is never placed twice); None when
    it was placed already, is a campaign's call that is not due (the campaign is not running,
    or `call_after` has not come), or its number has opted out since.

    A call back carries the number it calls (encrypted with the PII key); a campaign's call
    reads it from its contact, under the contact's own key.
    """
    now = now or utcnow()
    call = connection.execute(
        select(_calls).where(_calls.c.id == call_id).with_for_update()
    ).first()
    if call is None or call.status != CallStatus.QUEUED:
        return None
    if call.campaign_id is not None:
        state = connection.scalar(
            select(_campaigns.c.state).where(_campaigns.c.id == call.campaign_id)
        )
        if state != CampaignState.RUNNING or (call.call_after and call.call_after > now):
            return None
    contact = connection.execute(
        select(
            _contacts.c.is_opted_out, _contacts.c.key_encrypted, _contacts.c.phone_encrypted
        ).where(_contacts.c.phone_hash == call.phone_hash)
    ).first()
    if contact is not None and contact.is_opted_out:
        _end(connection, call.id, CallStatus.CANCELED)
        log.info("call-%s: opted out meanwhile, not placed", call.id)
        return None
    if call.their_address_encrypted is not None:
        to = vault.decrypt(call.their_address_encrypted)
    elif call.contact_id is not None and contact is not None and contact.key_encrypted:
        to = vault.contact_cipher(contact.key_encrypted).decrypt(contact.phone_encrypted)
    else:
        _end(connection, call.id, CallStatus.CANCELED)
        log.info("call-%s: no number to call (erased meanwhile), not placed", call.id)
        return None
    connection.execute(
        update(_calls).where(_calls.c.id == call.id).values(status=CallStatus.DIALING)
    )
    query = urlencode({"c": call.token})
    return OutboundCall(
        call_id=call.id,
        contact=f"contact-{call.contact_id}" if call.contact_id else f"call-{call.id}",
        to=to,
        from_=from_ or call.our_address or "",
        url=f"{base_url}/twilio/voice?{query}",
        status_callback=f"{base_url}/twilio/voice/status?{query}",
    )


def calls_waiting(connection: Connection, *, older_than: timedelta, now: datetime) -> list[int]:
    """Call backs still queued a while after they were asked for (and not too late to call).
    A campaign's calls are not among them: its placer takes them (engage/jobs/calls.py)."""
    return list(
        connection.scalars(
            select(_calls.c.id).where(
                _calls.c.purpose == CallPurpose.CALLBACK,
                _calls.c.status == CallStatus.QUEUED,
                _calls.c.created_at <= now - older_than,
                _calls.c.created_at > now - CALLBACK_WINDOW,
            )
        )
    )


def record_try_later(
    connection: Connection, call_id: int, *, not_before: datetime | None = None
) -> None:
    """Twilio asked us to try later (the call surely was not placed): queued again, and (a
    campaign's call) not before `not_before`."""
    values: dict[str, Any] = {"status": CallStatus.QUEUED}
    if not_before is not None:
        values["call_after"] = not_before
    connection.execute(
        update(_calls)
        .where(_calls.c.id == call_id, _calls.c.status == CallStatus.DIALING)
        .values(**values)
    )


def record_placed(connection: Connection, call_id: int, sid: str) -> None:
    connection.execute(
        update(_calls).where(_calls.c.id == call_id, _calls.c.sid.is_(None)).values(sid=sid)
    )


def record_not_placed(connection: Connection, call_id: int, code: int | None) -> None:
    """Twilio refused the call (or never answered): it ends failed; the number is forgotten."""
    _end(connection, call_id, CallStatus.FAILED, error_code=code)


def record_call_status(
    connection: Connection,
    *,
    token: str | None,
    sid: str,
    status: str,
    sequence: int | None,
    duration: int | None = None,
    answered_by: str | None = None,
    now: datetime | None = None,
) -> bool:
    """A status callback: the furthest status heard wins (callbacks arrive in any order; an
    ended call stays ended). False when the call is unknown."""
    where = _calls.c.token == token if token else _calls.c.sid == sid
    call = connection.execute(select(_calls).where(where).with_for_update()).first()
    if call is None:
        return False
    values: dict[str, Any] = {}
    if call.sid is None:
        values["sid"] = sid
    if answered_by and not call.answered_by:
        values["answered_by"] = answered_by
    is_later = (sequence if sequence is not None else call.sequence + 1) > call.sequence
    if status in set(CallStatus) and call.status not in CALL_ENDED and is_later:
        values.update(status=status, sequence=sequence if sequence is not None else call.sequence)
        if status in CALL_ENDED:
            values.update(ended_at=now or utcnow(), duration=duration, their_address_encrypted=None)
    if values:
        connection.execute(update(_calls).where(_calls.c.id == call.id).values(**values))
    return True


def _end(
    connection: Connection, call_id: int, status: CallStatus, error_code: int | None = None
) -> None:
    connection.execute(
        update(_calls)
        .where(_calls.c.id == call_id)
        .values(
            status=status,
            error_code=error_code,
            ended_at=utcnow(),
            their_address_encrypted=None,
        )
    )

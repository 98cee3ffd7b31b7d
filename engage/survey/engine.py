"""The conversation engine: one inbound text in, replies and state changes out. Pure.

The caller (services/conversations.py) loads the contact and its open conversation into the plain
states below, calls `Engine.step`, and writes back what the outcome says. Nothing here knows about
storage, HTTP or Twilio.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from engage.channels import channel_named
from engage.survey import keywords as kw
from engage.survey.answers import COURTESY_WORDS, has_wrong_unit, parse_answer, parse_yes_no
from engage.survey.definition import Question, Survey
from engage.survey.safety import DISTRESS, SafetyMatch, SafetyWords, is_distress_keyword
from engage.survey.segments import count_segments, to_gsm7
from engage.survey.texts import FALLBACK_LANGUAGE, SystemTexts

CONSENT = "_consent"  # pending: waiting for the consent answer
INVITATION = "_invitation"  # pending: invited, consent already given, waiting for "1" to start
MAX_MISSES = 3
MAX_CONSENT_TRIES = 3
# A step's parts go out as one message while together they cost at most this many segments.
STEP_SEGMENT_BUDGET = 3

_CONSENT_QUESTION = Question(id=CONSENT, type="yes_no", text={})
_WORDS = re.compile(r"[^\W_]+")
# Polite words around a consent answer ("no gracias", "sí señor", "wi mèsi", "no, thank you")
# in any language, folded: once they are set aside, what is left must be a yes or a no.
_COURTESY_WORDS = frozenset(
    word
    for phrases in COURTESY_WORDS.values()
    for phrase in phrases
    for word in _WORDS.findall(kw.fold(phrase))
)
# On SMS, Twilio answers its own English opt-out and opt-in words; a second confirmation from
# us would only be noise.
_TWILIO_OPT_IN = frozenset({"start", "unstop", "yes"})
_TWILIO_OPT_OUT = frozenset(kw.fold(w) for w in kw.TWILIO_OPT_OUT)
# Safety words found inside other text get the help text at most this often per contact.
SAFETY_HELP_INTERVAL = timedelta(hours=24)
# Keyword -> (survey, language) per set of active survey versions (a version never changes).
_keyword_indexes: dict[tuple[tuple[str, str], ...], dict[str, tuple[Survey, str]]] = {}


@dataclass
class ContactState:
    language: str | None = None
    has_consented: bool = False
    is_opted_out: bool = False
    is_menu_open: bool = False
    is_new: bool = False
    profile: dict[str, Any] = field(default_factory=dict)
    completed_surveys: set[str] = field(default_factory=set)
    last_nudged_at: datetime | None = None
    # When each profile value was last answered or imported: {key: ISO time}.
    profile_updated_at: dict[str, str] = field(default_factory=dict)
    last_safety_help_at: datetime | None = None
    # BORRAR asked for confirmation and it has not lapsed (the caller decides: it knows what
    # was sent since); set when asked, cleared by any other reply.
    erase_requested: bool = False


@dataclass
class ConversationState:
    survey_id: str
    version: str
    language: str
    started_at: datetime
    last_activity_at: datetime
    status: str = "active"  # active | completed | abandoned | declined | expired | opted_out
    pending: str | None = None
    misses: list[str] = field(default_factory=list)
    consent_tries: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    # The caller's key for this conversation (a row id); the engine never reads it.
    key: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class AnswerRecord:
    conversation: ConversationState = field(compare=False, repr=False)
    survey_id: str
    version: str
    question_id: str
    status: str  # answered | skipped | missed | profile
    value: Any
    raw_text: str | None
    language: str
    question_type: str = ""


@dataclass
class Outcome:
    replies: list[str] = field(default_factory=list)
    conversation: ConversationState | None = None
    ended: list[ConversationState] = field(default_factory=list)
    answers: list[AnswerRecord] = field(default_factory=list)
    # What the inbound message was, for the message row and the logs.
    kind: str = "text"
    is_free_text: bool = False
    # A safety flag for staff: the topic of the safety words found (never the words).
    urgent_topic: str | None = None
    # The contact asked to be erased and confirmed (or is opted out): the caller erases it,
    # and sends the replies, if any, to the address the request came from.
    erase: bool = False
    # The recording of the prompt the replies end with (the question asked, or the intro or
    # closing), where the channel carries a survey's audio: its media name.
    audio: str | None = None


class SurveyCatalog(Protocol):
    def active(self) -> list[Survey]: ...

    def get(self, survey_id: str, version: str) -> Survey: ...


class Engine:
    """Decides what a message means and what to answer: the rules of docs/conversation.md."""

    def __init__(
        self,
        surveys: SurveyCatalog,
        texts: Callable[[str], SystemTexts],
        idle: timedelta = timedelta(hours=72),
        safety: SafetyWords | None = None,
    ) -> None:
        self.surveys = surveys
        self.texts = texts
        self.idle = idle
        self.safety = safety

    # -- entry points ---------------------------------------------------------------------

    def step(
        self,
        contact: ContactState,
        conversation: ConversationState | None,
        text: str | None,
        *,
        now: datetime,
        channel: str = "sms",
        has_media: bool = False,
        twilio_confirmed: bool = False,
    ) -> Outcome:
        """Handle one inbound message.

        `twilio_confirmed` says Twilio has already answered an opt-out or opt-in keyword itself
        (Advanced Opt-Out's OptOutType): we record it and send no confirmation of our own.
        """
        run = _Step(self, contact, conversation, now, channel)
        run.twilio_confirmed = twilio_confirmed
        run.handle((text or "").strip(), has_media)
        return run.finish()

    def invite(
        self,
        contact: ContactState,
        survey: Survey,
        *,
        now: datetime,
        language: str | None = None,
        channel: str = "sms",
    ) -> Outcome:
        """Open a conversation for a campaign invitation (consent first when not yet given)."""
        run = _Step(self, contact, None, now, channel)
        lang = language or contact.language
        if lang not in survey.languages:
            lang = survey.default_language
        conv = run.open(survey, lang)
        conv.pending = CONSENT if not contact.has_consented else INVITATION
        run.out.kind = "invitation"
        # The intro comes with the first question, once they have said yes.
        run.say(run.prompt())
        return run.finish()

    def expire(self, conversation: ConversationState, now: datetime) -> bool:
        """End an open conversation idle longer than the idle time; True when it did."""
        if conversation.is_open and now - conversation.last_activity_at > self.idle:
            conversation.status = "expired"
            return True
        return False

    # -- helpers used by steps -------------------------------------------------------------

    def keyword_index(self) -> dict[str, tuple[Survey, str]]:
        surveys = self.surveys.active()
        key = tuple((survey.id, survey.version) for survey in surveys)
        index = _keyword_indexes.get(key)
        if index is None:
            index = {}
            for survey in surveys:
                for lang, words in survey.keywords.items():
                    for word in words:
                        index[kw.fold(word)] = (survey, lang)
            if len(_keyword_indexes) > 16:
                _keyword_indexes.clear()
            _keyword_indexes[key] = index
        return index

    def menu_languages(self, survey: Survey | None) -> list[str]:
        if survey is not None:
            codes: Iterable[str] = survey.languages
        else:
            codes = set(kw.CATALOG_LANGUAGES).union(*(s.languages for s in self.surveys.active()))
        return sorted(codes, key=lambda c: (kw.menu_number(c), c))


class _Step:
    """The working state of one step: the contact, its conversation, and what to answer."""

    def __init__(
        self,
        engine: Engine,
        contact: ContactState,
        conversation: ConversationState | None,
        now: datetime,
        channel: str,
    ) -> None:
        self.engine = engine
        self.contact = contact
        self.conv = conversation
        self.now = now
        self.channel = channel
        self.out = Outcome()
        self.parts: list[str] = []
        self.twilio_confirmed = False
        self._safety: tuple[str, SafetyMatch | None] | None = None

    # -- the rules, in precedence order ----------------------------------------------------

    def handle(self, text: str, has_media: bool) -> None:
        contact = self.contact
        if self.conv is not None and self.engine.expire(self.conv, self.now):
            self.end("expired")
        kind = kw.system_keyword(text)
        if contact.erase_requested:
            contact.erase_requested = False
            if self.is_erase_confirmed(text):
                self.erase()
                return
            # Any other reply cancels it, and is then handled as usual.

        if contact.is_opted_out:
            if kind == "opt_in":
                contact.is_opted_out = False
                self.out.kind = "opt_in"
                if not self.is_confirmed_by_twilio(text, _TWILIO_OPT_IN):
                    self.say(self.t.opted_in())
            elif kind == "erase":
                self.erase()  # at once, and nothing is sent
            elif kind == "help":
                # They wrote to us, maybe in trouble: the help text, and nothing else changes.
                self.out.kind = "help"
                self.flag_distress(text)
                self.say(self.t.help())
            else:
                self.out.kind = "ignored"
                # Nothing is sent, but staff see it.
                if match := self.safety_match(text):
                    self.out.urgent_topic = match.topic
            return
        if kind == "opt_out":
            contact.is_opted_out = True
            contact.is_menu_open = False
            self.out.kind = "opt_out"
            if self.conv is not None:
                self.end("opted_out")
            if not self.is_confirmed_by_twilio(text, _TWILIO_OPT_OUT):
                self.say(self.t.opted_out())
            return

        if kind == "erase":
            # Its confirmation replaces the menu: a "2" for "do not erase" is no language pick.
            contact.is_menu_open = False
            contact.erase_requested = True
            self.out.kind = "erase_request"
            self.say(self.t.erase_confirm())
            return

        if contact.is_menu_open:
            contact.is_menu_open = False
            if self.pick_language(text):
                return
        if kind == "help":
            self.out.kind = "help"
            self.flag_distress(text)
            self.say(self.t.help(), *self.prompts())
            return
        if kind == "language":
            self.out.kind = "language"
            contact.is_menu_open = True
            self.say(self.menu())
            return
        if kind == "skip" and self.conv is not None:
            self.out.kind = "skip"
            if self.question is not None:
                self.record(self.question, "skipped", None, text)
                self.advance()
            else:
                self.say(self.prompt())
            return
        if has_media and not text:
            self.out.kind = "media"
            # Outside a conversation there is nothing to answer by text: the photo is then a
            # message like any other (the menu for a new number, else the no-conversation reply).
            if self.conv is not None:
                self.say(self.t.answer_by_text(), *self.prompts())
                return

        if self.conv is not None and self.conv.pending in (CONSENT, INVITATION):
            if self.answer_consent(text):
                return
        elif self.conv is not None and self.question is not None:
            if self.answer_question(self.question, text):
                return
        if self.start_by_keyword(text):
            return
        if self.answer_safety(text):
            return
        if self.conv is not None:
            self.miss(text)
            return
        self.no_conversation()

    def is_erase_confirmed(self, text: str) -> bool:
        """BORRAR's confirmation: 1, or a yes in any of the catalogs' languages."""
        return read_consent(text, list(kw.CATALOG_LANGUAGES)) == "yes"

    def erase(self) -> None:
        self.out.kind = "erase"
        self.out.erase = True
        if not self.contact.is_opted_out:
            self.say(self.t.erased())

    def is_confirmed_by_twilio(self, text: str, twilio_words: frozenset[str]) -> bool:
        return self.twilio_confirmed or (
            channel_named(self.channel).counts_segments and kw.fold(text) in twilio_words
        )

    def pick_language(self, text: str) -> bool:
        survey = self.survey if self.conv is not None else None
        folded = kw.fold(text)
        for code in self.engine.menu_languages(survey):
            names = {str(kw.menu_number(code)), code, kw.fold(kw.language_name(code))}
            names.update(next((a for c, _, a in kw.LANGUAGE_MENU if c == code), ()))
            if folded in names:
                break
        else:
            return False
        self.out.kind = "language_pick"
        self.contact.language = code
        if self.conv is not None:
            self.conv.language = code
            self.say(self.prompt())
        else:
            # It ends with the no-conversation reply: that counts as the day's one.
            self.contact.last_nudged_at = self.now
            self.say(self.t.language_set(), self.t.no_conversation(self.keywords_for(code)))
        return True

    def answer_consent(self, text: str) -> bool:
        conv = self.conv
        assert conv is not None
        answer = read_consent(text, self.languages())
        if answer is None:
            if self.keyword(text) is not None or self.safety_match(text):
                return False  # a survey keyword or safety words: handled after
            conv.consent_tries += 1
            self.out.kind = "consent"
            if conv.consent_tries >= MAX_CONSENT_TRIES:
                self.decline()
            elif conv.pending == CONSENT:
                # The whole consent again would cost two more segments: a hint is enough.
                self.say(self.t.consent_hint())
            else:
                self.say(self.prompt())
            return True
        self.out.kind = "consent"
        if answer == "yes":
            self.contact.has_consented = True
            self.start_questions()
        else:
            self.decline()
        return True

    def decline(self) -> None:
        self.say(self.t.consent_declined())
        self.end("declined")

    def answer_question(self, question: Question, text: str) -> bool:
        # A message that is exactly a survey keyword is a keyword, even where free text is asked.
        if question.type == "text" and self.keyword(text) is not None:
            return False
        answer = parse_answer(question, text, self.languages())
        if answer is None:
            return False
        self.out.kind = "answer"
        if question.type == "text":
            self.flag_safety(text)  # the help text, then the answer is taken as usual
        value = list(answer.value) if isinstance(answer.value, tuple) else answer.value
        self.record(question, "answered", value, text)
        self.advance()
        return True

    def miss(self, text: str) -> None:
        conv, question = self.conv, self.question
        assert conv is not None and question is not None
        self.out.kind = "miss"
        conv.misses.append(text)
        if len(conv.misses) >= MAX_MISSES:
            self.record(question, "missed", None, "\n".join(conv.misses))
            self.advance()
        else:
            self.say(self.hint(question, text), self.prompt())

    def start_by_keyword(self, text: str) -> bool:
        found = self.keyword(text)
        if found is None:
            return False
        survey, lang = found
        self.out.kind = "keyword"
        if self.conv is not None and self.conv.survey_id == survey.id:
            # The keyword's language wins here too, as when it starts the survey.
            self.contact.language = self.conv.language = lang
            if self.conv.pending == INVITATION:
                self.start_questions()  # invited, consent given: its keyword means "start"
            else:
                self.say(self.prompt())
            return True
        if survey.id in self.contact.completed_surveys and not survey.repeat:
            # Nothing starts, so a survey in progress goes on: the worker keeps their place.
            if self.conv is None:
                self.contact.language = lang
            self.say(self.t.already_answered(), *self.prompts())
            return True
        if self.conv is not None:
            self.end("abandoned")
        self.contact.language = lang
        conv = self.open(survey, lang)
        if self.contact.has_consented:
            self.start_questions()
        else:
            conv.pending = CONSENT
            self.say(self.prompt())
        return True

    def no_conversation(self) -> None:
        contact = self.contact
        self.out.is_free_text = True
        if contact.is_new:
            self.out.kind = "menu"
            contact.is_menu_open = True
            self.say(self.menu())
            return
        last = contact.last_nudged_at
        if last is None or self.now - last >= timedelta(hours=24):
            contact.last_nudged_at = self.now
            self.say(self.t.no_conversation(self.keywords_for(self.language)))

    # -- safety flags (docs/conversation.md §8) ------------------------------------------------

    def safety_match(self, text: str) -> SafetyMatch | None:
        """Safety words in the text: the lists of its language, Spanish and English."""
        if self._safety is None or self._safety[0] != text:
            safety = self.engine.safety
            langs = [self.language, self.contact.language or self.language, "es", "en"]
            if self.conv is None and self.contact.language is None:
                langs += kw.CATALOG_LANGUAGES  # no language known yet: every list
            self._safety = (text, safety.find(text, langs) if safety and text else None)
        return self._safety[1]

    def flag_distress(self, text: str) -> None:
        """A distress keyword (AUXILIO, ANMWE…) raises the flag; its help text always goes."""
        if is_distress_keyword(text):
            self.out.urgent_topic = DISTRESS
            self.contact.last_safety_help_at = self.now

    def flag_safety(self, text: str) -> bool:
        """Flag safety words found in the text and say the help text, at most once in 24 h."""
        match = self.safety_match(text)
        if match is None:
            return False
        self.out.urgent_topic = match.topic
        last = self.contact.last_safety_help_at
        if last is None or self.now - last >= SAFETY_HELP_INTERVAL:
            self.contact.last_safety_help_at = self.now
            # Someone who never chose a language gets help in the words they wrote.
            known = self.conv is not None or self.contact.language is not None
            texts = self.engine.texts(self.language if known else match.language)
            self.say((texts.sms if channel_named(self.channel).counts_segments else texts).help())
        return True

    def answer_safety(self, text: str) -> bool:
        """A flagged message that is no answer: help, no hint, not a miss; the conversation
        goes on (outside one, help replaces the no-conversation reply)."""
        if not self.flag_safety(text):
            return False
        self.out.kind = "safety"
        self.out.is_free_text = self.conv is None
        self.say(*self.prompts())
        return True

    # -- conversation mechanics --------------------------------------------------------------

    def open(self, survey: Survey, lang: str) -> ConversationState:
        self.conv = ConversationState(
            survey_id=survey.id,
            version=survey.version,
            language=lang,
            started_at=self.now,
            last_activity_at=self.now,
        )
        return self.conv

    def end(self, status: str) -> None:
        assert self.conv is not None
        self.conv.status = status
        self.conv.pending = None
        self.out.ended.append(self.conv)
        self.conv = None

    def record(self, question: Question, status: str, value: Any, raw: str | None) -> None:
        conv = self.conv
        assert conv is not None
        known = self.known_profile_value(question)
        if status == "skipped" and known is not None:
            # A re-asked profile value stands when the worker skips: written from the profile.
            status, value, raw = "profile", known, None
        conv.values[question.id] = value
        if question.profile and status == "answered":
            self.set_profile(question.profile, value)
        self.out.answers.append(
            AnswerRecord(
                conversation=conv,
                survey_id=conv.survey_id,
                version=conv.version,
                question_id=question.id,
                status=status,
                value=value,
                raw_text=raw,
                language=conv.language,
                question_type=question.type,
            )
        )

    def advance(self, *, start: bool = False) -> None:
        """Move to the next question that applies; finish the survey after the last."""
        conv = self.conv
        assert conv is not None
        survey = self.survey
        index = 0 if start or conv.pending is None else survey.index_of(conv.pending) + 1
        conv.misses = []
        for question in survey.questions[index:]:
            env = {**self.contact.profile, **conv.values}
            if question.when is not None and not question.when.evaluate(env):
                continue
            known = self.known_profile_value(question)
            if known is not None and not is_profile_stale(self.contact, question, self.now):
                self.record(question, "profile", known, None)
                continue
            conv.pending = question.id
            self.say(self.render(question))
            return
        closing = survey.closing.get(conv.language)
        if closing:
            self.hear(survey.audio_of("closing", conv.language))
            self.say(self.spell(closing))
        # On a shared phone the thread itself can put the worker at risk.
        self.say(self.t.may_delete())
        self.contact.completed_surveys.add(survey.id)
        self.end("completed")

    def start_questions(self) -> None:
        """The survey's intro with its first question that applies."""
        intro = self.survey.intro.get(self.language)
        if intro:
            self.hear(self.survey.audio_of("intro", self.language))
            self.say(self.spell(intro))
        self.advance(start=True)

    def known_profile_value(self, question: Question) -> Any:
        """The contact's value for a profile question; None if unknown or not a profile one."""
        profile = question.profile
        return None if profile is None else self.contact.profile.get(profile)

    def set_profile(self, key: str, value: Any) -> None:
        self.contact.profile[key] = value
        self.contact.profile_updated_at[key] = self.now.isoformat()

    # -- rendering ---------------------------------------------------------------------------

    def prompts(self) -> list[str]:
        return [self.prompt()] if self.conv is not None else []

    def prompt(self) -> str:
        """What the conversation is waiting for, asked again."""
        conv = self.conv
        assert conv is not None
        if conv.pending == CONSENT:
            return self.t.consent()
        if conv.pending == INVITATION:
            return self.t.invitation(self.survey.title.get(conv.language) or self.survey.id)
        assert self.question is not None
        return self.render(self.question)

    def render(self, question: Question) -> str:
        self.hear(question.audio.get(self.language))
        return self.spell(render_question(question, self.survey, self.language, self.t))

    def hear(self, media: str | None) -> None:
        """A recording of what is said, sent with the replies where the channel carries it."""
        if channel_named(self.channel).carries(media):
            self.out.audio = media

    def spell(self, text: str) -> str:
        """One of the survey's own texts as this channel gets it."""
        return spell_for_channel(self.survey, text, self.channel)

    def hint(self, question: Question, text: str) -> str:
        t = self.t
        if question.type == "choice":
            return t.hint_choice(len(question.choices))
        if question.type == "multi":
            return t.hint_multi()
        if question.type == "yes_no":
            return t.hint_yes_no()
        if question.type == "text":
            # Only an empty reply misses a text question: it counts as no answer, and the hint
            # asks for words (a number hint would only puzzle the worker).
            return t.answer_by_text()
        if has_wrong_unit(text, question):
            return t.hint_wrong_unit()
        return t.hint_number(question.min, question.max)

    def menu(self) -> str:
        survey = self.survey if self.conv is not None else None
        lines = [self.t.language_menu_header()]
        for code in self.engine.menu_languages(survey):
            name = kw.language_name(code)
            if channel_named(self.channel).counts_segments:
                # The names are system text too: one "á" (Diidxazá) would make it all UCS-2.
                name = to_gsm7(name)
            lines.append(f"{kw.menu_number(code)} {name}")
        return "\n".join(lines)

    def say(self, *parts: str) -> None:
        self.parts.extend(p for p in parts if p)

    def finish(self) -> Outcome:
        if self.conv is not None:
            self.conv.last_activity_at = self.now
        self.out.conversation = self.conv
        self.out.replies = compose(self.parts)
        return self.out

    # -- lookups -----------------------------------------------------------------------------

    @property
    def language(self) -> str:
        if self.conv is not None:
            return self.conv.language
        return self.contact.language or FALLBACK_LANGUAGE

    @property
    def t(self) -> SystemTexts:
        texts = self.engine.texts(self.language)
        # System texts on SMS go in plain GSM-7 spelling, whatever the survey's own spelling.
        return texts.sms if channel_named(self.channel).counts_segments else texts

    @property
    def survey(self) -> Survey:
        assert self.conv is not None
        return self.engine.surveys.get(self.conv.survey_id, self.conv.version)

    @property
    def question(self) -> Question | None:
        conv = self.conv
        if conv is None or conv.pending is None or conv.pending.startswith("_"):
            return None
        return self.survey.question(conv.pending)

    def languages(self) -> list[str]:
        langs = list(self.survey.languages) if self.conv is not None else []
        return langs + [lang for lang in (self.language, "es", "en") if lang not in langs]

    def keyword(self, text: str) -> tuple[Survey, str] | None:
        return self.engine.keyword_index().get(kw.fold(text))

    def keywords_for(self, lang: str) -> list[str]:
        words = []
        for survey in self.engine.surveys.active():
            own = survey.keywords.get(lang) or survey.keywords[survey.default_language]
            words.append(own[0].upper())
        return words


def read_consent(text: str, languages: list[str]) -> str | None:
    """A reply to the consent: "yes", "no" or None; polite words around it are set aside."""
    answer = parse_answer(_CONSENT_QUESTION, text, languages)
    if answer is not None:
        return str(answer.value)
    words = _WORDS.findall(kw.fold(text))
    rest = [word for word in words if word not in _COURTESY_WORDS]
    if not rest or len(rest) == len(words):
        return None
    return parse_yes_no(" ".join(rest), languages)


def render_question(question: Question, survey: Survey, lang: str, t: SystemTexts) -> str:
    """A question as the worker reads it: text, numbered choices, and how to skip if optional."""
    lines = [question.text.get(lang) or question.text[survey.default_language]]
    if question.type in ("choice", "multi"):
        for number, choice in enumerate(question.choices, start=1):
            label = choice.label.get(lang) or choice.label[survey.default_language]
            lines.append(f"{number} {label}")
        if question.type == "multi":
            lines.append(t.several_allowed())
    elif question.type == "yes_no":
        lines.append(t.yes_no_choices())
    if question.optional:
        lines.append(t.skip_prompt())
    return "\n".join(lines)


def is_profile_stale(contact: ContactState, question: Question, now: datetime) -> bool:
    """Whether the contact's value for a profile question is older than its max_age_days.

    A value without a recorded time (kept from before times were recorded) counts as old.
    """
    if question.profile is None or question.max_age_days is None:
        return False
    recorded = contact.profile_updated_at.get(question.profile)
    try:
        set_at = datetime.fromisoformat(recorded) if isinstance(recorded, str) else None
    except ValueError:
        set_at = None
    if set_at is None:
        return True
    if set_at.tzinfo is None:
        set_at = set_at.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now - set_at > timedelta(days=question.max_age_days)


def spell_for_channel(survey: Survey, text: str, channel: str) -> str:
    """A survey text as sent: in plain GSM-7 letters on SMS when the survey asks for it."""
    is_plain = channel_named(channel).counts_segments and survey.is_plain_on_sms
    return to_gsm7(text) if is_plain else text


def compose(parts: list[str]) -> list[str]:
    """One message for a step when it fits the segment budget, else its parts in order."""
    if not parts:
        return []
    joined = "\n\n".join(parts)
    if count_segments(joined).segments <= STEP_SEGMENT_BUDGET:
        return [joined]
    return list(parts)

"""What a caller hears and what the keys they press mean: the voice channel's words. Pure.

A survey's own prompt is heard from its recording where the survey file gives one for the
language (`audio:`), else read by Twilio's `<Say>` where Twilio has a voice for it (Spanish and
English). System prompts are read by `<Say>` in those languages and recorded as
`locales/<lang>/audio/<key>.wav` in the others.
The texts below are the words of each system prompt: what `<Say>` reads and what a recording
says (`engage voice prompts LANG` lists them for whoever records a language).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engage.survey.definition import Question, Survey
from engage.survey.texts import SystemTexts

# Languages Twilio's <Say> speaks, with the locale and voice it reads them in
# (docs/voice.md §2).
SAY_VOICES: dict[str, tuple[str, str]] = {
    "es": ("es-MX", "Polly.Mia"),
    "en": ("en-US", "Polly.Joanna"),
}
# A recorded prompt: at most this long, and this large.
MAX_PROMPT_SECONDS = 60
MAX_PROMPT_BYTES = 5 * 1024 * 1024
# Keys with a meaning on every question.
REPEAT_KEY = "*"
HELP_KEY = "0"
SKIP_KEY = "#"
OPT_OUT_KEY = "9"
# At most this many choices take one key each (numDigits 1).
MAX_ONE_KEY_CHOICES = 9


def _(message: str) -> str:
    """Marks a text for extraction; `texts` below translates it."""
    return message


# Every system prompt, by the name of its recording, with its words.
SYSTEM_PROMPTS: dict[str, str] = {
    "language_option": _("For English, press %(key)s."),
    "org_intro": _("This call is from %(org)s."),
    "consent": _(
        "We are asking about your work. It is voluntary and confidential. We never ask your "
        "name. We are not the government or your employer. To take part, press 1. If not, press "
        "2. To never be called again, press 9."
    ),
    "keys": _(
        "At any question, press star to hear it again, zero for help, and the pound key to skip it."
    ),
    "help": _(
        "We ask farmworkers about their work. We are not the government or your employer. A "
        "free, confidential help line answers 24 hours a day, in many languages, and is not the "
        "police or immigration: 1 8 8 8, 3 7 3, 7 8 8 8. In an emergency, call 9 1 1. To be "
        "connected to the help line now, press zero. To go back to the question, press any "
        "other key."
    ),
    "connecting": _("Connecting you to the help line."),
    "no_input": _("We did not hear an answer."),
    "not_understood": _("We did not understand that answer."),
    "yes_no_keys": _("Press 1 for yes, or 2 for no."),
    "number_keys": _("Enter the number with the keypad, then press the pound key."),
    "multi_keys": _("Press the number of each answer that applies, then press the pound key."),
    "voice_note": _(
        "After the tone, say your answer, then press any key. To skip, press the pound key."
    ),
    "voice_note_saved": _("Thank you, we have your message."),
    "resume": _("Welcome back. We go on where you left off."),
    "declined": _("Understood, thank you. We will not ask you anything. Goodbye."),
    "goodbye": _("Thank you for your answers. To never be called again, press 9 now. Goodbye."),
    "opted_out": _("We will not call you or write to you again. Goodbye."),
    "opted_out_call": _(
        "You asked us not to contact you. To hear our surveys again, press 1. Goodbye."
    ),
    "already_answered": _("You already answered this survey. Thank you! Goodbye."),
    "no_survey": _("There is no survey by phone right now. Goodbye."),
    "survey_menu": _("Choose a survey."),
    **{f"press_{key}": _("Press %(key)s.") for key in "123456789"},
}
# Prompts that name the organisation: read by <Say> with the configured name wherever Twilio
# speaks the language (a recording would say the wrong name after a change of
# ENGAGE_ORG_NAME); recorded by the organisation itself elsewhere.
NAMES_ORG = frozenset({"org_intro"})
# Read by <Say> only (their words change with each survey): never a file.
_CHOICE_OPTION = _("For %(label)s, press %(key)s.")
_SURVEY_OPTION = _("For %(title)s, press %(key)s.")


def is_spoken_by_twilio(language: str) -> bool:
    return language in SAY_VOICES


def system_prompt_keys() -> list[str]:
    """Every system prompt a voice language needs, recorded or spoken."""
    return list(SYSTEM_PROMPTS)


def recorded_keys(language: str) -> list[str]:
    """The system prompts that must be recorded for a language (all of them where Twilio has
    no voice; none where it has)."""
    return [] if is_spoken_by_twilio(language) else system_prompt_keys()


@dataclass(frozen=True)
class VoiceTexts:
    """The words of the system prompts in one language (its catalog, then Spanish)."""

    texts: SystemTexts
    menu_number: Callable[[str], int]

    def prompt(self, key: str) -> str:
        words = self.texts.gettext(SYSTEM_PROMPTS[key])
        if key == "language_option":
            return words % {"key": self.menu_number(self.texts.language)}
        if key.startswith("press_"):
            return words % {"key": key.removeprefix("press_")}
        if key in NAMES_ORG:
            return words % {"org": self.texts.org}
        return words

    def choice_option(self, label: str, key: int) -> str:
        return self.texts.gettext(_CHOICE_OPTION) % {"label": label, "key": key}

    def survey_option(self, title: str, key: int) -> str:
        return self.texts.gettext(_SURVEY_OPTION) % {"title": title, "key": key}


def instructions_key(question: Question) -> str | None:
    """The system prompt that follows a question's own: how to answer it with keys (a choice
    question's own prompt reads its choices out; with more than one key's worth, its number is
    keyed as a number is)."""
    if question.type == "choice" and not takes_one_key(question):
        return "number_keys"
    return {
        "yes_no": "yes_no_keys",
        "number": "number_keys",
        "multi": "multi_keys",
        "text": "voice_note",
    }.get(question.type)


def keys_to_text(question: Question | None, digits: str) -> str:
    """What a caller's keys say, as the engine reads a text: "13" to a `multi` question is
    answers 1 and 3; to a number question it is thirteen."""
    if question is not None and question.type == "multi":
        return " ".join(digits)
    return digits


def takes_one_key(question: Question) -> bool:
    """Whether a question is answered by one key (submitted on the key press)."""
    if question.type == "yes_no":
        return True
    return question.type == "choice" and len(question.choices) <= MAX_ONE_KEY_CHOICES


# -- what a caller hears -------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One thing a caller hears: a recording (its media name), or else its words read by
    <Say> in `language`. The words are kept either way (the staff simulator shows them)."""

    media: str | None = None
    text: str | None = None
    language: str | None = None  # the language <Say> reads the text in


@dataclass(frozen=True)
class Keys:
    """How the keys after a prompt are gathered: one key, submitted as it is pressed (`*`
    and `#` are keys then), or keys ended by `#`."""

    one: bool


@dataclass(frozen=True)
class Screen:
    """What one step of a call says and asks: prompts, then keys, a voice note, a call to the
    help line, or the end of the call."""

    prompts: tuple[Prompt, ...]
    keys: Keys | None = None
    record: bool = False
    dial: str | None = None

    @property
    def hangs_up(self) -> bool:
        return self.keys is None and not self.record and self.dial is None


class PromptBook:
    """Every prompt in one language: recorded where a recording exists, else read by <Say>
    (in the language, or in Spanish for a language Twilio does not speak)."""

    def __init__(
        self,
        language: str,
        texts: VoiceTexts,
        system_audio: Callable[[str, str], str | None],
    ) -> None:
        self.language = language
        self.texts = texts
        self.system_audio = system_audio
        self.say_language = language if is_spoken_by_twilio(language) else "es"

    def say(self, text: str, media: str | None = None) -> Prompt:
        """Words, heard from their recording when there is one, else read by <Say>."""
        return Prompt(media=media, text=text, language=self.say_language)

    def system(self, key: str) -> Prompt:
        """A system prompt: read by <Say> where Twilio speaks the language, else recorded
        (engage/survey/prompt_files.py); read in Spanish if a recording is missing after all."""
        media = None
        if not is_spoken_by_twilio(self.language):
            media = self.system_audio(self.language, key)
        return self.say(self.texts.prompt(key), media)

    def survey_part(self, survey: Survey, part: str) -> Prompt | None:
        """The survey's title, intro or closing, if it has one."""
        text = {"title": survey.title, "intro": survey.intro, "closing": survey.closing}[part]
        media = survey.audio_of(part, self.language)
        words = text.get(self.language)
        return self.say(words or "", media) if words or media else None

    def question(self, question: Question) -> list[Prompt]:
        """The question with its choices read out, then how to answer it with keys."""
        words = [question.text.get(self.language, "")]
        if question.type in ("choice", "multi"):
            words += [
                self.texts.choice_option(choice.label.get(self.language, choice.value), key)
                for key, choice in enumerate(question.choices, start=1)
            ]
        text = " ".join(w for w in words if w)
        prompts = [self.say(text, question.audio.get(self.language))]
        instructions = instructions_key(question)
        if instructions:
            prompts.append(self.system(instructions))
        return prompts

    def survey_option(self, survey: Survey, key: int) -> list[Prompt]:
        """One entry of the survey menu: its title, then its key."""
        media = survey.audio_of("title", self.language)
        title = survey.title.get(self.language) or survey.title[survey.default_language]
        if media:
            return [self.say(title, media), self.system(f"press_{key}")]
        return [self.say(self.texts.survey_option(title, key))]


def question_keys(question: Question) -> Keys | None:
    """How a question's answer is keyed (None: a voice note)."""
    if question.type == "text":
        return None
    return Keys(one=takes_one_key(question))

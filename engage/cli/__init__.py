"""The `engage` command: a Flask CLI group."""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from engage import create_app, db
from engage.channels import CHANNELS, VOICE

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar  # what click.progressbar returns

    from engage.survey.prompt_files import PromptFile
    from engage.survey.voice import VoiceTexts

log = logging.getLogger("engage.cli")


def _app(*_args: object) -> Flask:
    return create_app()


@click.group(cls=FlaskGroup, create_app=_app, add_default_commands=False)
def main() -> None:
    """Engage: multilingual SMS/WhatsApp surveys for worker engagement."""


@main.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def run_command(host: str, port: int) -> None:
    """Development server on :5000 (ENGAGE_ENV=development unless set)."""
    os.environ.setdefault("ENGAGE_ENV", "development")
    app = create_app()
    if not app.config["REDIS_URL"]:
        _start_in_process_clock(app)
    from werkzeug.serving import run_simple

    run_simple(host, port, app, use_reloader=False, threaded=True)


def _start_in_process_clock(app: Flask, interval: float = 30.0) -> None:
    """Without Redis there is no clock process: run periodic work in a thread of this one."""
    import threading

    from engage.clock import run_periodic

    def loop() -> None:
        while True:
            time.sleep(interval)
            with app.app_context():
                try:
                    run_periodic()
                except Exception:  # keep the clock alive; the error is logged
                    log.exception("clock: periodic work failed")

    threading.Thread(target=loop, name="engage-clock", daemon=True).start()


# -- database ------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from engage.migrations import upgrade

    upgrade(db.engine(), revision, vault=current_app.extensions["engage.vault"])
    click.echo(f"database at {revision}")


# -- surveys -------------------------------------------------------------------------------


@main.group("surveys")
def surveys_group() -> None:
    """Check and publish survey files."""


@surveys_group.command("check", with_appcontext=False)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def surveys_check(paths: tuple[Path, ...]) -> None:
    """Validate survey files; problems as FILE:LINE: message, else segment costs."""
    from engage.config import survey_settings
    from engage.services.survey_report import check_files

    settings = survey_settings(os.environ)
    files = _survey_files(paths or (Path(settings["ENGAGE_SURVEYS_DIR"]),))
    ok, lines = check_files(files, org_name=settings["ENGAGE_ORG_NAME"])
    for line in lines:
        click.echo(line)
    if not ok:
        sys.exit(1)


def _survey_files(paths: tuple[Path, ...]) -> list[Path]:
    from engage.survey.loader import find_survey_files

    files: list[Path] = []
    for path in paths:
        files.extend(find_survey_files(path) if path.is_dir() else [path])
    return files


@surveys_group.command("load")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def surveys_load(directory: Path | None) -> None:
    """Publish changed surveys in DIRECTORY as new versions."""
    from engage.services.accounts import record_publish
    from engage.services.surveys import PublishError, file_collisions, publish_surveys
    from engage.survey.loader import load_survey_files

    directory = directory or Path(current_app.config["ENGAGE_SURVEYS_DIR"])
    if not directory.is_dir():
        raise click.ClickException(f"{directory}: no such directory")
    surveys, problems, checked = load_survey_files(_survey_files((directory,)))
    errors = [p for p in problems if not p.is_warning]
    for problem in problems:
        click.echo(str(problem), err=True)
    if errors:
        raise click.ClickException(f"{len(errors)} problem(s): nothing published")
    try:
        with db.transaction() as session:
            # What staff published in the browser wins: a colliding file is reported, skipped.
            skipped, collisions = file_collisions(session, checked)
            for problem in collisions:
                click.echo(str(problem), err=True)
            results = publish_surveys(
                session, [s for s in surveys if s.id not in skipped], keep=skipped
            )
            for result in results:
                if result.action != "unchanged":
                    record_publish(
                        session,
                        actor=_actor(),
                        survey_id=result.survey_id,
                        action=result.action,
                        version=result.version,
                    )
    except PublishError as exc:
        raise click.ClickException(f"{exc}: nothing published") from None
    for result in results:
        click.echo(f"{result.survey_id}: {result.action} {result.version}".rstrip())


# -- voice ---------------------------------------------------------------------------------


@main.group("voice")
def voice_group() -> None:
    """The voice channel's recorded prompts."""


class _Refusal(click.ClickException):
    """A command that cannot do what it was asked (exit status 2, apart from 1 for problems)."""

    exit_code = 2


def _language_code(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from engage.survey.keywords import LANGUAGE_CODE

    if not LANGUAGE_CODE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a language code such as es, en or mix")
    return value


@voice_group.command("prompts", with_appcontext=False)
@click.argument("language", metavar="LANG", callback=_language_code)
@click.option(
    "--render-with",
    type=click.Choice(["espeak-ng"]),
    help="Write the missing files with a machine voice (es and en only; needs espeak-ng, sox).",
)
@click.option(
    "--locales-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Catalogs and recordings  [default: locales beside the code]",
)
def voice_prompts(language: str, render_with: str | None, locales_dir: Path | None) -> None:
    """Each system prompt's file for LANG: there or not, how long, and the words to record;
    exit status 1 when one a caller needs is missing or cannot be played."""
    from engage.config import LOCALES_DIR, survey_settings
    from engage.survey.keywords import CATALOG_LANGUAGES, language_name
    from engage.survey.prompt_files import check_prompt_files
    from engage.survey.voice import is_spoken_by_twilio

    locales_dir = locales_dir or LOCALES_DIR
    org = survey_settings(os.environ)["ENGAGE_ORG_NAME"]
    words = _voice_texts(locales_dir, language, org)
    english = _voice_texts(locales_dir, language, org, words_in="en")
    rendered = _render_missing(locales_dir, language, words) if render_with else set()
    prompts = check_prompt_files(locales_dir, language)
    name = language_name(language)
    if is_spoken_by_twilio(language):
        click.echo(f"{language}: <Say> reads a prompt that has no recording")
    else:
        click.echo(f"{language}: Twilio has no voice for it: every prompt must be recorded")
    if language not in CATALOG_LANGUAGES:
        click.echo(f"no catalog for {language}: the words are Spanish, to be said in {name}")
    for prompt in prompts:
        path = locales_dir.name / prompt.path.relative_to(locales_dir)
        click.echo(f"\n{path}: {_prompt_state(prompt, prompt.key in rendered)}")
        click.echo(f"    words: {words.prompt(prompt.key)}")
        if prompt.key == "language_option" and language not in CATALOG_LANGUAGES:
            click.echo(f"    (naming {name}, not Spanish)")
        if language != "en":
            click.echo(f"    English: {english.prompt(prompt.key)}")
    failing = [p for p in prompts if p.fails]
    present = sum(1 for p in prompts if p.info is not None and p.problem is None)
    click.echo(f"\n{present} of {len(prompts)} present and playable, {len(failing)} failing")
    if failing:
        sys.exit(1)


def _voice_texts(locales_dir: Path, language: str, org: str, words_in: str = "") -> VoiceTexts:
    """The prompts' words in `words_in` (default: the language), as they are said in `language`
    (the key of its menu entry)."""
    from engage.survey.keywords import menu_number
    from engage.survey.texts import SystemTexts
    from engage.survey.voice import VoiceTexts

    texts = SystemTexts(locales_dir, words_in or language, org)
    return VoiceTexts(texts, lambda _code: menu_number(language))


def _prompt_state(prompt: PromptFile, is_rendered: bool) -> str:
    from engage.survey.voice import NAMES_ORG

    if prompt.is_said:
        return "read by <Say> with ENGAGE_ORG_NAME, not recorded"
    if prompt.problem is None and prompt.info is not None:
        return f"present, {prompt.info.seconds:.1f} s" + (", rendered now" if is_rendered else "")
    if prompt.problem == "missing" and not prompt.is_required:
        return "missing (read by <Say>)"
    if prompt.key in NAMES_ORG:
        return f"{prompt.problem} (it names the organisation: recorded by the organisation)"
    return str(prompt.problem)


def _render_missing(locales_dir: Path, language: str, words: VoiceTexts) -> set[str]:
    """Speak each missing prompt of LANG into its file; the keys written."""
    from engage.cli import speech
    from engage.survey.prompt_files import check_prompt_files

    if language not in speech.VOICES:
        raise _Refusal(
            f"espeak-ng renders {' and '.join(speech.VOICES)} only: {language} is recorded by a "
            "native speaker (docs/voice-prompts.md)"
        )
    if missing := speech.missing_tools():
        raise _Refusal(
            f"--render-with espeak-ng needs {' and '.join(missing)} on PATH "
            "(Debian: apt-get install espeak-ng sox)"
        )
    rendered = set()
    for prompt in check_prompt_files(locales_dir, language):
        if prompt.is_said or prompt.is_present:
            continue
        prompt.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            speech.render_words(words.prompt(prompt.key), language, prompt.path)
        except subprocess.CalledProcessError as exc:
            reason = exc.stderr.decode(errors="replace").strip()
            raise click.ClickException(f"{prompt.path}: {exc.cmd[0]} failed: {reason}") from None
        rendered.add(prompt.key)
    return rendered


# -- conversations from the terminal -----------------------------------------------------------


def _actor() -> str:
    """Who runs this command, for the audit trail: "cli:" and the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:  # a uid without a name (some containers)
        return f"cli:uid {os.getuid()}"


def _refuse_production(allow_production: bool) -> None:
    if current_app.config["IS_PRODUCTION"] and not allow_production:
        raise click.ClickException(
            "refusing to simulate in production; pass --allow-production if you mean it"
        )


@main.command("simulate")
@click.argument("phone")
@click.argument("text")
@click.option("--channel", type=click.Choice(list(CHANNELS)), default="sms")
@click.option("--allow-production", is_flag=True, help="Simulate against a production database.")
@with_appcontext
def simulate(phone: str, text: str, channel: str, allow_production: bool) -> None:
    """Run one inbound message through the webhook's service; print each reply."""
    from engage.simulation import simulate_message

    _refuse_production(allow_production)
    replies = simulate_message(current_app, phone, text, channel=channel)
    if replies:
        click.echo("\n\n".join(replies))


@main.command("chat")
@click.argument("phone")
@click.option("--channel", type=click.Choice(list(CHANNELS)), default="sms")
@click.option("--allow-production", is_flag=True, help="Chat against a production database.")
@with_appcontext
def chat(phone: str, channel: str, allow_production: bool) -> None:
    """An interactive conversation in the terminal, as the worker at PHONE."""
    from engage.simulation import simulate_message

    _refuse_production(allow_production)
    click.echo("Type a message as the worker would (empty line or Ctrl-D to quit).", err=True)
    while True:
        try:
            text = input("> ")
        except EOFError:
            break
        if not text.strip():
            break
        for reply in simulate_message(current_app, phone, text, channel=channel):
            click.echo(reply)
            click.echo()


# -- periodic work -------------------------------------------------------------------------------


@main.command("clock")
@click.option("--once", is_flag=True, help="Run each periodic task once and exit.")
@click.option("--interval", default=30, show_default=True, help="Seconds between rounds.")
@with_appcontext
def clock(once: bool, interval: int) -> None:
    """Periodic work: expiry, the outbox sweep, reconciling lost sends, the spool."""
    from engage.clock import run_periodic

    while True:
        run_periodic()
        if once:
            return
        time.sleep(interval)


@main.group("spool")
def spool_group() -> None:
    """The spool of webhooks taken while the database was down."""


@spool_group.command("replay")
@with_appcontext
def spool_replay() -> None:
    """Replay this host's spool now, in order; say what is waiting and what is set aside."""
    from engage.intake import replay_spooled, spool

    result = replay_spooled()
    dead = spool().dead_letter_count()
    just_now = f" ({result.set_aside} just now)" if result.set_aside else ""
    click.echo(
        f"{result.replayed} replayed, {spool().size()} waiting, "
        f"{dead} set aside as dead letters{just_now}"
    )
    if dead:
        # Counts and the file only: the letters hold phone numbers and bodies (encrypted).
        click.echo(
            f"dead letters: messages the database refused, kept encrypted in "
            f"{spool().dead_letters_path}; the log says why; /healthz answers 503 until "
            "they are dealt with"
        )


# -- contacts and campaigns ------------------------------------------------------------------------


@main.group("contacts")
def contacts_group() -> None:
    """Contacts."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def contacts_import(file: Path) -> None:
    """Import contacts from a CSV file: phone,language,consent_source,<profile keys…>."""
    from engage.services.contacts import ContactImportError, import_contacts, read_rows

    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            rows = read_rows(
                f, default_region=current_app.config["ENGAGE_DEFAULT_REGION"], name=str(file)
            )
    except ContactImportError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{len(exc.problems)} bad row(s): nothing imported") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not UTF-8 text: nothing imported") from None
    with ExitStack() as bars, db.transaction() as session:
        result = import_contacts(
            session,
            current_app.extensions["engage.vault"],
            rows,
            progress=_terminal_progress(bars, "importing") if sys.stderr.isatty() else None,
        )
    click.echo(
        f"{result.created} created, {result.updated} updated, "
        f"{result.merged_in_file} duplicate row(s) merged"
        + (f", {result.skipped_erased} erased number(s) skipped" if result.skipped_erased else "")
        + (f", {result.opted_out_kept} opted out (kept)" if result.opted_out_kept else "")
    )


def _terminal_progress(bars: ExitStack, label: str) -> Callable[[int, int], None]:
    """A progress report that draws a bar on standard error (standard output keeps only the
    summary); the bar starts at the first report, which gives the total."""
    shown = 0
    bar: ProgressBar[int] | None = None

    def update(done: int, total: int) -> None:
        nonlocal shown, bar
        if bar is None:
            bar = bars.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
        bar.update(done - shown)
        shown = done

    return update


@contacts_group.command("erase")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def contacts_erase(phone: str, yes: bool) -> None:
    """Erase the contact with this number, as its BORRAR does (audited; sends nothing)."""
    from engage.clock import erase
    from engage.privacy import PhoneNumberError, normalize_number
    from engage.services.accounts import record_erasure
    from engage.services.erasure import BY_CLI, find_contact

    try:
        e164 = normalize_number(phone, current_app.config["ENGAGE_DEFAULT_REGION"])
    except PhoneNumberError as exc:
        raise click.ClickException(str(exc)) from None
    with db.engine().connect() as connection:
        contact_id = find_contact(connection, current_app.extensions["engage.vault"], e164)
    if contact_id is None:
        with db.transaction() as session:
            record_erasure(session, actor=_actor(), contact_id=None, by=BY_CLI)
        raise click.ClickException("no contact has this number (or it was erased already)")
    if not yes:
        click.confirm(f"Erase contact-{contact_id}: its messages and number, for good?", abort=True)
    erased = erase([contact_id], by=BY_CLI)
    with db.transaction() as session:
        record_erasure(session, actor=_actor(), contact_id=contact_id, by=BY_CLI)
    if not erased:
        raise click.ClickException(f"contact-{contact_id} was erased meanwhile")
    click.echo(
        f"contact-{contact_id} erased: {erased[0].deletions} message(s) to delete at Twilio "
        f"(the clock does it), {erased[0].cancelled} send(s) cancelled"
    )


@main.group("campaigns")
def campaigns_group() -> None:
    """Invitations to surveys."""


def _parse_where(values: tuple[str, ...]) -> dict[str, str]:
    where = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not ATTR=VALUE", param_hint="--where")
        where[key.strip()] = value.strip()
    return where


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not ISO 8601", param_hint="--at") from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            "give a UTC offset, e.g. 2026-12-01T09:00-05:00", param_hint="--at"
        )
    return moment


@campaigns_group.command("start")
@click.argument("survey_id")
@click.option(
    "--where",
    "where",
    multiple=True,
    help="ATTR=VALUE: a profile key, language, or channel (one the contact has written by); "
    "repeatable.",
)
@click.option(
    "--channel",
    type=click.Choice([*CHANNELS, VOICE.name]),
    default="sms",
    show_default=True,
    help="voice: a phone call to each contact, at ENGAGE_CALL_RATE, never in quiet hours "
    "(the survey must be offered by phone; no reminders).",
)
@click.option("--at", "at", help="Start time, ISO 8601 with an offset.")
@click.option(
    "--remind-after",
    "remind_after",
    type=click.IntRange(min=1),
    metavar="H",
    help="Hours after the invitation (and after each reminder) before reminding.",
)
@click.option(
    "--reminders",
    "reminder_count",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="At most this many reminders per contact.",
)
@click.option(
    "--remind",
    "remind",
    type=click.Choice(["not_started", "not_completed"]),
    default="not_started",
    show_default=True,
    help="Who is reminded.",
)
@with_appcontext
def campaigns_start(
    survey_id: str,
    where: tuple[str, ...],
    channel: str,
    at: str | None,
    remind_after: int | None,
    reminder_count: int,
    remind: str,
) -> None:
    """Invite every matching contact who has not opted out, in their language (by text, or by
    a phone call)."""
    from engage.jobs.campaigns import start_campaign
    from engage.services.campaigns import CampaignError, Reminders

    if reminder_count and remind_after is None:
        raise click.BadParameter("give --remind-after H with --reminders", param_hint="--reminders")
    if remind_after is not None and not reminder_count:
        reminder_count = 1
    reminders = Reminders(count=reminder_count, after_hours=remind_after, whom=remind)
    bar = _ProgressBar() if sys.stderr.isatty() else None
    try:
        summary = start_campaign(
            survey_id,
            _parse_where(where),
            channel,
            _parse_at(at),
            reminders=reminders,
            progress=bar.update if bar else None,
        )
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar:
            bar.close()
    if channel == VOICE.name:
        click.echo(
            f"campaign {summary.campaign_id}: {summary.invited} invited, "
            f"{summary.calls_now} call(s) due now, {summary.scheduled} scheduled "
            "(quiet hours or --at)"
        )
        return
    click.echo(
        f"campaign {summary.campaign_id}: {summary.invited} invited, "
        f"{summary.sent_now} message(s) queued now, {summary.scheduled} scheduled "
        "(quiet hours or --at)"
    )


class _ProgressBar:
    """click's progress bar on the terminal (stderr), for the invitations written so far."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file or sys.stderr
        self.bar: Any = None
        self.shown = 0

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=total, label="inviting", file=self.file, show_pos=True, show_percent=True
            )
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@campaigns_group.command("list")
@with_appcontext
def campaigns_list() -> None:
    """Campaigns, newest first: id, state, survey, channel, start, invited, sent, reminders."""
    from engage.services.campaigns import list_campaigns, sent_counts

    session = db.session()
    campaigns = list_campaigns(session)
    sent = sent_counts(session, [c.id for c in campaigns])
    if not campaigns:
        click.echo("no campaigns")
        return
    click.echo(
        f"{'id':>5}  {'state':<10} {'survey':<24} {'channel':<9} {'start (UTC)':<17} "
        f"{'contacts':>8} {'invited':>8} {'sent':>8}  reminders"
    )
    for campaign in campaigns:
        reminders = (
            f"{campaign.reminders} after {campaign.remind_after_hours} h ({campaign.remind})"
            if campaign.reminders
            else "none"
        )
        click.echo(
            f"{campaign.id:>5}  {campaign.state:<10} {campaign.survey_id:<24} "
            f"{campaign.channel:<9} {campaign.start_at:%Y-%m-%d %H:%M} "
            f"{max(campaign.contacts, campaign.invited):>8} {campaign.invited:>8} "
            f"{sent.get(campaign.id, 0):>8}  {reminders}"
        )


def _is_voice(campaign_id: int) -> bool:
    from engage.models import Campaign

    campaign = db.session().get(Campaign, campaign_id)
    return campaign is not None and campaign.channel == VOICE.name


def _campaign_control(action: str, campaign_id: int) -> None:
    from engage.jobs import campaigns as jobs
    from engage.services.campaigns import CampaignError

    try:
        if action == "pause":
            jobs.pause(campaign_id, actor=_actor())
            click.echo(f"campaign {campaign_id}: paused; nothing more of it is sent")
        elif action == "resume":
            due = jobs.resume(campaign_id, actor=_actor())
            what = "call(s) due" if _is_voice(campaign_id) else "message(s) queued"
            click.echo(f"campaign {campaign_id}: resumed; {due} {what} now")
        else:
            dropped = jobs.cancel(campaign_id, actor=_actor())
            what = "queued call(s)" if _is_voice(campaign_id) else "unsent message(s)"
            click.echo(f"campaign {campaign_id}: cancelled; {dropped} {what} dropped")
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None


@campaigns_group.command("pause")
@click.argument("campaign_id", type=int)
@with_appcontext
def campaigns_pause(campaign_id: int) -> None:
    """Hold a campaign: none of its messages is sent until it resumes."""
    _campaign_control("pause", campaign_id)


@campaigns_group.command("resume")
@click.argument("campaign_id", type=int)
@with_appcontext
def campaigns_resume(campaign_id: int) -> None:
    """Send a paused campaign's messages again."""
    _campaign_control("resume", campaign_id)


@campaigns_group.command("cancel")
@click.argument("campaign_id", type=int)
@with_appcontext
def campaigns_cancel(campaign_id: int) -> None:
    """Stop a campaign for good: its unsent messages are dropped."""
    _campaign_control("cancel", campaign_id)


# -- results -------------------------------------------------------------------------------------


@main.command("export")
@click.argument("survey_id")
@click.option("--by", "by", multiple=True, metavar="ATTR", help="Profile attribute (up to two).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx", "json"]), default="csv", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="FILE.")
@click.option("--responses", is_flag=True, help="The staff file: one row per response (CSV).")
@with_appcontext
def export(
    survey_id: str, by: tuple[str, ...], fmt: str, output: Path | None, responses: bool
) -> None:
    """Aggregated results of SURVEY_ID (or, with --responses, the staff file)."""
    from engage.results.report import BreakdownError
    from engage.results.writers import iter_responses_csv, write_report
    from engage.services.results import build_report, export_responses, report_rule

    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx writes a file: give -o FILE")
    if responses and (by or fmt != "csv"):
        raise click.UsageError("--responses writes CSV and takes no --by")
    session = db.session()
    try:
        if responses:
            staff_file = export_responses(
                session,
                survey_id,
                secret_key=current_app.config["SECRET_KEY"],
                vault=current_app.extensions["engage.vault"],
            )
        else:
            report = build_report(session, survey_id, by, rule=report_rule(current_app.config))
            session.commit()  # reading it may have taken the survey's next snapshot
    except (LookupError, BreakdownError) as exc:
        raise click.ClickException(str(exc)) from None
    _audit_export(survey_id, by, fmt, output, responses)
    with click.open_file(str(output) if output else "-", "wb") as stream:
        if responses:
            for chunk in iter_responses_csv(staff_file):
                stream.write(chunk.encode("utf-8"))
        else:
            write_report(report, fmt, stream)
    if output:
        click.echo(f"wrote {output}", err=True)


def _audit_export(
    survey_id: str, by: tuple[str, ...], fmt: str, output: Path | None, responses: bool
) -> None:
    """Record the export as the web records a download, committed before a byte is written."""
    from engage.services.accounts import record_download

    parameters = (
        {"format": "csv", "kind": "responses"}
        if responses
        else {"format": fmt, "by": ",".join(by), "kind": "aggregates"}
    )
    parameters["output"] = str(output) if output else "stdout"
    with db.transaction() as session:
        record_download(
            session, user=None, actor=_actor(), survey_id=survey_id, parameters=parameters
        )


# -- users ---------------------------------------------------------------------------------------


@main.group("users")
def users_group() -> None:
    """Accounts for staff and the policy team."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "staff", "policy"]), required=True)
@with_appcontext
def users_create(email: str, role: str) -> None:
    """Create an account; the password is asked for (never given as an argument)."""
    from engage.services.accounts import AccountError, create_user

    password = _read_password()
    try:
        with db.transaction() as session:
            user = create_user(session, email, password, role, actor=_actor())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.id}: {user.email} ({user.role})")


def _read_password() -> str:
    """From a hidden prompt with confirmation on a terminal, else one line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users_group.command("password")
@click.argument("email")
@with_appcontext
def users_password(email: str) -> None:
    """Set a new password (asked for, never an argument); the account's sessions end."""
    from engage.services.accounts import AccountError, find_user, set_password

    password = _read_password()
    try:
        with db.transaction() as session:
            user = find_user(session, email)
            set_password(session, user, password, actor=_actor(), now=db.now())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.id}: password changed, sessions ended")


@users_group.command("role")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "staff", "policy"]), required=True)
@with_appcontext
def users_role(email: str, role: str) -> None:
    """Change an account's role; its sessions end."""
    from engage.services.accounts import AccountError, find_user, set_role

    try:
        with db.transaction() as session:
            user = find_user(session, email)
            set_role(session, user, role, actor=_actor(), now=db.now())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.id}: {user.email} ({user.role}), sessions ended")


@users_group.command("deactivate")
@click.argument("email")
@with_appcontext
def users_deactivate(email: str) -> None:
    """Stop an account from signing in; its sessions end now."""
    from engage.services.accounts import AccountError, deactivate_user, find_user

    try:
        with db.transaction() as session:
            user = find_user(session, email)
            deactivate_user(session, user, actor=_actor(), now=db.now())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.id}: deactivated, sessions ended")


@users_group.command("reset-totp")
@click.argument("email")
@with_appcontext
def users_reset_totp(email: str) -> None:
    """Clear an account's authenticator app (a lost phone, and no other admin to do it from
    the accounts page); a new one is set up at its next sign-in."""
    from engage.services.accounts import AccountError, find_user
    from engage.services.second_factor import reset_second_factor

    try:
        with db.transaction() as session:
            user = find_user(session, email)
            reset_second_factor(session, user, actor=_actor())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.id}: authenticator app cleared")

"""The inbound spool: signed requests kept on local disk, encrypted, while the database is down.

On disk (one directory per web host, 0o700, every file 0o600):

    000000000001.spool   a segment: one Fernet token (base64, encrypted JSON) per line
    000000000001.done    replay progress in that segment: byte offsets, one per line, last wins
    dead-letters         entries set aside: one Fernet token per line, like a segment
    key-check            a token of a constant, so a wrong PII key stops us before we skip anything
    append.lock          flock: one writer at a time across threads and processes
    replay.lock          flock: one replayer at a time

Appends go to the newest segment. A replay first seals it (appends move to a fresh segment), then
works through the sealed segments in order, recording its progress after every entry, and
deletes each segment it has finished. An entry the handler refuses for good (the caller says
which failures those are) is moved to the dead letters and the replay goes on past it; any other
failure stops the replay there, to be tried again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken

from engage.privacy import Vault

log = logging.getLogger(__name__)

_SEGMENT = ".spool"
_PROGRESS = ".done"
_DEAD_LETTERS = "dead-letters"
_KEY_CHECK = "key-check"
_KEY_CHECK_TEXT = b"engage spool key check"
_APPEND_LOCK = "append.lock"
_REPLAY_LOCK = "replay.lock"


class SpoolKeyError(RuntimeError):
    """The spool was written with another PII key."""


@dataclass(frozen=True)
class SpoolEntry:
    """One pending entry and where it sits: segment number and the byte range of its line."""

    data: dict[str, Any]
    segment: int
    offset: int
    end: int


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did: handed over, failed (0 or 1), corrupt lines skipped, set aside."""

    replayed: int
    failed: int
    skipped_corrupt: int
    set_aside: int = 0


@dataclass(frozen=True)
class _Corrupt:
    segment: int
    offset: int
    end: int
    is_truncated: bool


class Spool:
    """A durable, encrypted, ordered queue of dicts in one local directory."""

    def __init__(self, directory: str | Path, vault: Vault) -> None:
        self.directory = Path(directory)
        self._vault = vault
        self._is_key_checked = False

    # -- writing ---------------------------------------------------------------------------

    def append(self, entry: dict[str, Any]) -> None:
        """Add an entry durably: when this returns, the entry survives a crash."""
        line = self._vault.encrypt_bytes(_dump(entry)) + b"\n"
        self._ensure_directory()
        self._check_key()
        with self._lock(_APPEND_LOCK, fcntl.LOCK_EX):
            segments = self._segments()
            segment = segments[-1] if segments else self._create_segment()
            fd = os.open(self._segment_path(segment), os.O_RDWR | os.O_APPEND)
            try:
                _append_line(fd, line)
            finally:
                os.close(fd)

    def set_aside(self, entry: dict[str, Any], reason: str) -> None:
        """Keep an entry that will never be accepted in the dead letters, durably and encrypted."""
        letter = {"entry": entry, "reason": reason, "set_aside_at": _now_iso()}
        # ASCII escapes: whatever it holds (a lone surrogate, say), a dead letter can be written.
        line = self._vault.encrypt_bytes(_dump(letter, ensure_ascii=True)) + b"\n"
        self._ensure_directory()
        self._check_key()
        with self._lock(_APPEND_LOCK, fcntl.LOCK_EX):
            fd = os.open(self.dead_letters_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                _append_line(fd, line)
            finally:
                os.close(fd)
            _fsync_directory(self.directory)  # the file itself must persist, not only its line

    def forget_dead_letters(self, matches: Callable[[dict[str, Any]], bool]) -> int:
        """Remove the dead letters whose entry `matches` (erasure); how many went.

        The file is rewritten whole, atomically; a line that cannot be read is kept as it is.
        """
        if not self.has_dead_letters():
            return 0
        with self._lock(_APPEND_LOCK, fcntl.LOCK_EX):
            try:
                lines = self.dead_letters_path.read_bytes().splitlines(keepends=True)
            except (FileNotFoundError, NotADirectoryError):
                return 0
            kept = []
            for line in lines:
                try:
                    letter = json.loads(self._vault.decrypt_bytes(line.strip()))
                    is_match = matches(letter.get("entry") or {})
                except (InvalidToken, ValueError, TypeError, AttributeError):
                    is_match = False
                if not is_match:
                    kept.append(line if line.endswith(b"\n") else line + b"\n")
            if len(kept) < len(lines):
                _write_atomically(self.dead_letters_path, b"".join(kept))
            return len(lines) - len(kept)

    # -- reading ---------------------------------------------------------------------------

    def pending(self) -> Iterator[SpoolEntry]:
        """The entries not yet replayed, oldest first; corrupt lines are logged and skipped."""
        for item in self._scan():
            if isinstance(item, _Corrupt):
                _log_corrupt(item)
            else:
                yield item

    def has_entries(self) -> bool:
        """Cheap check for the webhook: is any segment left with something in it?"""
        try:
            return any(
                entry.name.endswith(_SEGMENT) and entry.stat().st_size > 0
                for entry in os.scandir(self.directory)
            )
        except FileNotFoundError:
            return False

    def size(self) -> int:
        """How many entries are pending."""
        return sum(1 for item in self._scan() if isinstance(item, SpoolEntry))

    @property
    def dead_letters_path(self) -> Path:
        """The file of entries set aside."""
        return self.directory / _DEAD_LETTERS

    def has_dead_letters(self) -> bool:
        """Cheap check for the health check: has anything been set aside?"""
        try:
            return self.dead_letters_path.stat().st_size > 0
        except (FileNotFoundError, NotADirectoryError):
            return False

    def dead_letter_count(self) -> int:
        """How many entries are set aside (a line torn by a crash counts too)."""
        try:
            with open(self.dead_letters_path, "rb") as file:
                return sum(1 for line in file if line.strip())
        except (FileNotFoundError, NotADirectoryError):
            return 0

    def is_writable(self) -> bool:
        """Whether an append can succeed now (for the health check)."""
        probe = self.directory / f"probe-{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            self._ensure_directory()
            self._check_key()
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"probe\n")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except (OSError, SpoolKeyError):
            log.warning("spool %s: not writable", self.directory, exc_info=True)
            return False
        return True

    # -- replaying -------------------------------------------------------------------------

    def replay(
        self,
        handler: Callable[[dict[str, Any]], None],
        *,
        is_refused: Callable[[Exception], bool] = lambda exc: False,
    ) -> ReplayResult:
        """Hand each pending entry to `handler` in order; stop at the first one that fails.

        A failure for which `is_refused` is true does not stop the replay: that entry is set
        aside in the dead letters and the next one follows. At least once: a crash after
        `handler` returns but before the progress is on disk hands that one entry over again,
        so `handler` must be idempotent. If another replay is running on this host, return at
        once with nothing done.
        """
        if not self.directory.is_dir():
            return ReplayResult(0, 0, 0)
        self._check_key()
        fd = os.open(self.directory / _REPLAY_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("spool %s: another replay is running", self.directory)
                return ReplayResult(0, 0, 0)
            result = self._replay_sealed(handler, is_refused)
        finally:
            os.close(fd)
        if result.replayed or result.skipped_corrupt or result.set_aside:
            log.info(
                "spool %s: replayed %d, skipped %d corrupt, set aside %d",
                self.directory,
                result.replayed,
                result.skipped_corrupt,
                result.set_aside,
            )
        return result

    def _replay_sealed(
        self,
        handler: Callable[[dict[str, Any]], None],
        is_refused: Callable[[Exception], bool],
    ) -> ReplayResult:
        replayed = skipped = set_aside = 0
        # Entries appended while we work land in a fresh segment; go round until none did.
        while sealed := self._seal():
            for segment in sealed:
                done_fd = os.open(
                    self._progress_path(segment), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600
                )
                try:
                    _fsync_directory(self.directory)  # the progress file itself must persist
                    for item in self._read_segment(segment, _read_progress(done_fd), None):
                        if isinstance(item, _Corrupt):
                            _log_corrupt(item)
                            skipped += 1
                        else:
                            try:
                                handler(item.data)
                            except Exception as exc:
                                # Only the type (of the failure underneath, if it was
                                # wrapped): database errors quote the message text.
                                reason = type(exc.__cause__ or exc).__name__
                                if not is_refused(exc):
                                    log.warning(
                                        "spool segment %d offset %d: replay stopped by %s",
                                        segment,
                                        item.offset,
                                        reason,
                                    )
                                    return ReplayResult(replayed, 1, skipped, set_aside)
                                # Set aside before the progress moves past it: a crash in
                                # between sets it aside twice, never loses it.
                                self.set_aside(item.data, reason)
                                log.error(
                                    "spool segment %d offset %d: refused (%s), set aside "
                                    "as a dead letter",
                                    segment,
                                    item.offset,
                                    reason,
                                )
                                set_aside += 1
                            else:
                                replayed += 1
                        _append_line(done_fd, b"%d\n" % item.end)
                finally:
                    os.close(done_fd)
                self._delete_segment(segment)
        return ReplayResult(replayed, 0, skipped, set_aside)

    # -- internals -------------------------------------------------------------------------

    @contextmanager
    def _lock(self, name: str, operation: int) -> Iterator[None]:
        # A fresh descriptor each time: flock then excludes other threads of this process too.
        fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)

    def _ensure_directory(self) -> None:
        if self.directory.is_dir():
            return
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.directory.mkdir(mode=0o700)
        except FileExistsError:
            return
        self.directory.chmod(0o700)  # mkdir's mode is cut by the umask
        _fsync_directory(self.directory.parent)

    def _check_key(self) -> None:
        # Without this a wrong ENGAGE_PII_KEY would make every entry look corrupt, and a replay
        # would skip (lose) them all.
        if self._is_key_checked:
            return
        path = self.directory / _KEY_CHECK
        if not path.exists():
            with self._lock(_APPEND_LOCK, fcntl.LOCK_EX):
                if not path.exists():
                    _write_atomically(path, self._vault.encrypt_bytes(_KEY_CHECK_TEXT))
        try:
            is_same_key = self._vault.decrypt_bytes(path.read_bytes().strip()) == _KEY_CHECK_TEXT
        except InvalidToken:
            is_same_key = False
        if not is_same_key:
            raise SpoolKeyError(f"spool {self.directory} was written with another PII key")
        self._is_key_checked = True

    def _segment_path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{_SEGMENT}"

    def _progress_path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{_PROGRESS}"

    def _numbers(self, suffix: str) -> list[int]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(
            int(name[: -len(suffix)])
            for name in names
            if name.endswith(suffix) and name[: -len(suffix)].isdigit()
        )

    def _segments(self) -> list[int]:
        return self._numbers(_SEGMENT)

    def _create_segment(self) -> int:
        """A new newest segment; call with the append lock held."""
        # Count leftover progress files too, so a number is never reused with stale progress.
        segment = max(self._segments() + self._numbers(_PROGRESS), default=0) + 1
        os.close(os.open(self._segment_path(segment), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _fsync_directory(self.directory)
        return segment

    def _seal(self) -> list[int]:
        """Stop appends to the current segments; return them, oldest first."""
        with self._lock(_APPEND_LOCK, fcntl.LOCK_EX):
            segments = self._segments()
            if segments and self._segment_path(segments[-1]).stat().st_size > 0:
                self._create_segment()
                return segments
            return segments[:-1]

    def _delete_segment(self, segment: int) -> None:
        # The segment goes first: progress without its segment is harmless, a segment without
        # its progress would be replayed from the start.
        self._segment_path(segment).unlink()
        _fsync_directory(self.directory)
        self._progress_path(segment).unlink(missing_ok=True)

    def _scan(self) -> Iterator[SpoolEntry | _Corrupt]:
        if not self.directory.is_dir():
            return
        self._check_key()
        # Sizes taken under the lock: no write is half done, so a line cut short at that size
        # was torn by a crash, not caught in flight.
        with self._lock(_APPEND_LOCK, fcntl.LOCK_SH):
            sizes = [(s, self._segment_path(s).stat().st_size) for s in self._segments()]
        for segment, size in sizes:
            try:
                fd = os.open(self._progress_path(segment), os.O_RDONLY)
            except FileNotFoundError:
                start = 0
            else:
                try:
                    start = _read_progress(fd)
                finally:
                    os.close(fd)
            try:
                yield from self._read_segment(segment, start, size)
            except FileNotFoundError:
                continue  # a replay finished it meanwhile

    def _read_segment(
        self, segment: int, start: int, stop: int | None
    ) -> Iterator[SpoolEntry | _Corrupt]:
        with open(self._segment_path(segment), "rb") as file:
            file.seek(start)
            offset = start
            while (stop is None or offset < stop) and (raw := file.readline()):
                if stop is not None and offset + len(raw) > stop:
                    raw = raw[: stop - offset]
                end = offset + len(raw)
                if raw != b"\n":  # a lone newline only closes a torn line before it
                    yield self._parse(raw, segment, offset, end)
                offset = end

    def _parse(self, raw: bytes, segment: int, offset: int, end: int) -> SpoolEntry | _Corrupt:
        if not raw.endswith(b"\n"):
            return _Corrupt(segment, offset, end, is_truncated=True)
        try:
            data = json.loads(self._vault.decrypt_bytes(raw[:-1]))
        except (InvalidToken, ValueError):
            return _Corrupt(segment, offset, end, is_truncated=False)
        if not isinstance(data, dict):
            return _Corrupt(segment, offset, end, is_truncated=False)
        return SpoolEntry(data=data, segment=segment, offset=offset, end=end)


def _dump(entry: dict[str, Any], *, ensure_ascii: bool = False) -> bytes:
    if not isinstance(entry, dict):
        raise TypeError(f"a spool entry is a dict, not {type(entry).__name__}")
    return json.dumps(
        entry, ensure_ascii=ensure_ascii, separators=(",", ":"), allow_nan=False
    ).encode()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _append_line(fd: int, line: bytes) -> None:
    """Append one line to a file opened O_RDWR | O_APPEND, and fsync it."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        # A writer died mid-line. End its line first, so that it is read as one corrupt line
        # and this one stays whole.
        line = b"\n" + line
    view = memoryview(line)
    while view:  # one write in practice; a regular file only writes short on a full disk
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _read_progress(fd: int) -> int:
    """The byte offset replayed so far: the largest whole number recorded (offsets only grow)."""
    text = b""
    while chunk := os.read(fd, 65536):
        text += chunk
    lines = text.split(b"\n")[:-1]  # what follows the last newline is torn
    return max((int(line) for line in lines if line.isdigit()), default=0)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _log_corrupt(item: _Corrupt) -> None:
    log.warning(
        "spool segment %d offset %d: skipped %s line (%d bytes)",
        item.segment,
        item.offset,
        "truncated" if item.is_truncated else "unreadable",
        item.end - item.offset,
    )

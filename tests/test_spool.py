"""The spool: durable, encrypted, ordered, and safe to replay after a crash."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from engage.privacy import Vault
from engage.spool import ReplayResult, Spool, SpoolKeyError

KEY = Fernet.generate_key().decode()
PHONE = "+15105550123"
BODY = "mi patrón no paga las horas extra"
FORK = multiprocessing.get_context("fork")


def make_spool(directory: Path) -> Spool:
    return Spool(directory, Vault(KEY))


def entry(n: int, **extra: object) -> dict:
    return {
        "path": "/twilio/messages",
        "form": [["MessageSid", f"SM{n:032d}"], ["From", PHONE], ["Body", f"{BODY} {n}"]],
        "received_at": "2025-03-01T12:00:00+00:00",
        "n": n,
        **extra,
    }


def numbers(spool: Spool) -> list[int]:
    return [item.data["n"] for item in spool.pending()]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def test_entries_come_back_in_the_order_they_were_appended(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(20):
        spool.append(entry(n))

    items = list(spool.pending())

    assert [item.data for item in items] == [entry(n) for n in range(20)]
    assert spool.size() == 20


def test_an_empty_or_missing_spool_has_nothing_pending(tmp_path):
    spool = make_spool(tmp_path / "never-created")

    assert list(spool.pending()) == []
    assert spool.size() == 0
    assert spool.replay(lambda data: None) == ReplayResult(0, 0, 0)
    assert not (tmp_path / "never-created").exists()


def test_nothing_is_stored_in_clear_text_and_files_are_private(tmp_path):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    for n in range(3):
        spool.append(entry(n))
    calls = []

    def fail_on_second(data: dict) -> None:
        calls.append(data)
        if len(calls) == 2:
            raise RuntimeError("database down")

    spool.replay(fail_on_second)  # leaves progress files behind too
    spool.append(entry(3))

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [path for path in directory.iterdir()]
    assert len(files) >= 5  # segments, progress, key check, locks
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        content = path.read_bytes()
        for secret in (PHONE, PHONE[1:], BODY, "MessageSid", "SM000"):
            assert secret.encode() not in content, (path.name, secret)


def test_a_line_torn_by_a_crash_is_skipped_and_reported_and_appends_go_on(tmp_path, caplog):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    spool.append(entry(0))
    spool.append(entry(1))
    [segment] = segment_files(directory)
    token = Vault(KEY).encrypt_bytes(b'{"n": 99}')
    with segment.open("ab") as file:  # a writer that died halfway through its write
        file.write(token[: len(token) // 2])

    with caplog.at_level(logging.WARNING, logger="engage.spool"):
        assert numbers(spool) == [0, 1]
    assert "truncated" in caplog.text

    spool.append(entry(2))
    assert numbers(spool) == [0, 1, 2]
    assert spool.size() == 3

    delivered = []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="engage.spool"):
        result = spool.replay(lambda data: delivered.append(data["n"]))
    assert result == ReplayResult(replayed=3, failed=0, skipped_corrupt=1)
    assert delivered == [0, 1, 2]
    assert "unreadable" in caplog.text
    assert spool.size() == 0


@pytest.mark.parametrize("garbage", [b"\x00" * 40 + b"\n", b"not a token\n", b"\n\n"])
def test_garbage_lines_do_not_hide_the_entries_around_them(tmp_path, garbage):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    spool.append(entry(0))
    [segment] = segment_files(directory)
    with segment.open("ab") as file:
        file.write(garbage)
    spool.append(entry(1))

    assert numbers(spool) == [0, 1]


def test_replay_stops_at_the_first_failure_and_resumes_there_in_order(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(5):
        spool.append(entry(n))
    delivered = []

    def database_down_at_2(data: dict) -> None:
        if data["n"] == 2:
            raise ConnectionError("database down")
        delivered.append(data["n"])

    assert spool.replay(database_down_at_2) == ReplayResult(replayed=2, failed=1, skipped_corrupt=0)
    assert delivered == [0, 1]
    assert numbers(spool) == [2, 3, 4]

    spool.append(entry(5))
    assert spool.replay(lambda data: delivered.append(data["n"])) == ReplayResult(4, 0, 0)
    assert delivered == [0, 1, 2, 3, 4, 5]
    assert spool.size() == 0


class Refused(Exception):
    """What the caller's handler raises for an entry no retry will take."""


def test_a_refused_entry_is_set_aside_and_the_ones_behind_it_go_on(tmp_path):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    for n in range(5):
        spool.append(entry(n))
    delivered = []

    def refuse_1_and_3(data: dict) -> None:
        if data["n"] in (1, 3):
            raise Refused("value too long")
        delivered.append(data["n"])

    result = spool.replay(refuse_1_and_3, is_refused=lambda exc: isinstance(exc, Refused))

    assert result == ReplayResult(replayed=3, failed=0, skipped_corrupt=0, set_aside=2)
    assert delivered == [0, 2, 4]
    assert spool.size() == 0 and not spool.has_entries()
    assert spool.has_dead_letters() and spool.dead_letter_count() == 2
    # Kept like the spool: encrypted, readable by the owner only, with the reason.
    raw = spool.dead_letters_path.read_bytes()
    assert PHONE.encode() not in raw and BODY.encode() not in raw
    assert stat.S_IMODE(spool.dead_letters_path.stat().st_mode) == 0o600
    letters = [json.loads(Vault(KEY).decrypt_bytes(line)) for line in raw.splitlines()]
    assert [(letter["entry"], letter["reason"]) for letter in letters] == [
        (entry(1), "Refused"),
        (entry(3), "Refused"),
    ]


def test_a_failure_that_is_not_a_refusal_still_stops_the_replay(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(3):
        spool.append(entry(n))

    def database_down_at_1(data: dict) -> None:
        if data["n"] == 1:
            raise ConnectionError("database down")

    result = spool.replay(database_down_at_1, is_refused=lambda exc: isinstance(exc, Refused))

    assert result == ReplayResult(replayed=1, failed=1, skipped_corrupt=0, set_aside=0)
    assert numbers(spool) == [1, 2]
    assert not spool.has_dead_letters() and spool.dead_letter_count() == 0


def test_failures_across_several_segments_keep_the_order(tmp_path):
    spool = make_spool(tmp_path / "spool")
    delivered = []
    calls = 0

    def every_third_call_fails(data: dict) -> None:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            raise ConnectionError("flapping database")
        delivered.append(data["n"])

    n = 0
    for _ in range(8):  # appends and replays interleaved, so entries spread over segments
        for _ in range(3):
            spool.append(entry(n))
            n += 1
        spool.replay(every_third_call_fails)
    for _ in range(20):  # bounded, so a regression fails instead of hanging
        if spool.replay(every_third_call_fails).failed == 0:
            break

    assert delivered == list(range(n))


def test_a_full_replay_leaves_no_entries_on_disk(tmp_path):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    for n in range(10):
        spool.append(entry(n))

    spool.replay(lambda data: None)

    assert [path.stat().st_size for path in segment_files(directory)] == [0]
    assert list(directory.glob("*.done")) == []


def test_a_crash_in_the_handler_hands_over_that_entry_again(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(5):
        spool.append(entry(n))
    delivered = []

    def crash_at_3(data: dict) -> None:
        if data["n"] == 3:
            raise SystemExit(1)  # the process is going down: not a handled failure
        delivered.append(data["n"])

    with pytest.raises(SystemExit):
        spool.replay(crash_at_3)
    spool.replay(lambda data: delivered.append(data["n"]))

    assert delivered == [0, 1, 2, 3, 4]


def _record(log_path: Path, data: dict) -> None:
    with log_path.open("a") as file:
        file.write(f"{data['n']}\n")
        file.flush()
        os.fsync(file.fileno())


def _replay_then_die_after(directory: Path, log_path: Path, last: int) -> None:
    def handler(data: dict) -> None:
        _record(log_path, data)
        if data["n"] == last:
            os._exit(9)  # the work is done, but the process dies before recording it

    make_spool(directory).replay(handler)
    os._exit(0)


def test_a_process_killed_mid_replay_redelivers_at_most_the_entry_in_flight(tmp_path):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    for n in range(10):
        spool.append(entry(n))
    log_path = tmp_path / "delivered.log"

    child = FORK.Process(target=_replay_then_die_after, args=(directory, log_path, 3))
    child.start()
    child.join(10)
    assert child.exitcode == 9
    spool.replay(lambda data: _record(log_path, data))

    delivered = [int(line) for line in log_path.read_text().split()]
    assert delivered == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]


def _append_many(directory: Path, process: int, count: int, start: threading.Event) -> None:
    spool = make_spool(directory)
    start.wait(10)
    for seq in range(count):
        spool.append({"process": process, "seq": seq})


def test_concurrent_appends_from_processes_are_all_kept_once_in_order(tmp_path):
    directory = tmp_path / "spool"
    make_spool(directory).append({"process": -1, "seq": 0})  # directory and key check exist
    start = FORK.Event()
    workers = [FORK.Process(target=_append_many, args=(directory, p, 200, start)) for p in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    items = [item.data for item in make_spool(directory).pending()][1:]

    assert len(items) == 800
    assert len({(d["process"], d["seq"]) for d in items}) == 800
    for p in range(4):
        assert [d["seq"] for d in items if d["process"] == p] == list(range(200))
    assert len({d["process"] for d in items[:200]}) > 1  # they really did interleave


def test_concurrent_appends_from_threads_are_all_kept_once_in_order(tmp_path):
    spool = make_spool(tmp_path / "spool")

    def append_many(thread: int) -> None:
        for seq in range(50):
            spool.append({"thread": thread, "seq": seq})

    threads = [threading.Thread(target=append_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    items = [item.data for item in spool.pending()]
    assert len(items) == 200
    for t in range(4):
        assert [d["seq"] for d in items if d["thread"] == t] == list(range(50))


def test_a_second_concurrent_replay_does_nothing(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(3):
        spool.append(entry(n))
    in_handler, release = threading.Event(), threading.Event()
    delivered = []

    def slow(data: dict) -> None:
        in_handler.set()
        release.wait(10)
        delivered.append(data["n"])

    first = threading.Thread(target=lambda: spool.replay(slow))
    first.start()
    try:
        assert in_handler.wait(10)
        other = make_spool(tmp_path / "spool")
        assert other.replay(lambda data: delivered.append(("other", data["n"]))) == ReplayResult(
            0, 0, 0
        )
    finally:
        release.set()
        first.join(10)

    assert delivered == [0, 1, 2]
    assert spool.size() == 0


def test_a_replay_started_from_the_handler_does_nothing(tmp_path):
    spool = make_spool(tmp_path / "spool")
    spool.append(entry(0))
    nested = []

    result = spool.replay(lambda data: nested.append(spool.replay(lambda inner: None)))

    assert result == ReplayResult(1, 0, 0)
    assert nested == [ReplayResult(0, 0, 0)]


def test_appends_during_a_replay_are_kept_and_come_after(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(3):
        spool.append(entry(n))
    delivered = []

    def handler(data: dict) -> None:
        delivered.append(data["n"])
        if data["n"] < 3:
            spool.append(entry(data["n"] + 10))  # a message arriving while we replay

    result = spool.replay(handler)

    assert result == ReplayResult(6, 0, 0)
    assert delivered == [0, 1, 2, 10, 11, 12]
    assert spool.size() == 0


def test_appends_during_a_failed_replay_wait_behind_the_failed_entry(tmp_path):
    spool = make_spool(tmp_path / "spool")
    for n in range(3):
        spool.append(entry(n))

    def fail_at_1(data: dict) -> None:
        if data["n"] == 1:
            spool.append(entry(10))
            raise ConnectionError("database down")

    assert spool.replay(fail_at_1) == ReplayResult(1, 1, 0)
    assert numbers(spool) == [1, 2, 10]


def test_a_wrong_pii_key_is_refused_and_loses_nothing(tmp_path):
    directory = tmp_path / "spool"
    spool = make_spool(directory)
    for n in range(3):
        spool.append(entry(n))
    wrong = Spool(directory, Vault(Fernet.generate_key().decode()))

    with pytest.raises(SpoolKeyError):
        wrong.replay(lambda data: None)
    with pytest.raises(SpoolKeyError):
        wrong.append(entry(3))
    assert not wrong.is_writable()

    assert numbers(spool) == [0, 1, 2]


def test_is_writable_reports_whether_an_append_could_succeed(tmp_path):
    directory = tmp_path / "deep" / "spool"
    assert make_spool(directory).is_writable()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [path.name for path in directory.iterdir() if path.suffix == ".tmp"] == []

    (tmp_path / "a-file").write_text("")
    assert not make_spool(tmp_path / "a-file" / "spool").is_writable()


def test_entries_must_be_json_objects(tmp_path):
    spool = make_spool(tmp_path / "spool")

    with pytest.raises(TypeError):
        spool.append(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        spool.append({"when": object()})
    assert spool.size() == 0

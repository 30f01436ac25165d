"""A page is never lost: runs killed mid-send, outboxes torn, corrupted and
shared, caches that cannot be written, workers that die. Each test asserts
the property: after the fault and at most one more run, every failed marked
test's alert reached PagerDuty exactly once, or is listed with its reason."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fake_pagerduty import FakePagerDuty
from pagerduty_api import error_reply
from pytest_pagerduty import wit
from pytest_pagerduty.locations import fallback_path
from pytest_pagerduty.outbox import Entry, Outbox

OUTBOX = Path(".pytest_cache", "d", "pagerduty", "outbox.jsonl")

FIVE_FAILURES = """
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

@pytest.mark.parametrize("n", range(5))
def test_check(n):
    assert False, n
"""

NOTHING_FAILS = """
def test_green():
    pass
"""


def pending(path: Path) -> list[Entry]:
    """The outbox's unconfirmed entries, as the plugin reads them (runs'
    own journals included)."""
    return Outbox(path).unconfirmed()


REPLAY = (sys.executable, "-m", "pytest_pagerduty", "replay")


def start(pytester: pytest.Pytester, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *options],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), "timed out"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_run_killed_while_pagerduty_is_slow_loses_nothing_and_the_next_run_sends_it(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, signum: int
) -> None:
    # A CI job cancelled (SIGTERM) or the OOM killer (SIGKILL) while the
    # first of five alerts waits on a slow PagerDuty.
    pagerduty.reply(0, delay=3)
    pytester.makepyfile(test_suite=FIVE_FAILURES)
    run = start(pytester, *pagerduty.options())
    wait_for(lambda: pagerduty.received)
    wait_for(lambda: len(pending(pytester.path / OUTBOX)) == 5)
    os.kill(run.pid, signum)
    _, err = run.communicate(timeout=30)
    assert run.returncode == -signum  # it dies of the signal, as pytest would
    if signum == signal.SIGTERM:
        assert "Traceback" not in err
        assert (
            "pagerduty: terminated; 5 alert(s) not yet confirmed are kept in "
            f"{pytester.path / OUTBOX} and sent by the next run here"
        ) in err
    assert len(pending(pytester.path / OUTBOX)) == 5
    time.sleep(3)  # the slow reply reaches no one, but PagerDuty opened it

    # The next scheduled run here: nothing fails, and it heals.
    pytester.makepyfile(test_suite=NOTHING_FAILS)
    healed = pytester.runpytest_subprocess(*pagerduty.options())
    healed.assert_outcomes(passed=1)
    assert healed.ret == pytest.ExitCode.OK
    healed.stdout.fnmatch_lines(
        [
            "*already open: Test failed: test_check[[]0[]]: *",
            "replayed 5 alert(s) an earlier run kept in the outbox: 5 sent (pagerduty_auto_replay)",
        ]
    )
    # Exactly once each: the one PagerDuty had already opened was re-sent
    # with its key and answered "already open", not opened twice.
    titles = sorted(i["title"] for i in pagerduty.incidents())
    assert len(titles) == 6  # five keys, one of them sent twice
    assert sorted(pagerduty.open_incidents) == sorted(
        {i["incident_key"] for i in pagerduty.incidents()}
    )
    assert len(pagerduty.open_incidents) == 5
    assert not (pytester.path / OUTBOX).exists()


def test_auto_replay_can_be_switched_off(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    pytester.makepyfile(test_suite=FIVE_FAILURES.replace("range(5)", "range(1)"))
    pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_max_attempts=1"))
    assert len(pending(pytester.path / OUTBOX)) == 1
    pagerduty.received.clear()

    pytester.makepyfile(test_suite=NOTHING_FAILS)
    pytester.makeini("[pytest]\npagerduty_auto_replay = false\n")
    off = pytester.runpytest_subprocess(*pagerduty.options())
    off.assert_outcomes(passed=1)
    assert pagerduty.received == []
    assert len(pending(pytester.path / OUTBOX)) == 1


def test_a_run_does_not_replay_what_a_live_run_is_still_sending(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # Two runs share one cache: the second must leave the first's alerts to it.
    pagerduty.reply(0, delay=4)
    pytester.makepyfile(test_suite=FIVE_FAILURES.replace("range(5)", "range(1)"))
    first = start(pytester, *pagerduty.options())
    wait_for(lambda: pagerduty.received)
    pytester.makepyfile(test_other=NOTHING_FAILS)
    second = pytester.runpytest_subprocess(*pagerduty.options(), "test_other.py")
    second.assert_outcomes(passed=1)
    assert "replayed" not in second.stdout.str()
    first.communicate(timeout=30)
    assert first.returncode == 1
    assert len(pagerduty.incidents()) == 1
    assert not (pytester.path / OUTBOX).exists()


def test_resending_an_alert_pagerduty_already_has_opens_nothing_new(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # A run killed after PagerDuty opened the incident but before the
    # outbox heard of it: the entry stays, and is sent again.
    pytester.makepyfile(test_suite=FIVE_FAILURES.replace("range(5)", "range(1)"))
    pytester.runpytest_subprocess(*pagerduty.options())
    assert len(pagerduty.open_incidents) == 1
    failure = wit.TestFailure(
        "test_suite.py::test_check[0]", None, None, "AssertionError: 0", "assert False, n", "call"
    )
    Outbox(pytester.path / OUTBOX).append(
        Entry.new(failure, {"service_id": "PWIXJZS"}, 0, "not confirmed")
    )
    pytester.makepyfile(test_suite=NOTHING_FAILS)
    again = pytester.runpytest_subprocess(*pagerduty.options())
    again.stdout.fnmatch_lines(["already open: *", "replayed 1 alert(s) *: 1 sent *"])
    assert len(pagerduty.open_incidents) == 1
    assert not (pytester.path / OUTBOX).exists()


def test_a_dead_letter_is_listed_by_replay_and_never_resent_blindly(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    pytester.makepyfile(test_suite=FIVE_FAILURES.replace("range(5)", "range(1)"))
    first = pytester.runpytest_subprocess(*pagerduty.options())
    first.stdout.fnmatch_lines(["PagerDuty: 1 failed permanently (kept as dead letters in *"])
    (letter,) = pending(pytester.path / OUTBOX)
    assert letter.dead and "Service not found" in letter.reason
    pagerduty.received.clear()

    pytester.makepyfile(test_suite=NOTHING_FAILS)
    pytester.runpytest_subprocess(*pagerduty.options())
    assert pagerduty.received == []  # the next run leaves it alone

    listed = pytester.run(*REPLAY, *pagerduty.options())
    assert listed.ret == 1
    listed.stdout.fnmatch_lines(
        [
            "pagerduty replay: 0 alert(s) to send from *",
            "  dead letter test_suite.py::test_check[[]0[]] (*): PagerDuty answered 400: "
            "Invalid Input Provided: Service not found. Fix: *",
            "  dead letters are not re-sent*--drop-dead`",
        ]
    )
    assert pagerduty.received == []
    dropped = pytester.run(*REPLAY, "--drop-dead", *pagerduty.options())
    assert dropped.ret == 0
    dropped.stdout.fnmatch_lines(["  1 dead letter(s) forgotten", "*0 sent, 0 left in the outbox"])


def test_an_unwritable_cache_directory_keeps_alerts_in_the_users_cache(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # A path through a regular file cannot be created, even by root.
    (pytester.path / "blocked").write_text("a file, not a directory")
    pytester.makeini("[pytest]\ncache_dir = blocked/cache\n")
    pytester.makepyfile(test_suite=FIVE_FAILURES.replace("range(5)", "range(2)"))
    for _ in range(2):
        pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    down = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_max_attempts=1"))
    down.assert_outcomes(failed=2)
    assert "Traceback" not in down.stdout.str() + down.stderr.str()
    assert "INTERNALERROR" not in down.stdout.str()
    fallback = fallback_path(
        pytester.path / "blocked" / "cache" / "d" / "pagerduty" / "outbox.jsonl"
    )
    assert fallback is not None
    down.stdout.fnmatch_lines([f"PagerDuty: 2 queued in {fallback} *"])
    assert len(pending(fallback)) == 2

    back = pytester.runpytest_subprocess(*pagerduty.options())
    back.assert_outcomes(failed=2)
    # The two kept and the two new failures are the same two alerts.
    assert len(pagerduty.open_incidents) == 2
    assert pending(fallback) == []


def test_a_flaky_info_alert_that_could_not_be_sent_is_not_reported_as_sent(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    (pytester.path / "blocked").write_text("a file, not a directory")
    pytester.makeini("[pytest]\ncache_dir = blocked/cache\n")
    pytester.makepyfile(
        test_suite="""
import pytest

calls = []

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
@pytest.mark.flaky(reruns=1)
def test_flaky():
    calls.append(1)
    assert len(calls) > 1
"""
    )
    pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    result = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_flaky=info", "--pagerduty_max_attempts=1")
    )
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["rerun"]) == (1, 1)
    result.stdout.fnmatch_lines(
        [
            "queued: *test_flaky*Service Unavailable*",
            "flaky: test_suite.py::test_flaky failed, then passed on rerun (its info alert was "
            "not sent: queued, as listed above)",
            "*1 queued in *",
        ]
    )
    assert "an info alert was sent" not in result.stdout.str()


def test_a_marked_test_that_kills_its_xdist_worker_still_pages(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        test_suite="""
import os
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_dies():
    os._exit(1)

def test_other():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-n", "2", *pagerduty.options())
    result.assert_outcomes(failed=1, passed=1)
    (incident,) = pagerduty.incidents()
    # The controller collected nothing: the test is named by its full id.
    assert re.fullmatch(
        r"Test failed: test_suite\.py::test_dies: "
        r"worker 'gw[01]' crashed while running 'test_suite\.py::test_dies'",
        incident["title"],
    )
    assert "crashed while running 'test_suite.py::test_dies'" in incident["body"]["details"]


def test_a_worker_dying_in_teardown_after_a_pass_is_an_error_paged_only_when_asked(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        test_suite="""
import os
import pytest

@pytest.fixture
def dies_after():
    yield
    os._exit(1)

@pytest.mark.usefixtures("pagerduty_fixture", "dies_after")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_passes():
    pass
"""
    )
    quiet = pytester.runpytest_subprocess("-n", "1", *pagerduty.options())
    assert quiet.ret == pytest.ExitCode.TESTS_FAILED  # xdist reports the crash
    assert pagerduty.incidents() == []
    paged = pytester.runpytest_subprocess(
        "-n", "1", *pagerduty.options("--pagerduty_page_on_error")
    )
    assert paged.ret == pytest.ExitCode.TESTS_FAILED
    (incident,) = pagerduty.incidents()
    assert "crashed while running" in incident["title"]


def test_a_green_run_keeps_exit_0_when_its_resolves_cannot_be_sent(
    pytester: pytest.Pytester,
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pytester.makepyfile(
        test_suite="""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_fine():
    pass
"""
    )
    result = pytester.runpytest_subprocess(
        f"--pagerduty_api_url=http://127.0.0.1:{port}",
        "--pagerduty_api_key=u+key",
        "--pagerduty_default_from=a@example.com",
        "--pagerduty_resolve=always",
        "--pagerduty_max_attempts=1",
        "-W",
        "error",
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*resolve sent for 0 of 1 passing test(s)*"])


# The outbox file itself, corrupted and shared.


def _entry(nodeid: str) -> Entry:
    failure = wit.TestFailure(nodeid, None, None, None, "E" * 2000, "call")
    return Entry.new(failure, {"service_id": "P1"}, 0, "test")


def test_a_torn_last_line_does_not_swallow_the_next_entry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.jsonl")
    box.append(_entry("t.py::test_before"))
    with open(box.path, "ab") as out:  # a run killed mid-write
        out.write(_entry("t.py::test_torn").to_json().encode()[:100])
    box.append(_entry("t.py::test_after"))
    journal = box.read()
    assert [e.failure.nodeid for e in journal.entries.values()] == [
        "t.py::test_before",
        "t.py::test_after",
    ]
    assert len(journal.unreadable) == 1


def test_a_non_utf8_byte_is_kept_as_an_unreadable_line_and_replay_goes_on(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    box = pytester.path / "box.jsonl"
    Outbox(box).append(_entry("t.py::test_kept"))
    with open(box, "ab") as out:
        out.write(b'{"id": "caf\xe9"}\n')
    result = pytester.run(*REPLAY, "--outbox", str(box), *pagerduty.options())
    assert "Traceback" not in result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "*1 alert(s) to send from *",
            "  1 line(s) were not outbox entries (a torn or corrupted line): moved to "
            f"{box}.unreadable",
            "pagerduty replay: 1 sent, 0 left in the outbox",
        ]
    )
    assert result.ret == 0  # the corrupted line no longer holds the outbox open
    assert len(pagerduty.incidents()) == 1
    assert not box.exists()
    assert Path(f"{box}.unreadable").read_bytes() == b'{"id": "caf\xe9"}\n'


def _wait_for(flag: Path) -> None:
    while not flag.exists():  # every process starts together (spawn is slow)
        time.sleep(0.001)


def _append_many(path: str, writer: int, count: int, go: str) -> None:
    box = Outbox(Path(path))
    _wait_for(Path(go))
    for n in range(count):
        box.append(_entry(f"test_{writer}.py::test_{n}"), sync=False)
        time.sleep(0.001)  # spread over the replay's rounds


def _settle_while_they_append(path: str, go: str, stop: str, done: str) -> None:
    """A replay: confirms what it finds, and compacts, until told to stop."""
    box = Outbox(Path(path))
    confirmed: list[str] = []
    _wait_for(Path(go))
    while not Path(stop).exists():
        ids = list(box.read().entries)
        box.settle(ids, "done")
        box.compact()
        confirmed += ids
    Path(done).write_text("\n".join(confirmed))


def test_a_replay_confirming_entries_while_three_runs_append_loses_none(tmp_path: Path) -> None:
    path, go, stop = tmp_path / "outbox.jsonl", tmp_path / "go", tmp_path / "stop"
    done = tmp_path / "confirmed.txt"
    context = multiprocessing.get_context("spawn")
    appenders = [
        context.Process(target=_append_many, args=(str(path), w, 100, str(go))) for w in range(3)
    ]
    replay = context.Process(
        target=_settle_while_they_append, args=(str(path), str(go), str(stop), str(done))
    )
    for worker in [*appenders, replay]:
        worker.start()
    time.sleep(1.0)  # every process imported and waiting
    go.touch()
    for worker in appenders:
        worker.join(120)
        assert worker.exitcode == 0
    stop.touch()
    replay.join(120)
    assert replay.exitcode == 0
    confirmed = set(done.read_text().split())
    left = Outbox(path).read()
    assert left.unreadable == []
    # Every entry appended is either confirmed by the replay or still there, once.
    assert confirmed.isdisjoint(left.entries)
    assert len(confirmed) + len(left.entries) == 300


def test_replay_says_why_it_cannot_send_when_wasmtime_cannot_load(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = pytester.path / "box.jsonl"
    Outbox(box).append(_entry("t.py::test_kept"))
    before = box.read_bytes()
    # A broken install: the native library cannot be loaded on this platform.
    broken = pytester.mkdir("broken")
    (broken / "wasmtime").mkdir()
    (broken / "wasmtime" / "__init__.py").write_text(
        "raise ImportError('libwasmtime.so: cannot open shared object file')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(broken))
    result = pytester.run(*REPLAY, "--outbox", str(box), *pagerduty.options())
    assert result.ret == 1
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "pagerduty replay: cannot send: wasmtime cannot load (ImportError: libwasmtime.so: "
            f"cannot open shared object file); the outbox {box} is kept as it is. Fix: *"
        ]
    )
    assert pagerduty.received == []
    assert box.read_bytes() == before


def test_sigterm_while_a_test_runs_still_says_what_is_kept(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # The usual CI cancel: a later test is running (its output captured)
    # while the first failure's alert waits on a slow PagerDuty.
    pagerduty.reply(0, delay=5)
    pytester.makepyfile(
        test_suite="""
import time
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_first():
    assert False

def test_slow():
    time.sleep(30)
"""
    )
    run = start(pytester, *pagerduty.options())
    wait_for(lambda: pagerduty.received)
    os.kill(run.pid, signal.SIGTERM)
    _, err = run.communicate(timeout=30)
    assert run.returncode == -signal.SIGTERM
    assert "pagerduty: terminated; 1 alert(s) not yet confirmed are kept in " in err
    assert len(pending(pytester.path / OUTBOX)) == 1


def test_a_secret_pagerduty_quotes_back_never_reaches_the_outbox(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    from fake_pagerduty import API_KEY

    pagerduty.reply(
        400, error_reply("Invalid Input Provided", 2001, f"token {API_KEY} is not allowed here")
    )
    pytester.makepyfile(test_suite=FIVE_FAILURES.replace("range(5)", "range(1)"))
    pytester.runpytest_subprocess(*pagerduty.options())
    text = (pytester.path / OUTBOX).read_text()
    assert "is not allowed here" in text
    assert API_KEY not in text


def test_a_claim_after_a_torn_line_still_keeps_a_live_runs_entries_its_own(
    tmp_path: Path,
) -> None:
    from pytest_pagerduty.outbox import RunLock

    box = Outbox(tmp_path / "outbox.jsonl")
    box.append(_entry("t.py::test_a"))
    with open(box.path, "ab") as out:  # a run killed mid-write
        out.write(b'{"id": "abc", "queued_')
    runner = RunLock(box, "run-b")
    runner.acquire()
    try:
        taken, _ = box.claim("run-b")
        assert [e.failure.nodeid for e in taken] == ["t.py::test_a"]
        # Run B is alive: run C must leave its entry alone.
        assert box.claim("run-c")[0] == []
    finally:
        runner.release()


def test_a_run_never_claims_the_alerts_it_wrote_itself(tmp_path: Path) -> None:
    from settings_for_tests import plugin_settings

    from pytest_pagerduty.delivery import Trigger
    from pytest_pagerduty.keeping import Keeper

    settings = plugin_settings()
    keeper = Keeper(settings, tmp_path / "outbox.jsonl", ["routing_key"])
    failure = wit.TestFailure("t.py::test_now", None, None, None, "tb", "call")
    written = keeper.write_ahead(Trigger(failure, {"service_id": "P1"}, 0))
    assert written.entry_id is not None
    # The replay of earlier runs' alerts starts late (a cold compile).
    assert keeper.claim() == ([], [])
    assert keeper.close() == 1
